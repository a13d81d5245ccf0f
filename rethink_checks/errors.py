"""Exceptions the library raises for bad input: specific, and never a torch stack trace.

Every type derives from :class:`RethinkError` (so callers can catch the library's errors in
one clause) and from the builtin that fits (``ValueError`` for a bad value, ``TypeError`` for
a wrong type), so code that catches builtins keeps working. Messages name the argument, the
value received and what is allowed.
"""
from __future__ import annotations

__all__ = ["RethinkError", "DataError", "InputTypeError", "SettingsError", "ModelError",
           "ModelNameError", "DeviceError", "DataNotFoundError", "NotApplicable"]


class RethinkError(Exception):
    """Base class for every error this library raises on purpose."""


class DataError(RethinkError, ValueError):
    """A dataset, data root or data spec is missing or malformed, or a value is out of range."""


class InputTypeError(RethinkError, TypeError):
    """An argument has the wrong type (e.g. float labels, a float seed, a list for a tensor)."""


class SettingsError(RethinkError, ValueError):
    """A setting (FitConfig field, device string, keyword) has a value that is not allowed."""


class ModelError(RethinkError, TypeError):
    """A user model or factory is unusable (wrong type, wrong output shape, raises)."""


class ModelNameError(ModelError, ValueError):
    """An unknown model name, or an input shape / class count a model cannot be built for."""


class DeviceError(RethinkError, RuntimeError):
    """The requested device is unavailable, or it ran out of memory."""


class DataNotFoundError(RethinkError, FileNotFoundError):
    """A data path names no file or folder, or a folder holds no dataset layout the library reads."""


class NotApplicable(RethinkError):
    """A randomization that has no meaning for this data (the checks report a skip, not an error).

    Derives from :class:`RethinkError` only: it is neither a bad value nor a wrong type, so
    ``except ValueError`` must not swallow it. ``reason`` says why, in one sentence.
    """

    def __init__(self, randomization: str, kind: str, reason: str):
        super().__init__(f"{randomization} is not applicable to {kind} inputs: {reason}")
        self.randomization, self.kind, self.reason = randomization, kind, reason


class LabelWarning(UserWarning):
    """Labels that leave a class without training examples (e.g. labels 1..10 with classes
    0..10): the label randomizations draw from every class, the empty ones included."""
