"""The paper's randomizations (section 2.1): seeded, vectorized tensor functions and a spec.

Functional core (torchvision style: the same function takes one image ``(C, H, W)`` or a
batch ``(N, C, H, W)``): :func:`corrupt_labels`, :func:`shuffle_pixels`,
:func:`random_pixels`, :func:`gaussian_noise`. Thin callables wrap them
(:class:`CorruptLabels`, :class:`RandomLabels`, :class:`ShufflePixels`,
:class:`RandomPixels`, :class:`GaussianNoise`), and :class:`CorruptionSpec` applies one
named randomization to a whole :class:`~rethink_checks.data.Dataset` consistently.

Reproducibility: every random draw comes from a ``torch.Generator`` on the CPU seeded
with ``seed`` and is then moved to the input's device, so a seed gives the same result on
every run and every device; the global RNGs (torch, numpy, ``random``) are never touched.
Inputs are never mutated; outputs keep the input's dtype and device (labels come back as
int64).

Feature vectors and token sequences have their own functional core in
:mod:`rethink_checks.vectors`; :meth:`CorruptionSpec.apply` dispatches on ``Dataset.kind`` and
raises :class:`NotApplicable` (with the reason) where a randomization means nothing for the
data. This module is over 400 lines because the image functions, their validation and the
spec share helpers and belong together.
"""
from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from .errors import DataError, InputTypeError, NotApplicable
from .randomizations import LABEL_MODES, RANDOMIZATIONS
from .randomizations import get as randomization
from .seeding import check_seed as _check_seed
from .seeding import derive_seed
from .seeding import generator as _generator

__all__ = [
    "RANDOMIZATIONS", "LABEL_MODES", "CorruptionSpec", "CorruptionTypeError", "NotApplicable",
    "corrupt_labels", "pixel_permutation", "shuffle_pixels", "random_pixels",
    "gaussian_noise", "image_statistics", "derive_seed",
    "CorruptLabels", "RandomLabels", "ShufflePixels", "RandomPixels", "GaussianNoise",
]

_LABEL_NAMES = tuple(name for name in RANDOMIZATIONS if randomization(name).changes == "labels")


#: Former name of :class:`~rethink_checks.errors.InputTypeError`, kept importable.
CorruptionTypeError = InputTypeError


# --------------------------------------------------------------------------- validation

