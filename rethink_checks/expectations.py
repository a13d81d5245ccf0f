"""Expectations both ways: a check whose criterion must NOT be met (``CheckSettings.expect``).

A DP-SGD or heavily regularized model must not memorize random labels; with
``expect={"random_labels": "not_memorized"}`` its item passes when the criterion is missed
and fails when it is met. The metrics stay as measured; ``expected`` ("met" / "not_met") and
``criterion_met`` are added and the message says which way was expected. With several seeds
every seed must meet the expectation: for the checks judged seed by seed, "not met" passes
only when no seed met the criterion; for the mean-judged ones (``Check.judged_on_means`` in the
registry: slowdown, partial_labels, regularizers) when the mean criterion is missed.
"""
from __future__ import annotations

from typing import Any

from .results import CheckResult
from .checks.registry import REGISTRY

__all__ = ["apply_expectation"]


def apply_expectation(result: CheckResult, settings: Any) -> CheckResult:
    """``result`` with its verdict turned by ``settings.expect[result.check]`` (in place)."""
    want = (getattr(settings, "expect", None) or {}).get(result.check)
    if want is None:
        return result
    met = bool(result.passed)
    seeds_met = result.metrics.get("seeds_passed")
    check = REGISTRY.get(result.check)
    word = (check.word if check is not None else None) or "met"
    result.metrics["expected"] = want
    result.metrics["criterion_met"] = met
    if want == "met":
        result.message = f"expected {word}: {result.message}"
        return result
    if seeds_met is not None and not (check is not None and check.judged_on_means):
        passed = seeds_met == 0  # every seed must miss the criterion
    else:
        passed = not met
    result.passed = passed
    result.criterion = f"expected NOT met: {result.criterion}"
    rows = result.tables.get("seeds") or []
    met_rows = [r for r in rows if r.get("passed")]
    if passed:
        result.message = f"expected not {word}, and it was not: {result.message}"
    elif rows and met_rows:
        result.message = (f"expected not {word}, but {len(met_rows)} of {len(rows)} seeds "
                          f"{word}; seed {met_rows[0]['seed']}: {met_rows[0]['message']}")
    else:
        result.message = f"expected not {word}, but the criterion was met: {result.message}"
    return result
