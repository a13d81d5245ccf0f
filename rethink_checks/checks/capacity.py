"""The capacity check: the model memorizes random labels on at least ``min_capacity`` examples
(the search itself is :mod:`rethink_checks.capacity`, imported when the check runs)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..fits import prepared, seconds_left
from ..results import CheckResult
from .base import Check

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset
    from ..run_cache import RunCache
    from ..settings import CheckSettings

__all__ = ["CHECK", "check_capacity"]


def check_capacity(model_factory: Callable, data: "Dataset", settings: "CheckSettings",
                   cache: "RunCache | None" = None) -> CheckResult:
    """Effective capacity search (rethink_checks.capacity, imported when run)."""
    from ..capacity import check_capacity as impl

    fit = dataclasses.replace(settings.fit, max_seconds=seconds_left(settings.fit.max_seconds))
    return impl(model_factory, prepared(data, settings), dataclasses.replace(settings, fit=fit),
                cache)


CHECK = Check(
    name="capacity", run=check_capacity,
    doc="the model memorizes random labels on at least min_capacity examples (n*, bisected)",
    fits=("random_labels",), key_metric="n_star",
    legend="n*: effective capacity",
    settings=("min_capacity", "capacity_precision", "capacity_budget", "memorize_threshold"),
    seed_columns=("n_star",), mean_columns=("n_star",))
