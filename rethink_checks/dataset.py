"""The Dataset type: inputs and labels of both splits as tensors, validated per input kind.

Three input kinds: images (N, C, H, W) float32, feature vectors (N, D) float32, token
sequences (N, L) int64 ids. :func:`from_tensors` and :func:`from_arrays` validate and convert;
every source in :mod:`rethink_checks.data` ends here. Errors name the argument, the example
and what was expected (:class:`~rethink_checks.errors.DataError`).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .errors import DataError, InputTypeError

__all__ = ["Dataset", "KINDS", "infer_kind", "from_tensors", "from_arrays", "require_training_examples",
           "user_fit_defaults", "user_check_defaults", "USER_MIN_STEPS"]

#: User data's step floor: every fit may take at least this many optimizer steps whatever the
#: data size. Measured (tests/test_plugin_recipe.py's table, 140 wine rows, MLP 1x256, the
#: paper's SGD at batch 16): random labels memorized after 720 steps, true labels after 81,
#: so 4,000 leaves a 5.5x margin; 100 epochs of a large set (39,100 steps for 50,000 rows at
#: batch 128, the paper's budget) stay as they were. Only a failing fit pays for the budget.
USER_MIN_STEPS = 4000
#: the paper's epoch budget and batch, kept for user data large enough (>= 1,024 rows)
_USER_EPOCHS, _USER_MAX_BATCH = 100, 128
#: batch at most 1/8 of the training set (a power of two), so an epoch is >= 8 optimizer steps
_USER_BATCH_FRACTION = 8


def user_fit_defaults(n_train: int) -> dict[str, Any]:
    """The fit budget of user data (arrays, tensors, torch datasets) of ``n_train`` rows.

    Counted in optimizer steps: 100 epochs or :data:`USER_MIN_STEPS` steps, whichever is more,
    at a batch of at most 1/8 of the training set (a power of two, at most the paper's 128):
    140 rows get batch 16 and 445 epochs (4,000 steps), where batch 128 and 100 epochs were 200
    steps. It is given as ``max_epochs`` at that batch, so a user's own ``max_epochs`` or
    ``max_steps`` replaces it as it always did.
    """
    batch = min(_USER_MAX_BATCH, 2 ** int(math.log2(max(1, n_train // _USER_BATCH_FRACTION))))
    per_epoch = math.ceil(max(1, n_train) / batch)
    steps = max(USER_MIN_STEPS, _USER_EPOCHS * per_epoch)
    return {"batch_size": batch, "max_epochs": math.ceil(steps / per_epoch)}


#: below this many training rows user data gets a slowdown limit of 40 (user_check_defaults)
_SMALL_USER_DATA = 10_000


def user_check_defaults(n_train: int) -> dict[str, Any]:
    """Criteria of small user data: ``max_slowdown`` 40 under 10,000 training rows.

    The paper's 10 comes from CIFAR-10, where true labels take many epochs. On a small set they
    fit in a handful, so the ratio's denominator is tiny: 140 wine rows (MLP 1x256, the
    defaults) reach 0.99 on true labels in 3 epochs and memorize random labels in 80, 26.7x
    (tests/test_plugin_recipe.py); the built-in small sets got 20 for the same reason
    (``DIGITS_CHECK_DEFAULTS``). 40 keeps a 1.5x margin over the table; a model that cannot
    memorize still fails the memorization itself.
    """
    return {"max_slowdown": 40.0} if n_train < _SMALL_USER_DATA else {}


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
    #: under every user setting); the built-in sources set theirs (:data:`DIGITS_FIT_DEFAULTS`,
    #: ``IMAGE_FIT_DEFAULTS``); None, user data's, means :func:`user_fit_defaults` of its size.
    fit_defaults: dict[str, Any] | None = field(default=None, compare=False)
    #: Check criteria calibrated for this data (e.g. ``max_slowdown``), layered like
    #: ``fit_defaults`` under every user setting; see :data:`rethink_checks.data.DIGITS_CHECK_DEFAULTS`.
    check_defaults: dict[str, Any] = field(default_factory=dict, compare=False)
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

    @property
    def defaults(self) -> dict[str, Any]:
        """The settings this data carries (``check_defaults``, then ``fit_defaults``; for user
        data, whose ``fit_defaults`` is None, :func:`user_check_defaults` and
        :func:`user_fit_defaults` of its size), as one mapping for
        ``CheckSettings.from_mapping``; every user setting goes on top of it."""
        if self.fit_defaults is not None:  # built-in data: its calibrated defaults
            return {**dict(self.check_defaults or {}), **dict(self.fit_defaults)}
        n = len(self.train_x)
        return {**user_check_defaults(n), **dict(self.check_defaults or {}), **user_fit_defaults(n)}

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

    def map_inputs(self, transform: Callable[[torch.Tensor], torch.Tensor], **changes: Any) -> "Dataset":
        """A copy whose train and test inputs both went through ``transform`` (a preprocessing
        step such as whitening, which must treat the two splits alike), plus ``changes``."""
        return self.replace(train_x=transform(self.train_x), test_x=transform(self.test_x), **changes)

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


def require_training_examples(data: Any) -> int:
    """Number of training examples; DataError (naming ``data``) when none or any is NaN/inf.

    The analyses that solve for the training set exactly (capacity search, Theorem 1) call it.
    """
    total = len(data.train_x)
    if total == 0:
        raise DataError(f"data: the training split of {getattr(data, 'name', 'the dataset')!r} is empty")
    finite = torch.isfinite(data.train_x.reshape(total, -1)).all(1)
    if not finite.all():
        bad = torch.nonzero(~finite).flatten()
        raise DataError(f"data: {len(bad)} training example(s) hold NaN/inf values, e.g. indices "
                        f"{bad[:10].tolist()}; the inputs must be finite")
    return total
