"""Data fed through a ``torch.utils.data.DataLoader`` instead of one tensor: datasets too large
to materialize, or any dataset asked to stream (``as_dataset(obj, stream=True)``).

:class:`Streamed` holds map-style torch datasets of ``(input, label)`` items (their labels
read once, a small vector) and stands in for a :class:`~rethink_checks.dataset.Dataset`
where a fit needs one: ``subset`` picks the same seeded rows, the checks' corruptions apply
to it, and ``fit`` trains through :class:`_StreamLoop` (the materialized loop's own update
on each DataLoader batch: workers, pinned memory, a per-epoch user ``transform`` such as
augmentation, applied in the workers). Evaluation reads the splits in order, in chunks.

Randomizations are defined per index: labels (the same seeded label vector as the
materialized path, indexed) and shuffled pixels (one fixed permutation) give bit-identical
inputs and labels to the materialized path on the same data, so a streamed fit of a
deterministic CPU model repeats the materialized fit exactly (tests/test_streaming.py).
Random pixels and Gaussian noise draw each example from its own derived seed
(``derive_seed(seed, "item:<i>")``; the Gaussian statistics from one pass over the training
split): the same distribution as the materialized path, not the same draws. Image inputs
only; the analyses that solve over the whole training tensor (capacity, theory) need
materialized data.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .errors import DataError, NotApplicable
from .seeding import derive_seed
from .step import _Loop, _Placed

__all__ = ["Streamed", "streamed", "stream_if_large", "STREAM_ABOVE_BYTES", "estimated_bytes", "placed_split", "first_inputs"]

#: datasets whose float32 inputs would take more than this are streamed by ``as_dataset``
#: (a quarter of the machine's memory, at least 1 GiB; override with RETHINK_STREAM_ABOVE_BYTES)
STREAM_ABOVE_BYTES = int(os.environ.get("RETHINK_STREAM_ABOVE_BYTES", 0)) or max(
    1 << 30, (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 4 if hasattr(os, "sysconf") else 1 << 32)


def _as_image(value: Any, where: str) -> torch.Tensor:
    """An item's input as the materialized path stores it: float32, uint8 scaled by 1/255, (C, H, W)."""
    from .materialize import _as_tensor

    x = _as_tensor(value, where)
    x = x.div(255.0).to(torch.float32) if x.dtype == torch.uint8 else x.to(torch.float32)
    return x.unsqueeze(0) if x.dim() == 2 else x


def estimated_bytes(ds: Any) -> int:
    """The float32 size of a dataset's inputs, from its first item and its length."""
    return len(ds) * _as_image(ds[0][0], "item 0").numel() * 4


def _labels(ds: Any, what: str) -> torch.Tensor:
    """A dataset's labels: its ``targets`` when it has them, else read item by item."""
    from .materialize import _label

    targets = getattr(ds, "targets", None)
    if targets is not None and len(targets) == len(ds):
        return torch.as_tensor(targets, dtype=torch.int64).clone()
    return torch.tensor([_label(ds[i][1], f"{what} item {i}") for i in range(len(ds))], dtype=torch.int64)


@dataclasses.dataclass(frozen=True)
class _InputRandomization:
    """A per-index input randomization (picklable, so DataLoader workers apply it)."""

    name: str
    seed: int
    permutation: torch.Tensor | None = None
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None
    per_channel: bool = True

    def __call__(self, x: torch.Tensor, index: int) -> torch.Tensor:
        from .corruptions import gaussian_noise, random_pixels

        if self.name == "shuffled_pixels":
            return x.flatten(-2)[..., self.permutation].reshape(x.shape)
        seed = derive_seed(self.seed, f"item:{index}")
        if self.name == "random_pixels":
            return random_pixels(x[None], seed=seed)[0]
        return gaussian_noise(x[None], seed=seed, mean=self.mean, std=self.std, per_channel=self.per_channel)[0]


class _Items(torch.utils.data.Dataset):
    """One split as the fit sees it: rows of a user dataset, with labels and randomization."""

    def __init__(self, ds: Any, rows: torch.Tensor, labels: torch.Tensor, what: str,
                 transform: Callable | None = None, randomize: _InputRandomization | None = None):
        self.ds, self.rows, self.labels, self.what = ds, rows, labels, what
        self.transform, self.randomize = transform, randomize

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = int(self.rows[i])
        try:
            item = self.ds[row]
        except Exception as exc:  # the user's dataset: say which item
            raise DataError(f"{self.what} item {row}: reading it raised {type(exc).__name__}: {exc}") from exc
        x = _as_image(item[0], f"{self.what} item {row}")
        if self.transform is not None:
            x = self.transform(x)
        if self.randomize is not None:
            x = self.randomize(x, i)
        return x, self.labels[i]


