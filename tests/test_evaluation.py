"""Evaluation that costs a bounded share of a fit: the test sample, the training-set evaluation
rule (near the target, at least every ``eval_every`` epochs) and its guarantee on the examples."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

from rethink_checks.corruptions import CorruptionSpec
from rethink_checks.data import DIGITS_FIT_DEFAULTS, as_dataset, from_tensors, load_digits
from rethink_checks.models import build, mlp
from rethink_checks.settings import FitConfig
from rethink_checks.errors import SettingsError
from rethink_checks.evaluation import TEST_SPACING, _evaluate_now, _test_due
from rethink_checks.training import fit

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _example(name: str):
    """An examples/ module, imported by path (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def digits():
    return load_digits(whiten=True)


def _tabular():
    from sklearn.datasets import load_breast_cancer

    table = load_breast_cancer()  # as examples/test_tabular.py's rethink_data
    data = as_dataset((torch.tensor(table.data, dtype=torch.float32), torch.tensor(table.target)), seed=0)
    mean, std = data.train_x.mean(0), data.train_x.std(0)
    return data.replace(train_x=(data.train_x - mean) / std, test_x=(data.test_x - mean) / std)


def _cases(digits):
    """(name, model factory, data, settings) of every examples/ model, on data small enough for CI."""
    cnn = _example("test_custom_cnn").SmallCNN
    tokens = _example("test_tokens")
    small = digits.subset(300, seed=0)
    topics = as_dataset(tokens.corpus(), seed=0)
    shape, classes = small.input_shape, small.num_classes
    tabular = _tabular()
    return [
        ("mlp1x512", lambda: build("mlp1x512", shape, classes), small, dict(DIGITS_FIT_DEFAULTS)),
        ("wide", lambda: mlp(shape, classes, width=1024), small, dict(DIGITS_FIT_DEFAULTS, lr=0.01)),
        ("custom_cnn", lambda: cnn(shape, classes), digits.subset(200, seed=0),
         dict(DIGITS_FIT_DEFAULTS, lr=0.01)),
        ("alexnet", lambda: build("alexnet", shape, classes), digits.subset(64, seed=0),
         dict(DIGITS_FIT_DEFAULTS, max_epochs=40)),
        ("tabular", lambda: nn.Sequential(nn.Linear(30, 512), nn.ReLU(), nn.Linear(512, 2)), tabular,
         dict(lr=0.05, batch_size=32, lr_decay=1.0, max_epochs=300)),
        ("tokens", lambda: tokens.GRUClassifier(40, tokens.TOPICS), topics,
         dict(lr=0.1, batch_size=32, lr_decay=1.0, max_epochs=200)),
    ]


@pytest.mark.parametrize("labels", ["true", "random"])
@pytest.mark.parametrize("index", range(6))
def test_examples_stop_at_the_epoch_evaluating_every_epoch_would(digits, index, labels) -> None:
    """The guarantee, on every examples/ model: same stop epoch, same trajectory, fewer evaluations."""
    name, make, data, settings = _cases(digits)[index]
    if labels == "random":
        settings["corruption"] = CorruptionSpec("random_labels", seed=0)
    every = fit(make, data, device="cpu", eval_every=1, **settings)
    default = fit(make, data, device="cpu", **settings)
    assert (default.stop_reason, default.epochs_to_fit) == (every.stop_reason, every.epochs_to_fit), name
    assert default.curves["train_loss"] == every.curves["train_loss"]  # evaluation never moves training
    measured = [e for e, a in zip(default.curves["epoch"], default.curves["train_accuracy"]) if a is not None]
    assert all(every.curves["train_accuracy"][e - 1] == default.curves["train_accuracy"][e - 1] for e in measured)
    assert default.train_accuracy == every.train_accuracy and default.test_accuracy == every.test_accuracy
    if labels == "random" and every.epochs >= 20:
        assert len(measured) < every.epochs  # the point: evaluations skipped far from the target


def _separable(n_train: int, n_test: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_test, 6, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return from_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], num_classes=3)


def _linear():
    return nn.Linear(6, 3)


