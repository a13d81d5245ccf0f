"""The randomization checks of Zhang et al. (2017) as pytest-free functions returning verdicts.

Every check has the signature ``check(model_factory, data, settings, cache=None) -> CheckResult``.
A model that misses a criterion gives ``passed=False`` with metrics; unusable input (a bad
model, bad data, bad settings) raises a :class:`~rethink_checks.errors.RethinkError`. A
randomization that means nothing for the data raises
:class:`~rethink_checks.errors.NotApplicable` (the plugin reports a skip with its reason);
``slowdown`` leaves such a randomization out of its table instead, with the reason.
The criteria are documented in ``docs/checks.md`` and in each result's ``criterion``.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import SettingsError
from .results import CheckResult, FitResult, key_metric, table_summary
from .fits import (DEADLINE, epochs_to, fit_message, get_run, num_classes, prepared, run_metrics,
                   run_record, seconds_left)
from .run_cache import RunCache
from .settings import CAPACITY_BUDGETS, LABEL_MODES, RANDOMIZATIONS, REGULARIZERS, CheckSettings

if TYPE_CHECKING:  # pragma: no cover
    from .data import Dataset

__all__ = [
    "CHECKS", "ON_REQUEST", "CheckSettings", "RunCache", "SettingsError", "run_check",
    "RANDOMIZATION_CHECKS", "REGULARIZERS", "LABEL_MODES", "CAPACITY_BUDGETS",
]

RANDOMIZATION_CHECKS = RANDOMIZATIONS


def _regularizers_in(run: FitResult, model_factory: Callable, config: Any) -> str:
    """The regularizers a fit trained with (model as built, minus what the config removed).

    ``dropout`` and ``batchnorm`` name modules found in the trained model (functional dropout
    inside ``forward`` is invisible); ``weight_decay`` and ``augment`` come from the config.
    "none" when there were none.
    """
    from torch import nn

    from .regularizers import BATCHNORM_TYPES, DROPOUT_TYPES

    model = run.model
    if model is None:  # a run from another process: look at a fresh model instead
        model = model_factory if isinstance(model_factory, nn.Module) else model_factory()
    modules = list(model.modules()) if isinstance(model, nn.Module) else []
    gone = {r.split(":", 1)[0] for r in run.removed}
    found = [kind for kind, types in (("dropout", DROPOUT_TYPES), ("batchnorm", BATCHNORM_TYPES))
             if kind not in gone and any(isinstance(m, types) for m in modules)]
    found += ["weight_decay"] if config.weight_decay and "weight_decay" not in config.remove else []
    found += ["augment"] if config.augment and "augment" not in config.remove else []
    found += ["label_smoothing"] if config.label_smoothing and "label_smoothing" not in config.remove else []
    return ",".join(found) or "none"


def _as_trained(regularizers: str) -> str:
    """Criterion wording for the regularizers a memorization fit kept."""
    if regularizers == "none":
        return "no regularizers"
    hint = ("; remove: dropout trains without it, as the paper's randomization runs did"
            if "dropout" in regularizers.split(",") else "")
    return f"the model's regularizers as built ({regularizers}{hint})"


# ---------------------------------------------------------------- the checks

def _single_fit(name: str, p: float, threshold: float, model_factory: Callable, data: "Dataset",
                settings: CheckSettings, cache: RunCache | None) -> tuple[FitResult, tuple, dict]:
    """The one fit of a single-fit check (true labels or a memorization) and its metrics."""
    data = prepared(data, settings)
    run, key = get_run(name, p, model_factory, data, settings, cache)
    metrics = {**run_metrics(run, threshold), "chance": 1.0 / num_classes(data),
               "regularizers_in_model": _regularizers_in(run, model_factory, settings.fit)}
    return run, key, metrics


def check_true_labels(model_factory: Callable, data: "Dataset", settings: CheckSettings,
                      cache: RunCache | None = None) -> CheckResult:
    """The model fits the real training data within the budget."""
    t = settings.fit_threshold
    run, key, metrics = _single_fit("true_labels", 0.0, t, model_factory, data, settings, cache)
    passed = metrics["fitted"]
    msg = (f"fitted true labels in {run.epochs_to_fit} epochs" if passed
           else fit_message("true labels not fitted", run, t, num_classes(data)))
    return CheckResult("true_labels", passed, f"train accuracy >= {t} on true labels within "
                       f"{settings.fit.max_epochs} epochs", msg, metrics,
                       runs={"true_labels": run_record(run, key)}, summary=_fit_summary(run))


def _memorization(name: str) -> Callable[..., CheckResult]:
    def check(model_factory: Callable, data: "Dataset", settings: CheckSettings,
              cache: RunCache | None = None) -> CheckResult:
        t = settings.memorize_threshold
        run, key, metrics = _single_fit(name, 1.0, t, model_factory, data, settings, cache)
        passed = metrics["fitted"]
        msg = (f"memorized {name} in {run.epochs_to_fit} epochs "
               f"(test accuracy {_fmt(run.test_accuracy)}, chance {metrics['chance']:.3f})"
               if passed else fit_message(f"{name} not memorized", run, t, num_classes(data)))
        return CheckResult(name, passed, f"train accuracy >= {t} on {name} within "
                           f"{settings.fit.max_epochs} epochs (memorization), trained with "
                           f"{_as_trained(metrics['regularizers_in_model'])}", msg, metrics,
                           runs={name: run_record(run, key)}, summary=_fit_summary(run))

    check.__name__ = f"check_{name}"
    check.__doc__ = f"Memorization: the model fits the {name} randomization of the training set."
    return check


def _fit_summary(run: FitResult) -> dict[str, Any]:
    """The summary-table row of a single-fit check: its fit's accuracies and epochs to fit."""
    return table_summary(train=run.train_accuracy, test=run.test_accuracy,
                         epochs=run.epochs_to_fit)


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _sweep_run_name(p: float) -> str:
    if p == 0.0:
        return "true_labels"
    if p == 1.0:
        return "random_labels"
    return "partial_labels"


