"""Expectations both ways (``CheckSettings.expect``): a model that must NOT memorize.

A 4-unit MLP trained for two epochs cannot memorize random labels of 60 digits; a 64-unit
one trained for 30 epochs can (with a 0.9 threshold). The plugin part sets the expectation
by marker, ``rethink_config`` and ini.
"""
from __future__ import annotations

import pytest

import sklearn.datasets  # noqa: F401 - loaded once (pytester's in-process runs unload modules)
import torch  # noqa: F401

import rethink_checks.expectations  # noqa: F401
import rethink_checks.training  # noqa: F401

from rethink_checks.checks import CheckSettings, RunCache, run_check
from rethink_checks.data import load
from rethink_checks.errors import SettingsError
from rethink_checks.expectations import apply_expectation
from rethink_checks.models import mlp
from rethink_checks.results import CheckResult
from rethink_checks.settings import parse_expect

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

TINY = dict(train_size=60, batch_size=20, lr=0.1, lr_decay=1.0, device="cpu",
            memorize_threshold=0.9)
CANNOT = dict(TINY, max_epochs=2)
CAN = dict(TINY, max_epochs=30)
NOT_MEMORIZED = {"random_labels": "not_memorized"}


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def model(data, width):
    return lambda: mlp(data.input_shape, data.num_classes, width=width)


def test_parse_expect_aliases_and_text_forms() -> None:
    assert parse_expect({"random_labels": "not_memorized", "true_labels": "fitted"}) == \
        {"random_labels": "not_met", "true_labels": "met"}
    assert parse_expect("random_labels=not_memorized, gaussian = NOT_MET") == \
        {"random_labels": "not_met", "gaussian": "not_met"}
    assert parse_expect(["random_labels=not_memorized", "slowdown:failed"]) == \
        {"random_labels": "not_met", "slowdown": "not_met"}
    assert CheckSettings().expect == {}


@pytest.mark.parametrize("bad, why", [
    ({"random_label": "not_memorized"}, "'random_label' is not a check"),
    ({"random_labels": "never"}, "'never' is not an expectation"),
    ("random_labels", "CheckSettings.expect='random_labels' is invalid"),
    (3, "CheckSettings.expect=3 is invalid"),
])
def test_bad_expectations_name_the_field(bad, why) -> None:
    """Every settings layer is validated by rethink_checks.layers, check names included."""
    from rethink_checks.layers import validate_layer

    with pytest.raises(SettingsError, match=r"rethink_config: CheckSettings.expect=") as info:
        validate_layer("rethink_config", {"expect": bad})
    assert why in str(info.value)


def test_expect_is_a_criterion_not_a_fit_setting() -> None:
    assert CheckSettings(expect=NOT_MEMORIZED).key() == CheckSettings().key()
    assert CheckSettings(expect=NOT_MEMORIZED).to_dict()["expect"] == {"random_labels": "not_met"}


def test_expected_not_memorized_passes_when_it_does_not(digits) -> None:
    settings = CheckSettings.from_mapping(dict(CANNOT, expect=NOT_MEMORIZED))
    res = run_check("random_labels", model(digits, 4), digits, settings)
    assert res.passed and res.metrics["criterion_met"] is False
    assert res.metrics["expected"] == "not_met" and res.metrics["train_accuracy"] < 0.9
    assert res.message.startswith("expected not memorized, and it was not: random_labels not memorized")
    assert res.criterion.startswith("expected NOT met: train accuracy >= 0.9")


def test_expected_not_memorized_fails_saying_why_when_it_does(digits) -> None:
    settings = CheckSettings.from_mapping(dict(CAN, expect=NOT_MEMORIZED))
    res = run_check("random_labels", model(digits, 64), digits, settings)
    assert not res.passed and res.metrics["criterion_met"] is True
    assert res.message.startswith("expected not memorized, but the criterion was met: memorized "
                                  "random_labels in")


def test_expected_not_memorized_with_seeds_needs_every_seed(digits) -> None:
    cache = RunCache()
    settings = CheckSettings.from_mapping(dict(CANNOT, seeds=3, expect=NOT_MEMORIZED))
    res = run_check("random_labels", model(digits, 4), digits, settings, cache)
    assert res.passed and res.metrics["seeds_passed"] == 0
    one_met = CheckResult("random_labels", False, "c", "1 of 3 seeds memorized",
                          {"seeds_passed": 1, "seeds": 3},
                          tables={"seeds": [{"seed": 0, "passed": False, "message": "no"},
                                            {"seed": 5, "passed": True, "message": "memorized in 9"},
                                            {"seed": 6, "passed": False, "message": "no"}]})
    out = apply_expectation(one_met, CheckSettings(expect=NOT_MEMORIZED))
    assert not out.passed
    assert out.message == "expected not memorized, but 1 of 3 seeds memorized; seed 5: memorized in 9"


def test_expected_met_keeps_the_verdict(digits) -> None:
    settings = CheckSettings.from_mapping(dict(CANNOT, expect={"random_labels": "memorized"}))
    res = run_check("random_labels", model(digits, 4), digits, settings)
    assert not res.passed and res.message.startswith("expected memorized: random_labels not memorized")


# ---------------------------------------------------------------- plugin

BODY = '''
import pytest
from rethink_checks.models import mlp

pytestmark = pytest.mark.rethink(checks=["random_labels", "gaussian"], **{settings!r})

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=4)
'''


def test_plugin_marker_expectation_turns_the_item(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=BODY.format(settings=dict(CANNOT, expect=NOT_MEMORIZED)))
    result = pytester.runpytest("--rethink", "-rA")
    result.assert_outcomes(passed=1, failed=1)  # gaussian keeps its ordinary verdict
    out = result.stdout.str()
    assert "PASSED test_model.py::rethink[random_labels]" in out
    assert "gaussian: gaussian not memorized" in out


def test_plugin_ini_and_cli_expectations(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=BODY.format(settings=CANNOT))
    pytester.makeini("[pytest]\nrethink_expect = random_labels=not_memorized, gaussian=not_memorized\n")
    pytester.runpytest("--rethink").assert_outcomes(passed=2)
    result = pytester.runpytest("--rethink", "--rethink-expect=random_labels=memorized")
    result.assert_outcomes(failed=2)  # the command line replaces the ini mapping
    result = pytester.runpytest("--rethink", "--rethink-expect=random_labels=sometimes")
    assert "--rethink-expect" in result.stderr.str() and "'sometimes' is not an expectation" in result.stderr.str()
