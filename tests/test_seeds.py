"""Several seeds per check (``CheckSettings.seeds``): derived seeds, intervals, verdict rules.

The library part runs tiny MLPs on 60 digits; the plugin part one pytester session with
``--rethink-seeds=3`` reading the JSON, the JUnit properties and the terminal table.
"""
from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings as hsettings, strategies as st

import sklearn.datasets  # noqa: F401 - loaded once (pytester's in-process runs unload modules)
import torch  # noqa: F401

import rethink_checks.expectations  # noqa: F401
import rethink_checks.training  # noqa: F401

from rethink_checks.checks import CHECKS, CheckSettings, RunCache, run_check
from rethink_checks.data import load
from rethink_checks.errors import SettingsError
from rethink_checks.models import mlp
from rethink_checks.results import CheckResult, table_summary
from rethink_checks.report import format_table
from rethink_checks.seeds import aggregate, aggregate_metrics, seed_for, seed_settings
from rethink_checks.checks.registry import names
from rethink_checks.stats import interval, t_quantile, welch_noise

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

TINY = dict(train_size=60, batch_size=20, lr=0.1, lr_decay=1.0, max_epochs=30, device="cpu")


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def factory(data, width=64):
    return lambda: mlp(data.input_shape, data.num_classes, width=width)


# ---------------------------------------------------------------- statistics

def test_interval_is_mean_sample_std_and_student_t_half_width() -> None:
    iv = interval([1.0, 2.0, 3.0])
    assert iv.mean == 2.0 and iv.std == pytest.approx(1.0)
    assert iv.half_width == pytest.approx(4.303 / math.sqrt(3), rel=1e-6)
    assert (iv.ci_low, iv.ci_high) == pytest.approx((2 - iv.half_width, 2 + iv.half_width))
    one = interval([5.0])
    assert one.mean == 5.0 and one.std is None and one.ci_low is None and one.half_width is None
    same = interval([0.99, 0.99, 0.99])  # a constant (a threshold, a train accuracy of 0.99)
    assert same == (3, 0.99, 0.0, 0.99, 0.99)  # exactly, not 0.9900000000000002


def test_t_quantile_table_and_large_df() -> None:
    assert t_quantile(1) == 12.706 and t_quantile(2) == 4.303 and t_quantile(30) == 2.042
    assert t_quantile(2.9) == t_quantile(2)  # fractional df: the wider band
    assert t_quantile(60) == pytest.approx(2.000, abs=2e-3)
    assert t_quantile(1e9) == pytest.approx(1.96, abs=1e-3)
    assert t_quantile(0.5) == math.inf


@hsettings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=12))
def test_interval_contains_the_mean_and_narrows_nothing(xs: list[float]) -> None:
    iv = interval(xs)
    assert iv.ci_low <= iv.mean + 1e-6 and iv.mean <= iv.ci_high + 1e-6
    assert iv.std >= 0 and min(xs) - 1e-6 <= iv.mean <= max(xs) + 1e-6


def test_welch_noise_is_zero_for_single_runs_and_grows_with_spread() -> None:
    assert welch_noise(None, 1, None, 1) == 0.0
    small, large = welch_noise(1.0, 3, 1.0, 3), welch_noise(3.0, 3, 3.0, 3)
    assert 0 < small < large
    assert welch_noise(1.0, 3, None, 1) == pytest.approx(4.303 * 1 / math.sqrt(3), rel=1e-6)


# ---------------------------------------------------------------- settings

def test_expect_names_are_checked_against_the_registry() -> None:
    from rethink_checks.settings import parse_expect

    assert tuple(CHECKS) == names() and parse_expect({"slowdown": "met"}, names()) == {"slowdown": "met"}
    with pytest.raises(SettingsError, match="'slow' is not a check"):
        parse_expect({"slow": "met"}, names())


@pytest.mark.parametrize("bad", [0, -1, 2.5, "2.5", "three", True])
def test_bad_seeds_raise_settings_error_naming_the_field(bad) -> None:
    with pytest.raises(SettingsError, match=r"CheckSettings\.seeds=.* is invalid; allowed: an integer >= 1"):
        CheckSettings.from_mapping({"seeds": bad})


def test_seeds_do_not_change_the_fit_key() -> None:
    assert CheckSettings(seeds=3).key() == CheckSettings().key()
    assert CheckSettings.from_mapping({"seeds": "3"}).seeds == 3


