"""Exceptions the library raises for bad input: specific, and never a torch stack trace."""
from __future__ import annotations


class RethinkError(Exception):
    """Base class for every error this library raises on purpose."""


class DataError(RethinkError, ValueError):
    """A dataset, data root or data spec is missing or malformed."""


class ModelError(RethinkError, TypeError):
    """A user model or factory is unusable (wrong type, wrong output shape, raises)."""


class DeviceError(RethinkError, RuntimeError):
    """The requested device is unavailable, or it ran out of memory."""
