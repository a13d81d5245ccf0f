"""The checks: pass and fail paths on tiny digits data, the run cache, and CheckSettings."""
from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st
from torch import nn

from rethink_checks import checks, fits, training
from rethink_checks.checks import run as check_run
from rethink_checks.checks import CHECKS, CheckSettings, RunCache, SettingsError, run_check
from rethink_checks.settings import REMOVABLE
from rethink_checks.data import load_digits
from rethink_checks.errors import ModelError, RethinkError
from rethink_checks.models import mlp
from rethink_checks.results import CheckResult, FitResult

ALL_CHECKS = ["true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian",
              "partial_labels", "slowdown", "regularizers", "capacity", "expressivity",
              "memorization", "suspects"]
MEMORIZATION = ["random_labels", "shuffled_pixels", "random_pixels", "gaussian"]
# lr 0.1, batch 20, no decay: a 512-unit MLP memorizes 200 random digit labels in ~40 epochs
TINY = {"lr": 0.1, "batch_size": 20, "lr_decay": 1.0, "max_epochs": 60, "device": "cpu",
        "partial_levels": [0.0, 0.5, 1.0], "slowdown_randomizations": "all"}


@pytest.fixture(scope="module")
def digits():
    return load_digits().subset(200, seed=0)


@pytest.fixture(scope="module")
def tiny():
    return CheckSettings.from_mapping(TINY)


def factory_for(data, width=512):
    return lambda: mlp(data.input_shape, data.num_classes, width=width)


