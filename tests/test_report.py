"""Summary table, session JSON, machine id, baselines and compare-fail expressions."""
from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given, strategies as st

from rethink_checks import report
from rethink_checks.checks import CheckSettings
from rethink_checks.errors import RethinkError
from rethink_checks.report import (BaselineStore, CompareFail, ReportError, compare_baseline, format_comparison,
                                   format_table, load_baseline, machine_id, parse_compare_fail,
                                   save_baseline, session_document, write_json)
from rethink_checks.results import CheckResult, key_metric, table_summary

MACHINE = {"platform": "Linux-6", "system": "Linux", "machine": "x86_64", "python": "3.12",
           "cpu": "AMD EPYC 9654", "cpu_count": 2, "torch": "2.14.1", "cuda": None,
           "gpu": None, "gpus": []}


def result(check="true_labels", passed=True, **metrics):
    base = {"train_accuracy": 1.0, "test_accuracy": 0.9, "epochs_to_fit": 8}
    run = {"curves": {"epoch": [1, 2], "step": [10, 20], "train_loss": [2.0, 0.1]},
           "cache_key": [check, 0.0, "k"]}
    return CheckResult(check, passed, "train accuracy >= 1.0", "ok", {**base, **metrics},
                       runs={check: run}, seconds=1.5)


def doc_with(metrics_by_check, nodeid_prefix="test_m.py::rethink"):
    items = [{"nodeid": f"{nodeid_prefix}[{check}]", "model": "mlp", "check": check,
              "outcome": "passed", "result": result(check, **metrics)}
             for check, metrics in metrics_by_check.items()]
    return session_document(items, CheckSettings(seed=4), machine=MACHINE)


# ---------------------------------------------------------------- table

def test_table_has_one_row_per_item_verdicts_and_key_metrics():
    rows = [
        {"model": "mlp", "check": "true_labels", "outcome": "passed", "seconds": 2.0,
         "metrics": {"train_accuracy": 1.0, "test_accuracy": 0.93, "epochs_to_fit": 9},
         "summary": table_summary(train=1.0, test=0.93, epochs=9)},
        {"model": "mlp", "check": "slowdown", "outcome": "failed",
         "metrics": {"slowdown.max": 12.345, "epochs_to_fit.true_labels": 9},
         "summary": table_summary(epochs=9, key=[key_metric("slowdown", 12.345, "{:.2f}x")])},
        {"model": "cnn", "check": "regularizers", "outcome": "passed",
         "metrics": {"gain": 0.0312, "test_accuracy_with": 0.95, "train_accuracy_without": 1.0},
         "summary": table_summary(train=1.0, test=0.95, key=[key_metric("gain", 0.0312, "{:+.3f}")])},
        {"model": "cnn", "check": "partial_labels", "outcome": "passed",
         "metrics": {"test_error@0": 0.05, "test_error@1": 0.9, "test_error@0.5": 0.4},
         "summary": table_summary(key=[key_metric("err", [0.05, 0.9], "{:.2f}->{:.2f}")])},
        {"model": "bad", "check": "true_labels", "outcome": "error", "metrics": {}},
        {"model": "x", "check": "gaussian", "outcome": "skipped", "metrics": {}},
    ]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["model", "check", "verdict", "train", "test", "epochs", "key", "s"]
    body = lines[2:8]
    assert [line.split()[2] for line in body] == ["PASS", "FAIL", "PASS", "PASS", "ERROR", "SKIP"]
    assert "0.930" in body[0] and " 9 " in body[0] + " " and "2.0" in body[0]
    assert "slowdown 12.35x" in body[1]
    assert "gain +0.031" in body[2] and "0.950" in body[2]
    assert "err 0.05->0.90" in body[3]
    assert report.LEGEND in text and "PASS criterion met" in text


