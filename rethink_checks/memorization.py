"""Which examples a model memorizes: clean-before-noisy ordering and a mislabel finder.

Arpit et al. 2017 ("A closer look at memorization in deep networks") showed that networks fit
the real examples first and memorize noisy labels last; Toneva et al. 2019 ("An empirical study
of example forgetting") that examples fitted late or forgotten often are the atypical or
mislabelled ones. Both read the per-example record every fit keeps
(:class:`~rethink_checks.example_record.ExampleRecord`, ``FitResult.examples``).

* :func:`check_memorization` (``rethink[memorization]``): train with a fraction
  ``memorization_p`` of the labels redrawn and judge how well "epoch first fitted for good"
  detects "this label was corrupted" (ROC AUC, :func:`roc_auc`).
* :func:`find_suspects` / :func:`suspects_from_run`: rank the user's own training examples,
  on their given labels, by late fit and forgetting; the top ones are the likely mislabels.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import DataError, SettingsError
from .example_record import NEVER
from .results import CheckResult, FitResult, key_metric, table_summary

if TYPE_CHECKING:  # pragma: no cover
    from .data import Dataset
    from .run_cache import RunCache
    from .settings import CheckSettings

__all__ = ["check_memorization", "roc_auc", "corrupted_mask", "Suspect", "rank_suspects",
           "suspects_from_run", "find_suspects", "attach_suspects", "format_suspects",
           "CLEAN_FIT_FRACTION"]

#: the clean examples count as fitted at the first evaluation from which this fraction of them
#: stays fitted (the "early stopping" point of the gain metric, and the FAIL bar for a model
#: that never fits them); a lower ``fit_threshold`` setting lowers it
CLEAN_FIT_FRACTION = 0.95


# ---------------------------------------------------------------- ranking statistics

def roc_auc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` (higher: more likely positive), ties counted half.

    The Mann-Whitney U statistic over the average ranks, divided by (#positives x #negatives):
    the probability that a random positive scores above a random negative. Raises
    :class:`DataError` when either class is empty (the AUC is undefined).
    """
    if len(scores) != len(positives):
        raise DataError(f"roc_auc: {len(scores)} scores but {len(positives)} labels")
    n_pos = sum(1 for p in positives if p)
    n_neg = len(positives) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError(f"roc_auc: needs positives and negatives; got {n_pos} and {n_neg}")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum, i = 0.0, 0
    while i < len(order):  # average rank (1-based) over each run of tied scores
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average = (i + j) / 2 + 1
        rank_sum += average * sum(1 for k in order[i:j + 1] if positives[k])
        i = j + 1
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _lateness(fit_epoch: Sequence[int], evaluations: Sequence[int]) -> list[float]:
    """Fit epochs as scores, never-fitted examples ranked after every fitted one."""
    never = (max(evaluations) if evaluations else 0) + 1
    return [float(never if e == NEVER else e) for e in fit_epoch]


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


# ---------------------------------------------------------------- the check

def corrupted_mask(data: "Dataset", settings: "CheckSettings") -> Any:
    """Which training labels the memorization check's corruption actually changes (a bool tensor).

    With ``label_mode="paper"`` some redrawn labels equal the true one: those count as clean.
    """
    from .corruptions import CorruptionSpec

    spec = CorruptionSpec(name="partial_labels", p=float(settings.memorization_p),
                          seed=settings.seed, mode=settings.label_mode)
    return (spec.apply(data).train_y.cpu() != data.train_y.cpu())


def _check_p(settings: "CheckSettings") -> float:
    """``memorization_p`` (validated with the other settings when CheckSettings is built)."""
    return float(settings.memorization_p)


