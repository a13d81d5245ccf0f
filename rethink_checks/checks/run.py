"""Running one check by name: its seeds, its time budget and its expected verdict."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..errors import SettingsError
from ..fits import DEADLINE
from ..results import CheckResult
from ..run_cache import RunCache
from ..settings import CheckSettings, parse_expect
from .registry import get, names

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset

__all__ = ["run_check"]


def run_check(name: str, model_factory: Callable, data: "Dataset",
              settings: CheckSettings | None = None, cache: RunCache | None = None) -> CheckResult:
    """Run check ``name`` and time it; unknown names raise :class:`SettingsError`.

    With ``settings.seeds > 1`` the check runs once per derived seed and the results are
    aggregated (:mod:`rethink_checks.seeds`); ``settings.expect`` then may turn the verdict
    (:mod:`rethink_checks.expectations`). The time budget covers every seed.
    """
    check = get(name)
    settings = settings if settings is not None else CheckSettings()
    if not isinstance(settings, CheckSettings):
        raise SettingsError(f"settings: expected CheckSettings, got {type(settings).__name__}")
    parse_expect(settings.expect, names())  # its check names, against the registry
    start = time.perf_counter()
    budget = settings.time_budget
    token = DEADLINE.set(None if budget is None else time.monotonic() + budget)
    try:
        if settings.seeds > 1:
            from ..seeds import run_seeds

            result = run_seeds(check, model_factory, data, settings, cache)
        else:
            result = check.run(model_factory, data, settings, cache)
    finally:
        DEADLINE.reset(token)
    result.seconds = round(time.perf_counter() - start, 3)
    if budget is not None:
        _note_budget(result, budget)
    from ..expectations import apply_expectation

    return apply_expectation(result, settings)


def _note_budget(result: CheckResult, budget: float) -> None:
    """Record the check's time budget and whether it ran out (a fit stopped for time)."""
    rows = [(name, run) for name, run in result.runs.items()]
    rows += [(f"n={row.get('n')}", row) for row in result.tables.get("fits", [])]  # capacity
    stopped = sorted({name for name, run in rows
                      if isinstance(run, Mapping) and run.get("stop_reason") == "time_budget"})
    if not stopped and result.metrics.get("stop_reason") == "time_budget":  # no fit records (suspects)
        stopped = [result.check]
    result.metrics["time_budget"] = budget
    result.metrics["time_budget_exhausted"] = bool(stopped)
    if stopped:
        result.message += (f" (the check's time budget of {budget:g} s ran out; stopped for "
                           f"time: {', '.join(stopped)})")
