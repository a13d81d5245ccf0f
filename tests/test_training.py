"""fit() on CPU: fitting true and random labels, budgets, curves, determinism, bad input, JSON."""
from __future__ import annotations

import json
import math
import random

import numpy as np

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import rethink_checks
from rethink_checks import cuda_graphs, step, training
from rethink_checks.corruptions import CorruptionSpec
from rethink_checks.data import Dataset, load_digits
from rethink_checks.errors import DataError, DeviceError, InputTypeError, ModelError, SettingsError
from rethink_checks.models import mlp
from rethink_checks.results import FitResult
from rethink_checks.training import FitConfig, augment_images, fit, sgd_momentum_update

# Settings under which MLP 1x512 memorizes the (whitened) digits quickly on CPU. The paper's
# schedule (lr 0.01, x0.95 per epoch, batch 128) has only 12 steps per epoch on 1,438 images,
# so its learning rate dies out before random labels are fitted; these tests check fit(), not
# the schedule.
FAST = dict(lr=0.05, batch_size=32, lr_decay=1.0)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits(whiten=True)


@pytest.fixture(scope="module")
def small(digits) -> Dataset:
    """300 training / 100 test digits: enough for behaviour, quick to fit."""
    return digits.subset(300, seed=0, n_test=100)


def factory(data: Dataset, width: int = 512):
    return lambda: mlp(data.input_shape, data.num_classes, width=width)


# ---------------------------------------------------------------- fitting

def test_fits_true_labels_of_digits(digits):
    result = fit(factory(digits), digits, lr=0.1, batch_size=32, max_epochs=60)
    assert result.fitted and result.stop_reason == "fitted"
    assert result.train_accuracy == 1.0
    assert result.epochs_to_fit == result.epochs == len(result.curves["epoch"])
    assert result.steps_to_fit == result.epochs * math.ceil(len(digits.train_y) / 32)
    assert result.test_accuracy > 0.9  # real digits generalize
    assert result.best_test_accuracy >= result.test_accuracy
    assert result.best_test_epoch in result.curves["epoch"]


def test_fits_random_labels_of_digits(digits):
    spec = CorruptionSpec("random_labels", seed=3)
    result = fit(factory(digits), digits, corruption=spec, max_epochs=150, **FAST)
    assert result.fitted, result.curves["train_accuracy"][-5:]
    assert result.train_accuracy == 1.0
    assert result.test_accuracy < 0.3  # chance is 0.1: nothing to generalize
    assert result.settings["corruption"]["name"] == "random_labels"


def test_too_small_model_does_not_fit_random_labels(small):
    spec = CorruptionSpec("random_labels", seed=1)
    result = fit(factory(small, width=2), small, corruption=spec, max_epochs=15, **FAST)
    assert not result.fitted
    assert result.stop_reason == "max_epochs"
    assert result.epochs_to_fit is None and result.steps_to_fit is None
    assert result.train_accuracy < 0.5


def test_linear_model_does_not_fit_random_labels(small):
    linear = lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10))  # noqa: E731
    result = fit(linear, small, corruption=CorruptionSpec("random_labels"), max_epochs=10, **FAST)
    assert not result.fitted and result.stop_reason == "max_epochs"


# ---------------------------------------------------------------- budgets and curves

def test_max_epochs_stops_the_run(small):
    result = fit(factory(small), small, max_epochs=3)
    assert (result.epochs, result.stop_reason, result.fitted) == (3, "max_epochs", False)
    assert result.steps == 3 * math.ceil(300 / 128)


def test_time_budget_stops_after_one_epoch(small):
    result = fit(factory(small), small, max_seconds=1e-6, max_epochs=50)
    assert (result.epochs, result.stop_reason, result.fitted) == (1, "time_budget", False)
    assert result.train_accuracy == result.curves["train_accuracy"][0] is not None


