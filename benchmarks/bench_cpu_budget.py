"""Issue #10's CPU-budget figures: the plugin on real data subsets, before vs after, timed in one run.

Every scenario runs as ``python -m pytest --rethink ... --rethink-json=...`` in a subprocess,
once with the "before" code (a git ref, default 1e4fa47, extracted with ``git archive`` into a
temp dir) and once with the "after" code (this tree), back to back so both see the same load.
Both trees run with this script's Python and venv: ``PYTHONPATH`` puts a shim dir first whose
symlinks ``rethink_checks`` and ``rethink_checks_pytest`` point into the tree, and pytest gets
``-p no:rethink -p rethink_checks_pytest.plugin`` so the installed entry point stays out. The
probe plugin ``benchmarks/_probe/rethink_bench_probe.py`` records which files ran (checked
against the tree: ``code_ok``) and, per fit, training and evaluation seconds.

Scenarios (``--only``):
  resnet18   torchvision ResNet-18, 256 CIFAR-10 images, true_labels,random_labels,slowdown
             (target <= 90 s, was > 20 min)
  cnn2000    small BN + dropout CNN, 2,000 CIFAR-10 images, true_labels,random_labels
             (target <= 180 s)
  examples   ``pytest --rethink examples`` of each tree (target: after >= 2x faster, same verdicts)
  mobilenet  MobileNetV3-small, 256 CIFAR-10 images (not in the default set)
Each tree gets a wall-clock cap per scenario (``--cap-seconds``); a capped run counts as
"> cap" and its ratio as a lower bound. Eval share = evaluation seconds / fit seconds per fit
(FitResult.eval_seconds where the tree reports it, else the probe's timing of the evaluation).

Usage: python benchmarks/bench_cpu_budget.py [--only resnet18,cnn2000,examples]
           [--cap-seconds 600] [--before-ref 1e4fa47] [--before-raw] [--cifar PATH] [--threads N]
           [--checks A,B] [--no-before] [--keep] [--out PATH]
``--before-ref HEAD --before-raw`` times this code on [0, 1] pixels against the whitened
default, back to back (written to benchmarks/results/cpu_budget_whitened.json).
Prints a table and writes JSON (default benchmarks/results/cpu_budget.json).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rethink_checks.report import machine_info

from _common import RESULTS, write_json  # benchmarks/_common.py

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SCENARIO_DIR = BENCH / "scenarios"
PROBE_DIR = BENCH / "_probe"
DEFAULT_CIFAR = "../shared/data/cifar10-jpg.tar.gz"
EVAL_SHARE_TARGET = 0.25


@dataclass(frozen=True)
class Scenario:
    """One timed plugin run: which tests, which data options, and issue #10's target."""

    name: str
    description: str
    test_file: str | None  # under benchmarks/scenarios; None: the tree's own examples/
    train_size: int | None = None
    cifar: bool = True
    target_seconds: float | None = None
    target_ratio: float | None = None


SCENARIOS = {s.name: s for s in (
    Scenario("resnet18", "ResNet-18, 256 CIFAR-10 images, true/random labels + slowdown",
             "test_resnet18.py", 256, target_seconds=90),
    Scenario("cnn2000", "BN+dropout CNN, 2,000 CIFAR-10 images, true/random labels",
             "test_cnn2000.py", 2000, target_seconds=180),
    Scenario("examples", "pytest --rethink examples (digits)", None, cifar=False, target_ratio=2.0),
    Scenario("mobilenet", "MobileNetV3-small, 256 CIFAR-10 images, true/random labels + slowdown",
             "test_mobilenet.py", 256),
)}
DEFAULT_ONLY = "resnet18,cnn2000,examples"


@dataclass
class Tree:
    """A code tree to time: its root and the shim dir that puts it first on ``sys.path``."""

    label: str
    root: Path
    spec_options: str = ""  # appended to the CIFAR-10 spec, e.g. ",raw"
    shim: Path = field(init=False)

    def make_shim(self, parent: Path) -> None:
        self.shim = parent / f"shim-{self.label}"
        self.shim.mkdir(parents=True, exist_ok=True)
        for link, target in (("rethink_checks", "rethink_checks"), ("rethink_checks_pytest", "plugins")):
            (self.shim / link).symlink_to(self.root / target, target_is_directory=True)

    def env(self, probe_file: Path | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.shim), str(PROBE_DIR)]
                                            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("RETHINK_BENCH_PROBE", None)
        if probe_file is not None:
            env["RETHINK_BENCH_PROBE"] = str(probe_file)
        return env


