"""Several seeds per check: run a check once per derived seed, then one verdict with intervals.

Seed ``i`` of ``n`` (``CheckSettings.seeds``) is :func:`seed_for`: the base ``seed`` itself for
``i = 0`` (so seed 0 of a 3-seed run is the 1-seed run, and shares its cached fits) and
``corruptions.derive_seed(seed, "repeat:i") % 1_000_000`` after. The seed sets everything random in a fit:
the training subset (``train_size``), the initialization, the batch order and augmentation,
and the corruption draw (labels, pixel permutation, noise). Every seed's fits go through the
same run cache, so ``slowdown`` reuses each seed's memorization fits.

Aggregation (:func:`aggregate`): a numeric metric becomes the mean over seeds with
``<m>.std`` (sample, ddof=1), ``<m>.ci_low`` and ``<m>.ci_high`` (95%, Student t, see
:mod:`rethink_checks.stats`), and ``<m>.n`` when fewer seeds than all had a value; a boolean
becomes "every seed" with ``<m>.count`` (how many were true); a string the common value, or
the distinct values joined by ``|``. ``tables["seeds"]`` holds one row per seed. The verdict
rules per check are in :data:`VERDICT_RULES` and docs/checks.md.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from .results import CheckResult, key_metric, table_summary
from .stats import interval

__all__ = ["seed_for", "seed_settings", "run_seeds", "aggregate", "VERDICT_RULES", "WORDS"]

#: how each check turns its seeds into one verdict (the rest: every seed passes)
VERDICT_RULES = {
    "slowdown": "every seed fits every randomization and the mean ratio of each randomization "
                "is <= max_slowdown",
    "partial_labels": "every level fits in every seed and the mean test error never falls by "
                      "more than error_tolerance as p grows",
    "regularizers": "every seed fits without regularizers and the mean gain is <= "
                    "max_regularizer_gain",
}
_EVERY_SEED = "every seed passes"

#: the word for "criterion met" in messages, per check
WORDS = {"true_labels": "fitted", "random_labels": "memorized", "shuffled_pixels": "memorized",
         "random_pixels": "memorized", "gaussian": "memorized", "partial_labels": "fitted"}


def seed_for(base: int, i: int) -> int:
    """Seed ``i`` of a repeated check: ``base`` for i = 0, else derived from base and i."""
    if i == 0:
        return int(base)
    from .corruptions import derive_seed

    return derive_seed(int(base), f"repeat:{i}") % 1_000_000  # short enough to read in a table


def seed_settings(settings: Any, seed: int) -> Any:
    """``settings`` for one seed: that seed for data, corruption and fit, and ``seeds=1``."""
    return dataclasses.replace(settings, seed=seed, seeds=1,
                               fit=dataclasses.replace(settings.fit, seed=seed))


def run_seeds(check: Callable[..., CheckResult], name: str, model_factory: Callable, data: Any,
              settings: Any, cache: Any) -> CheckResult:
    """Run ``check`` once per seed (``settings.seeds`` of them) and aggregate the results."""
    seeds = [seed_for(settings.seed, i) for i in range(settings.seeds)]
    results = [check(model_factory, data, seed_settings(settings, s), cache) for s in seeds]
    return aggregate(name, results, seeds, settings)


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


def _seed_rows(name: str, results: Sequence[CheckResult], seeds: Sequence[int]) -> list[dict]:
    keys = ("train_accuracy", "test_accuracy", "epochs_to_fit", "slowdown.max", "gain", "auc", "n_star")
    return [{"seed": s, "passed": r.passed,
             **{k: r.metrics[k] for k in keys if k in r.metrics}, "message": r.message}
            for s, r in zip(seeds, results)]


def aggregate(name: str, results: Sequence[CheckResult], seeds: Sequence[int],
              settings: Any) -> CheckResult:
    """One CheckResult from a check's per-seed results (see the module docstring)."""
    n = len(results)
    metrics = aggregate_metrics([r.metrics for r in results])
    passed_count = sum(r.passed for r in results)
    metrics.update(seeds=n, seeds_passed=passed_count)
    passed, problems = _verdict(name, results, seeds, metrics, settings)
    runs = {f"{key}@seed={s}": run for s, r in zip(seeds, results) for key, run in r.runs.items()}
    tables = {"seeds": _seed_rows(name, results, seeds)}
    for key in dict.fromkeys(k for r in results for k in r.tables):
        tables[key] = [{"seed": s, **row} for s, r in zip(seeds, results)
                       for row in r.tables.get(key, [])]
    rule = VERDICT_RULES.get(name, _EVERY_SEED)
    criterion = f"{results[0].criterion}; over {n} seeds: {rule}"
    word = WORDS.get(name, "passed")
    message = f"{passed_count} of {n} seeds {word}"
    if problems:
        message += "; " + "; ".join(problems)
    elif not passed:
        s, failing = next((s, r) for s, r in zip(seeds, results) if not r.passed)
        message += f"; seed {s}: {failing.message}"
    else:
        message += _means_text(metrics)
    summary = _summary(results, metrics)
    if name == "slowdown":  # the judged value: the worst mean ratio, not a mean of per-seed worsts
        worst = metrics.get("slowdown.max")
        summary["key"] = [] if worst is None else [
            {**key_metric("slowdown", worst, "{:.2f}x"), "pm": _half(metrics, "slowdown.max")}]
    return CheckResult(name, passed, criterion, message, metrics, tables=tables, runs=runs,
                       summary=summary)