def test_error_rows_show_the_start_of_their_message():
    long = "ModelError: the rethink_model fixture returned builtins.int; expected a torch.nn.Module"
    rows = [{"model": "test_m[wrong_type]", "check": "true_labels", "outcome": "error",
             "metrics": {}, "message": long + "\nsecond line"},
            {"model": "test_m[ok]", "check": "true_labels", "outcome": "failed", "metrics": {},
             "message": "true labels not fitted"}]
    body = format_table(rows, legend=False).splitlines()[2:]
    assert body[0].split()[:3] == ["test_m[wrong_type]", "true_labels", "ERROR"]
    assert long[:45] + "..." in body[0] and "second line" not in body[0]
    assert "not fitted" not in body[1]  # a FAIL's message is in pytest's own report
    assert len(body[0]) < 120


def test_table_columns_line_up_and_legend_can_be_left_out():
    rows = [{"model": "a-very-long-model-name", "check": "gaussian", "outcome": "passed",
             "metrics": {"train_accuracy": 0.995}, "summary": table_summary(train=0.995)},
            {"model": "m", "check": "random_labels", "outcome": "failed", "metrics": {}}]
    text = format_table(rows, legend=False)
    assert "legend" not in text
    lines = text.splitlines()
    starts = {line.index(word) for line, word in zip(lines[2:], ["gaussian", "random_labels"])}
    assert len(starts) == 1  # the check column starts at the same offset in every row


def test_table_reads_only_the_summary_and_knows_no_check_by_name():
    rows = [{"model": "m", "check": "my_new_check", "outcome": "passed", "seconds": 0.25,
             "summary": table_summary(train=0.5, epochs=3,
                                      key=[key_metric("width", 12), key_metric("ratio", 0.5, "{:.0%}")])},
            {"model": "m", "check": "slowdown", "outcome": "passed",
             "metrics": {"slowdown.max": 2.0, "train_accuracy": 1.0}}]
    first, second = format_table(rows, legend=False).splitlines()[2:]
    assert first.split() == ["m", "my_new_check", "PASS", "0.500", "-", "3", "width", "12,",
                             "ratio", "50%", "0.2"]
    assert second.split() == ["m", "slowdown", "PASS", "-", "-", "-", "-"]  # metrics alone: nothing


@pytest.mark.parametrize("entry, text", [
    (key_metric("n*", 1000), "n* 1000"),
    (key_metric("residual", 1.5e-9, "{:.1e}"), "residual 1.5e-09"),
    (key_metric("err", [0.05, 0.9], "{:.2f}->{:.2f}"), "err 0.05->0.90"),
    (key_metric("gain", None, "{:+.3f}"), "gain None"),  # a template that cannot format: as is
    (key_metric("err", [0.1], "{:.2f}->{:.2f}"), "err [0.1]"),
    ({"label": "x", "value": 2, "format": "{missing}"}, "x 2"),
])
def test_format_key_metric(entry, text):
    assert report.format_key_metric(entry) == text


def test_summary_travels_in_the_item_entry_and_through_json():
    res = result("random_labels")
    res.summary = table_summary(train=1.0, test=0.1, epochs=8,
                                key=[key_metric("slowdown", 3.0, "{:.2f}x")])
    again = CheckResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert again.summary == res.summary
    entry = report.item_entry("m::rethink[random_labels]", "m", "random_labels", "passed", again)
    assert entry["summary"]["key"][0]["label"] == "slowdown"
    assert "slowdown 3.00x" in format_table([entry], legend=False)
    doc = session_document([entry], machine=MACHINE)
    assert doc["items"][0]["summary"] == res.summary


def test_results_saved_before_the_summary_still_load():
    old = result().to_dict()
    del old["summary"]
    loaded = CheckResult.from_dict(old)
    assert loaded.summary == {} and loaded.metrics["epochs_to_fit"] == 8
    assert format_table([report.item_entry("n", "m", "true_labels", "passed", loaded)],
                        legend=False).splitlines()[2].split()[3:6] == ["-", "-", "-"]


# ---------------------------------------------------------------- session document

