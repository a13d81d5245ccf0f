"""The paper's models: exact parameter counts, shapes for other inputs, build() contract."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rethink_checks.errors import ModelError
from rethink_checks.models import (MODELS, PAPER_LEARNING_RATES, build, count_parameters, mlp,
                                   small_alexnet, small_inception)

PAPER_COUNTS = {
    "inception": 1_649_402,
    "inception_nobn": 1_649_402,
    "alexnet": 1_387_786,
    "mlp1x512": 1_209_866,
    "mlp3x512": 1_735_178,
}


@pytest.mark.parametrize("name", sorted(PAPER_COUNTS))
def test_parameter_count_equals_paper(name):
    assert count_parameters(build(name, (3, 28, 28), 10)) == PAPER_COUNTS[name]


def test_models_registry_matches_paper_names():
    assert set(MODELS) == set(PAPER_COUNTS) == set(PAPER_LEARNING_RATES)


def test_inception_batch_norm_has_no_affine_parameters_and_convs_keep_biases():
    model = small_inception()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert norms and all(not m.affine for m in norms)
    assert all(c.bias is not None for c in convs)
    # The documented alternative: no conv biases, BN scale and shift -> the 1,651,114 figure.
    channels = sum(m.num_features for m in norms)
    assert count_parameters(model) - channels + 2 * channels == 1_651_114


def test_inception_without_bn_has_no_batch_norm():
    model = build("inception_nobn", (3, 28, 28), 10)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_alexnet_uses_lrn_and_same_padded_pools():
    model = small_alexnet((3, 28, 28), 10)
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.modules()) == 2
    sizes = []
    for m in model.modules():
        if isinstance(m, nn.MaxPool2d):
            m.register_forward_hook(lambda mod, inp, out: sizes.append(tuple(out.shape[-2:])))
    model(torch.zeros(1, 3, 28, 28))
    assert sizes == [(14, 14), (7, 7)]


def test_inception_downsamples_28_to_14_to_7():
    model = small_inception()
    sizes = []
    for m in model.modules():
        if type(m).__name__ == "DownsampleModule":
            m.register_forward_hook(lambda mod, inp, out: sizes.append(tuple(out.shape[-2:])))
    model.eval()(torch.zeros(1, 3, 28, 28))
    assert sizes == [(14, 14), (7, 7)]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (2, 5, 9)])
def test_forward_shape_for_other_inputs(name, shape):
    torch.manual_seed(0)
    model = build(name, shape, 7)
    out = model(torch.rand(2, *shape))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@settings(max_examples=6)
@given(name=st.sampled_from(sorted(MODELS)), c=st.integers(1, 3), h=st.integers(1, 12),
       w=st.integers(1, 12), k=st.integers(1, 12))
def test_any_small_shape_builds_and_runs(name, c, h, w, k):
    model = build(name, (c, h, w), k).eval()
    assert model(torch.rand(2, c, h, w)).shape == (2, k)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_build_sets_learning_rate_and_name(name):
    model = build(name, (1, 8, 8), 10)
    assert model.rethink_name == name
    assert model.rethink_lr == PAPER_LEARNING_RATES[name]
    assert model.rethink_lr == (0.1 if name.startswith("inception") else 0.01)


def test_build_accepts_numpy_ints_and_torch_size():
    assert count_parameters(build("alexnet", np.array([3, 28, 28]), np.int64(10))) == PAPER_COUNTS["alexnet"]
    assert count_parameters(build("mlp1x512", torch.Size([3, 28, 28]), 10)) == PAPER_COUNTS["mlp1x512"]


def test_build_unknown_name_lists_allowed_names():
    with pytest.raises(ValueError) as info:
        build("resnet", (3, 28, 28), 10)
    message = str(info.value)
    assert "'resnet'" in message
    for name in MODELS:
        assert name in message
    assert isinstance(info.value, ModelError)


@pytest.mark.parametrize("name, shape, k, needle", [
    ("alexnet", (28, 28), 10, "input_shape=(28, 28)"),
    ("inception", (3, 0, 28), 10, "input_shape=(3, 0, 28)"),
    ("mlp1x512", "abc", 10, "input_shape='abc'"),
    ("mlp3x512", (3, 28, 28), 0, "num_classes=0"),
    ("inception", (3, 28, 28), True, "num_classes=True"),
    ("alexnet", (3, 28, 28), 2.5, "num_classes=2.5"),
])
def test_build_rejects_bad_shapes_and_class_counts(name, shape, k, needle):
    with pytest.raises(ValueError, match="not allowed") as info:
        build(name, shape, k)
    assert needle in str(info.value)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = build(name, (3, 8, 8), 5)
    loss = nn.functional.cross_entropy(model(torch.rand(4, 3, 8, 8)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_is_static_enough_to_trace(name):
    """symbolic_trace fails on data-dependent Python control flow and .item() (CUDA-graph hazards)."""
    model = build(name, (3, 8, 8), 10).eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(traced(x), model(x))


@pytest.mark.parametrize("name", ["inception", "alexnet"])
def test_channels_last_gives_the_same_output(name):
    torch.manual_seed(0)
    model = build(name, (3, 16, 16), 10).eval()
    x = torch.rand(2, 3, 16, 16)
    expected = model(x)
    model = model.to(memory_format=torch.channels_last)
    got = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_mlp_signature_unchanged():
    model = mlp((1, 8, 8), 10, depth=2, width=32)
    assert count_parameters(model) == 64 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(MODELS))
def test_cuda_graph_capture(name):
    """A training step of every model captures into a CUDA graph and replays."""
    torch.manual_seed(0)
    model = build(name, (3, 28, 28), 10).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(8, 3, 28, 28, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=False)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        loss = step()
    for _ in range(3):
        graph.replay()
    torch.cuda.synchronize()
    assert torch.isfinite(loss).all()