def test_seed_zero_is_the_base_seed_and_the_others_differ() -> None:
    assert seed_for(7, 0) == 7
    seeds = [seed_for(7, i) for i in range(5)]
    assert len(set(seeds)) == 5 and seeds == [seed_for(7, i) for i in range(5)]
    assert not set(seeds[1:]) & {seed_for(8, i) for i in range(5)}  # another base: other seeds
    one = seed_settings(CheckSettings(seeds=3), seeds[1])
    assert one.seed == one.fit.seed == seeds[1] and one.seeds == 1


# ---------------------------------------------------------------- aggregation

def test_aggregate_metrics_numbers_bools_strings_and_missing() -> None:
    out = aggregate_metrics([
        {"acc": 1.0, "epochs": 10, "fitted": True, "device": "cpu", "best": None, "reason": "a"},
        {"acc": 0.5, "epochs": None, "fitted": False, "device": "cpu", "best": None, "reason": "b"},
        {"acc": 0.0, "epochs": 14, "fitted": True, "device": "cpu", "best": None, "reason": "a"},
    ])
    assert out["acc"] == 0.5 and out["acc.std"] == pytest.approx(0.5)
    assert out["acc.ci_low"] < 0.5 < out["acc.ci_high"]
    assert out["epochs"] == 12 and out["epochs.n"] == 2
    assert out["fitted"] is False and out["fitted.count"] == 2
    assert out["device"] == "cpu" and out["best"] is None and out["reason"] == "a|b"


def _result(passed: bool, epochs: int | None) -> CheckResult:
    return CheckResult("random_labels", passed, "train accuracy >= 0.99 on random_labels",
                       "memorized" if passed else "random_labels not memorized: train accuracy 0.5",
                       {"fitted": passed, "epochs_to_fit": epochs, "train_accuracy": 1.0 if passed else 0.5},
                       summary=table_summary(train=1.0 if passed else 0.5, test=0.1, epochs=epochs))


def test_seeds_that_disagree_fail_with_the_count() -> None:
    res = aggregate("random_labels", [_result(True, 10), _result(False, None), _result(True, 12)],
                    [0, 11, 22], CheckSettings(seeds=3))
    assert not res.passed
    assert res.message.startswith("2 of 3 seeds memorized; seed 11: random_labels not memorized")
    assert res.metrics["seeds"] == 3 and res.metrics["seeds_passed"] == 2
    assert [row["seed"] for row in res.tables["seeds"]] == [0, 11, 22]
    assert "over 3 seeds: every seed passes" in res.criterion


def test_slowdown_judges_the_mean_ratio() -> None:
    def slow(ratio: float) -> CheckResult:
        return CheckResult("slowdown", ratio <= 10, "c", "m",
                           {"epochs_to_fit.true_labels": 2, "slowdown.random_labels": ratio,
                            "slowdown.max": ratio},
                           tables={"slowdown": [{"randomization": "random_labels", "fitted": True}]})
    settings = CheckSettings(seeds=3, max_slowdown=10.0)
    ok = aggregate("slowdown", [slow(9.0), slow(11.0), slow(8.0)], [0, 1, 2], settings)
    assert ok.passed and ok.metrics["slowdown.max"] == pytest.approx(28 / 3)
    assert ok.metrics["slowdown.max.ci_high"] > 10  # the interval is reported, the mean judged
    assert ok.summary["key"][0]["pm"] == pytest.approx(ok.metrics["slowdown.max.ci_high"] - 28 / 3)
    bad = aggregate("slowdown", [slow(12.0), slow(11.0), slow(8.0)], [0, 1, 2], settings)
    assert not bad.passed and "mean 10.33x slower" in bad.message and "95% CI" in bad.message


def test_slowdown_fails_when_a_seed_misses_the_true_label_fit() -> None:
    """True labels timed to 0.99 (epochs known) but never fitted to fit_threshold: the seed's own
    check failed, so the seeds' verdict must too (a linear model on 500 CIFAR-10 images passed
    with 1 of 3 seeds before the aggregate looked at fitted.true_labels)."""
    def seed(fitted: bool) -> CheckResult:
        return CheckResult("slowdown", fitted, "c", "m" if fitted else "true labels not fitted: ...",
                           {"epochs_to_fit.true_labels": 400, "fitted.true_labels": fitted,
                            "slowdown.random_labels": 1.2, "slowdown.max": 1.2},
                           tables={"slowdown": [{"randomization": "random_labels", "fitted": True}]})
    res = aggregate("slowdown", [seed(True), seed(False), seed(False)], [0, 1, 2],
                    CheckSettings(seeds=3, max_slowdown=10.0))
    assert not res.passed and res.metrics["seeds_passed"] == 1
    assert res.message.startswith("1 of 3 seeds passed; true labels not fitted in every seed (1 of 3)")
    assert "; seed 1: true labels not fitted" in res.message