def test_curves_have_one_entry_per_epoch(small):
    rows = []
    result = fit(factory(small), small, max_epochs=4, progress=rows.append)
    assert set(result.curves) == {"epoch", "step", "train_loss", "running_accuracy", "train_accuracy",
                                  "test_accuracy", "lr", "elapsed"}
    assert all(len(v) == 4 for v in result.curves.values())
    assert result.curves["epoch"] == [1, 2, 3, 4]
    assert result.curves["step"] == [3, 6, 9, 12]  # ceil(300 / 128) = 3 steps per epoch
    # the paper's x0.95 per 391 steps: 12 steps stay on the first level (tests/test_schedule.py)
    assert result.curves["lr"] == [0.01] * 4
    assert result.curves["elapsed"] == sorted(result.curves["elapsed"])
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["train_accuracy"] == result.train_accuracy
    assert {k: rows[0][k] for k in ("max_epochs", "max_steps", "max_seconds", "target")} == {
        "max_epochs": 4, "max_steps": None, "max_seconds": None, "target": 1.0}  # for a live line


def test_eval_every_leaves_gaps_and_measures_the_last_epoch(small):
    result = fit(factory(small), small, max_epochs=5, eval_every=2, eval_margin=0.0)
    acc = result.curves["train_accuracy"]
    assert [a is None for a in acc] == [True, False, True, False, False]
    assert result.train_accuracy == acc[-1]


def test_learning_rate_comes_from_model_attribute(small):
    def make():
        model = mlp(small.input_shape, 10)
        model.rethink_lr = 0.03
        return model

    assert fit(make, small, max_epochs=1).settings["lr"] == 0.03
    assert fit(make, small, max_epochs=1, lr=0.2).settings["lr"] == 0.2


# ---------------------------------------------------------------- determinism and isolation

def test_cpu_runs_are_bit_identical(small):
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    runs = [fit(factory(small), small, max_epochs=3, seed=7, augment=False) for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), rng_before)  # global RNG untouched
    for key in ("train_loss", "train_accuracy", "test_accuracy", "step"):
        assert runs[0].curves[key] == runs[1].curves[key]
    for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        assert torch.equal(a, b)
    other = fit(factory(small), small, max_epochs=3, seed=8)
    assert other.curves["train_loss"] != runs[0].curves["train_loss"]


def test_fit_leaves_every_global_rng_alone_and_repeats_exactly(small):
    """Corruption, shuffling, init, dropout and augmentation all use their own generators."""
    torch.manual_seed(11)
    np.random.seed(12)
    random.seed(13)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    make = lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(),  # noqa: E731
                                 nn.Linear(4 * 6 * 6, 10))
    spec = CorruptionSpec("random_pixels", seed=4)
    runs = [fit(make, small, max_epochs=2, seed=3, augment=True, corruption=spec) for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), before[0])
    assert (np.random.get_state()[1] == before[1]).all()
    assert random.getstate() == before[2]
    assert runs[0].curves["train_loss"] == runs[1].curves["train_loss"]
    for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        assert torch.equal(a, b)


def test_the_given_model_is_not_mutated(small):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                          nn.Dropout(0.2), nn.Linear(32, 10))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = fit(model, small, max_epochs=2, remove="all")
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(isinstance(m, nn.Dropout) for m in model.modules())
    assert not any(isinstance(m, (nn.Dropout, nn.BatchNorm1d)) for m in result.model.modules())


def test_remove_all_strips_everything(small):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                          nn.Dropout(0.2), nn.Linear(32, 10))
    result = fit(model, small, max_epochs=1, remove="all", weight_decay=5e-4)
    assert result.removed == ["dropout:4", "batchnorm:2", "weight_decay:0.0005"]
    assert result.settings["weight_decay"] == 0.0 and result.settings["augment"] is False
    kept = fit(model, small, max_epochs=1, weight_decay=5e-4)
    assert kept.removed == [] and kept.settings["weight_decay"] == 5e-4
    only_bn = fit(model, small, max_epochs=1, remove=("batchnorm",))
    assert only_bn.removed == ["batchnorm:2"]
    only_wd = fit(model, small, max_epochs=1, remove=["weight_decay"], weight_decay=5e-4, augment=False)
    assert only_wd.removed == ["weight_decay:0.0005"] and only_wd.settings["weight_decay"] == 0.0


