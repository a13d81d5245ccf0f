"""Classification datasets held as tensors, and the sources that build them.

Sources: scikit-learn's bundled digits (offline default), CIFAR-10 and MNIST in
torchvision's layout, image folders (``train/<class>/*``, ``test/<class>/*``, or a
``.tar.gz`` of one; decoded once and cached as ``.npy`` by :mod:`rethink_checks.imagefolder`),
tensors or numpy arrays, and torch datasets (:func:`as_dataset`, materialized once by
:mod:`rethink_checks.materialize`). Three input kinds: images come back as float32 in [0, 1],
N x C x H x W (unless paper-preprocessed); feature vectors as float32 N x D; token sequences as
int64 N x L of ids in [0, vocab_size). Labels are int64. See docs/data.md.
"""
from __future__ import annotations

import math
import os
import pickle
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DataError, InputTypeError
from .imagefolder import IMAGE_EXTENSIONS, default_cache_dir, read_image_folder
from .specs import SPEC_OPTIONS, DataSpec, parse_spec

__all__ = [
    "Dataset", "KINDS", "infer_kind", "from_tensors", "from_arrays", "as_dataset", "paper_preprocess", "DIGITS_FIT_DEFAULTS",
    "load_digits", "load_cifar10", "load_mnist", "load_image_folder", "default_cache_dir",
    "IMAGE_EXTENSIONS", "SPEC_OPTIONS", "DataSpec", "parse_spec", "load",
]


#: Input kinds: images (N, C, H, W), feature vectors (N, D), token sequences (N, L) of integer ids.
KINDS = ("image", "features", "tokens")


def infer_kind(x: torch.Tensor) -> str:
    """The input kind of a batch: rank 2 is ``tokens`` when integer, ``features`` otherwise; else ``image``."""
    if x.dim() == 2:
        integer = not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool)
        return "tokens" if integer else "features"
    return "image"


def _fits_kind(kind: str, x: torch.Tensor) -> bool:
    """Whether a stored input tensor has the layout of ``kind`` (used to re-infer after replace)."""
    if kind == "image":
        return x.dim() != 2
    return x.dim() == 2 and (kind == "features" or infer_kind(x) == "tokens")


def _token_range(x: torch.Tensor, arg: str) -> int:
    """The largest id in a token batch (-1 when empty); a negative id is a DataError naming where."""
    if x.numel() == 0:
        return -1
    if bool((x < 0).any()):
        row, col = (int(i) for i in (x < 0).nonzero()[0])
        raise DataError(f"{arg}: token id {int(x[row, col])} at example {row}, position {col} is "
                        "negative; expected token ids >= 0 (indices into an embedding table)")
    return int(x.max())


