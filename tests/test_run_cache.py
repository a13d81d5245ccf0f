"""The run cache owns its key (run_key) and counts its own hits and misses."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from rethink_checks.checks import CheckSettings, RunCache
from rethink_checks.errors import InputTypeError, RethinkError
from rethink_checks.results import CheckResult, FitResult
from rethink_checks.run_cache import parse_run_key, run_key


def fit_result(acc: float = 1.0) -> FitResult:
    return FitResult(fitted=True, stop_reason="fitted", epochs=3, steps=30, epochs_to_fit=3,
                     steps_to_fit=30, train_seconds=0.1, total_seconds=0.2, train_accuracy=acc,
                     train_loss=0.01, test_accuracy=0.5, best_test_accuracy=0.5,
                     best_test_epoch=3)


def test_run_key_uses_the_settings_digest():
    s = CheckSettings(seed=3)
    assert run_key("random_labels", 1, s) == ("random_labels", 1.0, s.key())
    assert run_key("random_labels", 1, s.key()) == run_key("random_labels", 1.0, s)
    assert run_key("true_labels", 0, s) != run_key("true_labels", 0, CheckSettings(seed=4))


@pytest.mark.parametrize("args, match", [
    ((1, 0.0, "k"), "name: need a randomization name"),
    (("true_labels", "0", "k"), "p: need a number"),
    (("true_labels", True, "k"), "p: need a number"),
    (("true_labels", 0.0, 42), "settings: need CheckSettings or a settings key string, got int"),
])
def test_run_key_rejects_wrong_types(args, match):
    with pytest.raises(InputTypeError, match=match) as err:
        run_key(*args)
    assert isinstance(err.value, TypeError) and isinstance(err.value, RethinkError)


@given(name=st.text(min_size=1, max_size=30), p=st.floats(0.0, 1.0), digest=st.text(max_size=20))
def test_keys_survive_json_and_parse_back(name, p, digest):
    key = run_key(name, p, digest)
    assert parse_run_key(json.loads(json.dumps(list(key)))) == key


@pytest.mark.parametrize("raw", [None, [], ["a", 0.0], ["a", "x", "k"], "a,0,k", ["a", 0, "k", 1]])
def test_malformed_json_keys_parse_to_none(raw):
    assert parse_run_key(raw) is None


def test_get_or_fit_trains_once_and_counts():
    cache, calls = RunCache(), []
    key = run_key("true_labels", 0.0, "k")

    def fit():
        calls.append(1)
        return fit_result()

    first = cache.get_or_fit(key, fit)
    again = cache.get_or_fit(key, fit)
    assert first is again and len(calls) == 1
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.lookup(run_key("true_labels", 0.5, "k")) is None and cache.hits == 1


def test_seeded_runs_are_hits_later_but_not_misses():
    result = CheckResult("true_labels", True, "c",
                         runs={"true_labels": {**fit_result(0.9).to_dict(),
                                               "cache_key": ["true_labels", 0, "k"]}})
    cache = RunCache()
    assert cache.seed_from(CheckResult.from_dict(json.loads(json.dumps(result.to_dict())))) == 1
    assert (cache.hits, cache.misses) == (0, 0)
    run = cache.get_or_fit(run_key("true_labels", 0, "k"), lambda: pytest.fail("trained again"))
    assert run.train_accuracy == 0.9 and cache.hits == 1
