"""Property tests for the randomizations (rethink_checks.corruptions) using the public strategies."""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rethink_checks import corruptions as C
from rethink_checks import errors
from rethink_checks.corruptions import (
    RANDOMIZATIONS, CorruptionSpec, corrupt_labels, gaussian_noise, image_statistics,
    pixel_permutation, random_pixels, shuffle_pixels)
from rethink_checks.data import Dataset
from rethink_checks.strategies import (
    corruption_specs, datasets, image_batches, labels, seeds)

ps = st.floats(0.0, 1.0)
modes = st.sampled_from(C.LABEL_MODES)
any_images = image_batches(ranks=(3, 4))
PIXEL_FUNCS = {"shuffle": shuffle_pixels, "random": random_pixels, "gaussian": gaussian_noise}


def within_binomial(count: int, n: int, q: float, sigmas: float = 5.0) -> bool:
    """True when ``count`` is within ``sigmas`` standard deviations of Binomial(n, q)'s mean."""
    return abs(count - n * q) <= sigmas * math.sqrt(n * q * (1 - q)) + 1


def as_batch(x: torch.Tensor) -> torch.Tensor:
    return x if x.dim() == 4 else x.unsqueeze(0)


def read_permutations(original: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """(N, H*W) source positions such that out[n, :, i] == original[n, :, perm[n, i]].

    Needs every pixel (the C-vector across channels) distinct within an image: use
    ``image_batches(distinct=True)``, whose values are distinct per image.
    """
    src, dst = as_batch(original).flatten(2), as_batch(out).flatten(2)
    # match on the first channel: values are distinct within an image, hence per pixel
    eq = dst[:, 0, :, None] == src[:, 0, None, :]          # (N, HW_out, HW_src)
    assert bool((eq.sum(-1) == 1).all()), "output pixel not found exactly once in the input"
    perm = eq.float().argmax(-1)
    gathered = src.gather(2, perm.unsqueeze(1).expand_as(src))
    assert torch.equal(gathered, dst), "channels of a pixel did not move together"
    return perm


# ----------------------------------------------------------------------------- labels

@given(labels(), seeds(), modes)
def test_p_zero_is_identity(yk, seed, mode):
    y, k = yk
    out = corrupt_labels(y, 0.0, k, seed=seed, mode=mode)
    assert out.dtype == torch.int64
    assert torch.equal(out, y.long())


@given(labels(), ps, seeds(), modes)
def test_labels_stay_in_range_and_input_unchanged(yk, p, seed, mode):
    y, k = yk
    before = y.clone()
    out = corrupt_labels(y, p, k, seed=seed, mode=mode)
    assert torch.equal(y, before)
    assert out.shape == y.shape and out.dtype == torch.int64
    assert out.data_ptr() != y.data_ptr() or y.numel() == 0
    if out.numel():
        assert 0 <= int(out.min()) and int(out.max()) < k


@settings(max_examples=15)
@given(st.integers(2, 20), ps, seeds(), modes)
def test_changed_fraction_matches_binomial(k, p, seed, mode):
    n = 20_000
    y = torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))
    changed = int((corrupt_labels(y, p, k, seed=seed + 1, mode=mode) != y).sum())
    q = p * (k - 1) / k if mode == "paper" else p
    assert within_binomial(changed, n, q), (changed, n * q)


@given(st.integers(2, 20), seeds())
def test_wrong_class_at_p_one_changes_every_label(k, seed):
    y = torch.randint(0, k, (500,), generator=torch.Generator().manual_seed(seed))
    assert bool((corrupt_labels(y, 1.0, k, seed=seed, mode="wrong_class") != y).all())


@settings(max_examples=10)
@given(st.integers(2, 10), seeds())
def test_replacements_are_uniform_over_classes(k, seed):
    """Paper mode at p=1: every class is drawn about n/k times, whatever the originals."""
    n = 20_000
    out = corrupt_labels(torch.zeros(n, dtype=torch.int64), 1.0, k, seed=seed)
    counts = torch.bincount(out, minlength=k)
    assert all(within_binomial(int(c), n, 1 / k) for c in counts), counts


