"""RunCache: the fits of one model, keyed by randomization, p and settings key, shared by its checks.

``rethink_checks.checks`` re-exports it (``from rethink_checks.checks import RunCache``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .results import CheckResult, FitResult

__all__ = ["RunCache"]


class RunCache(dict):
    """``(randomization, p, settings.key()) -> FitResult`` for one model, shared by its checks.

    One cache per model: the key does not name the model. ``seed_from`` restores runs
    exported by :class:`CheckResult` ``runs`` (each carries its ``cache_key``), e.g. from
    another pytest-xdist worker.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hits = 0
        self.misses = 0

    def seed_from(self, runs: Mapping[str, Any] | Iterable[Any] | CheckResult) -> int:
        """Add runs (CheckResult, its ``runs`` dict, or run dicts with ``cache_key``); count added."""
        if isinstance(runs, CheckResult):
            runs = runs.runs
        items = runs.values() if isinstance(runs, Mapping) else runs
        added = 0
        for run in items:
            if isinstance(run, CheckResult):
                added += self.seed_from(run)
                continue
            key = run.get("cache_key") if isinstance(run, Mapping) else None
            if not key or len(key) != 3:
                continue
            k = (str(key[0]), float(key[1]), str(key[2]))
            if k not in self:
                self[k] = FitResult.from_dict(dict(run))
                added += 1
        return added
