"""Saved baselines and the comparison of a session with one (pytest-benchmark style).

:class:`BaselineStore` owns the on-disk layout, ``<root>/<machine_id>/<NNNN>_<name>.json``
(``root`` is ``.rethink`` by default, NNNN counts up per machine); ``save_baseline``,
``find_baseline`` and ``load_baseline`` are one-call shorthands for it. ``compare_baseline``
matches items by node id and applies ``--rethink-compare-fail`` style rules
(see :func:`parse_compare_fail`). With several seeds (``--rethink-seeds``) a rule is
noise-aware: it fails only when the worsening exceeds its limit AND the difference of the
means exceeds the seeds' 95% noise band, ``t * sqrt(se_cur^2 + se_base^2)`` (Welch, see
:func:`rethink_checks.stats.welch_noise`; ``se = <metric>.std / sqrt(n)``). Single-seed
sides carry no noise, so two single-seed sessions compare as plain numbers.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ..checks.registry import compared_metrics
from ..errors import RethinkError
from ..stats import welch_noise
from .document import machine_id, write_json

__all__ = ["DEFAULT_ROOT", "ReportError", "BaselineStore", "StoredBaseline", "save_baseline",
           "find_baseline", "load_baseline", "CompareFail", "metric_direction",
           "parse_compare_fail", "compare_baseline", "compare", "format_comparison", "KEY_METRICS"]

DEFAULT_ROOT = ".rethink"


class ReportError(RethinkError, ValueError):
    """A baseline is missing, or a compare-fail expression is malformed."""


# ---------------------------------------------------------------- storage

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STORED = re.compile(r"^(\d{4})_(.+)\.json$")


class StoredBaseline(NamedTuple):
    """One saved baseline file: its number, its name and its path."""

    number: int
    name: str
    path: Path


class BaselineStore:
    """The baselines under ``root``: one folder per machine id, numbered JSON files in it."""

    def __init__(self, root: str | os.PathLike = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"BaselineStore({str(self.root)!r})"

    def folder(self, machine: str | None = None) -> Path:
        """The folder of ``machine`` (default: this machine's :func:`machine_id`)."""
        return self.root / (machine or machine_id())

    def list(self, machine: str | None = None) -> list[StoredBaseline]:
        """The baselines stored for ``machine``, oldest (lowest number) first."""
        folder = self.folder(machine)
        if not folder.is_dir():
            return []
        found = [StoredBaseline(int(m.group(1)), m.group(2), p) for p in folder.iterdir()
                 if (m := _STORED.match(p.name))]
        return sorted(found)

    def save(self, doc: Mapping[str, Any], name: str, machine: str | None = None) -> Path:
        """Store ``doc`` as ``<root>/<machine>/<NNNN>_<name>.json`` (NNNN counts up).

        ``machine`` defaults to the document's ``machine_id``, then to this machine's.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise ReportError(f"baseline name {name!r}: use letters, digits, '_', '.', '-' "
                              "(starting with a letter or digit)")
        machine = machine or doc.get("machine_id")
        number = max((s.number for s in self.list(machine)), default=0) + 1
        return write_json(doc, self.folder(machine) / f"{number:04d}_{name}.json")

    def find(self, name: str | None = None, machine: str | None = None) -> Path:
        """The stored baseline file: latest, by number (``0003``), full stem, name, or a path."""
        if name and (name.endswith(".json") or os.sep in name) and Path(name).is_file():
            return Path(name)
        stored = self.list(machine)
        if name:
            stored = [s for s in stored
                      if name in (f"{s.number:04d}", f"{s.number:04d}_{s.name}", s.name)]
        if not stored:
            have = ", ".join(s.path.stem for s in self.list(machine)) or "none"
            what = f"baseline {name!r}" if name else "any baseline"
            raise ReportError(f"no {what} under {self.folder(machine)} (stored for this machine: "
                              f"{have}); save one first with --rethink-save=NAME")
        return stored[-1].path

    def load(self, name: str | None = None, machine: str | None = None) -> dict[str, Any]:
        """Load a stored baseline (see :meth:`find`); adds ``baseline_path``."""
        path = self.find(name, machine)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReportError(f"baseline {path}: cannot read it ({exc})") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
            raise ReportError(f"baseline {path}: not a rethink session document (no 'items' list)")
        doc["baseline_path"] = str(path)
        return doc


def save_baseline(doc: Mapping[str, Any], name: str, root: str | os.PathLike = DEFAULT_ROOT,
                  machine: str | None = None) -> Path:
    """``BaselineStore(root).save(doc, name, machine)``."""
    return BaselineStore(root).save(doc, name, machine)


def find_baseline(name: str | None = None, root: str | os.PathLike = DEFAULT_ROOT,
                  machine: str | None = None) -> Path:
    """``BaselineStore(root).find(name, machine)``."""
    return BaselineStore(root).find(name, machine)


def load_baseline(name: str | None = None, root: str | os.PathLike = DEFAULT_ROOT,
                  machine: str | None = None) -> dict[str, Any]:
    """``BaselineStore(root).load(name, machine)``."""
    return BaselineStore(root).load(name, machine)


# ---------------------------------------------------------------- compare

_LARGER_WORSE = ("epochs", "steps", "seconds", "slowdown", "test_error", "relative_time")
_SMALLER_WORSE = ("accuracy", "fitted", "memorized", "capacity")
_EXPR = re.compile(r"^(?P<check>[A-Za-z_][A-Za-z0-9_]*)\.(?P<metric>[^:\s]+):"
                   r"(?P<sign>[+-]?)(?P<value>\d+(?:\.\d*)?|\.\d+)(?P<pct>%?)$")


@dataclass(frozen=True)
class CompareFail:
    """A parsed ``CHECK.METRIC:[+|-]LIMIT[%]`` expression."""

    expr: str
    check: str
    metric: str
    limit: float
    relative: bool
    direction: str  # "+": larger is worse, "-": smaller is worse, "": either way

    def worse_by(self, baseline: float, current: float) -> float:
        """How much worse ``current`` is than ``baseline`` (in the limit's units)."""
        delta = current - baseline
        worse = delta if self.direction == "+" else -delta if self.direction == "-" else abs(delta)
        if not self.relative:
            return worse
        if baseline == 0:
            return 0.0 if worse <= 0 else math.inf
        return worse / abs(baseline) * 100.0


def metric_direction(metric: str) -> str:
    """``+`` if larger is worse (epochs, steps, seconds, slowdown, test error), ``-`` if
    smaller is worse (accuracies, fitted flags, capacity), ``""`` otherwise."""
    base = metric.split("@", 1)[0].lower()
    if any(w in base for w in _LARGER_WORSE):
        return "+"
    if any(w in base for w in _SMALLER_WORSE):
        return "-"
    return ""


def parse_compare_fail(expr: str) -> CompareFail:
    """Parse ``random_labels.epochs_to_fit:25%`` (relative) or ``true_labels.test_accuracy:0.02``.

    A leading ``+``/``-`` on the limit says which change is bad; without it the metric's
    natural direction is used (see :func:`metric_direction`).
    """
    m = _EXPR.match(expr.strip()) if isinstance(expr, str) else None
    if not m:
        raise ReportError(
            f"compare-fail expression {expr!r}: expected CHECK.METRIC:LIMIT or "
            "CHECK.METRIC:LIMIT% with an optional +/- before LIMIT, e.g. "
            "'random_labels.epochs_to_fit:25%' or 'true_labels.test_accuracy:0.02'")
    direction = m.group("sign") or metric_direction(m.group("metric"))
    return CompareFail(expr.strip(), m.group("check"), m.group("metric"),
                       float(m.group("value")), bool(m.group("pct")), direction)


#: the metrics compared without explicit rules: every registered check's ``Check.metrics``
#: (train_accuracy, test_accuracy, epochs_to_fit, slowdown.max, gain, test_accuracy_with/without)
KEY_METRICS = compared_metrics()


def _as_float(x: Any) -> float | None:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)) and not (isinstance(x, float) and math.isnan(x)):
        return float(x)
    return None