@given(labels(min_size=1), ps, ps, seeds(), modes)
def test_corrupted_set_grows_with_p(yk, p1, p2, seed, mode):
    """One seed: the examples changed at a smaller p are changed identically at a larger p."""
    y, k = yk
    lo, hi = sorted((p1, p2))
    a, b = (corrupt_labels(y, q, k, seed=seed, mode=mode) for q in (lo, hi))
    changed = a != y.long()
    assert torch.equal(a[changed], b[changed])


@given(labels(min_size=64, max_size=64), seeds(), modes)
def test_same_seed_identical_different_seed_differs(yk, seed, mode):
    y, k = yk
    a = corrupt_labels(y, 0.5, k, seed=seed, mode=mode)
    assert torch.equal(a, corrupt_labels(y, 0.5, k, seed=seed, mode=mode))
    # p=0.5 (at p=1 wrong_class with K=2 is a deterministic flip): each of 64 labels
    # agrees between two seeds with prob <= 3/4, so equal outputs have prob < 1e-7
    assert not torch.equal(a, corrupt_labels(y, 0.5, k, seed=seed + 1, mode=mode))


def test_known_values_are_stable():
    """Pins the streams: a change here changes every user's corrupted data for a seed."""
    y = torch.arange(10) % 3
    assert corrupt_labels(y, 0.5, 3, seed=0).tolist() == [2, 1, 0, 0, 1, 2, 0, 1, 2, 0]
    assert corrupt_labels(y, 0.5, 3, seed=0, mode="wrong_class").tolist() == \
        [2, 1, 0, 2, 2, 2, 1, 1, 0, 0]
    assert pixel_permutation(2, 3, 0).tolist() == [2, 5, 3, 0, 1, 4]
    assert random_pixels(torch.arange(8.0).view(2, 1, 2, 2), seed=0).flatten().tolist() == \
        [3.0, 0.0, 2.0, 1.0, 5.0, 7.0, 4.0, 6.0]
    noise = gaussian_noise(torch.zeros(1, 1, 1, 3), seed=0, mean=0.0, std=1.0)
    assert noise.flatten().tolist() == pytest.approx([1.5409961, -0.2934289, -2.1787894])
    assert C.derive_seed(0, "test") == 5047651625364321931


# ----------------------------------------------------------------------------- pixels

@given(image_batches(ranks=(3, 4), distinct=True), seeds())
def test_shuffle_applies_one_bijection_to_every_image(x, seed):
    out = shuffle_pixels(x, seed=seed)
    assert out.shape == x.shape and out.dtype == x.dtype
    perms = read_permutations(x, out)
    expected = pixel_permutation(*x.shape[-2:], seed)
    assert bool((perms == expected).all())
    assert torch.equal(shuffle_pixels(x, seed=seed, permutation=expected), out)


@given(any_images, seeds())
def test_shuffle_preserves_each_image_values(x, seed):
    out = shuffle_pixels(x, seed=seed)
    for a, b in zip(as_batch(x), as_batch(out)):
        assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)


@given(image_batches(ranks=(3, 4), distinct=True), seeds())
def test_random_pixels_preserves_values_with_per_image_permutations(x, seed):
    out = random_pixels(x, seed=seed)
    assert out.shape == x.shape and out.dtype == x.dtype
    perms = read_permutations(x, out)  # asserts a per-image bijection moving channels together
    assert bool((perms.sort(dim=1).values == torch.arange(perms.shape[1])).all())


@given(image_batches(min_n=2, min_side=4, distinct=True, dtypes=(torch.float32,)), seeds())
def test_random_pixels_differ_between_images(x, seed):
    """With >= 16 positions two images share a permutation with prob <= 1/16!."""
    perms = read_permutations(x, random_pixels(x, seed=seed))
    assert len({tuple(p.tolist()) for p in perms}) == len(perms)


