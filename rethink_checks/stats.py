"""Small statistics for repeated fits, torch-free and without scipy: Student t and intervals.

``interval(values)`` gives the mean, the sample standard deviation (ddof=1) and the 95%
confidence interval of the mean, ``mean -+ t_{0.975, n-1} * std / sqrt(n)``. ``welch_noise``
is the 95% noise band of a difference of two means (Welch's t with Satterthwaite's degrees of
freedom), used by the noise-aware baseline rules in :mod:`rethink_checks.report.baselines`.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .errors import DataError

__all__ = ["t_quantile", "Interval", "interval", "welch_noise", "ci_text", "over_limit"]

# two-sided 95% quantiles t_{0.975, df} for df = 1..30 (standard tables)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_Z975 = 1.959964


def t_quantile(df: float) -> float:
    """t_{0.975, df}: the table for df <= 30 (a fractional df rounds down, the wider band),
    the Cornish-Fisher expansion beyond (error < 1e-3); ``inf`` for df < 1."""
    if not df >= 1:  # also NaN
        return math.inf
    if df <= 30:
        return _T975[int(df) - 1]
    z = _Z975
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


class Interval(NamedTuple):
    """Mean, sample std (ddof=1) and 95% interval of the mean of ``n`` values (None for n < 2)."""

    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def half_width(self) -> float | None:
        return None if self.ci_high is None else self.ci_high - self.mean


def interval(values: Iterable[float]) -> Interval:
    """The mean of ``values`` with its Student-t 95% interval (one value: no spread known)."""
    xs = [float(x) for x in values]
    if not xs:
        raise DataError("interval: no values given (need at least one number)")
    n = len(xs)
    if n >= 2 and all(x == xs[0] for x in xs):  # no spread: exactly the value (no rounding noise)
        return Interval(n, xs[0], 0.0, xs[0], xs[0])
    mean = math.fsum(xs) / n
    if n < 2:
        return Interval(n, mean, None, None, None)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(n - 1) * std / math.sqrt(n)
    return Interval(n, mean, std, mean - half, mean + half)


def welch_noise(std_a: float | None, n_a: int, std_b: float | None, n_b: int) -> float:
    """The 95% noise band of ``mean_a - mean_b``: ``t_{0.975, df} * sqrt(se_a^2 + se_b^2)``.

    ``se = std / sqrt(n)``; a side with one value (or no std) contributes no noise, so two
    single runs give 0 (a plain comparison). ``df`` is Welch-Satterthwaite's.
    """
    parts = [(s * s / n, n) for s, n in ((std_a, n_a), (std_b, n_b))
             if s is not None and n >= 2 and math.isfinite(s)]
    var = sum(v for v, _ in parts)
    if var <= 0:
        return 0.0
    df = var ** 2 / sum(v * v / (n - 1) for v, n in parts)
    return t_quantile(df) * math.sqrt(var)


def ci_text(metrics: Mapping[str, Any], name: str, spec: str = ".4f") -> str:
    """``low..high``: the 95% interval of aggregated metric ``name`` (``n/a`` without one)."""
    low, high = metrics.get(f"{name}.ci_low"), metrics.get(f"{name}.ci_high")
    return "n/a" if low is None else f"{format(low, spec)}..{format(high, spec)}"


def over_limit(metrics: Mapping[str, Any], name: str, limit: float, spec: str = ".4f") -> str:
    """``(> limit)`` after a value over its limit; on means over seeds (``metrics["seeds"]``)
    ``(95% CI low..high; > limit)``."""
    return f"(95% CI {ci_text(metrics, name, spec)}; > {limit})" if "seeds" in metrics else f"(> {limit})"