@dataclasses.dataclass(frozen=True)
class Streamed:
    """Train and test torch datasets read through a DataLoader; see the module docstring.

    ``transform``: applied to each training input every epoch in the workers (augmentation),
    never to the test split or to evaluation. ``workers``: DataLoader worker processes;
    ``pin_memory``: None pins when training on a GPU.
    """

    train: Any
    test: Any
    num_classes: int
    train_y: torch.Tensor
    test_y: torch.Tensor
    train_rows: torch.Tensor
    test_rows: torch.Tensor
    name: str = "streamed"
    transform: Callable | None = None
    workers: int = 0
    pin_memory: bool | None = None
    randomize: tuple = (None, None)
    fit_defaults: dict = dataclasses.field(default_factory=dict)
    check_defaults: dict = dataclasses.field(default_factory=dict)
    kind: str = "image"
    vocab_size: None = None
    input_form: str = "tensor"
    input_keys: tuple = ()
    streamed: bool = True

    def __repr__(self) -> str:
        return (f"Streamed(name={self.name!r}, train={len(self.train_rows)}, test={len(self.test_rows)}, "
                f"num_classes={self.num_classes}, workers={self.workers})")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(_as_image(self.train[int(self.train_rows[0])][0], "train item 0").shape)

    @property
    def defaults(self) -> dict[str, Any]:
        return {**self.check_defaults, **self.fit_defaults}

    @property
    def train_x(self) -> Any:
        raise DataError("this analysis needs the training inputs as one tensor; the data is streamed "
                        "(as_dataset(..., stream=False) materializes it when it fits in memory)")

    def replace(self, **changes: Any) -> "Streamed":
        return dataclasses.replace(self, **changes)

    def to(self, device: Any) -> "Streamed":
        return self  # batches move to the device as they are read

    def subset(self, n_train: int, seed: int = 0, n_test: int | None = None) -> "Streamed":
        """The rows :meth:`Dataset.subset` picks with the same seed (a seeded sorted sample)."""
        gen = torch.Generator().manual_seed(seed)
        changes: dict[str, Any] = {"name": f"{self.name}[{n_train}]"}
        for split, n in (("train", n_train), ("test", n_test)):
            rows = getattr(self, f"{split}_rows")
            if n is None:
                continue
            if not 1 <= n <= len(rows):
                raise DataError(f"subset: n_{split}={n} is outside [1, {len(rows)}]")
            idx = torch.randperm(len(rows), generator=gen)[:n].sort().values
            changes.update({f"{split}_rows": rows[idx], f"{split}_y": getattr(self, f"{split}_y")[idx]})
        return self.replace(**changes)

    def with_inputs_randomized(self, spec: Any, test_seed: int) -> "Streamed":
        """This data with ``spec`` (an input randomization) applied per index to both splits."""
        from .corruptions import image_statistics, pixel_permutation

        shape = self.input_shape
        if spec.name == "shuffled_pixels":
            perm = pixel_permutation(*shape[-2:], seed=spec.seed)
            return self.replace(randomize=(_InputRandomization(spec.name, spec.seed, perm),) * 2)
        if spec.name == "random_pixels":
            return self.replace(randomize=(_InputRandomization(spec.name, spec.seed),
                                           _InputRandomization(spec.name, test_seed)))
        if spec.name != "gaussian":
            raise NotApplicable(spec.name, "streamed", "not an input randomization of images")
        mean, std = self._statistics(spec.per_channel, image_statistics)
        return self.replace(randomize=tuple(_InputRandomization(spec.name, s, None, mean, std, spec.per_channel)
                                            for s in (spec.seed, test_seed)))

    def _statistics(self, per_channel: bool, statistics: Callable) -> tuple[torch.Tensor, torch.Tensor]:
        """The training split's mean and std (float64 sums over one pass, chunked)."""
        total = squares = None
        count = 0
        for x, _ in self.loader("train", None, 256, train=False):
            x = x.to(torch.float64)
            dims = (0, 2, 3) if per_channel else tuple(range(x.dim()))
            s, q = x.sum(dims), (x * x).sum(dims)
            total, squares = (s, q) if total is None else (total + s, squares + q)
            count += x.numel() // (x.shape[1] if per_channel else 1)
        mean = total / count
        return mean.float(), (squares / count - mean * mean).clamp_min(0).sqrt().float()

    def items(self, split: str, train: bool) -> _Items:
        """One split as a torch Dataset of (input, label), randomized, transformed when training."""
        ds = self.train if split == "train" else self.test
        randomize = self.randomize[0 if split == "train" else 1]
        return _Items(ds, getattr(self, f"{split}_rows"), getattr(self, f"{split}_y"), f"{split} dataset",
                      self.transform if train else None, randomize)

    def loader(self, split: str, order: Any, batch_size: int, train: bool,
               device: torch.device | None = None) -> torch.utils.data.DataLoader:
        """A DataLoader over ``split`` in ``order`` (a list of positions; None: in order)."""
        pin = self.pin_memory if self.pin_memory is not None else bool(device is not None and device.type == "cuda")
        return torch.utils.data.DataLoader(
            self.items(split, train), batch_size=batch_size, sampler=order, shuffle=False,
            num_workers=self.workers, pin_memory=pin, persistent_workers=False)


