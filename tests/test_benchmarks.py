"""Smoke tests of the CPU benchmarks (`bench_cpu_step.py --quick`, `bench_cpu_eval.py` on one
small model, the calibration panel's `--quick` run and `--merge`, `bench_seeds.py --quick`, `bench_mislabels.py --quick`):
the scripts run and write their JSON.

Only cheap modes (a few seconds each); the figures themselves are measured by hand
(docs/benchmarks.md), never asserted here.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_cpu_step_quick_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "cpu_step.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_cpu_step.py"), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "t2/t1" in proc.stdout  # the table's header
    report = json.loads(out.read_text())
    mlp = report["models"]["mlp1x512"]
    assert set(mlp["step_ms"]) == {"t1", "t2"}  # no channels_last for an MLP, no compile in --quick
    assert all(ms > 0 for ms in mlp["step_ms"].values())
    assert mlp["speedup"]["t2_vs_t1"] > 0
    assert len(report["load_avg_before"]) == 3 and isinstance(report["idle"], bool)
    assert report["machine"]  # rethink_checks.report.machine_info()


def test_bench_cpu_eval_writes_both_layouts(tmp_path: Path) -> None:
    out = tmp_path / "cpu_eval.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_cpu_eval.py"), "--models", "bn_cnn",
                           "--images", "256", "--reps", "1", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "x (cl faster)" in proc.stdout
    result = json.loads(out.read_text())["results"]["bn_cnn"]
    assert set(result) == {f"{layout}/{c}" for layout in ("nchw", "channels_last")
                           for c in ("eval@128", "eval@256", "eval@1024", "step")}
    assert all(v > 0 for v in result.values())


def _panel(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "panel.py"), *args],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_panel_quick_run_then_merge(tmp_path: Path) -> None:
    first, second, merged = (tmp_path / f"{n}.json" for n in ("first", "second", "merged"))
    proc = _panel(tmp_path, "--quick", "--data", "digits", "--models", "mlp_1x512,control_pooled_linear",
                  "--out", str(first))
    assert proc.returncode in (0, 1), proc.stderr  # 3 epochs: the verdicts mean nothing
    run = json.loads(first.read_text())
    assert not run["partial"] and run["seeds"] == 2 and run["command"].startswith("python benchmarks/panel.py")
    assert {(r["model"], r["check"]) for r in run["rows"]} == {
        (m, c) for m in ("mlp_1x512", "control_pooled_linear") for c in ("true_labels", "random_labels", "slowdown")}
    assert [r["control"] for r in run["rows"]].count(True) == 3
    # a later run replaces the (data, model, check) rows it holds and keeps the others
    later = {**run, "rows": [{**r, "passed": True, "message": "later"} for r in run["rows"]
                             if r["model"] == "mlp_1x512"] + [
        {**r, "check": "regularizers", "passed": True, "message": "added"} for r in run["rows"][:1]] + [
        {**r, "data": "cifar", "model": "control_linear", "control": True, "passed": True}  # n < d there
        for r in run["rows"][:2]] + [
        {**r, "data": "digits+raw", "passed": False} for r in run["rows"][:1]] + [  # judged apart
        {**r, "model": "bn_dropout_cnn_flat", "control": False, "passed": False} for r in run["rows"][:1]],
        "partial": True}
    second.write_text(json.dumps(later))
    proc = _panel(tmp_path, "--merge", str(first), str(second), "--out", str(merged),
                  "--markdown", str(tmp_path / "merged.md"))
    assert proc.returncode == 0, proc.stderr  # ordinary rows now all pass, the control still fails
    doc = json.loads(merged.read_text())
    assert [r["message"] for r in doc["rows"]
            if r["model"] == "mlp_1x512" and r["data"] == "digits"] == ["later"] * 3 + ["added"]
    assert [r["model"] for r in doc["rows"]].count("control_pooled_linear") == 3
    assert [run["models"] for run in doc["runs"]] == [
        ["control_pooled_linear"], ["bn_dropout_cnn_flat", "control_linear", "mlp_1x512"]]
    assert doc["partial"] and doc["summary"]["ordinary_all_passed"]
    # roles come from the panel's table: a raw linear model on the CIFAR-10 subset is a reference
    # row (it can memorize 500 images of d = 3,072), neither a control nor an ordinary model
    assert {r["role"] for r in doc["rows"] if r["data"] == "cifar"} == {"reference"}
    assert doc["summary"]["controls_all_failed_random_labels"]
    # the CNN kept from before its grid pool is a reference row; a +raw failure is summarized apart
    assert {r["role"] for r in doc["rows"] if r["model"] == "bn_dropout_cnn_flat"} == {"reference"}
    by_data = doc["summary"]["by_data"]
    assert not by_data["digits+raw"]["ordinary_all_passed"] and by_data["digits"]["ordinary_all_passed"]
    text = (tmp_path / "merged.md").read_text()
    assert "2 runs merged" in text and "digits+raw: Ordinary models all pass: False" in text


def test_bench_seeds_quick_writes_cost_and_expectation(tmp_path: Path) -> None:
    out = tmp_path / "seeds.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_seeds.py"), "--quick",
                           "--repeats", "1", "--seeds", "1,2", "--models", "mlp_1x512", "--expect",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert [(r["seeds"], r["ratio_to_first"] > 0) for r in report["cost"]] == [(1, True), (2, True)]
    assert report["cost"][0]["ratio_to_first"] == 1.0
    expectation = {(r["width"], r["check"]): r for r in report["expectation"]}
    assert set(expectation) == {(w, c) for w in (4, 512) for c in ("true_labels", "random_labels")}
    assert expectation[(4, "random_labels")]["passed"]  # 3 epochs: nothing memorizes, as expected
    assert "expected not memorized" in expectation[(4, "random_labels")]["message"]


def test_module_path_counts_few_re_entries_outside_the_training_engine(tmp_path: Path) -> None:
    """One rethink[random_labels] item: no module but the training engine's is re-entered
    (issue #23 halved the 34 re-entries of de1ac70; benchmarks/results/module_path.json)."""
    out = tmp_path / "path.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "module_path.py"), "--json", str(out)],
                   check=True, capture_output=True, cwd=tmp_path)
    doc = json.loads(out.read_text())
    engine = {"rethink_checks.training", "rethink_checks.step", "rethink_checks.evaluation"}
    assert doc["reentries"] <= 17 and doc["modules"] > 20
    assert all(set(edge.split(" (")[0].split(" -> ")) <= engine for edge in doc["edges"])