def check_memorization(model_factory: Callable, data: "Dataset", settings: "CheckSettings",
                       cache: "RunCache | None" = None) -> CheckResult:
    """Clean examples are fitted before corrupted ones: AUC(fit epoch -> corrupted) >= threshold."""
    from . import fits

    p = _check_p(settings)
    # fit epochs per example need every epoch measured (the fit's default skips epochs far from
    # the target: docs/checks.md, "Evaluation schedule"); ties between skipped epochs cost AUC
    settings = settings.updated(eval_every=1)
    data = fits.prepared(data, settings)
    mask = corrupted_mask(data, settings).tolist()
    n_bad, n = sum(mask), len(mask)
    if n_bad == 0 or n_bad == n:
        raise DataError(f"memorization: with memorization_p={p} the corruption changed {n_bad} of "
                        f"the {n} training labels (seed {settings.seed}); the check needs at least "
                        f"one corrupted and one clean example: use a larger training set "
                        f"(train_size) or another memorization_p")
    run, key = fits.get_run("partial_labels", p, model_factory, data, settings, cache)
    threshold = settings.min_memorization_auc
    bar = min(settings.fit_threshold, CLEAN_FIT_FRACTION)
    criterion = (f"with {p:g} of the labels redrawn, the epoch each example is first fitted for good "
                 f"detects the corrupted labels with ROC AUC >= {threshold} (clean before noisy, "
                 f"Arpit et al. 2017)")
    metrics = {**fits.run_metrics(run, settings.memorize_threshold),
               **_ordering_metrics(run, mask, bar), "p": p, "min_auc": threshold}
    runs = {"partial_labels": fits.run_record(run, key)}
    summary = _summary(run, metrics)
    if run.diverged:
        return CheckResult("memorization", False, criterion,
                           fits.fit_message("memorization", run, settings.memorize_threshold),
                           metrics, runs=runs, summary=summary)
    if metrics["clean_fitted_fraction"] < bar:
        metrics["auc"] = None
        msg = (f"the model never fitted the clean examples: {metrics['clean_fitted_fraction']:.3f} of "
               f"them fitted for good after {run.epochs} epochs (needs {bar}); "
               f"a fit-time ordering means nothing without it")
        return CheckResult("memorization", False, criterion, msg, metrics, runs=runs,
                           summary=_summary(run, metrics))
    passed = metrics["auc"] >= threshold
    msg = (f"AUC {metrics['auc']:.3f} {'>=' if passed else '<'} {threshold}: median fit epoch "
           f"{_num(metrics['median_fit_epoch_clean'])} clean vs "
           f"{_num(metrics['median_fit_epoch_corrupted'])} corrupted; early-stopping gain "
           f"{_num(metrics['early_stopping_gain'], '+.3f')}")
    return CheckResult("memorization", passed, criterion, msg, metrics, runs=runs,
                       summary=_summary(run, metrics))


