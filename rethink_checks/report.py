"""Summary tables, the session JSON document and saved baselines (pytest-free).

Baselines work like pytest-benchmark's: ``save_baseline`` writes
``<root>/<machine_id>/<NNNN>_<name>.json``; ``compare_baseline`` matches items by node id
and applies ``--rethink-compare-fail`` style expressions (see :func:`parse_compare_fail`).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RethinkError
from .results import CheckResult

__all__ = [
    "LEGEND", "ReportError", "CompareFail", "format_table", "item_entry", "session_document",
    "write_json", "machine_info", "machine_id", "save_baseline", "find_baseline",
    "load_baseline", "parse_compare_fail", "compare_baseline", "compare", "format_comparison",
    "SCHEMA_VERSION",
]

SCHEMA_VERSION = 1
DEFAULT_ROOT = ".rethink"
VERDICTS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}

LEGEND = "\n".join([
    "legend: PASS criterion met, FAIL criterion missed, ERROR model or input unusable, SKIP not run",
    "  train, test  final train / test accuracy of the check's fit",
    "  epochs       epochs until train accuracy reached the check's threshold",
    "  key          slowdown: worst epochs-to-fit ratio, randomization / true labels",
    "               gain: test accuracy with regularizers minus without",
    "               err: test error at the lowest -> highest corruption p",
    "               n*: effective capacity; residual: Theorem 1 fit residual",
    "               ERROR rows: the start of the error message (the JSON has all of it)",
    "  s            seconds the check took (fits reused from other checks cost nothing)",
])


class ReportError(RethinkError, ValueError):
    """A baseline is missing, or a compare-fail expression is malformed."""


# ---------------------------------------------------------------- summary table

def _num(x: Any, spec: str = ".3f") -> str:
    if x is None or isinstance(x, str):
        return "-" if x is None else x
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return format(x, spec) if isinstance(x, float) else str(x)


def _key_metric(check: str, m: Mapping[str, Any]) -> str:
    if check == "slowdown" and m.get("slowdown.max") is not None:
        return f"slowdown {m['slowdown.max']:.2f}x"
    if check == "regularizers" and m.get("gain") is not None:
        return f"gain {m['gain']:+.3f}"
    if check == "partial_labels":
        errs = [(float(k.split("@", 1)[1]), v) for k, v in m.items()
                if k.startswith("test_error@") and v is not None]
        if errs:
            errs.sort()
            return f"err {errs[0][1]:.2f}->{errs[-1][1]:.2f}"
    if check == "capacity" and m.get("n_star") is not None:
        return f"n* {m['n_star']}"
    if check == "expressivity" and m.get("residual") is not None:
        return f"residual {m['residual']:.1e}"
    return ""


def _row_cells(row: Mapping[str, Any]) -> list[str]:
    m = row.get("metrics") or {}
    check = str(row.get("check", ""))
    train = m.get("train_accuracy", m.get("train_accuracy_without"))
    test = m.get("test_accuracy", m.get("test_accuracy_with"))
    epochs = m.get("epochs_to_fit", m.get("epochs_to_fit.true_labels"))
    seconds = row.get("seconds", m.get("check_seconds"))
    key = _key_metric(check, m)
    if row.get("outcome") == "error" and not key:  # no metrics: say what went wrong, briefly
        key = _shorten(str(row.get("message") or ""), 48)
    return [str(row.get("model", "")), check,
            VERDICTS.get(str(row.get("outcome", "")), str(row.get("outcome", "")).upper()),
            _num(train), _num(test), _num(epochs), key, _num(seconds, ".1f")]


def _shorten(text: str, width: int) -> str:
    """First line of ``text``, cut to ``width`` characters with an ellipsis."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[:width - 3] + "..."


def format_table(rows: Iterable[Mapping[str, Any]], legend: bool = True) -> str:
    """One line per model and check: verdict and key metrics, then the legend."""
    header = ["model", "check", "verdict", "train", "test", "epochs", "key", "s"]
    body = [_row_cells(r) for r in rows]
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    right = {3, 4, 5, 7}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), line(["-" * w for w in widths])] + [line(c) for c in body]
    if legend:
        out += ["", LEGEND]
    return "\n".join(out)


