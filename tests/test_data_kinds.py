"""Input kinds beyond images: feature vectors (N, D) and token ids (N, L) in Dataset, from_tensors /
from_arrays, fit, and through the plugin (memorization checks pass; a randomization without
meaning is SKIPPED with its reason)."""
from __future__ import annotations

import numpy as np
import pytest
import sklearn.datasets  # noqa: F401 - loaded once: pytester's in-process runs unload modules
import torch
from hypothesis import given
from torch import nn

import rethink_checks.training  # noqa: F401
from rethink_checks.data import KINDS, Dataset, from_arrays, from_tensors, infer_kind
from rethink_checks.errors import DataError, InputTypeError
from rethink_checks.strategies import datasets
from rethink_checks.training import fit

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

Y4, Y2 = torch.tensor([0, 1, 2, 1]), torch.tensor([1, 0])


# ---------------------------------------------------------------- kinds and validation

@pytest.mark.parametrize("x, kind", [
    (torch.rand(4, 1, 3, 3), "image"), (torch.rand(4, 3, 3), "image"),
    (torch.rand(4, 5), "features"), (torch.rand(4, 5, dtype=torch.float64), "features"),
    (torch.randint(0, 9, (4, 5)), "tokens"), (torch.randint(0, 9, (4, 5), dtype=torch.int32), "tokens"),
])
def test_kind_is_inferred(x, kind):
    assert infer_kind(x) == kind
    vx = x[:2]
    d = from_tensors(x, Y4, vx, Y2)
    assert d.kind == kind and kind in KINDS
    assert d.train_x.dtype == (torch.int64 if kind == "tokens" else torch.float32)
    assert d.vocab_size == (int(max(x.max(), vx.max())) + 1 if kind == "tokens" else None)
    assert f"kind={kind!r}" in repr(d)


def test_explicit_kind_and_vocab_size():
    ids = torch.tensor([[0, 3], [1, 2], [2, 2], [3, 0]])
    feats = from_tensors(ids, Y4, ids[:2], Y2, kind="features")
    assert feats.kind == "features" and feats.train_x.dtype == torch.float32
    toks = from_tensors(ids, Y4, ids[:2], Y2, vocab_size=50)
    assert toks.vocab_size == 50 and toks.input_shape == (2,)
    assert from_arrays(ids.numpy(), Y4.numpy(), ids[:2].numpy(), Y2.numpy()).kind == "tokens"
    assert from_arrays(np.random.rand(4, 30), Y4.numpy(), np.random.rand(2, 30), Y2.numpy()).kind == "features"


@pytest.mark.parametrize("change, needle, error", [
    (dict(train_x=torch.tensor([[0, 1], [2, -3], [1, 1], [0, 0]])),
     "train_x: token id -3 at example 1, position 1 is negative", DataError),
    (dict(test_x=torch.tensor([[0, 1, 2], [1, 1, 1]])), "test_x: sequence shape (3,) differs", DataError),
    (dict(kind="image"), "rank 2 (shape (4, 2)) does not fit kind='image'", DataError),
    (dict(kind="audio"), "kind='audio' is not allowed", DataError),
    (dict(kind="tokens", train_x=torch.rand(4, 2), test_x=torch.rand(2, 2)), "for kind='tokens'", InputTypeError),
    (dict(vocab_size=2), "vocab_size=2 is not allowed; expected an int greater than the largest token id (3)",
     DataError),
    (dict(train_x=torch.zeros(0, 2, dtype=torch.int64), train_y=torch.zeros(0, dtype=torch.int64)),
     "train_x: has no examples", DataError),
])
def test_bad_inputs_name_what_and_where(change, needle, error):
    kwargs = dict(train_x=torch.tensor([[0, 1], [2, 3], [1, 1], [0, 0]]), train_y=Y4,
                  test_x=torch.tensor([[0, 1], [1, 1]]), test_y=Y2, num_classes=3)
    kwargs.update(change)
    with pytest.raises(error) as info:
        from_tensors(**kwargs)
    assert needle in str(info.value)