def test_the_curve_uses_a_seeded_test_sample_and_the_result_the_whole_split() -> None:
    data = _separable(60, 500)
    result = fit(_linear, data, lr=0.1, batch_size=10, max_epochs=4, test_sample=50, eval_every=1,
                 device="cpu")
    assert result.test_sample_size == 50 == result.settings["test_sample"]
    measured = [a for a in result.curves["test_accuracy"] if a is not None]
    assert measured and result.curves["test_accuracy"][-1] is not None  # the last epoch always
    assert all(round(a * 50) == pytest.approx(a * 50) for a in measured)
    with torch.no_grad():
        full = (result.model(data.test_x).argmax(1) == data.test_y).float().mean().item()
    assert result.test_accuracy == pytest.approx(full)
    again = fit(_linear, data, lr=0.1, batch_size=10, max_epochs=4, test_sample=50, eval_every=1,
                device="cpu")
    assert again.curves["test_accuracy"] == result.curves["test_accuracy"]  # the same sample


@pytest.mark.parametrize("n_train, test_sample, expected", [
    (60, None, 500),     # auto: max(1000, 60) = 1000, capped at the 500-example split
    (60, 10_000, 500),   # at least the split: the whole split
    (60, 499, 499),
])
def test_test_sample_size(n_train, test_sample, expected) -> None:
    data = _separable(n_train, 500)
    result = fit(_linear, data, lr=0.1, batch_size=10, max_epochs=1, test_sample=test_sample, device="cpu")
    assert result.test_sample_size == expected


def test_auto_sample_grows_with_the_training_set() -> None:
    data = _separable(1200, 3000)
    result = fit(_linear, data, lr=0.1, batch_size=400, max_epochs=1, device="cpu")
    assert result.test_sample_size == 1200


def test_evaluation_and_training_seconds_are_separate() -> None:
    data = _separable(200, 2000)
    result = fit(_linear, data, lr=0.1, batch_size=50, max_epochs=3, eval_every=1, device="cpu")
    assert result.train_seconds > 0 and result.eval_seconds > 0
    assert result.total_seconds >= result.train_seconds + result.eval_seconds


def test_margin_one_evaluates_every_epoch_and_margin_zero_only_at_the_end() -> None:
    data = _separable(100, 50)
    kwargs = dict(lr=0.01, batch_size=20, max_epochs=6, eval_every=100, device="cpu")
    always = fit(_linear, data, eval_margin=1.0, **kwargs)
    assert None not in always.curves["train_accuracy"]
    at_end = fit(_linear, data, eval_margin=0.0, **kwargs)
    assert [a is None for a in at_end.curves["train_accuracy"]] == [True] * 5 + [False]
    assert at_end.curves["train_loss"] == always.curves["train_loss"]


def test_running_accuracy_is_the_train_mode_accuracy_over_the_epoch() -> None:
    data = _separable(100, 50)
    result = fit(_linear, data, lr=0.0001, momentum=0.0, batch_size=100, max_epochs=1, device="cpu",
                 eval_every=1)
    # one full-batch step from the initial weights: running accuracy is the initial model's
    torch.manual_seed(0)
    initial = _linear()
    with torch.no_grad():
        expected = (initial(data.train_x).argmax(1) == data.train_y).float().mean().item()
    assert result.curves["running_accuracy"] == [pytest.approx(expected)]


@given(st.integers(1, 50), st.integers(0, 49), st.floats(0, 1), st.none() | st.floats(0, 1),
       st.booleans(), st.integers(1, 10), st.floats(0, 1), st.floats(0.01, 1))
def test_evaluation_rule(epoch, last_eval, running, last_acc, budget_end, every, margin, target) -> None:
    """Measured exactly when: budget end, eval_every epochs since the last, or either accuracy near."""
    config = FitConfig(eval_every=every, eval_margin=margin, target_accuracy=target)
    last_eval = min(last_eval, epoch - 1)
    near = running >= target - margin or (last_acc is not None and last_acc >= target - margin)
    expected = budget_end or epoch - last_eval >= every or near
    assert _evaluate_now(config, epoch, last_eval, running, last_acc, budget_end) == expected
    if running >= target:  # an epoch whose running accuracy already reaches the target is measured
        assert _evaluate_now(config, epoch, last_eval, running, last_acc, False)
    if every == 1:  # eval_every=1 is the old rule: every epoch
        assert _evaluate_now(config, epoch, epoch - 1, 0.0, None, False)