class FitCounter:
    """Wraps training.fit and records the corruption of every real fit."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __call__(self, model, data, config=None, **kw):
        self.calls.append(None if config.corruption is None else config.corruption.name)
        return self.real(model, data, config, **kw)


@pytest.fixture(scope="module")
def ran(digits, tiny):
    """Every fitting check once on one shared cache, counting the fits each one trained."""
    cache, results, fits = RunCache(), {}, {}
    with pytest.MonkeyPatch.context() as mp:
        counter = FitCounter(training.fit)
        mp.setattr(training, "fit", counter)
        for name in ["true_labels", *MEMORIZATION, "partial_labels", "slowdown"]:
            before = len(counter.calls)
            results[name] = run_check(name, factory_for(digits), digits, tiny, cache)
            fits[name] = counter.calls[before:]
    return {"cache": cache, "results": results, "fits": fits}


def scalar(value):
    return value is None or isinstance(value, (bool, int, float, str))


# ---------------------------------------------------------------- real fits

def test_true_labels_passes_with_documented_metrics(ran):
    res = ran["results"]["true_labels"]
    assert res.passed and res.check == "true_labels"
    m = res.metrics
    for key in ("fitted", "train_accuracy", "test_accuracy", "epochs_to_fit", "steps_to_fit",
                "seconds", "best_test_accuracy", "best_test_epoch", "num_parameters", "device"):
        assert key in m, key
    assert m["train_accuracy"] >= 1.0 and m["test_accuracy"] > 0.8
    assert m["num_parameters"] == 64 * 512 + 512 + 512 * 10 + 10
    assert "train accuracy >= 1.0" in res.criterion
    assert all(scalar(v) for v in m.values())
    json.dumps(res.to_dict())


@pytest.mark.parametrize("name", MEMORIZATION)
def test_memorization_checks_pass(ran, name):
    res = ran["results"][name]
    assert res.passed, res.message
    assert res.metrics["train_accuracy"] >= 0.99 and res.metrics["chance"] == pytest.approx(0.1)
    assert ran["fits"][name] == [name]  # exactly one fit, of the right randomization
    assert all(scalar(v) for v in res.metrics.values())


def test_random_labels_generalize_at_chance(ran):
    assert ran["results"]["random_labels"].metrics["test_accuracy"] < 0.25
    assert ran["results"]["true_labels"].metrics["test_accuracy"] > 0.8


def test_memorization_fails_for_a_tiny_model(digits):
    quick = CheckSettings.from_mapping({**TINY, "max_epochs": 5})
    res = run_check("random_labels", factory_for(digits, width=2), digits, quick)
    assert not res.passed
    assert res.metrics["fitted"] is False and res.metrics["train_accuracy"] < 0.99
    assert "not memorized" in res.message and "5 epochs" in res.message


def test_slowdown_reuses_every_cached_fit(ran):
    res = ran["results"]["slowdown"]
    assert ran["fits"]["slowdown"] == []  # nothing trained again
    m = ran["results"]
    assert res.metrics["epochs_to_fit.true_labels"] is not None
    for name in MEMORIZATION:
        ratio = res.metrics[f"slowdown.{name}"]
        assert ratio == pytest.approx(res.metrics[f"epochs_to_fit.{name}"] /
                                      res.metrics["epochs_to_fit.true_labels"])
        assert m[name].metrics["fitted"]
    assert res.metrics["slowdown.max"] == max(res.metrics[f"slowdown.{n}"] for n in MEMORIZATION)
    # random labels take longer to fit than true labels (the paper's Figure 1a/b)
    assert res.metrics["slowdown.random_labels"] > 1.0
    assert res.passed == (res.metrics["slowdown.max"] <= 10.0)


def test_the_cache_counted_every_reuse(ran):
    # trained: true labels, the four randomizations, p=0.5; reused: p=0 and p=1, all of slowdown
    assert (ran["cache"].misses, ran["cache"].hits) == (6, 7)


def test_each_check_fills_its_summary_table_row(ran):
    """The summary table reads only CheckResult.summary; each check says what its row shows."""
    from rethink_checks.report import format_table, item_entry

    res = ran["results"]
    for name in ["true_labels", *MEMORIZATION]:
        m = res[name].metrics
        assert res[name].summary == {"train": m["train_accuracy"], "test": m["test_accuracy"],
                                     "epochs": m["epochs_to_fit"], "key": []}
    slow, part = res["slowdown"].metrics, res["partial_labels"].metrics
    assert res["slowdown"].summary["epochs"] == slow["epochs_to_fit.true_labels"]
    rows = [item_entry(f"t::rethink[{n}]", "mlp", n, "passed", res[n])
            for n in ("slowdown", "partial_labels")]
    body = format_table(rows, legend=False).splitlines()[2:]
    assert f"slowdown {slow['slowdown.max']:.2f}x" in body[0]
    assert f"err {part['test_error@0']:.2f}->{part['test_error@1']:.2f}" in body[1]


def test_slowdown_fails_when_ratio_exceeds_max(ran, digits, tiny, monkeypatch):
    counter = FitCounter(training.fit)
    monkeypatch.setattr(training, "fit", counter)
    strict = tiny.updated(max_slowdown=1.0)
    assert strict.key() == tiny.key()  # criteria do not invalidate cached fits
    res = run_check("slowdown", factory_for(digits), digits, strict, ran["cache"])
    assert counter.calls == []
    assert not res.passed and "slower than true labels" in res.message


def test_partial_sweep_table_and_reuse(ran):
    res = ran["results"]["partial_labels"]
    assert ran["fits"]["partial_labels"] == ["partial_labels"]  # p=0 and p=1 came from the cache
    rows = res.tables["sweep"]
    assert [r["p"] for r in rows] == [0.0, 0.5, 1.0]
    assert set(rows[0]) >= {"p", "fitted", "epochs_to_fit", "steps_to_fit", "relative_time",
                            "train_accuracy", "test_error"}
    assert rows[0]["relative_time"] == 1.0
    assert rows[0]["test_error"] < rows[1]["test_error"] < rows[2]["test_error"]
    assert res.metrics["test_error@0.5"] == rows[1]["test_error"]
    assert res.passed, res.message
    cache_key = {tuple(run["cache_key"][:2]) for run in res.runs.values()}
    assert cache_key == {("true_labels", 0.0), ("partial_labels", 0.5), ("random_labels", 1.0)}


def test_runs_restore_into_another_cache(ran, digits, tiny, monkeypatch):
    fresh = RunCache()
    for res in ran["results"].values():
        fresh.seed_from(CheckResult.from_dict(json.loads(json.dumps(res.to_dict()))))
    assert set(fresh) == set(ran["cache"])
    counter = FitCounter(training.fit)
    monkeypatch.setattr(training, "fit", counter)
    again = run_check("slowdown", factory_for(digits), digits, tiny, fresh)
    assert counter.calls == [] and again.metrics == ran["results"]["slowdown"].metrics


def test_same_settings_give_identical_results_on_cpu(ran, digits, tiny):
    again = run_check("true_labels", factory_for(digits), digits, tiny)
    first = ran["results"]["true_labels"].metrics
    for key in ("train_accuracy", "test_accuracy", "epochs_to_fit", "steps_to_fit"):
        assert again.metrics[key] == first[key]


class DropoutMLP(nn.Sequential):
    def __init__(self, data):
        super().__init__(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.1),
                         nn.Linear(256, data.num_classes))


@pytest.fixture(scope="module")
def regularized(digits, tiny):
    s = tiny.updated(ablated_regularizers=["weight_decay", "dropout"], ablation_weight_decay=1e-4)
    cache = RunCache()
    res = run_check("regularizers", lambda: DropoutMLP(digits), digits, s, cache)
    return s, cache, res


def test_regularizers_pass_reports_with_and_without(regularized):
    _, _, res = regularized
    m = res.metrics
    assert (res.summary["train"], res.summary["test"]) == (m["train_accuracy_without"],
                                                           m["test_accuracy_with"])
    assert res.summary["key"] == [{"label": "gain", "value": m["gain"], "format": "{:+.3f}"}]
    assert m["gain"] == pytest.approx(m["test_accuracy_with"] - m["test_accuracy_without"])
    assert m["fitted_without"] is True
    assert "Dropout" in m["removed"] or "dropout" in m["removed"].lower()
    assert isinstance(m["memorized_with_regularizers"], bool)
    assert set(res.runs) == {"with", "without", "random_labels_with"}
    assert res.passed == (m["gain"] <= 0.10)
    assert all(scalar(v) for v in m.values())


def test_regularizers_fail_when_gain_exceeds_max(regularized, digits, monkeypatch):
    s, cache, first = regularized
    counter = FitCounter(training.fit)
    monkeypatch.setattr(training, "fit", counter)
    res = run_check("regularizers", lambda: DropoutMLP(digits), digits,
                    s.updated(max_regularizer_gain=-1.0), cache)
    assert counter.calls == []
    assert not res.passed and "costs" in res.message
    assert res.metrics["gain"] == first.metrics["gain"]


def test_memorization_reports_the_regularizers_it_trained_with(digits, tiny):
    """Dropout stays in by default (the model as built); remove: dropout is the paper's way."""
    short = tiny.updated(max_epochs=1)
    kept = run_check("random_labels", lambda: DropoutMLP(digits), digits, short)
    assert kept.metrics["regularizers_in_model"] == "dropout"
    assert "regularizers as built (dropout; remove: dropout trains without it" in kept.criterion
    gone = run_check("random_labels", lambda: DropoutMLP(digits), digits,
                     short.updated(remove=["dropout"], ablation_weight_decay=0.0, lr=0.05))
    assert gone.metrics["regularizers_in_model"] == "none"
    assert gone.criterion.endswith("trained with no regularizers")
    decayed = run_check("true_labels", factory_for(digits, width=16), digits,
                        short.updated(fit={"weight_decay": 1e-4}))
    assert decayed.metrics["regularizers_in_model"] == "weight_decay"


