"""Classification datasets held as tensors, and the sources that build them."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from .errors import DataError


@dataclass(frozen=True)
class Dataset:
    """Train and test images (float, N x C x H x W) and int64 labels, plus metadata."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    name: str = "tensors"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def to(self, device: torch.device | str) -> "Dataset":
        """The same dataset with every tensor on ``device``."""
        return replace(self, train_x=self.train_x.to(device), train_y=self.train_y.to(device),
                       test_x=self.test_x.to(device), test_y=self.test_y.to(device))

    def replace(self, **changes: Any) -> "Dataset":
        return replace(self, **changes)

    def subset(self, n_train: int, seed: int = 0, n_test: int | None = None) -> "Dataset":
        """A seeded random subset of ``n_train`` training (and optionally ``n_test``) examples."""
        gen = torch.Generator().manual_seed(seed)
        picks = {}
        for split, n in (("train", n_train), ("test", n_test)):
            x = getattr(self, f"{split}_x")
            if n is None:
                continue
            if not 1 <= n <= len(x):
                raise DataError(f"subset: n_{split}={n} is outside [1, {len(x)}] "
                                f"(the {split} split of {self.name!r} has {len(x)} examples)")
            idx = torch.randperm(len(x), generator=gen)[:n].sort().values.to(x.device)
            picks[f"{split}_x"] = x[idx]
            picks[f"{split}_y"] = getattr(self, f"{split}_y")[idx]
        return replace(self, name=f"{self.name}[{n_train}]", **picks)


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, offline), seeded split."""
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(len(x) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    return Dataset(x[train], y[train], x[test], y[test], num_classes=10, name="digits")