def test_session_document_holds_machine_settings_and_items():
    doc = doc_with({"true_labels": {}, "random_labels": {"test_accuracy": 0.1}})
    assert doc["schema"] == 1 and doc["version"] and doc["seed"] == 4
    assert doc["machine"]["cpu"] == "AMD EPYC 9654" and doc["machine_id"] == machine_id(MACHINE)
    assert doc["settings"]["fit"]["batch_size"] == 128
    first = doc["items"][0]
    assert first["nodeid"] == "test_m.py::rethink[true_labels]"
    assert (first["model"], first["check"], first["outcome"]) == ("mlp", "true_labels", "passed")
    assert first["metrics"]["epochs_to_fit"] == 8
    assert first["curves"]["true_labels"]["train_loss"] == [2.0, 0.1]
    assert first["criterion"] and first["seconds"] == 1.5
    json.dumps(doc, allow_nan=False)


def test_machine_info_describes_this_machine():
    info = report.machine_info()
    for key in ("platform", "cpu", "torch", "cuda", "gpu", "python"):
        assert key in info
    assert info["torch"]


def test_write_json_is_strict_and_round_trips(tmp_path):
    doc = doc_with({"true_labels": {"seconds": float("nan"), "ratio": math.inf}})
    path = write_json(doc, tmp_path / "deep" / "out.json")
    text = path.read_text()
    loaded = json.loads(text)
    assert "NaN" not in text and "Infinity" not in text
    assert loaded["items"][0]["metrics"]["seconds"] is None
    assert loaded["items"][0]["metrics"]["ratio"] is None
    assert loaded["items"][0]["metrics"]["test_accuracy"] == 0.9


def test_item_entry_from_an_error_without_result():
    entry = report.item_entry("m::rethink[gaussian]", "m", "gaussian", "error",
                              message="ModelError: wrong output shape")
    assert entry["metrics"] == {} and entry["curves"] == {}
    assert entry["message"] == "ModelError: wrong output shape"


# ---------------------------------------------------------------- machine id and baselines

def test_machine_id_is_a_slug_naming_cpu_gpu_and_torch():
    mid = machine_id(MACHINE)
    assert re.fullmatch(r"[a-z0-9-]+", mid)
    assert "amd-epyc-9654" in mid and "nogpu" in mid and "torch2-14-1" in mid
    gpu = machine_id({**MACHINE, "gpu": "NVIDIA H100 80GB HBM3"})
    assert gpu != mid and "nvidia-h100" in gpu


def test_save_numbers_baselines_and_load_finds_them(tmp_path):
    doc = doc_with({"true_labels": {}})
    first = save_baseline(doc, "before", root=tmp_path)
    second = save_baseline(doc_with({"true_labels": {"epochs_to_fit": 9}}), "after", root=tmp_path)
    assert first == tmp_path / machine_id(MACHINE) / "0001_before.json"
    assert second.name == "0002_after.json"
    mid = machine_id(MACHINE)
    assert load_baseline(root=tmp_path, machine=mid)["items"][0]["metrics"]["epochs_to_fit"] == 9
    for name in ("before", "0001", "0001_before", str(first)):
        loaded = load_baseline(name, root=tmp_path, machine=mid)
        assert loaded["items"][0]["metrics"]["epochs_to_fit"] == 8
        assert loaded["baseline_path"] == str(first)


def test_missing_baseline_lists_what_is_stored(tmp_path):
    save_baseline(doc_with({"true_labels": {}}), "only", root=tmp_path)
    with pytest.raises(ReportError, match="0001_only"):
        load_baseline("other", root=tmp_path, machine=machine_id(MACHINE))
    with pytest.raises(ReportError, match="stored for this machine: none"):
        load_baseline(root=tmp_path / "empty", machine="m")


def test_baseline_store_owns_the_layout_and_lists_what_it_holds(tmp_path):
    store = BaselineStore(tmp_path / ".rethink")
    assert store.list("m") == [] and store.folder("m") == tmp_path / ".rethink" / "m"
    first = store.save(doc_with({"true_labels": {}}), "a", machine="m")
    second = store.save(doc_with({"true_labels": {"epochs_to_fit": 3}}), "b", machine="m")
    assert [(s.number, s.name, s.path) for s in store.list("m")] == [(1, "a", first), (2, "b", second)]
    assert store.find(machine="m") == second and store.find("a", machine="m") == first
    assert store.load("0002", machine="m")["items"][0]["metrics"]["epochs_to_fit"] == 3
    assert save_baseline(doc_with({}), "c", root=tmp_path / ".rethink", machine="m").name == "0003_c.json"


