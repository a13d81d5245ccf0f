"""The true-labels check: the model fits the real training data within the budget."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..fits import fit_message, num_classes, run_record
from ..results import CheckResult
from .base import Check
from .common import SINGLE_FIT_COLUMNS, SINGLE_FIT_MEANS, fit_summary, fitted_verdict, single_fit

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset
    from ..run_cache import RunCache
    from ..settings import CheckSettings

__all__ = ["CHECK", "check_true_labels"]


def check_true_labels(model_factory: Callable, data: "Dataset", settings: "CheckSettings",
                      cache: "RunCache | None" = None) -> CheckResult:
    """The model fits the real training data within the budget."""
    t = settings.fit_threshold
    run, key, metrics = single_fit("true_labels", 0.0, t, model_factory, data, settings, cache)
    passed = CHECK.judged(metrics, settings).passed
    msg = (f"fitted true labels in {run.epochs_to_fit} epochs" if passed
           else fit_message("true labels not fitted", run, t, num_classes(data)))
    return CheckResult("true_labels", passed, f"train accuracy >= {t} on true labels within "
                       f"{settings.fit.max_epochs} epochs", msg, metrics,
                       runs={"true_labels": run_record(run, key)}, summary=fit_summary(run))


CHECK = Check(
    name="true_labels", run=check_true_labels, judge=fitted_verdict,
    doc="the model fits the real training labels (train accuracy >= fit_threshold)",
    fits=("true_labels",), metrics=SINGLE_FIT_COLUMNS,
    settings=("fit_threshold", "fit"), word="fitted",
    seed_columns=SINGLE_FIT_COLUMNS, mean_columns=SINGLE_FIT_MEANS)