def test_random_pixels_single_image_equals_batch_of_one():
    x = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(random_pixels(x, seed=4), random_pixels(x[None], seed=4)[0])


@given(any_images, seeds(), st.sampled_from(sorted(PIXEL_FUNCS)))
def test_same_seed_identical_and_input_untouched(x, seed, kind):
    f = PIXEL_FUNCS[kind]
    before = x.clone()
    a, b = f(x, seed=seed), f(x, seed=seed)
    assert torch.equal(x, before)
    assert torch.equal(a, b)
    assert a.dtype == x.dtype and a.device == x.device and a.shape == x.shape


@given(image_batches(min_side=4, dtypes=(torch.float32,), distinct=True), seeds(),
       st.sampled_from(sorted(PIXEL_FUNCS)))
def test_different_seeds_differ(x, seed, kind):
    f = PIXEL_FUNCS[kind]
    assert not torch.equal(f(x, seed=seed), f(x, seed=seed + 1))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int16, torch.int32,
                                   torch.int64, torch.int8])
@pytest.mark.parametrize("kind", sorted(PIXEL_FUNCS))
def test_other_dtypes_preserved(dtype, kind):
    x = (torch.rand(4, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 100).to(dtype)
    out = PIXEL_FUNCS[kind](x, seed=np.int64(3))  # numpy integers are valid seeds
    assert out.dtype == dtype and out.shape == x.shape
    if kind != "gaussian":
        assert torch.equal(out.flatten(1).sort(1).values, x.flatten(1).sort(1).values)


def test_numpy_scalars_are_accepted_for_p_and_classes():
    y = torch.arange(20) % 4
    assert torch.equal(corrupt_labels(y, np.float32(0.5), np.int64(4), seed=np.uint32(7)),
                       corrupt_labels(y, 0.5, 4, seed=7))
    spec = CorruptionSpec("partial_labels", p=np.float64(0.25), seed=np.int64(3))
    assert spec.p == 0.25 and type(spec.p) is float and type(spec.seed) is int
    assert CorruptionSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


# ----------------------------------------------------------------------------- gaussian

def assert_stats_match(out: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                       per_channel: bool) -> None:
    """Sample mean within 5 standard errors, sample std within 5 of its standard errors."""
    got_mean, got_std = image_statistics(out.double(), per_channel)
    n = out.numel() / (out.shape[-3] if per_channel else 1)
    mean, std = mean.double(), std.double()
    assert bool(((got_mean - mean).abs() <= 5 * std / math.sqrt(n) + 1e-9).all()), \
        (got_mean, mean)
    assert bool(((got_std - std).abs() <= 5 * std / math.sqrt(2 * n) + 1e-9).all()), \
        (got_std, std)


@settings(max_examples=15)
@given(st.booleans(), seeds(), st.sampled_from((torch.float32, torch.float64)),
       st.sampled_from((1, 3)))
def test_gaussian_matches_reference_statistics(per_channel, seed, dtype, c):
    gen = torch.Generator().manual_seed(seed)
    # channels with clearly different means and scales so per-channel vs global matters
    loc = torch.tensor([0.5, -2.0, 10.0])[:c].view(1, c, 1, 1)
    scale = torch.tensor([0.2, 1.0, 3.0])[:c].view(1, c, 1, 1)
    x = (torch.randn(200, c, 8, 8, generator=gen) * scale + loc).to(dtype)
    out = gaussian_noise(x, seed=seed, per_channel=per_channel)
    assert out.dtype == dtype
    mean, std = image_statistics(x, per_channel)
    assert_stats_match(out, mean, std, per_channel)
    assert not torch.equal(out, x)


@given(seeds())
def test_gaussian_uses_given_statistics(seed):
    x = torch.zeros(100, 3, 8, 8)
    out = gaussian_noise(x, seed=seed, mean=[1.0, 2.0, 3.0], std=torch.tensor([0.5, 1, 2]))
    assert_stats_match(out, torch.tensor([1.0, 2, 3]), torch.tensor([0.5, 1, 2]), True)
    glob = gaussian_noise(x, seed=seed, mean=5.0, std=2.0, per_channel=False)
    assert_stats_match(glob, torch.tensor(5.0), torch.tensor(2.0), False)


@given(seeds())
def test_gaussian_integer_images_round_and_clamp(seed):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(100, 3, 8, 8, generator=gen) * 20 + 128).round().clamp(0, 255)
    x8 = x.to(torch.uint8)
    out = gaussian_noise(x8, seed=seed)
    assert out.dtype == torch.uint8
    mean, std = image_statistics(x8)
    # rounding adds variance 1/12; clamping is negligible 6 sigma from the bounds
    assert_stats_match(out, mean, (std**2 + 1 / 12).sqrt(), True)
    wide = gaussian_noise(x8, seed=seed, mean=250.0, std=50.0)
    assert int(wide.max()) == 255 and int(wide.min()) >= 0