# ---------------------------------------------------------------- session document

def item_entry(nodeid: str, model: str, check: str, outcome: str,
               result: CheckResult | Mapping[str, Any] | None = None,
               message: str = "", seconds: float | None = None) -> dict[str, Any]:
    """One JSON entry for a check item: verdict, metrics, tables and per-run curves."""
    res = result.to_dict() if isinstance(result, CheckResult) else dict(result or {})
    runs = res.get("runs") or {}
    return {
        "nodeid": nodeid, "model": model, "check": check, "outcome": outcome,
        "criterion": res.get("criterion", ""),
        "message": message or res.get("message", ""),
        "seconds": seconds if seconds is not None else res.get("seconds"),
        "metrics": dict(res.get("metrics") or {}),
        "tables": dict(res.get("tables") or {}),
        "curves": {name: run.get("curves", {}) for name, run in runs.items()},
    }


def _normalize_item(item: Mapping[str, Any] | CheckResult) -> dict[str, Any]:
    if isinstance(item, CheckResult):
        return item_entry(item.check, "", item.check, "passed" if item.passed else "failed", item)
    item = dict(item)
    if "result" in item:
        result = item.pop("result")
        entry = item_entry(item.get("nodeid", ""), item.get("model", ""),
                           item.get("check", ""), item.get("outcome", ""), result,
                           item.get("message", ""), item.get("seconds"))
        return {**item, **entry}
    for key, default in (("nodeid", ""), ("model", ""), ("check", ""), ("outcome", ""),
                         ("metrics", {}), ("curves", {})):
        item.setdefault(key, default)
    return item


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Platform, CPU, GPU and library versions: what a measured number depends on."""
    info: dict[str, Any] = {
        "platform": platform.platform(), "system": platform.system(),
        "machine": platform.machine(), "python": platform.python_version(),
        "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
        "torch": None, "cuda": None, "gpu": None, "gpus": [],
    }
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return info
    info["torch"] = torch.__version__
    info["cuda"] = torch.version.cuda
    try:
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["gpu"] = info["gpus"][0] if info["gpus"] else None
    except Exception:  # noqa: BLE001 - a broken driver must not break the report
        pass
    return info


def _settings_dict(settings: Any) -> Any:
    if settings is None or isinstance(settings, Mapping):
        return dict(settings or {})
    if hasattr(settings, "to_dict"):
        return settings.to_dict()
    return repr(settings)


def session_document(items: Iterable[Mapping[str, Any] | CheckResult], settings: Any = None, *,
                     seed: int | None = None, data: str | None = None,
                     machine: Mapping[str, Any] | None = None,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The session's JSON: version, machine, settings, seed and one entry per item."""
    from . import __version__

    settings_d = _settings_dict(settings)
    if seed is None and isinstance(settings_d, Mapping):
        seed = settings_d.get("seed")
    doc = {
        "schema": SCHEMA_VERSION, "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": dict(machine) if machine is not None else machine_info(),
        "settings": settings_d, "seed": seed, "data": data,
        "items": [_normalize_item(i) for i in items],
    }
    doc["machine_id"] = machine_id(doc["machine"])
    if extra:
        doc.update(extra)
    return doc


def _strict(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become null, tuples lists, unknown objects strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "to_dict"):
        return _strict(value.to_dict())
    return str(value)


def write_json(doc: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``doc`` as strict JSON (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_strict(doc), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- baselines

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_id(info: Mapping[str, Any] | None = None) -> str:
    """Folder name for baselines: system, arch, CPU, GPU and torch version, slugged."""
    info = info if info is not None else machine_info()
    parts = [info.get("system") or "", info.get("machine") or "", info.get("cpu") or "",
             info.get("gpu") or "nogpu", f"torch{info.get('torch') or ''}"]
    return _slug("-".join(str(p) for p in parts))[:150] or "unknown"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STORED = re.compile(r"^(\d{4})_(.+)\.json$")


def _machine_dir(root: str | os.PathLike, machine: str | None) -> Path:
    return Path(root) / (machine or machine_id())


def _stored(folder: Path) -> list[tuple[int, str, Path]]:
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), m.group(2), p) for p in folder.iterdir()
             if (m := _STORED.match(p.name))]
    return sorted(found)


