"""The suspects item: the training examples likeliest to be mislabelled (the finder is
:mod:`rethink_checks.mislabels`, the check's body :mod:`rethink_checks.suspects`, imported when
it runs). It runs only on request (``--rethink-suspects=N`` or selected by name), and ``-k
memorization`` selects it too: it belongs to the memorization family."""
from __future__ import annotations

from .base import Check, deferred

__all__ = ["CHECK", "check_suspects"]

#: likely mislabelled training examples (rethink_checks.suspects.check_suspects, imported when run)
check_suspects = deferred("suspects", "check_suspects")

CHECK = Check(
    name="suspects", run=check_suspects,
    doc="lists the suspects training examples likeliest to be mislabelled (k-fold fits of the "
        "model: area under the margin and out-of-sample label quality); reports, never fails",
    settings=("suspects", "time_budget"), on_request=True, keywords=("memorization",))