def extract_before(ref: str, dest: Path) -> Path:
    """The tree at ``ref`` under ``dest`` (``git archive``: no worktree metadata left behind)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def pytest_command(scenario: Scenario, tree: Tree, cifar: Path | None, json_path: Path,
                   threads: int | None, checks: str | None = None) -> list[str]:
    """The pytest command line of one scenario on one tree (pytest finds the rootdir from the path)."""
    cmd = [sys.executable, "-m", "pytest", "--rethink", "-p", "no:rethink",
           "-p", "rethink_checks_pytest.plugin", "-p", "rethink_bench_probe",
           "-p", "no:cacheprovider", "-q", f"--rethink-json={json_path}"]
    if scenario.cifar:
        cmd.append(f"--rethink-data=folder:{cifar}{tree.spec_options}")
    if scenario.train_size is not None:
        cmd.append(f"--rethink-train-size={scenario.train_size}")
    if threads is not None:
        cmd.append(f"--rethink-threads={threads}")
    if checks:
        cmd.append(f"--rethink-checks={checks}")
    if scenario.test_file is None:
        return cmd + [str(tree.root / "examples")]
    return cmd + [str(SCENARIO_DIR / scenario.test_file)]


def run_capped(cmd: list[str], cwd: Path, env: dict[str, str], cap: float, log: Path) -> tuple[float, int | None]:
    """Run ``cmd`` with a wall-clock cap; returns (seconds, exit code or None when capped)."""
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc: int | None = proc.wait(timeout=cap)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: pytest and anything it started
            proc.wait()
            rc = None
        return time.perf_counter() - t0, rc


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fit_summary(record: dict[str, Any]) -> dict[str, Any]:
    """One fit: seconds, evaluation seconds (reported, else probed) and their share."""
    total = record.get("total_seconds") or record.get("wall_s")
    reported = record.get("eval_seconds")
    evaluation = reported if reported is not None else record.get("probe_eval_s")
    return {
        "corruption": record.get("corruption"), "epochs": record.get("epochs"),
        "steps": record.get("steps"), "stop_reason": record.get("stop_reason"),
        "train_accuracy": record.get("train_accuracy"), "threads": record.get("threads"),
        "seconds": None if total is None else round(total, 2),
        "train_seconds": record.get("train_seconds"),
        "eval_seconds": None if evaluation is None else round(evaluation, 2),
        "eval_source": "FitResult" if reported is not None else ("probe" if evaluation is not None else None),
        "eval_share": None if evaluation is None or not total else round(evaluation / total, 3),
    }


def run_one(scenario: Scenario, tree: Tree, cifar: Path | None, cap: float, work: Path,
            threads: int | None, checks: str | None = None) -> dict[str, Any]:
    """Time one scenario on one tree and read back verdicts, fits and which code ran."""
    stem = f"{scenario.name}-{tree.label}"
    json_path, probe, log = work / f"{stem}.json", work / f"{stem}.probe.jsonl", work / f"{stem}.log"
    cmd = pytest_command(scenario, tree, cifar, json_path, threads, checks)
    # cwd: the temp dir, because `python -m` puts the cwd first on sys.path, where the
    # repository root would shadow the before tree's shim.
    seconds, rc = run_capped(cmd, work, tree.env(probe), cap, log)
    records = _read_jsonl(probe)
    code = next((r for r in records if r.get("kind") == "code"), {})
    fits = [fit_summary(r) for r in records if r.get("kind") == "fit"]
    verdicts = {}
    if json_path.exists():
        doc = json.loads(json_path.read_text())
        # node ids are relative to the rootdir (the examples/ or scenarios/ folder): equal across trees
        verdicts = {item.get("nodeid") or item.get("check"): item.get("outcome")
                    for item in doc.get("items", [])}
    shares = [f["eval_share"] for f in fits if f["eval_share"] is not None]
    ran = [str(Path(code[k]).resolve()) if code.get(k) else None for k in ("rethink_checks", "plugin")]
    entry = {
        "seconds": round(seconds, 1), "capped": rc is None, "exit_code": rc,
        "verdicts": verdicts, "fits": fits,
        "eval_share_max": max(shares) if shares else None,
        "eval_share_median": round(statistics.median(shares), 3) if shares else None,
        "code": {"rethink_checks": ran[0], "plugin": ran[1]},
        # None: the run ended before the probe saw the code (capped during start-up)
        "code_ok": (all(p is not None and Path(p).is_relative_to(tree.root.resolve()) for p in ran)
                    if code else None),
        "log_tail": log.read_text(errors="replace").splitlines()[-3:],
    }
    cap_note = f" (capped at {cap:.0f} s)" if rc is None else ""
    print(f"  {tree.label:6s} {entry['seconds']:7.1f} s{cap_note}  exit {rc}  "
          f"{sum(v == 'passed' for v in verdicts.values())}/{len(verdicts)} passed  "
          f"eval share max {entry['eval_share_max']}  code_ok {entry['code_ok']}", flush=True)
    return entry


def compare(scenario: Scenario, before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """Ratio before/after (a lower bound when only before was capped) and the targets."""
    out: dict[str, Any] = {}
    if before is not None:
        if after["capped"]:
            out["ratio"], out["ratio_kind"] = None, "unknown (after capped)"
        else:
            out["ratio"] = round(before["seconds"] / after["seconds"], 2)
            out["ratio_kind"] = "lower bound (before capped)" if before["capped"] else "measured"
        common = sorted(set(before["verdicts"]) & set(after["verdicts"]))
        out["common_items"] = len(common)  # the after tree may have more (new examples)
        out["same_verdicts"] = (None if before["capped"] or after["capped"] or not common
                                else all(before["verdicts"][k] == after["verdicts"][k] for k in common)
                                and len(common) == len(before["verdicts"]))
    targets: dict[str, Any] = {}
    if scenario.target_seconds is not None:
        targets[f"after <= {scenario.target_seconds:g} s"] = (not after["capped"]
                                                              and after["seconds"] <= scenario.target_seconds)
    if scenario.target_ratio is not None and out.get("ratio") is not None:
        targets[f"ratio >= {scenario.target_ratio:g}"] = out["ratio"] >= scenario.target_ratio
    if after["eval_share_max"] is not None:
        targets[f"eval share <= {EVAL_SHARE_TARGET:.0%}"] = after["eval_share_max"] <= EVAL_SHARE_TARGET
    targets["all passed"] = bool(after["verdicts"]) and all(v == "passed" for v in after["verdicts"].values())
    out["targets"] = targets
    return out


def _cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    return f"> {entry['seconds']:.0f}" if entry["capped"] else f"{entry['seconds']:.1f}"


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    cols = ["scenario", "before s", "after s", "ratio", "verdicts after", "same", "eval share after",
            "targets"]
    table = []
    for name, r in rows.items():
        after, before, cmp_ = r["after"], r.get("before"), r["compare"]
        ratio = cmp_.get("ratio")
        v = after["verdicts"]
        table.append([name, _cell(before), _cell(after),
                      "-" if ratio is None else (f">= x{ratio}" if cmp_["ratio_kind"].startswith("lower")
                                                 else f"x{ratio}"),
                      f"{sum(x == 'passed' for x in v.values())}/{len(v)} passed",
                      str(cmp_.get("same_verdicts", "-")),
                      "-" if after["eval_share_max"] is None else f"max {after['eval_share_max']:.0%}",
                      ", ".join(f"{k}: {'ok' if ok else 'NO'}" for k, ok in cmp_["targets"].items())])
    widths = [max(len(str(row[i])) for row in table + [cols]) for i in range(len(cols))]
    for row in [cols] + table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def warm_cache(tree: Tree, cifar: Path, work: Path) -> float:
    """Decode the JPEG archive into the .npy cache once, outside the timings (per tree's loader)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys; from rethink_checks.data import load; "
                    "d = load(sys.argv[1]); print(d.name, len(d.train_y), len(d.test_y))",
                    f"folder:{cifar}"], env=tree.env(), cwd=work, check=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=DEFAULT_ONLY,
                        help=f"scenarios, comma-separated, of: {', '.join(SCENARIOS)} (default {DEFAULT_ONLY})")
    parser.add_argument("--cap-seconds", type=float, default=600.0, help="wall-clock cap per scenario and tree")
    parser.add_argument("--before-ref", default="1e4fa47", help="git ref of the code before issue #10")
    parser.add_argument("--no-before", action="store_true", help="time the current tree only")
    parser.add_argument("--cifar", default=DEFAULT_CIFAR,
                        help="CIFAR-10 JPEG archive or folder (relative paths from the repository root)")
    parser.add_argument("--threads", type=int, default=None,
                        help="--rethink-threads for both trees (default: each tree's own default)")
    parser.add_argument("--checks", default=None,
                        help="--rethink-checks for every scenario (a quick check of this script; "
                        "not the issue's figures)")
    parser.add_argument("--before-raw", action="store_true",
                        help="the before tree reads CIFAR-10 as [0, 1] pixels (spec option ,raw); with "
                        "--before-ref HEAD this times raw pixels against the whitened default in one run")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, JSONs) and print it")
    parser.add_argument("--out", type=Path, default=RESULTS / "cpu_budget.json")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        parser.error(f"--only: unknown {unknown or names}; allowed: {', '.join(SCENARIOS)}")
    cifar = Path(args.cifar)
    cifar = (cifar if cifar.is_absolute() else REPO / cifar).resolve()
    scenarios = [SCENARIOS[n] for n in names]
    skipped = {}
    if not cifar.exists():
        for s in scenarios:
            if s.cifar:
                skipped[s.name] = f"no CIFAR-10 at {cifar} (--cifar)"
                print(f"skipping {s.name}: {skipped[s.name]}")
        scenarios = [s for s in scenarios if not s.cifar]

    work = Path(tempfile.mkdtemp(prefix="rethink-cpu-budget-"))
    after = Tree("after", REPO)
    after.make_shim(work)
    trees = [after]
    if not args.no_before:
        before = Tree("before", extract_before(args.before_ref, work / "before"),
                      ",raw" if args.before_raw else "")
        before.make_shim(work)
        trees = [before, after]
    warm_s = {t.label: round(warm_cache(t, cifar, work), 1) for t in trees} if any(s.cifar for s in scenarios) else {}

    load_before = os.getloadavg()
    started = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    for s in scenarios:
        print(f"-- {s.name}: {s.description}", flush=True)
        row = {t.label: run_one(s, t, cifar if s.cifar else None, args.cap_seconds, work, args.threads,
                          args.checks)
               for t in trees}
        row["compare"] = compare(s, row.get("before"), row["after"])
        rows[s.name] = row
    load_after = os.getloadavg()
    print_table(rows)
    report = {
        "benchmark": "cpu_budget", "machine": machine_info(), "cpu_count": os.cpu_count(),
        "before_ref": None if args.no_before else args.before_ref,
        "before_spec_options": None if args.no_before else before.spec_options,
        "before_commit": None if args.no_before else subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", args.before_ref], capture_output=True, text=True).stdout.strip(),
        "after_commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                                       capture_output=True, text=True).stdout.strip(),
        "after_dirty": bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                                           capture_output=True, text=True).stdout.strip()),
        "cap_seconds": args.cap_seconds, "threads": args.threads, "checks": args.checks,
        "cifar": str(cifar),
        "cache_warmup_seconds": warm_s,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "seconds": round(time.perf_counter() - started, 1),
        "skipped": skipped, "scenarios": rows,
    }
    print(f"load average (1, 5, 15 min) before {report['load_avg_before']}, after "
          f"{report['load_avg_after']}; {report['seconds']} s")
    write_json(report, args.out)
    if args.keep:
        print(f"logs and JSONs kept in {work}")
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
