"""All settings, torch-free: ``FitConfig`` (one fit) and ``CheckSettings`` (every check).

The one place that parses user mappings (``rethink_config``, ini files, marker keys and the
command line all go through :meth:`CheckSettings.from_mapping`) and validates them; the
validators and the shared message style ("FitConfig.batch_size=0 is invalid; allowed: an
integer >= 1") live in :mod:`rethink_checks.validation`. Importing this module never imports
torch, so the plugin can read settings before any model exists. ``rethink_checks.training``
and ``rethink_checks.checks`` re-export the public names.

Renamed fields (old names accepted until rethink-checks 0.2.0, ``validation.REMOVAL_VERSION``, with a
``DeprecationWarning``):
``FitConfig.regularizers`` / ``remove_dropout`` / ``remove_batchnorm`` -> ``FitConfig.remove``;
``CheckSettings.regularizers`` -> ``ablated_regularizers``, ``CheckSettings.weight_decay`` ->
``ablation_weight_decay`` (they are the regularizers check's, not the fit's).

This module is over 400 lines because issue #9 asked for every setting in one torch-free
module: two dataclasses, their validation calls and the mapping parser belong together; the
validators themselves are in :mod:`rethink_checks.validation`.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import validation as v
from .errors import InputTypeError, RethinkError, SettingsError
from .randomizations import LABEL_MODES, MEMORIZED
from .recipe_table import validate_recipe

__all__ = ["FitConfig", "CheckSettings", "SettingsError", "REGULARIZERS", "REMOVABLE",
           "LABEL_MODES", "CAPACITY_BUDGETS", "PRECISIONS", "INITS", "EXPECTATIONS",
           "parse_expect", "fit_config"]

REGULARIZERS = ("weight_decay", "augment", "dropout", "batchnorm")  # CheckSettings.ablated_regularizers
REMOVABLE = ("dropout", "batchnorm", "weight_decay", "augment",     # FitConfig.remove ("all": every one)
             "label_smoothing")
#: the randomizations (each also a check); CheckSettings.slowdown_randomizations draws from them
RANDOMIZATIONS = MEMORIZED
CAPACITY_BUDGETS = ("steps", "epochs")  # rethink_checks.capacity.capacity_search(budget=...)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: FitConfig.init: "auto" re-initializes a module instance and keeps a factory's fresh model
INITS = ("auto", "as_given", "reinit")
#: CheckSettings.expect values -> "met" | "not_met" (the friendly spellings are aliases)
EXPECTATIONS = {"met": "met", "not_met": "not_met", "memorized": "met",
                "not_memorized": "not_met", "fitted": "met", "not_fitted": "not_met",
                "passed": "met", "failed": "not_met"}
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
# fields of CheckSettings that only judge results; they never change a fit, so not in key()
_CRITERION_ONLY = ("partial_levels", "error_tolerance", "max_slowdown", "max_regularizer_gain",
                   "min_capacity", "capacity_precision", "capacity_budget", "seeds", "expect",
                   "min_memorization_auc", "slowdown_randomizations", "suspects")
# FitConfig fields a user mapping may not set: the checks own them
_FIT_RESERVED = ("corruption", "progress", "target_accuracy")
_RENAMED_FIT_KEYS = ("regularizers", "remove_dropout", "remove_batchnorm")  # -> FitConfig.remove


@dataclass
class FitConfig:
    """Settings of one fit; the defaults are the paper's (SGD 0.9, x0.95 per 391 steps, batch 128).

    lr: None uses ``model.rethink_lr`` (set by ``models.build``), else 0.01; multiplied by
    ``lr_decay`` after every ``lr_decay_steps`` optimizer steps (staircase, 391 = one epoch of
    the paper's 50,000 images at batch 128, so every training-set size and batch size sees the
    paper's schedule per step; ``step.lr_at``). ``augment``: random crop (zero padding of 4 px per 32 px of
    height) and horizontal flip, drawn per image per epoch. ``remove``: regularizers to strip
    for this fit, drawn from ``REMOVABLE`` ("dropout" and "batchnorm" take the modules out,
    "weight_decay" (of any optimizer) and "label_smoothing" force them to 0, "augment" turns it
    off; "all" is every one); empty keeps the
    model as built (``FitResult.removed`` lists what went). ``target_accuracy`` is measured on
    the full (randomized) training set in eval mode (see "Evaluation" below). ``max_seconds`` bounds the epoch loop's wall clock, checked after each epoch (at
    least one runs). ``precision`` "auto" is bf16 autocast (float32 master weights) on GPU,
    float32 on CPU. ``fast`` allows the CUDA-graph step. ``progress`` gets each epoch's curve
    row plus the fit's budgets (``max_epochs``, ``max_steps``, ``max_seconds``, ``target``) for a
    live line that says what is left. ``max_steps``: a step budget beside ``max_epochs`` (None: none); the fit stops after
    exactly that many optimizer steps, mid-epoch if need be, and measures that last (partial)
    epoch. Evaluation: the full training set (eval mode) is measured at an epoch when the
    running train-mode accuracy of that epoch, or the last measured eval-mode accuracy, is
    within ``eval_margin`` of ``target_accuracy``, when ``eval_every`` epochs have passed since
    the last measurement, and at the budget's end (docs/checks.md, "Evaluation schedule").
    ``test_sample``: test examples measured during the fit (a seeded sample drawn once; None
    or "auto": max(1000, training-set size); at least the split: all of it); the reported
    ``FitResult.test_accuracy`` is always the whole test split, measured once at the end.
    ``eval_batch_size``: examples per evaluation forward (None or "auto": 1024 on GPU; on CPU
    128 for models under a million parameters, whose activations then stay in cache, and 1024
    for larger ones; ``evaluation._auto_eval_batch``).
    ``compile`` (GPU only, opt-in): run the full-batch training forward through
    ``torch.compile`` (Inductor, no CUDA graphs of its own) before capture, for fewer, fused
    kernels per step at the price of compile time on first use; a failure to compile falls
    back to the plain model, with the reason recorded.
    ``init``: "reinit" calls every submodule's ``reset_parameters`` under the fit's seed (the
    paper trains from scratch; pretrained weights go, and each seed draws its own start),
    "as_given" trains the weights as handed over, "auto" (default) re-initializes a module
    instance (so ``--rethink-seeds`` varies its initialization) and keeps what a factory
    builds (it already builds a fresh model under the fit's seed, with the author's own
    initialization such as GoogLeNet's truncated normal); ``FitResult.settings["init"]``
    records the one used.
    """

    lr: float | None = None
    momentum: float = 0.9
    lr_decay: float = 0.95
    lr_decay_steps: int = 391
    batch_size: int = 128
    weight_decay: float = 0.0
    augment: bool = False
    remove: tuple[str, ...] = ()
    corruption: Any = None
    target_accuracy: float = 1.0
    eval_every: int = 5
    eval_margin: float = 0.1
    test_sample: int | None = None
    max_epochs: int = 100
    max_steps: int | None = None
    max_seconds: float | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    fast: bool = True
    eval_batch_size: int | None = None
    progress: Callable[[dict], None] | None = field(default=None, compare=False)
    compile: bool = False
    # the training recipe (rethink_checks.recipe_table names the choices; docs/checks.md "Your recipe")
    optimizer: Any = "sgd"
    schedule: Any = "paper"
    warmup: float = 0.0
    loss: Any = "cross_entropy"
    label_smoothing: float = 0.0
    clip_grad_norm: float | None = None
    train_step: Callable[..., Any] | None = field(default=None)
    init: str = "auto"

    def __post_init__(self) -> None:
        _validate_fit(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings: the corruption as its own dict, the progress callback left out."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "progress"}
        out["remove"] = list(self.remove)
        out["corruption"] = _corruption_dict(self.corruption)
        for name in ("optimizer", "schedule", "loss", "train_step"):
            out[name] = v.jsonable(out[name])
        return out


def _validate_fit(c: FitConfig) -> None:
    """Reject settings that cannot work, naming the field, the value and what is allowed."""
    own = "FitConfig"
    for name in ("batch_size", "eval_every", "max_epochs", "lr_decay_steps"):
        setattr(c, name, v.integer(own, name, getattr(c, name), minimum=1))
    c.eval_batch_size = _auto_int("eval_batch_size", c.eval_batch_size)
    if c.max_steps is not None:
        c.max_steps = v.integer(own, "max_steps", c.max_steps, minimum=1)
    c.test_sample = _auto_int("test_sample", c.test_sample, " (at least the test split: all of it)")
    v.fraction(own, "eval_margin", c.eval_margin)
    if c.lr is not None:
        v.number(own, "lr", c.lr, 0.0, low_open=True, finite=True)
    v.number(own, "momentum", c.momentum, 0.0, 1.0)
    v.number(own, "lr_decay", c.lr_decay, 0.0, low_open=True, finite=True)
    v.number(own, "weight_decay", c.weight_decay, 0.0, finite=True)
    v.number(own, "target_accuracy", c.target_accuracy, 0.0, 1.0, low_open=True)
    if c.max_seconds is not None:
        v.number(own, "max_seconds", c.max_seconds, 0.0, low_open=True, finite=True)
    for name in ("augment", "fast", "compile"):
        setattr(c, name, v.as_bool(own, name, getattr(c, name)))
    c.remove = _removals(c.remove)
    v.choice(own, "precision", c.precision, PRECISIONS)
    v.choice(own, "init", c.init, INITS)
    validate_recipe(c)
    if not isinstance(c.device, str) or not _DEVICE.match(c.device):
        raise v.invalid(own, "device", c.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not isinstance(c.seed, int) or isinstance(c.seed, bool):
        raise v.invalid(own, "seed", c.seed, "an integer")
    if c.progress is not None and not callable(c.progress):
        raise v.invalid(own, "progress", c.progress, "None or a callable taking the epoch's curve row")
    if c.corruption is not None and not callable(getattr(c.corruption, "apply", None)):
        raise v.invalid(own, "corruption", c.corruption,
                        "None or a CorruptionSpec (an object with .apply(dataset))")


def _auto_int(name: str, value: Any, note: str = "") -> int | None:
    """A FitConfig field where None or "auto" picks the default rule; else an integer >= 1."""
    if value is None or isinstance(value, str) and value.strip().lower() in ("auto", "none", ""):
        return None
    try:
        return v.integer("FitConfig", name, value, minimum=1)
    except SettingsError:
        raise v.invalid("FitConfig", name, value, f"'auto' (None) or an integer >= 1{note}") from None


def _removals(value: Any) -> tuple[str, ...]:
    """``FitConfig.remove`` in its one canonical form: REMOVABLE order, no repeats ("all" expanded)."""
    return _drawn_from("FitConfig", "remove", value, REMOVABLE)


def _drawn_from(owner: str, name: str, value: Any, names: tuple[str, ...],
                non_empty: bool = False) -> tuple[str, ...]:
    """A list of ``names`` (or "all": every one) in ``names``' order without repeats."""
    allowed = f"a {'non-empty ' if non_empty else ''}list drawn from {', '.join(names)}, or 'all'"

    def item(entry: Any) -> str:
        if entry != "all" and entry not in names:
            raise SettingsError(f"{entry!r} is not one of them")
        return entry

    picked = set(_each(owner, name, value, item, allowed))
    if non_empty and not picked:
        raise v.invalid(owner, name, value, allowed)
    return names if "all" in picked else tuple(n for n in names if n in picked)


def _corruption_dict(spec: Any) -> Any:
    """A JSON-able description of a corruption spec (its to_dict, dataclass fields, or repr)."""
    if spec is None:
        return None
    if callable(getattr(spec, "to_dict", None)):
        return spec.to_dict()
    if dataclasses.is_dataclass(spec):
        return {k: x for k, x in dataclasses.asdict(spec).items()
                if x is None or isinstance(x, (bool, int, float, str))}
    return repr(spec)


@dataclass
class CheckSettings:
    """Thresholds and training settings shared by every check (defaults are the paper's).

    ``ablated_regularizers`` (drawn from ``REGULARIZERS``) are what the regularizers check turns
    on for its "with" fit and strips for "without"; ``ablation_weight_decay`` is the weight decay
    of that "with" fit. The fits of every other check use ``fit`` as given.
    """

    fit: FitConfig = field(default_factory=FitConfig)
    fit_threshold: float = 1.0
    memorize_threshold: float = 0.99
    partial_levels: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    error_tolerance: float = 0.02
    max_slowdown: float = 10.0
    # slowdown: the randomizations timed against true labels ("all": the paper's Figure 1b four);
    # random labels alone by default: the paper's noise inputs fit sooner (docs/checks.md)
    slowdown_randomizations: tuple[str, ...] = ("random_labels",)
    max_regularizer_gain: float = 0.10
    ablated_regularizers: tuple[str, ...] = REGULARIZERS
    ablation_weight_decay: float = 5e-4
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
    suspects: int = 20                 # suspects: how many likely mislabels to list (rethink_checks.mislabels)
    seeds: int = 1                     # fits per check, with seeds derived from seed (rethink_checks.seeds)
    expect: Mapping[str, str] = field(default_factory=dict)  # check -> "met" | "not_met" (aliases: EXPECTATIONS)

    def __post_init__(self) -> None:
        own = "CheckSettings"
        if isinstance(self.fit, Mapping):
            self.fit = _fit_from_mapping(self.fit, FitConfig())
        if not isinstance(self.fit, FitConfig):
            raise v.invalid(own, "fit", self.fit, "a FitConfig or a mapping of its fields")
        for name in ("fit_threshold", "memorize_threshold"):
            v.fraction(own, name, getattr(self, name), low_open=True)
        levels = _each(own, "partial_levels", self.partial_levels, _level,
                            "at least one level, each a number in [0, 1]")
        if not levels:
            raise v.invalid(own, "partial_levels", self.partial_levels,
                            "at least one level, each a number in [0, 1]")
        if len(set(levels)) != len(levels):
            raise v.invalid(own, "partial_levels", self.partial_levels, "distinct levels (a level repeats)")
        self.partial_levels = tuple(sorted(levels))
        v.number(own, "error_tolerance", self.error_tolerance, 0.0)
        v.number(own, "max_slowdown", self.max_slowdown, 0.0, low_open=True)
        self.slowdown_randomizations = _randomizations(self.slowdown_randomizations)
        v.number(own, "max_regularizer_gain", self.max_regularizer_gain)
        self.ablated_regularizers = _each(
            own, "ablated_regularizers", self.ablated_regularizers, _regularizer,
            f"a list drawn from {', '.join(REGULARIZERS)}")
        v.number(own, "ablation_weight_decay", self.ablation_weight_decay, 0.0)
        v.choice(own, "label_mode", self.label_mode, LABEL_MODES)
        self.corrupt_test_labels = v.as_bool(own, "corrupt_test_labels", self.corrupt_test_labels)
        for name in ("train_size", "min_capacity"):
            if getattr(self, name) is not None:
                setattr(self, name, v.integer(own, name, getattr(self, name), minimum=1))
        v.number(own, "capacity_precision", self.capacity_precision, 0.0, low_open=True)
        if self.capacity_precision >= 1:
            raise v.invalid(own, "capacity_precision", self.capacity_precision, "0 < value < 1")
        v.choice(own, "capacity_budget", self.capacity_budget, CAPACITY_BUDGETS)
        if self.time_budget is not None:
            v.number(own, "time_budget", self.time_budget, 0.0, low_open=True)
        self.seed = v.integer(own, "seed", self.seed, minimum=0)
        self.seeds = v.integer(own, "seeds", self.seeds, minimum=1)
        self.suspects = v.integer(own, "suspects", self.suspects, minimum=1)
        v.number(own, "memorization_p", self.memorization_p, 0.0, 1.0, low_open=True)
        if self.memorization_p >= 1:
            raise v.invalid(own, "memorization_p", self.memorization_p, "a number with 0 < p < 1")
        v.fraction(own, "min_memorization_auc", self.min_memorization_auc)
        self.expect = parse_expect(self.expect)

    @classmethod
    def allowed_keys(cls) -> tuple[str, ...]:
        """Every key :meth:`from_mapping` accepts: settings fields, then FitConfig fields."""
        own = tuple(f.name for f in dataclasses.fields(cls))
        fit = tuple(f.name for f in dataclasses.fields(FitConfig)
                    if f.name not in _FIT_RESERVED and f.name not in own)
        return own + fit

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None,
                     base: CheckSettings | None = None) -> CheckSettings:
        """Settings from a user dict (``rethink_config``): check keys, fit keys, or ``fit={...}``.

        ``seed`` sets both the corruption seed and the training seed; hyphens count as
        underscores. Unknown keys raise :class:`SettingsError` naming them; renamed keys
        warn (``DeprecationWarning``) and set their new field.
        """
        base = base if base is not None else cls()
        mapping = {str(k).replace("-", "_"): x for k, x in dict(mapping or {}).items()}
        mapping = v.rename_old_keys("CheckSettings", mapping, _OLD_CHECK_KEYS, _NEW_CHECK_NAMES)
        own = {f.name for f in dataclasses.fields(cls)}
        fit_names = _fit_keys()
        unknown = sorted(k for k in mapping if k not in own and k not in fit_names)
        if unknown:
            raise SettingsError(f"unknown settings key(s) {unknown}; allowed: "
                                f"{', '.join(cls.allowed_keys())}")
        own_types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        mapping = {k: v.coerce(own_types[k], x) if k in own_types else x for k, x in mapping.items()}
        fit_changes = {k: x for k, x in mapping.items() if k in fit_names and k not in own}
        nested = mapping.pop("fit", None)
        fit = base.fit
        if isinstance(nested, Mapping):
            fit = _fit_from_mapping(nested, fit)
        elif nested is not None:
            fit = nested
        if "seed" in mapping:
            fit_changes.setdefault("seed", mapping["seed"])
        fit = _fit_from_mapping(fit_changes, fit)
        own_changes = {k: x for k, x in mapping.items() if k in own}
        return dataclasses.replace(base, fit=fit, **own_changes)

    def updated(self, mapping: Mapping[str, Any] | None = None, **changes: Any) -> CheckSettings:
        """A copy with ``mapping`` and keyword changes applied (same rules as from_mapping)."""
        return type(self).from_mapping({**dict(mapping or {}), **changes}, base=self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (the fit config nested under ``fit``, callbacks left out)."""
        out = {f.name: v.jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)
               if f.name != "fit"}
        out["expect"] = dict(self.expect)
        out["fit"] = {f.name: v.jsonable(getattr(self.fit, f.name)) for f in dataclasses.fields(self.fit)
                      if f.name not in _FIT_RESERVED}
        return out

    def key(self) -> str:
        """Stable digest of everything that changes a fit (not the pass/fail criteria)."""
        d = self.to_dict()
        for name in _CRITERION_ONLY:
            d.pop(name, None)
        text = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def parse_expect(value: Any, names: tuple[str, ...] | None = None,
                 where: str = "CheckSettings.expect") -> dict[str, str]:
    """``CheckSettings.expect`` in its canonical form ``{check: "met" | "not_met"}``.

    Takes a mapping or the ini / command-line text ``random_labels=not_memorized, gaussian=
    not_memorized`` (a list of such entries too); values are validated, and check names too
    when ``names`` (the check registry's) is given: :func:`rethink_checks.layers.validate_layer`
    gives them for every layer and ``run_check`` for direct calls.
    """
    allowed = (f"a mapping (or 'check=value, ...' text) of check names"
               f"{' (' + ', '.join(names) + ')' if names else ''} to {', '.join(EXPECTATIONS)}")
    raw = value

    def bad(note: str = "") -> SettingsError:
        return SettingsError(f"{where}={raw!r} is invalid; allowed: {allowed}{note}")

    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        pairs = {}
        for entry in value:
            for part in str(entry).replace(";", ",").split(","):
                if not part.strip():
                    continue
                name, sep, want = part.partition("=") if "=" in part else part.partition(":")
                if not sep:
                    raise bad()
                pairs[name.strip()] = want.strip()
        value = pairs
    if not isinstance(value, Mapping):
        raise bad()
    out = {}
    for name, want in value.items():
        if names is not None and name not in names:
            raise bad(f" ({name!r} is not a check)")
        if not isinstance(want, str) or want.strip().lower() not in EXPECTATIONS:
            raise bad(f" ({want!r} is not an expectation)")
        out[str(name)] = EXPECTATIONS[want.strip().lower()]
    return out


def fit_config(data: Any, config: "FitConfig | None", overrides: Mapping[str, Any]) -> "FitConfig":
    """What :func:`rethink_checks.fit` trains with: the fit's settings layers.

    A FitConfig given is complete and used as is (keyword overrides on top); without one the
    package's defaults < the data's fit defaults (``Dataset.fit_defaults``: batch 32 and 300
    epochs on the digits) < the keyword overrides.
    """
    if config is not None and not isinstance(config, FitConfig):
        raise InputTypeError(f"fit(config=...) must be a FitConfig or None; got {type(config).__name__}")
    known = [f.name for f in dataclasses.fields(FitConfig)]
    unknown = sorted(set(overrides) - set(known) - set(_RENAMED_FIT_KEYS))
    if unknown:
        raise InputTypeError(f"fit() got unknown setting(s) {unknown}; FitConfig fields are {known}")
    if config is None:
        defaults = dict(getattr(data, "fit_defaults", None) or {})
        config = CheckSettings.from_mapping(defaults).fit
    return dataclasses.replace(config, **overrides) if overrides else config  # old names warn


def _each(owner: str, name: str, value: Any, item: Callable[[Any], Any], allowed: str) -> tuple:
    """``v.as_tuple``'s entries, each converted by ``item`` here (validation never calls back)."""
    entries = v.as_tuple(owner, name, value, None, allowed)
    try:
        return tuple(item(entry) for entry in entries)
    except (TypeError, ValueError) as exc:  # a string shows as its entries, as as_tuple shows it
        shown = list(entries) if isinstance(value, str) else value
        raise v.invalid(owner, name, shown, f"{allowed} ({exc})") from None


def _level(x: Any) -> float:
    if isinstance(x, bool):
        raise SettingsError(f"{x!r} is not a number")
    try:
        level = float(x)
    except (TypeError, ValueError):
        raise SettingsError(f"{x!r} is not a number") from None
    if math.isnan(level) or not 0.0 <= level <= 1.0:
        raise SettingsError(f"{x!r} is not in [0, 1]")
    return level


def _randomizations(value: Any) -> tuple[str, ...]:
    """``CheckSettings.slowdown_randomizations`` canonical: RANDOMIZATIONS order, "all" expanded."""
    return _drawn_from("CheckSettings", "slowdown_randomizations", value, RANDOMIZATIONS, non_empty=True)


def _regularizer(name: Any) -> str:
    if name not in REGULARIZERS:
        raise SettingsError(f"{name!r} is unknown")
    return name


def _fit_keys() -> set[str]:
    """FitConfig keys a user mapping may set (its fields but the reserved ones, old names too)."""
    return {f.name for f in dataclasses.fields(FitConfig)} - set(_FIT_RESERVED) | set(_OLD_FIT_KEYS)


def _fit_from_mapping(changes: Mapping[str, Any], fit: FitConfig) -> FitConfig:
    changes = {str(k).replace("-", "_"): x for k, x in dict(changes).items()}
    types = {f.name: str(f.type) for f in dataclasses.fields(fit) if f.name not in _FIT_RESERVED}
    unknown = sorted(k for k in changes if k not in types and k not in _OLD_FIT_KEYS)
    if unknown:
        raise SettingsError(f"unknown fit key(s) {unknown}; allowed: {', '.join(types)}")
    changes = {k: v.coerce(types.get(k, "bool"), x) for k, x in changes.items()}
    if not changes:
        return fit
    try:
        return dataclasses.replace(fit, **changes)
    except RethinkError:
        raise
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"fit settings {changes}: {exc}") from exc


# ---------------------------------------------------------------- renamed fields (removed in 0.2.0)

def _old_regularizers(values: dict[str, Any], old: Any) -> None:
    if old not in ("model", "none"):
        raise v.invalid("FitConfig", "regularizers", old, "'model' or 'none' (deprecated: use FitConfig.remove)")
    values["remove"] = REMOVABLE if old == "none" else ()


def _old_remove_flag(what: str) -> Callable[[dict[str, Any], Any], None]:
    def translate(values: dict[str, Any], old: Any) -> None:
        on = v.as_bool("FitConfig", f"remove_{what}", old)
        current = set(_removals(values.get("remove", ())))
        values["remove"] = tuple(r for r in REMOVABLE if r in (current | {what} if on else current - {what}))
    return translate


def _moved(new: str) -> Callable[[dict[str, Any], Any], None]:
    def translate(values: dict[str, Any], old: Any) -> None:
        values.setdefault(new, old)
    return translate


_OLD_FIT_KEYS: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "regularizers": _old_regularizers,  # "none" -> remove="all", "model" -> remove=()
    "remove_dropout": _old_remove_flag("dropout"),
    "remove_batchnorm": _old_remove_flag("batchnorm"),
}
_NEW_FIT_NAMES = {"regularizers": "remove (regularizers='none' is remove='all')",
                  "remove_dropout": "remove (remove_dropout=True is remove=('dropout',))",
                  "remove_batchnorm": "remove (remove_batchnorm=True is remove=('batchnorm',))"}
