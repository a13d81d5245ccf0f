"""The fits the checks share: one randomization's fit (cached), its data and budget, its metrics.

Every check (``checks``, ``memorization``) trains through :func:`get_run`, which builds the
corruption spec and the stop target, cuts ``max_seconds`` to the check's time budget
(:data:`DEADLINE`, set by ``checks.run_check``) and goes through the run cache. Tests patch
:func:`fit_once`, the one call into ``training.fit``.
"""
from __future__ import annotations

import contextvars
import dataclasses
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .results import FitResult
from .run_cache import RunCache, run_key
from .settings import CheckSettings

if TYPE_CHECKING:  # pragma: no cover
    from .data import Dataset

__all__ = ["run_record", "fit_once", "prepared", "corruption_for", "target_for", "get_run", "DEADLINE",
           "seconds_left", "epochs_to", "num_classes", "run_metrics", "fit_message"]


# ---------------------------------------------------------------- run records

def run_record(run: FitResult, key: tuple) -> dict[str, Any]:
    return {**run.to_dict(), "cache_key": list(key)}


# ---------------------------------------------------------------- fitting

def fit_once(model_factory: Callable, data: "Dataset", config: Any) -> FitResult:
    """The one place checks train: ``training.fit`` looked up at call time (tests patch it)."""
    from . import training

    return training.fit(model_factory, data, config)


def prepared(data: "Dataset", settings: CheckSettings) -> "Dataset":
    from .data import Dataset
    from .errors import DataError

    if not isinstance(data, Dataset):
        raise DataError(f"data: expected a rethink_checks.data.Dataset, got {type(data).__name__}")
    if settings.train_size is not None and settings.train_size < len(data.train_x):
        return data.subset(settings.train_size, seed=settings.seed)
    return data


def corruption_for(name: str, p: float, settings: CheckSettings) -> Any:
    if name == "true_labels":
        return None
    from .corruptions import CorruptionSpec

    if name not in ("partial_labels", "random_labels"):  # input randomizations take no p
        return CorruptionSpec(name=name, seed=settings.seed)
    return CorruptionSpec(name=name, p=p, seed=settings.seed, mode=settings.label_mode,
                          corrupt_test_labels=settings.corrupt_test_labels)


def target_for(name: str, settings: CheckSettings) -> float:
    base = name.split(":")[-1]
    return settings.fit_threshold if base == "true_labels" else settings.memorize_threshold


def get_run(name: str, p: float, model_factory: Callable, data: "Dataset",
             settings: CheckSettings, cache: RunCache | None,
             config: Any = None) -> tuple[FitResult, tuple]:
    """The fit for randomization ``name`` at ``p``: from the cache, or trained and cached.

    ``name`` may carry a variant prefix (``regularized:random_labels``) when ``config``
    differs from ``settings.fit``; the corruption is the part after the last colon.
    """
    key = run_key(name, p, settings)
    base = name.split(":")[-1]
    config = config if config is not None else settings.fit

    def train() -> FitResult:
        cfg = dataclasses.replace(config, corruption=corruption_for(base, float(p), settings),
                                  target_accuracy=target_for(name, settings),
                                  max_seconds=seconds_left(config.max_seconds),
                                  progress=_labelled(config.progress, name, float(p)))
        return fit_once(model_factory, data, cfg)

    return (train() if cache is None else cache.get_or_fit(key, train)), key


# The deadline of the check running in this context (set by run_check from time_budget).
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("rethink_deadline",
                                                                         default=None)


def seconds_left(max_seconds: float | None) -> float | None:
    """A fit's ``max_seconds``: its own limit, cut to what is left of the check's time budget.

    A fit that starts after the deadline still trains one epoch (the engine's minimum) and
    stops with ``stop_reason == "time_budget"``.
    """
    deadline = DEADLINE.get()
    if deadline is None:
        return max_seconds
    left = max(deadline - time.monotonic(), 1e-6)
    return left if max_seconds is None else min(max_seconds, left)