def test_a_baseline_written_by_the_single_module_version_still_loads(tmp_path):
    """The layout and schema did not change with the split: a hand-written old file loads."""
    folder = tmp_path / machine_id(MACHINE)
    folder.mkdir()
    old = {"schema": 1, "version": "0.1.0", "created": "2026-11-27T10:00:00+00:00",
           "machine": MACHINE, "settings": {}, "seed": 0, "data": "digits",
           "machine_id": machine_id(MACHINE),
           "items": [{"nodeid": "test_m.py::rethink[true_labels]", "model": "mlp", "check": "true_labels",
                      "outcome": "passed", "criterion": "", "message": "", "seconds": 1.0,
                      "metrics": {"test_accuracy": 0.9}, "tables": {}, "curves": {}}]}
    (folder / "0007_old.json").write_text(json.dumps(old))
    loaded = BaselineStore(tmp_path).load("old", machine=machine_id(MACHINE))
    rows, failures = compare_baseline(doc_with({"true_labels": {"test_accuracy": 0.5}}), loaded,
                                      ["true_labels.test_accuracy:0.1"])
    assert failures and rows[0]["baseline"] == 0.9
    assert BaselineStore(tmp_path).save(doc_with({}), "new").name == "0008_new.json"


@pytest.mark.parametrize("name", ["", "../up", "with space", "-dash", None])
def test_bad_baseline_names_are_rejected(tmp_path, name):
    with pytest.raises(ReportError, match="baseline name"):
        save_baseline(doc_with({}), name, root=tmp_path)


def test_unreadable_baseline_is_a_clear_error(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "0001_x.json").write_text("{not json")
    with pytest.raises(ReportError, match="cannot read"):
        load_baseline("x", root=tmp_path, machine="m")


# ---------------------------------------------------------------- compare-fail

@pytest.mark.parametrize("expr, parsed", [
    ("random_labels.epochs_to_fit:25%", ("random_labels", "epochs_to_fit", 25.0, True, "+")),
    ("true_labels.test_accuracy:0.02", ("true_labels", "test_accuracy", 0.02, False, "-")),
    ("slowdown.slowdown.max:+1.5", ("slowdown", "slowdown.max", 1.5, False, "+")),
    ("partial_labels.test_error@0.4:-.05", ("partial_labels", "test_error@0.4", 0.05, False, "-")),
    ("regularizers.gain:0.1", ("regularizers", "gain", 0.1, False, "")),
    (" gaussian.seconds:100% ", ("gaussian", "seconds", 100.0, True, "+")),
])
def test_parse_compare_fail(expr, parsed):
    rule = parse_compare_fail(expr)
    assert (rule.check, rule.metric, rule.limit, rule.relative, rule.direction) == parsed


@pytest.mark.parametrize("expr", ["", "epochs_to_fit:25%", "random_labels.epochs_to_fit",
                                  "random_labels.epochs_to_fit:", "random_labels.:5",
                                  "random_labels.epochs_to_fit:abc", "a.b:5%%", "a.b:*5",
                                  ".b:5", "a.b:5 %", None])
def test_malformed_compare_fail_expressions(expr):
    with pytest.raises(ReportError, match="CHECK.METRIC:LIMIT") as err:
        parse_compare_fail(expr)
    assert isinstance(err.value, ValueError) and isinstance(err.value, RethinkError)


@given(check=st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True),
       metric=st.from_regex(r"[a-z_][a-z0-9_.@]{0,20}", fullmatch=True),
       limit=st.decimals(0, 1000, places=3, allow_nan=False, allow_infinity=False),
       sign=st.sampled_from(["", "+", "-"]), pct=st.booleans())
def test_parse_compare_fail_round_trips(check, metric, limit, sign, pct):
    expr = f"{check}.{metric}:{sign}{limit}{'%' if pct else ''}"
    rule = parse_compare_fail(expr)
    assert (rule.check, rule.metric, rule.relative) == (check, metric, pct)
    assert rule.limit == pytest.approx(float(limit))
    if sign:
        assert rule.direction == sign


