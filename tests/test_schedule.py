"""The paper's learning-rate schedule per optimizer step, the step budget, and their bad input."""
from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

from rethink_checks import step as step_module
from rethink_checks.data import from_tensors
from rethink_checks.errors import SettingsError
from rethink_checks.recipe import Recipe
from rethink_checks.settings import CheckSettings, FitConfig
from rethink_checks.step import lr_at
from rethink_checks.training import fit


def _old_per_epoch_lr(epoch: int, lr: float, decay: float) -> float:
    """The loop before issue #10: ``lr *= decay`` after every epoch (epoch is 1-based)."""
    value = lr
    for _ in range(epoch - 1):
        value *= decay
    return value


def test_full_size_cifar10_at_batch_128_keeps_the_per_epoch_schedule_to_the_step() -> None:
    steps_per_epoch = math.ceil(50_000 / 128)
    assert steps_per_epoch == FitConfig().lr_decay_steps == 391
    for step in range(0, 391 * 120):
        epoch = step // steps_per_epoch + 1
        assert lr_at(step, 0.01, 0.95, 391) == _old_per_epoch_lr(epoch, 0.01, 0.95)  # bit-exact


@given(st.integers(0, 10_000), st.integers(1, 1000), st.floats(0.5, 1.0))
def test_lr_at_is_a_staircase(step: int, every: int, decay: float) -> None:
    assert lr_at(step, 0.1, decay, every) == lr_at(step - step % every, 0.1, decay, every)
    assert lr_at(step, 0.1, decay, every) == pytest.approx(0.1 * decay ** (step // every))
    config = FitConfig(lr_decay=decay, lr_decay_steps=every, max_steps=step + 1)
    recipe = Recipe([nn.Parameter(torch.zeros(1))], config, 0.1, torch.device("cpu"), 1, graph=False)
    assert recipe.lr_at(step) == [lr_at(step, 0.1, decay, every)]  # the fit's own schedule


def _tiny(n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 20, 8, generator=gen)
    y = torch.randint(0, 3, (n + 20,), generator=gen)
    return from_tensors(x[:n], y[:n], x[n:], y[n:], num_classes=3)


def _linear():
    return nn.Linear(8, 3)


def test_an_epoch_of_391_steps_gets_the_old_per_epoch_curve_exactly() -> None:
    data = _tiny(391)
    result = fit(_linear, data, lr=0.05, batch_size=1, max_epochs=3, target_accuracy=1.0, device="cpu")
    assert result.settings["steps_per_epoch"] == 391
    assert result.curves["lr"] == [_old_per_epoch_lr(e, 0.05, 0.95) for e in (1, 2, 3)]
    assert result.curves["step"] == [391, 782, 1173]


def test_the_lr_changes_between_steps_inside_an_epoch(monkeypatch) -> None:
    seen: list[float] = []
    original = step_module._Loop.step

    def recording(self, full):
        seen.append(self.recipe.optimizer.param_groups[0]["lr"].item())
        original(self, full)

    monkeypatch.setattr(step_module._Loop, "step", recording)
    data = _tiny(50)  # batch 20: 2 full steps and a partial one per epoch
    fit(_linear, data, lr=0.1, lr_decay=0.5, lr_decay_steps=2, batch_size=20, max_epochs=2,
        device="cpu", eval_every=1)
    as_float32 = [torch.tensor(lr_at(s, 0.1, 0.5, 2)).item() for s in range(6)]  # a float32 tensor
    assert seen == as_float32
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_same_schedule_per_step_at_any_batch_size() -> None:
    """The issue's point: 16 steps an epoch no longer decay 0.95 every 16 steps."""
    data = _tiny(320)
    result = fit(_linear, data, lr=0.1, batch_size=20, max_epochs=30, device="cpu", target_accuracy=1.0)
    assert result.settings["steps_per_epoch"] == 16
    assert result.curves["lr"] == [lr_at(16 * (e - 1), 0.1, 0.95, 391) for e in range(1, 31)]
    assert result.curves["lr"][-1] == 0.1 * 0.95  # 464 steps: one decay, not 29


def test_step_budget_stops_mid_epoch_and_measures_the_partial_epoch() -> None:
    data = _tiny(100)  # batch 30: 4 steps an epoch
    result = fit(_linear, data, lr=0.01, batch_size=30, max_epochs=50, max_steps=10, device="cpu")
    assert (result.stop_reason, result.steps, result.epochs) == ("max_steps", 10, 3)
    assert result.curves["step"] == [4, 8, 10]
    assert result.curves["train_accuracy"][-1] == result.train_accuracy is not None
    epochs_first = fit(_linear, data, lr=0.01, batch_size=30, max_epochs=2, max_steps=10, device="cpu")
    assert (epochs_first.stop_reason, epochs_first.steps) == ("max_epochs", 8)


def test_step_budget_matches_the_same_steps_without_it() -> None:
    """A budget only ends the fit: the steps it does run are the unbudgeted fit's, bit for bit."""
    data = _tiny(100)
    short = fit(_linear, data, lr=0.05, batch_size=25, max_epochs=9, max_steps=8, device="cpu", eval_every=1)
    long = fit(_linear, data, lr=0.05, batch_size=25, max_epochs=2, device="cpu", eval_every=1)
    assert short.curves["train_loss"] == long.curves["train_loss"]
    for a, b in zip(short.model.state_dict().values(), long.model.state_dict().values()):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- bad input, every path

BAD = [("lr_decay_steps", 0, "an integer >= 1"), ("lr_decay_steps", -3, "an integer >= 1"),
       ("lr_decay_steps", "often", "an integer >= 1"), ("lr_decay_steps", 2.5, "an integer >= 1"),
       ("max_steps", 0, "an integer >= 1"), ("max_steps", -1, "an integer >= 1"),
       ("max_steps", "many", "an integer >= 1"), ("max_steps", True, "an integer >= 1"),
       ("test_sample", 0, "'auto' (None) or an integer >= 1"),
       ("test_sample", -10, "'auto' (None) or an integer >= 1"),
       ("test_sample", "some", "'auto' (None) or an integer >= 1"),
       ("eval_margin", -0.1, "a number in [0, 1]"), ("eval_margin", "wide", "a number in [0, 1]"),
       ("eval_margin", float("nan"), "a number in [0, 1]"),
       ("eval_every", 0, "an integer >= 1")]


@pytest.mark.parametrize("name, value, allowed", BAD)
def test_bad_values_are_refused_by_the_library(name, value, allowed) -> None:
    with pytest.raises(SettingsError, match=rf"FitConfig\.{name}=.* is invalid; allowed: {re.escape(allowed)}"):
        FitConfig(**{name: value})


@pytest.mark.parametrize("name, value, allowed", BAD)
def test_bad_values_are_refused_in_a_mapping(name, value, allowed) -> None:
    text = value if isinstance(value, str) else str(value)  # as ini / command line give them
    for given_value in (value, text):
        with pytest.raises(SettingsError, match=rf"FitConfig\.{name}=.* is invalid; allowed: {re.escape(allowed)}"):
            CheckSettings.from_mapping({name: given_value})
    with pytest.raises(SettingsError, match=rf"FitConfig\.{name}="):
        CheckSettings.from_mapping({"fit": {name: value}})


@pytest.mark.parametrize("text, value", [("auto", None), ("none", None), ("400", 400), ("1", 1)])
def test_test_sample_spellings(text, value) -> None:
    assert CheckSettings.from_mapping({"test_sample": text}).fit.test_sample == value
    assert FitConfig(test_sample=text).test_sample == value


def test_good_values_parse_from_strings() -> None:
    fit_config = CheckSettings.from_mapping({"lr_decay_steps": "16", "max_steps": "900",
                                             "eval_margin": "0", "eval_every": "3"}).fit
    assert (fit_config.lr_decay_steps, fit_config.max_steps, fit_config.eval_margin,
            fit_config.eval_every) == (16, 900, 0.0, 3)


MODULE = '''
import pytest
from rethink_checks.models import mlp

pytestmark = pytest.mark.rethink(train_size=40, batch_size=20, lr=0.1, max_epochs=2, device="cpu")

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=32)
'''


@pytest.mark.parametrize("flag, value, shown", [
    ("lr-decay-steps", "0", "FitConfig.lr_decay_steps=0 is invalid; allowed: an integer >= 1"),
    ("max-steps", "-2", "FitConfig.max_steps=-2 is invalid; allowed: an integer >= 1"),
    ("test-sample", "lots", "FitConfig.test_sample='lots' is invalid; allowed: 'auto' (None) or an integer >= 1"),
    ("eval-margin", "x", "FitConfig.eval_margin='x' is invalid; allowed: a number in [0, 1]"),
])
def test_bad_values_on_the_command_line_and_in_ini(pytester: pytest.Pytester, flag, value, shown) -> None:
    pytester.makepyfile(test_model=MODULE)
    result = pytester.runpytest("--rethink", f"--rethink-{flag}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--rethink-{flag}: invalid value {value!r}: {shown}" in result.stderr.str()
    ini = "rethink_" + flag.replace("-", "_")
    pytester.makeini(f"[pytest]\n{ini} = {value}\n")
    result = pytester.runpytest("--rethink")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ini option {ini}: invalid value {value!r}: {shown}" in result.stderr.str()


def test_bad_value_in_rethink_config_fails_the_items(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=MODULE + '''
@pytest.fixture
def rethink_config():
    return {"lr_decay_steps": 0}
''')
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*SettingsError: FitConfig.lr_decay_steps=0 is invalid; allowed: an integer >= 1*"])


def test_good_values_on_the_command_line_reach_the_fit(pytester: pytest.Pytester, tmp_path) -> None:
    pytester.makepyfile(test_model=MODULE)
    out = tmp_path / "r.json"
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels", "--rethink-max-steps=3",
                                "--rethink-lr-decay-steps=2", f"--rethink-json={out}")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    text = out.read_text()
    assert '"max_steps": 3' in text and '"lr_decay_steps": 2' in text