def test_features_must_be_finite_and_vocab_size_only_for_tokens():
    x = torch.rand(4, 3)
    x[2, 1] = float("nan")
    with pytest.raises(DataError, match="finite feature values"):
        from_tensors(x, Y4, torch.rand(2, 3), Y2)
    with pytest.raises(DataError, match="applies only to kind='tokens'"):
        from_tensors(torch.rand(4, 3), Y4, torch.rand(2, 3), Y2, vocab_size=9)


def test_replace_with_another_layout_reinfers_the_kind():
    images = from_tensors(torch.rand(4, 1, 2, 2), Y4, torch.rand(2, 1, 2, 2), Y2)
    flat = images.replace(train_x=images.train_x.flatten(1), test_x=images.test_x.flatten(1))
    assert flat.kind == "features"
    toks = from_tensors(torch.tensor([[1, 2]] * 4), Y4, torch.tensor([[0, 3]] * 2), Y2)
    assert toks.replace(train_x=torch.tensor([[0, 0]] * 4)).vocab_size == 4  # kept: same layout
    assert toks.subset(2, seed=0).kind == "tokens" and toks.to("cpu").vocab_size == 4


@given(datasets(kinds=("image", "features", "tokens")))
def test_strategy_datasets_are_valid_for_from_tensors(data):
    again = from_tensors(data.train_x, data.train_y, data.test_x, data.test_y,
                         num_classes=data.num_classes, kind=data.kind)
    assert again.kind == data.kind and again.input_shape == data.input_shape
    assert isinstance(data, Dataset)


# ---------------------------------------------------------------- training

def _toy(kind: str, n: int = 60, seed: int = 0) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    if kind == "features":
        x = torch.randn(n, 6, generator=gen)
        y = (x[:, 0] + x[:, 1] > 0).long()
    else:
        x = torch.randint(0, 12, (n, 5), generator=gen)
        y = (x == 3).any(1).long()
    cut = n * 3 // 4
    return from_tensors(x[:cut], y[:cut], x[cut:], y[cut:])


class TinyTokens(nn.Module):
    """Mean-pooled embeddings and a linear layer: the ids must reach nn.Embedding as integers."""

    def __init__(self, vocab_size: int, num_classes: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, 32)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(32, num_classes))

    def forward(self, x):
        assert x.dtype == torch.int64
        return self.head(self.embed(x).mean(1))


def test_fit_trains_on_features_and_integer_tokens():
    feats = _toy("features")
    run = fit(lambda: nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 2)), feats,
              max_epochs=40, lr=0.1, batch_size=16, device="cpu")
    assert run.fitted
    toks = _toy("tokens")
    run = fit(lambda: TinyTokens(toks.vocab_size, 2), toks, max_epochs=60, lr=0.1, batch_size=16,
              device="cpu")
    assert run.train_accuracy > 0.9


def test_augment_still_needs_images():
    with pytest.raises(DataError, match="augment=True needs image inputs"):
        fit(lambda: nn.Linear(6, 2), _toy("features"), max_epochs=1, augment=True, device="cpu")


def test_checks_skip_what_has_no_meaning_and_regularizers_leave_augment_out():
    from rethink_checks.checks import CheckSettings, RunCache, run_check
    from rethink_checks.corruptions import NotApplicable

    one = _toy("features").replace(train_x=_toy("features").train_x[:, :1],
                                   test_x=_toy("features").test_x[:, :1])
    settings = CheckSettings.from_mapping(dict(lr=0.05, lr_decay=1.0, batch_size=16, max_epochs=3,
                                               device="cpu", memorize_threshold=0.1,
                                               slowdown_randomizations="all"))
    model = lambda: nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 2))  # noqa: E731
    with pytest.raises(NotApplicable, match="random_pixels is not applicable to features inputs"):
        run_check("random_pixels", model, one, settings)
    slow = run_check("slowdown", model, one, settings, RunCache())
    skipped = {row["randomization"]: row.get("skipped") for row in slow.tables["slowdown"]}
    assert skipped["random_pixels"] and skipped["shuffled_pixels"] and not skipped["gaussian"]
    assert slow.metrics["slowdown.random_pixels"] is None and "random_pixels" not in slow.runs
    regs = run_check("regularizers", lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2)),
                     _toy("features"), settings)
    assert "augment" not in regs.metrics["regularizers"].split(",")
    assert "not applicable to features inputs" in regs.metrics["not_applicable"]
    assert "augment left out" in regs.criterion


