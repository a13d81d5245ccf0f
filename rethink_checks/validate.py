"""Data-validation helpers shared by the engine's analyses (capacity search, Theorem 1 check).

Kept apart from ``data`` (loading) and ``theory`` (the constructions) so that a module that
only needs to validate its input imports neither. Errors are :class:`~rethink_checks.errors.DataError`
naming the argument, the value and what is allowed.
"""
from __future__ import annotations

from typing import Any

__all__ = ["require_training_examples"]


def require_training_examples(data: Any) -> int:
    """Number of training examples; DataError (naming ``data``) when none or any is NaN/inf."""
    import torch

    from .errors import DataError

    total = len(data.train_x)
    if total == 0:
        raise DataError(f"data: the training split of {getattr(data, 'name', 'the dataset')!r} is empty")
    finite = torch.isfinite(data.train_x.reshape(total, -1)).all(1)
    if not finite.all():
        bad = torch.nonzero(~finite).flatten()
        raise DataError(f"data: {len(bad)} training example(s) hold NaN/inf values, e.g. indices "
                        f"{bad[:10].tolist()}; the inputs must be finite")
    return total
