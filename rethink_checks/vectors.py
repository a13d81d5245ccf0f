"""Input randomizations for feature vectors (N, D) and token sequences (N, L).

The paper's three input randomizations carried over to inputs that are not images (the
mapping is documented in docs/corruptions.md):

=================  =====================================  ======================================
name               features (N, D) float                  tokens (N, L) integer ids
=================  =====================================  ======================================
shuffled_pixels    one fixed permutation of the D         one fixed permutation of the L
                   feature positions (:func:`shuffle_     positions (:func:`shuffle_positions`)
                   positions`)
random_pixels      an independent permutation per         an independent permutation per
                   example (:func:`random_positions`)     example (:func:`random_positions`)
gaussian           per-feature Gaussian noise with the    uniform random ids from the vocabulary
                   training set's mean and std            seen in the training split
                   (:func:`feature_noise`)                (:func:`random_tokens`)
=================  =====================================  ======================================

Like :mod:`rethink_checks.corruptions` every function takes one example (rank 1) or a batch
(rank 2), draws from a fresh seeded CPU generator (never the global RNG), returns a new
tensor with the input's dtype and device, and never mutates its input. A permutation of a
single position (D or L == 1) changes nothing, so :mod:`rethink_checks.randomizations` raises
:class:`~rethink_checks.errors.NotApplicable` for it instead of training on a no-op.
"""
from __future__ import annotations

import numbers
from typing import Any

import torch

from .errors import DataError, InputTypeError
from .seeding import check_seed as _check_seed
from .seeding import generator as _generator

__all__ = ["position_permutation", "shuffle_positions", "random_positions", "feature_statistics",
           "feature_noise", "token_vocabulary", "random_tokens", "shuffle_vector_dataset",
           "random_vector_dataset", "random_token_dataset", "noise_feature_dataset"]


def _check_rows(x: Any, arg: str, integer: bool | None = None) -> torch.Tensor:
    """Raise unless ``x`` is a real tensor of shape (D,) or (N, D) (integer / float if asked)."""
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{arg} must be a torch.Tensor of shape (D,) or (N, D), got "
                             f"{type(x).__name__}")
    if x.dim() not in (1, 2):
        raise DataError(f"{arg} must have rank 1 (one example) or 2 (a batch), got rank {x.dim()} "
                        f"with shape {tuple(x.shape)}")
    if x.dtype == torch.bool or x.is_complex():
        raise InputTypeError(f"{arg} must have a real numeric dtype, got {x.dtype}")
    if integer is True and x.is_floating_point():
        raise InputTypeError(f"{arg} must hold integer token ids, got dtype {x.dtype}")
    if integer is False and not x.is_floating_point():
        raise InputTypeError(f"{arg} must hold float feature values, got dtype {x.dtype}")
    return x


# --------------------------------------------------------------------------- positions

def position_permutation(length: int, seed: int) -> torch.Tensor:
    """The permutation of ``length`` positions used by :func:`shuffle_positions`."""
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
        raise DataError(f"length must be a non-negative int, got {length!r}")
    return torch.randperm(int(length), generator=_generator(_check_seed(seed)))


