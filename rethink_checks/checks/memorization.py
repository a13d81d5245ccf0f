"""The memorization check: clean examples are fitted before corrupted ones (the criterion and
the mislabel finder are :mod:`rethink_checks.memorization`, imported when the check runs)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..results import CheckResult
from .base import Check
from .common import SINGLE_FIT_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset
    from ..run_cache import RunCache
    from ..settings import CheckSettings

__all__ = ["CHECK", "check_memorization"]


def check_memorization(model_factory: Callable, data: "Dataset", settings: "CheckSettings",
                       cache: "RunCache | None" = None) -> CheckResult:
    """Clean before noisy (rethink_checks.memorization, imported when run)."""
    from ..memorization import check_memorization as impl

    return impl(model_factory, data, settings, cache)


CHECK = Check(
    name="memorization", run=check_memorization,
    doc="with memorization_p of the labels redrawn, the epoch each example is fitted detects the "
        "corrupted ones (ROC AUC >= min_memorization_auc)",
    fits=("partial_labels",), metrics=SINGLE_FIT_COLUMNS, key_metric="auc",
    legend="auc: memorization, fit epoch as a detector of corrupted labels",
    settings=("memorization_p", "min_memorization_auc", "fit_threshold", "memorize_threshold"),
    seed_columns=SINGLE_FIT_COLUMNS + ("auc",), mean_columns=("auc", "epochs_to_fit", "test_accuracy"))
