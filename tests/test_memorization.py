"""Per-example fit record, the memorization (clean-before-noisy) check and the suspects finder.

The record is checked against a brute-force reference on random correctness sequences; the
check's metrics on hand-made fits (``fits.fit_once`` patched) so every number is known; the real
training loop and the plugin on tiny digits subsets (plumbing, not the paper's claims).
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st
from sklearn.metrics import roc_auc_score
from torch import nn

import rethink_checks.checks as checks
import rethink_checks.fits as fits
import rethink_checks.memorization  # noqa: F401 - loaded once (pytester unloads what it imports)
import rethink_checks.plots  # noqa: F401
import rethink_checks.training  # noqa: F401
from rethink_checks.checks import CheckSettings, run_check
from rethink_checks.data import from_tensors, load_digits
from rethink_checks.errors import DataError, SettingsError
from rethink_checks.example_record import NEVER, ExampleRecord
from rethink_checks.memorization import (Suspect, corrupted_mask, find_suspects, format_suspects,
                                         rank_suspects, roc_auc, suspects_from_run)
from rethink_checks.models import mlp
from rethink_checks.results import FitResult
from rethink_checks.training import fit

try:
    import matplotlib.pyplot  # noqa: F401 - the plots test draws in-process
except ImportError:  # pragma: no cover - optional extra
    pass

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

TINY = {"lr": 0.1, "batch_size": 20, "lr_decay": 1.0, "max_epochs": 40, "device": "cpu"}


@pytest.fixture(scope="module")
def digits():
    return load_digits(whiten=True)


# ---------------------------------------------------------------- ExampleRecord

def reference(history: list[list[bool]], epochs: list[int]) -> tuple[list[int], list[int]]:
    """Brute force: fit epoch = start of the final run of correct answers; forgets = 1 -> 0 steps."""
    n = len(history[0]) if history else 0
    fit_epoch, forgets = [], []
    for i in range(n):
        column = [row[i] for row in history]
        forgets.append(sum(1 for a, b in zip(column, column[1:]) if a and not b))
        if not column or not column[-1]:
            fit_epoch.append(NEVER)
            continue
        t = len(column) - 1
        while t > 0 and column[t - 1]:
            t -= 1
        fit_epoch.append(epochs[t])
    return fit_epoch, forgets


@st.composite
def histories(draw):
    n = draw(st.integers(0, 12))
    t = draw(st.integers(0, 10))
    rows = draw(st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=t, max_size=t))
    gaps = draw(st.lists(st.integers(1, 4), min_size=t, max_size=t))
    epochs = [sum(gaps[:k + 1]) for k in range(t)]
    return n, rows, epochs


@given(histories())
@hsettings(max_examples=200, deadline=None)
def test_record_matches_brute_force_and_round_trips(case) -> None:
    n, rows, epochs = case
    record = ExampleRecord(n)
    for row, epoch in zip(rows, epochs):
        record.update(torch.tensor(row, dtype=torch.bool).reshape(n), epoch)
    want_fit, want_forgets = reference(rows, epochs) if rows else ([NEVER] * n, [0] * n)
    assert record.fit_epoch == want_fit
    assert record.forgets == want_forgets
    assert record.evaluations == epochs
    data = json.loads(json.dumps(record.to_dict()))
    again = ExampleRecord.from_dict(data)
    assert again.to_dict() == data
    if rows:  # a restored record keeps counting as the original would
        nxt = torch.tensor([True] * n, dtype=torch.bool)
        record.update(nxt, epochs[-1] + 1)
        again.update(nxt, epochs[-1] + 1)
        assert again.to_dict() == record.to_dict()


def test_record_rejects_bad_updates() -> None:
    record = ExampleRecord(3)
    with pytest.raises(DataError, match=r"shape \(2,\); expected \(3,\)"):
        record.update(torch.tensor([True, False]), 1)
    record.update(torch.tensor([True, False, True]), 2)
    with pytest.raises(DataError, match="epoch 2 is not after"):
        record.update(torch.tensor([True, True, True]), 2)
    with pytest.raises(DataError, match="n must be an integer >= 0"):
        ExampleRecord(-1)
    with pytest.raises(DataError, match="fit_epoch has 1"):
        ExampleRecord.from_dict({"n": 2, "evaluations": [1], "fit_epoch": [1], "forgets": [0, 0]})
    with pytest.raises(DataError, match="not evaluations"):
        ExampleRecord.from_dict({"n": 1, "evaluations": [1], "fit_epoch": [5], "forgets": [0]})


def test_fit_records_every_example_at_each_evaluation(digits) -> None:
    data = digits.subset(60, seed=0)
    run = fit(lambda: mlp(data.input_shape, data.num_classes, width=64), data,
              **{**TINY, "max_epochs": 6, "eval_every": 2})
    ex = run.examples
    assert ex["n"] == 60 and len(ex["fit_epoch"]) == 60 and len(ex["forgets"]) == 60
    evaluated = [e for e, a in zip(run.curves["epoch"], run.curves["train_accuracy"]) if a is not None]
    assert ex["evaluations"] == evaluated and set(ex["evaluations"]) >= {2}
    fitted_now = sum(1 for e in ex["fit_epoch"] if e != NEVER)
    assert fitted_now == round(run.train_accuracy * 60)  # fitted for good = right at the last one
    assert all(e == NEVER or e in evaluated for e in ex["fit_epoch"])
    again = FitResult.from_dict(json.loads(run.to_json()))
    assert again.examples == ex
    old = {k: v for k, v in run.to_dict().items() if k != "examples"}  # JSON from before the field
    assert FitResult.from_dict(old).examples is None


# ---------------------------------------------------------------- AUC

def test_auc_known_cases_and_ties() -> None:
    assert roc_auc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert roc_auc([4, 3, 2, 1], [False, False, True, True]) == 0.0
    assert roc_auc([5, 5, 5, 5], [False, True, False, True]) == 0.5
    # one positive tied with one of two negatives, above the other: (1 + 0.5) / 2
    assert roc_auc([1, 2, 2], [False, False, True]) == 0.75
    with pytest.raises(DataError, match="needs positives and negatives; got 0 and 2"):
        roc_auc([1, 2], [False, False])
    with pytest.raises(DataError, match="2 scores but 3 labels"):
        roc_auc([1, 2], [False, True, True])


@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=2, max_size=60))
@hsettings(max_examples=150, deadline=None)
def test_auc_matches_sklearn(pairs) -> None:
    scores, labels = [float(s) for s, _ in pairs], [b for _, b in pairs]
    if len(set(labels)) < 2:
        return
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


# ---------------------------------------------------------------- the check on known fits

def fake_run(fit_epoch: list[int], forgets: list[int], test_by_epoch: dict[int, float]) -> FitResult:
    epochs = sorted(test_by_epoch)
    return FitResult(fitted=True, stop_reason="fitted", epochs=epochs[-1], steps=epochs[-1],
                     epochs_to_fit=epochs[-1], steps_to_fit=epochs[-1], train_seconds=0.0,
                     total_seconds=0.0, train_accuracy=1.0, train_loss=0.0,
                     test_accuracy=test_by_epoch[epochs[-1]], best_test_accuracy=None,
                     best_test_epoch=None,
                     curves={"epoch": epochs, "test_accuracy": [test_by_epoch[e] for e in epochs],
                             "train_accuracy": [1.0] * len(epochs)},
                     examples={"n": len(fit_epoch), "evaluations": epochs, "fit_epoch": fit_epoch,
                               "forgets": forgets})


def small_data(n: int = 40, classes: int = 4):
    gen = torch.Generator().manual_seed(0)
    return from_tensors(torch.randn(n, 1, 2, 3, generator=gen), torch.arange(n) % classes,
                        torch.randn(8, 1, 2, 3, generator=gen), torch.arange(8) % classes,
                        num_classes=classes, name="toy")


def linear() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 4))


def test_corrupted_mask_counts_only_labels_that_changed() -> None:
    data = small_data(400)
    s = CheckSettings(memorization_p=0.5, label_mode="paper")
    mask = corrupted_mask(data, s)
    # paper mode redraws uniformly: about a quarter of the redrawn labels stay what they were
    assert 0.3 * 400 < int(mask.sum()) < 0.45 * 400
    wrong = corrupted_mask(data, s.updated(label_mode="wrong_class"))
    assert int(wrong.sum()) > int(mask.sum())


def test_check_metrics_on_a_known_ordering(monkeypatch) -> None:
    data = small_data()
    s = CheckSettings(memorization_p=0.3, seed=1)
    mask = corrupted_mask(data, s).tolist()
    # clean examples fitted at epoch 1 or 2, corrupted ones at 4, one corrupted never
    bad = [i for i, b in enumerate(mask) if b]
    fit_epoch = [4 if b else (1 if i % 2 else 2) for i, b in enumerate(mask)]
    fit_epoch[bad[0]] = NEVER
    forgets = [2 if b else 0 for b in mask]
    run = fake_run(fit_epoch, forgets, {1: 0.5, 2: 0.8, 3: 0.7, 4: 0.6})
    seen = []
    monkeypatch.setattr(fits, "fit_once", lambda f, d, config: seen.append(config) or run)
    result = run_check("memorization", linear, data, s)
    m = result.metrics
    assert result.passed and m["auc"] == 1.0
    assert seen[0].corruption.p == 0.3 and seen[0].corruption.name == "partial_labels"
    assert m["n_corrupted"] == len(bad) and m["median_fit_epoch_corrupted"] == 4.0
    assert m["median_fit_epoch_clean"] in (1.0, 1.5, 2.0)
    assert m["clean_fitted_epoch"] == 2 and m["test_accuracy_at_clean_fit"] == 0.8
    assert m["early_stopping_gain"] == pytest.approx(0.8 - 0.6)
    assert m["forgets_corrupted_mean"] == 2.0 and m["forgets_clean_mean"] == 0.0
    assert m["corrupted_fitted_fraction"] == pytest.approx((len(bad) - 1) / len(bad))
    assert "AUC 1.000 >= 0.75" in result.message
    assert result.runs["partial_labels"]["examples"]["fit_epoch"] == fit_epoch
    # the same fit judged against a threshold it misses
    low = run_check("memorization", linear, data, s.updated(min_memorization_auc=1.0))
    assert low.passed  # 1.0 >= 1.0
    reverse = fake_run([1 if b else 4 for b in mask], forgets, {1: 0.5, 2: 0.8, 3: 0.7, 4: 0.6})
    monkeypatch.setattr(fits, "fit_once", lambda f, d, config: reverse)
    failed = run_check("memorization", linear, data, s)
    assert not failed.passed and failed.metrics["auc"] == 0.0 and "AUC 0.000 < 0.75" in failed.message


class Constant(nn.Module):
    """Ignores its input: can learn the majority class, never the examples."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(x), -1)


