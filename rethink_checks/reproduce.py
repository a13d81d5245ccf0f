"""Reproduce Table 1 and Figure 1 of Zhang et al. (ICLR 2017): one resumable command and a report.

Every run is one :func:`rethink_checks.training.fit` call with the paper's settings; each finished
run is saved as ``OUT/runs/<run-id>.json`` and skipped when the command is run again, so an
interrupted reproduction resumes where it stopped. ``OUT/report.md`` puts our numbers beside the
paper's. Run ``python -m rethink_checks.reproduce --help`` for the options.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shlex
import sys
import tarfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

# ---------------------------------------------------------------------------------------------
# The paper's numbers (PAPER.md: Table 1, Figure 1, and the public re-run quoted there)
# ---------------------------------------------------------------------------------------------

MODEL_NAMES = ("inception", "inception_nobn", "alexnet", "mlp3x512", "mlp1x512")
MODEL_LABELS = {"inception": "Inception", "inception_nobn": "Inception w/o BN",
                "alexnet": "AlexNet", "mlp3x512": "MLP 3x512", "mlp1x512": "MLP 1x512"}
#: Table 1 variants: name -> (random crop, weight decay, random labels).
#: Default training order: the rows the Figure 1 runs share first, then the regularized ones.
VARIANTS = {"plain": (False, False, False), "random_labels": (False, False, True),
            "wd": (False, True, False), "crop": (True, False, False),
            "crop_wd": (True, True, False)}
#: (model, variant) -> (train %, test %) as printed in the paper's Table 1.
PAPER_TABLE1: dict[tuple[str, str], tuple[float, float]] = {
    ("inception", "crop_wd"): (100.0, 89.05), ("inception", "crop"): (100.0, 89.31),
    ("inception", "wd"): (100.0, 86.03), ("inception", "plain"): (100.0, 85.75),
    ("inception", "random_labels"): (100.0, 9.78),
    ("inception_nobn", "wd"): (100.0, 83.00), ("inception_nobn", "plain"): (100.0, 82.00),
    ("inception_nobn", "random_labels"): (100.0, 10.12),
    ("alexnet", "crop_wd"): (99.90, 81.22), ("alexnet", "crop"): (99.82, 79.66),
    ("alexnet", "wd"): (100.0, 77.36), ("alexnet", "plain"): (100.0, 76.07),
    ("alexnet", "random_labels"): (99.82, 9.86),
    ("mlp3x512", "wd"): (100.0, 53.35), ("mlp3x512", "plain"): (100.0, 52.39),
    ("mlp3x512", "random_labels"): (100.0, 10.48),
    ("mlp1x512", "wd"): (99.80, 50.39), ("mlp1x512", "plain"): (100.0, 50.51),
    ("mlp1x512", "random_labels"): (99.34, 10.61),
}
FIGURE1A = ("true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")
#: Steps to reach training loss <= 0.01 in the public re-run quoted in PAPER.md (batch 128).
PUBLIC_RERUN_STEPS = {"true_labels": 5700, "shuffled_pixels": 6700, "gaussian": 9900,
                      "random_pixels": 13000, "random_labels": 17700}
DEFAULT_P = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
ROW_GROUPS = ("table1", "figure1a", "figure1bc")
#: The paper states no weight-decay value; 5e-4 is the common CIFAR-10 choice (and CheckSettings').
DEFAULT_WEIGHT_DECAY = 5e-4
DIFF_POINTS = 3.0          # flag Table 1 rows whose test accuracy differs by more than this
REPORT_RESERVE_S = 15.0    # seconds of the time budget kept back for writing the report
MIN_RUN_S = 5.0            # no run starts with less budget than this left (one epoch always runs)

# ---------------------------------------------------------------------------------------------
# What to run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One training run: a model, a randomization and the regularizers switched on."""

    model: str
    randomization: str = "true_labels"
    p: float = 0.0
    augment: bool = False
    weight_decay: float = 0.0

    def canonical(self) -> "RunSpec":
        """Partial labels at p=0 / p=1 are the true-label / random-label runs: share them."""
        if self.randomization == "partial_labels" and self.p in (0.0, 1.0):
            name = "true_labels" if self.p == 0.0 else "random_labels"
            return RunSpec(self.model, name, self.p, self.augment, self.weight_decay)
        if self.randomization == "true_labels":
            return RunSpec(self.model, "true_labels", 0.0, self.augment, self.weight_decay)
        if self.randomization == "random_labels":
            return RunSpec(self.model, "random_labels", 1.0, self.augment, self.weight_decay)
        return self

    def run_id(self, common: dict[str, Any]) -> str:
        """A readable name plus a hash of every setting that changes the result."""
        parts = [self.model, self.randomization]
        if self.randomization == "partial_labels":
            parts.append(f"p{self.p:g}")
        if self.augment:
            parts.append("crop")
        if self.weight_decay:
            parts.append(f"wd{self.weight_decay:g}")
        digest = hashlib.sha256(json.dumps([asdict(self), common], sort_keys=True).encode())
        return "-".join(parts) + "-" + digest.hexdigest()[:8]