def test_old_regularizer_switches_warn_and_give_the_same_fit(small):
    """regularizers="none" / remove_batchnorm=True still work for one release, with a warning."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                          nn.Dropout(0.2), nn.Linear(32, 10))
    new = fit(model, small, max_epochs=1, remove="all", weight_decay=5e-4)
    with pytest.warns(DeprecationWarning, match=r"FitConfig.regularizers is deprecated.*FitConfig.remove"):
        old = fit(model, small, max_epochs=1, regularizers="none", weight_decay=5e-4)
    assert old.removed == new.removed and old.curves["train_loss"] == new.curves["train_loss"]
    with pytest.warns(DeprecationWarning, match="FitConfig.remove_batchnorm is deprecated"):
        only_bn = fit(model, small, max_epochs=1, remove_batchnorm=True)
    assert only_bn.removed == ["batchnorm:2"] and only_bn.settings["remove"] == ["batchnorm"]


def test_augmentation_trains_and_is_seeded(small):
    a = fit(factory(small), small, max_epochs=2, augment=True, seed=1)
    b = fit(factory(small), small, max_epochs=2, augment=True, seed=1)
    plain = fit(factory(small), small, max_epochs=2, augment=False, seed=1)
    assert a.curves["train_loss"] == b.curves["train_loss"]
    assert a.curves["train_loss"] != plain.curves["train_loss"]


def test_final_partial_batch_is_trained(small):
    """ceil(N / B) steps: the 300 - 2 * 128 = 44 leftover examples get a step of their own."""
    result = fit(factory(small), small, max_epochs=1)
    assert result.settings["steps_per_epoch"] == 3 and result.steps == 3


# ---------------------------------------------------------------- SGD equivalence

@settings(max_examples=25, deadline=None)
@given(momentum=st.sampled_from([0.0, 0.5, 0.9]), weight_decay=st.sampled_from([0.0, 5e-4, 0.1]),
       lrs=st.lists(st.floats(1e-4, 0.5), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_foreach_update_equals_torch_sgd(momentum, weight_decay, lrs, seed):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (4,), (2, 3, 2)]
    ref = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    mine = [p.detach().clone() for p in ref]
    bufs = [torch.zeros_like(p) for p in mine]
    opt = torch.optim.SGD(ref, lr=lrs[0], momentum=momentum, weight_decay=weight_decay)
    for lr in lrs:
        grads = [torch.randn(s, generator=gen) for s in shapes]
        for p, g in zip(ref, grads):
            p.grad = g.clone()
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        sgd_momentum_update(mine, [g.clone() for g in grads], bufs, torch.tensor(lr), momentum,
                            weight_decay)
    for a, b in zip(ref, mine):
        # a few float32 ulps: torch.optim.SGD folds -lr into add(alpha=...), the capturable
        # update multiplies by the lr tensor first
        torch.testing.assert_close(a.detach(), b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- augmentation

def _candidates(image: torch.Tensor, pad: int) -> list[torch.Tensor]:
    c, h, w = image.shape
    padded = torch.nn.functional.pad(image, (pad, pad, pad, pad))
    crops = [padded[:, dy:dy + h, dx:dx + w] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    return crops + [crop.flip(-1) for crop in crops]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), c=st.integers(1, 3), h=st.integers(2, 12), seed=st.integers(0, 2**16))
def test_augment_is_a_padded_crop_or_its_mirror(n, c, h, seed):
    x = torch.randn(n, c, h, h, generator=torch.Generator().manual_seed(seed))
    out = augment_images(x, torch.Generator().manual_seed(seed))
    again = augment_images(x, torch.Generator().manual_seed(seed))
    assert out.shape == x.shape and torch.equal(out, again)
    pad = max(1, round(4 * h / 32))
    for image, crop in zip(x, out):
        assert any(torch.equal(crop, cand) for cand in _candidates(image, pad))


def test_augment_needs_images(small):
    flat = small.replace(train_x=small.train_x.flatten(1), test_x=small.test_x.flatten(1))
    model = lambda: nn.Sequential(nn.Linear(64, 10))  # noqa: E731
    with pytest.raises(DataError, match=r"augment=True needs image inputs .*\(300, 64\)"):
        fit(model, flat, max_epochs=1, augment=True)


# ---------------------------------------------------------------- divergence and bad input

def test_divergence_is_reported_not_raised(small):
    result = fit(factory(small), small, lr=1e12, max_epochs=10)
    assert result.diverged and result.stop_reason == "diverged" and not result.fitted
    assert result.diverged_epoch == result.epochs == 1
    assert result.curves["train_loss"] == [None]


class _Blowup(nn.Module):
    """Finite logits at first (the probe passes), then ``value`` once training starts."""

    def __init__(self, value: float):
        super().__init__()
        self.lin, self.value = nn.Linear(64, 10), value

    def forward(self, x):
        out = self.lin(x.flatten(1))
        return out * self.value if self.training else out


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_loss_is_reported_as_divergence(small, value):
    result = fit(_Blowup(value), small, max_epochs=5)
    assert result.diverged and result.stop_reason == "diverged" and result.diverged_epoch == 1
    assert result.epochs == 1 and not result.fitted
    assert json.loads(result.to_json())["diverged_epoch"] == 1  # NaN loss stored as null


def test_factory_returning_non_module(small):
    with pytest.raises(ModelError, match="factory returned builtins.int; expected a torch.nn.Module"):
        fit(lambda: 3, small)
    with pytest.raises(ModelError, match="got str"):
        fit("mlp", small)


def test_factory_that_raises(small):
    def broken():
        raise KeyError("no such width")

    with pytest.raises(ModelError, match=r"factory 'broken' raised KeyError: 'no such width'"):
        fit(broken, small)


def test_wrong_output_shape(digits):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 7))
    with pytest.raises(ModelError, match=r"model returned shape \(128, 7\); expected \(128, 10\)"):
        fit(model, digits)


def test_non_tensor_output(small):
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(64, 10)

        def forward(self, x):
            return self.lin(x.flatten(1)), None

    with pytest.raises(ModelError, match="returned tuple; expected a tensor"):
        fit(Pair(), small)


def test_model_raising_on_the_input_shape(digits):
    model = nn.Sequential(nn.Flatten(), nn.Linear(3072, 10))  # expects 32x32x3, gets 1x8x8
    with pytest.raises(ModelError, match=r"input of shape \(128, 1, 8, 8\).*mat1 and mat2") as info:
        fit(model, digits)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_model_without_trainable_parameters(small):
    frozen = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).requires_grad_(False)
    with pytest.raises(ModelError, match="no trainable parameters"):
        fit(frozen, small)
    ten = small.replace(train_x=small.train_x.flatten(1)[:, :10], test_x=small.test_x.flatten(1)[:, :10])
    with pytest.raises(ModelError, match="no trainable parameters"):
        fit(nn.Flatten, ten)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_gpu(small, device):
    with pytest.raises(DeviceError, match=f"device='{device}' was requested but CUDA is not available"):
        fit(factory(small), small, device=device)


def test_out_of_memory_names_the_batch_size(small, monkeypatch):
    def oom(self, full):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(step._Loop, "step", oom)
    with pytest.raises(DeviceError, match=r"batch_size=64; try a smaller batch_size \(e.g. 32\)"):
        fit(factory(small), small, batch_size=64)


def test_out_of_memory_in_evaluation_names_the_eval_batch_size(small, monkeypatch):
    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    monkeypatch.setattr(training, "_correct", oom)
    with pytest.raises(DeviceError, match=r"evaluation with eval_batch_size=512; try a smaller "
                                          r"eval_batch_size \(e.g. 256\)"):
        fit(factory(small), small, eval_batch_size=512, max_epochs=1)


@pytest.mark.parametrize("bad, match", [
    (dict(batch_size=0), r"FitConfig.batch_size=0 is invalid; allowed: an integer >= 1"),
    (dict(lr=-1.0), r"FitConfig.lr=-1.0 is invalid"),
    (dict(target_accuracy=1.5), r"FitConfig.target_accuracy=1.5"),
    (dict(remove="none"), r"FitConfig.remove=\['none'\] is invalid; allowed: a list drawn from dropout"),
    (dict(remove=("dropout", "l2")), r"FitConfig.remove=\('dropout', 'l2'\) is invalid; allowed: .* 'all'"),
    (dict(precision="fp8"), r"FitConfig.precision='fp8'"),
    (dict(device="tpu"), r"FitConfig.device='tpu'"),
    (dict(max_seconds=0), r"FitConfig.max_seconds=0"),
    (dict(corruption="random_labels"), r"FitConfig.corruption='random_labels' is invalid"),
])
def test_bad_settings_name_field_and_value(small, bad, match):
    with pytest.raises(ValueError, match=match):
        fit(factory(small), small, **bad)


def test_unknown_setting_is_a_type_error(small):
    with pytest.raises(InputTypeError, match=r"unknown setting\(s\) \['epochs'\]; FitConfig fields"):
        fit(factory(small), small, epochs=3)
    with pytest.raises(InputTypeError, match="must be a FitConfig or None; got dict"):
        fit(factory(small), small, config={"lr": 0.1})


@pytest.mark.parametrize("device", ["tpu", "mps", "cuda:x"])
def test_unsupported_device_is_a_settings_error(small, device):
    with pytest.raises(SettingsError, match=f"FitConfig.device='{device}' is invalid; allowed: 'auto', 'cpu'"):
        fit(factory(small), small, device=device)


def test_bad_data(small):
    with pytest.raises(DataError, match="got dict"):
        fit(factory(small), {"train_x": 1})
    wrong = small.replace(train_y=small.train_y + 10)
    with pytest.raises(DataError, match=r"train labels must lie in \[0, 10\)"):
        fit(factory(small), wrong)


# ---------------------------------------------------------------- results

def test_result_round_trips_through_json(small):
    result = fit(factory(small), small, max_epochs=2, corruption=CorruptionSpec("random_labels"))
    text = result.to_json()
    back = FitResult.from_dict(json.loads(text))
    assert back.to_dict() == json.loads(text)
    assert back.curves == result.curves and back.settings["max_epochs"] == 2
    assert result.device == "cpu" and result.torch_version == torch.__version__
    assert result.fast_path is False and "cpu" in result.fast_path_reason
    assert result.num_parameters == 64 * 512 + 512 + 512 * 10 + 10
    assert result.peak_memory_bytes is None


def test_package_exports_fit():
    assert rethink_checks.fit is fit and rethink_checks.FitConfig is FitConfig
    assert FitConfig().to_dict()["batch_size"] == 128


def test_defaults_are_the_papers():
    """SGD momentum 0.9, x0.95 per 391 steps (an epoch of 50,000 at batch 128), batch 128, no
    weight decay or augmentation, fit to 100%."""
    c = FitConfig()
    assert (c.lr, c.momentum, c.lr_decay, c.batch_size, c.weight_decay, c.augment) == (None, 0.9, 0.95, 128, 0.0, False)
    assert (c.target_accuracy, c.remove, c.device, c.precision, c.fast) == (1.0, (), "auto", "auto", True)
    assert c.corruption is None and c.max_seconds is None and c.lr_decay_steps == 391
    assert (c.eval_every, c.eval_margin, c.test_sample, c.max_steps) == (5, 0.1, None, None)


def test_train_accuracy_is_measured_on_the_full_randomized_set_in_eval_mode(small):
    make = lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.5),  # noqa: E731
                                 nn.Linear(128, 10))
    spec = CorruptionSpec("random_labels", seed=2)
    result = fit(make, small, corruption=spec, max_epochs=3, **FAST)
    noisy = spec.apply(small)
    with torch.no_grad():
        predicted = result.model.eval()(noisy.train_x).argmax(1)
    assert result.train_accuracy == (predicted == noisy.train_y).sum().item() / len(noisy.train_y)
    assert result.test_accuracy == (result.model(small.test_x).argmax(1) == small.test_y).sum().item() / 100


def test_lower_target_accuracy_stops_earlier(small):
    full = fit(factory(small), small, max_epochs=40, **FAST)
    half = fit(factory(small), small, max_epochs=40, target_accuracy=0.5, eval_every=1, **FAST)
    assert full.fitted and half.fitted and half.epochs_to_fit < full.epochs_to_fit
    assert half.train_accuracy >= 0.5 and half.curves["train_accuracy"][-1] == half.train_accuracy
    assert all(a < 0.5 for a in half.curves["train_accuracy"][:-1])
    assert half.total_seconds >= half.train_seconds + half.eval_seconds
    assert half.train_seconds > 0 and half.eval_seconds > 0


# ---------------------------------------------------------------- conv models, splits, warm-up undo

def test_small_inception_trains_on_cpu_and_loses_its_batch_norm():
    from rethink_checks.models import small_inception

    gen = torch.Generator().manual_seed(0)
    data = Dataset(torch.randn(40, 3, 16, 16, generator=gen), torch.randint(0, 10, (40,), generator=gen),
                   torch.randn(8, 3, 16, 16, generator=gen), torch.randint(0, 10, (8,), generator=gen),
                   num_classes=10, name="noise")
    make = lambda: small_inception((3, 16, 16), 10)  # noqa: E731
    bns = sum(isinstance(m, nn.BatchNorm2d) for m in make().modules())
    result = fit(make, data, max_epochs=1, batch_size=16, remove="all", augment=True)
    assert result.epochs == 1 and result.steps == 3 and result.curves["train_loss"][0] is not None
    assert len([r for r in result.removed if r.startswith("batchnorm:")]) == bns > 0
    assert "augment" in result.removed


def test_empty_test_split_gives_no_test_accuracy(small):
    no_test = small.replace(test_x=small.test_x[:0], test_y=small.test_y[:0])
    result = fit(factory(small), no_test, max_epochs=2)
    assert result.test_accuracy is None and result.best_test_accuracy is None
    assert result.curves["test_accuracy"] == [None, None]


def test_dropout_models_are_deterministic_too(small):
    make = lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.5),  # noqa: E731
                                 nn.Linear(64, 10))
    a, b = (fit(make, small, max_epochs=2, seed=5) for _ in range(2))
    assert a.curves["train_loss"] == b.curves["train_loss"]


def test_warm_up_steps_are_undone(small, monkeypatch):
    """The GPU path warms up with real steps before capture; restore() must undo all of them."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))
    train = step._Placed(small.train_x, small.train_y, torch.device("cpu"), nhwc=False)
    loop = step._Loop(model, train, FitConfig(weight_decay=1e-3), 0.1, lambda: step.nullcontext())
    before = loop.snapshot()
    assert all(torch.equal(v, before[k]) and v is not before[k] for k, v in model.state_dict().items())
    for _ in range(cuda_graphs.WARMUP_STEPS):  # as _Graphs warms up
        loop.base.zero_()
        loop.step(True)
        loop.step(False)
    assert not torch.equal(model[1].weight, before["1.weight"])
    loop.restore(before, drop_grads=True)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    bufs = [s["momentum_buffer"] for s in loop.recipe.optimizer.state.values()]
    assert len(bufs) == len(loop.params) and all(not b.any() for b in bufs)
    assert loop.base.item() == 0 and loop.loss_sum.item() == 0
    assert all(p.grad is None for p in loop.params)


