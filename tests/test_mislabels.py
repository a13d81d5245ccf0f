"""The mislabel finder (rethink_checks.mislabels), the suspects check and ``--rethink-suspects``."""
from __future__ import annotations

import base64
import io
import json
import time
import xml.etree.ElementTree as ET

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st
from torch import nn

import rethink_checks.mislabels as mislabels
import rethink_checks.suspects  # noqa: F401 - loaded once (pytester unloads what it imports)
from rethink_checks.checks import CheckSettings, run_check
from rethink_checks.data import from_tensors, load_digits
from rethink_checks.errors import DataError, SettingsError
from rethink_checks.mislabels import (cross_fit, estimate_issues, find_mislabels, label_quality,
                                      rank_average, top_overlap)
from rethink_checks.suspects import RAW_VALUES, format_rows, preview

FIT = {"lr": 0.1, "batch_size": 32, "lr_decay": 1.0, "device": "cpu"}


@pytest.fixture(scope="module")
def flipped_digits():
    """Whitened digits (600 training images) with 30 labels moved to another class."""
    data = load_digits(whiten=True).subset(600, seed=0, n_test=100)
    gen = torch.Generator().manual_seed(7)
    picked = torch.randperm(600, generator=gen)[:30]
    labels = data.train_y.clone()
    labels[picked] = (labels[picked] + torch.randint(1, 10, (30,), generator=gen)) % 10
    return data.replace(train_y=labels), set(picked.tolist())


def linear(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(input_shape).prod()), num_classes))


# ---------------------------------------------------------------- scoring pieces

@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40))
@hsettings(max_examples=60, deadline=None)
def test_rank_average_of_one_signal_keeps_its_order(values) -> None:
    x = torch.tensor(values, dtype=torch.float64)
    ranks = rank_average(x)
    assert ranks.min() >= 0.0 and ranks.max() <= 1.0
    for i in range(len(values)):
        for j in range(len(values)):
            if values[i] < values[j]:
                assert ranks[i] < ranks[j]


@given(st.lists(st.floats(-100, 100), min_size=2, max_size=30), st.data())
@hsettings(max_examples=40, deadline=None)
def test_rank_average_is_the_mean_of_the_ranks(a, data) -> None:
    b = data.draw(st.lists(st.floats(-100, 100), min_size=len(a), max_size=len(a)))
    x, y = torch.tensor(a), torch.tensor(b)
    both = rank_average(x, y)
    assert torch.allclose(both, (rank_average(x) + rank_average(y)) / 2)


def test_top_overlap() -> None:
    assert top_overlap([1, 2, 3, 4], [4, 3, 9, 8]) == 0.5
    assert top_overlap([], [1]) == 0.0


def test_label_quality_without_cleanlab_is_the_given_labels_probability(monkeypatch) -> None:
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    labels = torch.tensor([0, 1])
    monkeypatch.setattr(mislabels, "cleanlab_available", lambda: False)
    assert label_quality(labels, probs).tolist() == pytest.approx([0.7, 0.1])
    count, how = estimate_issues(labels, probs)
    assert count == 1 and "cleanlab not installed" in how


def test_label_quality_with_cleanlab_is_cleanlabs() -> None:
    rank = pytest.importorskip("cleanlab.rank")
    probs = torch.softmax(torch.randn(50, 4, generator=torch.Generator().manual_seed(0)), 1)
    labels = torch.arange(50) % 4
    expected = rank.get_label_quality_scores(labels.numpy(), probs.double().numpy(),
                                             method="self_confidence")
    assert label_quality(labels, probs).numpy() == pytest.approx(expected)
    assert estimate_issues(labels, probs)[1] == "cleanlab.filter.find_label_issues"


# ---------------------------------------------------------------- previews

@given(st.integers(1, 80), st.sampled_from(["features", "tokens"]))
@hsettings(max_examples=30, deadline=None)
def test_preview_of_rows_keeps_the_first_raw_values(length, kind) -> None:
    x = torch.arange(length) if kind == "tokens" else torch.linspace(-1, 1, length)
    raw = preview(x, kind)["raw"]
    assert len(raw) == min(length, RAW_VALUES)
    assert raw == pytest.approx(x[:RAW_VALUES].tolist(), abs=1e-4)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 200, 100)])