@given(any_images, seeds())
def test_gaussian_single_image_and_constant_images(x, seed):
    out = gaussian_noise(x, seed=seed)
    assert out.shape == x.shape and out.dtype == x.dtype
    const = torch.full_like(x, 7)
    assert torch.equal(gaussian_noise(const, seed=seed), const)  # std 0: noise is the mean


# ----------------------------------------------------------------------------- global RNG

def test_global_rng_untouched():
    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(9)
    states = (torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    x, y = torch.rand(4, 3, 5, 5, generator=torch.Generator()), torch.arange(40) % 10
    corrupt_labels(y, 0.5, 10, seed=1)
    corrupt_labels(y, 0.5, 10, seed=1, mode="wrong_class")
    for f in PIXEL_FUNCS.values():
        f(x, seed=2)
    data = Dataset(x, y[:4], x[:2], y[:2], 10)
    for name in RANDOMIZATIONS:
        CorruptionSpec(name, p=0.5 if name == "partial_labels" else None,
                       corrupt_test_labels=True).apply(data)
    assert torch.equal(torch.random.get_rng_state(), states[0])
    assert (np.random.get_state()[1] == states[1]).all()
    assert random.getstate() == states[2]
    if cuda is not None:
        assert all(torch.equal(a, b) for a, b in zip(cuda, torch.cuda.get_rng_state_all()))


# ----------------------------------------------------------------------------- bad input

Y = torch.tensor([0, 1, 2])
X = torch.zeros(2, 3, 4, 4)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: corrupt_labels(Y, 1.5, 3, seed=0), ValueError, ["p", "1.5", "[0, 1]"]),
    (lambda: corrupt_labels(Y, -0.1, 3, seed=0), ValueError, ["p", "-0.1", "[0, 1]"]),
    (lambda: corrupt_labels(Y, float("nan"), 3, seed=0), ValueError, ["p", "nan"]),
    (lambda: corrupt_labels(Y, "0.5", 3, seed=0), TypeError, ["p", "'0.5'"]),
    (lambda: corrupt_labels(Y, 0.5, 1, seed=0), ValueError, ["num_classes", "1", ">= 2"]),
    (lambda: corrupt_labels(Y, 0.5, 2.0, seed=0), TypeError, ["num_classes", "2.0"]),
    (lambda: corrupt_labels(Y, 0.5, 2, seed=0), ValueError, ["labels", "[0, 2)", "2"]),
    (lambda: corrupt_labels(Y - 1, 0.5, 3, seed=0), ValueError, ["labels", "-1", "[0, 3)"]),
    (lambda: corrupt_labels(Y.float(), 0.5, 3, seed=0), TypeError,
     ["labels", "torch.float32", "integer"]),
    (lambda: corrupt_labels(Y.tolist(), 0.5, 3, seed=0), TypeError, ["labels", "list"]),
    (lambda: corrupt_labels(Y[None], 0.5, 3, seed=0), ValueError, ["labels", "1-D", "(1, 3)"]),
    (lambda: corrupt_labels(Y, 0.5, 3, seed=0, mode="nakkiran"), ValueError,
     ["mode", "'nakkiran'", "wrong_class"]),
    (lambda: corrupt_labels(Y, 0.5, 3, seed=1.5), TypeError, ["seed", "1.5", "int"]),
    (lambda: corrupt_labels(Y, 0.5, 3, seed=-1), ValueError, ["seed", "-1", "2**64"]),
    (lambda: shuffle_pixels(X[0, 0], seed=0), ValueError, ["images", "rank", "2", "(4, 4)"]),
    (lambda: random_pixels(X[None], seed=0), ValueError, ["images", "rank 5", "(N, C, H, W)"]),
    (lambda: gaussian_noise(X.numpy(), seed=0), TypeError, ["images", "ndarray"]),
    (lambda: random_pixels(X.bool(), seed=0), TypeError, ["images", "torch.bool"]),
    (lambda: random_pixels(X, seed="0"), TypeError, ["seed", "'0'"]),
    (lambda: shuffle_pixels(X, seed=0, permutation=torch.zeros(16, dtype=torch.long)),
     ValueError, ["permutation", "range(16)"]),
    (lambda: gaussian_noise(X, seed=0, std=-1.0), ValueError, ["std", "-1.0", ">= 0"]),
    (lambda: gaussian_noise(X, seed=0, mean=[0.0, 1.0]), ValueError, ["mean", "3", "(2,)"]),
    (lambda: gaussian_noise(X, seed=0, mean=[0.0, 1, 2], per_channel=False), ValueError,
     ["mean", "single number", "(3,)"]),
    (lambda: gaussian_noise(X, seed=0, mean="a"), TypeError, ["mean", "'a'"]),
    (lambda: gaussian_noise(X[:0], seed=0), ValueError, ["images", "empty", "(0, 3, 4, 4)"]),
    (lambda: pixel_permutation(-1, 2, 0), ValueError, ["height", "-1"]),
])
def test_bad_input_names_argument_value_and_allowed(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert isinstance(info.value, errors.RethinkError)
    if exc is TypeError:  # wrong types share one error type across modules
        assert isinstance(info.value, errors.InputTypeError)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_old_error_names_stay_importable():
    from rethink_checks.models import ModelNameError

    assert C.CorruptionTypeError is errors.InputTypeError
    assert ModelNameError is errors.ModelNameError
    assert issubclass(errors.ModelNameError, ValueError) and issubclass(errors.ModelNameError, TypeError)


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"name": "label_noise"}, ValueError, ["name", "'label_noise'", "partial_labels"]),
    ({"name": "partial_labels"}, ValueError, ["p", "partial_labels", "None"]),
    ({"name": "partial_labels", "p": 2}, ValueError, ["p", "2", "[0, 1]"]),
    ({"name": "random_labels", "p": 0.5}, ValueError, ["p", "random_labels", "0.5", "1.0"]),
    ({"name": "gaussian", "p": 0.5}, ValueError, ["p", "gaussian", "0.5", "None"]),
    ({"name": "gaussian", "seed": 0.5}, TypeError, ["seed", "0.5"]),
    ({"name": "random_labels", "mode": "wrong"}, ValueError, ["mode", "'wrong'"]),
    ({"name": "gaussian", "per_channel": 1}, TypeError, ["per_channel", "1", "bool"]),
    ({"name": "true_labels", "corrupt_test_labels": "yes"}, TypeError,
     ["corrupt_test_labels", "'yes'"]),
])
def test_bad_spec_raises_on_construction(kwargs, exc, words):
    with pytest.raises(exc) as info:
        CorruptionSpec(**kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_spec_rejects_bad_datasets():
    train = torch.zeros(4, 3, 4, 4)
    bad = Dataset(train, torch.zeros(4, dtype=torch.long), torch.zeros(2, 3, 5, 5),
                  torch.zeros(2, dtype=torch.long), 10)
    with pytest.raises(ValueError, match=r"train .*\(4, 3, 4, 4\).*test .*\(2, 3, 5, 5\)"):
        CorruptionSpec("shuffled_pixels").apply(bad)
    with pytest.raises(TypeError, match="dataset must be a rethink_checks.data.Dataset"):
        CorruptionSpec("gaussian").apply((train, train))
    out_of_range = Dataset(train, torch.full((4,), 10), train, torch.zeros(4, dtype=torch.long),
                           10)
    with pytest.raises(ValueError, match=r"dataset.train_y.*\[0, 10\).*10"):
        CorruptionSpec("random_labels").apply(out_of_range)
    with pytest.raises(ValueError, match="unknown keys.*'q'"):
        CorruptionSpec.from_dict({"name": "gaussian", "q": 1})


# ----------------------------------------------------------------------------- spec

@given(datasets(), corruption_specs())
def test_spec_apply_properties(data, spec):
    snapshot = [t.clone() for t in (data.train_x, data.train_y, data.test_x, data.test_y)]
    out = spec.apply(data)
    for a, b in zip(snapshot, (data.train_x, data.train_y, data.test_x, data.test_y)):
        assert torch.equal(a, b)  # inputs untouched
    assert out.num_classes == data.num_classes and out.input_shape == data.input_shape
    for split in ("train_x", "train_y", "test_x", "test_y"):
        got, orig = getattr(out, split), getattr(data, split)
        assert got.shape == orig.shape and got.dtype == orig.dtype
    labels_changed = spec.name in ("partial_labels", "random_labels")
    if not labels_changed:
        assert torch.equal(out.train_y, data.train_y) and torch.equal(out.test_y, data.test_y)
    if labels_changed or spec.name == "true_labels":
        assert torch.equal(out.train_x, data.train_x) and torch.equal(out.test_x, data.test_x)
        assert torch.equal(out.train_y, corrupt_labels(data.train_y, spec.p, data.num_classes,
                                                       seed=spec.seed, mode=spec.mode))
        if not spec.corrupt_test_labels:
            assert torch.equal(out.test_y, data.test_y)  # clean test labels by default
    assert spec.apply(data).train_x.equal(out.train_x)  # deterministic
    assert CorruptionSpec.from_dict(spec.to_dict()) == spec
    assert spec.describe().startswith(spec.name)


def small_dataset(n_train=64, n_test=64, c=3, side=6, k=10, seed=0) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    return Dataset(torch.rand(n_train, c, side, side, generator=gen),
                   torch.randint(0, k, (n_train,), generator=gen),
                   torch.rand(n_test, c, side, side, generator=gen),
                   torch.randint(0, k, (n_test,), generator=gen), k, name="small")


def test_shuffled_pixels_share_one_permutation_across_train_and_test():
    data = small_dataset()
    out = CorruptionSpec("shuffled_pixels", seed=3).apply(data)
    perm = pixel_permutation(6, 6, 3)
    for orig, got in ((data.train_x, out.train_x), (data.test_x, out.test_x)):
        assert torch.equal(got, orig.flatten(2)[..., perm].reshape(orig.shape))


def test_random_pixels_test_permutations_do_not_repeat_train():
    data = small_dataset()
    same = data.replace(test_x=data.train_x.clone(), test_y=data.train_y.clone())
    out = CorruptionSpec("random_pixels", seed=3).apply(same)
    assert torch.equal(out.train_x, random_pixels(data.train_x, seed=3))
    # identical images, yet every test image is permuted differently from its train copy
    assert all(not torch.equal(a, b) for a, b in zip(out.train_x, out.test_x))


@pytest.mark.parametrize("per_channel", [True, False])
def test_gaussian_test_split_uses_training_statistics(per_channel):
    data = small_dataset(n_train=400, n_test=400)
    data = data.replace(test_x=data.test_x * 100 + 50)  # very different test statistics
    out = CorruptionSpec("gaussian", seed=1, per_channel=per_channel).apply(data)
    mean, std = image_statistics(data.train_x, per_channel)
    assert_stats_match(out.test_x, mean, std, per_channel)
    assert_stats_match(out.train_x, mean, std, per_channel)
    assert not torch.equal(out.train_x, out.test_x)


@pytest.mark.parametrize("mode", C.LABEL_MODES)
def test_corrupt_test_labels_option(mode):
    data = small_dataset(n_train=2000, n_test=2000)
    clean = CorruptionSpec("random_labels", seed=2, mode=mode).apply(data)
    both = CorruptionSpec("random_labels", seed=2, mode=mode, corrupt_test_labels=True).apply(data)
    assert torch.equal(clean.test_y, data.test_y)
    assert torch.equal(both.train_y, clean.train_y)
    changed = int((both.test_y != data.test_y).sum())
    q = 0.9 if mode == "paper" else 1.0
    assert changed == 2000 if q == 1 else within_binomial(changed, 2000, q)
    # test labels use their own stream: not the train draws replayed
    assert not torch.equal(both.test_y, corrupt_labels(data.test_y, 1.0, 10, seed=2, mode=mode))


def test_spec_fills_in_p_and_describes():
    assert CorruptionSpec("random_labels").p == 1.0
    assert CorruptionSpec("random_labels", p=1).p == 1.0
    assert CorruptionSpec("true_labels").p == 0.0
    assert CorruptionSpec("gaussian").p is None
    assert CorruptionSpec("partial_labels", p=0.4, mode="wrong_class",
                          corrupt_test_labels=True).describe() == \
        "partial_labels(p=0.4, wrong_class, test labels too, seed=0)"
    assert CorruptionSpec("gaussian", per_channel=False, seed=5).describe() == \
        "gaussian(global, seed=5)"
    data = small_dataset()
    assert CorruptionSpec("true_labels").apply(data) is data
    assert CorruptionSpec("partial_labels", p=0.0).apply(data) is data


def test_callables_match_functions():
    x, y = small_dataset().train_x, small_dataset().train_y
    assert torch.equal(C.CorruptLabels(0.3, 10, seed=1)(y), corrupt_labels(y, 0.3, 10, seed=1))
    assert torch.equal(C.RandomLabels(10, seed=1)(y), corrupt_labels(y, 1.0, 10, seed=1))
    assert torch.equal(C.ShufflePixels(seed=1)(x), shuffle_pixels(x, seed=1))
    assert torch.equal(C.RandomPixels(seed=1)(x), random_pixels(x, seed=1))
    noise = C.GaussianNoise.fit(x, seed=1)
    mean, std = image_statistics(x)
    assert torch.equal(noise(x[:5]), gaussian_noise(x[:5], seed=1, mean=mean, std=std))


# ----------------------------------------------------------------------------- GPU

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_cuda_results_identical_to_cpu(dtype):
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(64, 3, 8, 8, generator=gen) * 255).to(dtype)
    y = torch.randint(0, 10, (500,), generator=gen)
    xc, yc = x.cuda(), y.cuda()
    for mode in C.LABEL_MODES:
        out = corrupt_labels(yc, 0.5, 10, seed=1, mode=mode)
        expected = corrupt_labels(y, 0.5, 10, seed=1, mode=mode)
        assert out.is_cuda and torch.equal(out.cpu(), expected)
    for f in (shuffle_pixels, random_pixels):
        out = f(xc, seed=1)
        assert out.is_cuda and out.dtype == dtype and torch.equal(out.cpu(), f(x, seed=1))
    mean, std = [0.1, 0.2, 0.3], [1.0, 2.0, 3.0]  # explicit stats: bit-identical noise
    out = gaussian_noise(xc, seed=1, mean=mean, std=std)
    assert out.is_cuda and out.dtype == dtype
    assert torch.equal(out.cpu(), gaussian_noise(x, seed=1, mean=mean, std=std))
    big = torch.rand(2000, 3, 32, 32, generator=gen)
    assert torch.equal(random_pixels(big.cuda(), seed=3).cpu(), random_pixels(big, seed=3))