def _labelled(progress: Callable[[dict], None] | None, name: str,
              p: float) -> Callable[[dict], None] | None:
    """The progress callback with each epoch row tagged by the run it belongs to."""
    if progress is None:
        return None
    return lambda row: progress({**row, "run": name, "p": p})


def epochs_to(run: FitResult, threshold: float) -> tuple[int | None, int | None]:
    """(epochs, steps) when train accuracy first reached ``threshold``, from the curves."""
    curves = run.curves or {}
    accs = curves.get("train_accuracy") or []
    epochs = curves.get("epoch") or list(range(1, len(accs) + 1))
    steps = curves.get("step") or [None] * len(accs)
    for acc, epoch, step in zip(accs, epochs, steps):
        if acc is not None and not _isnan(acc) and acc >= threshold:
            return int(epoch), (int(step) if step is not None else None)
    if not accs and run.train_accuracy >= threshold and run.epochs_to_fit is not None:
        return run.epochs_to_fit, run.steps_to_fit
    return None, None


def _isnan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def num_classes(data: "Dataset") -> int:
    return int(data.num_classes)


def run_metrics(run: FitResult, threshold: float) -> dict[str, Any]:
    return {
        "fitted": bool(run.train_accuracy >= threshold and not run.diverged),
        "threshold": threshold,
        "train_accuracy": run.train_accuracy,
        "test_accuracy": run.test_accuracy,
        "epochs_to_fit": run.epochs_to_fit,
        "steps_to_fit": run.steps_to_fit,
        "epochs": run.epochs,
        "stop_reason": run.stop_reason,
        "seconds": round(float(run.total_seconds), 3),
        "train_seconds": round(float(run.train_seconds), 3),   # the optimizer steps
        "eval_seconds": round(float(getattr(run, "eval_seconds", 0.0)), 3),  # evaluations
        "final_test_seconds": round(float(getattr(run, "final_test_seconds", 0.0)), 3),  # of which the whole test split
        "best_test_accuracy": run.best_test_accuracy,
        "best_test_epoch": run.best_test_epoch,
        "num_parameters": run.num_parameters,
        "device": run.device,
        "recipe": run.settings.get("recipe"),  # the fit's optimizer, schedule, loss, precision
    }


def fit_message(what: str, run: FitResult, threshold: float, classes: int | None = None) -> str:
    """Why a fit missed ``threshold``; with ``classes``, says so when the loss blew up."""
    if run.diverged:
        return f"{what}: training diverged at epoch {run.diverged_epoch} (loss not finite)"
    return (f"{what}: train accuracy {run.train_accuracy:.4f} < {threshold} after "
            f"{run.epochs} epochs (stopped: {run.stop_reason}){blow_up_note(run, classes)}")


def blow_up_note(run: FitResult, classes: int | None) -> str:
    """A note when a fit's epoch loss rose above twice a uniform guess's ln(k): the steps blew
    the weights up, an optimizer failure rather than missing capacity (measured: a BN CNN at
    lr 0.01 on shuffled CIFAR-10 pixels peaked at 62 in epoch 2, then sat at chance; docs/checks.md)."""
    if classes is None or classes < 2:
        return ""
    curve = [(e, loss) for e, loss in zip(run.curves.get("epoch") or [], run.curves.get("train_loss") or [])
             if loss is not None and math.isfinite(loss)]
    if not curve:
        return ""
    epoch, peak = max(curve, key=lambda item: item[1])
    bound = 2 * math.log(classes)
    if peak <= bound:
        return ""
    return (f"; its training loss peaked at {peak:.3g} in epoch {epoch}, above 2 x ln({classes}) = "
            f"{bound:.2f} (twice a uniform guess's): the steps blew the weights up, a sign of too high a "
            f"learning rate rather than of missing capacity; try a lower lr")
