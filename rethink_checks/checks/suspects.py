"""The suspects item: the training examples likeliest to be mislabelled (the finder is
:mod:`rethink_checks.mislabels`, the check's body :mod:`rethink_checks.suspects`, imported when
it runs). It runs only on request (``--rethink-suspects=N`` or selected by name), and ``-k
memorization`` selects it too: it belongs to the memorization family."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..results import CheckResult
from .base import Check

if TYPE_CHECKING:  # pragma: no cover
    from ..data import Dataset
    from ..run_cache import RunCache
    from ..settings import CheckSettings

__all__ = ["CHECK", "check_suspects"]


def check_suspects(model_factory: Callable, data: "Dataset", settings: "CheckSettings",
                   cache: "RunCache | None" = None) -> CheckResult:
    """Likely mislabelled training examples (rethink_checks.suspects, imported when run)."""
    from ..suspects import check_suspects as impl

    return impl(model_factory, data, settings, cache)


CHECK = Check(
    name="suspects", run=check_suspects,
    doc="lists the suspects training examples likeliest to be mislabelled (k-fold fits of the "
        "model: area under the margin and out-of-sample label quality); reports, never fails",
    settings=("suspects", "time_budget"), on_request=True, keywords=("memorization",))