def _spread(metrics: Mapping[str, Any], metric: str) -> tuple[float | None, int]:
    """(std over seeds, number of seeds) of ``metric`` in an item's metrics; (None, 1) for one."""
    std = _as_float(metrics.get(f"{metric}.std"))
    n = metrics.get(f"{metric}.n", metrics.get("seeds", 1))
    n = int(n) if isinstance(n, (int, float)) and not isinstance(n, bool) else 1
    return std, n


def _index(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(i.get("nodeid") or f"{i.get('model')}::{i.get('check')}"): i
            for i in doc.get("items", [])}


def compare_baseline(current: Mapping[str, Any], baseline: Mapping[str, Any],
                     exprs: Iterable[str | CompareFail] = ()) -> tuple[list[dict], list[str]]:
    """Rows (item, metric, baseline, current, change, limit, failed) and failure messages.

    Without expressions the key metrics of every shared item are listed and nothing fails.
    """
    parsed = [e if isinstance(e, CompareFail) else parse_compare_fail(e) for e in exprs]
    base_items = _index(baseline)
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for nodeid, item in _index(current).items():
        old = base_items.get(nodeid)
        if old is None:
            continue
        check = item.get("check", "")
        wanted = [(e.metric, e) for e in parsed if e.check == check] if parsed else \
            [(k, None) for k in compared_metrics()]
        for metric, rule in wanted:
            cur = _as_float((item.get("metrics") or {}).get(metric))
            was = _as_float((old.get("metrics") or {}).get(metric))
            if cur is None or was is None:
                continue
            delta = cur - was
            noise = welch_noise(*_spread(item.get("metrics") or {}, metric),
                                *_spread(old.get("metrics") or {}, metric))
            row = {"nodeid": nodeid, "model": item.get("model", ""), "check": check,
                   "metric": metric, "baseline": was, "current": cur, "change": delta,
                   "change_pct": (delta / abs(was) * 100.0) if was else None,
                   "noise": noise, "limit": rule.expr if rule else "", "failed": False}
            if rule is not None:
                worse = rule.worse_by(was, cur)
                unit = "%" if rule.relative else ""
                if worse > rule.limit and abs(delta) > noise:
                    row["failed"] = True
                    band = f"; beyond the seed noise +-{noise:.4g}" if noise else ""
                    failures.append(f"{nodeid}: {check}.{metric} went from {was:.6g} to "
                                    f"{cur:.6g} (worse by {worse:.4g}{unit} > {rule.limit:g}"
                                    f"{unit}{band}; rule {rule.expr})")
                elif worse > rule.limit:
                    row["within_noise"] = True
            rows.append(row)
    failures += _unmatched(parsed, current, rows)
    return rows, failures


