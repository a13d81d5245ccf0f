"""The expressivity check: Theorem 1's network, built on the training data, reproduces random
labels exactly (:mod:`rethink_checks.theory`, imported when the check runs)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..fits import prepared
from ..results import CheckResult
from .base import Check

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset
    from ..run_cache import RunCache
    from ..settings import CheckSettings

__all__ = ["CHECK", "check_expressivity"]


def check_expressivity(model_factory: Callable, data: "Dataset", settings: "CheckSettings",
                       cache: "RunCache | None" = None) -> CheckResult:
    """Theorem 1 and min-norm interpolation (rethink_checks.theory, imported when run)."""
    from ..theory import check_expressivity as impl

    return impl(model_factory, prepared(data, settings), settings, cache)


CHECK = Check(
    name="expressivity", run=check_expressivity,
    doc="Theorem 1's two-layer network reproduces random labels on the training set exactly",
    key_metric="residual", legend="residual: Theorem 1 fit residual",
    settings=("train_size", "label_mode"), seed_columns=("train_accuracy",))
