"""A new check is one object in one registry: a toy check defined in this file only.

Registered here (``rethink_checks.checks.register``), it is run and judged per seed and over
seeds by the library, collected and run by the plugin (``--rethink-checks=toy``), and shown in
the summary table (row and legend line), the session JSON and the baseline comparison, without
touching any other module.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import sklearn.datasets  # noqa: F401 - loaded once here (pytester's in-process runs unload modules)
import torch  # noqa: F401

import rethink_checks.training  # noqa: F401
from rethink_checks.checks import Check, CheckSettings, Verdict, register, run_check, unregister
from rethink_checks.results import CheckResult, key_metric, table_summary
from rethink_checks.seeds import seed_for

BAR = 0.45


def toy_score(seed: int) -> float:
    """The toy's metric: a number in [0, 0.9] fixed by the seed (no fit needed)."""
    return (seed % 10) / 10


def judge_toy(metrics: Mapping[str, Any], settings: Any) -> Verdict:
    """One judge for one seed's score and for the mean score over seeds."""
    score = metrics["toy_score"]
    return Verdict(score >= BAR, {} if score >= BAR else {"score": f"toy score {score:.3f} < {BAR}"})


def run_toy(model_factory: Any, data: Any, settings: CheckSettings, cache: Any = None) -> CheckResult:
    metrics = {"toy_score": toy_score(settings.seed)}
    verdict = judge_toy(metrics, settings)
    return CheckResult("toy", verdict.passed, f"toy score >= {BAR}", verdict.text or "toy ok",
                       metrics, summary=table_summary(key=[key_metric("toy", metrics["toy_score"],
                                                                      "{:.2f}")]))


TOY = Check(name="toy", run=run_toy, judge=judge_toy, judged_on_means=True,
            doc="a toy: the seed's last digit / 10 is at least 0.45", metrics=("toy_score",),
            key_metric="toy_score", legend="toy: the toy check's score (tests/test_toy_check.py)",
            word="toyed", over_seeds="the mean toy score is >= 0.45", seed_columns=("toy_score",),
            mean_columns=("toy_score",))


@pytest.fixture
def toy() -> Iterator[Check]:
    register(TOY)
    try:
        yield TOY
    finally:
        unregister("toy")


def test_the_toy_runs_and_is_judged_per_seed_and_on_means(toy) -> None:
    assert run_check("toy", None, None, CheckSettings(seed=7)).passed
    assert not run_check("toy", None, None, CheckSettings(seed=2)).passed
    settings = CheckSettings(seed=0, seeds=3)
    scores = [toy_score(seed_for(0, i)) for i in range(3)]
    result = run_check("toy", None, None, settings)
    assert result.metrics["toy_score"] == pytest.approx(sum(scores) / 3)
    assert result.passed == (sum(scores) / 3 >= BAR)  # the judge on the mean, not every seed
    assert result.metrics["seeds_passed"] == sum(s >= BAR for s in scores)
    assert "over 3 seeds: the mean toy score is >= 0.45" in result.criterion
    assert [row["toy_score"] for row in result.tables["seeds"]] == scores
    assert result.message.startswith(f"{sum(s >= BAR for s in scores)} of 3 seeds toyed")


def test_an_unknown_or_taken_name_is_refused(toy) -> None:
    from rethink_checks.errors import SettingsError

    with pytest.raises(SettingsError, match="a check named 'toy' exists already"):
        register(TOY)
    with pytest.raises(SettingsError, match="unknown check 'toys'; allowed: .*toy"):
        run_check("toys", None, None)


def test_the_plugin_collects_runs_and_reports_the_toy(toy, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model="""
import pytest

@pytest.fixture
def rethink_model():
    return torch.nn.Linear(64, 10)

import torch
""")
    args = ["--rethink", "--rethink-checks=toy", "--rethink-storage=store", "-p", "no:randomly"]
    result = pytester.runpytest(*args, "--rethink-seed=7", "--rethink-json=o.json",
                                "--rethink-save=base")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_model*toy*PASS*toy 0.70*",
                                 "*toy: the toy check's score (tests/test_toy_check.py)*"])
    doc = json.loads((pytester.path / "o.json").read_text())
    (entry,) = doc["items"]
    assert entry["nodeid"] == "test_model.py::rethink[toy]" and entry["metrics"]["toy_score"] == 0.7
    assert entry["settings"]["seed"] == 7

    result = pytester.runpytest(*args, "--rethink-seed=2", "--rethink-compare=base")
    result.assert_outcomes(failed=1)  # seed 2 scores 0.2: the judge fails it
    result.stdout.fnmatch_lines(["*rethink?toy?*toy_score*0.7*0.2*"])

    result = pytester.runpytest(*args, "--rethink-seeds=3", "--rethink-json=m.json")
    scores = [toy_score(seed_for(0, i)) for i in range(3)]
    result.assert_outcomes(**({"passed": 1} if sum(scores) / 3 >= BAR else {"failed": 1}))
    (entry,) = json.loads((pytester.path / "m.json").read_text())["items"]
    assert entry["metrics"]["toy_score"] == pytest.approx(sum(scores) / 3)
    assert "toy_score.ci_high" in entry["metrics"]
