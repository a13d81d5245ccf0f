"""``--dist loadgroup`` that keeps each model's items on one worker: pytest-xdist's own
``LoadGroupScheduling`` with the group read from a rethink item's node id.

xdist's ``xdist_group`` marks no longer reach the node ids the scheduler groups by (pytest 9.2,
pytest-xdist 3.8), so the plugin adds none: a rethink item's scope is its model (module plus
fixture parameter, read with :meth:`.item_id.ItemId.parse`), every other test keeps xdist's
rule. Imported only when xdist asks for a scheduler.
"""
from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadGroupScheduling

from .item_id import ItemId

__all__ = ["ModelGroupScheduling", "model_group"]


def model_group(nodeid: str, checks: tuple[str, ...]) -> str | None:
    """``rethink:<module>[<param>]`` for a rethink item's node id, None for any other test.

    ``mod.py::rethink[random_labels-mlp1x512]`` and ``mod.py::rethink[slowdown-mlp1x512]``
    share ``rethink:mod.py[mlp1x512]``; ``mod.py::rethink[true_labels]`` is ``rethink:mod.py``.
    """
    if "@" in nodeid:  # an xdist_group suffix of the test's own: xdist's rule
        return None
    item = ItemId.parse(nodeid, checks)
    return None if item is None else f"rethink:{item.model_key}"


class ModelGroupScheduling(LoadGroupScheduling):
    """xdist's loadgroup scheduling, one scope per rethink model (see the module docstring)."""

    def __init__(self, config: Any, log: Any = None, checks: tuple[str, ...] = ()) -> None:
        super().__init__(config, log)
        self.checks = checks

    def _split_scope(self, nodeid: str) -> str:
        group = model_group(nodeid, self.checks)
        return group if group is not None else super()._split_scope(nodeid)