@dataclass(frozen=True)
class Dataset:
    """Train and test inputs, int64 labels, and metadata.

    ``kind`` says what the inputs are: ``image`` (float, N x C x H x W), ``features`` (float,
    N x D) or ``tokens`` (int64 ids, N x L); None infers it with :func:`infer_kind`.
    ``vocab_size`` (tokens only; None: largest id in either split + 1) bounds the ids, so a
    model's embedding table can be sized from it.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    name: str = "tensors"
    #: Training settings that suit this data when the user sets none (the checks layer them
    #: under every user setting); empty for most sources, see :data:`DIGITS_FIT_DEFAULTS`.
    fit_defaults: dict[str, Any] = field(default_factory=dict, compare=False)
    kind: str | None = None
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        kind = infer_kind(self.train_x) if self.kind is None else self.kind
        if kind not in KINDS:
            raise DataError(f"kind={self.kind!r} is not allowed; expected one of {', '.join(KINDS)}")
        object.__setattr__(self, "kind", kind)
        if kind != "tokens":
            if self.vocab_size is not None:
                raise DataError(f"vocab_size={self.vocab_size!r} applies only to kind='tokens', "
                                f"not {kind!r}; expected None")
            return
        top = max(_token_range(self.train_x, "train_x"), _token_range(self.test_x, "test_x"))
        if self.vocab_size is None:
            object.__setattr__(self, "vocab_size", top + 1)
        elif isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, (int, np.integer)) \
                or self.vocab_size <= top:
            raise DataError(f"vocab_size={self.vocab_size!r} is not allowed; expected an int greater "
                            f"than the largest token id ({top})")
        object.__setattr__(self, "vocab_size", int(self.vocab_size))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def to(self, device: torch.device | str) -> "Dataset":
        """The same dataset with every tensor on ``device``."""
        return replace(self, train_x=self.train_x.to(device), train_y=self.train_y.to(device),
                       test_x=self.test_x.to(device), test_y=self.test_y.to(device))

    def replace(self, **changes: Any) -> "Dataset":
        """A copy with ``changes``; new inputs of another layout (say, flattened images) re-infer
        ``kind`` and ``vocab_size`` unless those are given too."""
        x = changes.get("train_x")
        if x is not None and "kind" not in changes and not _fits_kind(self.kind, x):
            changes = {"kind": None, "vocab_size": None, **changes}
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

    def __repr__(self) -> str:
        """A one-line summary (the default repr would print every tensor)."""
        return (f"Dataset(name={self.name!r}, train={len(self.train_x)}, test={len(self.test_x)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes}, kind={self.kind!r}, "
                + (f"vocab_size={self.vocab_size}, " if self.kind == "tokens" else "")
                + f"dtype={self.train_x.dtype}, device={self.train_x.device})")


# --------------------------------------------------------------------------- tensors and arrays

_CHANNEL_COUNTS = (1, 3, 4)


_ALLOWED_INPUTS = ("expected images (N, C, H, W) or (N, H, W), float feature vectors (N, D) "
                   "or integer token ids (N, L)")


def _inputs(x: Any, arg: str, kind: str | None) -> tuple[torch.Tensor, str]:
    """Validate one input batch of ``kind`` (None: inferred) and return it stored, with its kind.

    Images: rank 3 (N,H,W) or 4 (N,C,H,W), uint8 (divided by 255) or float, finite. Features:
    rank 2, float (integers are converted), finite. Tokens: rank 2, integer ids >= 0, int64.
    """
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{arg}: expected a torch.Tensor, got {type(x).__name__} (use from_arrays for numpy)")
    if kind is not None and kind not in KINDS:
        raise DataError(f"kind={kind!r} is not allowed; expected one of {', '.join(KINDS)} or None (inferred)")
    if x.dim() not in (2, 3, 4):
        raise DataError(f"{arg}: rank {x.dim()} (shape {tuple(x.shape)}) is not allowed; {_ALLOWED_INPUTS}")
    kind = kind or infer_kind(x)
    if (kind == "image") == (x.dim() == 2):
        want = "rank 3 or 4" if kind == "image" else "rank 2"
        raise DataError(f"{arg}: rank {x.dim()} (shape {tuple(x.shape)}) does not fit kind={kind!r}; "
                        f"expected {want}")
    if len(x) == 0:
        raise DataError(f"{arg}: has no examples (shape {tuple(x.shape)}); expected at least 1")
    if x.dtype == torch.bool or x.is_complex():
        raise InputTypeError(f"{arg}: dtype {x.dtype} is not allowed; expected a real numeric dtype")
    if kind == "tokens":
        if x.is_floating_point():
            raise InputTypeError(f"{arg}: dtype {x.dtype} is not allowed for kind='tokens'; expected "
                                 "integer token ids (e.g. int64)")
        _token_range(x, arg)
        return x.to(torch.int64), kind
    if kind == "image" and x.dtype == torch.uint8:
        x = x.div(255.0).to(torch.float32)  # one pass; also copies read-only (memory-mapped) input
    elif x.is_floating_point() or kind == "features":
        x = x.to(torch.float32)
        if not bool(torch.isfinite(x).all()):
            what = "pixel values" if kind == "image" else "feature values"
            raise DataError(f"{arg}: contains NaN or infinite values; expected finite {what}")
    else:
        raise InputTypeError(f"{arg}: dtype {x.dtype} is not allowed; expected uint8 (scaled by 1/255) or a float dtype")
    return (x.unsqueeze(1) if x.dim() == 3 else x), kind


def _labels(y: Any, arg: str, n: int, x_arg: str) -> torch.Tensor:
    """Validate one label vector: rank 1, integer dtype, one label per image."""
    if not isinstance(y, torch.Tensor):
        raise InputTypeError(f"{arg}: expected a torch.Tensor, got {type(y).__name__} (use from_arrays for numpy)")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise InputTypeError(f"{arg}: dtype {y.dtype} is not allowed; expected integer class indices (e.g. int64)")
    if y.dim() != 1:
        raise DataError(f"{arg}: rank {y.dim()} (shape {tuple(y.shape)}) is not allowed; expected (N,)")
    if len(y) != n:
        raise DataError(f"{arg}: has {len(y)} labels but {x_arg} has {n} images; expected equal lengths")
    return y.to(torch.int64)


def from_tensors(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 num_classes: int | None = None, name: str = "tensors", *, kind: str | None = None,
                 vocab_size: int | None = None) -> Dataset:
    """A validated Dataset from input tensors and integer labels.

    Inputs: images (N,C,H,W or N,H,W; uint8 -> /255), float feature vectors (N,D) or integer
    token ids (N,L); ``kind`` None infers it from train_x (:func:`infer_kind`).
    """
    tx, kind = _inputs(train_x, "train_x", kind)
    vx, _ = _inputs(test_x, "test_x", kind)
    if tx.shape[1:] != vx.shape[1:]:
        what = {"image": "image shape", "features": "feature shape", "tokens": "sequence shape"}[kind]
        raise DataError(f"test_x: {what} {tuple(vx.shape[1:])} differs from train_x's "
                        f"{tuple(tx.shape[1:])}; expected the same per-example shape for both splits")
    ty = _labels(train_y, "train_y", len(tx), "train_x")
    vy = _labels(test_y, "test_y", len(vx), "test_x")
    hi = int(torch.maximum(ty.max(), vy.max().to(ty.device)))
    if num_classes is None:
        num_classes = hi + 1
        if num_classes < 2:
            raise DataError(f"num_classes: inferred {num_classes} from the labels (max {hi}); "
                            "expected at least 2 classes, pass num_classes explicitly")
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise DataError(f"num_classes={num_classes!r} is not allowed; expected an int >= 2")
    num_classes = int(num_classes)
    for arg, y in (("train_y", ty), ("test_y", vy)):
        bad = (y < 0) | (y >= num_classes)
        if bool(bad.any()):
            index = int(bad.nonzero()[0])
            raise DataError(f"{arg}: label {int(y[index])} is outside [0, {num_classes}) at index {index} "
                            f"(num_classes={num_classes}); expected class indices 0..{num_classes - 1}")
    return Dataset(tx, ty, vx, vy, num_classes=num_classes, name=name, kind=kind, vocab_size=vocab_size)


def _to_nchw(a: np.ndarray, arg: str, layout: str) -> np.ndarray:
    """A rank-4 array in N,C,H,W order; ``layout`` "auto" treats a trailing 1/3/4 axis as channels."""
    if a.ndim != 4 or layout == "NCHW":
        return a
    if layout == "NHWC" or (a.shape[-1] in _CHANNEL_COUNTS and a.shape[1] not in _CHANNEL_COUNTS):
        return a.transpose(0, 3, 1, 2)
    return a


def from_arrays(train_x: Any, train_y: Any, test_x: Any, test_y: Any, num_classes: int | None = None,
                name: str = "arrays", layout: str = "auto", *, kind: str | None = None,
                vocab_size: int | None = None) -> Dataset:
    """A Dataset from numpy arrays: images N,H,W,C or N,C,H,W (``layout``: auto | NHWC | NCHW),
    feature vectors N,D (float) or token ids N,L (integer); ``kind`` as in :func:`from_tensors`."""
    if layout not in ("auto", "NHWC", "NCHW"):
        raise DataError(f"layout={layout!r} is not allowed; expected 'auto', 'NHWC' or 'NCHW'")
    tensors = {}
    for arg, value in (("train_x", train_x), ("train_y", train_y), ("test_x", test_x), ("test_y", test_y)):
        try:
            a = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{arg}: cannot be read as a numpy array ({exc})") from None
        if a.dtype.kind not in "biuf":
            raise InputTypeError(f"{arg}: dtype {a.dtype} is not allowed; expected a numeric array")
        if arg.endswith("_x"):
            a = _to_nchw(a, arg, layout)
        tensors[arg] = torch.from_numpy(np.ascontiguousarray(a))
    return from_tensors(**tensors, num_classes=num_classes, name=name, kind=kind, vocab_size=vocab_size)


def as_dataset(obj: Any, *, seed: int = 0, test_fraction: float = 0.2, num_classes: int | None = None,
               kind: str | None = None, cache_dir: str | os.PathLike | None = None,
               cache: bool | None = None) -> Dataset:
    """A Dataset from whatever the user holds: a Dataset (returned as is), a spec string
    (:func:`load`), a pair ``(train, test)`` of map-style torch datasets of ``(input, label)``
    items, one such dataset or a list of such items (split with ``seed`` and ``test_fraction``),
    or a tuple of arrays or tensors ``(x, y)`` (split likewise) / ``(train_x, train_y, test_x, test_y)``.

    Torch datasets are read item by item once (a progress line on stderr for long reads) and
    cached on disk (``cache``: None when the read was slow, True always, False never;
    :mod:`rethink_checks.materialize` says under which key).
    """
    if isinstance(obj, Dataset):
        return obj
    if isinstance(obj, str):
        return load(obj)
    from .materialize import materialize

    return materialize(obj, seed=seed, test_fraction=test_fraction, num_classes=num_classes, kind=kind,
                       cache_dir=cache_dir, cache=cache)


# --------------------------------------------------------------------------- paper preprocessing

def paper_preprocess(images: torch.Tensor, size: int = 28) -> torch.Tensor:
    """Centre crop to ``size`` x ``size`` and whiten each image (the paper's CIFAR-10 input pipeline).

    Whitening: subtract the image's mean and divide by max(std, 1/sqrt(values per image)),
    like TensorFlow's ``per_image_standardization``. Accepts one image (C,H,W) or a batch
    (N,C,H,W); uint8 input is scaled by 1/255 first. Returns a new float tensor.
    """
    if not isinstance(images, torch.Tensor):
        raise InputTypeError(f"images: expected a torch.Tensor, got {type(images).__name__}")
    if images.dim() not in (3, 4):
        raise DataError(f"images: rank {images.dim()} (shape {tuple(images.shape)}) is not allowed; "
                        "expected one image (C, H, W) or a batch (N, C, H, W)")
    h, w = images.shape[-2:]
    if h < size or w < size:
        raise DataError(f"images: {h}x{w} is smaller than the {size}x{size} centre crop; "
                        f"expected height and width >= {size}")
    if images.dtype == torch.uint8:
        x = images.to(torch.float32) / 255.0
    elif images.is_floating_point():
        x = images
    else:
        raise InputTypeError(f"images: dtype {images.dtype} is not allowed; expected uint8 or a float dtype")
    top, left = (h - size) // 2, (w - size) // 2
    x = x[..., top:top + size, left:left + size]
    dims = (-3, -2, -1)
    mean = x.mean(dim=dims, keepdim=True)
    std = x.std(dim=dims, keepdim=True, unbiased=False)
    floor = 1.0 / math.sqrt(x.shape[-3] * size * size)
    return (x - mean) / std.clamp(min=floor)


# --------------------------------------------------------------------------- scikit-learn digits

#: The paper decays the learning rate x0.95 every 391 optimizer steps (FitConfig.lr_decay_steps),
#: so the decay itself suits any data. What the digits still need is steps: 1,438 images give 12
#: steps an epoch at batch 128, and MLP 1x512 (lr 0.01) does not memorize random labels in 300
#: such epochs (93% train accuracy; true labels take 171). At batch 32 (45 steps an epoch) it
#: memorizes them in 125 epochs (5,625 steps) with the paper's decay, 102 with a constant rate;
#: the 400-digit CNN of examples/test_custom_cnn.py needs 80 either way. So the digits default to
#: batch 32 and 300 epochs, and keep the paper's decay (measured: docs/data.md, "Digits
#: training defaults"). Any user setting overrides these.
DIGITS_FIT_DEFAULTS: dict[str, Any] = {"batch_size": 32, "max_epochs": 300}


def load_digits(seed: int = 0, test_fraction: float = 0.2, whiten: bool = False) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, offline), seeded split.

    ``whiten`` applies the paper's per-image whitening (as for CIFAR-10, without the crop);
    the ``digits`` data spec, the plugin's default, uses it together with DIGITS_FIT_DEFAULTS.
    """
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(len(x) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    if whiten:
        x = paper_preprocess(x, size=8)
    return Dataset(x[train], y[train], x[test], y[test], num_classes=10, name="digits")


# --------------------------------------------------------------------------- CIFAR-10 (torchvision layout)

_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = ("test_batch",)


def _find_layout(root: Path, candidates: tuple[Path, ...], marker: str) -> Path | None:
    """The first candidate folder holding ``marker`` (a file name), or None."""
    for folder in candidates:
        if (folder / marker).is_file() or (folder / f"{marker}.gz").is_file():
            return folder
    return None


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR-10 batch as (N, 3, 32, 32) uint8 images and int64 labels."""
    try:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")
        batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
        images = data.reshape(len(data), 3, 32, 32)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"load_cifar10: {path} is not a readable CIFAR-10 batch "
                        f"(a pickled dict with 'data' N x 3072 and 'labels'): {exc}") from None
    if len(labels) != len(images):
        raise DataError(f"load_cifar10: {path} has {len(images)} images but {len(labels)} labels")
    return images, labels


def load_cifar10(root: str | os.PathLike, download: bool = False, paper_preprocessing: bool = False) -> Dataset:
    """CIFAR-10 from torchvision's layout (``ROOT/cifar-10-batches-py/``); downloads only if asked."""
    root = Path(root).expanduser().absolute()
    if download:
        _torchvision_download("CIFAR10", root)
    folder = _find_layout(root, (root / _CIFAR_DIR, root), "data_batch_1")
    if folder is None:
        raise DataError(
            f"load_cifar10: no CIFAR-10 at root={str(root)!r} (looked for {root / _CIFAR_DIR}/data_batch_1..5 "
            f"and test_batch, torchvision's layout). Pass download=True (spec 'cifar10:ROOT,download') to "
            "fetch it (~170 MB), unpack cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
            "into ROOT, or use load_image_folder for a train/<class>/ test/<class>/ image folder.")
    splits = []
    for names in (_CIFAR_TRAIN, _CIFAR_TEST):
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise DataError(f"load_cifar10: {folder} lacks {', '.join(missing)}; expected data_batch_1..5 and "
                            "test_batch (torchvision's layout); re-extract the archive or pass download=True")
        parts = [_read_cifar_batch(folder / n) for n in names]
        splits.append((np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])))
    (tx, ty), (vx, vy) = splits
    data = from_tensors(torch.from_numpy(tx), torch.from_numpy(ty), torch.from_numpy(vx), torch.from_numpy(vy),
                        num_classes=10, name="cifar10")
    return _paper(data) if paper_preprocessing else data


