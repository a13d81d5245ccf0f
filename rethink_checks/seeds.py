"""Several seeds per check: run a check once per derived seed, then one verdict with intervals.

Seed ``i`` of ``n`` (``CheckSettings.seeds``) is :func:`seed_for`: the base ``seed`` itself for
``i = 0`` (so seed 0 of a 3-seed run is the 1-seed run, and shares its cached fits) and
``seeding.derive_seed(seed, "repeat:i") % 1_000_000`` after. The seed sets everything random in a fit:
the training subset (``train_size``), the initialization, the batch order and augmentation,
and the corruption draw (labels, pixel permutation, noise). Every seed's fits go through the
same run cache, so ``slowdown`` reuses each seed's memorization fits.

Aggregation (:func:`aggregate`): a numeric metric becomes the mean over seeds with
``<m>.std`` (sample, ddof=1), ``<m>.ci_low`` and ``<m>.ci_high`` (95%, Student t, see
:mod:`rethink_checks.stats`), and ``<m>.n`` when fewer seeds than all had a value; a boolean
becomes "every seed" with ``<m>.count`` (how many were true); a string the common value, or
the distinct values joined by ``|``. ``tables["seeds"]`` holds one row per seed. How a check's
seeds make one verdict is its registry entry's (``Check.judged_on_means``, ``Check.over_seeds``;
docs/checks.md): its own ``judge`` on the means, or every seed passes.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from .checks.base import Check
from .checks.registry import get
from .results import CheckResult, key_metric, table_summary
from .stats import ci_text, interval

__all__ = ["seed_for", "seed_settings", "run_seeds", "aggregate", "aggregate_metrics"]


def seed_for(base: int, i: int) -> int:
    """Seed ``i`` of a repeated check: ``base`` for i = 0, else derived from base and i."""
    if i == 0:
        return int(base)
    from .seeding import derive_seed

    return derive_seed(int(base), f"repeat:{i}") % 1_000_000  # short enough to read in a table


def seed_settings(settings: Any, seed: int) -> Any:
    """``settings`` for one seed: that seed for data, corruption and fit, and ``seeds=1``."""
    return dataclasses.replace(settings, seed=seed, seeds=1,
                               fit=dataclasses.replace(settings.fit, seed=seed))


def run_seeds(check: Check, model_factory: Callable, data: Any, settings: Any, cache: Any) -> CheckResult:
    """Run ``check`` once per seed (``settings.seeds`` of them) and aggregate the results."""
    seeds = [seed_for(settings.seed, i) for i in range(settings.seeds)]
    results = [check.run(model_factory, data, seed_settings(settings, s), cache) for s in seeds]
    return aggregate(check.name, results, seeds, settings)


# ---------------------------------------------------------------- aggregation

def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x


def aggregate_metrics(values: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-seed metric dicts -> one dict of means, intervals, all-flags and counts."""
    out: dict[str, Any] = {}
    names = list(dict.fromkeys(k for m in values for k in m))
    for name in names:
        xs = [m.get(name) for m in values]
        present = [x for x in xs if x is not None]
        if not present:
            out[name] = None
        elif all(isinstance(x, bool) for x in present):
            out[name] = all(present) and len(present) == len(xs)
            out[f"{name}.count"] = sum(present)
        elif all(_is_number(x) for x in present):
            iv = interval(present)
            out[name] = iv.mean
            out[f"{name}.std"], out[f"{name}.ci_low"], out[f"{name}.ci_high"] = (
                iv.std, iv.ci_low, iv.ci_high)
            if len(present) < len(xs):
                out[f"{name}.n"] = len(present)
        else:
            distinct = list(dict.fromkeys(str(x) for x in present))
            out[name] = present[0] if len(distinct) == 1 else "|".join(distinct)
    return out


def _half(metrics: dict[str, Any], name: str) -> float | None:
    high, mean = metrics.get(f"{name}.ci_high"), metrics.get(name)
    return None if high is None or mean is None else high - mean


def _seed_rows(check: Check, results: Sequence[CheckResult], seeds: Sequence[int]) -> list[dict]:
    return [{"seed": s, "passed": r.passed,
             **{k: r.metrics[k] for k in check.seed_columns if k in r.metrics}, "message": r.message}
            for s, r in zip(seeds, results)]