def test_bad_model_raises_the_engine_error(digits, tiny):
    with pytest.raises(RethinkError):
        run_check("true_labels", lambda: "not a model", digits, tiny)


def test_wrong_output_shape_raises_model_error(digits, tiny):
    with pytest.raises(ModelError):
        run_check("random_labels", lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 3)),
                  digits, tiny)


# ---------------------------------------------------------------- fake fits: exact logic

def fake_run(epochs_to_fit=None, test_accuracy=0.9, max_epochs=10, steps_per_epoch=10,
             final_accuracy=None):
    """A FitResult whose train accuracy reaches 1.0 at ``epochs_to_fit`` (None: never)."""
    top = epochs_to_fit or max_epochs
    accs = [min(1.0, e / epochs_to_fit) if epochs_to_fit else 0.5 for e in range(1, top + 1)]
    if final_accuracy is not None:
        accs[-1] = final_accuracy
    return FitResult(
        fitted=epochs_to_fit is not None, stop_reason="fitted" if epochs_to_fit else "max_epochs",
        epochs=top, steps=top * steps_per_epoch, epochs_to_fit=epochs_to_fit,
        steps_to_fit=epochs_to_fit and epochs_to_fit * steps_per_epoch,
        train_seconds=0.1, total_seconds=0.1, train_accuracy=accs[-1], train_loss=0.0,
        test_accuracy=test_accuracy, best_test_accuracy=test_accuracy, best_test_epoch=1,
        curves={"epoch": list(range(1, top + 1)),
                "step": [steps_per_epoch * e for e in range(1, top + 1)],
                "train_accuracy": accs, "train_loss": [1.0 / e for e in range(1, top + 1)]})