def _check_p(p: Any, arg: str = "p") -> float:
    """Return ``p`` as a float, or raise naming it: a probability in [0, 1]."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise InputTypeError(f"{arg} must be a number in [0, 1], got {p!r} "
                                  f"({type(p).__name__})")
    if not 0.0 <= float(p) <= 1.0:  # also rejects NaN
        raise DataError(f"{arg} must be in [0, 1], got {p!r}")
    return float(p)


def _check_num_classes(num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise InputTypeError(f"num_classes must be an int >= 2, got {num_classes!r} "
                                  f"({type(num_classes).__name__})")
    if num_classes < 2:
        raise DataError(f"num_classes must be an int >= 2, got {num_classes!r}")
    return int(num_classes)


def _check_mode(mode: Any) -> str:
    if mode not in LABEL_MODES:
        raise DataError(f"mode must be one of {LABEL_MODES}, got {mode!r}")
    return mode


def _check_labels(labels: Any, num_classes: int, arg: str = "labels") -> torch.Tensor:
    """Raise unless ``labels`` is a 1-D integer tensor with values in [0, num_classes)."""
    if not isinstance(labels, torch.Tensor):
        raise InputTypeError(f"{arg} must be a 1-D integer torch.Tensor, got "
                                  f"{type(labels).__name__}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise InputTypeError(f"{arg} must have an integer dtype (class indices), got "
                                  f"dtype {labels.dtype}; convert with labels.long()")
    if labels.dim() != 1:
        raise DataError(f"{arg} must be 1-D (one class index per example), got shape "
                        f"{tuple(labels.shape)}")
    if labels.numel():
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise DataError(f"{arg} must lie in [0, {num_classes}) for num_classes="
                            f"{num_classes}, got a label {bad}")
    return labels


def _check_images(images: Any, arg: str = "images") -> torch.Tensor:
    """Raise unless ``images`` is a real tensor of shape (C, H, W) or (N, C, H, W)."""
    if not isinstance(images, torch.Tensor):
        raise InputTypeError(f"{arg} must be a torch.Tensor of shape (C, H, W) or "
                                  f"(N, C, H, W), got {type(images).__name__}")
    if images.dim() not in (3, 4):
        raise DataError(f"{arg} must have rank 3 (C, H, W) or 4 (N, C, H, W), got rank "
                        f"{images.dim()} with shape {tuple(images.shape)}")
    if images.dtype == torch.bool or images.is_complex():
        raise InputTypeError(f"{arg} must have a real numeric dtype (float or integer), "
                                  f"got {images.dtype}")
    return images


# --------------------------------------------------------------------------- labels

def corrupt_labels(labels: torch.Tensor, p: float, num_classes: int, *, seed: int,
                   mode: str = "paper") -> torch.Tensor:
    """Replace each label, independently with probability ``p``, by a random class.

    ``mode="paper"`` (Zhang et al., the default): the replacement is uniform over all
    ``num_classes`` classes, so it may equal the original and the expected fraction
    actually changed is ``p * (K - 1) / K``. ``mode="wrong_class"`` (Nakkiran et al.
    2019): the replacement is uniform over the ``K - 1`` other classes, so the expected
    fraction changed is ``p``. ``p = 1`` gives the paper's random labels. For one seed
    the set of corrupted positions grows monotonically with ``p``. Returns a new int64
    tensor on ``labels``' device.
    """
    seed, p = _check_seed(seed), _check_p(p)
    num_classes, mode = _check_num_classes(num_classes), _check_mode(mode)
    labels = _check_labels(labels, num_classes)
    gen, n = _generator(seed), labels.shape[0]
    chosen = torch.rand(n, generator=gen) < p
    device, out = labels.device, labels.long()
    if mode == "paper":
        replacement = torch.randint(0, num_classes, (n,), generator=gen).to(device)
    else:
        offset = torch.randint(1, num_classes, (n,), generator=gen).to(device)
        replacement = (out + offset) % num_classes
    return torch.where(chosen.to(device), replacement, out)


# --------------------------------------------------------------------------- pixels

def pixel_permutation(height: int, width: int, seed: int) -> torch.Tensor:
    """The permutation of the ``height * width`` pixel positions used by :func:`shuffle_pixels`."""
    for arg, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise DataError(f"{arg} must be a non-negative int, got {value!r}")
    return torch.randperm(int(height) * int(width), generator=_generator(_check_seed(seed)))


def _permute_positions(images: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Move pixel ``perm[i]`` to position ``i`` in every channel of every image."""
    flat = images.flatten(-2)
    return flat[..., perm.to(images.device)].reshape(images.shape)


def shuffle_pixels(images: torch.Tensor, *, seed: int,
                   permutation: torch.Tensor | None = None) -> torch.Tensor:
    """Apply ONE permutation of pixel positions to every image (channels move together).

    The permutation is :func:`pixel_permutation` ``(H, W, seed)`` unless ``permutation``
    (a 1-D tensor holding a permutation of ``range(H * W)``) is given; train and test
    splits shuffled with the same seed share it, as in the paper.
    """
    images, seed = _check_images(images), _check_seed(seed)
    h, w = images.shape[-2:]
    if permutation is None:
        permutation = pixel_permutation(h, w, seed)
    elif not (isinstance(permutation, torch.Tensor) and permutation.dim() == 1
              and permutation.numel() == h * w
              and torch.equal(permutation.sort().values.cpu(), torch.arange(h * w))):
        raise DataError(f"permutation must be a 1-D tensor holding a permutation of "
                        f"range({h * w}) (H*W for images of shape {tuple(images.shape)})")
    return _permute_positions(images, permutation)


def random_pixels(images: torch.Tensor, *, seed: int) -> torch.Tensor:
    """Apply an independent random permutation of pixel positions to each image.

    One vectorized operation: a stable argsort of an (N, H*W) matrix of uniform 63-bit
    integer keys (drawn on the CPU, sorted on the input's device; ties are so rare the
    permutations are uniform, and the stable sort makes them identical on every device)
    followed by one gather; a pixel's channels move together. A single (C, H, W) image
    is treated as a batch of one.
    """
    images, seed = _check_images(images), _check_seed(seed)
    batch = images if images.dim() == 4 else images.unsqueeze(0)
    n, c, h, w = batch.shape
    keys = torch.randint(0, 2**63 - 1, (n, h * w), generator=_generator(seed))
    keys = keys.to(images.device)
    perms = keys.argsort(dim=1, stable=True)
    out = batch.flatten(2).gather(2, perms.unsqueeze(1).expand(n, c, h * w))
    return out.reshape(images.shape)


