"""Labels as users hand them over: classes left without training examples, and their remap.

Labels 1..10 with ``num_classes`` inferred make 11 classes, class 0 empty: the label
randomizations would draw from it too. :func:`warn_empty_classes` says so (a
:class:`~rethink_checks.errors.LabelWarning` naming the classes), :func:`remap_labels`
renumbers the classes present 0..k-1 when the user asks (``as_dataset(remap_labels=True)``).
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import torch

from .errors import LabelWarning

__all__ = ["warn_empty_classes", "remap_labels"]


def warn_empty_classes(train_y: torch.Tensor, num_classes: int) -> None:
    """A LabelWarning naming the classes without a training example and what the randomizations draw."""
    counts = torch.bincount(train_y[(train_y >= 0) & (train_y < num_classes)].cpu(), minlength=num_classes)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
        warnings.warn(f"class(es) {shown} of 0..{num_classes - 1} have no training example (labels "
                      f"{int(train_y.min())}..{int(train_y.max())}); random labels are drawn from all "
                      f"{num_classes} classes, the empty ones included. If the labels should start at 0, "
                      "pass remap_labels=True (as_dataset) or Dataset.remap_labels()", LabelWarning, stacklevel=3)


def remap_labels(data: Any) -> Any:
    """``data`` with the classes present in either split renumbered 0..k-1 in order (labels
    1..10 become 0..9), so every class the randomizations draw from has examples."""
    present = torch.unique(torch.cat([data.train_y.cpu(), data.test_y.cpu()]))
    lookup = torch.full((int(present.max()) + 1,), -1, dtype=torch.int64)
    lookup[present] = torch.arange(len(present))
    return replace(data, train_y=lookup[data.train_y.cpu()].to(data.train_y.device),
                   test_y=lookup[data.test_y.cpu()].to(data.test_y.device), num_classes=max(2, len(present)))
