"""CheckSettings: the thresholds and training settings every check shares, and their validation.

Kept apart from the checks themselves (``rethink_checks.checks``) so the one place that
parses user mappings (``rethink_config``, ini files, the command line) is small and
self-contained. ``rethink_checks.checks`` re-exports every public name here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import RethinkError, SettingsError

if TYPE_CHECKING:  # pragma: no cover
    from .training import FitConfig

__all__ = ["CheckSettings", "SettingsError", "REGULARIZERS", "LABEL_MODES", "CAPACITY_BUDGETS"]

REGULARIZERS = ("weight_decay", "augment", "dropout", "batchnorm")
LABEL_MODES = ("paper", "wrong_class")
CAPACITY_BUDGETS = ("steps", "epochs")  # rethink_checks.capacity.capacity_search(budget=...)
# fields of CheckSettings that only judge results; they never change a fit, so not in key()
_CRITERION_ONLY = ("partial_levels", "error_tolerance", "max_slowdown", "max_regularizer_gain",
                   "min_capacity", "capacity_precision", "capacity_budget")
# FitConfig fields a user mapping may not set: the checks own them
_FIT_RESERVED = ("corruption", "progress", "target_accuracy")


def _default_fit_config() -> "FitConfig":
    from .training import FitConfig

    return FitConfig()


def _fit_config_type() -> type:
    from .training import FitConfig

    return FitConfig


@dataclass
class CheckSettings:
    """Thresholds and training settings shared by every check (defaults are the paper's)."""

    fit: "FitConfig" = field(default_factory=_default_fit_config)
    fit_threshold: float = 1.0
    memorize_threshold: float = 0.99
    partial_levels: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    error_tolerance: float = 0.02
    max_slowdown: float = 10.0
    max_regularizer_gain: float = 0.10
    regularizers: tuple[str, ...] = REGULARIZERS
    weight_decay: float = 5e-4
    label_mode: str = "paper"
    corrupt_test_labels: bool = False
    train_size: int | None = None
    min_capacity: int | None = None
    capacity_precision: float = 0.05
    capacity_budget: str = "steps"     # capacity: "steps" (every subset gets the full set's steps) | "epochs"
    time_budget: float | None = None   # wall-clock seconds for a whole check (all its fits), via run_check
    seed: int = 0
    memorization_p: float = 0.2        # memorization: fraction of training labels redrawn (0 < p < 1)
    min_memorization_auc: float = 0.75  # memorization: AUC of fit epoch as a corrupted-label detector

    def __post_init__(self) -> None:
        if isinstance(self.fit, Mapping):
            self.fit = _fit_from_mapping(self.fit, _default_fit_config())
        if not isinstance(self.fit, _fit_config_type()):
            raise SettingsError(f"fit: expected a FitConfig, got {type(self.fit).__name__}")
        for name in ("fit_threshold", "memorize_threshold"):
            _check_fraction(name, getattr(self, name), low_open=True)
        self.partial_levels = _as_tuple("partial_levels", self.partial_levels, float)
        if not self.partial_levels:
            raise SettingsError("partial_levels: need at least one corruption level, got ()")
        for p in self.partial_levels:
            _check_fraction("partial_levels", p)
        if len(set(self.partial_levels)) != len(self.partial_levels):
            raise SettingsError(f"partial_levels: levels repeat in {self.partial_levels}")
        self.partial_levels = tuple(sorted(float(p) for p in self.partial_levels))
        _check_number("error_tolerance", self.error_tolerance, minimum=0.0)
        _check_number("max_slowdown", self.max_slowdown, minimum=0.0, open_min=True)
        _check_number("max_regularizer_gain", self.max_regularizer_gain)
        self.regularizers = _as_tuple("regularizers", self.regularizers, str)
        bad = [r for r in self.regularizers if r not in REGULARIZERS]
        if bad:
            raise SettingsError(f"regularizers: unknown {bad}; allowed: {', '.join(REGULARIZERS)}")
        _check_number("weight_decay", self.weight_decay, minimum=0.0)
        if self.label_mode not in LABEL_MODES:
            raise SettingsError(f"label_mode: got {self.label_mode!r}; allowed: {', '.join(LABEL_MODES)}")
        self.corrupt_test_labels = _as_bool("corrupt_test_labels", self.corrupt_test_labels)
        for name in ("train_size", "min_capacity"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _as_int(name, value, minimum=1))
        _check_number("capacity_precision", self.capacity_precision, minimum=0.0, open_min=True)
        if self.capacity_precision >= 1:
            raise SettingsError(f"capacity_precision: got {self.capacity_precision}; allowed: 0 < value < 1")
        if self.capacity_budget not in CAPACITY_BUDGETS:
            raise SettingsError(f"capacity_budget: got {self.capacity_budget!r}; allowed: "
                                f"{', '.join(CAPACITY_BUDGETS)}")
        if self.time_budget is not None:
            _check_number("time_budget", self.time_budget, minimum=0.0, open_min=True)
        self.seed = _as_int("seed", self.seed, minimum=0)

    @classmethod
    def allowed_keys(cls) -> tuple[str, ...]:
        """Every key :meth:`from_mapping` accepts: settings fields, then FitConfig fields."""
        own = tuple(f.name for f in dataclasses.fields(cls))
        fit = tuple(f.name for f in dataclasses.fields(_fit_config_type())
                    if f.name not in _FIT_RESERVED and f.name not in own)
        return own + fit

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None,
                     base: "CheckSettings | None" = None) -> "CheckSettings":
        """Settings from a user dict (``rethink_config``): check keys, fit keys, or ``fit={...}``.

        ``seed`` sets both the corruption seed and the training seed; hyphens count as
        underscores. Unknown keys raise :class:`SettingsError` naming them.
        """
        base = base if base is not None else cls()
        mapping = {str(k).replace("-", "_"): v for k, v in dict(mapping or {}).items()}
        own = {f.name for f in dataclasses.fields(cls)}
        fit_names = {f.name for f in dataclasses.fields(_fit_config_type())} - set(_FIT_RESERVED)
        unknown = sorted(k for k in mapping if k not in own and k not in fit_names)
        if unknown:
            raise SettingsError(f"unknown settings key(s) {unknown}; allowed: "
                                f"{', '.join(cls.allowed_keys())}")
        own_types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        mapping = {k: _coerce(own_types[k], v) if k in own_types else v
                   for k, v in mapping.items()}
        fit_changes = {k: v for k, v in mapping.items() if k in fit_names and k not in own}
        nested = mapping.pop("fit", None)
        fit = base.fit
        if isinstance(nested, Mapping):
            fit = _fit_from_mapping(nested, fit)
        elif nested is not None:
            fit = nested
        if "seed" in mapping:
            fit_changes.setdefault("seed", mapping["seed"])
        fit = _fit_from_mapping(fit_changes, fit)
        own_changes = {k: v for k, v in mapping.items() if k in own}
        return dataclasses.replace(base, fit=fit, **own_changes)

    def updated(self, mapping: Mapping[str, Any] | None = None, **changes: Any) -> "CheckSettings":
        """A copy with ``mapping`` and keyword changes applied (same rules as from_mapping)."""
        return type(self).from_mapping({**dict(mapping or {}), **changes}, base=self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (the fit config nested under ``fit``, callbacks left out)."""
        out = {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)
               if f.name != "fit"}
        out["fit"] = _fit_dict(self.fit)
        return out

    def key(self) -> str:
        """Stable digest of everything that changes a fit (not the pass/fail criteria)."""
        d = self.to_dict()
        for name in _CRITERION_ONLY:
            d.pop(name, None)
        text = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- settings helpers

def _fit_dict(fit: Any) -> dict[str, Any]:
    return {f.name: _jsonable(getattr(fit, f.name)) for f in dataclasses.fields(fit)
            if f.name not in _FIT_RESERVED}


def _coerce(annotation: str, value: Any) -> Any:
    """Strings from ini files or the command line, converted by the field's annotation."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    kinds = [k.strip() for k in annotation.split("|")]
    if "None" in kinds and text.lower() in ("none", "null", ""):
        return None
    for kind, convert in (("bool", lambda t: _as_bool("value", t)), ("int", int), ("float", float)):
        if kind in kinds:
            try:
                return convert(text)
            except (ValueError, SettingsError):
                return value  # left as given: validation names the field and the value
    return value


def _fit_from_mapping(changes: Mapping[str, Any], fit: Any) -> Any:
    changes = {str(k).replace("-", "_"): v for k, v in dict(changes).items()}
    fields_ = {f.name: str(f.type) for f in dataclasses.fields(fit) if f.name not in _FIT_RESERVED}
    allowed = list(fields_)
    unknown = sorted(k for k in changes if k not in allowed)
    if unknown:
        raise SettingsError(f"unknown fit key(s) {unknown}; allowed: {', '.join(allowed)}")
    changes = {k: _coerce(fields_[k], v) for k, v in changes.items()}
    if not changes:
        return fit
    try:
        return dataclasses.replace(fit, **changes)
    except RethinkError:
        raise
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"fit settings {changes}: {exc}") from exc


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return repr(value)