@pytest.fixture
def fake(monkeypatch):
    """Replace fitting by a table: corruption key -> FitResult; records the calls."""
    table, calls = {}, []

    def fit(model_factory, data, config):
        spec = config.corruption
        key = "true_labels" if spec is None else spec.name
        if spec is not None and spec.name == "partial_labels":
            key = f"partial_labels@{spec.p:g}"
        if config.remove == REMOVABLE:
            key = "none:" + key
        calls.append((key, len(data.train_x), config))
        return table.get(key) or table["default"]

    monkeypatch.setattr(fits, "fit_once", fit)
    return table, calls


def test_slowdown_ratio_uses_epochs_to_the_common_threshold(fake, digits):
    table, _ = fake
    table.update({"true_labels": fake_run(4), "random_labels": fake_run(12),
                  "default": fake_run(8)})
    s = CheckSettings(memorize_threshold=1.0, max_slowdown=3.0, slowdown_randomizations="all")
    res = run_check("slowdown", lambda: None, digits, s)
    assert res.metrics["slowdown.random_labels"] == 3.0
    assert res.metrics["slowdown.gaussian"] == 2.0 and res.passed
    res = run_check("slowdown", lambda: None, digits, s.updated(max_slowdown=2.5))
    assert not res.passed and "random_labels: 3.00x" in res.message


def test_slowdown_times_random_labels_alone_by_default(fake, digits):
    """The default leaves out the noise inputs (the paper fits them sooner): two fits, not five."""
    table, calls = fake
    table.update({"true_labels": fake_run(4), "random_labels": fake_run(12), "default": fake_run(6)})
    res = run_check("slowdown", lambda: None, digits, CheckSettings())
    assert sorted(c[0] for c in calls) == ["random_labels", "true_labels"]
    assert [r["randomization"] for r in res.tables["slowdown"]] == ["random_labels"]
    assert res.metrics["slowdown.max"] == 3.0 and "slowdown.gaussian" not in res.metrics
    picked = CheckSettings(slowdown_randomizations=["gaussian", "random_labels"])
    res = run_check("slowdown", lambda: None, digits, picked)
    assert [r["randomization"] for r in res.tables["slowdown"]] == ["random_labels", "gaussian"]
    assert res.metrics["slowdown.max"] == 3.0 and res.metrics["slowdown.gaussian"] == 1.5


def test_slowdown_fails_when_a_randomization_does_not_fit(fake, digits):
    table, _ = fake
    table.update({"true_labels": fake_run(4), "gaussian": fake_run(None), "default": fake_run(6)})
    res = run_check("slowdown", lambda: None, digits, CheckSettings(slowdown_randomizations="all"))
    assert not res.passed and "gaussian not memorized" in res.message
    assert res.metrics["slowdown.gaussian"] is None
    assert res.metrics["slowdown.max"] == pytest.approx(1.5)


def test_partial_fails_when_test_error_falls_with_p(fake, digits):
    table, _ = fake
    table.update({"true_labels": fake_run(2, test_accuracy=0.5),
                  "partial_labels@0.5": fake_run(4, test_accuracy=0.9),
                  "random_labels": fake_run(8, test_accuracy=0.1), "default": fake_run(3)})
    s = CheckSettings(partial_levels=(1.0, 0.0, 0.5))
    res = run_check("partial_labels", lambda: None, digits, s)
    assert [r["p"] for r in res.tables["sweep"]] == [0.0, 0.5, 1.0]  # sorted
    assert [r["relative_time"] for r in res.tables["sweep"]] == [1.0, 2.0, 4.0]
    assert not res.passed and "test error fell" in res.message
    assert res.metrics["test_error@0.5"] == pytest.approx(0.1)


def test_partial_fails_when_a_level_does_not_fit(fake, digits):
    table, _ = fake
    table.update({"partial_labels@0.5": fake_run(None, test_accuracy=0.3),
                  "random_labels": fake_run(8, test_accuracy=0.1),
                  "true_labels": fake_run(2, test_accuracy=0.9), "default": fake_run(3)})
    res = run_check("partial_labels", lambda: None, digits, CheckSettings(partial_levels=(0, .5, 1)))
    assert not res.passed and "p=0.5 not fitted" in res.message
    assert res.metrics["all_fitted"] is False


