"""The summary row of each check travels from the worker that ran it to the controller's table."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

MODULE = '''
import pytest
from rethink_checks.models import mlp

pytestmark = pytest.mark.rethink(train_size=40, batch_size=10, lr=0.1, lr_decay=1.0,
                                 max_epochs=4, device="cpu", fit_threshold=0.1,
                                 memorize_threshold=0.1, max_slowdown=100.0)

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=64)
'''


def test_summaries_cross_xdist_into_the_json_and_the_table(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_model=MODULE)
    result = pytester.runpytest_subprocess(
        "-n", "2", "--dist", "loadscope", "--rethink", "--rethink-json=x.json",
        "--rethink-checks=true_labels,random_labels,gaussian,shuffled_pixels,random_pixels,"
        "slowdown")
    result.assert_outcomes(passed=6)
    items = {i["check"]: i for i in json.loads((pytester.path / "x.json").read_text())["items"]}
    true = items["true_labels"]
    assert true["summary"]["train"] == true["metrics"]["train_accuracy"]
    assert true["summary"]["epochs"] == true["metrics"]["epochs_to_fit"]
    worst = items["slowdown"]["metrics"]["slowdown.max"]
    assert items["slowdown"]["summary"]["key"][0]["value"] == worst
    result.stdout.fnmatch_lines([  # table order: the engine's check order
        f"test_model*true_labels*PASS*{true['metrics']['train_accuracy']:.3f}*",
        f"test_model*slowdown*PASS*slowdown {worst:.2f}x*"])