def _means_text(metrics: dict[str, Any]) -> str:
    """``; epochs_to_fit mean 12.3 (95% CI 10.1..14.5)`` for the metrics a passing check shows."""
    shown = [k for k in ("auc", "n_star", "epochs_to_fit", "test_accuracy", "gain")
             if metrics.get(k) is not None]
    shown += sorted(k for k in metrics if k.startswith("slowdown.") and k.count(".") == 1
                    and k != "slowdown.max" and metrics[k] is not None)
    return "".join(f"; {k} mean {metrics[k]:.4g} (95% CI {_ci(metrics, k, '.4g')})" for k in shown)


def _verdict(name: str, results: Sequence[CheckResult], seeds: Sequence[int],
             metrics: dict[str, Any], settings: Any) -> tuple[bool, list[str]]:
    """The check's verdict over seeds and, for the mean-judged checks, what failed."""
    if name == "slowdown":
        return _slowdown_verdict(results, seeds, metrics, settings)
    if name == "partial_labels":
        return _partial_verdict(metrics, settings)
    if name == "regularizers":
        problems = []
        if not metrics.get("fitted_without"):
            problems.append(f"without regularizers {metrics.get('fitted_without.count', 0)} of "
                            f"{len(results)} seeds fit")
        gain = metrics.get("gain")
        if gain is not None and gain > settings.max_regularizer_gain:
            problems.append(f"removing the regularizers costs {gain:.4f} test accuracy on mean "
                            f"(95% CI {_ci(metrics, 'gain')}; > {settings.max_regularizer_gain})")
        return not problems, problems
    return all(r.passed for r in results), []


def _ci(metrics: dict[str, Any], name: str, spec: str = ".4f") -> str:
    low, high = metrics.get(f"{name}.ci_low"), metrics.get(f"{name}.ci_high")
    return "n/a" if low is None else f"{format(low, spec)}..{format(high, spec)}"


def _slowdown_verdict(results: Sequence[CheckResult], seeds: Sequence[int],
                      metrics: dict[str, Any], settings: Any) -> tuple[bool, list[str]]:
    problems = []
    names = [k.split(".", 1)[1] for k in metrics
             if k.startswith("slowdown.") and k.count(".") == 1 and k != "slowdown.max"]
    for s, r in zip(seeds, results):  # fits: every seed
        unfitted = [row["randomization"] for row in r.tables.get("slowdown", [])
                    if row.get("fitted") is False]
        if unfitted or not r.metrics.get("fitted.true_labels", True) \
                or r.metrics.get("epochs_to_fit.true_labels") is None:
            problems.append(f"seed {s}: {r.message}")
    worst, worst_name = None, None
    for rnd in names:
        mean = metrics.get(f"slowdown.{rnd}")
        if mean is None:
            continue
        if worst is None or mean > worst:
            worst, worst_name = mean, rnd
        if mean > settings.max_slowdown:
            problems.append(f"{rnd}: mean {mean:.2f}x slower than true labels (95% CI "
                            f"{_ci(metrics, f'slowdown.{rnd}', '.2f')}; > {settings.max_slowdown})")
    metrics["slowdown.max"] = worst
    for suffix in ("std", "ci_low", "ci_high"):
        metrics[f"slowdown.max.{suffix}"] = (metrics.get(f"slowdown.{worst_name}.{suffix}")
                                             if worst_name else None)
    return not problems, list(dict.fromkeys(problems))


def _partial_verdict(metrics: dict[str, Any], settings: Any) -> tuple[bool, list[str]]:
    problems = []
    levels = sorted({float(k.split("@", 1)[1]) for k in metrics
                     if k.startswith("fitted@") and not k.endswith(".count")})
    for p in levels:
        if not metrics.get(f"fitted@{p:g}"):
            problems.append(f"p={p:g} fitted in {metrics.get(f'fitted@{p:g}.count', 0)} of "
                            f"{metrics['seeds']} seeds")
    errors = [(p, metrics.get(f"test_error@{p:g}")) for p in levels]
    errors = [(p, e) for p, e in errors if e is not None]
    for (p0, e0), (p1, e1) in zip(errors, errors[1:]):
        if e1 < e0 - settings.error_tolerance:
            problems.append(f"mean test error fell from {e0:.4f} at p={p0:g} to {e1:.4f} at "
                            f"p={p1:g} (tolerance {settings.error_tolerance})")
    return not problems, problems


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