def test_partial_without_p0_uses_true_labels_as_baseline(fake, digits):
    table, calls = fake
    table.update({"true_labels": fake_run(2), "default": fake_run(6)})
    res = run_check("partial_labels", lambda: None, digits, CheckSettings(partial_levels=(0.5,)))
    assert res.tables["sweep"][0]["relative_time"] == 3.0
    assert [c[0] for c in calls] == ["partial_labels@0.5", "true_labels"]


def test_regularizers_fail_when_model_no_longer_fits(fake, digits):
    table, calls = fake
    table.update({"none:true_labels": fake_run(None, test_accuracy=0.8),
                  "default": fake_run(3, test_accuracy=0.85)})
    res = run_check("regularizers", lambda: None, digits, CheckSettings(ablated_regularizers=("augment",)))
    assert not res.passed and "no longer fits" in res.message
    configs = {key: cfg for key, _, cfg in calls}
    with_cfg = configs["true_labels"]
    assert with_cfg.augment and with_cfg.weight_decay == 0.0
    assert with_cfg.remove == ("dropout", "batchnorm")
    assert configs["none:true_labels"].remove == ("dropout", "batchnorm", "weight_decay", "augment",
                                                  "label_smoothing")
    assert configs["random_labels"].augment  # memorization is tried with the regularizers on


def test_train_size_subsets_the_data(fake, digits):
    table, calls = fake
    table["default"] = fake_run(3)
    run_check("true_labels", lambda: None, digits, CheckSettings(train_size=50))
    assert calls[0][1] == 50


def test_thresholds_reach_the_fit_as_target_accuracy(fake, digits):
    table, calls = fake
    table["default"] = fake_run(3)
    s = CheckSettings(fit_threshold=0.97, memorize_threshold=0.9)
    run_check("true_labels", lambda: None, digits, s)
    run_check("gaussian", lambda: None, digits, s)
    assert [c[2].target_accuracy for c in calls] == [0.97, 0.9]


def test_corruption_specs_follow_settings(fake, digits):
    table, calls = fake
    table["default"] = fake_run(3)
    s = CheckSettings(label_mode="wrong_class", corrupt_test_labels=True, seed=7)
    run_check("random_labels", lambda: None, digits, s)
    run_check("random_pixels", lambda: None, digits, s)
    labels, pixels = calls[0][2].corruption, calls[1][2].corruption
    assert (labels.name, labels.p, labels.mode, labels.seed) == ("random_labels", 1.0, "wrong_class", 7)
    assert labels.corrupt_test_labels is True
    assert (pixels.name, pixels.seed) == ("random_pixels", 7)


class FakeClock:
    """Stands in for the checks module's ``time``: ``now`` moves only when a test moves it."""

    def __init__(self):
        self.now = 1000.0
        self.perf_counter = time.perf_counter

    def monotonic(self):
        return self.now


def test_time_budget_is_shared_by_the_fits_of_one_check(digits, monkeypatch):
    clock, budgets = FakeClock(), []

    def fit(model_factory, data, config):  # every fit takes 4 s; one given less is cut short
        budgets.append(config.max_seconds)
        clock.now += 4.0
        if config.max_seconds < 4.0:
            return dataclasses.replace(fake_run(None, max_epochs=1), stop_reason="time_budget")
        return fake_run(2)

    monkeypatch.setattr(check_run, "time", clock)
    monkeypatch.setattr(fits, "time", clock)
    monkeypatch.setattr(fits, "fit_once", fit)
    s = CheckSettings(time_budget=10.0, memorize_threshold=1.0, slowdown_randomizations="all")
    res = run_check("slowdown", factory_for(digits), digits, s, RunCache())
    assert budgets == [10.0, 6.0, 2.0, 1e-6, 1e-6]  # each fit gets what the earlier ones left
    assert res.metrics["time_budget"] == 10.0 and res.metrics["time_budget_exhausted"] is True
    assert not res.passed and "shuffled_pixels not memorized" in res.message
    assert res.message.endswith("(the check's time budget of 10 s ran out; stopped for time: "
                                "gaussian, random_pixels, shuffled_pixels)")