def test_preview_of_an_image_is_a_png_data_uri(shape) -> None:
    from PIL import Image

    uri = preview(torch.randn(shape), "image")["image"]
    assert uri.startswith("data:image/png;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert max(picture.size) <= max(64, max(shape[1:])) and max(picture.size) <= 64 or \
        max(shape[1:]) <= 64


# ---------------------------------------------------------------- the finder

def test_cross_fit_is_bit_identical_for_a_seed(flipped_digits) -> None:
    data, _ = flipped_digits
    settings = CheckSettings.from_mapping({**FIT, "seed": 3})
    a = cross_fit(linear(data.input_shape, 10).__class__ and (lambda: linear(data.input_shape, 10)),
                  data, settings, folds=3, max_epochs=2)
    b = cross_fit(lambda: linear(data.input_shape, 10), data, settings, folds=3, max_epochs=2)
    assert torch.equal(a.oos_probs, b.oos_probs) and torch.equal(a.margin_sum, b.margin_sum)
    assert a.seen.tolist() == [4.0] * len(data.train_y)  # 2 epochs x 2 folds train each example


def test_find_mislabels_ranks_flipped_labels_first(flipped_digits) -> None:
    data, flipped = flipped_digits
    settings = CheckSettings.from_mapping(FIT)
    report = find_mislabels(lambda: linear(data.input_shape, 10), data, settings, n=30,
                            folds=4, max_epochs=15)
    hits = len(set(report.order[:30]) & flipped)
    assert hits >= 20, f"only {hits} of 30 flipped labels in the top 30"
    assert report.stop_reason in ("stable", "max_epochs") and report.epochs <= 15
    assert report.held_out_accuracy > 0.8 and report.confidence in ("high", "medium")
    rows = report.top(5)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["score"] >= rows[-1]["score"]
    assert report.metrics()["suspects.indices"].split(",")[:5] == [str(r["index"]) for r in rows]


def test_find_mislabels_stops_at_the_deadline_and_at_the_budget(flipped_digits) -> None:
    data, _ = flipped_digits
    settings = CheckSettings.from_mapping(FIT)
    late = find_mislabels(lambda: linear(data.input_shape, 10), data, settings, n=5, folds=2,
                          max_epochs=50, deadline=time.monotonic() - 1)
    assert late.stop_reason == "time_budget" and late.epochs == 1
    capped = find_mislabels(lambda: linear(data.input_shape, 10), data, settings, n=5, folds=2,
                            max_epochs=2, stability=1.0, patience=10)
    assert capped.stop_reason == "max_epochs" and capped.epochs == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n must be a positive integer"),
    ({"folds": 1}, "folds must be an integer"),
    ({"max_epochs": 0}, "max_epochs must be a positive integer"),
    ({"stability": 1.5}, "stability must be in"),
])
def test_bad_finder_settings_name_the_setting(flipped_digits, kwargs, match) -> None:
    data, _ = flipped_digits
    with pytest.raises(SettingsError, match=match):
        find_mislabels(lambda: linear(data.input_shape, 10), data, CheckSettings.from_mapping(FIT),
                       **kwargs)


def test_too_few_examples_for_the_folds_is_a_data_error() -> None:
    data = from_tensors(torch.randn(6, 4), torch.tensor([0, 1] * 3), torch.randn(2, 4),
                        torch.tensor([0, 1]))
    with pytest.raises(DataError, match="6 training examples are too few for 5 folds"):
        find_mislabels(lambda: linear((4,), 2), data, CheckSettings.from_mapping(FIT))


def test_a_broken_model_is_a_model_error_naming_the_input(flipped_digits) -> None:
    from rethink_checks.errors import ModelError

    data, _ = flipped_digits
    with pytest.raises(ModelError, match=r"input of shape \(32, 1, 8, 8\)"):
        find_mislabels(lambda: nn.Linear(3, 10), data, CheckSettings.from_mapping(FIT))