def test_a_model_that_never_fits_the_clean_examples_fails_saying_so(digits) -> None:
    s = CheckSettings.from_mapping({**TINY, "max_epochs": 3, "train_size": 100})
    result = run_check("memorization", lambda: Constant(10), digits, s)
    assert not result.passed
    assert "never fitted the clean examples" in result.message
    assert result.metrics["auc"] is None and result.metrics["clean_fitted_fraction"] < 0.5


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5])
def test_memorization_p_outside_the_open_interval_is_a_settings_error(p) -> None:
    with pytest.raises(SettingsError, match=r"CheckSettings.memorization_p=.* is invalid; allowed: a number"):
        run_check("memorization", linear, small_data(), CheckSettings(memorization_p=p))


def test_a_dataset_too_small_for_one_corrupted_label_is_a_data_error(monkeypatch) -> None:
    monkeypatch.setattr(fits, "fit_once", lambda *a: pytest.fail("must not train"))
    with pytest.raises(DataError, match=r"memorization_p=0.01 .*changed 0 of the 3 training labels"):
        run_check("memorization", linear, small_data(3),
                  CheckSettings(memorization_p=0.01))


def test_min_memorization_auc_outside_zero_one_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match=r"CheckSettings.min_memorization_auc=2.* is invalid; allowed: a number in \[0"):
        run_check("memorization", linear, small_data(),
                  CheckSettings(min_memorization_auc=2))


