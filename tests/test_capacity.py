"""Effective capacity search: the search logic against an oracle, then real fits on tiny digits."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings, strategies as st

from rethink_checks import training
from rethink_checks.capacity import capacity_search, check_capacity
from rethink_checks.data import load_digits
from rethink_checks.errors import DataError
from rethink_checks.models import mlp
from rethink_checks.results import FitResult
from rethink_checks.training import FitConfig


@pytest.fixture(scope="module")
def digits():
    return load_digits().subset(120, seed=0)


def _run(fitted: bool, n: int) -> FitResult:
    return FitResult(fitted=fitted, stop_reason="fitted" if fitted else "max_epochs", epochs=3,
                     steps=3, epochs_to_fit=3 if fitted else None, steps_to_fit=None,
                     train_seconds=0.0, total_seconds=0.0, train_accuracy=1.0 if fitted else 0.5,
                     train_loss=0.0, test_accuracy=None, best_test_accuracy=None,
                     best_test_epoch=None, num_parameters=1000)


@pytest.fixture
def oracle(monkeypatch):
    """Replace training.fit by 'memorizes iff n <= capacity', recording each call."""
    calls = []
    state = SimpleNamespace(capacity=37, calls=calls)

    def fake_fit(model_factory, data, config):
        model_factory()
        n = len(data.train_x)
        calls.append(SimpleNamespace(n=n, data=data, config=config))
        return _run(n <= state.capacity, n)

    monkeypatch.setattr(training, "fit", fake_fit)
    return state


def _factory():
    return torch.nn.Linear(64, 10)


@pytest.mark.parametrize("capacity", [1, 2, 37, 59, 60, 119, 120])
@pytest.mark.parametrize("precision", [0.01, 0.05, 0.3])
def test_search_brackets_the_boundary_to_the_precision(oracle, digits, capacity, precision):
    oracle.capacity = capacity
    res = capacity_search(_factory, digits, precision=precision)
    lo, hi = res.bracket
    assert lo <= capacity and (hi is None or capacity < hi)
    assert hi is None or hi - lo <= max(1, precision * hi)
    assert res.n_star == lo and res.memorized_all == (capacity >= 120)
    assert res.theorem1_weights == 2 * lo + 64 and res.input_dim == 64
    assert res.complete
    assert [f["n"] for f in res.fits] == [c.n for c in oracle.calls]
    assert oracle.calls[0].n == 120  # starts with the whole set
    assert len(set(c.n for c in oracle.calls)) == len(oracle.calls)  # never refits a size
    assert len(oracle.calls) <= 2 * 7 + 1  # halvings plus bisections: log2(120) each


def _bracketed(lo: int, hi: int | None, precision: float) -> bool:
    return hi is not None and lo > 0 and hi - lo <= max(1, precision * hi)


@settings(max_examples=max(60, settings().max_examples), deadline=None)
@given(capacity=st.integers(0, 130), precision=st.floats(0.001, 0.9), n_min=st.integers(1, 120),
       n_max=st.integers(1, 120))
def test_search_stops_at_the_first_fit_that_brackets_the_answer(digits, capacity, precision,
                                                                n_min, n_max):
    """No fit is made once the answer is known to the precision, and none is made twice."""
    n_min, n_max = min(n_min, n_max), max(n_min, n_max)
    sizes = []

    def fake_fit(model_factory, data, config):
        sizes.append(len(data.train_x))
        return _run(len(data.train_x) <= capacity, len(data.train_x))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "fit", fake_fit)
        res = capacity_search(_factory, digits, precision=precision, n_min=n_min, n_max=n_max)
    assert len(sizes) == len(set(sizes)) and all(n_min <= n <= n_max for n in sizes)
    lo, hi = 0, None
    for i, n in enumerate(sizes):
        if lo == n_max or _bracketed(lo, hi, precision) or (lo == 0 and hi == n_min):
            pytest.fail(f"fit {i} at n={n} made after the answer was known: {sizes}")
        lo, hi = (max(lo, n), hi) if n <= capacity else (lo, n if hi is None else min(hi, n))
    assert (res.n_star, res.bracket) == (lo, (lo, hi)) and res.complete
    assert lo == n_max or _bracketed(lo, hi, precision) or (lo == 0 and hi == n_min)
    assert lo == (min(capacity, n_max) if capacity >= n_min else 0) or lo < capacity < hi


def test_full_memorization_costs_one_fit(oracle, digits):
    oracle.capacity = 10**6
    res = capacity_search(_factory, digits)
    assert res.n_star == 120 and res.bracket == (120, None) and len(oracle.calls) == 1
    assert res.params_per_example == pytest.approx(1000 / 120)


def test_every_fit_gets_random_labels_threshold_and_nested_seeded_subsets(oracle, digits):
    oracle.capacity = 50
    capacity_search(_factory, digits, threshold=0.9, seed=4, config=FitConfig(max_epochs=7, batch_size=200))
    for call in oracle.calls:
        assert call.config.corruption.name == "random_labels" and call.config.corruption.seed == 4
        assert call.config.target_accuracy == 0.9 and call.config.max_epochs == 7  # one step per epoch
    sub = [c.data for c in oracle.calls if c.n < 120]
    assert all(len(d.test_x) == 0 for d in sub)  # subsets skip test evaluation
    small, large = min(sub, key=lambda d: len(d.train_x)), max(sub, key=lambda d: len(d.train_x))
    rows = {tuple(r.tolist()) for r in large.train_x.flatten(1)}
    assert all(tuple(r.tolist()) in rows for r in small.train_x.flatten(1))  # nested


@pytest.mark.parametrize("budget", ["steps", "epochs"])
def test_budget_keeps_the_full_sets_steps_and_schedule_or_the_epochs(oracle, digits, budget):
    oracle.capacity = 40
    config = FitConfig(max_epochs=10, batch_size=16, lr_decay=0.9)
    capacity_search(_factory, digits, config=config, budget=budget)
    full = oracle.calls[0]
    assert full.n == 120 and full.config.max_epochs == 10 and full.config.lr_decay == 0.9
    for call in oracle.calls[1:]:
        per_epoch = -(-call.n // 16)
        if budget == "epochs":
            assert call.config.max_epochs == 10 and call.config.lr_decay == 0.9
        else:  # same optimizer steps (at least); the per-step schedule is the full set's as is
            assert call.config.max_epochs * per_epoch >= 10 * 8
            assert (call.config.max_epochs - 1) * per_epoch < 10 * 8
            assert call.config.lr_decay == 0.9
            assert call.config.lr_decay_steps == config.lr_decay_steps


def test_nothing_memorized_gives_zero(oracle, digits):
    oracle.capacity = 0
    res = capacity_search(_factory, digits, n_min=5)
    assert res.n_star == 0 and res.bracket == (0, 5) and res.params_per_example is None
    assert oracle.calls[-1].n == 5


def test_max_fits_stops_early_and_says_so(oracle, digits):
    oracle.capacity = 37
    res = capacity_search(_factory, digits, max_fits=3, precision=0.01)
    assert len(oracle.calls) == 3 and not res.complete


def test_known_fits_are_reused_not_repeated(oracle, digits):
    oracle.capacity = 120
    known = {120: _run(True, 120)}
    res = capacity_search(_factory, digits, known_fits=known)
    assert oracle.calls == [] and res.fits[0]["reused"] and res.n_star == 120


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_min=50, n_max=40), "n_min: got 50 > n_max=40"),
    (dict(n_max=121), r"n_max: got 121; allowed: 1 <= n_max <= 120"),
    (dict(n_min=0), "n_min: got 0"),
    (dict(n_max=2.5), "n_max: need an integer"),
    (dict(precision=0.0), "precision: got 0.0"),
    (dict(precision=1.0), "precision"),
    (dict(threshold=1.5), "threshold: got 1.5"),
    (dict(max_fits=0), "max_fits: got 0"),
    (dict(budget="time"), "budget: got 'time'"),
])
def test_bad_bounds(oracle, digits, kwargs, match):
    with pytest.raises(DataError, match=match):
        capacity_search(_factory, digits, **kwargs)
    assert oracle.calls == []


def test_empty_data_errors(oracle, digits):
    empty = digits.replace(train_x=digits.train_x[:0], train_y=digits.train_y[:0])
    with pytest.raises(DataError, match="data: the training split .* is empty"):
        capacity_search(_factory, empty)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_data_errors_before_any_fit(oracle, digits, value):
    x = digits.train_x.clone()
    x[7, 0, 3, 3] = value
    with pytest.raises(DataError, match=r"data: 1 training example\(s\) hold NaN/inf values, e.g. "
                                        r"indices \[7\]"):
        capacity_search(_factory, digits.replace(train_x=x))
    assert oracle.calls == []


def _settings(**kw):
    from rethink_checks.checks import CheckSettings

    return CheckSettings(**kw)


def test_check_capacity_reports_and_shares_the_full_fit_with_the_cache(oracle, digits):
    from rethink_checks.checks import RunCache
    from rethink_checks.run_cache import run_key

    oracle.capacity = 80
    cache = RunCache()
    result = check_capacity(_factory, digits, _settings(capacity_precision=0.1), cache)
    assert not result.passed and result.check == "capacity"
    m = result.metrics
    assert m["n_train"] == 120 and m["min_capacity"] == 120 and 72 <= m["n_star"] <= 80
    assert m["theorem1_weights"] == 2 * m["n_star"] + 64 and m["fits"] == len(result.tables["fits"])
    json.dumps(result.to_dict())
    key = ("random_labels", 1.0, _settings(capacity_precision=0.1).key())
    assert key in cache and not cache[key].fitted
    assert key == run_key("random_labels", 1.0, _settings(capacity_precision=0.1))
    assert (cache.hits, cache.misses) == (0, 1)  # the full-set fit was trained and stored
    assert result.summary["key"] == [{"label": "n*", "value": m["n_star"], "format": "{}"}]
    calls = len(oracle.calls)
    again = check_capacity(_factory, digits, _settings(min_capacity=50, capacity_precision=0.1), cache)
    assert again.passed and again.tables["fits"][0]["reused"]
    assert (cache.hits, cache.misses) == (1, 1)  # the cache counted its own reuse
    assert len(oracle.calls) - calls == again.metrics["fits"] == len(again.tables["fits"]) - 1


def test_check_capacity_passes_budget_and_precision_to_the_search(oracle, digits):
    from dataclasses import asdict

    oracle.capacity = 40
    fields = asdict(_settings(capacity_precision=0.3))
    settings_ = SimpleNamespace(**{**fields, "fit": FitConfig(max_epochs=5, batch_size=16),
                                   "capacity_budget": "epochs", "key": lambda: "k"})
    result = check_capacity(_factory, digits, settings_)
    assert result.metrics["budget"] == "epochs"
    assert all(c.config.max_epochs == 5 for c in oracle.calls)  # epochs: config as given
    lo, hi = result.metrics["bracket_low"], result.metrics["bracket_high"]
    assert hi - lo <= max(1, 0.3 * hi) and len(oracle.calls) <= 5


def test_check_capacity_uses_train_size_and_rejects_impossible_minimum(oracle, digits):
    oracle.capacity = 10**6
    result = check_capacity(_factory, digits, _settings(train_size=40))
    assert result.passed and result.metrics["n_star"] == 40 and len(oracle.calls) == 1
    with pytest.raises(DataError, match="min_capacity: got 500"):
        check_capacity(_factory, digits, _settings(min_capacity=500))


# ------------------------------------------------------------------ real fits (tiny)


def test_width_one_mlp_cannot_memorize_everything(digits):
    made = []

    def factory():
        made.append(mlp((1, 8, 8), 10, width=1))
        return made[-1]

    cfg = FitConfig(max_epochs=15, device="cpu", lr=0.1, batch_size=40, lr_decay=1.0)
    res = capacity_search(factory, digits, config=cfg, precision=0.25)
    assert res.n_star < 120 and not res.memorized_all
    assert res.num_parameters == 64 + 1 + 10 + 10
    assert len(made) == len(res.fits) and len({id(m) for m in made}) == len(made)  # a fresh model each fit


def test_wide_mlp_memorizes_the_whole_set(digits):
    cfg = FitConfig(max_epochs=80, device="cpu", lr=0.1, batch_size=24, lr_decay=1.0)
    res = capacity_search(lambda: mlp((1, 8, 8), 10, width=256), digits, config=cfg)
    assert res.memorized_all and res.n_star == 120 and len(res.fits) == 1
    assert res.fits[0]["train_accuracy"] >= 0.99


# ------------------------------------------------------------------ plugin (pytester)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_plugin_checks_put_capacity_and_theorem1_metrics_in_json_and_summary(pytester):
    import sklearn.datasets  # noqa: F401 - imported once here, not inside pytester's run

    import rethink_checks.theory  # noqa: F401

    pytester.makepyfile(test_model='''
import pytest
from rethink_checks.models import mlp

pytestmark = pytest.mark.rethink(train_size=40, batch_size=10, lr=0.1, lr_decay=1.0,
                                 max_epochs=40, device="cpu", min_capacity=5,
                                 capacity_precision=0.5)

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=64)
''')
    result = pytester.runpytest("--rethink", "--rethink-checks=capacity,expressivity",
                                "--rethink-json=out.json")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "rethink summary" in out and "capacity" in out and "expressivity" in out
    doc = json.loads((pytester.path / "out.json").read_text())
    metrics = {item["nodeid"].split("::")[1]: item["metrics"] for item in doc["items"]}
    cap, expr = metrics["rethink[capacity]"], metrics["rethink[expressivity]"]
    params = 64 * 64 + 64 + 64 * 10 + 10
    assert cap["num_parameters"] == params and 5 <= cap["n_star"] <= 40
    assert cap["theorem1_weights"] == 2 * cap["n_star"] + 64
    assert cap["params_per_example"] == pytest.approx(params / cap["n_star"])
    assert cap["fits"] >= 1 and cap["seconds"] >= 0
    assert expr["n"] == 40 and expr["theorem1_weights"] == 2 * 40 + 64
    assert expr["num_parameters"] == params and expr["fitted"]