@given(st.integers(1, 60), st.integers(0, 59), st.integers(0, 20_000), st.integers(1, 3000),
       st.integers(1, 10))
def test_test_sample_rule(epoch, last_test, trained, size, every) -> None:
    """Due when eval_every epochs and TEST_SPACING x the sample's size in training examples passed."""
    config = FitConfig(eval_every=every)
    last_test = min(last_test, epoch - 1)
    expected = epoch - last_test >= every and (every == 1 or trained >= TEST_SPACING * size)
    assert _test_due(config, epoch, last_test, trained, size) == expected


def test_test_sample_costs_a_bounded_share_and_the_end_reads_the_whole_split(monkeypatch) -> None:
    """Between measurements of the sample, at least TEST_SPACING x its size in training examples
    (eval_every > 1); where the fit ends the whole split is measured once and the sample's value
    read from it."""
    from rethink_checks import training

    measured = []
    real = training._correct

    def counting(model, split, chunk, autocast):
        measured.append(len(split))
        return real(model, split, chunk, autocast)

    monkeypatch.setattr(training, "_correct", counting)
    data = _separable(60, 500)
    result = fit(_linear, data, lr=0.01, batch_size=10, max_epochs=12, test_sample=30, eval_every=2,
                 eval_margin=1.0, device="cpu")
    steps = result.curves["step"]
    at = [i for i, a in enumerate(result.curves["test_accuracy"]) if a is not None]
    assert at[-1] == len(steps) - 1  # the last epoch always
    trained = [(steps[b] - (steps[a] if a is not None else 0)) * 10
               for a, b in zip([None, *at[:-2]], at[:-1])]
    assert trained and all(t >= TEST_SPACING * 30 for t in trained)
    assert measured.count(500) == 1 and result.final_test_seconds > 0  # the whole split, once
    with torch.no_grad():
        full = (result.model(data.test_x).argmax(1) == data.test_y).float().mean().item()
    assert result.test_accuracy == pytest.approx(full)


def test_eval_batch_size_auto_is_resolved_per_device() -> None:
    data = _separable(40, 20)
    assert fit(_linear, data, max_epochs=1, device="cpu").settings["eval_batch_size"] == 128
    assert fit(_linear, data, max_epochs=1, device="cpu", eval_batch_size="auto").settings["eval_batch_size"] == 128
    assert fit(_linear, data, max_epochs=1, device="cpu", eval_batch_size=7).settings["eval_batch_size"] == 7
    big = lambda: nn.Sequential(nn.Linear(6, 1000), nn.Linear(1000, 1000), nn.Linear(1000, 3))  # 1.01M
    assert fit(big, data, max_epochs=1, device="cpu").settings["eval_batch_size"] == 1024
    with pytest.raises(SettingsError, match=r"FitConfig.eval_batch_size=0 is invalid; allowed: 'auto'"):
        FitConfig(eval_batch_size=0)


class _ViewAfterConv(nn.Module):
    """A user model flattening with ``.view``, which a channels_last activation refuses."""

    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        x = self.conv(x)
        return self.head(x.view(x.size(0), -1))


def _images(n: int = 40):
    gen = torch.Generator().manual_seed(0)
    return from_tensors(torch.rand(n, 1, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen),
                        torch.rand(20, 1, 8, 8, generator=gen), torch.randint(0, 10, (20,), generator=gen),
                        num_classes=10)


def test_conv_models_train_channels_last_on_cpu_and_a_view_model_falls_back() -> None:
    data = _images()
    conv = lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))
    result = fit(conv, data, max_epochs=2, batch_size=10, device="cpu")
    assert result.settings["channels_last"] is True
    assert next(result.model.parameters()).is_contiguous(memory_format=torch.channels_last)
    viewed = fit(_ViewAfterConv, data, max_epochs=2, batch_size=10, device="cpu")
    assert viewed.settings["channels_last"] is False and viewed.epochs == 2
    assert fit(_linear_images, data, max_epochs=1, device="cpu").settings["channels_last"] is False
    again = fit(conv, data, max_epochs=2, batch_size=10, device="cpu")
    assert again.curves["train_loss"] == result.curves["train_loss"]  # still bit-identical on CPU


def _linear_images():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
