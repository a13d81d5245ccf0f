"""fit() on a GPU: the CUDA-graph fast path, agreement with CPU, and the eager fallback."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rethink_checks.data import Dataset, load_digits
from rethink_checks.models import mlp, small_inception
from rethink_checks.training import fit

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits(whiten=True)


@pytest.fixture(scope="module")
def images() -> Dataset:
    """600 CIFAR-shaped images (3x28x28): a noisy template per class; 4 full batches and a partial one."""
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (700,), generator=gen)
    x = torch.randn(10, 3, 28, 28, generator=gen)[y] + 0.5 * torch.randn(700, 3, 28, 28, generator=gen)
    return Dataset(x[:600], y[:600], x[600:], y[600:], num_classes=10, name="noise")


def test_fast_path_for_mlp(digits):
    result = fit(lambda: mlp(digits.input_shape, 10), digits, lr=0.1, batch_size=32, max_epochs=60,
                 device="cuda")
    assert result.fast_path, result.fast_path_reason
    assert result.fitted and result.train_accuracy == 1.0
    assert result.settings["precision"] == "bf16"
    assert result.peak_memory_bytes > 0 and result.device_name
    assert result.device.startswith("cuda")


def test_fast_path_for_small_inception(images):
    result = fit(lambda: small_inception((3, 28, 28), 10), images, lr=0.1, max_epochs=3, device="cuda")
    assert result.fast_path, result.fast_path_reason
    assert result.epochs == 3 and result.steps == 3 * 5
    losses = result.curves["train_loss"]
    assert all(loss is not None for loss in losses) and losses[-1] < losses[0]


def test_fast_path_with_augmentation_and_dropout(images):
    def make():
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                             nn.Dropout(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    result = fit(make, images, max_epochs=2, augment=True, device="cuda")
    assert result.fast_path, result.fast_path_reason
    assert all(loss is not None for loss in result.curves["train_loss"])


@pytest.mark.parametrize("precision, tolerance", [("bf16", 0.05), ("fp32", 0.02)])
def test_gpu_and_cpu_agree_on_a_small_problem(digits, precision, tolerance):
    settings = dict(lr=0.05, batch_size=64, max_epochs=12, target_accuracy=1.0, seed=3)
    cpu = fit(lambda: mlp(digits.input_shape, 10), digits, device="cpu", **settings)
    gpu = fit(lambda: mlp(digits.input_shape, 10), digits, device="cuda", precision=precision,
              **settings)
    assert gpu.fast_path
    n = min(cpu.epochs, gpu.epochs)
    for a, b in zip(cpu.curves["train_accuracy"][:n], gpu.curves["train_accuracy"][:n]):
        assert abs(a - b) <= tolerance, (cpu.curves["train_accuracy"], gpu.curves["train_accuracy"])


def test_graph_replay_equals_the_eager_step(digits):
    """Same kernels, launched by a graph or by Python: the curves must agree (lr decay, shuffling,
    the partial last batch and the momentum state all live in device buffers the graph reads)."""
    settings = dict(lr=0.05, batch_size=100, max_epochs=4, seed=1, device="cuda", precision="fp32",
                    weight_decay=1e-3)
    fast = fit(lambda: mlp(digits.input_shape, 10), digits, **settings)
    eager = fit(lambda: mlp(digits.input_shape, 10), digits, fast=False, **settings)
    assert fast.fast_path and not eager.fast_path
    assert fast.settings["steps_per_epoch"] == 15  # 14 full batches of 100 and one of 38
    torch.testing.assert_close(fast.curves["train_loss"], eager.curves["train_loss"], rtol=1e-4, atol=1e-5)
    for a, b in zip(fast.model.parameters(), eager.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


class SyncsInForward(nn.Module):
    """Reads a value back to the host in forward (an .item() call): cannot be graph-captured."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        scale = 1.0 if x.abs().max().item() > 0 else 0.0
        return self.net(x) * scale


def test_fallback_reason_when_capture_is_impossible(digits):
    result = fit(SyncsInForward, digits, lr=0.1, batch_size=32, max_epochs=5, device="cuda")
    assert not result.fast_path
    assert "capture failed" in result.fast_path_reason
    assert result.epochs == 5 and result.train_accuracy > 0.5  # trained eagerly instead
    again = fit(lambda: mlp(digits.input_shape, 10), digits, max_epochs=1, device="cuda")
    assert again.fast_path, "a failed capture must not poison later fits"


def test_fast_false_trains_eagerly(digits):
    result = fit(lambda: mlp(digits.input_shape, 10), digits, max_epochs=2, device="cuda", fast=False)
    assert not result.fast_path and "fast=False" in result.fast_path_reason


def test_model_is_returned_on_cpu_and_global_rng_untouched(digits):
    before = torch.cuda.get_rng_state()
    result = fit(lambda: mlp(digits.input_shape, 10), digits, max_epochs=1, device="cuda")
    assert torch.equal(torch.cuda.get_rng_state(), before)
    assert next(result.model.parameters()).device.type == "cpu"


def test_compiled_forward_inside_the_graph(digits):
    settings = dict(lr=0.05, batch_size=100, max_epochs=3, seed=1, device="cuda", precision="fp32")
    compiled = fit(lambda: mlp(digits.input_shape, 10), digits, compile=True, **settings)
    plain = fit(lambda: mlp(digits.input_shape, 10), digits, **settings)
    assert compiled.fast_path and compiled.fast_path_reason.endswith("forward compiled with torch.compile")
    torch.testing.assert_close(compiled.curves["train_loss"], plain.curves["train_loss"], rtol=1e-3, atol=1e-4)