def stream_if_large(obj: Any, stream: bool | None = None, **options: Any) -> Streamed | None:
    """``obj`` (one map-style torch dataset or a pair) as a :class:`Streamed` when ``stream`` is
    True, or None and its float32 inputs would exceed :data:`STREAM_ABOVE_BYTES`; else None
    (materialize it). ``options`` go to :func:`streamed`."""
    from .materialize import _is_map_dataset

    parts = obj if isinstance(obj, (tuple, list)) and len(obj) == 2 else [obj]
    if stream is False or not all(_is_map_dataset(ds) for ds in parts):
        return None
    if not stream:
        try:
            if sum(estimated_bytes(ds) for ds in parts) <= STREAM_ABOVE_BYTES:
                return None
        except Exception:  # not images, or an unreadable first item: the materialized read says why
            return None
    return streamed(obj, **options)


def streamed(obj: Any, *, seed: int = 0, test_fraction: float = 0.2, num_classes: int | None = None,
             transform: Callable | None = None, workers: int = 0, pin_memory: bool | None = None) -> Streamed:
    """A :class:`Streamed` from a pair ``(train, test)`` of map-style torch datasets or one
    dataset (split as :func:`~rethink_checks.data.as_dataset` splits it, with ``seed``)."""
    from .materialize import _classes, split_indices

    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        train, test = obj
        ty, vy = _labels(train, "train dataset"), _labels(test, "test dataset")
        train_rows, test_rows = torch.arange(len(train)), torch.arange(len(test))
    else:
        train = test = obj
        labels = _labels(obj, "dataset")
        train_rows, test_rows = split_indices(len(obj), seed, test_fraction)
        ty, vy = labels[train_rows], labels[test_rows]
    k = num_classes or _classes(train) or int(max(ty.max(), vy.max())) + 1
    for what, y in (("train", ty), ("test", vy)):
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
            raise DataError(f"{what} labels must lie in [0, {k}); got [{int(y.min())}, {int(y.max())}]")
    return Streamed(train, test, k, ty, vy, train_rows, test_rows, name=type(train).__name__,
                    transform=transform, workers=workers, pin_memory=pin_memory)


class _StreamedSplit:
    """A streamed split as the fit's evaluation reads it (``_Placed``'s ``rows``/``select``/``y``)."""

    form, keys, nhwc = "tensor", (), False

    def __init__(self, data: Streamed, split: str, device: torch.device, channels_last: bool):
        self.data, self.split, self.device, self.channels_last = data, split, device, channels_last
        self.y = getattr(data, f"{split}_y").to(device)
        self.index: torch.Tensor | None = None  # a sample's positions in the split
        self.x = None

    def __len__(self) -> int:
        return len(self.y)

    def place(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def rows(self, lo: int, hi: int) -> torch.Tensor:
        positions = list(range(lo, min(hi, len(self))))
        if self.index is not None:
            positions = self.index[lo:hi].tolist()
        loader = self.data.loader(self.split, positions, len(positions), train=False, device=self.device)
        return self.place(next(iter(loader))[0])

    def select(self, index: torch.Tensor) -> "_StreamedSplit":
        sample = _StreamedSplit(self.data, self.split, self.device, self.channels_last)
        sample.index = index.cpu() if self.index is None else self.index[index.cpu()]
        sample.y = self.y.index_select(0, index)
        return sample


class _StreamLoop(_Loop):
    """The training loop over DataLoader batches: the materialized loop's update, batch by batch."""

    def __init__(self, model: nn.Module, train: _StreamedSplit, config: Any, lr: float, autocast,
                 graph: bool = False):
        super().__init__(model, train, config, lr, autocast, graph)
        self.order: list[int] = []
        self.augment = config.augment
        self.crops = torch.Generator().manual_seed(config.seed + 1_000_003)

    def start_epoch(self, perm: torch.Tensor, source: torch.Tensor | None) -> None:
        self.order = perm.tolist()[: self.full_steps * self.batch + self.tail]
        self.loss_sum.zero_()
        self.correct_sum.zero_()

    def run_epoch(self, first: int, steps: int, full: Any = None, tail: Any = None) -> None:
        """The epoch's first ``steps`` steps, one per DataLoader batch in the epoch's order."""
        from .augment import augment_images

        loader = self.train.data.loader("train", self.order, self.batch, train=True, device=self.train.device)
        for i, (x, y) in enumerate(loader):
            if i >= steps:
                break
            self.steps_done = first + i
            self.recipe.set_step(first + i)
            x = self.train.place(x)
            if self.augment:
                x = augment_images(x, self.crops)
            self.update(x, y.to(self.train.device, non_blocking=True), i < self.full_steps)


def placed_split(data: Any, split: str, device: torch.device, conv: bool) -> Any:
    """The split a fit reads: on the device when materialized, a DataLoader view when streamed."""
    if getattr(data, "streamed", False):
        return _StreamedSplit(data, split, device, conv)
    return _Placed.of(data, split, device, conv)


def first_inputs(data: Any, device: torch.device) -> torch.Tensor:
    """Two training inputs on the device (the fit's channels_last trial)."""
    if getattr(data, "streamed", False):
        return placed_split(data, "train", device, False).rows(0, 2)
    return data.train_x[:2].to(device)
