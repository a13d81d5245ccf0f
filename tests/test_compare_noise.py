"""Noise-aware baseline rules: with several seeds a rule fails only beyond the seed noise.

Unit tests compare hand-made session documents; the plugin test saves a 3-seed baseline of a
128-unit MLP on 100 digits, then reruns it with another base seed (no failure on
``random_labels.epochs_to_fit:25%``) and with a 16-unit MLP (a real regression: it fails).
"""
from __future__ import annotations

import pytest

import sklearn.datasets  # noqa: F401 - loaded once (pytester's in-process runs unload modules)
import torch  # noqa: F401

import rethink_checks.data  # noqa: F401
import rethink_checks.expectations  # noqa: F401
import rethink_checks.seeds  # noqa: F401
import rethink_checks.training  # noqa: F401

from rethink_checks.report import compare_baseline, format_comparison
from rethink_checks.stats import welch_noise

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

RULE = "random_labels.epochs_to_fit:25%"


def doc(mean: float, std: float | None = None, seeds: int = 1) -> dict:
    metrics = {"epochs_to_fit": mean}
    if std is not None:
        metrics.update({"epochs_to_fit.std": std, "seeds": seeds})
    return {"items": [{"nodeid": "t.py::rethink[random_labels]", "check": "random_labels",
                       "model": "t", "metrics": metrics}]}


def test_a_worsening_within_the_seed_noise_does_not_fail() -> None:
    rows, failures = compare_baseline(doc(13.0, 4.0, 3), doc(10.0, 4.0, 3), [RULE])
    assert rows[0]["change_pct"] == pytest.approx(30.0) and not failures  # > 25%, but noise
    assert rows[0]["noise"] == pytest.approx(welch_noise(4.0, 3, 4.0, 3))
    assert rows[0]["within_noise"] and "within noise" in format_comparison(rows)


def test_a_worsening_beyond_limit_and_noise_fails_and_says_the_band() -> None:
    rows, failures = compare_baseline(doc(25.0, 1.0, 3), doc(10.0, 1.0, 3), [RULE])
    assert rows[0]["failed"] and len(failures) == 1
    assert "beyond the seed noise +-" in failures[0] and "rule " + RULE in failures[0]


def test_single_seed_sessions_compare_as_plain_numbers() -> None:
    rows, failures = compare_baseline(doc(13.0), doc(10.0), [RULE])
    assert rows[0]["noise"] == 0.0 and len(failures) == 1 and "seed noise" not in failures[0]


def test_noise_on_one_side_only_counts() -> None:
    _, failures = compare_baseline(doc(13.0, 4.0, 3), doc(10.0), [RULE])
    assert not failures  # 3 < 4.303 * 4 / sqrt(3)


def test_per_metric_seed_count_is_used() -> None:
    cur = doc(13.0, 0.1, 3)
    cur["items"][0]["metrics"]["epochs_to_fit.n"] = 2  # one seed did not fit
    rows, _ = compare_baseline(cur, doc(10.0), [RULE])
    assert rows[0]["noise"] == pytest.approx(welch_noise(0.1, 2, None, 1))


MODULE = '''
import pytest
from rethink_checks.models import mlp

pytestmark = pytest.mark.rethink(checks=["random_labels"], train_size=100, batch_size=20,
                                 lr=0.1, lr_decay=1.0, max_epochs=80, device="cpu")

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width={width})
'''


def test_plugin_reseed_passes_and_a_narrower_model_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=MODULE.format(width=128))
    pytester.runpytest("--rethink", "--rethink-seeds=3", "--rethink-save=base").assert_outcomes(passed=1)
    reseeded = pytester.runpytest("--rethink", "--rethink-seeds=3", "--rethink-seed=1",
                                  "--rethink-compare=base", f"--rethink-compare-fail={RULE}")
    reseeded.assert_outcomes(passed=1)
    assert reseeded.ret == 0 and "rethink compare-fail" not in reseeded.stdout.str()
    pytester.makepyfile(test_model=MODULE.format(width=16))
    narrow = pytester.runpytest("--rethink", "--rethink-seeds=3", "--rethink-compare=base",
                                f"--rethink-compare-fail={RULE}")
    assert narrow.ret != 0
    narrow.stdout.fnmatch_lines(["*rethink compare-fail:*random_labels.epochs_to_fit went from*"
                                 "beyond the seed noise*"])