def _summary(run: FitResult, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The summary-table row: the fit's accuracies and the ordering AUC."""
    auc = metrics.get("auc")
    return table_summary(train=run.train_accuracy, test=run.test_accuracy, epochs=run.epochs_to_fit,
                         key=[key_metric("auc", auc, "{:.3f}")] if auc is not None else [])


def _num(x: Any, spec: str = "g") -> str:
    return "never" if x is None else format(x, spec)


def _ordering_metrics(run: FitResult, mask: Sequence[bool],
                      bar: float = CLEAN_FIT_FRACTION) -> dict[str, Any]:
    """AUC, median fit epochs, forgetting counts and the early-stopping gain of one fit."""
    examples = run.examples
    if not examples:
        raise DataError("memorization: the fit carries no per-example record (FitResult.examples "
                        "is None); it must come from rethink_checks.fit in this version")
    fit_epoch, forgets = examples["fit_epoch"], examples["forgets"]
    evaluations = examples["evaluations"]
    if len(fit_epoch) != len(mask):
        raise DataError(f"memorization: the fit's record has {len(fit_epoch)} examples, the "
                        f"training set {len(mask)}")
    late = _lateness(fit_epoch, evaluations)
    clean = [i for i, bad in enumerate(mask) if not bad]
    bad = [i for i, b in enumerate(mask) if b]

    def med(group: list[int]) -> float | None:
        value = _median([late[i] for i in group])
        return None if value is None or value > max(evaluations or [0]) else value

    clean_fit = sorted(fit_epoch[i] for i in clean if fit_epoch[i] != NEVER)
    clean_fraction = len(clean_fit) / len(clean)
    clean_epoch = None
    if clean_fit and clean_fraction >= bar:  # the evaluation by which ``bar`` of them stay fitted
        clean_epoch = clean_fit[max(math.ceil(bar * len(clean)), 1) - 1]
    tests = dict(zip(run.curves.get("epoch", []), run.curves.get("test_accuracy", [])))
    at_clean = tests.get(clean_epoch) if clean_epoch is not None else None
    gain = (None if at_clean is None or run.test_accuracy is None
            else at_clean - run.test_accuracy)
    return {
        "auc": roc_auc(late, mask),
        "n_corrupted": len(bad), "corrupted_fraction": len(bad) / len(mask),
        "median_fit_epoch_clean": med(clean), "median_fit_epoch_corrupted": med(bad),
        "clean_fitted_fraction": clean_fraction,
        "corrupted_fitted_fraction": sum(1 for i in bad if fit_epoch[i] != NEVER) / len(bad),
        "forgets_clean_mean": sum(forgets[i] for i in clean) / len(clean),
        "forgets_corrupted_mean": sum(forgets[i] for i in bad) / len(bad),
        "forgetting_events": int(sum(forgets)),
        "evaluations": len(evaluations),
        "clean_fitted_epoch": clean_epoch,
        "test_accuracy_at_clean_fit": at_clean,
        "early_stopping_gain": gain,
    }


# ---------------------------------------------------------------- suspects

@dataclass(frozen=True)
class Suspect:
    """One training example that was fitted late or forgotten often (a likely mislabel)."""

    index: int              # position in the training set the fit used
    label: int              # the label it was given
    prediction: int | None  # the trained model's class for it (None: no model at hand)
    fit_epoch: int | None   # first evaluation epoch from which it stayed fitted; None: never
    forgets: int            # forgetting events (fitted -> unfitted between evaluations)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise SettingsError(f"suspects: n must be a positive integer, got {n!r}")
    return n


def rank_suspects(examples: Mapping[str, Any], labels: Sequence[int],
                  predictions: Sequence[int] | None, n: int) -> list[Suspect]:
    """The ``n`` latest-fitted examples: never fitted first, then by fit epoch, then forgets."""
    n = _check_n(n)
    fit_epoch, forgets = examples["fit_epoch"], examples["forgets"]
    late = _lateness(fit_epoch, examples.get("evaluations") or [])
    order = sorted(range(len(fit_epoch)), key=lambda i: (-late[i], -forgets[i], i))[:n]
    return [Suspect(index=i, label=int(labels[i]),
                    prediction=None if predictions is None else int(predictions[i]),
                    fit_epoch=None if fit_epoch[i] == NEVER else int(fit_epoch[i]),
                    forgets=int(forgets[i])) for i in order]


def _predictions(model: Any, x: Any, chunk: int = 1024) -> list[int] | None:
    """The model's classes for ``x`` (eval mode, no grad, CPU), or None without a model."""
    if model is None:
        return None
    import torch

    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    out = []
    with torch.no_grad():
        for lo in range(0, len(x), chunk):
            out.append(model(x[lo:lo + chunk].to(device, torch.float32)).argmax(dim=1).cpu())
    return torch.cat(out).tolist() if out else []


def suspects_from_run(run: FitResult, data: "Dataset", n: int = 20) -> list[Suspect]:
    """Suspects among ``data``'s training examples from a fit on their given labels."""
    n = _check_n(n)
    if not run.examples:
        raise DataError("suspects: the fit carries no per-example record (FitResult.examples)")
    if run.examples["n"] != len(data.train_y):
        raise DataError(f"suspects: the fit saw {run.examples['n']} examples, the data has "
                        f"{len(data.train_y)}; pass the training set the fit used")
    return rank_suspects(run.examples, data.train_y.tolist(),
                         _predictions(run.model, data.train_x), n)


def find_suspects(model_factory: Callable, data: "Dataset", settings: "CheckSettings | None" = None,
                  n: int = 20) -> list[Suspect]:
    """Fit ``data`` on its own labels and return the ``n`` likeliest mislabelled training examples.

    Indices refer to the training set as fitted (after ``settings.train_size`` subsetting).
    """
    from . import fits
    from .settings import CheckSettings

    n = _check_n(n)
    settings = settings if settings is not None else CheckSettings()
    data = fits.prepared(data, settings)
    run, _ = fits.get_run("true_labels", 0.0, model_factory, data, settings, None)
    return suspects_from_run(run, data, n)


def attach_suspects(result: CheckResult, data: "Dataset", settings: "CheckSettings", n: int,
                    cache: "RunCache | None" = None,
                    plot_path: "str | os.PathLike | None" = None) -> list[Suspect]:
    """Add the suspects of a ``true_labels`` result's fit to its tables and metrics.

    The trained model (for the predictions) comes from ``cache`` when the fit is still there;
    ``plot_path``: also draw their images there (:func:`rethink_checks.plots.plot_suspects`).
    """
    from . import fits

    n = _check_n(n)
    entry = result.runs.get("true_labels")
    if not entry or not entry.get("examples"):
        return []
    run = FitResult.from_dict(entry)
    cached = cache.get(tuple(entry.get("cache_key") or ())) if cache is not None else None
    run.model = getattr(cached, "model", None)
    data = fits.prepared(data, settings)
    suspects = suspects_from_run(run, data, n)
    if plot_path is not None:
        from .plots import plot_suspects

        plot_suspects(data.train_x, suspects, plot_path,
                      title=f"suspected mislabels ({getattr(data, 'name', '')})")
    result.tables["suspects"] = [s.to_dict() for s in suspects]
    result.metrics["suspects"] = len(suspects)
    result.metrics["suspects.indices"] = ",".join(str(s.index) for s in suspects)
    return suspects


def format_suspects(rows: Sequence[Mapping[str, Any]]) -> str:
    """A small text table of suspect rows (as in ``tables["suspects"]``)."""
    header = ["index", "label", "predicted", "fit epoch", "forgets"]
    body = [[str(r.get("index")), str(r.get("label")), _num(r.get("prediction"), "d") if
             r.get("prediction") is not None else "-", _num(r.get("fit_epoch"), "d"),
             str(r.get("forgets"))] for r in rows]
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(cells, widths))
                     for cells in [header] + body)