def test_compare_relative_limit_fails_on_slower_fit():
    base = doc_with({"random_labels": {"epochs_to_fit": 20}})
    slower = doc_with({"random_labels": {"epochs_to_fit": 26}})
    rows, failures = compare_baseline(slower, base, ["random_labels.epochs_to_fit:25%"])
    assert len(rows) == 1 and rows[0]["failed"] and rows[0]["change"] == 6
    assert rows[0]["change_pct"] == pytest.approx(30.0)
    assert len(failures) == 1 and "went from 20 to 26" in failures[0]
    rows, failures = compare_baseline(doc_with({"random_labels": {"epochs_to_fit": 24}}), base,
                                      ["random_labels.epochs_to_fit:25%"])
    assert failures == [] and not rows[0]["failed"]
    rows, failures = compare_baseline(doc_with({"random_labels": {"epochs_to_fit": 5}}), base,
                                      ["random_labels.epochs_to_fit:25%"])
    assert failures == []  # faster is never a regression


def test_compare_absolute_limit_on_accuracy_drop():
    base = doc_with({"true_labels": {"test_accuracy": 0.90}})
    rule = "true_labels.test_accuracy:0.02"
    assert compare_baseline(doc_with({"true_labels": {"test_accuracy": 0.85}}), base, [rule])[1]
    assert not compare_baseline(doc_with({"true_labels": {"test_accuracy": 0.89}}), base, [rule])[1]
    assert not compare_baseline(doc_with({"true_labels": {"test_accuracy": 0.99}}), base, [rule])[1]


def test_compare_signed_and_undirected_limits():
    base = doc_with({"regularizers": {"gain": 0.05}})
    up, down = (doc_with({"regularizers": {"gain": g}}) for g in (0.20, -0.10))
    assert compare_baseline(up, base, ["regularizers.gain:0.1"])[1]  # no sign: either way
    assert compare_baseline(down, base, ["regularizers.gain:0.1"])[1]
    assert compare_baseline(up, base, ["regularizers.gain:+0.1"])[1]
    assert not compare_baseline(down, base, ["regularizers.gain:+0.1"])[1]
    assert compare_baseline(down, base, ["regularizers.gain:-0.1"])[1]


def test_compare_without_rules_lists_key_metrics_and_never_fails():
    base = doc_with({"true_labels": {}, "random_labels": {}})
    cur = doc_with({"true_labels": {"test_accuracy": 0.5}, "gaussian": {}})
    rows, failures = compare_baseline(cur, base)
    assert failures == []
    assert {r["check"] for r in rows} == {"true_labels"}  # only items present in both
    assert {r["metric"] for r in rows} == {"train_accuracy", "test_accuracy", "epochs_to_fit"}
    table = format_comparison(rows)
    assert "test_accuracy" in table and "-0.4" in table


def test_compare_from_zero_baseline_and_fail_marker():
    base = doc_with({"gaussian": {"seconds": 0.0}})
    rows, failures = compare_baseline(doc_with({"gaussian": {"seconds": 1.0}}), base,
                                      [CompareFail("gaussian.seconds:10%", "gaussian", "seconds",
                                                   10.0, True, "+")])
    assert failures and rows[0]["change_pct"] is None
    assert "FAIL" in format_comparison(rows)
    assert format_comparison([]) == "no metrics in common with the baseline"


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_machine_id_names_the_gpu():
    info = report.machine_info()
    assert info["gpu"] and info["cuda"]
    assert re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-") in machine_id(info)


def test_compare_rule_with_a_misspelt_metric_fails_naming_the_known_ones():
    base = doc_with({"random_labels": {}})
    rows, failures = compare_baseline(doc_with({"random_labels": {}}), base,
                                      ["random_labels.epoch_to_fit:25%", "gaussian.seconds:10%"])
    assert rows == []
    assert len(failures) == 1  # gaussian did not run: nothing to compare, no failure
    assert "no metric 'epoch_to_fit'" in failures[0] and "epochs_to_fit" in failures[0]
