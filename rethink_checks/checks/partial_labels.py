"""The partial-labels check: a sweep of label-corruption levels p (the paper's Figure 1b/1c).

Every level must fit, and test error must not fall by more than ``error_tolerance`` as p grows.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..fits import epochs_to, get_run, num_classes, prepared, run_record
from ..results import CheckResult, fitted, key_metric, table_summary
from .base import Check, Verdict
from .common import fmt

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset
    from ..run_cache import RunCache
    from ..settings import CheckSettings

__all__ = ["CHECK", "check_partial_labels", "judge_partial_labels"]


def _sweep_run_name(p: float) -> str:
    if p == 0.0:
        return "true_labels"
    if p == 1.0:
        return "random_labels"
    return "partial_labels"


def judge_partial_labels(metrics: Mapping[str, Any], settings: "CheckSettings") -> Verdict:
    """Every level fitted; test error never falls by more than ``error_tolerance`` as p grows.

    On means over seeds (``metrics["seeds"]`` set) "fitted" means every seed fitted.
    """
    means = "seeds" in metrics
    problems: dict[str, str] = {}
    levels = sorted({float(k.split("@", 1)[1]) for k in metrics
                     if k.startswith("fitted@") and not k.endswith(".count")})
    for p in levels:
        if metrics.get(f"fitted@{p:g}"):
            continue
        problems[f"fit@{p:g}"] = (
            f"p={p:g} fitted in {metrics.get(f'fitted@{p:g}.count', 0)} of {metrics['seeds']} seeds"
            if means else f"p={p:g} not fitted (train accuracy {metrics[f'train_accuracy@{p:g}']:.4f} "
                          f"< {settings.memorize_threshold})")
    errors = [(p, metrics.get(f"test_error@{p:g}")) for p in levels]
    errors = [(p, e) for p, e in errors if e is not None]
    for (p0, e0), (p1, e1) in zip(errors, errors[1:]):
        if e1 < e0 - settings.error_tolerance:
            problems[f"error@{p1:g}"] = (f"{'mean ' if means else ''}test error fell from {e0:.4f} at "
                                         f"p={p0:g} to {e1:.4f} at p={p1:g} "
                                         f"(tolerance {settings.error_tolerance})")
    return Verdict(not problems, problems)


def check_partial_labels(model_factory: Callable, data: "Dataset", settings: "CheckSettings",
                         cache: "RunCache | None" = None) -> CheckResult:
    """Label-corruption sweep: every level fits and test error does not fall as p grows."""
    data = prepared(data, settings)
    t = settings.memorize_threshold
    t_time = min(settings.fit_threshold, settings.memorize_threshold)
    rows, runs, metrics = [], {}, {}
    for p in settings.partial_levels:
        name = _sweep_run_name(p)
        run, key = get_run(name, p, model_factory, data, settings, cache)
        epochs, steps = epochs_to(run, t_time)
        test_err = None if run.test_accuracy is None else 1.0 - run.test_accuracy
        rows.append({"p": p, "fitted": fitted(run, t),
                     "epochs_to_fit": epochs, "steps_to_fit": steps, "relative_time": None,
                     "train_accuracy": run.train_accuracy, "test_error": test_err,
                     "seconds": round(float(run.total_seconds), 3)})
        runs[f"p={p:g}"] = run_record(run, key)
    if rows[0]["p"] == 0.0:
        base = rows[0]["epochs_to_fit"]
    else:  # no p=0 level: the true-labels run (usually cached) is the baseline
        true_run, true_key = get_run("true_labels", 0.0, model_factory, data, settings, cache)
        runs["true_labels"] = run_record(true_run, true_key)
        base = epochs_to(true_run, t_time)[0]
    for row in rows:
        if base and row["epochs_to_fit"] is not None:
            row["relative_time"] = row["epochs_to_fit"] / base
        for col in ("fitted", "epochs_to_fit", "relative_time", "test_error", "train_accuracy"):
            metrics[f"{col}@{row['p']:g}"] = row[col]
    metrics["levels"] = len(rows)
    metrics["all_fitted"] = all(r["fitted"] for r in rows)
    metrics["chance"] = 1.0 / num_classes(data)
    verdict = judge_partial_labels(metrics, settings)
    msg = verdict.text if not verdict.passed else (
        f"all {len(rows)} levels fitted; test error " +
        " -> ".join(fmt(r["test_error"]) for r in rows))
    criterion = (f"every p in {list(settings.partial_levels)} reaches train accuracy >= {t}; "
                 f"test error never falls by more than {settings.error_tolerance} as p grows; "
                 f"relative_time = epochs to train accuracy {t_time} over that at p=0")
    test_errors = [r["test_error"] for r in sorted(rows, key=lambda r: r["p"])
                   if r["test_error"] is not None]
    key = ([key_metric("err", [test_errors[0], test_errors[-1]], "{:.2f}->{:.2f}")]
           if test_errors else [])
    return CheckResult("partial_labels", verdict.passed, criterion, msg, metrics,
                       tables={"sweep": rows}, runs=runs, summary=table_summary(key=key))


CHECK = Check(
    name="partial_labels", run=check_partial_labels, judge=judge_partial_labels, judged_on_means=True,
    doc="every label-corruption level p fits; test error does not fall as p grows (Figure 1c)",
    fits=("true_labels", "partial_labels", "random_labels"),
    legend="err: test error at the lowest -> highest corruption p",
    settings=("partial_levels", "memorize_threshold", "fit_threshold", "error_tolerance", "label_mode"),
    word="fitted",
    over_seeds="every level fits in every seed and the mean test error never falls by more than "
               "error_tolerance as p grows")