def aggregate(name: str, results: Sequence[CheckResult], seeds: Sequence[int],
              settings: Any) -> CheckResult:
    """One CheckResult from a check's per-seed results (see the module docstring).

    The verdict is the check's own ``judge`` on the means when the registry says it is judged
    on means (``Check.judged_on_means``), else every seed must pass.
    """
    check = get(name)
    n = len(results)
    metrics = aggregate_metrics([r.metrics for r in results])
    passed_count = sum(r.passed for r in results)
    metrics.update(seeds=n, seeds_passed=passed_count)
    if check.derive is not None:
        check.derive(metrics)
    verdict = check.judged(metrics, settings) if check.judged_on_means else None
    passed = verdict.passed if verdict is not None else passed_count == n
    runs = {f"{key}@seed={s}": run for s, r in zip(seeds, results) for key, run in r.runs.items()}
    tables = {"seeds": _seed_rows(check, results, seeds)}
    for key in dict.fromkeys(k for r in results for k in r.tables):
        tables[key] = [{"seed": s, **row} for s, r in zip(seeds, results)
                       for row in r.tables.get(key, [])]
    criterion = f"{results[0].criterion}; over {n} seeds: {check.over_seeds}"
    message = f"{passed_count} of {n} seeds {check.word or 'passed'}"
    failing = next(((s, r) for s, r in zip(seeds, results) if not r.passed), None)
    if verdict is not None and not verdict.passed:
        message += "; " + verdict.text
        if failing is not None:  # a seed failed on its own too: say how
            message += f"; seed {failing[0]}: {failing[1].message}"
    elif not passed and failing is not None:
        message += f"; seed {failing[0]}: {failing[1].message}"
    else:
        message += _means_text(check, metrics)
    summary = _summary(results, metrics)
    if check.key_from_means and check.key_metric:  # the judged value, not a mean of seeds' values
        value = metrics.get(check.key_metric)
        summary["key"] = [] if value is None else [
            {**key_metric(*check.key_format[:1], value, check.key_format[1]),
             "pm": _half(metrics, check.key_metric)}]
    return CheckResult(name, passed, criterion, message, metrics, tables=tables, runs=runs,
                       summary=summary)


def _means_text(check: Check, metrics: dict[str, Any]) -> str:
    """``; epochs_to_fit mean 12.3 (95% CI 10.1..14.5)`` for the metrics a passing check shows."""
    shown: list[str] = []
    for col in check.mean_columns:
        if col.endswith(".*"):  # every <prefix>.<name> but the key metric
            prefix = col[:-1]
            shown += sorted(k for k in metrics if k.startswith(prefix) and k.count(".") == 1
                            and k != check.key_metric and metrics[k] is not None)
        elif metrics.get(col) is not None:
            shown.append(col)
    return "".join(f"; {k} mean {metrics[k]:.4g} (95% CI {ci_text(metrics, k, '.4g')})" for k in shown)


def _summary(results: Sequence[CheckResult], metrics: dict[str, Any]) -> dict[str, Any]:
    """The table row: means of the seeds' summary columns with their 95% half-widths."""
    cols = {}
    for col in ("train", "test", "epochs"):
        xs = [r.summary.get(col) for r in results]
        present = [x for x in xs if _is_number(x)]
        if present:
            iv = interval(present)
            cols[col], cols[f"{col}_pm"] = iv.mean, iv.half_width
        else:
            cols[col] = None
    key = []
    for i, entry in enumerate(results[0].summary.get("key") or []):
        values = [(r.summary.get("key") or [None] * (i + 1))[i] for r in results]
        nums = [e.get("value") for e in values if e and _is_number(e.get("value"))]
        if len(nums) == len(values):
            iv = interval(nums)
            key.append({**key_metric(entry["label"], iv.mean, entry.get("format", "{}")),
                        "pm": iv.half_width})
        else:
            key.append(dict(entry))
    out = table_summary(train=cols["train"], test=cols["test"], epochs=cols["epochs"], key=key)
    out.update({k: x for k, x in cols.items() if k.endswith("_pm")})
    out["seeds"] = len(results)
    return out