def check_partial_labels(model_factory: Callable, data: "Dataset", settings: CheckSettings,
                         cache: RunCache | None = None) -> CheckResult:
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
        rows.append({"p": p, "fitted": bool(run.train_accuracy >= t and not run.diverged),
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
    problems = [f"p={r['p']:g} not fitted (train accuracy {r['train_accuracy']:.4f} < {t})"
                for r in rows if not r["fitted"]]
    for prev, row in zip(rows, rows[1:]):
        if prev["test_error"] is not None and row["test_error"] is not None \
                and row["test_error"] < prev["test_error"] - settings.error_tolerance:
            problems.append(f"test error fell from {prev['test_error']:.4f} at p={prev['p']:g} "
                            f"to {row['test_error']:.4f} at p={row['p']:g} "
                            f"(tolerance {settings.error_tolerance})")
    metrics["levels"] = len(rows)
    metrics["all_fitted"] = all(r["fitted"] for r in rows)
    metrics["chance"] = 1.0 / num_classes(data)
    passed = not problems
    msg = "; ".join(problems) if problems else (
        f"all {len(rows)} levels fitted; test error " +
        " -> ".join(_fmt(r["test_error"]) for r in rows))
    criterion = (f"every p in {list(settings.partial_levels)} reaches train accuracy >= {t}; "
                 f"test error never falls by more than {settings.error_tolerance} as p grows; "
                 f"relative_time = epochs to train accuracy {t_time} over that at p=0")
    test_errors = [r["test_error"] for r in sorted(rows, key=lambda r: r["p"])
                   if r["test_error"] is not None]
    key = ([key_metric("err", [test_errors[0], test_errors[-1]], "{:.2f}->{:.2f}")]
           if test_errors else [])
    return CheckResult("partial_labels", passed, criterion, msg, metrics,
                       tables={"sweep": rows}, runs=runs, summary=table_summary(key=key))


def check_slowdown(model_factory: Callable, data: "Dataset", settings: CheckSettings,
                   cache: RunCache | None = None) -> CheckResult:
    """Fitting each randomization is at most ``max_slowdown`` times slower than true labels."""
    from .errors import NotApplicable

    data = prepared(data, settings)
    t = min(settings.fit_threshold, settings.memorize_threshold)
    true_run, true_key = get_run("true_labels", 0.0, model_factory, data, settings, cache)
    runs = {"true_labels": run_record(true_run, true_key)}
    base, base_steps = epochs_to(true_run, t)
    metrics: dict[str, Any] = {"threshold": t, "epochs_to_fit.true_labels": base,
                               "steps_to_fit.true_labels": base_steps}
    problems, ratios, rows = [], [], []
    metrics["fitted.true_labels"] = base is not None and true_run.train_accuracy >= settings.fit_threshold
    if not metrics["fitted.true_labels"]:
        problems.append(fit_message("true labels not fitted", true_run, settings.fit_threshold,
                                    num_classes(data)))
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
        fitted = bool(run.train_accuracy >= settings.memorize_threshold and not run.diverged)
        ratio = epochs / base if (base and epochs is not None and fitted) else None
        metrics[f"epochs_to_fit.{name}"] = epochs
        metrics[f"slowdown.{name}"] = ratio
        rows.append({"randomization": name, "fitted": fitted, "epochs_to_fit": epochs,
                     "steps_to_fit": steps, "slowdown": ratio})
        if not fitted:
            problems.append(fit_message(f"{name} not memorized", run, settings.memorize_threshold,
                                        num_classes(data)))
        elif ratio is not None:
            ratios.append(ratio)
            if ratio > settings.max_slowdown:
                problems.append(f"{name}: {ratio:.2f}x slower than true labels "
                                f"(> {settings.max_slowdown})")
    metrics["slowdown.max"] = max(ratios) if ratios else None
    msg = "; ".join(problems) if problems else "slowdowns " + ", ".join(
        f"{r['randomization']} " + ("skipped (not applicable)" if r.get("skipped") else f"{r['slowdown']:.2f}x")
        for r in rows)
    criterion = (f"every randomization fits (train accuracy >= {settings.memorize_threshold}) "
                 f"and epochs to train accuracy {t} are <= {settings.max_slowdown} x those of "
                 f"true labels")
    worst = metrics["slowdown.max"]
    summary = table_summary(epochs=base, key=[key_metric("slowdown", worst, "{:.2f}x")]
                            if worst is not None else [])
    return CheckResult("slowdown", not problems, criterion, msg, metrics,
                       tables={"slowdown": rows}, runs=runs, summary=summary)


def _regularized_config(settings: CheckSettings, regs: tuple[str, ...]) -> Any:
    return dataclasses.replace(
        settings.fit, remove=tuple(r for r in ("dropout", "batchnorm") if r not in regs),
        # the recipe's own weight decay when it has one (AdamW's, say), else the ablation's
        weight_decay=(settings.fit.weight_decay or settings.ablation_weight_decay) if "weight_decay" in regs else 0.0,
        augment="augment" in regs)


def _applicable_regularizers(settings: CheckSettings, data: "Dataset") -> tuple[tuple[str, ...], str]:
    """The regularizers that apply to ``data`` and a note on those left out (augment is image-only)."""
    kind = getattr(data, "kind", "image")
    if kind == "image" or "augment" not in settings.ablated_regularizers:
        return settings.ablated_regularizers, ""
    kept = tuple(r for r in settings.ablated_regularizers if r != "augment")
    return kept, f"augment left out: crop and flip are not applicable to {kind} inputs"


def check_regularizers(model_factory: Callable, data: "Dataset", settings: CheckSettings,
                       cache: RunCache | None = None) -> CheckResult:
    """Removing every regularizer costs at most ``max_regularizer_gain`` test accuracy."""
    data = prepared(data, settings)
    regs, left_out = _applicable_regularizers(settings, data)
    with_cfg = _regularized_config(settings, regs)
    without_cfg = dataclasses.replace(settings.fit, remove="all")
    on, on_key = get_run("regularized:true_labels", 0.0, model_factory, data, settings,
                          cache, with_cfg)
    off, off_key = get_run("unregularized:true_labels", 0.0, model_factory, data, settings,
                            cache, without_cfg)
    rnd, rnd_key = get_run("regularized:random_labels", 1.0, model_factory, data, settings,
                            cache, with_cfg)
    t = settings.fit_threshold
    fitted_with = bool(on.train_accuracy >= t and not on.diverged)
    fitted_without = bool(off.train_accuracy >= t and not off.diverged)
    gain = (None if on.test_accuracy is None or off.test_accuracy is None
            else on.test_accuracy - off.test_accuracy)
    memorized = bool(rnd.train_accuracy >= settings.memorize_threshold and not rnd.diverged)
    metrics = {
        "test_accuracy_with": on.test_accuracy, "test_accuracy_without": off.test_accuracy,
        "gain": gain, "fitted_with": fitted_with, "fitted_without": fitted_without,
        "train_accuracy_with": on.train_accuracy, "train_accuracy_without": off.train_accuracy,
        "epochs_to_fit_with": on.epochs_to_fit, "epochs_to_fit_without": off.epochs_to_fit,
        "regularizers": ",".join(regs),
        "not_applicable": left_out or None,
        "removed": ",".join(off.removed),
        "memorized_with_regularizers": memorized,
        "random_train_accuracy_with_regularizers": rnd.train_accuracy,
        # present and not removable (dropout called in forward, a label-smoothing loss module)
        "not_removable": ",".join(r.split(":", 1)[1] for r in off.removed
                                  if r.startswith("not_removable:")) or None,
    }
    problems = []
    if not fitted_without:
        problems.append(fit_message("without regularizers the model no longer fits", off, t))
    if gain is not None and gain > settings.max_regularizer_gain:
        problems.append(f"removing the regularizers costs {gain:.4f} test accuracy "
                        f"(> {settings.max_regularizer_gain})")
    msg = "; ".join(problems) if problems else (
        f"test accuracy {_fmt(on.test_accuracy)} with, {_fmt(off.test_accuracy)} without "
        f"(gain {_fmt(gain)}); random labels {'still' if memorized else 'not'} memorized "
        "with the regularizers on")
    if metrics["not_removable"]:
        msg += f"; present and not removable, so 'without' still had: {metrics['not_removable']}"
    criterion = (f"without any regularizer the model still fits (train accuracy >= {t}) and "
                 f"test accuracy with minus without <= {settings.max_regularizer_gain}; "
                 f"regularizers on: {', '.join(regs) or 'none'}" + (f" ({left_out})" if left_out else ""))
    runs = {"with": run_record(on, on_key), "without": run_record(off, off_key),
            "random_labels_with": run_record(rnd, rnd_key)}
    summary = table_summary(train=off.train_accuracy, test=on.test_accuracy,
                            key=[key_metric("gain", gain, "{:+.3f}")] if gain is not None else [])
    return CheckResult("regularizers", not problems, criterion, msg, metrics, runs=runs,
                       summary=summary)


def check_capacity(model_factory: Callable, data: "Dataset", settings: CheckSettings,
                   cache: RunCache | None = None) -> CheckResult:
    """Effective capacity search (rethink_checks.capacity, imported when run)."""
    from .capacity import check_capacity as impl

    fit = dataclasses.replace(settings.fit, max_seconds=seconds_left(settings.fit.max_seconds))
    return impl(model_factory, prepared(data, settings), dataclasses.replace(settings, fit=fit),
                cache)


def check_expressivity(model_factory: Callable, data: "Dataset", settings: CheckSettings,
                       cache: RunCache | None = None) -> CheckResult:
    """Theorem 1 and min-norm interpolation (rethink_checks.theory, imported when run)."""
    from .theory import check_expressivity as impl

    return impl(model_factory, prepared(data, settings), settings, cache)


def check_memorization(model_factory: Callable, data: "Dataset", settings: CheckSettings,
                       cache: RunCache | None = None) -> CheckResult:
    """Clean before noisy (rethink_checks.memorization, imported when run)."""
    from .memorization import check_memorization as impl

    return impl(model_factory, data, settings, cache)


def check_suspects(model_factory: Callable, data: "Dataset", settings: CheckSettings,
                   cache: RunCache | None = None) -> CheckResult:
    """Likely mislabelled training examples (rethink_checks.suspects, imported when run)."""
    from .suspects import check_suspects as impl
    return impl(model_factory, data, settings, cache)


CHECKS: dict[str, Callable[..., CheckResult]] = {
    "true_labels": check_true_labels,
    **{name: _memorization(name) for name in RANDOMIZATION_CHECKS},
    "partial_labels": check_partial_labels,
    "slowdown": check_slowdown,
    "regularizers": check_regularizers,
    "capacity": check_capacity,
    "expressivity": check_expressivity,
    "memorization": check_memorization,
    "suspects": check_suspects,
}
ON_REQUEST = ("suspects",)  # checks run only when asked for (--rethink-checks / --rethink-suspects)


def run_check(name: str, model_factory: Callable, data: "Dataset",
              settings: CheckSettings | None = None, cache: RunCache | None = None) -> CheckResult:
    """Run check ``name`` and time it; unknown names raise :class:`SettingsError`.

    With ``settings.seeds > 1`` the check runs once per derived seed and the results are
    aggregated (:mod:`rethink_checks.seeds`); ``settings.expect`` then may turn the verdict
    (:mod:`rethink_checks.expectations`). The time budget covers every seed.
    """
    if name not in CHECKS:
        raise SettingsError(f"unknown check {name!r}; allowed: {', '.join(CHECKS)}")
    settings = settings if settings is not None else CheckSettings()
    if not isinstance(settings, CheckSettings):
        raise SettingsError(f"settings: expected CheckSettings, got {type(settings).__name__}")
    start = time.perf_counter()
    budget = settings.time_budget
    token = DEADLINE.set(None if budget is None else time.monotonic() + budget)
    try:
        if settings.seeds > 1:
            from .seeds import run_seeds

            result = run_seeds(CHECKS[name], name, model_factory, data, settings, cache)
        else:
            result = CHECKS[name](model_factory, data, settings, cache)
    finally:
        DEADLINE.reset(token)
    result.seconds = round(time.perf_counter() - start, 3)
    if budget is not None:
        _note_budget(result, budget)
    from .expectations import apply_expectation

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
