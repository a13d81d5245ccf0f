"""The regularizers check: removing every regularizer costs at most ``max_regularizer_gain`` test
accuracy, and the model still fits without them (the paper's Table 1 / section 3)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..fits import fit_message, get_run, prepared, run_record
from ..results import CheckResult, fitted, key_metric, table_summary
from ..stats import over_limit
from .base import Check, Verdict
from .common import fmt

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset
    from ..run_cache import RunCache
    from ..settings import CheckSettings

__all__ = ["CHECK", "check_regularizers", "judge_regularizers"]


def _regularized_config(settings: "CheckSettings", regs: tuple[str, ...]) -> Any:
    return dataclasses.replace(
        settings.fit, remove=tuple(r for r in ("dropout", "batchnorm") if r not in regs),
        # the recipe's own weight decay when it has one (AdamW's, say), else the ablation's
        weight_decay=(settings.fit.weight_decay or settings.ablation_weight_decay) if "weight_decay" in regs
        else 0.0,
        augment="augment" in regs)


def _applicable_regularizers(settings: "CheckSettings", data: "Dataset") -> tuple[tuple[str, ...], str]:
    """The regularizers that apply to ``data`` and a note on those left out (augment is image-only)."""
    kind = getattr(data, "kind", "image")
    if kind == "image" or "augment" not in settings.ablated_regularizers:
        return settings.ablated_regularizers, ""
    kept = tuple(r for r in settings.ablated_regularizers if r != "augment")
    return kept, f"augment left out: crop and flip are not applicable to {kind} inputs"


def check_regularizers(model_factory: Callable, data: "Dataset", settings: "CheckSettings",
                       cache: "RunCache | None" = None) -> CheckResult:
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
    gain = (None if on.test_accuracy is None or off.test_accuracy is None
            else on.test_accuracy - off.test_accuracy)
    memorized = fitted(rnd, settings.memorize_threshold)
    metrics = {
        "test_accuracy_with": on.test_accuracy, "test_accuracy_without": off.test_accuracy,
        "gain": gain, "fitted_with": fitted(on, t), "fitted_without": fitted(off, t),
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
    verdict = judge_regularizers(metrics, settings)
    why = {"without": fit_message("without regularizers the model no longer fits", off, t)}
    msg = "; ".join(why.get(k, text) for k, text in verdict.problems.items()) if not verdict.passed else (
        f"test accuracy {fmt(on.test_accuracy)} with, {fmt(off.test_accuracy)} without "
        f"(gain {fmt(gain)}); random labels {'still' if memorized else 'not'} memorized "
        "with the regularizers on")
    if verdict.passed and metrics["not_removable"]:
        msg += f"; present and not removable, so 'without' still had: {metrics['not_removable']}"
    criterion = (f"without any regularizer the model still fits (train accuracy >= {t}) and "
                 f"test accuracy with minus without <= {settings.max_regularizer_gain}; "
                 f"regularizers on: {', '.join(regs) or 'none'}" + (f" ({left_out})" if left_out else ""))
    runs = {"with": run_record(on, on_key), "without": run_record(off, off_key),
            "random_labels_with": run_record(rnd, rnd_key)}
    summary = table_summary(train=off.train_accuracy, test=on.test_accuracy,
                            key=[key_metric("gain", gain, "{:+.3f}")] if gain is not None else [])
    return CheckResult("regularizers", verdict.passed, criterion, msg, metrics, runs=runs,
                       summary=summary)


def judge_regularizers(metrics: Mapping[str, Any], settings: "CheckSettings") -> Verdict:
    """Without regularizers the model still fits (in every seed), and the (mean) gain of keeping
    them is <= ``max_regularizer_gain``."""
    means = "seeds" in metrics
    problems: dict[str, str] = {}
    if not metrics.get("fitted_without"):
        problems["without"] = (f"without regularizers {metrics.get('fitted_without.count', 0)} of "
                               f"{metrics['seeds']} seeds fit" if means
                               else "without regularizers the model no longer fits")
    gain = metrics.get("gain")
    if gain is not None and gain > settings.max_regularizer_gain:
        problems["gain"] = (f"removing the regularizers costs {gain:.4f} test accuracy"
                            f"{' on mean' if means else ''} "
                            f"{over_limit(metrics, 'gain', settings.max_regularizer_gain)}")
    return Verdict(not problems, problems)


CHECK = Check(
    name="regularizers", run=check_regularizers, judge=judge_regularizers, judged_on_means=True,
    doc="without its regularizers the model still fits and loses at most max_regularizer_gain "
        "test accuracy",
    fits=("regularized:true_labels", "unregularized:true_labels", "regularized:random_labels"),
    metrics=("gain", "test_accuracy_with", "test_accuracy_without"),
    key_metric="gain", legend="gain: test accuracy with regularizers minus without",
    settings=("ablated_regularizers", "ablation_weight_decay", "max_regularizer_gain",
              "fit_threshold", "memorize_threshold"),
    over_seeds="every seed fits without regularizers and the mean gain is <= max_regularizer_gain",
    seed_columns=("gain",), mean_columns=("gain",))