_OLD_CHECK_KEYS = {"regularizers": _moved("ablated_regularizers"),
                   "weight_decay": _moved("ablation_weight_decay")}
_NEW_CHECK_NAMES = {"regularizers": "ablated_regularizers",
                    "weight_decay": "ablation_weight_decay (the fit's own weight decay is "
                                    "fit={'weight_decay': ...})"}


def _accept_old_names(cls: type, owner: str, renames: Mapping[str, Callable], new_names: Mapping[str, str]) -> None:
    """Let ``cls(...)`` and ``dataclasses.replace`` take the renamed keywords (warning once each)."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.keys() & renames.keys():
            kwargs = v.rename_old_keys(owner, kwargs, renames, new_names, stacklevel=3)
        init(self, *args, **kwargs)

    cls.__init__ = __init__


def _old_reader(owner: str, old: str, new: str, read: Callable[[Any], Any]) -> property:
    """A read-only attribute under the old name that warns and reads the new field."""
    def get(self: Any) -> Any:
        warnings.warn(f"{owner}.{old} is deprecated and will be removed in rethink-checks {v.REMOVAL_VERSION}; use "
                      f"{owner}.{new}", DeprecationWarning, stacklevel=2)
        return read(self)
    return property(get, doc=f"Deprecated: read {owner}.{new}.")


FitConfig.regularizers = _old_reader(  # type: ignore[attr-defined]
    "FitConfig", "regularizers", "remove", lambda c: "none" if c.remove == REMOVABLE else "model")
FitConfig.remove_dropout = _old_reader(  # type: ignore[attr-defined]
    "FitConfig", "remove_dropout", "remove", lambda c: "dropout" in c.remove)
FitConfig.remove_batchnorm = _old_reader(  # type: ignore[attr-defined]
    "FitConfig", "remove_batchnorm", "remove", lambda c: "batchnorm" in c.remove)
CheckSettings.regularizers = _old_reader(  # type: ignore[attr-defined]
    "CheckSettings", "regularizers", "ablated_regularizers", lambda s: s.ablated_regularizers)
CheckSettings.weight_decay = _old_reader(  # type: ignore[attr-defined]
    "CheckSettings", "weight_decay", "ablation_weight_decay", lambda s: s.ablation_weight_decay)
_accept_old_names(FitConfig, "FitConfig", _OLD_FIT_KEYS, _NEW_FIT_NAMES)
_accept_old_names(CheckSettings, "CheckSettings", _OLD_CHECK_KEYS, _NEW_CHECK_NAMES)