def _paper(data: Dataset) -> Dataset:
    """``data`` with the paper's crop and whitening applied to both splits."""
    return data.replace(train_x=paper_preprocess(data.train_x), test_x=paper_preprocess(data.test_x),
                        name=f"{data.name}+paper")


def _torchvision_download(cls_name: str, root: Path) -> None:
    """Fetch a dataset with torchvision (only when the user asked for it)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # network, disk, checksum: report which dataset and where
        raise DataError(f"download of {cls_name} into {root} failed: {exc}") from None


# --------------------------------------------------------------------------- MNIST (torchvision layout)

_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}


def _read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte IDX file (optionally gzipped) as a numpy array."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataError(f"load_mnist: cannot read {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"load_mnist: {path} is not an unsigned-byte IDX file (bad magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) - offset != math.prod(dims):
        raise DataError(f"load_mnist: {path} holds {len(raw) - offset} bytes of data but its header says "
                        f"{dims} ({math.prod(dims)} values); the file is truncated or corrupt")
    # a bytearray, not the immutable bytes: torch.from_numpy warns on read-only buffers
    return np.frombuffer(bytearray(raw), dtype=np.uint8, offset=offset).reshape(dims)


def load_mnist(root: str | os.PathLike, download: bool = False) -> Dataset:
    """MNIST from torchvision's layout (``ROOT/MNIST/raw/*-ubyte[.gz]``); downloads only if asked."""
    root = Path(root).expanduser().absolute()
    if download:
        _torchvision_download("MNIST", root)
    candidates = (root / "MNIST" / "raw", root / "raw", root)
    folder = _find_layout(root, candidates, _MNIST_FILES["train_x"])
    if folder is None:
        raise DataError(
            f"load_mnist: no MNIST at root={str(root)!r} (looked for {_MNIST_FILES['train_x']}[.gz] in "
            f"{', '.join(str(c) for c in candidates)}; torchvision's layout is ROOT/MNIST/raw/). "
            "Pass download=True (spec 'mnist:ROOT,download') to fetch it (~12 MB).")
    arrays = {}
    for key, stem in _MNIST_FILES.items():
        path = folder / stem if (folder / stem).is_file() else folder / f"{stem}.gz"
        if not path.is_file():
            raise DataError(f"load_mnist: {folder} lacks {stem}[.gz]; expected the four MNIST idx files "
                            f"({', '.join(_MNIST_FILES.values())})")
        arrays[key] = _read_idx(path)
    return from_arrays(arrays["train_x"], arrays["train_y"], arrays["test_x"], arrays["test_y"],
                       num_classes=10, name="mnist", layout="NCHW")