def _check_number(name: str, value: Any, minimum: float | None = None, open_min: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise SettingsError(f"{name}: expected a number, got {value!r}")
    if minimum is not None and (value < minimum or (open_min and value == minimum)):
        op = ">" if open_min else ">="
        raise SettingsError(f"{name}: got {value!r}; allowed: a number {op} {minimum}")


def _check_fraction(name: str, value: Any, low_open: bool = False) -> None:
    _check_number(name, value)
    if not (0.0 <= value <= 1.0) or (low_open and value == 0.0):
        low = "0 <" if low_open else "0 <="
        raise SettingsError(f"{name}: got {value!r}; allowed: {low} value <= 1")


def _as_tuple(name: str, value: Any, kind: type) -> tuple:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, Iterable):
        raise SettingsError(f"{name}: expected a list of {kind.__name__}, got {value!r}")
    out = []
    for item in value:
        if kind is float:
            try:
                item = float(item)
            except (TypeError, ValueError):
                raise SettingsError(f"{name}: {item!r} is not a number") from None
        elif not isinstance(item, str):
            raise SettingsError(f"{name}: {item!r} is not a string")
        out.append(item)
    return tuple(out)


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise SettingsError(f"{name}: expected true or false, got {value!r}")


def _as_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingsError(f"{name}: got {value!r}; allowed: an integer >= {minimum}")
    return value
