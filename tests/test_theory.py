"""Theorem 1 construction, min-norm kernel interpolation and the expressivity check."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from rethink_checks import theory
from rethink_checks.data import load_digits
from rethink_checks.errors import DataError, InputTypeError, RethinkError, SettingsError
from rethink_checks.theory import (KernelInterpolant, TwoLayerReLU, check_expressivity, kernel_interpolate,
                                   theorem1_classifier, theorem1_network)


@st.composite
def distinct_points(draw, max_n: int = 60, max_d: int = 8):
    """n distinct points on a 1/8 grid in [-16, 16]^d (distinct, so the theorem applies)."""
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    grid = draw(hnp.arrays(np.int64, (n, d), elements=st.integers(-128, 128)))
    _, first = np.unique(grid, axis=0, return_index=True)
    return torch.tensor(grid[np.sort(first)] / 8.0)


def _examples(n: int) -> int:
    """At least n examples (cheap tests), more under a thorough hypothesis profile."""
    return max(n, settings().max_examples)


finite_targets = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def _tolerance(y: torch.Tensor) -> float:
    return 1e-6 * max(1.0, float(y.abs().max()))


@settings(max_examples=_examples(60), deadline=None)
@given(points=distinct_points(), data=st.data())
def test_theorem1_fits_any_real_targets_with_2n_plus_d_weights(points, data):
    n, d = points.shape
    y = torch.tensor(data.draw(hnp.arrays(np.float64, n, elements=finite_targets)))
    net, info = theorem1_network(points, y, seed=data.draw(st.integers(0, 100)))
    assert sum(p.numel() for p in net.parameters()) == 2 * n + d == info.num_weights
    assert {name for name, _ in net.named_parameters()} == {"a", "b", "w"}
    with torch.no_grad():
        out = net(points)
    assert (out - y).abs().max() <= _tolerance(y)
    assert info.residual == pytest.approx(float((out - y).abs().max()))
    assert info.condition_estimate >= info.diagonal_ratio >= 1.0


@settings(max_examples=_examples(40), deadline=None)
@given(points=distinct_points(), data=st.data())
def test_random_class_labels_fit_by_one_network_per_class_and_by_regression(points, data):
    n, d = points.shape
    k = data.draw(st.integers(2, 10))
    labels = torch.tensor(data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1))))
    clf, info = theorem1_classifier(points, labels, k)
    assert len(clf.networks) == k
    assert all(sum(p.numel() for p in net.parameters()) == 2 * n + d for net in clf.networks)
    assert info.num_weights == 2 * n + d and info.total_weights == k * (2 * n + d)
    with torch.no_grad():
        scores = clf(points)
        assert torch.equal(scores.argmax(1), labels) and info.train_accuracy == 1.0
        assert (scores - torch.nn.functional.one_hot(labels, k)).abs().max() <= 1e-6
        reg, _ = theorem1_network(points, labels.double())
        assert torch.equal(reg(points).round().long(), labels)


def test_classifier_matches_separate_networks_when_weights_differ():
    points = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(30) % 3
    clf, _ = theorem1_classifier(points, labels, 3)
    with torch.no_grad():
        shared = clf(points)
        clf.networks[1].a.add_(0.0)  # unchanged: still the shared path
        clf.networks[2].b.mul_(1.0 + 1e-9)  # no longer shared: per-network path
        separate = clf(points)
    assert torch.allclose(shared, separate, atol=1e-3)
    assert torch.equal(separate[:, 0], clf.networks[0](points))


def test_blocked_substitution_matches_dense_triangular_solve(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    points, y = torch.randn(50, 3, generator=gen), torch.randn(50, generator=gen)
    net_full, _ = theorem1_network(points, y)
    monkeypatch.setattr(theory, "_BLOCK", 7)
    net_blocked, info = theorem1_network(points, y)
    x = (points.double() @ net_blocked.a).sort().values
    dense = torch.relu(x[:, None] - net_blocked.b[None, :]).detach()
    assert torch.equal(dense, dense.tril()) and (dense.diagonal() > 0).all()
    assert torch.allclose(net_blocked.w, net_full.w, rtol=1e-8, atol=1e-8)
    assert info.relative_residual < 1e-9


def test_solve_is_float64_triangular_never_a_dense_general_solve(monkeypatch):
    """Only solve_triangular (lower, float64) is used; general solvers would raise here."""
    def refuse(*args, **kwargs):
        raise AssertionError("a dense general solver was called")
    for name in ("solve", "solve_ex", "lstsq", "inv", "inv_ex", "pinv", "lu_factor", "lu_solve"):
        monkeypatch.setattr(torch.linalg, name, refuse)
    monkeypatch.setattr(torch, "inverse", refuse)
    calls = []
    real = torch.linalg.solve_triangular

    def spy(a, b, *, upper, **kwargs):
        calls.append((a.shape, a.dtype, b.dtype, upper))
        return real(a, b, upper=upper, **kwargs)
    monkeypatch.setattr(torch.linalg, "solve_triangular", spy)
    monkeypatch.setattr(theory, "_BLOCK", 16)
    gen = torch.Generator().manual_seed(5)
    points = torch.randn(40, 3, generator=gen, dtype=torch.float32)  # float32 in, float64 inside
    y = torch.randn(40, generator=gen, dtype=torch.float32)
    net, info = theorem1_network(points, y)
    assert calls and all(dt == torch.float64 and bt == torch.float64 and not upper
                         for _, dt, bt, upper in calls)
    assert max(shape[0] for shape, *_ in calls) <= 16  # blocks of the triangle, never n x n
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert info.relative_residual < 1e-6 and math.isfinite(info.condition_estimate)


def test_biases_interleave_projections():
    points = torch.randn(40, 5, generator=torch.Generator().manual_seed(2))
    net, _ = theorem1_network(points, torch.zeros(40))
    x = (points.double() @ net.a).sort().values
    b = net.b.detach()
    assert (b < x).all() and (b[1:] > x[:-1]).all()


def test_image_shaped_points_are_flattened():
    images = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    net, info = theorem1_network(images, torch.arange(12.0))
    assert info.d == 16 and info.num_weights == 2 * 12 + 16
    assert torch.allclose(net(images), torch.arange(12.0, dtype=torch.float64), atol=1e-8)


def test_duplicate_points_error_names_indices():
    points = torch.tensor([[0.0, 1.0], [2.0, 3.0], [0.0, 1.0], [4.0, 5.0]])
    with pytest.raises(DataError, match=r"points: 1 duplicate.*\[0, 2\]"):
        theorem1_network(points, torch.zeros(4))


def test_colliding_given_projection_errors():
    points = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(DataError, match="projections onto the given projection collide"):
        theorem1_network(points, torch.zeros(2), projection=torch.tensor([1.0, 1.0]))


def test_colliding_random_projection_is_redrawn(monkeypatch):
    points = torch.tensor([[0.0, 1.0], [1.0, 0.0], [3.0, 5.0]])
    real = theory._random_projection
    monkeypatch.setattr(theory, "_random_projection",
                        lambda d, seed, attempt: torch.ones(d, dtype=torch.float64) if attempt < 2
                        else real(d, seed, attempt))
    net, info = theorem1_network(points, torch.tensor([1.0, -1.0, 2.0]))
    assert info.attempts == 3
    assert torch.allclose(net(points), torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64))
    monkeypatch.setattr(theory, "_random_projection", lambda d, seed, attempt: torch.ones(d, dtype=torch.float64))
    with pytest.raises(DataError, match="8 random projections collide"):
        theorem1_network(points, torch.zeros(3))


@pytest.mark.parametrize("points, targets, match", [
    (torch.zeros(0, 3), torch.zeros(0), "points: need at least one point"),
    (torch.tensor([[0.0], [float("nan")]]), torch.zeros(2), r"points: non-finite.*rows \[1\]"),
    (torch.tensor([[0.0], [1.0]]), torch.tensor([0.0, float("inf")]), "targets: non-finite"),
    (torch.tensor([[0.0], [1.0]]), torch.zeros(3), r"targets: need shape \(2,\)"),
    (torch.tensor([[0.0], [1.0]]), torch.zeros(2, 2), "use theorem1_classifier"),
])
def test_theorem1_bad_input(points, targets, match):
    with pytest.raises(DataError, match=match):
        theorem1_network(points, targets)


def test_classifier_bad_labels():
    with pytest.raises(DataError, match="labels: values must lie in"):
        theorem1_classifier(torch.rand(3, 2), torch.tensor([0, 1, 5]), 3)
    with pytest.raises(DataError, match="labels: need a 1-D integer"):
        theorem1_classifier(torch.rand(3, 2), torch.tensor([0.0, 1.0, 0.5]), 3)


def test_two_layer_relu_counts_exactly():
    net = TwoLayerReLU(torch.ones(5), torch.zeros(7), torch.zeros(7))
    assert sum(p.numel() for p in net.parameters()) == 2 * 7 + 5


# --------------------------------------------------------------------------- kernels


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _numpy_alpha(x: np.ndarray, y: np.ndarray, k: int, bandwidth: float | None) -> np.ndarray:
    if bandwidth is None:
        gram = x @ x.T
    else:
        sq = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        gram = np.exp(-sq / (2 * bandwidth ** 2))
    return np.linalg.solve(gram, np.eye(k)[y])


@pytest.mark.parametrize("kernel, bandwidth", [("rbf", 0.7), ("rbf", None), ("linear", None)])
def test_kernel_interpolant_matches_numpy_solve(kernel, bandwidth):
    gen = np.random.default_rng(0)
    x = gen.normal(size=(25, 40))  # n < d: the linear Gram matrix is full rank
    y = gen.integers(0, 4, size=25)
    res = kernel_interpolate(torch.tensor(x), torch.tensor(y), kernel=kernel, bandwidth=bandwidth,
                             num_classes=4, device="cpu")
    bw = res.bandwidth if kernel == "rbf" else None
    alpha = _numpy_alpha(x, y, 4, bw)
    gram_alpha = np.eye(4)[y]  # K alpha = Y, so alpha^T K alpha = alpha^T Y
    assert res.train_error == 0.0 and res.solver == "cholesky"
    assert res.rkhs_norm == pytest.approx(np.sqrt((alpha * gram_alpha).sum()), rel=1e-8)
    got_alpha = theory.KernelInterpolant(torch.tensor(x), kernel=kernel, bandwidth=bw, device="cpu"
                                         ).alpha(torch.tensor(np.eye(4)[y]))
    np.testing.assert_allclose(got_alpha.numpy(), alpha, rtol=1e-7, atol=1e-9)


def test_median_bandwidth_is_median_pairwise_distance():
    x = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    assert theory.median_bandwidth(x) == pytest.approx(2.0)  # distances 1, 2, 3


def test_kernel_true_labels_on_digits_generalize(digits):
    res = kernel_interpolate(digits.train_x, digits.train_y, digits.test_x, digits.test_y, device="cpu")
    assert res.train_error == 0.0
    assert res.test_error < 0.05
    assert res.n_train == len(digits.train_x) and res.kernel == "rbf" and res.dtype == "float64"


def test_kernel_random_labels_on_digits_fit_exactly_at_chance(digits):
    noisy = torch.randint(0, 10, (len(digits.train_y),), generator=torch.Generator().manual_seed(0))
    true = kernel_interpolate(digits.train_x, digits.train_y, device="cpu")
    res = kernel_interpolate(digits.train_x, noisy, digits.test_x, digits.test_y, device="cpu")
    assert res.train_error == 0.0
    assert 0.82 <= res.test_error <= 0.97  # chance is 0.9; 359 test points
    assert res.rkhs_norm > 2 * true.rkhs_norm  # noise costs norm


def test_linear_kernel_rank_deficient_falls_back_or_errors(digits):
    x, y = digits.train_x[:300], digits.train_y[:300]  # 300 points in 64 dims: K has rank <= 64
    res = kernel_interpolate(x, y, kernel="linear", device="cpu")
    assert res.solver == "svd" and res.train_error > 0
    with pytest.raises(DataError, match="not positive definite"):
        kernel_interpolate(x, y, kernel="linear", solver="cholesky", device="cpu")
    # the SVD pseudo-inverse is the minimum-norm least-squares solution numpy gives
    xn, onehot = x.flatten(1).double().numpy(), np.eye(10)[y.numpy()]
    expected = np.linalg.lstsq(xn @ xn.T, onehot, rcond=1e-10)[0]
    got = theory.KernelInterpolant(x, kernel="linear", device="cpu").alpha(torch.tensor(onehot))
    np.testing.assert_allclose(xn.T @ got.numpy(), xn.T @ expected, rtol=1e-6, atol=1e-8)


def test_rbf_singular_kernel_falls_back_to_eigh():
    x = torch.tensor([[0.0], [1.0], [1.0 + 1e-9], [3.0]], dtype=torch.float64)  # two near-identical points
    res = kernel_interpolate(x, torch.tensor([0, 1, 1, 0]), bandwidth=1.0, device="cpu")
    assert res.solver in ("eigh", "cholesky") and res.train_error == 0.0
    dup = torch.tensor([[0.0], [1.0], [1.0], [3.0]], dtype=torch.float64)
    res = kernel_interpolate(dup, torch.tensor([0, 1, 0, 0]), bandwidth=1.0, device="cpu")
    assert res.solver == "eigh" and res.train_error == 0.25  # one of the twins must be wrong


def test_jitter_regularizes_but_keeps_fit(digits):
    plain = kernel_interpolate(digits.train_x[:400], digits.train_y[:400], device="cpu")
    jit = kernel_interpolate(digits.train_x[:400], digits.train_y[:400], jitter=1e-3, device="cpu")
    assert jit.train_error == 0.0 and jit.jitter == 1e-3
    assert jit.rkhs_norm < plain.rkhs_norm


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(bandwidth=0.0), SettingsError, r"bandwidth: need a finite number > 0 .*got 0\.0"),
    (dict(bandwidth=-1.0), SettingsError, "bandwidth"),
    (dict(bandwidth=float("nan")), SettingsError, "bandwidth.*nan"),
    (dict(bandwidth="wide"), InputTypeError, "bandwidth: .*got str 'wide'"),
    (dict(kernel="poly"), SettingsError, "kernel: 'poly' is not supported; allowed: 'rbf', 'linear'"),
    (dict(solver="qr"), SettingsError, "solver: 'qr' is not supported; allowed: 'auto', 'cholesky'"),
    (dict(jitter=-1.0), SettingsError, "jitter: need a finite number >= 0, got -1.0"),
    (dict(jitter=True), InputTypeError, "jitter: .*got bool True"),
    (dict(dtype=torch.float32, device="cpu"), SettingsError,
     "dtype: got torch.float32 on cpu; allowed: torch.float64, or torch.float32 on CUDA only"),
    (dict(num_classes=2), DataError, "num_classes: 2"),
])
def test_kernel_bad_options(kwargs, exc, match):
    """Bad options raise the library's errors (still the builtin that fits) naming the option."""
    x, y = torch.rand(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(exc, match=match) as err:
        kernel_interpolate(x, y, **{"device": "cpu", **kwargs})
    assert isinstance(err.value, RethinkError)
    assert isinstance(err.value, TypeError if exc is InputTypeError else ValueError)


def test_kernel_bad_data():
    x, y = torch.rand(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    bad = x.clone()
    bad[2, 1] = float("inf")
    with pytest.raises(DataError, match="train_x: contains non-finite"):
        kernel_interpolate(bad, y, device="cpu")
    with pytest.raises(DataError, match="test_x: contains non-finite"):
        kernel_interpolate(x, y, bad, y, device="cpu")
    with pytest.raises(DataError, match="train_x: need at least one"):
        kernel_interpolate(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), device="cpu")
    with pytest.raises(DataError, match=r"train_y: need one integer label per example \(6\)"):
        kernel_interpolate(x, y[:5], device="cpu")
    with pytest.raises(DataError, match="train_y: need non-negative integer"):
        kernel_interpolate(x, y.float(), device="cpu")
    with pytest.raises(DataError, match="test_x: 2 features"):
        kernel_interpolate(x, y, torch.rand(6, 2), y, device="cpu")
    with pytest.raises(DataError, match="test_x, test_y: give both"):
        kernel_interpolate(x, y, x, device="cpu")
    with pytest.raises(DataError, match="test_x, test_y: give both"):
        KernelInterpolant(x, device="cpu").interpolate_many({"y": y}, test_y=y)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_kernel_on_gpu_matches_cpu(digits):
    cpu = kernel_interpolate(digits.train_x, digits.train_y, digits.test_x, digits.test_y, device="cpu")
    gpu = kernel_interpolate(digits.train_x, digits.train_y, digits.test_x, digits.test_y, device="cuda")
    assert gpu.device.startswith("cuda") and gpu.train_error == 0.0
    assert gpu.test_error == pytest.approx(cpu.test_error, abs=1 / 359)
    assert gpu.rkhs_norm == pytest.approx(cpu.rkhs_norm, rel=1e-6)


# --------------------------------------------------------------------------- check


def test_check_expressivity_on_digits(digits):
    settings_ = SimpleNamespace(seed=3, train_size=300)
    result = check_expressivity(lambda: torch.nn.Linear(64, 10), digits, settings_)
    m = result.metrics
    assert result.passed and m["fitted"] and m["train_accuracy"] == 1.0
    assert m["n"] == 300 and m["d"] == 64 and m["theorem1_weights"] == 2 * 300 + 64
    assert m["theorem1_weights_total"] == 10 * (2 * 300 + 64)
    assert m["num_parameters"] == 650 and m["params_ratio"] == pytest.approx(650 / 664)
    assert result.check == "expressivity" and "random labels" in result.message
    assert result.summary["train"] == 1.0 and result.summary["key"] == [
        {"label": "residual", "value": m["residual"], "format": "{:.1e}"}]
    import json
    json.dumps(result.to_dict())  # plain JSON scalars only


def test_check_expressivity_bad_data_names_data(digits):
    settings_ = SimpleNamespace(seed=0, train_size=None)
    empty = digits.replace(train_x=digits.train_x[:0], train_y=digits.train_y[:0])
    with pytest.raises(DataError, match="data: the training split of 'digits' is empty"):
        check_expressivity(lambda: torch.nn.Linear(64, 10), empty, settings_)
    x = digits.train_x[:60].clone()
    x[[4, 9], 0, 2, 2] = float("nan")
    bad = digits.replace(train_x=x, train_y=digits.train_y[:60])
    with pytest.raises(DataError, match=r"data: 2 training example\(s\) hold NaN/inf values, "
                                        r"e.g. indices \[4, 9\]"):
        check_expressivity(lambda: torch.nn.Linear(64, 10), bad, settings_)


def test_check_expressivity_drops_duplicate_points(digits):
    dup = digits.replace(train_x=torch.cat([digits.train_x[:50], digits.train_x[:10]]),
                         train_y=torch.cat([digits.train_y[:50], digits.train_y[:10]]))
    result = check_expressivity(lambda: torch.nn.Linear(64, 10), dup, SimpleNamespace(seed=0, train_size=None))
    assert result.passed and result.metrics["duplicates_dropped"] == 10 and result.metrics["n"] == 50


def test_interpolate_many_matches_separate_solves(digits):
    x, y = digits.train_x[:300], digits.train_y[:300]
    noisy = torch.randint(0, 10, (300,), generator=torch.Generator().manual_seed(1))
    model = theory.KernelInterpolant(x, device="cpu")
    both = model.interpolate_many({"true": y, "random": noisy}, digits.test_x, digits.test_y)
    for name, labels in (("true", y), ("random", noisy)):
        alone = kernel_interpolate(x, labels, digits.test_x, digits.test_y, device="cpu", num_classes=10)
        assert both[name].test_error == alone.test_error and both[name].train_error == 0.0
        assert both[name].rkhs_norm == pytest.approx(alone.rkhs_norm, rel=1e-9)
    with pytest.raises(DataError, match=r"train_y\['random'\]: need one integer label"):
        model.interpolate_many({"true": y, "random": noisy[:10]})


@settings(max_examples=_examples(200), deadline=None)
@given(raw=hnp.arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 4)),
                      elements=st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)),
       data=st.data())