# ---------------------------------------------------------------- suspects

def test_rank_suspects_puts_never_fitted_then_late_then_forgotten_first() -> None:
    examples = {"n": 5, "evaluations": [1, 2, 3], "fit_epoch": [1, NEVER, 3, 3, 2],
                "forgets": [0, 1, 0, 2, 5]}
    got = rank_suspects(examples, [0, 1, 2, 3, 4], [0, 2, 2, 3, 4], 4)
    assert [s.index for s in got] == [1, 3, 2, 4]
    assert got[0] == Suspect(index=1, label=1, prediction=2, fit_epoch=None, forgets=1)
    assert rank_suspects(examples, [0] * 5, None, 10)[0].prediction is None
    assert len(rank_suspects(examples, [0] * 5, None, 10)) == 5
    text = format_suspects([s.to_dict() for s in got])
    assert text.splitlines()[0].split() == ["index", "label", "predicted", "fit", "epoch", "forgets"]
    assert "never" in text.splitlines()[1]


@pytest.mark.parametrize("n", [0, -3, 1.5, True])
def test_suspects_n_must_be_a_positive_integer(n) -> None:
    examples = {"n": 1, "evaluations": [1], "fit_epoch": [1], "forgets": [0]}
    with pytest.raises(SettingsError, match="suspects: n must be a positive integer"):
        rank_suspects(examples, [0], None, n)
    with pytest.raises(SettingsError, match="suspects: n must be a positive integer"):
        find_suspects(linear, small_data(), n=n)