def _unmatched(rules: list[CompareFail], current: Mapping[str, Any], rows: list[dict]) -> list[str]:
    """Rules naming a metric that the current items of their check do not have (a typo)."""
    used = {(r["check"], r["metric"]) for r in rows}
    out = []
    for rule in rules:
        items = [i for i in current.get("items", []) if i.get("check") == rule.check]
        known = sorted({k for i in items for k in (i.get("metrics") or {})})
        if (rule.check, rule.metric) in used or not known or rule.metric in known:
            continue
        out.append(f"rule {rule.expr}: check {rule.check} has no metric {rule.metric!r} "
                   f"(its metrics: {', '.join(known)})")
    return out


compare = compare_baseline


def format_comparison(rows: Iterable[Mapping[str, Any]]) -> str:
    """A table of compared metrics: baseline, current, change, rule, verdict."""
    header = ["item", "metric", "baseline", "current", "change", "noise", "rule", ""]
    body = []
    for r in rows:
        pct = r.get("change_pct")
        change = f"{r['change']:+.4g}" + (f" ({pct:+.1f}%)" if pct is not None else "")
        noise = f"+-{r['noise']:.3g}" if r.get("noise") else ""
        verdict = "FAIL" if r.get("failed") else "within noise" if r.get("within_noise") else ""
        body.append([str(r.get("nodeid", "")), str(r["metric"]), f"{r['baseline']:.4g}",
                     f"{r['current']:.4g}", change, noise, str(r.get("limit", "")), verdict])
    if not body:
        return "no metrics in common with the baseline"
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
             for cells in [header, ["-" * w for w in widths], *body]]
    return "\n".join(lines)