# ---------------------------------------------------------------- real fits

def test_three_seeds_run_every_fit_three_times_and_reuse_the_cache(digits) -> None:
    cache = RunCache()
    single = run_check("random_labels", factory(digits), digits,
                       CheckSettings.from_mapping(dict(TINY)), cache)
    three = run_check("random_labels", factory(digits), digits,
                      CheckSettings.from_mapping(dict(TINY, seeds=3)), cache)
    assert cache.hits == 1 and cache.misses == 3  # seed 0 is the single-seed fit
    rows = three.tables["seeds"]
    assert rows[0]["train_accuracy"] == single.metrics["train_accuracy"]
    assert len(three.runs) == 3 and all("@seed=" in k for k in three.runs)
    accs = [row["train_accuracy"] for row in rows]
    assert three.metrics["train_accuracy"] == pytest.approx(sum(accs) / 3)
    for suffix in ("std", "ci_low", "ci_high"):
        assert f"train_accuracy.{suffix}" in three.metrics
    assert three.summary["seeds"] == 3 and "train_pm" in three.summary
    slowdown = run_check("slowdown", factory(digits), digits,
                         CheckSettings.from_mapping(dict(TINY, seeds=3)), cache)
    assert cache.hits >= 4  # each seed's random_labels fit reused
    assert "slowdown.max" in slowdown.metrics and slowdown.metrics["seeds"] == 3


def test_table_shows_mean_plus_minus_half_width() -> None:
    summary = {**table_summary(train=0.98, test=0.5, epochs=12.3,
                               key=[{"label": "slowdown", "value": 3.0, "format": "{:.2f}x", "pm": 0.5}]),
               "train_pm": 0.01, "epochs_pm": 2.0}
    text = format_table([{"model": "m", "check": "slowdown", "outcome": "passed", "summary": summary}])
    assert "0.980+-0.010" in text and "12.3+-2.0" in text and "slowdown 3.00x+-0.50x" in text
    assert "0.500" in text and "0.500+-" not in text


# ---------------------------------------------------------------- plugin

PLUGIN_MODULE = '''
import pytest
from rethink_checks.models import mlp

pytestmark = pytest.mark.rethink(checks=["random_labels", "slowdown"], train_size=60,
                                 batch_size=20, lr=0.1, lr_decay=1.0, max_epochs=30,
                                 device="cpu", memorize_threshold=0.9, max_slowdown=100.0)

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=64)
'''


def test_plugin_seeds_reach_json_junit_and_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=PLUGIN_MODULE)
    result = pytester.runpytest("--rethink", "--rethink-seeds=3", "--rethink-json=out.json",
                                "--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    doc = json.loads((pytester.path / "out.json").read_text())
    item = {i["check"]: i for i in doc["items"]}["random_labels"]
    assert item["metrics"]["seeds"] == 3 and "train_accuracy.ci_high" in item["metrics"]
    assert len(item["tables"]["seeds"]) == 3 and item["settings"]["seeds"] == 3
    props = {p.get("name") for p in ET.parse(pytester.path / "junit.xml").getroot().iter("property")}
    assert {"rethink.random_labels.train_accuracy.std", "rethink.random_labels.train_accuracy.ci_low",
            "rethink.slowdown.slowdown.max.ci_high"} <= props
    assert any("+-" in line and "random_labels" in line for line in result.outlines)


def test_plugin_rejects_bad_seeds(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=PLUGIN_MODULE)
    result = pytester.runpytest("--rethink", "--rethink-seeds=0")
    assert "--rethink-seeds" in result.stderr.str() and "an integer >= 1" in result.stderr.str()
    pytester.makepyfile(test_model=PLUGIN_MODULE.replace("device=", "seeds=0, device="))
    result = pytester.runpytest("--rethink")
    result.assert_outcomes(errors=2)
    assert "CheckSettings.seeds=0 is invalid" in result.stdout.str()