def shuffle_positions(x: torch.Tensor, *, seed: int, permutation: torch.Tensor | None = None,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """Apply ONE permutation of the last axis's positions to every example (features or tokens).

    The permutation is :func:`position_permutation` ``(D, seed)`` unless ``permutation`` (a
    1-D tensor holding a permutation of ``range(D)``) is given; output position ``i`` holds
    input position ``permutation[i]``. With a ``mask`` (padded token sequences, True / 1 on
    real tokens) each row's real tokens are rearranged among the real positions in the
    permutation's order and padding stays where it is; an all-ones mask is the plain result.
    """
    x, seed = _check_rows(x, "x"), _check_seed(seed)
    d = x.shape[-1]
    if permutation is None:
        permutation = position_permutation(d, seed)
    elif not (isinstance(permutation, torch.Tensor) and permutation.dim() == 1
              and permutation.numel() == d
              and torch.equal(permutation.sort().values.cpu(), torch.arange(d))):
        raise DataError(f"permutation must be a 1-D tensor holding a permutation of range({d}) "
                        f"(the last axis of x, shape {tuple(x.shape)})")
    if mask is None:
        return x[..., permutation.to(x.device)]
    batch, rows = _masked_rows(x, mask)
    # each row's real positions, visited in the permutation's order (its padding last)
    order = permutation.to(x.device).expand_as(batch)
    order = order.gather(1, (~rows.gather(1, order)).to(torch.int8).argsort(dim=1, stable=True))
    return _scatter_real(batch, rows, order).reshape(x.shape)


def _masked_rows(x: torch.Tensor, mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` as a batch and ``mask`` as a bool batch of the same shape (True on real tokens)."""
    batch = x if x.dim() == 2 else x.unsqueeze(0)
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(x.shape):
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise DataError(f"mask must be a tensor of the tokens' shape {tuple(x.shape)}, got {got}")
    return batch, mask.reshape(batch.shape).to(device=x.device).bool()


def _scatter_real(batch: torch.Tensor, rows: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Each row's values taken in ``order`` (its real positions first, then its padding in
    place order) and written back to its real positions, then its padding positions, both
    ascending: the real tokens are rearranged among themselves, padding and mask stay."""
    targets = (~rows).to(torch.int8).argsort(dim=1, stable=True)
    return torch.empty_like(batch).scatter_(1, targets, batch.gather(1, order))


def random_positions(x: torch.Tensor, *, seed: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Apply an independent random permutation of positions to each example.

    As :func:`~rethink_checks.corruptions.random_pixels`: a stable argsort of uniform 63-bit
    keys drawn on the CPU, so the permutations are the same on every device. One example
    (rank 1) is the first row of a batch drawn with the same seed. With a ``mask`` each row's
    real tokens are permuted among themselves (the same keys, padding sorted last and kept in
    place); an all-ones mask is the plain result.
    """
    x, seed = _check_rows(x, "x"), _check_seed(seed)
    batch = x if x.dim() == 2 else x.unsqueeze(0)
    keys = torch.randint(0, 2**63 - 1, tuple(batch.shape), generator=_generator(seed)).to(x.device)
    if mask is None:
        return batch.gather(1, keys.argsort(dim=1, stable=True)).reshape(x.shape)
    batch, rows = _masked_rows(x, mask)
    order = keys.masked_fill(~rows, 2**63 - 1).argsort(dim=1, stable=True)  # draws are < 2**63 - 1
    return _scatter_real(batch, rows, order).reshape(x.shape)


# --------------------------------------------------------------------------- feature noise

def _stat_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def feature_statistics(x: torch.Tensor, per_feature: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Population mean and standard deviation of a feature batch: per feature ``(D,)`` or global."""
    x = _check_rows(x, "features", integer=False)
    if x.numel() == 0:
        raise DataError(f"features must not be empty to compute statistics, got shape {tuple(x.shape)}")
    batch = x.to(_stat_dtype(x)).reshape(-1, x.shape[-1])  # one example is a batch of one
    var, mean = torch.var_mean(batch, dim=0, correction=0) if per_feature else \
        torch.var_mean(batch, correction=0)
    return mean, var.sqrt()


def _as_stat(value: Any, arg: str, d: int, dtype: torch.dtype) -> torch.Tensor:
    try:
        t = torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        raise InputTypeError(f"{arg} must be a number or a sequence/tensor of numbers, got {value!r}") from None
    if t.dim() > 1 or t.numel() not in (1, d):
        raise DataError(f"{arg} must be a number or {d} values (one per feature), got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()) or (arg == "std" and bool((t < 0).any())):
        raise DataError(f"{arg} must be {'finite and >= 0' if arg == 'std' else 'finite'}, got {value!r}")
    return t.reshape(-1)


def feature_noise(x: torch.Tensor, *, seed: int, mean: Any = None, std: Any = None,
                  per_feature: bool = True) -> torch.Tensor:
    """Replace every feature vector by Gaussian noise with the reference mean and std.

    The reference is ``x`` itself unless ``mean``/``std`` are given (pass the training set's
    :func:`feature_statistics` for the test split). Per feature by default (each column keeps
    its own level and spread, as per-channel noise does for images), one global mean and std
    with ``per_feature=False``.
    """
    x, seed = _check_rows(x, "features", integer=False), _check_seed(seed)
    if not isinstance(per_feature, bool):
        raise InputTypeError(f"per_feature must be a bool, got {per_feature!r}")
    dtype, d = _stat_dtype(x), x.shape[-1]
    if mean is None or std is None:
        ref_mean, ref_std = feature_statistics(x, per_feature)
    mean_t = ref_mean if mean is None else _as_stat(mean, "mean", d, dtype)
    std_t = ref_std if std is None else _as_stat(std, "std", d, dtype)
    noise = torch.randn(tuple(x.shape), generator=_generator(seed), dtype=dtype)
    noise = noise.to(x.device).mul_(std_t.to(x.device, dtype)).add_(mean_t.to(x.device, dtype))
    return noise.to(x.dtype)


# --------------------------------------------------------------------------- random tokens

def token_vocabulary(tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The distinct ids that occur in ``tokens`` (on its real positions, with a ``mask``), sorted
    (the vocabulary :func:`random_tokens` draws from)."""
    tokens = _check_rows(tokens, "tokens", integer=True)
    if mask is not None:
        tokens = tokens[_masked_rows(tokens, mask)[1].reshape(tokens.shape)]
    if tokens.numel() == 0:
        raise DataError(f"tokens must not be empty to read a vocabulary, got shape {tuple(tokens.shape)}")
    return torch.unique(tokens.cpu())


def random_tokens(tokens: torch.Tensor, *, seed: int, vocabulary: Any = None,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Replace every token by an id drawn uniformly from ``vocabulary`` (default: the ids in ``tokens``).

    Pass the training split's :func:`token_vocabulary` when corrupting the test split, so both
    draw from the ids seen in training. The draws are indices into the sorted vocabulary, so
    the result depends only on the seed, the shape and the vocabulary. With a ``mask`` only the
    real tokens are replaced (the same draws); padding stays.
    """
    tokens, seed = _check_rows(tokens, "tokens", integer=True), _check_seed(seed)
    if vocabulary is None:
        vocab = token_vocabulary(tokens, mask)
    else:
        vocab = torch.as_tensor(vocabulary)
        if vocab.dim() != 1 or vocab.numel() == 0 or vocab.is_floating_point() or vocab.dtype == torch.bool:
            raise DataError(f"vocabulary must be a non-empty 1-D sequence of integer ids, got {vocabulary!r}")
        vocab = torch.unique(vocab.cpu())
    picks = torch.randint(0, len(vocab), tuple(tokens.shape), generator=_generator(seed))
    drawn = vocab[picks].to(device=tokens.device, dtype=tokens.dtype)
    if mask is None:
        return drawn
    return torch.where(_masked_rows(tokens, mask)[1].reshape(tokens.shape), drawn, tokens)


# --------------------------------------------------------------------------- datasets

def _rows(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Both splits of a features or tokens ``dataset``, validated as batches (N, D) / (N, L)."""
    kind = dataset.kind
    for arg, x in (("dataset.train_x", dataset.train_x), ("dataset.test_x", dataset.test_x)):
        _check_rows(x, arg, integer=kind == "tokens")
        if x.dim() != 2:
            raise DataError(f"{arg} must be a batch (N, {'D' if kind == 'features' else 'L'}) for kind="
                            f"{kind!r}, got shape {tuple(x.shape)}")
    return dataset.train_x, dataset.test_x


def _masks(dataset: Any) -> tuple[Any, Any]:
    """The (train, test) attention masks of a tokens dataset (padding left as it is), else None."""
    return getattr(dataset, "mask", (None, None)) if dataset.kind == "tokens" else (None, None)


# The transforms of rethink_checks.randomizations' table for features and tokens:
# (spec, dataset, test_seed) -> the randomized dataset.

def shuffle_vector_dataset(spec: Any, dataset: Any, test_seed: int) -> Any:
    """shuffled_pixels on features / tokens: one position permutation for both splits."""
    tx, vx = _rows(dataset)
    tm, vm = _masks(dataset)
    perm = position_permutation(tx.shape[1], spec.seed)
    return dataset.replace(train_x=shuffle_positions(tx, seed=spec.seed, permutation=perm, mask=tm),
                           test_x=shuffle_positions(vx, seed=spec.seed, permutation=perm, mask=vm))


def random_vector_dataset(spec: Any, dataset: Any, test_seed: int) -> Any:
    """random_pixels on features / tokens: a position permutation per example."""
    tx, vx = _rows(dataset)
    tm, vm = _masks(dataset)
    return dataset.replace(train_x=random_positions(tx, seed=spec.seed, mask=tm),
                           test_x=random_positions(vx, seed=test_seed, mask=vm))


def random_token_dataset(spec: Any, dataset: Any, test_seed: int) -> Any:
    """gaussian on tokens: uniform ids from the training split's vocabulary."""
    tx, vx = _rows(dataset)
    tm, vm = _masks(dataset)
    vocab = token_vocabulary(tx, tm)
    return dataset.replace(train_x=random_tokens(tx, seed=spec.seed, vocabulary=vocab, mask=tm),
                           test_x=random_tokens(vx, seed=test_seed, vocabulary=vocab, mask=vm))


def noise_feature_dataset(spec: Any, dataset: Any, test_seed: int) -> Any:
    """gaussian on features: per-feature (or global) noise with the training set's statistics."""
    tx, vx = _rows(dataset)
    mean, std = feature_statistics(tx, spec.per_channel)
    return dataset.replace(
        train_x=feature_noise(tx, seed=spec.seed, mean=mean, std=std, per_feature=spec.per_channel),
        test_x=feature_noise(vx, seed=test_seed, mean=mean, std=std, per_feature=spec.per_channel))