def test_time_budget_keeps_a_tighter_per_fit_limit_and_resets_per_check(fake, digits, monkeypatch):
    table, calls = fake
    table["default"] = fake_run(3)
    clock = FakeClock()
    monkeypatch.setattr(check_run, "time", clock)
    monkeypatch.setattr(fits, "time", clock)
    s = CheckSettings.from_mapping({"time_budget": 30, "max_seconds": 5})
    first = run_check("true_labels", factory_for(digits), digits, s)
    run_check("random_labels", factory_for(digits), digits, s)
    assert [c[2].max_seconds for c in calls] == [5, 5]
    assert first.passed and first.metrics["time_budget_exhausted"] is False
    assert "ran out" not in first.message
    calls.clear()
    plain = run_check("true_labels", factory_for(digits), digits, CheckSettings())
    assert calls[0][2].max_seconds is None and "time_budget" not in plain.metrics


def test_time_budget_stops_real_fits_after_one_epoch(digits, tiny):
    res = run_check("true_labels", factory_for(digits), digits,
                    tiny.updated(max_epochs=500, time_budget=1e-9))
    assert res.metrics["epochs"] == 1 and res.metrics["stop_reason"] == "time_budget"
    assert res.metrics["time_budget_exhausted"] and "ran out" in res.message


def test_capacity_budget_reaches_the_search(digits, tiny, monkeypatch):
    from rethink_checks import capacity

    seen = []
    real = capacity.capacity_search
    monkeypatch.setattr(capacity, "capacity_search",
                        lambda *a, **kw: (seen.append(kw.get("budget")), real(*a, **kw))[1])
    run_check("capacity", factory_for(digits, width=16), digits,
              tiny.updated(max_epochs=1, train_size=20, min_capacity=1, capacity_precision=0.5,
                           capacity_budget="epochs"))
    assert seen == ["epochs"]


def test_not_a_dataset_is_a_data_error(tiny):
    with pytest.raises(ValueError, match="Dataset"):
        run_check("true_labels", lambda: None, [1, 2, 3], tiny)


# ---------------------------------------------------------------- registry and settings

def test_checks_registry_names_and_order():
    assert list(CHECKS) == ALL_CHECKS


def test_unknown_check_lists_allowed(digits):
    with pytest.raises(SettingsError, match="unknown check 'nope'; allowed: true_labels"):
        run_check("nope", lambda: None, digits)


def test_checks_module_imports_no_optional_check_modules():
    code = ("import sys, rethink_checks.checks; "
            "print(any(m in sys.modules for m in ('rethink_checks.capacity', 'rethink_checks.theory', 'pytest')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_from_mapping_accepts_fit_keys_and_nested_fit():
    s = CheckSettings.from_mapping({"lr": 0.05, "batch-size": 32, "max_epochs": 7,
                                    "max_seconds": 30, "device": "cpu", "seed": 3,
                                    "memorize_threshold": 0.95, "fit": {"momentum": 0.5}})
    assert (s.fit.lr, s.fit.batch_size, s.fit.max_epochs, s.fit.max_seconds) == (0.05, 32, 7, 30)
    assert (s.fit.device, s.fit.momentum, s.fit.seed, s.seed) == ("cpu", 0.5, 3, 3)
    assert s.memorize_threshold == 0.95


def test_from_mapping_keeps_base_values():
    base = CheckSettings.from_mapping({"lr": 0.05, "max_slowdown": 4})
    s = CheckSettings.from_mapping({"batch_size": 16}, base=base)
    assert (s.fit.lr, s.fit.batch_size, s.max_slowdown) == (0.05, 16, 4)


def test_from_mapping_rejects_unknown_keys_by_name():
    with pytest.raises(SettingsError) as err:
        CheckSettings.from_mapping({"learning_rate": 0.1, "lr": 0.1, "treshold": 1})
    text = str(err.value)
    assert "['learning_rate', 'treshold']" in text and "allowed:" in text and "max_slowdown" in text


@pytest.mark.parametrize("mapping, fragment", [
    ({"fit_threshold": 0}, "CheckSettings.fit_threshold=0 is invalid; allowed: a number in (0, 1]"),
    ({"memorize_threshold": 1.2}, "memorize_threshold"),
    ({"partial_levels": [0.2, 1.5]}, "partial_levels"),
    ({"partial_levels": []}, "at least one"),
    ({"partial_levels": [0.2, 0.2]}, "repeat"),
    ({"partial_levels": ["x"]}, "not a number"),
    ({"error_tolerance": -1}, "error_tolerance"),
    ({"max_slowdown": 0}, "max_slowdown"),
    ({"max_regularizer_gain": "big"}, "max_regularizer_gain"),
    ({"ablated_regularizers": ["dropout", "l1"]}, "ablated_regularizers=['dropout', 'l1'] is invalid; "
                                                  "allowed: a list drawn from weight_decay"),
    ({"ablation_weight_decay": -0.1}, "ablation_weight_decay=-0.1 is invalid"),
    ({"remove": "dropout,l2"}, "FitConfig.remove=['dropout', 'l2'] is invalid"),
    ({"label_mode": "random"}, "allowed: paper, wrong_class"),
    ({"corrupt_test_labels": "maybe"}, "corrupt_test_labels"),
    ({"train_size": 0}, "train_size"),
    ({"capacity_precision": 1}, "capacity_precision"),
    ({"capacity_budget": "wall"}, "CheckSettings.capacity_budget='wall' is invalid; allowed: steps, epochs"),
    ({"time_budget": 0}, "CheckSettings.time_budget=0 is invalid; allowed: a number > 0"),
    ({"time_budget": "soon"}, "CheckSettings.time_budget='soon' is invalid; allowed: a number"),
    ({"seed": -1}, "seed"),
    ({"batch_size": 0}, "batch_size"),
    ({"device": 3}, "device"),
    ({"fit": {"bogus": 1}}, "unknown fit key(s) ['bogus']"),
    ({"target_accuracy": 0.5}, "target_accuracy"),
])
def test_bad_values_raise_settings_error(mapping, fragment):
    with pytest.raises(SettingsError, match=None) as err:
        CheckSettings.from_mapping(mapping)
    assert fragment in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, RethinkError)