def test_bf16_autocast_on_cpu_tracks_fp32(small):
    fp32 = fit(factory(small), small, max_epochs=5, lr=0.1, batch_size=32, seed=2, eval_every=1)
    bf16 = fit(factory(small), small, max_epochs=5, lr=0.1, batch_size=32, seed=2, precision="bf16",
               eval_every=1)
    assert bf16.settings["precision"] == "bf16" and fp32.settings["precision"] == "fp32"
    for a, b in zip(fp32.curves["train_accuracy"], bf16.curves["train_accuracy"]):
        assert abs(a - b) <= 0.05


# ---------------------------------------------------------------- the fast path's orchestration on CPU

class _FakeStream:
    def wait_stream(self, other):
        pass


class _FakeGraph:
    """Stands in for a captured CUDA graph: replaying it runs the captured step eagerly."""

    def __init__(self, step):
        self.replay = step


def _run_epochs(small, fake_cuda: bool, monkeypatch, capture_error: Exception | None = None):
    if fake_cuda:
        monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
        monkeypatch.setattr(torch.cuda, "Stream", _FakeStream)
        monkeypatch.setattr(torch.cuda, "current_stream", lambda *a, **k: _FakeStream())
        monkeypatch.setattr(torch.cuda, "stream", lambda s: step.nullcontext())

        def capture(self, full):
            if capture_error is not None:
                raise capture_error
            self.loop.step(full)  # a real capture launches nothing; _fast_path undoes this below
            return _FakeGraph(lambda: self.loop.step(full))

        monkeypatch.setattr(cuda_graphs._Graphs, "_capture", capture)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                              nn.Linear(32, 10))
    config = FitConfig(max_epochs=3, weight_decay=1e-3, augment=True, lr=0.1)
    train = step._Placed(small.train_x, small.train_y, torch.device("cpu"), nhwc=False)
    plan = training._Plan(config=config, device=torch.device("cpu"), precision="fp32", lr=0.1, started=0.0,
                          conv=False, dataset_name="small")
    loop = step._Loop(model, train, config, plan.lr, plan.autocast)
    loop.source = train.x.clone()
    if fake_cuda:
        graphs, reason = cuda_graphs._fast_path(loop, torch.device("cuda"), config.fast, config.compile)
    else:
        graphs, reason = None, "eager"
    run = training._Run(model, loop, graphs, train, None, plan)
    run.epochs()
    return run, graphs, reason, model


