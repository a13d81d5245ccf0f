"""The terminal summary table: one row per model and check, then the legend.

The table knows no check by name: each row's ``summary`` (a check's
:attr:`~rethink_checks.results.CheckResult.summary`, carried by its item entry) says what goes
in the train, test, epochs and key columns.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["LEGEND", "VERDICTS", "HEADER", "format_table", "format_key_metric", "row_cells"]

HEADER = ("model", "check", "verdict", "train", "test", "epochs", "key", "s")
VERDICTS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}

LEGEND = "\n".join([
    "legend: PASS criterion met, FAIL criterion missed, ERROR model or input unusable, SKIP not run",
    "  train, test  final train / test accuracy of the check's fit",
    "  epochs       epochs until train accuracy reached the check's threshold",
    "  key          slowdown: worst epochs-to-fit ratio, randomization / true labels",
    "               gain: test accuracy with regularizers minus without",
    "               err: test error at the lowest -> highest corruption p",
    "               n*: effective capacity; residual: Theorem 1 fit residual",
    "               auc: memorization, fit epoch as a detector of corrupted labels",
    "               ERROR rows: the start of the error message (the JSON has all of it)",
    "  a+-b         several seeds (--rethink-seeds): mean over seeds +- 95% half-width",
    "  s            seconds the check took (fits reused from other checks cost nothing)",
])


def _num(x: Any, spec: str = ".3f") -> str:
    if x is None or isinstance(x, str):
        return "-" if x is None else x
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return format(x, spec) if isinstance(x, float) else str(x)


def format_key_metric(entry: Mapping[str, Any]) -> str:
    """``label value`` of one key metric (see :func:`rethink_checks.results.key_metric`).

    A value the template cannot format (a stale or hand-written entry) is shown as is
    rather than breaking the summary.
    """
    label, value = str(entry.get("label", "")), entry.get("value")
    template = str(entry.get("format") or "{}")
    try:
        text = template.format(*value) if isinstance(value, (list, tuple)) else template.format(value)
        if entry.get("pm") is not None:  # several seeds: mean +- 95% half-width
            text += "+-" + template.format(entry["pm"])
    except (ValueError, TypeError, IndexError, KeyError):
        text = str(value)
    return f"{label} {text}".strip()


def _with_pm(summary: Mapping[str, Any], col: str, spec: str) -> str:
    """A summary column, as ``mean+-half`` when the row has several seeds' interval."""
    value, pm = summary.get(col), summary.get(f"{col}_pm")
    if pm is None or value is None:
        return _num(value, spec) if isinstance(value, float) else _num(value)
    return f"{format(value, spec)}+-{format(pm, spec)}"


def row_cells(row: Mapping[str, Any]) -> list[str]:
    """The cells of one entry's row under :data:`HEADER` (the terminal table and the HTML page)."""
    summary = row.get("summary") or {}
    key = ", ".join(format_key_metric(k) for k in summary.get("key") or ())
    if row.get("outcome") == "error" and not key:  # no metrics: say what went wrong, briefly
        key = _shorten(str(row.get("message") or ""), 48)
    outcome = str(row.get("outcome", ""))
    return [str(row.get("model", "")), str(row.get("check", "")),
            VERDICTS.get(outcome, outcome.upper()), _with_pm(summary, "train", ".3f"),
            _with_pm(summary, "test", ".3f"), _with_pm(summary, "epochs", ".1f"), key,
            _num(row.get("seconds"), ".1f")]


def _shorten(text: str, width: int) -> str:
    """First line of ``text``, cut to ``width`` characters with an ellipsis."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[:width - 3] + "..."


def format_table(rows: Iterable[Mapping[str, Any]], legend: bool = True) -> str:
    """One line per model and check: verdict and the row's ``summary``, then the legend.

    Rows are item entries (dicts with ``model``, ``check``, ``outcome``, ``summary`` and
    optionally ``seconds`` and ``message``), e.g. the session document's items.
    """
    header = list(HEADER)
    body = [row_cells(r) for r in rows]
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    right = {3, 4, 5, 7}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), line(["-" * w for w in widths])] + [line(c) for c in body]
    if legend:
        out += ["", LEGEND]
    return "\n".join(out)