@dataclass
class Plan:
    """The runs each part of the report needs, and the order to train them in."""

    table: dict[tuple[str, str], RunSpec] = field(default_factory=dict)
    figure1a: dict[str, RunSpec] = field(default_factory=dict)
    sweep: dict[float, RunSpec] = field(default_factory=dict)

    def order(self) -> list[RunSpec]:
        """Figure 1 first (the suite the GPU budget must cover), then Table 1; no duplicates."""
        seen: dict[RunSpec, None] = {}
        for spec in [*self.figure1a.values(), *self.sweep.values(), *self.table.values()]:
            seen.setdefault(spec, None)
        return list(seen)


def make_plan(rows: Sequence[str], table_rows: Sequence[str], models: Sequence[str],
              ps: Sequence[float], figure_model: str, weight_decay: float) -> Plan:
    """Turn the selected row groups, variants, models and p values into run specs."""
    plan = Plan()
    if "figure1a" in rows:
        for name in FIGURE1A:
            plan.figure1a[name] = RunSpec(figure_model, name).canonical()
    if "figure1bc" in rows:
        for p in sorted(ps):
            plan.sweep[p] = RunSpec(figure_model, "partial_labels", p).canonical()
    if "table1" in rows:
        for model in models:
            for variant in table_rows:
                if (model, variant) not in PAPER_TABLE1:
                    continue  # the paper has no such row (e.g. random crop for the MLPs)
                crop, wd, random = VARIANTS[variant]
                spec = RunSpec(model, "random_labels" if random else "true_labels",
                               augment=crop, weight_decay=weight_decay if wd else 0.0)
                plan.table[(model, variant)] = spec.canonical()
    return plan

# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _choices(allowed: Sequence[str], what: str) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"empty {what} list {text!r}; choose from "
                                             f"{', '.join(allowed)}")
        bad = [t for t in items if t not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(map(repr, bad))}; "
                                             f"choose from {', '.join(allowed)}")
        return list(dict.fromkeys(items))
    return parse


def _p_list(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"p values must be numbers in [0, 1], got {text!r}")
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"p values must be numbers in [0, 1], got {text!r}")
    return sorted(set(values))


