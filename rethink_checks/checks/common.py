"""What the fit-based checks share: the one fit of a single-fit check, its table row and wording.

A check module (``true_labels``, ``memorize``, ``partial_labels``, ``slowdown``, ...) calls
:mod:`rethink_checks.fits` for its fits and these helpers for what every such check reports;
nothing here judges (each check's ``judge`` does).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..fits import get_run, num_classes, prepared, run_metrics
from ..results import FitResult, table_summary
from .base import Verdict

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset
    from ..run_cache import RunCache
    from ..settings import CheckSettings

__all__ = ["single_fit", "fit_summary", "fmt", "regularizers_in", "as_trained", "fitted_verdict",
           "SINGLE_FIT_COLUMNS", "SINGLE_FIT_MEANS"]

#: the metrics a single-fit check shows per seed, and whose means a passing multi-seed message gives
SINGLE_FIT_COLUMNS = ("train_accuracy", "test_accuracy", "epochs_to_fit")
SINGLE_FIT_MEANS = ("epochs_to_fit", "test_accuracy")


def regularizers_in(run: FitResult, model_factory: Callable, config: Any) -> str:
    """The regularizers a fit trained with (model as built, minus what the config removed).

    ``dropout`` and ``batchnorm`` name modules found in the trained model (functional dropout
    inside ``forward`` is invisible); ``weight_decay`` and ``augment`` come from the config.
    "none" when there were none.
    """
    from torch import nn

    from ..regularizers import BATCHNORM_TYPES, DROPOUT_TYPES

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


def as_trained(regularizers: str) -> str:
    """Criterion wording for the regularizers a memorization fit kept."""
    if regularizers == "none":
        return "no regularizers"
    hint = ("; remove: dropout trains without it, as the paper's randomization runs did"
            if "dropout" in regularizers.split(",") else "")
    return f"the model's regularizers as built ({regularizers}{hint})"


def single_fit(name: str, p: float, threshold: float, model_factory: Callable, data: "Dataset",
               settings: "CheckSettings", cache: "RunCache | None") -> tuple[FitResult, tuple, dict]:
    """The one fit of a single-fit check (true labels or a memorization) and its metrics."""
    data = prepared(data, settings)
    run, key = get_run(name, p, model_factory, data, settings, cache)
    metrics = {**run_metrics(run, threshold), "chance": 1.0 / num_classes(data),
               "regularizers_in_model": regularizers_in(run, model_factory, settings.fit)}
    return run, key, metrics


def fitted_verdict(metrics: Any, settings: Any) -> Verdict:
    """The judge of a single-fit check: its fit reached the threshold (``metrics["fitted"]``)."""
    passed = bool(metrics.get("fitted"))
    return Verdict(passed, {} if passed else {"fit": "not fitted"})


def fit_summary(run: FitResult) -> dict[str, Any]:
    """The summary-table row of a single-fit check: its fit's accuracies and epochs to fit."""
    return table_summary(train=run.train_accuracy, test=run.test_accuracy,
                         epochs=run.epochs_to_fit)


def fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4f}"