def test_bench_streaming_quick_writes_the_ratio(tmp_path: Path) -> None:
    out = tmp_path / "streaming.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_streaming.py"), "--quick",
                           "--workers", "1", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "materialized / variant" in proc.stdout
    report = json.loads(out.read_text())
    assert set(report["ratio"]) == {"materialized", "streamed_w0", "streamed_w1"}
    assert report["ratio"]["materialized"] == 1.0 and report["machine"]


def test_bench_mislabels_quick_writes_every_method(tmp_path: Path) -> None:
    pytest.importorskip("cleanlab")
    out = tmp_path / "mislabels.json"
    proc = subprocess.run([sys.executable, "-W", "ignore", str(ROOT / "benchmarks" / "bench_mislabels.py"),
                           "--quick", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "P@flip" in proc.stdout  # the table's header
    rows = json.loads(out.read_text())["rows"]
    assert [r["method"] for r in rows] == ["cleanlab+logreg", "cleanlab+mlp256", "cleanlab+model",
                                           "harness"]
    assert all(0 <= r["precision_at_k"] <= 1 and 0 <= r["auroc"] <= 1 and r["seconds"] >= 0
               for r in rows)
    assert rows[-1]["stop_reason"] in ("stable", "max_epochs")


def test_bench_recipes_quick_writes_both_recipes_side_by_side(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("transformers")
    out = tmp_path / "recipes.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_recipes.py"), "--quick",
                           "--models", "bert", "--max-epochs", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert {(r["recipe"], r["check"]) for r in report["rows"]} == {
        (rec, c) for rec in ("paper", "adamw") for c in ("true_labels", "random_labels")}
    assert set(report["side_by_side"][0]) == {"model", "paper_random_labels_epochs", "adamw_random_labels_epochs"}
    assert report["machine"]["label"]