def save_baseline(doc: Mapping[str, Any], name: str, root: str | os.PathLike = DEFAULT_ROOT,
                  machine: str | None = None) -> Path:
    """Store ``doc`` as ``<root>/<machine>/<NNNN>_<name>.json`` (NNNN counts up)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ReportError(f"baseline name {name!r}: use letters, digits, '_', '.', '-' "
                          "(starting with a letter or digit)")
    folder = _machine_dir(root, machine or doc.get("machine_id"))
    number = max((n for n, _, _ in _stored(folder)), default=0) + 1
    return write_json(doc, folder / f"{number:04d}_{name}.json")


def find_baseline(name: str | None = None, root: str | os.PathLike = DEFAULT_ROOT,
                  machine: str | None = None) -> Path:
    """The stored baseline file: latest, by number (``0003``), full stem, name, or a path."""
    if name and (name.endswith(".json") or os.sep in name) and Path(name).is_file():
        return Path(name)
    folder = _machine_dir(root, machine)
    stored = _stored(folder)
    if name:
        stored = [s for s in stored if name in (f"{s[0]:04d}", f"{s[0]:04d}_{s[1]}", s[1])]
    if not stored:
        have = ", ".join(p.stem for _, _, p in _stored(folder)) or "none"
        what = f"baseline {name!r}" if name else "any baseline"
        raise ReportError(f"no {what} under {folder} (stored for this machine: {have}); "
                          "save one first with --rethink-save=NAME")
    return stored[-1][2]


def load_baseline(name: str | None = None, root: str | os.PathLike = DEFAULT_ROOT,
                  machine: str | None = None) -> dict[str, Any]:
    """Load a stored baseline (see :func:`find_baseline`); adds ``baseline_path``."""
    path = find_baseline(name, root, machine)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"baseline {path}: cannot read it ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ReportError(f"baseline {path}: not a rethink session document (no 'items' list)")
    doc["baseline_path"] = str(path)
    return doc


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


KEY_METRICS = ("train_accuracy", "test_accuracy", "epochs_to_fit", "slowdown.max", "gain",
               "test_accuracy_with", "test_accuracy_without")


def _as_float(x: Any) -> float | None:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)) and not (isinstance(x, float) and math.isnan(x)):
        return float(x)
    return None


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
            [(k, None) for k in KEY_METRICS]
        for metric, rule in wanted:
            cur = _as_float((item.get("metrics") or {}).get(metric))
            was = _as_float((old.get("metrics") or {}).get(metric))
            if cur is None or was is None:
                continue
            delta = cur - was
            row = {"nodeid": nodeid, "model": item.get("model", ""), "check": check,
                   "metric": metric, "baseline": was, "current": cur, "change": delta,
                   "change_pct": (delta / abs(was) * 100.0) if was else None,
                   "limit": rule.expr if rule else "", "failed": False}
            if rule is not None:
                worse = rule.worse_by(was, cur)
                if worse > rule.limit:
                    row["failed"] = True
                    unit = "%" if rule.relative else ""
                    failures.append(f"{nodeid}: {check}.{metric} went from {was:.6g} to "
                                    f"{cur:.6g} (worse by {worse:.4g}{unit} > {rule.limit:g}"
                                    f"{unit}; rule {rule.expr})")
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
    header = ["item", "metric", "baseline", "current", "change", "rule", ""]
    body = []
    for r in rows:
        pct = r.get("change_pct")
        change = f"{r['change']:+.4g}" + (f" ({pct:+.1f}%)" if pct is not None else "")
        body.append([str(r.get("nodeid", "")), str(r["metric"]), f"{r['baseline']:.4g}",
                     f"{r['current']:.4g}", change, str(r.get("limit", "")),
                     "FAIL" if r.get("failed") else ""])
    if not body:
        return "no metrics in common with the baseline"
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
             for cells in [header, ["-" * w for w in widths], *body]]
    return "\n".join(lines)