def test_strings_from_ini_files_are_coerced():
    s = CheckSettings.from_mapping({"partial_levels": "0, 0.5,1", "ablated_regularizers": "dropout",
                                    "corrupt_test_labels": "true", "train_size": "100"})
    assert s.partial_levels == (0.0, 0.5, 1.0) and s.ablated_regularizers == ("dropout",)
    assert s.corrupt_test_labels is True and s.train_size == 100
    s = CheckSettings.from_mapping({"lr": "0.1", "max_epochs": "7", "fast": "false",
                                    "max_seconds": "none", "fit_threshold": "0.95", "seed": "3"})
    assert (s.fit.lr, s.fit.max_epochs, s.fit.fast, s.fit.max_seconds) == (0.1, 7, False, None)
    assert (s.fit_threshold, s.seed, s.fit.seed) == (0.95, 3, 3)
    with pytest.raises(SettingsError, match="max_epochs='many'"):
        CheckSettings.from_mapping({"max_epochs": "many"})


def test_key_tracks_fits_not_criteria():
    s = CheckSettings()
    assert s.key() == CheckSettings().key()
    assert s.updated(max_slowdown=2, error_tolerance=0.5, partial_levels=[0.3],
                     capacity_budget="epochs").key() == s.key()
    assert s.updated(time_budget=60).key() != s.key()  # a budget can cut fits short
    assert s.updated(lr=0.2).key() != s.key()
    assert s.updated(seed=1).key() != s.key()
    assert s.updated(memorize_threshold=0.9).key() != s.key()


def test_progress_callback_does_not_change_key():
    s = CheckSettings()
    s2 = CheckSettings(fit=training.FitConfig(progress=lambda row: None))
    assert s.key() == s2.key()


@hsettings(max_examples=40, deadline=None)
@given(fit_t=st.floats(0.01, 1.0), mem_t=st.floats(0.01, 1.0),
       levels=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6, unique=True),
       regs=st.lists(st.sampled_from(checks.REGULARIZERS), unique=True),
       lr=st.one_of(st.none(), st.floats(1e-4, 1.0)), seed=st.integers(0, 2**31))
def test_to_dict_round_trips_through_json_and_from_mapping(fit_t, mem_t, levels, regs, lr, seed):
    s = CheckSettings.from_mapping({"fit_threshold": fit_t, "memorize_threshold": mem_t,
                                    "partial_levels": levels, "ablated_regularizers": regs, "lr": lr,
                                    "seed": seed})
    again = CheckSettings.from_mapping(json.loads(json.dumps(s.to_dict())))
    assert again == s and again.key() == s.key()
    assert list(s.partial_levels) == sorted(s.partial_levels)


def test_seed_from_ignores_runs_without_cache_key():
    cache = RunCache()
    run = fake_run(3).to_dict()
    assert cache.seed_from({"a": run}) == 0
    assert cache.seed_from([{**run, "cache_key": ["true_labels", 0, "k"]}]) == 1
    assert isinstance(cache[("true_labels", 0.0, "k")], FitResult)
    assert math.isclose(cache[("true_labels", 0.0, "k")].train_accuracy, 1.0)


