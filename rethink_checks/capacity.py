"""Effective capacity: the largest training-set size whose random labels a model memorizes."""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import DataError
from .results import CheckResult, FitResult, fitted, key_metric, table_summary
from .run_cache import RunCache, run_key
from .dataset import require_training_examples

__all__ = ["CapacityResult", "capacity_search", "check_capacity"]


@dataclass
class CapacityResult:
    """What :func:`capacity_search` found: n*, the bracket around it, and every fit it made.

    ``n_star`` is the largest size tried that was memorized (0 when even ``n_min`` was not);
    the true boundary lies in ``bracket`` = (n_star, smallest size that failed), with the
    upper end ``None`` when the largest size ``n_max`` was memorized. ``complete`` is False
    when ``max_fits`` stopped the search before the bracket reached ``precision``. The search
    assumes memorization is monotone in n (it is, up to training noise), so every size it
    tries below n* was memorized and every size above the bracket failed.
    """

    n_star: int
    n_min: int
    n_max: int
    bracket: tuple[int, int | None]
    memorized_all: bool
    num_parameters: int
    params_per_example: float | None  # num_parameters / n_star (None when n_star == 0)
    input_dim: int
    theorem1_weights: int  # 2 n* + d: one Theorem 1 network on the n* points
    threshold: float
    precision: float
    seed: int
    complete: bool
    seconds: float
    fits: list[dict[str, Any]] = field(default_factory=list)
    budget: str = "steps"  # how subsets were trained: "steps" (the full set's) or "epochs"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{name}: need an integer, got {value!r}")
    if not low <= value <= high:
        raise DataError(f"{name}: got {value}; allowed: {low} <= {name} <= {high}")
    return value


def _validated_bounds(data: Any, n_min: int | None, n_max: int | None, precision: float,
                      threshold: float, max_fits: int | None) -> tuple[int, int]:
    """(n_min, n_max) after checking every search argument; errors name the argument."""
    total = require_training_examples(data)
    n_max = total if n_max is None else _check_int("n_max", n_max, 1, total)
    n_min = 1 if n_min is None else _check_int("n_min", n_min, 1, total)
    if n_min > n_max:
        raise DataError(f"n_min: got {n_min} > n_max={n_max}; need n_min <= n_max")
    if isinstance(precision, bool) or not isinstance(precision, (int, float)) or not 0 < precision < 1:
        raise DataError(f"precision: got {precision!r}; allowed: 0 < precision < 1 (relative bracket width)")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise DataError(f"threshold: got {threshold!r}; allowed: 0 < threshold <= 1 (train accuracy)")
    if max_fits is not None:
        _check_int("max_fits", max_fits, 1, 10**6)
    return n_min, n_max


def _config_for(n: int, total: int, config: Any, budget: str) -> Any:
    """``config`` for an n-example fit: with budget 'steps', the full set's optimizer steps.

    The learning rate needs no rescaling: it decays every ``lr_decay_steps`` optimizer steps,
    whatever the set's size, so equal steps give the full set's schedule exactly.
    """
    if budget == "epochs" or n == total:
        return config
    per_epoch_full = math.ceil(total / config.batch_size)
    per_epoch = math.ceil(n / config.batch_size)
    factor = per_epoch_full / per_epoch
    return dataclasses.replace(config, max_epochs=math.ceil(config.max_epochs * factor))


def _fit_at(n: int, model_factory: Callable, data: Any, config: Any, seed: int) -> FitResult:
    """One fit from a fresh model on a seeded n-example subset (nested in larger ones) with random labels.

    Subsets train without a test split (only train accuracy decides); the full-set fit keeps it
    so that it is the very fit the random_labels check makes.
    """
    from . import training

    if n == len(data.train_x):
        return training.fit(model_factory, data, config)
    subset = data.subset(n, seed=seed)
    subset = subset.replace(test_x=subset.test_x[:0], test_y=subset.test_y[:0])
    return training.fit(model_factory, subset, config)


