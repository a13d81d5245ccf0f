"""The slowdown check: fitting each randomization is at most ``max_slowdown`` times slower than
fitting true labels (epochs to the same train accuracy; the paper's Figure 1b)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import NotApplicable
from ..fits import epochs_to, fit_message, get_run, num_classes, prepared, run_record
from ..results import CheckResult, fitted, key_metric, table_summary
from ..stats import over_limit
from .base import Check, Verdict

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset
    from ..run_cache import RunCache
    from ..settings import CheckSettings

__all__ = ["CHECK", "check_slowdown", "judge_slowdown", "worst_slowdown"]


def _ratio_names(metrics: Mapping[str, Any]) -> list[str]:
    """The randomizations timed (``slowdown.<name>`` metrics), skipped ones included."""
    return [k.split(".", 1)[1] for k in metrics
            if k.startswith("slowdown.") and k.count(".") == 1 and k != "slowdown.max"]


def worst_slowdown(metrics: dict[str, Any]) -> None:
    """``slowdown.max``: the worst ratio (over seeds: the worst mean ratio, with its interval)."""
    worst, worst_name = None, None
    for name in _ratio_names(metrics):
        ratio = metrics.get(f"slowdown.{name}")
        if ratio is not None and (worst is None or ratio > worst):
            worst, worst_name = ratio, name
    metrics["slowdown.max"] = worst
    if "seeds" in metrics:
        for suffix in ("std", "ci_low", "ci_high"):
            metrics[f"slowdown.max.{suffix}"] = (metrics.get(f"slowdown.{worst_name}.{suffix}")
                                                 if worst_name else None)


def judge_slowdown(metrics: Mapping[str, Any], settings: "CheckSettings") -> Verdict:
    """True labels fit; every applicable randomization fits (in every seed) and its (mean) ratio
    of epochs to fit over true labels' is <= ``max_slowdown``.

    A randomization that fitted has a ratio (``slowdown.<name>``); one left out as not
    applicable has no ``epochs_to_fit.<name>``; over seeds a ratio missing in some seed shows as
    ``slowdown.<name>.n`` (fewer seeds than all).
    """
    means = "seeds" in metrics
    problems: dict[str, str] = {}
    if not metrics.get("fitted.true_labels", True) or metrics.get("epochs_to_fit.true_labels") is None \
            or metrics.get("epochs_to_fit.true_labels.n") is not None:
        problems["true_labels"] = "true labels not fitted" + (
            f" in every seed ({metrics.get('fitted.true_labels.count', 0)} of {metrics['seeds']})"
            if means else "")
    for name in _ratio_names(metrics):
        ratio = metrics.get(f"slowdown.{name}")
        if ratio is None and f"epochs_to_fit.{name}" not in metrics:  # not applicable: left out
            continue
        if ratio is None and "true_labels" in problems \
                and metrics.get(f"epochs_to_fit.{name}") is not None:
            continue  # fitted, but no ratio without true labels' epochs: said above
        if ratio is None or metrics.get(f"slowdown.{name}.n") is not None:
            problems[name] = f"{name} not memorized" + (" in every seed" if means else "")
        elif ratio > settings.max_slowdown:
            problems[name] = (f"{name}: {'mean ' if means else ''}{ratio:.2f}x slower than true "
                              f"labels {over_limit(metrics, f'slowdown.{name}', settings.max_slowdown, '.2f')}")
    return Verdict(not problems, problems)


def check_slowdown(model_factory: Callable, data: "Dataset", settings: "CheckSettings",
                   cache: "RunCache | None" = None) -> CheckResult:
    """Fitting each randomization is at most ``max_slowdown`` times slower than true labels."""
    data = prepared(data, settings)
    t = min(settings.fit_threshold, settings.memorize_threshold)
    true_run, true_key = get_run("true_labels", 0.0, model_factory, data, settings, cache)
    runs = {"true_labels": run_record(true_run, true_key)}
    base, base_steps = epochs_to(true_run, t)
    metrics: dict[str, Any] = {"threshold": t, "epochs_to_fit.true_labels": base,
                               "steps_to_fit.true_labels": base_steps}
    why = {"true_labels": fit_message("true labels not fitted", true_run, settings.fit_threshold,
                                      num_classes(data))}
    rows = []
    metrics["fitted.true_labels"] = base is not None and true_run.train_accuracy >= settings.fit_threshold
    for name in settings.slowdown_randomizations:
        try:
            run, key = get_run(name, 1.0, model_factory, data, settings, cache)
        except NotApplicable as exc:  # e.g. a permutation of one feature: left out, with the reason
            metrics[f"slowdown.{name}"] = None
            rows.append({"randomization": name, "fitted": None, "epochs_to_fit": None,
                         "steps_to_fit": None, "slowdown": None, "skipped": exc.reason})
            continue
        runs[name] = run_record(run, key)
        epochs, steps = epochs_to(run, t)
        memorized = fitted(run, settings.memorize_threshold)
        ratio = epochs / base if (base and epochs is not None and memorized) else None
        metrics[f"epochs_to_fit.{name}"] = epochs
        metrics[f"slowdown.{name}"] = ratio
        rows.append({"randomization": name, "fitted": memorized, "epochs_to_fit": epochs,
                     "steps_to_fit": steps, "slowdown": ratio})
        why[name] = fit_message(f"{name} not memorized", run, settings.memorize_threshold,
                                num_classes(data))
    worst_slowdown(metrics)
    verdict = judge_slowdown(metrics, settings)
    memorized_by = {r["randomization"]: r["fitted"] for r in rows}
    problems = [why[topic] if topic == "true_labels" or memorized_by.get(topic) is False else text
                for topic, text in verdict.problems.items()
                if topic == "true_labels" or memorized_by.get(topic) is False
                or metrics[f"slowdown.{topic}"] is not None]
    msg = "; ".join(problems) if problems else "slowdowns " + ", ".join(
        f"{r['randomization']} " + ("skipped (not applicable)" if r.get("skipped") else f"{r['slowdown']:.2f}x")
        for r in rows)
    criterion = (f"every randomization fits (train accuracy >= {settings.memorize_threshold}) "
                 f"and epochs to train accuracy {t} are <= {settings.max_slowdown} x those of "
                 f"true labels")
    worst = metrics["slowdown.max"]
    summary = table_summary(epochs=base, key=[key_metric(CHECK.key_format[0], worst, CHECK.key_format[1])]
                            if worst is not None else [])
    return CheckResult("slowdown", verdict.passed, criterion, msg, metrics,
                       tables={"slowdown": rows}, runs=runs, summary=summary)


CHECK = Check(
    name="slowdown", run=check_slowdown, judge=judge_slowdown, judged_on_means=True,
    doc="fitting each randomization takes at most max_slowdown x the epochs of true labels",
    fits=("true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian"),
    metrics=("slowdown.max",),
    key_metric="slowdown.max", key_format=("slowdown", "{:.2f}x"),
    legend="slowdown: worst epochs-to-fit ratio, randomization / true labels",
    settings=("slowdown_randomizations", "max_slowdown", "fit_threshold", "memorize_threshold"),
    over_seeds="every seed fits every randomization and the mean ratio of each randomization "
               "is <= max_slowdown",
    derive=worst_slowdown, key_from_means=True,
    seed_columns=("slowdown.max",), mean_columns=("slowdown.*",))
