"""Property tests for the feature-vector and token-sequence randomizations (rethink_checks.vectors)
and for CorruptionSpec.apply on datasets of each kind."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rethink_checks.corruptions import CorruptionSpec, NotApplicable, derive_seed
from rethink_checks.data import from_tensors
from rethink_checks.errors import DataError, InputTypeError, RethinkError
from rethink_checks.strategies import datasets, feature_batches, seeds, token_batches
from rethink_checks.vectors import (
    feature_noise, feature_statistics, position_permutation, random_positions, random_tokens,
    shuffle_positions, token_vocabulary)

rows = st.one_of(feature_batches(ranks=(1, 2)), token_batches(ranks=(1, 2)))
distinct_rows = st.one_of(feature_batches(distinct=True), token_batches(distinct=True))
INPUT_RANDOMIZATIONS = ("shuffled_pixels", "random_pixels", "gaussian")


def read_back(original: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Per row, the source position of each output position (rows must hold distinct values)."""
    eq = out[:, :, None] == original[:, None, :]
    assert bool((eq.sum(-1) == 1).all()), "an output value is not found exactly once in its row"
    return eq.float().argmax(-1)


# ----------------------------------------------------------------------------- permutations

@given(rows, seeds())
def test_positions_keep_shape_dtype_values_and_input(x, seed):
    before = x.clone()
    for out in (shuffle_positions(x, seed=seed), random_positions(x, seed=seed)):
        assert out.shape == x.shape and out.dtype == x.dtype
        assert torch.equal(out.sort(dim=-1).values, x.sort(dim=-1).values)  # same multiset per row
    assert torch.equal(x, before)


@given(distinct_rows, seeds())
def test_shuffle_is_one_bijection_for_every_row(x, seed):
    perm = read_back(x, shuffle_positions(x, seed=seed))
    assert bool((perm == perm[0]).all())
    assert torch.equal(perm[0], position_permutation(x.shape[1], seed))
    assert torch.equal(perm[0].sort().values, torch.arange(x.shape[1]))


@given(distinct_rows, seeds())
def test_random_positions_are_bijections_per_row(x, seed):
    perm = read_back(x, random_positions(x, seed=seed))
    assert torch.equal(perm.sort(dim=1).values, torch.arange(x.shape[1]).expand_as(perm))


def test_random_positions_differ_between_rows():
    x = torch.arange(20).repeat(8, 1)
    out = random_positions(x, seed=3)
    assert len({tuple(r.tolist()) for r in out}) == 8


@given(rows, seeds(), st.sampled_from(["shuffle", "random", "tokens_or_noise"]))
def test_same_seed_same_bits_and_no_global_rng(x, seed, which):
    def run(s):
        if which == "shuffle":
            return shuffle_positions(x, seed=s)
        if which == "random":
            return random_positions(x, seed=s)
        if x.is_floating_point():
            return feature_noise(x, seed=s, mean=0.0, std=1.0)
        return random_tokens(x, seed=s)

    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    a, b = run(seed), run(seed)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]


@given(st.one_of(feature_batches(), token_batches()), seeds())
def test_one_example_matches_the_first_row_of_its_batch(x, seed):
    assert torch.equal(shuffle_positions(x[0], seed=seed), shuffle_positions(x, seed=seed)[0])
    assert torch.equal(random_positions(x[0], seed=seed), random_positions(x, seed=seed)[0])
    if not x.is_floating_point():
        vocab = token_vocabulary(x)
        assert torch.equal(random_tokens(x[0], seed=seed, vocabulary=vocab),
                           random_tokens(x, seed=seed, vocabulary=vocab)[0])


def test_explicit_permutation_is_checked():
    x = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(shuffle_positions(x, seed=0, permutation=torch.tensor([2, 0, 1]))[0],
                       torch.tensor([2.0, 0.0, 1.0]))
    with pytest.raises(DataError, match=r"permutation of range\(3\)"):
        shuffle_positions(x, seed=0, permutation=torch.tensor([0, 0, 1]))


# ----------------------------------------------------------------------------- noise and tokens

@given(feature_batches(min_n=1), seeds(), st.booleans())
def test_feature_noise_shape_dtype_and_finite(x, seed, per_feature):
    out = feature_noise(x, seed=seed, per_feature=per_feature)
    assert out.shape == x.shape and out.dtype == x.dtype and bool(torch.isfinite(out).all())


def test_feature_noise_follows_per_feature_statistics():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20_000, 3, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1]) \
        + torch.tensor([0.0, -5.0, 3.0])
    mean, std = feature_statistics(x)
    out = feature_noise(x, seed=1)
    assert torch.allclose(out.mean(0), mean, atol=0.15) and torch.allclose(out.std(0), std, rtol=0.05)
    flat = feature_noise(x, seed=1, per_feature=False)
    assert abs(float(flat.std()) - float(x.std())) < 0.1 * float(x.std())


