"""RunCache: the fits of one model, keyed by randomization, p and settings key, shared by its checks.

The cache owns its key: :func:`run_key` is the one place a key is built (by the checks, by
the capacity search, and when :meth:`RunCache.seed_from` reads keys back from JSON), and
the cache counts its own hits and misses. ``rethink_checks.checks`` re-exports
``RunCache`` (``from rethink_checks.checks import RunCache``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import InputTypeError
from .results import CheckResult, FitResult

__all__ = ["RunCache", "RunKey", "run_key", "parse_run_key"]

#: ``(randomization name, p, settings key)``; JSON carries it as a 3-item list ``cache_key``.
RunKey = tuple[str, float, str]


def run_key(name: str, p: float, settings: Any) -> RunKey:
    """The cache key of the fit of randomization ``name`` at level ``p`` under ``settings``.

    ``settings`` is a ``CheckSettings`` (its ``key()`` digest is used) or an already computed
    settings key string (as stored in a run's ``cache_key``).
    """
    if not isinstance(name, str):
        raise InputTypeError(f"name: need a randomization name (str), got {type(name).__name__}")
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise InputTypeError(f"p: need a number in [0, 1], got {p!r}")
    if isinstance(settings, str):
        digest = settings
    elif callable(getattr(settings, "key", None)):
        digest = settings.key()
    else:
        raise InputTypeError(f"settings: need CheckSettings or a settings key string, got "
                             f"{type(settings).__name__}")
    return (name, float(p), str(digest))


def parse_run_key(raw: Any) -> RunKey | None:
    """A run's JSON ``cache_key`` (``[name, p, settings key]``) as a key; None when malformed."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 3:
        return None
    name, p, digest = raw
    try:
        return run_key(str(name), float(p), str(digest))
    except (TypeError, ValueError):
        return None


class RunCache(dict):
    """``run_key(...) -> FitResult`` for one model, shared by its checks.

    One cache per model: the key does not name the model. Use :meth:`get_or_fit` (or
    :meth:`lookup` and :meth:`store`) so that ``hits`` and ``misses`` count reuse;
    ``seed_from`` restores runs exported by :class:`CheckResult` ``runs`` (each carries its
    ``cache_key``), e.g. from another pytest-xdist worker.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hits = 0
        self.misses = 0

    def lookup(self, key: RunKey) -> FitResult | None:
        """The cached fit for ``key`` (counted as a hit), or None (not counted)."""
        run = self.get(key)
        if run is not None:
            self.hits += 1
        return run

    def store(self, key: RunKey, run: FitResult) -> FitResult:
        """Add a fit that was just trained (counted as a miss); returns it."""
        self.misses += 1
        self[key] = run
        return run

    def get_or_fit(self, key: RunKey, fit: Callable[[], FitResult]) -> FitResult:
        """The cached fit for ``key``, else ``fit()`` stored under it; counts the hit or miss."""
        run = self.lookup(key)
        return run if run is not None else self.store(key, fit())

    def seed_from(self, runs: Mapping[str, Any] | Iterable[Any] | CheckResult) -> int:
        """Add runs (CheckResult, its ``runs`` dict, or run dicts with ``cache_key``); count added.

        Seeded runs count neither as hits nor as misses: they were trained elsewhere.
        """
        if isinstance(runs, CheckResult):
            runs = runs.runs
        items = runs.values() if isinstance(runs, Mapping) else runs
        added = 0
        for run in items:
            if isinstance(run, CheckResult):
                added += self.seed_from(run)
                continue
            key = parse_run_key(run.get("cache_key")) if isinstance(run, Mapping) else None
            if key is not None and key not in self:
                self[key] = FitResult.from_dict(dict(run))
                added += 1
        return added