# --------------------------------------------------------------------------- image folders

def load_image_folder(root: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Dataset:
    """Images under ``train/<class>/*`` and ``test/<class>/*`` (a folder or a .tar.gz of one).

    Labels follow the sorted class-folder names of train/. Decoded uint8 arrays are cached
    under ``cache_dir`` (default: :func:`default_cache_dir`), keyed by the source's
    absolute path, sizes and mtimes, so later loads skip decoding (rethink_checks.imagefolder).
    """
    arrays, classes, name = read_image_folder(root, cache_dir)
    with warnings.catch_warnings():  # read-only memory maps: from_tensors copies them into new tensors
        warnings.filterwarnings("ignore", message=".*not writable.*")
        tensors = [torch.from_numpy(arrays[k]) for k in ("train_x", "train_y", "test_x", "test_y")]
    return from_tensors(*tensors, num_classes=len(classes), name=name)


# --------------------------------------------------------------------------- spec strings

def load(spec: str | DataSpec) -> Dataset:
    """Load a dataset from a spec: ``digits``, ``cifar10:ROOT[,paper][,download]``,
    ``mnist:ROOT[,download]``, ``folder:ROOT[,paper]`` (ROOT may be a .tar.gz); the grammar
    is :func:`parse_spec`'s, shared with the plugin and the reproduction command."""
    parsed = spec if isinstance(spec, DataSpec) else parse_spec(spec)
    kind, root, options = parsed.kind, parsed.root, parsed.options
    if kind == "digits":
        if "raw" in options:
            return load_digits()
        return load_digits(whiten=True).replace(fit_defaults=dict(DIGITS_FIT_DEFAULTS))
    if kind == "cifar10":
        return load_cifar10(root, download="download" in options, paper_preprocessing="paper" in options)
    if kind == "mnist":
        return load_mnist(root, download="download" in options)
    data = load_image_folder(root)
    return _paper(data) if "paper" in options else data
