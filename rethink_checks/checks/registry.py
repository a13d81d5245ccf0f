"""The one table of checks: every consumer that lists checks reads :data:`REGISTRY`.

Settings validation (``checks``, ``expect``), the plugin's items and options, seeds,
expectations, baselines, the table legend and the docs all take check names, criteria and
metrics from here. A new check is a :class:`~rethink_checks.checks.base.Check` in a module of
its own, listed in :data:`BUILTIN` (or, for a check outside the package, passed to
:func:`register`); see docs/architecture.md, "Adding a check".
"""
from __future__ import annotations

from collections.abc import Iterable

from ..errors import SettingsError
from . import capacity, expressivity, memorization, memorize, partial_labels, regularizers, slowdown
from . import suspects, true_labels
from .base import Check

__all__ = ["REGISTRY", "BUILTIN", "register", "unregister", "get", "names", "default_names", "validate_names",
           "compared_metrics", "legend_lines"]

#: the package's checks, in the order items, tables and docs list them
BUILTIN: tuple[Check, ...] = (true_labels.CHECK, *memorize.CHECKS, partial_labels.CHECK,
                              slowdown.CHECK, regularizers.CHECK, capacity.CHECK,
                              expressivity.CHECK, memorization.CHECK, suspects.CHECK)
#: name -> Check, every check known to this process (the package's, then registered ones)
REGISTRY: dict[str, Check] = {check.name: check for check in BUILTIN}


def register(check: Check, *, replace: bool = False) -> Check:
    """Add ``check`` to the registry (a name already taken is an error unless ``replace``)."""
    if not isinstance(check, Check):
        raise SettingsError(f"register: expected a rethink_checks.checks.Check, got "
                            f"{type(check).__name__}")
    if check.name in REGISTRY and not replace:
        raise SettingsError(f"register: a check named {check.name!r} exists already; pass "
                            f"replace=True to replace it")
    REGISTRY[check.name] = check
    return check


def unregister(name: str) -> None:
    """Remove a registered check (a no-op for an unknown name)."""
    REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """Every check name, in registry order."""
    return tuple(REGISTRY)


def default_names() -> tuple[str, ...]:
    """The checks a run selects when nothing chooses: all but those run only on request."""
    return tuple(name for name, check in REGISTRY.items() if not check.on_request)


def get(name: str) -> Check:
    """The check called ``name``; an unknown name is a :class:`SettingsError` naming the allowed."""
    if name not in REGISTRY:
        raise SettingsError(f"unknown check {name!r}; allowed: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def validate_names(value: object, where: str) -> tuple[str, ...]:
    """A check selection (a list, or comma-separated text) as a tuple of known names.

    ``where`` names the setting in the error, e.g. ``rethink_config['checks']``.
    """
    parts: Iterable[object] = [value] if isinstance(value, str) else value  # type: ignore[assignment]
    try:
        chosen = tuple(n.strip() for part in parts for n in str(part).split(",") if n.strip())
    except TypeError:
        chosen = ()
    unknown = [n for n in chosen if n not in REGISTRY]
    if unknown or not chosen:
        why = f"unknown check(s) {', '.join(map(repr, unknown))}" if unknown else "no check named"
        raise SettingsError(f"{where}={value!r} is invalid: {why}; allowed: {', '.join(REGISTRY)}")
    return tuple(dict.fromkeys(chosen))


def compared_metrics() -> tuple[str, ...]:
    """The metrics a baseline comparison looks at: every check's ``metrics``, without repeats."""
    return tuple(dict.fromkeys(m for check in REGISTRY.values() for m in check.metrics))


def legend_lines() -> tuple[str, ...]:
    """The key column's legend lines, one per check that has one (without repeats)."""
    return tuple(dict.fromkeys(c.legend for c in REGISTRY.values() if c.legend))