def _row(n: int, run: FitResult, threshold: float, reused: bool) -> dict[str, Any]:
    return {"n": n, "fitted": fitted(run, threshold),
            "train_accuracy": float(run.train_accuracy), "epochs": int(run.epochs),
            "epochs_to_fit": run.epochs_to_fit, "stop_reason": run.stop_reason,
            "seconds": round(float(run.total_seconds), 4), "reused": reused}


def _next_size(lo: int, hi: int | None, n_min: int, n_max: int, tried: Mapping[int, Any]) -> int | None:
    """The next size to try: n_max first, halve until one fits, then bisect (None when bracketed)."""
    if n_max not in tried:
        return n_max
    if hi is None:
        return None  # everything up to n_max memorized
    if lo == 0:  # nothing memorized yet: keep halving towards n_min
        if n_min in tried:
            return None
        return max(n_min, (hi + 1) // 2) if (hi + 1) // 2 < hi else n_min
    return (lo + hi) // 2


def capacity_search(model_factory: Callable, data: Any, *, config: Any = None, threshold: float = 0.99,
                    n_min: int | None = None, n_max: int | None = None, precision: float = 0.05,
                    seed: int = 0, max_fits: int | None = None, label_mode: str = "paper",
                    budget: str = "steps",
                    known_fits: MutableMapping[int, FitResult] | None = None) -> CapacityResult:
    """Largest n whose random labels ``model_factory()`` memorizes (train accuracy >= threshold).

    Starts at ``n_max`` (default: the whole training set; one fit answers "does it memorize
    everything?"), halves until a size is memorized, then bisects until the bracket is
    within max(1, precision * upper end). Every fit trains a fresh model on a seeded subset
    (subsets are nested: a smaller one is a prefix of the same permutation) whose labels are
    redrawn uniformly (``CorruptionSpec('random_labels', seed, mode=label_mode)``) with
    ``config``'s budget. ``budget="steps"`` (default) gives every subset the optimizer steps and
    the learning-rate schedule of a full-set fit (max_epochs rescaled by the ratio of steps per
    epoch; the rate decays per optimizer step, so it follows), so that a smaller set is not
    also trained less: n* then measures the model, not a shrinking step count.
    ``budget="epochs"`` uses ``config`` as given (cheaper, but small sets get very few steps).
    ``known_fits`` maps sizes to fits already made with exactly these
    settings (e.g. the random-labels check's run), which are reused rather than repeated;
    the search adds its new fits to it.
    """
    from .corruptions import CorruptionSpec
    from .settings import FitConfig

    started = time.perf_counter()
    n_min, n_max = _validated_bounds(data, n_min, n_max, precision, threshold, max_fits)
    if budget not in ("steps", "epochs"):
        raise DataError(f"budget: got {budget!r}; allowed: 'steps' (same optimizer steps as the full "
                        "set) or 'epochs' (config as given)")
    config = dataclasses.replace(config if config is not None else FitConfig(),
                                 corruption=CorruptionSpec(name="random_labels", seed=seed, mode=label_mode),
                                 target_accuracy=float(threshold))
    tried: dict[int, dict[str, Any]] = {}
    fits: list[dict[str, Any]] = []
    num_parameters = 0
    lo, hi = 0, None
    complete = True
    while True:
        if hi is not None and lo > 0 and hi - lo <= max(1, precision * hi):
            break
        n = _next_size(lo, hi, n_min, n_max, tried)
        if n is None:
            break
        reused = known_fits is not None and n in known_fits
        if not reused and max_fits is not None and sum(not f["reused"] for f in fits) >= max_fits:
            complete = False
            break
        run = known_fits[n] if reused else _fit_at(n, model_factory, data,
                                                   _config_for(n, n_max, config, budget), seed)
        if known_fits is not None:
            known_fits[n] = run
        num_parameters = num_parameters or int(run.num_parameters)
        row = _row(n, run, threshold, reused)
        tried[n] = row
        fits.append(row)
        if row["fitted"]:
            lo = max(lo, n)
        else:
            hi = n if hi is None else min(hi, n)
    if not num_parameters:
        from .models import count_parameters

        num_parameters = count_parameters(model_factory())
    d = math.prod(tuple(data.train_x.shape[1:]))
    return CapacityResult(
        n_star=lo, n_min=n_min, n_max=n_max, bracket=(lo, hi), memorized_all=lo == n_max,
        num_parameters=num_parameters, params_per_example=num_parameters / lo if lo else None,
        input_dim=d, theorem1_weights=2 * lo + d, threshold=float(threshold), precision=float(precision),
        seed=seed, complete=complete,
        seconds=time.perf_counter() - started, fits=fits, budget=budget)


def check_capacity(model_factory: Callable, data: Any, settings: Any,
                   cache: RunCache | None = None) -> CheckResult:
    """Passes when the model memorizes random labels on at least ``settings.min_capacity`` examples.

    ``min_capacity`` defaults to the whole training set given (after ``train_size``);
    ``capacity_budget`` and ``capacity_precision`` are the search's ``budget`` and ``precision``. The
    search's first fit (all examples) is the random-labels check's fit (same
    :func:`~rethink_checks.run_cache.run_key`): it is taken from ``cache`` when present and
    stored there otherwise, the cache counting the hit or miss.
    """
    started = time.perf_counter()
    seed = int(settings.seed)
    train_size = getattr(settings, "train_size", None)
    if train_size is not None and train_size < len(data.train_x):
        data = data.subset(train_size, seed=seed)
    total = len(data.train_x)
    minimum = settings.min_capacity if settings.min_capacity is not None else total
    if minimum > total:
        raise DataError(f"min_capacity: got {minimum} but the check trains on {total} examples "
                        f"(raise train_size or lower min_capacity)")
    # test labels corrupted or not, the train-side fit is the same; only reuse the plain case
    shareable = cache is not None and not getattr(settings, "corrupt_test_labels", False)
    key = run_key("random_labels", 1.0, settings) if shareable else None
    full = cache.lookup(key) if key is not None else None
    cached = full is not None
    known: dict[int, FitResult] = {total: full} if cached else {}
    result = capacity_search(model_factory, data, config=settings.fit, threshold=settings.memorize_threshold,
                             precision=settings.capacity_precision, seed=seed,
                             label_mode=getattr(settings, "label_mode", "paper"),
                             budget=getattr(settings, "capacity_budget", "steps"), known_fits=known)
    if key is not None and not cached and total in known:
        cache.store(key, known[total])  # the random_labels check can reuse the full-set fit
    passed = result.n_star >= minimum
    metrics = {
        "n_star": result.n_star, "n_train": total, "min_capacity": minimum,
        "memorized_all": result.memorized_all, "num_parameters": result.num_parameters,
        "params_per_example": result.params_per_example, "theorem1_weights": result.theorem1_weights,
        "input_dim": result.input_dim, "bracket_low": result.bracket[0], "bracket_high": result.bracket[1],
        "fits": sum(not f["reused"] for f in result.fits), "complete": result.complete,
        "threshold": result.threshold, "budget": result.budget, "seconds": round(result.seconds, 3),
    }
    ppe = "n/a" if result.params_per_example is None else f"{result.params_per_example:.1f}"
    message = (f"memorizes random labels on n* = {result.n_star} of {total} examples "
               f"(bracket {result.bracket}, {metrics['fits']} fits); {result.num_parameters} parameters = "
               f"{ppe} per memorized example; Theorem 1 needs 2n* + d = {result.theorem1_weights}")
    return CheckResult(check="capacity", passed=passed,
                       criterion=f"n* >= {minimum}: random labels memorized (train accuracy >= "
                                 f"{result.threshold}) on at least {minimum} examples",
                       message=message, metrics=metrics, tables={"fits": result.fits},
                       seconds=time.perf_counter() - started,
                       summary=table_summary(key=[key_metric("n*", result.n_star)]))

