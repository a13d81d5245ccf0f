"""The reproduction's HTML page: its runs as report entries, drawn by :mod:`..report.html`.

Each finished run becomes an item entry (its curves, metrics and settings; the Figure 1a runs
under their randomization's name so they share one chart, Figure 1b/c from the sweep rows),
Table 1 and the differences from the paper become extra tables, and the hardware is the
environment: ``OUT/report.html`` holds everything ``report.md`` and the PNGs do, in one file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .paper import MODEL_LABELS
from .runs import Plan, Record, RunSpec

TABLE1_HEADER = ("model", "crop", "weight decay", "paper train %", "paper test %", "our train %",
                 "our test %", "epochs", "stop", "seconds")


def _entry(rec: Record, check: str, fit: str, target: float) -> dict[str, Any]:
    res = rec.result or {}
    fitted = bool(res.get("fitted"))
    outcome = "error" if rec.status == "failed" else "passed" if fitted else "failed"
    metrics = {k: res.get(k) for k in ("fitted", "train_accuracy", "test_accuracy", "epochs",
                                       "epochs_to_fit", "steps_to_fit", "stop_reason",
                                       "train_seconds", "device_name") if k in res}
    return {"nodeid": rec.run_id, "model": MODEL_LABELS.get(rec.spec.model, rec.spec.model),
            "check": check, "outcome": outcome, "seconds": rec.seconds,
            "criterion": f"training accuracy (eval mode, whole training set) reaches {target:g}",
            "message": rec.error or f"{rec.status}: stopped by {res.get('stop_reason', '?')}",
            "metrics": metrics, "tables": {}, "curves": {fit: res["curves"]} if res.get("curves") else {},
            "summary": {"train": res.get("train_accuracy"), "test": res.get("test_accuracy"),
                        "epochs": res.get("epochs_to_fit")},
            "settings": res.get("settings")}


def entries(plan: Plan, records: dict[RunSpec, Record], sweep: list[dict[str, Any]],
            target: float) -> list[dict[str, Any]]:
    """One entry per finished run: Figure 1a's by randomization, then Table 1's, then the sweep."""
    out, seen = [], set()
    for name, spec in plan.figure1a.items():
        if spec in records and records[spec].result is not None:
            out.append(_entry(records[spec], name, name, target))
            seen.add(spec)
    for (model, variant), spec in plan.table.items():
        if spec in records and spec not in seen and records[spec].result is not None:
            out.append(_entry(records[spec], variant, f"{model}/{variant}", target))
            seen.add(spec)
    for p, spec in sorted(plan.sweep.items()):
        if spec in records and spec not in seen and records[spec].result is not None:
            out.append(_entry(records[spec], f"p={p:g}", f"p={p:g}", target))
    if sweep:
        label = MODEL_LABELS.get(next(iter(plan.sweep.values())).model, "")
        out.append({"nodeid": "figure1bc", "model": label, "check": "partial_labels",
                    "outcome": "passed", "criterion": "Figure 1b/c: time to fit and test error "
                    "against the label corruption p", "message": "", "metrics": {},
                    "tables": {"sweep": sweep}, "curves": {}, "summary": {}})
    return out


def write_page(path: Path, doc: dict[str, Any], t1: list[dict[str, Any]],
               notes: Sequence[str]) -> Path:
    """``report.html`` from the reproduction's document, Table 1 and its differences."""
    from ..report import write_html

    rows = [[r["model"], r["crop"], r["wd"], r["paper_train"], r["paper_test"], r["train"],
             r["test"], r["epochs"], r["status"], r["seconds"]] for r in t1]
    tables = {"Table 1 (accuracy in %)": (TABLE1_HEADER, rows)} if rows else {}
    tables["Differences from the paper"] = (("note",), [[n] for n in notes])
    return write_html(doc, path, title="Reproduction of Zhang et al. (ICLR 2017)", tables=tables)