@given(token_batches(ranks=(1, 2)), seeds())
def test_random_tokens_come_from_the_seen_vocabulary(x, seed):
    out = random_tokens(x, seed=seed)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert bool(torch.isin(out, token_vocabulary(x)).all())


def test_random_tokens_are_uniform_over_the_vocabulary():
    vocab = torch.tensor([3, 7, 100])
    out = random_tokens(torch.zeros(3000, 10, dtype=torch.int64), seed=0, vocabulary=vocab)
    counts = torch.stack([(out == v).sum() for v in vocab]).double()
    assert bool(((counts - 10_000).abs() < 500).all())


@pytest.mark.parametrize("call, needle, kind", [
    (lambda: shuffle_positions([1, 2], seed=0), "torch.Tensor", InputTypeError),
    (lambda: random_positions(torch.zeros(2, 2, 2), seed=0), "rank 3", DataError),
    (lambda: random_tokens(torch.rand(2, 3), seed=0), "integer token ids", InputTypeError),
    (lambda: feature_noise(torch.zeros(2, 3, dtype=torch.int64), seed=0), "float feature", InputTypeError),
    (lambda: feature_noise(torch.zeros(2, 3), seed=0, std=-1.0), "std must be finite and >= 0", DataError),
    (lambda: feature_noise(torch.zeros(2, 3), seed=0, mean=[1.0, 2.0]), "3 values", DataError),
    (lambda: random_tokens(torch.zeros(2, 3, dtype=torch.int64), seed=0, vocabulary=[]), "non-empty", DataError),
    (lambda: shuffle_positions(torch.zeros(2, 3), seed=-1), "seed must be", DataError),
])
def test_bad_input_is_named(call, needle, kind):
    with pytest.raises(kind, match=needle):
        call()


# ----------------------------------------------------------------------------- datasets

@given(datasets(kinds=("features", "tokens")), seeds(), st.sampled_from(INPUT_RANDOMIZATIONS))
def test_spec_applies_per_kind_or_says_why_not(data, seed, name):
    spec = CorruptionSpec(name, seed=seed)
    if name != "gaussian" and data.input_shape[0] == 1:
        with pytest.raises(NotApplicable) as info:
            spec.apply(data)
        assert info.value.randomization == name and "identity" in info.value.reason
        assert isinstance(info.value, RethinkError) and not isinstance(info.value, ValueError)
        return
    out = spec.apply(data)
    assert out.kind == data.kind and out.vocab_size == data.vocab_size
    for split in ("train", "test"):
        x, y = getattr(out, f"{split}_x"), getattr(out, f"{split}_y")
        assert x.shape == getattr(data, f"{split}_x").shape and x.dtype == getattr(data, f"{split}_x").dtype
        assert torch.equal(y, getattr(data, f"{split}_y"))
    assert torch.equal(out.train_x, spec.apply(data).train_x)
    if data.kind == "tokens" and name == "gaussian":
        seen = token_vocabulary(data.train_x)
        assert bool(torch.isin(out.train_x, seen).all()) and bool(torch.isin(out.test_x, seen).all())


def test_shuffled_shares_one_permutation_and_random_uses_a_derived_test_seed():
    x = torch.arange(10.0).repeat(6, 1)
    data = from_tensors(x[:4], torch.tensor([0, 1, 0, 1]), x[4:], torch.tensor([0, 1]))
    shuffled = CorruptionSpec("shuffled_pixels", seed=5).apply(data)
    perm = position_permutation(10, 5).float()
    assert torch.equal(shuffled.train_x, perm.repeat(4, 1)) and torch.equal(shuffled.test_x, perm.repeat(2, 1))
    rnd = CorruptionSpec("random_pixels", seed=5).apply(data)
    assert torch.equal(rnd.train_x, random_positions(x[:4], seed=5))
    assert torch.equal(rnd.test_x, random_positions(x[4:], seed=derive_seed(5, "test")))


def test_token_gaussian_draws_test_tokens_from_the_training_vocabulary():
    tx = torch.tensor([[1, 2, 2], [2, 1, 1]])
    vx = torch.tensor([[9, 9, 9]])
    data = from_tensors(tx, torch.tensor([0, 1]), vx, torch.tensor([1]))
    out = CorruptionSpec("gaussian", seed=0).apply(data)
    assert set(out.test_x.flatten().tolist()) <= {1, 2} and out.vocab_size == 10
