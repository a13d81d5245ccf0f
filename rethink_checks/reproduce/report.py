"""The reproduction's report: our numbers beside the paper's, the hardware, settings and times.

Writes ``OUT/report.md``, ``OUT/report.json``, ``OUT/report.html`` (one self-contained page,
:mod:`.page`) and the Figure 1 PNGs from the finished runs; the
"Differences from the paper" section is derived from the numbers, not written by hand.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
from pathlib import Path
from typing import Any, Sequence

from .options import ReproduceOptions
from .paper import MODEL_LABELS, PAPER_TABLE1, PUBLIC_RERUN_STEPS, VARIANTS
from .runs import Plan, Record, RunSpec

DIFF_POINTS = 3.0          # flag Table 1 rows whose test accuracy differs by more than this


def hardware() -> dict[str, str]:
    """CPU model, core count, GPU name, torch and Python versions (from report.machine_info)."""
    from ..report import machine_info

    info = machine_info()
    return {"cpu": f"{info['cpu']} ({info['cpu_count']} logical cores)",
            "gpu": ", ".join(info["gpus"]) or "none", "torch": info["torch"],
            "python": info["python"], "platform": info["platform"]}


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


def setup_departures(options: ReproduceOptions, data_label: str) -> list[str]:
    """Where this run's setup departs from the paper's, from the settings (causes to weigh)."""
    notes = []
    if "JPEG" in data_label:
        notes.append("Data: JPEG re-encoded CIFAR-10 (quality about 75, slightly smoother than "
                     "the original pixels).")
    if options.figure_model != "inception":
        notes.append(f"Figure 1 uses {MODEL_LABELS[options.figure_model]}, not small Inception.")
    if options.batch_size != 128:
        notes.append(f"Batch size {options.batch_size} (reproductions of the paper use 128).")
    if options.lr is not None or options.lr_decay != 0.95:
        notes.append(f"Learning-rate schedule changed: lr {options.lr or 'per model'}, "
                     f"x{options.lr_decay:g} per 391 steps (paper: 0.1 / 0.01, x0.95 per epoch of 391 steps).")
    notes.append("Stopping rule: 100% training accuracy or the epoch cap, for Table 1 too; the "
                 "paper does not say when its Table 1 numbers were taken.")
    notes.append("Not stated by the paper, chosen here: weight decay "
                 f"{options.weight_decay:g}; 'random crop' also flips horizontally; batch norm "
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
    from ..results import FitResult

    runs = {name: FitResult.from_dict(records[spec].result) for name, spec in plan.figure1a.items()
            if spec in records and records[spec].result is not None}
    rows = [r for r in sweep if r["test_error"] is not None]
    if not runs and not rows:
        return [], "no finished Figure 1 runs"
    try:
        from .. import plots
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


def _settings_section(options: ReproduceOptions, common: dict[str, Any], data_label: str,
                      dataset: Any) -> list[str]:
    """The data and every training setting, including the choices the paper leaves open."""
    pre = ("paper (28x28 centre crop, per-image whitening)" if common["paper_preprocess"]
           else "none added to the data as loaded")
    lr = options.lr if options.lr else "per model (0.1 Inception, 0.01 AlexNet and MLPs)"
    return ["## Data and settings", "",
            f"- data: {data_label}: {len(dataset.train_x)} training / {len(dataset.test_x)} "
            f"test images, input {tuple(dataset.input_shape)}, {dataset.num_classes} classes",
            f"- preprocessing: {pre}",
            f"- SGD momentum 0.9, batch {options.batch_size}, learning rate {lr}, "
            f"x{options.lr_decay:g} per 391 steps",
            "- stopping rule (every run, Table 1 included): stop when full-training-set "
            f"accuracy (eval mode) reaches {options.target_accuracy:g}, or after "
            f"{options.max_epochs} epochs; accuracies are those at the stop",
            f"- weight decay for the 'weight decay' rows: {options.weight_decay:g} (the paper "
            "states no value); random crop = FitConfig.augment (random crop with padding, "
            "plus horizontal flip)",
            "- randomizations: labels drawn once with the given seed (paper convention: the "
            "new label may equal the old one); test labels left true; gaussian noise with the "
            "training set's per-channel mean and std; shuffled pixels: one permutation for "
            "train and test alike",
            f"- seed {options.seed}; figure model: {options.figure_model}",
            *_fit_defaults_note(dataset), ""]


def _fit_defaults_note(dataset: Any) -> list[str]:
    """Say that the data's own training defaults (e.g. the digits') were not used, if it has any."""
    defaults = getattr(dataset, "fit_defaults", None)
    if not defaults:
        return []
    given = ", ".join(f"{k}={v}" for k, v in sorted(defaults.items()))
    return [f"- the data's own fit defaults ({given}) are not used: every run trains with "
            "the schedule above"]


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


def _write_page(plan: Plan, records: dict[RunSpec, Record], options: ReproduceOptions,
                sweep: list[dict], t1: list[dict], notes: list[str], common: dict[str, Any],
                data_label: str) -> Path:
    """OUT/report.html: the same report as one self-contained page (:mod:`.page`)."""
    from ..report import session_document
    from .page import entries, write_page

    doc = session_document(entries(plan, records, sweep, options.target_accuracy), common,
                           seed=options.seed, data=data_label, extra={"status": "finished"})
    return write_page(options.out / "report.html", doc, t1, notes)


def write_report(plan: Plan, records: dict[RunSpec, Record], options: ReproduceOptions,
                 common: dict[str, Any], data_label: str, dataset: Any, wall: float) -> Path:
    """OUT/report.md (+ report.json, report.html, PNGs): ours beside the paper's, hardware,
    settings, times."""
    hw = hardware()
    t1, f1a = table1_rows(plan, records), figure1a_rows(plan, records)
    sweep = sweep_rows(plan, records)
    figures, why = draw_figures(plan, records, sweep, options.out, MODEL_LABELS[options.figure_model])
    full = (options.train_size is None and len(dataset.train_x) == 50000
            and options.max_epochs >= 100 and "CIFAR" in data_label.upper())
    total = sum(rec.seconds for rec in records.values())
    parts = part_seconds(plan, records)
    L = _header(options.argv, hw, records) + _settings_section(options, common, data_label, dataset)
    L += _table1_section(t1)
    L += _figure1_section(f1a, sweep, figures, why, options.out, options.figure_model)
    L += _timing_section(records, parts, total, wall)
    notes = differences(t1, f1a, sweep, records, not full, options.target_accuracy)
    departures = setup_departures(options, data_label)
    L += ["## Differences from the paper", ""] + [f"- {n}" for n in notes]
    L += ["", "Setup choices that may explain differences:", ""]
    L += [f"- {n}" for n in departures] + [""]
    path = options.out / "report.md"
    path.write_text("\n".join(L))
    _write_page(plan, records, options, sweep, t1, [*notes, *departures], common, data_label)
    summary = {"hardware": hw, "settings": common, "data": data_label, "table1": t1,
               "figure1a": f1a, "sweep": sweep, "total_seconds": total, "wall_seconds": wall,
               "part_seconds": parts,
               "runs": {r.run_id: {"status": r.status, "seconds": r.seconds, "error": r.error}
                        for r in records.values()}}
    (options.out / "report.json").write_text(json.dumps(summary, indent=1, default=str))
    return path

