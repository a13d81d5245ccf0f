"""What the reproduction trains, and training it resumably: run specs, the plan, one fit per run.

Every run is one :func:`rethink_checks.training.fit` call with the paper's settings. A finished
run is saved as ``OUT/runs/<run-id>.json``; the id ends in a hash of the run's spec and of the
settings that change its result (never the time budget, the device or the output folder), so a
later invocation with the same settings loads it instead of training it again.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .options import ReproduceOptions
from .paper import FIGURE1A, PAPER_TABLE1, VARIANTS

MIN_RUN_S = 5.0            # no run starts with less budget than this left (one epoch always runs)


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


def train_one(spec: RunSpec, dataset: Any, options: ReproduceOptions,
              max_seconds: float | None, run_id: str) -> dict[str, Any]:
    """One fit() call with the paper's settings for ``spec``; returns FitResult.to_dict()."""
    from .. import models
    from ..corruptions import CorruptionSpec
    from ..training import FitConfig, fit

    corruption = None
    if spec.randomization != "true_labels":
        label_p = spec.p if spec.randomization in ("partial_labels", "random_labels") else None
        corruption = CorruptionSpec(spec.randomization, p=label_p, seed=options.seed)
    config = FitConfig(lr=options.lr, lr_decay=options.lr_decay, batch_size=options.batch_size,
                       weight_decay=spec.weight_decay, augment=spec.augment,
                       corruption=corruption, target_accuracy=options.target_accuracy,
                       max_epochs=options.max_epochs, max_seconds=max_seconds, seed=options.seed,
                       device=options.device, progress=_progress(run_id, options.quiet))
    shape, classes = tuple(dataset.input_shape), dataset.num_classes
    result = fit(lambda: models.build(spec.model, shape, classes), dataset, config=config)
    return result.to_dict()


def common_settings(options: ReproduceOptions, data_spec: str, paper_pre: bool) -> dict[str, Any]:
    """Settings shared by every run; part of each run id, so changing one retrains."""
    scheme, _, where = data_spec.rpartition(":")
    data_key = f"{scheme}:{Path(where).name}" if scheme else data_spec  # movable folders
    return {"data": data_key, "train_size": options.train_size, "test_size": options.test_size,
            "max_epochs": options.max_epochs, "target_accuracy": options.target_accuracy,
            "batch_size": options.batch_size, "lr": options.lr, "lr_decay": options.lr_decay,
            "paper_preprocess": paper_pre, "seed": options.seed}


def run_plan(plan: Plan, dataset: Any, options: ReproduceOptions, common: dict[str, Any],
             deadline: float | None) -> dict[RunSpec, Record]:
    """Train every planned run not already on disk, within the deadline."""
    runs_dir = options.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    records: dict[RunSpec, Record] = {}
    order = plan.order()
    for i, spec in enumerate(order, 1):
        run_id = spec.run_id(common)
        path = runs_dir / f"{run_id}.json"
        old = _load_record(path, spec, run_id)
        if old is not None:
            records[spec] = old
            if not options.quiet:
                print(f"[{i}/{len(order)}] {run_id}: finished earlier, kept", file=sys.stderr,
                      flush=True)
            continue
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left < MIN_RUN_S:
            records[spec] = Record(spec, run_id, "skipped")
            continue
        if not options.quiet:
            print(f"[{i}/{len(order)}] {run_id}", file=sys.stderr, flush=True)
        start = time.monotonic()
        try:
            result = train_one(spec, dataset, options, left, run_id)
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