def _number(kind: type, low: float, strict: bool = False) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}")
        if value < low or (strict and value == low):
            rel = ">" if strict else ">="
            raise argparse.ArgumentTypeError(f"must be {rel} {low:g}, got {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m rethink_checks.reproduce`` command line."""
    ap = argparse.ArgumentParser(
        prog="python -m rethink_checks.reproduce",
        description="Reproduce Table 1 and Figure 1 of Zhang et al. (ICLR 2017); resumable.")
    ap.add_argument("--data", required=True,
                    help="data spec (digits, cifar10:ROOT, folder:ROOT, mnist:ROOT), a folder "
                         "(cifar-10-batches-py or train/ + test/ class folders) or a .tar.gz "
                         "of one")
    ap.add_argument("--out", required=True, type=Path,
                    help="output folder (runs/, report.md, PNGs)")
    ap.add_argument("--models", type=_choices(MODEL_NAMES, "model"), default=list(MODEL_NAMES),
                    help="Table 1 models, in training order (default: all five)")
    ap.add_argument("--rows", type=_choices(ROW_GROUPS, "row group"), default=list(ROW_GROUPS),
                    help="parts to run: table1, figure1a, figure1bc (default: all)")
    ap.add_argument("--table-rows", type=_choices(tuple(VARIANTS), "Table 1 row"),
                    default=list(VARIANTS),
                    help="Table 1 variants, in training order: plain, random_labels, wd, crop, "
                         "crop_wd (default: all the paper has for each model)")
    ap.add_argument("--p", type=_p_list, default=list(DEFAULT_P),
                    help="label-corruption levels for Figure 1b/c (default 0,0.2,...,1.0)")
    ap.add_argument("--figure-model", choices=MODEL_NAMES, default="inception", metavar="MODEL",
                    help="model for Figure 1 (paper: inception)")
    ap.add_argument("--train-size", type=_number(int, 1), default=None,
                    help="seeded training subset (default: all)")
    ap.add_argument("--test-size", type=_number(int, 1), default=None,
                    help="seeded test subset (default: all)")
    ap.add_argument("--max-epochs", type=_number(int, 1), default=100,
                    help="epoch cap per run (default 100)")
    ap.add_argument("--target-accuracy", type=_number(float, 0.0, strict=True), default=1.0,
                    help="stop a run when full-train-set accuracy reaches this (default 1.0)")
    ap.add_argument("--weight-decay", type=_number(float, 0.0, strict=True),
                    default=DEFAULT_WEIGHT_DECAY,
                    help="value for the weight-decay rows; the paper gives none (default 5e-4)")
    ap.add_argument("--batch-size", type=_number(int, 1), default=128, help="default 128")
    ap.add_argument("--lr", type=_number(float, 0.0, strict=True), default=None,
                    help="override the paper's per-model learning rate")
    ap.add_argument("--lr-decay", type=_number(float, 0.0, strict=True), default=0.95,
                    help="learning-rate factor per epoch (default 0.95)")
    ap.add_argument("--preprocess", choices=("auto", "paper", "none"), default="auto",
                    help="paper = 28x28 centre crop + per-image whitening; auto = paper for "
                         "3x32x32 images (default)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--seed", type=_number(int, 0), default=0)
    ap.add_argument("--time-budget", type=_number(float, 0.0), default=None,
                    help="seconds for the whole command: no run starts after it, a running one "
                         "is stopped, the report is still written")
    ap.add_argument("--data-label", default=None, help="name of the data in the report")
    ap.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    return ap

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def _folder_spec(path: Path) -> str | None:
    """The ``data.load`` spec for a folder, looking one level down (archives add a top folder)."""
    for cand in (path, *sorted(p for p in path.iterdir() if p.is_dir())):
        if cand.name == "cifar-10-batches-py":
            return f"cifar10:{cand.parent}"
        if (cand / "cifar-10-batches-py").is_dir():
            return f"cifar10:{cand}"
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return f"folder:{cand}"
    return None


def resolve_data(data: str) -> tuple[str, str]:
    """(``data.load`` spec, label for the report) for a spec, a folder or a .tar(.gz) of one."""
    label = "CIFAR-10 (JPEG re-encoded)" if "cifar10-jpg" in data else None
    scheme = data.split(":", 1)[0]
    if data == "digits" or (":" in data and scheme in ("cifar10", "mnist", "folder")):
        return data, label or data
    path = Path(data)
    if path.is_file() and tarfile.is_tarfile(path):
        spec = f"folder:{path.resolve()}"  # data.load_image_folder reads and caches archives
    elif path.is_dir():
        spec = _folder_spec(path)
    else:
        raise FileNotFoundError(f"{data!r} is no file or folder, nor a spec "
                                "(digits, cifar10:ROOT, mnist:ROOT, folder:ROOT)")
    if spec is None:
        raise FileNotFoundError(f"{data!r}: found neither cifar-10-batches-py nor train/ and "
                                "test/ class folders in it (or one level down)")
    return spec, label or spec


def prepare_data(args: argparse.Namespace) -> tuple[Any, str, str, bool]:
    """(dataset, spec, label, paper preprocessing?): load, subset, preprocess CIFAR-like images."""
    from . import data as data_mod

    spec, label = resolve_data(args.data)
    dataset = data_mod.load(spec)
    if args.train_size is not None or args.test_size is not None:
        n_train = args.train_size or len(dataset.train_x)
        dataset = dataset.subset(min(n_train, len(dataset.train_x)), seed=args.seed,
                                 n_test=None if args.test_size is None
                                 else min(args.test_size, len(dataset.test_x)))
    paper = args.preprocess == "paper" or (
        args.preprocess == "auto" and tuple(dataset.input_shape) == (3, 32, 32))
    if paper:
        dataset = dataset.replace(train_x=data_mod.paper_preprocess(dataset.train_x),
                                  test_x=data_mod.paper_preprocess(dataset.test_x))
    return dataset, spec, args.data_label or label, paper

# ---------------------------------------------------------------------------------------------
# Running and resuming
# ---------------------------------------------------------------------------------------------


@dataclass
class Record:
    """One run's outcome: finished (maybe loaded from disk), cut by the budget, or skipped."""

    spec: RunSpec
    run_id: str
    status: str                      # "done" | "resumed" | "budget" | "skipped" | "failed"
    result: dict[str, Any] | None = None
    seconds: float = 0.0
    error: str = ""


def _load_record(path: Path, spec: RunSpec, run_id: str) -> Record | None:
    """A finished run saved by an earlier invocation, or None (missing, broken or cut short)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    result = doc.get("result") or {}
    if result.get("stop_reason") == "time_budget" or "fitted" not in result:
        return None  # interrupted by a budget: redo it
    return Record(spec, run_id, "resumed", result, float(doc.get("seconds", 0.0)))


def _save_record(path: Path, record: Record, common: dict[str, Any]) -> None:
    """Write atomically so an interruption never leaves a half-written run file."""
    doc = {"run_id": record.run_id, "spec": asdict(record.spec), "settings": common,
           "seconds": record.seconds, "result": record.result,
           "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def _num(x: Any, spec: str) -> str:
    return "-" if not isinstance(x, (int, float)) else format(x, spec)


def _progress(run_id: str, quiet: bool) -> Callable[[dict], None] | None:
    """A per-epoch progress line on stderr (the GPU script's log), or None when quiet."""
    if quiet:
        return None

    def show(row: dict) -> None:
        print(f"  [{run_id}] epoch {row.get('epoch')} loss {_num(row.get('train_loss'), '.4f')}"
              f" train {_num(row.get('train_accuracy'), '.4f')}"
              f" test {_num(row.get('test_accuracy'), '.4f')}"
              f" {_num(row.get('elapsed'), '.1f')}s", file=sys.stderr, flush=True)
    return show


def train_one(spec: RunSpec, dataset: Any, args: argparse.Namespace,
              max_seconds: float | None, run_id: str) -> dict[str, Any]:
    """One fit() call with the paper's settings for ``spec``; returns FitResult.to_dict()."""
    from . import models
    from .corruptions import CorruptionSpec
    from .training import FitConfig, fit

    corruption = None
    if spec.randomization != "true_labels":
        label_p = spec.p if spec.randomization in ("partial_labels", "random_labels") else None
        corruption = CorruptionSpec(spec.randomization, p=label_p, seed=args.seed)
    config = FitConfig(lr=args.lr, lr_decay=args.lr_decay, batch_size=args.batch_size,
                       weight_decay=spec.weight_decay, augment=spec.augment,
                       corruption=corruption, target_accuracy=args.target_accuracy,
                       max_epochs=args.max_epochs, max_seconds=max_seconds, seed=args.seed,
                       device=args.device, progress=_progress(run_id, args.quiet))
    shape, classes = tuple(dataset.input_shape), dataset.num_classes
    result = fit(lambda: models.build(spec.model, shape, classes), dataset, config=config)
    return result.to_dict()


def common_settings(args: argparse.Namespace, data_spec: str, paper_pre: bool) -> dict[str, Any]:
    """Settings shared by every run; part of each run id, so changing one retrains."""
    scheme, _, where = data_spec.rpartition(":")
    data_key = f"{scheme}:{Path(where).name}" if scheme else data_spec  # movable folders
    return {"data": data_key, "train_size": args.train_size, "test_size": args.test_size,
            "max_epochs": args.max_epochs, "target_accuracy": args.target_accuracy,
            "batch_size": args.batch_size, "lr": args.lr, "lr_decay": args.lr_decay,
            "paper_preprocess": paper_pre, "seed": args.seed}


def run_plan(plan: Plan, dataset: Any, args: argparse.Namespace, common: dict[str, Any],
             deadline: float | None) -> dict[RunSpec, Record]:
    """Train every planned run not already on disk, within the deadline."""
    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    records: dict[RunSpec, Record] = {}
    order = plan.order()
    for i, spec in enumerate(order, 1):
        run_id = spec.run_id(common)
        path = runs_dir / f"{run_id}.json"
        old = _load_record(path, spec, run_id)
        if old is not None:
            records[spec] = old
            continue
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left < MIN_RUN_S:
            records[spec] = Record(spec, run_id, "skipped")
            continue
        if not args.quiet:
            print(f"[{i}/{len(order)}] {run_id}", file=sys.stderr, flush=True)
        start = time.monotonic()
        try:
            result = train_one(spec, dataset, args, left, run_id)
        except Exception as exc:  # one failing run must not take the others down
            print(f"[{run_id}] failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            records[spec] = Record(spec, run_id, "failed", seconds=time.monotonic() - start,
                                   error=f"{type(exc).__name__}: {exc}")
            continue
        status = "budget" if result.get("stop_reason") == "time_budget" else "done"
        record = Record(spec, run_id, status, result, time.monotonic() - start)
        _save_record(path, record, common)
        records[spec] = record
    return records

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def hardware() -> dict[str, str]:
    """CPU model, core count, GPU name, torch and Python versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = "none"
    if torch.cuda.is_available():
        gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return {"cpu": f"{cpu} ({os.cpu_count()} logical cores)", "gpu": gpu,
            "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _cell(record: Record | None, key: str) -> Any:
    return None if record is None or record.result is None else record.result.get(key)


def _status(record: Record | None) -> str:
    if record is None:
        return "not run"
    if record.result is None:
        return record.status if not record.error else f"failed ({record.error[:60]})"
    reason = record.result.get("stop_reason", "?")
    return reason + (" (resumed)" if record.status == "resumed" else "")


def table1_rows(plan: Plan, records: dict[RunSpec, Record]) -> list[dict[str, Any]]:
    """Table 1 in the paper's order, ours beside the paper's (accuracies in %)."""
    rows = []
    for (model, variant), (p_train, p_test) in PAPER_TABLE1.items():
        if (model, variant) not in plan.table:
            continue
        rec = records.get(plan.table[(model, variant)])
        crop, wd, random = VARIANTS[variant]
        train, test = _cell(rec, "train_accuracy"), _cell(rec, "test_accuracy")
        rows.append({"model": MODEL_LABELS[model] + (", random labels" if random else ""),
                     "key": f"{model}/{variant}", "crop": crop, "wd": wd,
                     "paper_train": p_train, "paper_test": p_test,
                     "train": None if train is None else 100 * train,
                     "test": None if test is None else 100 * test,
                     "epochs": _cell(rec, "epochs"), "status": _status(rec),
                     "seconds": rec.seconds if rec else None})
    return rows


def sweep_rows(plan: Plan, records: dict[RunSpec, Record]) -> list[dict[str, Any]]:
    """Figure 1b/c rows: epochs to fit (absolute and relative to p=0) and test error per p."""
    base = records.get(plan.sweep.get(0.0)) if 0.0 in plan.sweep else None
    base_epochs = _cell(base, "epochs_to_fit")
    rows = []
    for p, spec in sorted(plan.sweep.items()):
        rec = records.get(spec)
        epochs = _cell(rec, "epochs_to_fit")
        test = _cell(rec, "test_accuracy")
        rows.append({"p": p, "epochs_to_fit": epochs, "steps_to_fit": _cell(rec, "steps_to_fit"),
                     "epochs": _cell(rec, "epochs"), "fitted": _cell(rec, "fitted"),
                     "relative_time": (epochs / base_epochs) if epochs and base_epochs else None,
                     "train_error": None if _cell(rec, "train_accuracy") is None
                     else 1 - _cell(rec, "train_accuracy"),
                     "test_error": None if test is None else 1 - test,
                     "status": _status(rec)})
    return rows


def _steps_to_loss(result: dict[str, Any] | None, level: float = 0.01) -> int | None:
    """First step count whose epoch-mean training loss is <= level (the public re-run's rule)."""
    curves = (result or {}).get("curves") or {}
    for step, loss in zip(curves.get("step", []), curves.get("train_loss", [])):
        if loss is not None and loss <= level:
            return int(step)
    return None


def figure1a_rows(plan: Plan, records: dict[RunSpec, Record]) -> list[dict[str, Any]]:
    """Steps to fit per randomization, relative to true labels, beside the public re-run."""
    true_rec = records.get(plan.figure1a.get("true_labels")) if plan.figure1a else None
    base = _cell(true_rec, "steps_to_fit")
    rows = []
    for name, spec in plan.figure1a.items():
        rec = records.get(spec)
        steps = _cell(rec, "steps_to_fit")
        public = PUBLIC_RERUN_STEPS[name]
        rows.append({"randomization": name, "fitted": _cell(rec, "fitted"),
                     "epochs_to_fit": _cell(rec, "epochs_to_fit"), "steps_to_fit": steps,
                     "steps_to_loss_0.01": _steps_to_loss(rec.result if rec else None),
                     "relative": steps / base if steps and base else None,
                     "public_steps": public,
                     "public_relative": public / PUBLIC_RERUN_STEPS["true_labels"],
                     "test_accuracy": _cell(rec, "test_accuracy"), "status": _status(rec)})
    return rows


def differences(t1: list[dict], f1a: list[dict], sweep: list[dict], records: dict[RunSpec, Record],
                scaled: bool, target: float) -> list[str]:
    """Plain statements of where our numbers depart from the paper's, derived from the numbers."""
    notes = []
    if scaled:
        notes.append("This is a scaled-down run (subset, other data or epoch cap): absolute "
                     "accuracies are not comparable to the paper; only the qualitative shape is.")
    for row in t1:
        if row["test"] is not None and abs(row["test"] - row["paper_test"]) > DIFF_POINTS:
            notes.append(f"Table 1 {row['model']} (crop={_yn(row['crop'])}, weight decay="
                         f"{_yn(row['wd'])}): test accuracy {row['test']:.2f}% vs the paper's "
                         f"{row['paper_test']:.2f}% "
                         f"({row['test'] - row['paper_test']:+.2f} points).")
        if row["train"] is not None and row["train"] < 100 * target - 1e-9:
            notes.append(f"Table 1 {row['model']} (crop={_yn(row['crop'])}, weight decay="
                         f"{_yn(row['wd'])}): reached only {row['train']:.2f}% training accuracy "
                         f"({row['status']}); the paper reports {row['paper_train']:.2f}%.")
    for row in f1a:
        if row["fitted"] is False:
            notes.append(f"Figure 1a {row['randomization']}: did not reach the target training "
                         f"accuracy ({row['status']}); the paper fits every randomization.")
    rel = {r["randomization"]: r["relative"] for r in f1a if r["relative"]}
    if len(rel) > 1:
        pairs = ", ".join(f"{name} {rel[name]:.2f}x (public {r['public_relative']:.2f}x)"
                          for r in f1a for name in [r["randomization"]]
                          if name in rel and name != "true_labels")
        notes.append(f"Steps to fit relative to true labels: {pairs}. Ours count steps to 100% "
                     "training accuracy, the public re-run steps to loss <= 0.01.")
        slowest = max(rel, key=rel.get)
        if slowest != "random_labels":
            notes.append(f"The slowest randomization to fit was {slowest}, not random labels "
                         "as in the public re-run.")
        for name in ("shuffled_pixels", "random_pixels", "gaussian"):
            if name in rel and rel[name] < 1.0:
                notes.append(f"{name} fitted faster than true labels ({rel[name]:.2f}x); in the "
                             "public re-run every randomization is slower than true labels.")
    if rel.get("random_labels", 2.0) <= 1.0:
        notes.append("Random labels did not take longer than true labels, unlike the paper.")
    errs = [(r["p"], r["test_error"]) for r in sweep if r["test_error"] is not None]
    for (p0, e0), (p1, e1) in zip(errs, errs[1:]):
        if e1 < e0 - 0.02:
            notes.append(f"Figure 1c: test error fell from {e0:.3f} at p={p0:g} to {e1:.3f} at "
                         f"p={p1:g}; the paper's rises monotonically.")
    for rec in records.values():
        if rec.status in ("skipped", "budget", "failed"):
            what = {"skipped": "not started (time budget spent)",
                    "budget": "stopped early by the time budget (partial numbers)",
                    "failed": f"failed: {rec.error}"}[rec.status]
            notes.append(f"Run {rec.run_id}: {what}.")
    if not notes:
        notes.append("No difference beyond the thresholds (test accuracy within "
                     f"{DIFF_POINTS:g} points, every run fitted, test error rising with p).")
    return notes


def setup_departures(args: argparse.Namespace, data_label: str) -> list[str]:
    """Where this run's setup departs from the paper's, from the settings (causes to weigh)."""
    notes = []
    if "JPEG" in data_label:
        notes.append("Data: JPEG re-encoded CIFAR-10 (quality about 75, slightly smoother than "
                     "the original pixels).")
    if args.figure_model != "inception":
        notes.append(f"Figure 1 uses {MODEL_LABELS[args.figure_model]}, not small Inception.")
    if args.batch_size != 128:
        notes.append(f"Batch size {args.batch_size} (reproductions of the paper use 128).")
    if args.lr is not None or args.lr_decay != 0.95:
        notes.append(f"Learning-rate schedule changed: lr {args.lr or 'per model'}, "
                     f"x{args.lr_decay:g} per epoch (paper: 0.1 / 0.01, x0.95).")
    notes.append("Stopping rule: 100% training accuracy or the epoch cap, for Table 1 too; the "
                 "paper does not say when its Table 1 numbers were taken.")
    notes.append("Not stated by the paper, chosen here: weight decay "
                 f"{args.weight_decay:g}; 'random crop' also flips horizontally; batch norm "
                 "without scale and shift (the paper's parameter count); on a GPU, bf16 autocast.")
    return notes


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def _fmt(x: Any, spec: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and spec:
        return format(x, spec)
    return str(x)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def part_seconds(plan: Plan, records: dict[RunSpec, Record]) -> dict[str, float]:
    """Seconds of training per report part, each shared run counted once, in the first part."""
    seen: set[RunSpec] = set()
    out = {}
    for name, specs in (("Figure 1a", plan.figure1a.values()), ("Figure 1b/c", plan.sweep.values()),
                        ("Table 1", plan.table.values())):
        new = [s for s in specs if s not in seen and s in records]
        seen.update(new)
        if specs:
            out[name] = sum(records[s].seconds for s in new)
    return out


def draw_figures(plan: Plan, records: dict[RunSpec, Record], sweep: list[dict],
                 out: Path, title: str) -> tuple[list[Path], str]:
    """Figure 1 PNGs via rethink_checks.plots; returns (paths, reason they are missing)."""
    from .results import FitResult

    runs = {name: FitResult.from_dict(records[spec].result) for name, spec in plan.figure1a.items()
            if spec in records and records[spec].result is not None}
    rows = [r for r in sweep if r["test_error"] is not None]
    if not runs and not rows:
        return [], "no finished Figure 1 runs"
    try:
        from . import plots
        return [Path(p) for p in plots.figure1(runs, rows, out, title=title)], ""
    except Exception as exc:  # plotting is optional: the numbers are in the tables
        return [], f"{type(exc).__name__}: {exc}"


def _header(argv: Sequence[str], hw: dict[str, str], records: dict[RunSpec, Record]) -> list[str]:
    """Title, the command line and the hardware."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    L = ["# Reproduction of Zhang et al. (ICLR 2017): Table 1 and Figure 1", "",
         f"Generated {now} by", "", "```",
         "python -m rethink_checks.reproduce " + " ".join(map(shlex.quote, argv)), "```", "",
         "## Hardware", "", f"- CPU: {hw['cpu']}", f"- GPU: {hw['gpu']}",
         f"- torch {hw['torch']}, Python {hw['python']}, {hw['platform']}"]
    devices = sorted({f"{r.result.get('device')} {r.result.get('device_name', '')}".strip()
                      for r in records.values() if r.result})
    if devices:
        L.append(f"- runs trained on: {', '.join(devices)}")
    return L + [""]


def _settings_section(args: argparse.Namespace, common: dict[str, Any], data_label: str,
                      dataset: Any) -> list[str]:
    """The data and every training setting, including the choices the paper leaves open."""
    pre = ("paper (28x28 centre crop, per-image whitening)" if common["paper_preprocess"]
           else "none")
    lr = args.lr if args.lr else "per model (0.1 Inception, 0.01 AlexNet and MLPs)"
    return ["## Data and settings", "",
            f"- data: {data_label}: {len(dataset.train_x)} training / {len(dataset.test_x)} "
            f"test images, input {tuple(dataset.input_shape)}, {dataset.num_classes} classes",
            f"- preprocessing: {pre}",
            f"- SGD momentum 0.9, batch {args.batch_size}, learning rate {lr}, "
            f"x{args.lr_decay:g} per epoch",
            "- stopping rule (every run, Table 1 included): stop when full-training-set "
            f"accuracy (eval mode) reaches {args.target_accuracy:g}, or after "
            f"{args.max_epochs} epochs; accuracies are those at the stop",
            f"- weight decay for the 'weight decay' rows: {args.weight_decay:g} (the paper "
            "states no value); random crop = FitConfig.augment (random crop with padding, "
            "plus horizontal flip)",
            "- randomizations: labels drawn once with the given seed (paper convention: the "
            "new label may equal the old one); test labels left true; gaussian noise with the "
            "training set's per-channel mean and std; shuffled pixels: one permutation for "
            "train and test alike",
            f"- seed {args.seed}; figure model: {args.figure_model}", ""]


def _table1_section(t1: list[dict[str, Any]]) -> list[str]:
    if not t1:
        return []
    header = ["model", "crop", "weight decay", "paper train", "paper test", "our train",
              "our test", "epochs", "stop", "seconds"]
    rows = [[r["model"], _yn(r["crop"]), _yn(r["wd"]), f"{r['paper_train']:.2f}",
             f"{r['paper_test']:.2f}", _fmt(r["train"], ".2f"), _fmt(r["test"], ".2f"),
             _fmt(r["epochs"]), r["status"], _fmt(r["seconds"], ".1f")] for r in t1]
    return ["## Table 1 (accuracy in %)", "", *_md_table(header, rows), ""]


def _figure1_section(f1a: list[dict], sweep: list[dict], figures: list[Path], why: str,
                     out: Path, model: str) -> list[str]:
    if not (f1a or sweep):
        return []
    L = [f"## Figure 1 ({MODEL_LABELS[model]})", ""]
    for path in figures:
        L += [f"![{path.stem}]({os.path.relpath(path, out)})", ""]
    if why:
        L += [f"Figures not drawn: {why}.", ""]
    if f1a:
        L += ["### (a) fitting each randomization", "",
              "Ours: steps until 100% training accuracy; the public re-run quoted in PAPER.md "
              "counts steps until training loss <= 0.01 (batch 128).", ""]
        header = ["randomization", "fitted", "epochs", "steps", "steps to loss<=0.01",
                  "x true labels", "public re-run steps", "public x true", "test acc %", "stop"]
        L += _md_table(header, [[r["randomization"], _fmt(r["fitted"]), _fmt(r["epochs_to_fit"]),
                                 _fmt(r["steps_to_fit"]), _fmt(r["steps_to_loss_0.01"]),
                                 _fmt(r["relative"], ".2f"), r["public_steps"],
                                 f"{r['public_relative']:.2f}", _pct(r["test_accuracy"]),
                                 r["status"]] for r in f1a])
        L.append("")
    if sweep:
        L += ["### (b, c) label corruption p", "",
              "Paper: time to fit grows with p (a small constant factor at p = 1); test error "
              "rises towards 0.9 (chance) while training error stays 0.", ""]
        header = ["p", "fitted", "epochs to fit", "x p=0", "train error", "test error", "stop"]
        L += _md_table(header, [[f"{r['p']:g}", _fmt(r["fitted"]), _fmt(r["epochs_to_fit"]),
                                 _fmt(r["relative_time"], ".2f"), _fmt(r["train_error"], ".4f"),
                                 _fmt(r["test_error"], ".4f"), r["status"]] for r in sweep])
        L.append("")
    return L


def _timing_section(records: dict[RunSpec, Record], parts: dict[str, float], total: float,
                    wall: float) -> list[str]:
    rows = [[rec.run_id, rec.status, _fmt(_cell(rec, "epochs")),
             _fmt(_cell(rec, "train_seconds"), ".1f"), f"{rec.seconds:.1f}"]
            for rec in records.values()]
    return ["## Time per run", "",
            *_md_table(["run", "status", "epochs", "train seconds", "wall seconds"], rows), "",
            "Time per part (a run shared by two parts counts in the first): "
            + ", ".join(f"{name} {sec:.1f} s" for name, sec in parts.items()) + ".", "",
            f"Total training time over all runs (including resumed ones): {total:.1f} s; "
            f"this invocation took {wall:.1f} s.", ""]


def write_report(plan: Plan, records: dict[RunSpec, Record], args: argparse.Namespace,
                 common: dict[str, Any], data_label: str, dataset: Any, argv: Sequence[str],
                 wall: float) -> Path:
    """OUT/report.md (+ report.json, PNGs): ours beside the paper's, hardware, settings, times."""
    hw = hardware()
    t1, f1a = table1_rows(plan, records), figure1a_rows(plan, records)
    sweep = sweep_rows(plan, records)
    figures, why = draw_figures(plan, records, sweep, args.out, MODEL_LABELS[args.figure_model])
    full = (args.train_size is None and len(dataset.train_x) == 50000
            and args.max_epochs >= 100 and "CIFAR" in data_label.upper())
    total = sum(rec.seconds for rec in records.values())
    parts = part_seconds(plan, records)
    L = _header(argv, hw, records) + _settings_section(args, common, data_label, dataset)
    L += _table1_section(t1)
    L += _figure1_section(f1a, sweep, figures, why, args.out, args.figure_model)
    L += _timing_section(records, parts, total, wall)
    L += ["## Differences from the paper", ""]
    L += [f"- {n}" for n in differences(t1, f1a, sweep, records, not full, args.target_accuracy)]
    L += ["", "Setup choices that may explain differences:", ""]
    L += [f"- {n}" for n in setup_departures(args, data_label)] + [""]
    path = args.out / "report.md"
    path.write_text("\n".join(L))
    summary = {"hardware": hw, "settings": common, "data": data_label, "table1": t1,
               "figure1a": f1a, "sweep": sweep, "total_seconds": total, "wall_seconds": wall,
               "part_seconds": parts,
               "runs": {r.run_id: {"status": r.status, "seconds": r.seconds, "error": r.error}
                        for r in records.values()}}
    (args.out / "report.json").write_text(json.dumps(summary, indent=1, default=str))
    return path

# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected reproduction, resuming from OUT/runs, and write OUT/report.md."""
    start = time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.figure_model not in MODEL_NAMES:  # pragma: no cover - argparse choices guard it
        parser.error(f"argument --figure-model: unknown model {args.figure_model!r}")
    deadline = None if args.time_budget is None else start + args.time_budget - REPORT_RESERVE_S
    args.out.mkdir(parents=True, exist_ok=True)
    if args.device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            parser.error(f"argument --device: {args.device!r} asked for, but torch "
                         f"{torch.__version__} sees no CUDA device (use --device cpu or auto)")
    try:
        dataset, data_spec, label, paper_pre = prepare_data(args)
    except (FileNotFoundError, ValueError) as exc:  # DataError is a ValueError
        parser.error(f"argument --data: {exc}")
    common = common_settings(args, data_spec, paper_pre)
    plan = make_plan(args.rows, args.table_rows, args.models, args.p, args.figure_model,
                     args.weight_decay)
    records = run_plan(plan, dataset, args, common, deadline)
    report = write_report(plan, records, args, common, label, dataset, argv,
                          time.monotonic() - start)
    print(f"report: {report}", file=sys.stderr)
    return 1 if any(r.status == "failed" for r in records.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
