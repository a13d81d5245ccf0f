"""What a check is: one :class:`Check` object, the single place that describes it.

A check names the fits it needs, runs them (``run``, one seed), judges its metrics
(``judge``, the same function for one seed's metrics and for the means over seeds), and says
which metrics it reports, which one the summary table's key column and the baselines show,
its legend and docs line, and the settings fields it reads. Everything that lists checks
(settings validation, plugin options, seeds, expectations, baselines, the table legend, the
docs) reads :mod:`rethink_checks.checks.registry`, which holds these objects.
"""
from __future__ import annotations

import importlib

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..results import CheckResult

__all__ = ["Check", "Verdict", "EVERY_SEED", "deferred"]

#: the verdict over seeds of a check judged seed by seed
EVERY_SEED = "every seed passes"


@dataclass(frozen=True)
class Verdict:
    """A judgement of a check's metrics: passed, and what failed (topic -> sentence)."""

    passed: bool
    problems: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The problems as one message, in the order the judge found them."""
        return "; ".join(self.problems.values())


#: ``judge(metrics, settings) -> Verdict``: metrics of one seed, or their means over seeds
#: (then ``metrics["seeds"]`` holds how many and booleans mean "every seed")
Judge = Callable[[Mapping[str, Any], Any], Verdict]
#: ``run(model_factory, data, settings, cache) -> CheckResult`` for one seed
Run = Callable[..., CheckResult]


def deferred(module: str, function: str) -> Run:
    """A check's ``run`` that imports ``rethink_checks.<module>.<function>`` when it first runs.

    Listing checks (the plugin does at collection) then loads neither torch nor a heavy check
    body (the memorization check, the mislabel finder).
    """
    def run(model_factory: Any, data: Any, settings: Any, cache: Any = None) -> CheckResult:
        impl = getattr(importlib.import_module(f"rethink_checks.{module}"), function)
        return impl(model_factory, data, settings, cache)

    run.__name__ = run.__qualname__ = function
    run.__doc__ = f"``rethink_checks.{module}.{function}``, imported when the check first runs."
    return run


@dataclass(frozen=True)
class Check:
    """One check: how it runs, how it is judged, and how it is shown.

    ``judged_on_means``: with several seeds the verdict is ``judge`` applied to the means of the
    seeds' metrics (a noisy per-seed quantity such as a slowdown ratio); otherwise every seed
    must pass on its own. ``derive`` recomputes metrics that are not means (the worst mean
    slowdown) after the averaging, before ``judge``; ``key_from_means`` shows ``key_metric``'s
    mean in the table over seeds instead of the mean of the seeds' key values.
    """

    name: str
    run: Run
    doc: str
    judge: Judge | None = None
    judged_on_means: bool = False
    fits: tuple[str, ...] = ()          # the run-cache names of the fits it trains or reuses
    metrics: tuple[str, ...] = ()       # the metrics saved baselines compare (report.baselines)
    key_metric: str | None = None       # the metric of the table's key column
    legend: str = ""                    # the key column's legend line (label: meaning)
    settings: tuple[str, ...] = ()      # the CheckSettings fields it reads
    word: str | None = None             # "criterion met" in messages: fitted, memorized, ...
    over_seeds: str = EVERY_SEED        # how several seeds make one verdict (docs, criterion)
    derive: Callable[[dict[str, Any]], None] | None = None
    key_from_means: bool = False
    key_format: tuple[str, str] = ("", "{}")  # the key column's label and str.format template
    seed_columns: tuple[str, ...] = ()  # metrics shown per seed in tables["seeds"]
    mean_columns: tuple[str, ...] = ()  # metrics whose mean a passing multi-seed message shows
    on_request: bool = False            # run only when selected by name (not in a plain --rethink run)
    keywords: tuple[str, ...] = ()      # extra -k keywords its items match (a family it belongs to)

    def __call__(self, model_factory: Any, data: Any, settings: Any, cache: Any = None) -> CheckResult:
        """One seed of the check: ``run(model_factory, data, settings, cache)``."""
        return self.run(model_factory, data, settings, cache)

    def judged(self, metrics: Mapping[str, Any], settings: Any) -> Verdict:
        """``judge(metrics, settings)``; a check without a judge passes on its own ``run``."""
        if self.judge is None:
            return Verdict(True)
        return self.judge(metrics, settings)