def test_fast_path_orchestration_matches_eager(small, monkeypatch):
    """Warm-up, capture, undo and replay (graphs faked) train exactly like the eager loop."""
    eager, _, _, eager_model = _run_epochs(small, False, monkeypatch)
    fast, graphs, reason, fast_model = _run_epochs(small, True, monkeypatch)
    assert graphs is not None and reason == "CUDA graph of the whole training step"
    assert fast.curves["train_loss"] == eager.curves["train_loss"]
    for a, b in zip(fast_model.state_dict().values(), eager_model.state_dict().values()):
        assert torch.equal(a, b)


def test_failed_capture_falls_back_with_the_root_cause(small, monkeypatch):
    eager, _, _, _ = _run_epochs(small, False, monkeypatch)
    try:
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
    except RuntimeError as inner:
        try:
            raise ModelError("the model raised RuntimeError") from inner
        except ModelError as outer:
            error = outer
    fast, graphs, reason, _ = _run_epochs(small, True, monkeypatch, capture_error=error)
    assert graphs is None
    assert reason == ("eager fallback: CUDA graph capture failed (RuntimeError: CUDA error: operation "
                      "not permitted when stream is capturing)")
    assert fast.curves["train_loss"] == eager.curves["train_loss"]  # warm-up fully undone


def test_compile_is_ignored_on_cpu_and_says_so(small):
    result = fit(factory(small), small, max_epochs=1, compile=True)
    assert result.fast_path_reason.endswith("; compile=True ignored on cpu")
    assert result.settings["compile"] is True
