"""The validators behind ``rethink_checks.settings``: one message style for every settings field.

Every rejection reads ``"<Owner>.<field>=<value!r> is invalid; allowed: <what is allowed>"``
(e.g. ``FitConfig.batch_size=0 is invalid; allowed: an integer >= 1``), so a user always sees
the field, the value received and what would be accepted. Also here: the parsing of ini and
command-line strings (:func:`coerce`) and the mapping of renamed settings keys to their new
names with a ``DeprecationWarning`` (:func:`rename_old_keys`). Torch-free, like ``settings``.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import SettingsError

__all__ = ["invalid", "number", "fraction", "integer", "choice", "as_bool", "as_tuple",
           "coerce", "jsonable", "callable_name", "rename_old_keys"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def invalid(owner: str, name: str, value: Any, allowed: str) -> SettingsError:
    """The one settings error: the field, the value received and what is allowed."""
    return SettingsError(f"{owner}.{name}={value!r} is invalid; allowed: {allowed}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def number(owner: str, name: str, value: Any, low: float = -math.inf, high: float = math.inf,
           low_open: bool = False, finite: bool = False) -> float:
    """A real number in [low, high] ((low, high] with ``low_open``); NaN and bools rejected."""
    ok = _is_number(value) and not (finite and not math.isfinite(value))
    if not ok or value < low or value > high or (low_open and value == low):
        raise invalid(owner, name, value, _range_text(low, high, low_open))
    return value


def _range_text(low: float, high: float, low_open: bool) -> str:
    if high == math.inf:
        if low == -math.inf:
            return "a number"
        return f"a number {'>' if low_open else '>='} {low:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"


def fraction(owner: str, name: str, value: Any, low_open: bool = False) -> float:
    """A number in [0, 1] ((0, 1] with ``low_open``)."""
    return number(owner, name, value, 0.0, 1.0, low_open=low_open)


def integer(owner: str, name: str, value: Any, minimum: int) -> int:
    """An integer >= minimum; digit strings (ini, command line) are converted, bools rejected."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid(owner, name, value, f"an integer >= {minimum}")
    return value


def choice(owner: str, name: str, value: Any, allowed: Iterable[str]) -> str:
    """One of ``allowed`` (exact match)."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise invalid(owner, name, value, ", ".join(allowed))
    return value


def as_bool(owner: str, name: str, value: Any) -> bool:
    """A bool, or its ini spelling (true/false, yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise invalid(owner, name, value, "true or false")


def as_tuple(owner: str, name: str, value: Any, item: Callable[[Any], Any], allowed: str) -> tuple:
    """A tuple from a list or a comma-separated string, each entry passed through ``item``.

    ``item`` raises ValueError or TypeError naming a bad entry; the error quotes that text.
    """
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise invalid(owner, name, value, allowed)
    out = []
    for entry in value:
        try:
            out.append(item(entry))
        except (TypeError, ValueError) as exc:
            raise invalid(owner, name, value, f"{allowed} ({exc})") from None
    return tuple(out)


def coerce(annotation: str, value: Any) -> Any:
    """Strings from ini files or the command line, converted by the field's annotation.

    A string that does not convert is returned as given, so validation names field and value.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    kinds = [k.strip() for k in annotation.split("|")]
    if "None" in kinds and text.lower() in ("none", "null", ""):
        return None
    if "bool" in kinds and text.lower() in _TRUE + _FALSE:
        return text.lower() in _TRUE
    for kind, convert in (("int", int), ("float", float)):
        if kind in kinds:
            try:
                return convert(text)
            except ValueError:
                return value
    return value


def jsonable(value: Any) -> Any:
    """A settings value as JSON: tuples become lists, callables their :func:`callable_name`
    (the same in every process, so settings keys stay stable), other objects their repr."""
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if callable(value):
        return callable_name(value)
    return repr(value)


def callable_name(fn: Any) -> str:
    """A user callable as ``module.qualname`` (a callable object: its class's)."""
    module = getattr(fn, "__module__", None) or type(fn).__module__
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{name}"


def rename_old_keys(owner: str, values: dict[str, Any],
                    renames: Mapping[str, Callable[[dict[str, Any], Any], None]],
                    new_names: Mapping[str, str], stacklevel: int = 3) -> dict[str, Any]:
    """Map deprecated keys in ``values`` onto their new fields, warning once per key.

    ``renames[old](values, old_value)`` writes the translation into ``values`` (the old key is
    already removed); ``new_names[old]`` is named in the ``DeprecationWarning``.
    """
    values = dict(values)
    for old, translate in renames.items():
        if old in values:
            old_value = values.pop(old)
            warnings.warn(f"{owner}.{old} is deprecated and will be removed in the next release; "
                          f"use {owner}.{new_names[old]}", DeprecationWarning, stacklevel=stacklevel)
            translate(values, old_value)
    return values