def test_arbitrary_float_points_fit_or_report_a_collision(raw, data):
    _, first = np.unique(raw, axis=0, return_index=True)
    points = torch.tensor(raw[np.sort(first)])
    y = torch.tensor(data.draw(hnp.arrays(np.float64, len(points), elements=finite_targets)))
    try:
        net, info = theorem1_network(points, y)
    except DataError as err:  # the two documented refusals: colliding or unseparably tiny points
        assert "collide" in str(err) or "too close together to separate" in str(err)
        return
    scale = max(1.0, float(y.abs().max()))
    # error grows with the conditioning of the triangular system, which the info reports
    assert info.residual <= max(1e-6, 1e-12 * info.condition_estimate) * scale


@pytest.mark.parametrize("points", [
    [[2.2250738585072014e-308], [0.0]],  # found by hypothesis: unscaled weights overflowed
    [[1e300, 0.0], [0.0, 1e300], [-1e300, 5e299]],
    [[1e-200, 3e-200], [2e-200, 1e-200]],
])
def test_extreme_point_scales_still_fit(points):
    z = torch.tensor(points, dtype=torch.float64)
    y = torch.arange(1.0, len(z) + 1)
    net, info = theorem1_network(z, y)
    assert torch.isfinite(net.w).all() and info.relative_residual < 1e-9
    assert torch.allclose(net(z), y.double(), rtol=1e-9)


SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"


@pytest.mark.cifar
@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason=f"needs {SHARED_CIFAR}")
def test_real_cifar10_kernel_fits_random_labels_at_chance_and_true_labels_above_it():
    from rethink_checks.data import load_image_folder

    data = load_image_folder(SHARED_CIFAR).subset(1000, seed=0, n_test=2000)
    noisy = torch.randint(0, 10, (1000,), generator=torch.Generator().manual_seed(0))
    res = theory.KernelInterpolant(data.train_x, device="cpu").interpolate_many(
        {"true": data.train_y, "random": noisy}, data.test_x, data.test_y)
    assert res["true"].train_error == 0.0 and res["random"].train_error == 0.0
    assert 0.86 <= res["random"].test_error <= 0.94  # chance: 0.9
    assert res["true"].test_error < 0.75  # 69.5% at n = 1,000 in benchmarks/results/kernel-cpu.json