# ---------------------------------------------------------------- through the plugin

PLUGIN_MODULE = '''
import pytest
import torch
from torch import nn
from rethink_checks.data import from_tensors

pytestmark = pytest.mark.rethink(checks=["true_labels", "random_labels", "shuffled_pixels",
                                         "random_pixels", "gaussian", "slowdown"],
                                 slowdown_randomizations="all")

@pytest.fixture
def rethink_data():
    gen = torch.Generator().manual_seed(0)
    {make}
    return from_tensors(x[:48], y[:48], x[48:], y[48:])

@pytest.fixture
def rethink_model():
    {model}

@pytest.fixture
def rethink_config():
    return dict(lr=0.05, lr_decay=1.0, batch_size=16, max_epochs=150, max_slowdown=1000.0,
                device="cpu"{extra})
'''
FEATURES = dict(make="x = torch.randn(64, {d}, generator=gen); y = (x[:, 0] > 0).long()",
                model="return lambda input_shape, num_classes: nn.Sequential(nn.Linear(input_shape[0], 256), "
                      "nn.ReLU(), nn.Linear(256, num_classes))")
TOKENS = dict(make="x = torch.randint(0, 16, (64, 6), generator=gen); y = (x == 3).any(1).long()",
              model="return lambda input_shape, num_classes, vocab_size: nn.Sequential(nn.Embedding(vocab_size, 16), "
                    "nn.Flatten(), nn.Linear(16 * input_shape[0], 256), nn.ReLU(), nn.Linear(256, num_classes))")


@pytest.mark.parametrize("name, parts", [("features", FEATURES), ("tokens", TOKENS)])
def test_plugin_runs_every_input_kind(pytester: pytest.Pytester, name, parts) -> None:
    make = parts["make"].format(d=8)
    pytester.makepyfile(**{f"test_{name}": PLUGIN_MODULE.format(make=make, model=parts["model"], extra="")})
    result = pytester.runpytest("--rethink", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=6)


def test_plugin_skips_a_randomization_without_meaning(pytester: pytest.Pytester) -> None:
    """One feature: a permutation of one position is the identity, so the check is SKIPPED."""
    make = FEATURES["make"].format(d=1)
    # one input number cannot carry 48 random labels: this test is about the skips, so the
    # memorization threshold is low enough for the other checks to pass
    pytester.makepyfile(test_one=PLUGIN_MODULE.format(make=make, model=FEATURES["model"],
                                                      extra=", memorize_threshold=0.5"))
    result = pytester.runpytest("--rethink", "-rs", "--rethink-json=out.json")
    result.assert_outcomes(passed=4, skipped=2, failed=0, errors=0)
    out = result.stdout.str()
    assert "random_pixels is not applicable to features inputs" in out
    assert "shuffled_pixels is not applicable to features inputs" in out
    import json
    doc = json.loads((pytester.path / "out.json").read_text())
    slow = [i for i in doc["items"] if i["check"] == "slowdown"][0]
    assert slow["outcome"] == "passed"
    assert "skipped (not applicable)" in slow["message"]


@pytest.mark.parametrize("example", ["test_tabular.py", "test_tokens.py"])
def test_the_examples_pass_every_selected_check(pytester: pytest.Pytester, example) -> None:
    """examples/test_tabular.py and test_tokens.py as shipped: every check passes on the CPU."""
    from pathlib import Path

    source = Path(__file__).resolve().parent.parent / "examples" / example
    pytester.makepyfile(**{example[:-3]: source.read_text()})
    result = pytester.runpytest("--rethink", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)
