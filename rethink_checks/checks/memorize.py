"""The memorization checks, one per randomization of the paper: the model fits randomized data.

``random_labels``, ``shuffled_pixels``, ``random_pixels`` and ``gaussian`` share one
criterion (train accuracy >= ``memorize_threshold`` on the randomized training set); the
randomizations come from :mod:`rethink_checks.randomizations`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..fits import fit_message, num_classes, run_record
from ..randomizations import MEMORIZED
from ..results import CheckResult
from .base import Check
from .common import (SINGLE_FIT_COLUMNS, SINGLE_FIT_MEANS, as_trained, fit_summary, fitted_verdict, fmt,
                     single_fit)

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset
    from ..run_cache import RunCache
    from ..settings import CheckSettings

__all__ = ["CHECKS", "memorization_check"]


def memorization_check(name: str) -> Callable[..., CheckResult]:
    """The run function of the memorization check of randomization ``name``."""
    def check(model_factory: Callable, data: "Dataset", settings: "CheckSettings",
              cache: "RunCache | None" = None) -> CheckResult:
        t = settings.memorize_threshold
        run, key, metrics = single_fit(name, 1.0, t, model_factory, data, settings, cache)
        passed = fitted_verdict(metrics, settings).passed
        msg = (f"memorized {name} in {run.epochs_to_fit} epochs "
               f"(test accuracy {fmt(run.test_accuracy)}, chance {metrics['chance']:.3f})"
               if passed else fit_message(f"{name} not memorized", run, t, num_classes(data)))
        return CheckResult(name, passed, f"train accuracy >= {t} on {name} within "
                           f"{settings.fit.max_epochs} epochs (memorization), trained with "
                           f"{as_trained(metrics['regularizers_in_model'])}", msg, metrics,
                           runs={name: run_record(run, key)}, summary=fit_summary(run))

    check.__name__ = f"check_{name}"
    check.__doc__ = f"Memorization: the model fits the {name} randomization of the training set."
    return check


CHECKS = tuple(
    Check(name=name, run=memorization_check(name), judge=fitted_verdict,
          doc=f"the model memorizes {name} (train accuracy >= memorize_threshold)",
          fits=(name,), metrics=SINGLE_FIT_COLUMNS,
          settings=("memorize_threshold", "label_mode", "fit"), word="memorized",
          seed_columns=SINGLE_FIT_COLUMNS, mean_columns=SINGLE_FIT_MEANS)
    for name in MEMORIZED)