def test_progress_rows_name_their_run(digits):
    rows = []
    s = CheckSettings.from_mapping({**TINY, "max_epochs": 2, "partial_levels": [0.5]})
    s = CheckSettings(**{**s.__dict__, "fit": training.FitConfig(
        **{**s.fit.__dict__, "progress": rows.append})})
    run_check("partial_labels", factory_for(digits, width=8), digits, s)
    assert {(r["run"], r["p"]) for r in rows} == {("partial_labels", 0.5), ("true_labels", 0.0)}
    assert all("epoch" in r for r in rows)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_checks_on_the_gpu_fast_path(digits):
    s = CheckSettings.from_mapping({**TINY, "device": "cuda"})
    cache = RunCache()
    results = {name: run_check(name, factory_for(digits), digits, s, cache)
               for name in ["true_labels", *MEMORIZATION, "partial_labels", "slowdown"]}
    assert cache.misses == 6 and cache.hits == 7  # one fit per randomization plus p=0.5
    for name, res in results.items():
        assert res.passed, (name, res.message)
    assert results["true_labels"].metrics["device"].startswith("cuda")
    assert results["random_labels"].metrics["test_accuracy"] < 0.25
    reg = run_check("regularizers", lambda: DropoutMLP(digits), digits,
                    s.updated(ablated_regularizers=["weight_decay", "dropout"]))
    assert reg.metrics["fitted_without"] and isinstance(reg.metrics["gain"], float)


@given(accs=st.lists(st.one_of(st.none(), st.floats(0.0, 1.0)), min_size=1, max_size=30),
       threshold=st.floats(0.01, 1.0), steps_per_epoch=st.integers(1, 50))
def test_epochs_to_threshold_is_the_first_epoch_reaching_it(accs, threshold, steps_per_epoch):
    run = fake_run(3)
    run.curves = {"epoch": list(range(1, len(accs) + 1)), "train_accuracy": accs,
                  "step": [steps_per_epoch * e for e in range(1, len(accs) + 1)]}
    hits = [e for e, a in enumerate(accs, start=1) if a is not None and a >= threshold]
    expected = (hits[0], hits[0] * steps_per_epoch) if hits else (None, None)
    assert fits.epochs_to(run, threshold) == expected


def test_epochs_to_threshold_falls_back_to_the_run_without_curves():
    run = fake_run(3)
    run.curves = {}
    assert fits.epochs_to(run, 0.99) == (3, 30)
    run.train_accuracy = 0.5
    assert fits.epochs_to(run, 0.99) == (None, None)


def test_a_fit_that_blew_up_says_so_and_one_that_did_not_stays_plain(fake, digits):
    """A loss far above a uniform guess's ln(k) names the learning rate, not capacity."""
    table, _ = fake
    blown = fake_run(None, max_epochs=6)
    blown.curves["train_loss"] = [29.6, 62.5, 23.8, 2.46, 2.30, 2.30]  # measured shape (docs/checks.md)
    table.update({"true_labels": fake_run(3), "shuffled_pixels": blown, "default": fake_run(None, max_epochs=6)})
    res = run_check("shuffled_pixels", lambda: None, digits, CheckSettings())
    assert not res.passed
    assert "peaked at 62.5 in epoch 2, above 2 x ln(10) = 4.61" in res.message and "lower lr" in res.message
    slow = run_check("slowdown", lambda: None, digits, CheckSettings(slowdown_randomizations="all"))
    assert "shuffled_pixels not memorized" in slow.message and "peaked at 62.5" in slow.message
    plain = run_check("random_pixels", lambda: None, digits, CheckSettings())  # losses 1, 1/2, ...
    assert not plain.passed and "peaked" not in plain.message


def test_every_registered_check_is_documented_and_described() -> None:
    """The registry's entries carry their docs line, and docs/checks.md's table lists each."""
    from pathlib import Path

    from rethink_checks.checks.registry import BUILTIN

    table = (Path(__file__).resolve().parents[1] / "docs" / "checks.md").read_text(encoding="utf-8")
    for check in BUILTIN:
        assert check.doc and callable(check.run) and f"`{check.name}`" in table
        assert check.judge is not None or not check.judged_on_means
        assert check.key_metric is None or check.legend or check.key_format[0]