def test_cross_fit_trains_conv_models_channels_last_with_the_same_ranking_signals(flipped_digits) -> None:
    data, _ = flipped_digits
    conv = lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),  # noqa: E731
                                 nn.Linear(4 * 64, 10))
    rec = cross_fit(conv, data, CheckSettings.from_mapping(FIT), folds=2, max_epochs=1)
    assert rec.epochs == 1 and torch.isfinite(rec.aum).all()
    assert torch.allclose(rec.oos_probs.sum(1), torch.ones(len(data.train_y)), atol=1e-5)


def test_suspects_check_rows_carry_scores_and_previews(flipped_digits) -> None:
    data, _ = flipped_digits
    settings = CheckSettings.from_mapping({**FIT, "suspects": 6, "max_epochs": 4})
    result = run_check("suspects", lambda: linear(data.input_shape, 10), data, settings)
    assert result.passed and result.metrics["suspects"] == 6
    rows = result.tables["suspects"]
    assert all(r["image"].startswith("data:image/png;base64,") for r in rows)
    assert {"rank", "index", "label", "prediction", "score", "aum", "label_quality"} <= set(rows[0])
    assert "estimated label issues" in result.message and result.metrics["epochs"] <= 4
    text = format_rows(rows)
    assert text.splitlines()[0].split()[:3] == ["rank", "index", "label"] and len(text.splitlines()) == 7


def test_suspects_setting_must_be_positive() -> None:
    with pytest.raises(SettingsError, match="suspects"):
        CheckSettings.from_mapping({"suspects": 0})


# ---------------------------------------------------------------- the plugin

MODULE = '''
import pytest
import torch
from torch import nn

pytestmark = pytest.mark.rethink(**{settings!r})

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: nn.Sequential(
        nn.Flatten(), nn.Linear(int(torch.tensor(input_shape).prod()), num_classes))
'''
PLUGIN = dict(train_size=120, batch_size=20, lr=0.1, lr_decay=1.0, max_epochs=6, device="cpu",
              fit_threshold=0.5)


def test_plugin_suspects_item_json_terminal_junit_and_grid(pytester: pytest.Pytester) -> None:
    pytest.importorskip("matplotlib")
    pytester.makepyfile(test_model=MODULE.format(settings=PLUGIN))
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels", "--rethink-suspects=4",
                                "--rethink-json=out.json", "--rethink-plots=figs",
                                "--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*rethink suspects: test_model: the 4 training examples whose "
                                 "label looks wrong (confidence*",
                                 "*rank*index*label*predicted*score*AUM*quality*"])
    items = {i["check"]: i for i in json.loads((pytester.path / "out.json").read_text())["items"]}
    rows = items["suspects"]["tables"]["suspects"]
    assert len(rows) == 4 and items["suspects"]["metrics"]["suspects"] == 4
    assert all(r["image"].startswith("data:image/png") for r in rows)
    assert "suspects" not in items["true_labels"]["tables"]
    props = {p.get("name"): p.get("value") for p in
             ET.parse(pytester.path / "junit.xml").getroot().iter("property")}
    assert props["rethink.suspects.suspects.indices"] == ",".join(str(r["index"]) for r in rows)
    assert (pytester.path / "figs" / "test_model_suspects.png").exists()


def test_plugin_k_memorization_selects_the_suspects_item(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=MODULE.format(settings=PLUGIN))
    result = pytester.runpytest("--rethink", "-k", "memorization", "--rethink-suspects=3",
                                "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*rethink[[]memorization[]]*", "*rethink[[]suspects[]]*"])
    assert "true_labels" not in result.stdout.str()
    plain = pytester.runpytest("--rethink", "--collect-only", "-q")
    assert "suspects" not in plain.stdout.str()  # run only on request


def test_plugin_suspects_on_features_show_raw_rows_under_a_time_budget(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=MODULE.format(settings=PLUGIN) + '''
@pytest.fixture
def rethink_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g)
    return (x, (x[:, 0] > 0).long())
''')
    result = pytester.runpytest("--rethink", "--rethink-suspects=3", "--rethink-checks=suspects",
                                "--rethink-time-budget=0.001", "--rethink-json=out.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*rank*index*label*raw values*"])
    item = json.loads((pytester.path / "out.json").read_text())["items"][0]
    assert item["metrics"]["stop_reason"] == "time_budget" and item["metrics"]["epochs"] == 1
    assert all(len(r["raw"]) == 5 and "image" not in r for r in item["tables"]["suspects"])
