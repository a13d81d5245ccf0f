"""The memorization check: clean examples are fitted before corrupted ones (the criterion and
the mislabel finder are :mod:`rethink_checks.memorization`, imported when the check runs)."""
from __future__ import annotations

from .base import Check, deferred
from .common import SINGLE_FIT_COLUMNS

__all__ = ["CHECK", "check_memorization"]

#: clean before noisy (rethink_checks.memorization.check_memorization, imported when run)
check_memorization = deferred("memorization", "check_memorization")

CHECK = Check(
    name="memorization", run=check_memorization,
    doc="with memorization_p of the labels redrawn, the epoch each example is fitted detects the "
        "corrupted ones (ROC AUC >= min_memorization_auc)",
    fits=("partial_labels",), metrics=SINGLE_FIT_COLUMNS, key_metric="auc",
    legend="auc: memorization, fit epoch as a detector of corrupted labels",
    settings=("memorization_p", "min_memorization_auc", "fit_threshold", "memorize_threshold"),
    seed_columns=SINGLE_FIT_COLUMNS + ("auc",), mean_columns=("auc", "epochs_to_fit", "test_accuracy"))