# --------------------------------------------------------------------------- gaussian

def _stat_dtype(images: torch.Tensor) -> torch.dtype:
    return torch.float64 if images.dtype == torch.float64 else torch.float32


def image_statistics(images: torch.Tensor, per_channel: bool = True
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (population, correction 0) of ``images``.

    Per channel (shape ``(C,)``) by default, else global (0-d). Computed in float32
    (float64 for float64 input) on the images' device; used by :func:`gaussian_noise` so
    the test split's noise can follow the training set's statistics.
    """
    images = _check_images(images)
    if images.numel() == 0:
        raise DataError(f"images must not be empty to compute statistics, got shape "
                        f"{tuple(images.shape)}")
    x = images.to(_stat_dtype(images))
    dims = (0, 2, 3) if images.dim() == 4 else (1, 2)
    if per_channel:
        var, mean = torch.var_mean(x, dim=dims, correction=0)
    else:
        var, mean = torch.var_mean(x, correction=0)
    return mean, var.sqrt()


def _as_stat(value: Any, arg: str, channels: int, per_channel: bool,
             dtype: torch.dtype) -> torch.Tensor:
    """Validate an explicit mean/std: a number, or one value per channel when per_channel."""
    try:
        t = torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        raise InputTypeError(f"{arg} must be a number or a sequence/tensor of numbers, "
                                  f"got {value!r}") from None
    allowed = (1, channels) if per_channel else (1,)
    if t.numel() not in allowed or t.dim() > 1:
        what = f"a number or {channels} values (one per channel)" if per_channel \
            else "a single number (per_channel=False)"
        raise DataError(f"{arg} must be {what}, got shape {tuple(t.shape)}: {value!r}")
    if not bool(torch.isfinite(t).all()) or (arg == "std" and bool((t < 0).any())):
        limit = "finite and >= 0" if arg == "std" else "finite"
        raise DataError(f"{arg} must be {limit}, got {value!r}")
    return t.reshape(-1)


def gaussian_noise(images: torch.Tensor, *, seed: int, mean: Any = None, std: Any = None,
                   per_channel: bool = True) -> torch.Tensor:
    """Replace every image by Gaussian noise with the reference mean and standard deviation.

    The reference is ``images`` itself unless ``mean``/``std`` are given (pass the
    training set's :func:`image_statistics` when corrupting the test split). Per channel
    by default (the paper does not say; per channel keeps colour balance), global with
    ``per_channel=False``. Standard normal draws come from a seeded CPU generator.
    Integer images get the noise rounded to the nearest integer and clamped to the
    dtype's range (so e.g. uint8 noise is slightly truncated at 0 and 255).
    """
    images, seed = _check_images(images), _check_seed(seed)
    if not isinstance(per_channel, bool):
        raise InputTypeError(f"per_channel must be a bool, got {per_channel!r}")
    dtype = _stat_dtype(images)
    channels = images.shape[-3]
    if mean is None or std is None:
        ref_mean, ref_std = image_statistics(images, per_channel)
    mean_t = ref_mean if mean is None else _as_stat(mean, "mean", channels, per_channel, dtype)
    std_t = ref_std if std is None else _as_stat(std, "std", channels, per_channel, dtype)
    shape = (-1, 1, 1) if per_channel else (1, 1, 1)
    mean_t = mean_t.to(images.device, dtype).reshape(shape)
    std_t = std_t.to(images.device, dtype).reshape(shape)
    noise = torch.randn(images.shape, generator=_generator(seed), dtype=dtype)
    noise = noise.to(images.device).mul_(std_t).add_(mean_t)
    if images.is_floating_point():
        return noise.to(images.dtype)
    info = torch.iinfo(images.dtype)
    return noise.round_().clamp_(info.min, info.max).to(images.dtype)


# --------------------------------------------------------------------------- callables

#: inputs a token batch passes beside the ids that follow the token positions: an input
#: randomization of the ids keeps them (the mask marks the real tokens it acts on)
TOKEN_COMPANIONS = ("attention_mask", "token_type_ids")


def _single_input(name: str, dataset: Any) -> None:
    """NotApplicable for an input randomization of a multi-input batch: randomizing one input
    of several means nothing for the others (a token batch's mask and segment ids excepted)."""
    others = [k for k in getattr(dataset, "passed_inputs", ()) if
              not (dataset.kind == "tokens" and k in TOKEN_COMPANIONS)]
    if others:
        raise NotApplicable(name, f"multi-input ({', '.join(dataset.input_keys)})",
                            f"the batch passes {len(others) + 1} inputs to the model, and randomizing "
                            f"{dataset.input_keys[0]!r} alone says nothing about {others}; the label "
                            "randomizations still apply")


@dataclass(frozen=True)
class CorruptLabels:
    """Callable form of :func:`corrupt_labels` (fixed p, K, seed, mode)."""

    p: float
    num_classes: int
    seed: int = 0
    mode: str = "paper"

    def __call__(self, labels: torch.Tensor) -> torch.Tensor:
        return corrupt_labels(labels, self.p, self.num_classes, seed=self.seed, mode=self.mode)


@dataclass(frozen=True)
class RandomLabels:
    """The paper's random labels: :func:`corrupt_labels` with ``p = 1``."""

    num_classes: int
    seed: int = 0
    mode: str = "paper"

    def __call__(self, labels: torch.Tensor) -> torch.Tensor:
        return corrupt_labels(labels, 1.0, self.num_classes, seed=self.seed, mode=self.mode)


@dataclass(frozen=True)
class ShufflePixels:
    """Callable form of :func:`shuffle_pixels`: the same permutation on every call."""

    seed: int = 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return shuffle_pixels(images, seed=self.seed)


@dataclass(frozen=True)
class RandomPixels:
    """Callable form of :func:`random_pixels`; apply it to a whole batch.

    Stateless: called on a single image it applies the same permutation every time, so
    use it on the batch (or dataset split) to get one permutation per image.
    """

    seed: int = 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return random_pixels(images, seed=self.seed)


@dataclass(frozen=True)
class GaussianNoise:
    """Callable form of :func:`gaussian_noise`; :meth:`fit` takes stats from a reference."""

    seed: int = 0
    mean: Any = None
    std: Any = None
    per_channel: bool = True

    @classmethod
    def fit(cls, reference: torch.Tensor, seed: int = 0,
            per_channel: bool = True) -> "GaussianNoise":
        """Noise that matches ``reference``'s statistics (e.g. the training images)."""
        mean, std = image_statistics(reference, per_channel)
        return cls(seed=seed, mean=mean.cpu(), std=std.cpu(), per_channel=per_channel)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return gaussian_noise(images, seed=self.seed, mean=self.mean, std=self.std,
                              per_channel=self.per_channel)


# --------------------------------------------------------------------------- spec

@dataclass(frozen=True)
class CorruptionSpec:
    """One named randomization with its options, applied to a whole dataset by :meth:`apply`.

    ``p`` is used by ``partial_labels`` (required there); ``random_labels`` means
    ``p = 1`` and ``true_labels`` ``p = 0`` (both filled in); the input randomizations
    take no ``p``. ``corrupt_test_labels=False`` by default: test accuracy then
    measures generalization to the true labelling, which is what the paper's test error
    curve (Figure 1c) reports. pluskid/fitting-random-labels corrupts test labels with
    the same p instead (test accuracy then measures fit to the noisy distribution);
    set ``corrupt_test_labels=True`` for that.
    """

    name: str
    p: float | None = None
    seed: int = 0
    mode: str = "paper"
    corrupt_test_labels: bool = False
    per_channel: bool = True

    def __post_init__(self) -> None:
        randomization(self.name)  # an unknown name: DataError naming the allowed ones
        object.__setattr__(self, "seed", _check_seed(self.seed))  # numpy ints -> int (JSON)
        _check_mode(self.mode)
        for flag in ("corrupt_test_labels", "per_channel"):
            if not isinstance(getattr(self, flag), bool):
                raise InputTypeError(f"{flag} must be a bool, got {getattr(self, flag)!r}")
        object.__setattr__(self, "p", self._resolve_p())

    def _resolve_p(self) -> float | None:
        entry = randomization(self.name)
        if entry.takes_p:
            if self.p is None:
                raise DataError(f"p is required for {self.name}: a probability in [0, 1], got None")
            return _check_p(self.p)
        if entry.fixed_p is not None:
            if self.p is not None and _check_p(self.p) != entry.fixed_p:
                raise DataError(f"p for {self.name} is fixed at {entry.fixed_p}, got "
                                f"{self.p!r} (use partial_labels for other values)")
            return entry.fixed_p
        if self.p is not None:
            raise DataError(f"p applies only to label randomizations; {self.name} takes "
                            f"p=None, got {self.p!r}")
        return None

    @property
    def changes_labels(self) -> bool:
        """True for label randomizations that can change a label (p > 0)."""
        return self.name in _LABEL_NAMES and bool(self.p)

    def apply(self, dataset: Any) -> Any:
        """The dataset with this randomization applied to its train (and test) split."""
        from .dataset import Dataset

        if getattr(dataset, "streamed", False):  # rethink_checks.streaming: labels as here, inputs per index
            test_seed = derive_seed(self.seed, "test")
            return relabel(self, dataset, test_seed) if self.name in _LABEL_NAMES \
                else dataset.with_inputs_randomized(self, test_seed)
        if not isinstance(dataset, Dataset):
            raise InputTypeError(f"dataset must be a rethink_checks.data.Dataset, got "
                                      f"{type(dataset).__name__}")
        train_shape, test_shape = tuple(dataset.train_x.shape), tuple(dataset.test_x.shape)
        if train_shape[1:] != test_shape[1:]:
            raise DataError(f"dataset: train and test inputs must have the same shape per "
                            f"example, got train {train_shape} and test {test_shape}")
        test_seed = derive_seed(self.seed, "test")
        entry = randomization(self.name)
        if entry.changes == "inputs":
            _single_input(self.name, dataset)
        return entry.transform_for(dataset)(self, dataset, test_seed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CorruptionSpec":
        allowed = {f.name for f in fields(cls)}
        unknown = set(data) - allowed
        if unknown:
            raise DataError(f"CorruptionSpec.from_dict: unknown keys {sorted(unknown)}; "
                            f"allowed {sorted(allowed)}")
        return cls(**data)

    def describe(self) -> str:
        """A short label, e.g. ``partial_labels(p=0.4, paper, seed=0)``."""
        parts = []
        if self.name == "partial_labels":
            parts.append(f"p={self.p:g}")
        if self.changes_labels:
            parts.append(self.mode)
            if self.corrupt_test_labels:
                parts.append("test labels too")
        if self.name == "gaussian":
            parts.append("per-channel" if self.per_channel else "global")
        parts.append(f"seed={self.seed}")
        return f"{self.name}({', '.join(parts)})"


# --------------------------------------------------------------------------- dataset transforms
# The transforms of rethink_checks.randomizations' table for labels (every kind) and images:
# (spec, dataset, test_seed) -> the randomized dataset.

def relabel(spec: CorruptionSpec, dataset: Any, test_seed: int) -> Any:
    """The label randomizations: each training label redrawn with probability ``spec.p``."""
    if not spec.changes_labels:
        return dataset
    k = dataset.num_classes
    _check_labels(dataset.train_y, _check_num_classes(k), "dataset.train_y")
    changes = {"train_y": corrupt_labels(dataset.train_y, spec.p, k, seed=spec.seed, mode=spec.mode)}
    if spec.corrupt_test_labels:
        _check_labels(dataset.test_y, k, "dataset.test_y")
        changes["test_y"] = corrupt_labels(dataset.test_y, spec.p, k, seed=test_seed, mode=spec.mode)
    return dataset.replace(**changes)


def _images(dataset: Any) -> Any:
    _check_images(dataset.train_x, "dataset.train_x")
    _check_images(dataset.test_x, "dataset.test_x")
    return dataset


def shuffle_image_dataset(spec: CorruptionSpec, dataset: Any, test_seed: int) -> Any:
    """shuffled_pixels on images: one pixel permutation (from ``spec.seed``) for both splits."""
    perm = pixel_permutation(*_images(dataset).train_x.shape[-2:], seed=spec.seed)
    return dataset.map_inputs(lambda x: _permute_positions(x, perm))


def random_image_dataset(spec: CorruptionSpec, dataset: Any, test_seed: int) -> Any:
    """random_pixels on images: a permutation per image, test split from ``test_seed``."""
    _images(dataset)
    return dataset.replace(train_x=random_pixels(dataset.train_x, seed=spec.seed),
                           test_x=random_pixels(dataset.test_x, seed=test_seed))


def noise_image_dataset(spec: CorruptionSpec, dataset: Any, test_seed: int) -> Any:
    """gaussian on images: noise with the training images' mean and std (per channel or not)."""
    mean, std = image_statistics(_images(dataset).train_x, spec.per_channel)
    return dataset.replace(
        train_x=gaussian_noise(dataset.train_x, seed=spec.seed, mean=mean, std=std,
                               per_channel=spec.per_channel),
        test_x=gaussian_noise(dataset.test_x, seed=test_seed, mean=mean, std=std,
                              per_channel=spec.per_channel))