def test_find_suspects_on_digits_with_flipped_labels(digits) -> None:
    data = digits.subset(150, seed=0)
    flipped = [3, 40, 77, 120]
    labels = data.train_y.clone()
    labels[flipped] = (labels[flipped] + 5) % 10
    data = data.replace(train_y=labels)
    s = CheckSettings.from_mapping({**TINY, "max_epochs": 60})
    got = find_suspects(lambda: mlp(data.input_shape, 10, width=64), data, s, n=8)
    assert len(got) == 8 and all(0 <= g.prediction < 10 for g in got)
    assert all(g.label == int(labels[g.index]) for g in got)
    assert len({g.index for g in got} & set(flipped)) >= 2  # far above the 8 * 4 / 150 chance
    run = fit(lambda: mlp(data.input_shape, 10, width=64), data, **TINY)
    with pytest.raises(DataError, match="the fit saw 150 examples, the data has 40"):
        suspects_from_run(run, data.subset(40), 3)


def test_plot_suspects_draws_a_grid(tmp_path, digits) -> None:
    pytest.importorskip("matplotlib")
    from rethink_checks.plots import plot_suspects

    rows = [Suspect(index=i, label=1, prediction=2, fit_epoch=None if i else 3, forgets=i)
            for i in range(10)]
    path = plot_suspects(digits.train_x, rows, tmp_path / "s.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- the plugin

MODULE = '''
import pytest
from rethink_checks.models import mlp

pytestmark = pytest.mark.rethink(**{settings!r})

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=128)
'''
PLUGIN = dict(train_size=80, batch_size=20, lr=0.1, lr_decay=1.0, max_epochs=40, device="cpu",
              fit_threshold=0.5, min_memorization_auc=0.0)


def test_plugin_runs_memorization_with_metrics_in_json_and_junit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=MODULE.format(settings=PLUGIN))
    result = pytester.runpytest("--rethink", "--rethink-checks=memorization",
                                "--rethink-json=out.json", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*rethink summary*", "*test_model*memorization*PASS*"])
    item = json.loads((pytester.path / "out.json").read_text())["items"][0]
    assert item["check"] == "memorization" and item["outcome"] == "passed"
    assert 0.0 <= item["metrics"]["auc"] <= 1.0 and item["metrics"]["p"] == 0.2
    assert "partial_labels" in item["curves"]
    props = {p.get("name"): p.get("value") for p in
             ET.parse(pytester.path / "junit.xml").getroot().iter("property")}
    assert float(props["rethink.memorization.auc"]) == pytest.approx(item["metrics"]["auc"])
    assert "rethink.memorization.early_stopping_gain" in props


def test_plugin_suspects_must_be_positive(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=MODULE.format(settings=PLUGIN))
    result = pytester.runpytest("--rethink", "--rethink-suspects=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--rethink-suspects: invalid value '0'; allowed: an integer >= 1*"])


def test_plugin_suspects_with_the_readmes_selection_in_terminal_and_html(
        pytester: pytest.Pytester) -> None:
    """README: ``-k memorization --rethink-suspects=N`` runs the memorization check and the
    suspects item (it carries the keyword) and puts the suspects in the HTML page; a selection
    without the suspects item says how to get them instead of printing nothing."""
    pytester.makepyfile(test_model=MODULE.format(settings=PLUGIN))
    args = ("--rethink", "--rethink-checks=true_labels,memorization", "--rethink-suspects=3")
    result = pytester.runpytest(*args, "-k", "memorization", "--rethink-html=page.html")
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.fnmatch_lines(["*rethink suspects: test_model: the 3 training examples*"])
    page = (pytester.path / "page.html").read_text(encoding="utf-8")
    assert "test_model: suspects (likely mislabels)" in page and "test_model: memorization" in page
    assert 'src="data:image/png;base64,' in page
    alone = pytester.runpytest(*args, "-k", "true_labels")
    alone.assert_outcomes(passed=1, deselected=2)
    alone.stdout.fnmatch_lines(["rethink suspects: none: no rethink?suspects? item ran*"])
