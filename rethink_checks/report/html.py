"""The session as one self-contained HTML page: verdicts, curves, settings, environment.

:func:`html_page` turns a session document (:func:`.document.session_document`, the same dict
the JSON holds) into a page with no external resource: styles inline, charts as SVG data
URIs (:mod:`.svg`), no script. Every string that comes from a run (node ids, model names,
messages, settings) goes through :func:`html.escape`. Sections: the verdict table, Figure 1a
per model (training loss and accuracy against steps, true labels beside every
randomization), the slowdown ratios, Figure 1b/c where ``partial_labels`` ran, the
memorization AUC and the suspects grid, one block per item (criterion, message, metrics
with seed intervals, its fits' curves, the settings it ran) and the environment.
"""
from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from .svg import data_uri, line_chart
from .summary import LEGEND
from .table import HEADER, row_cells

__all__ = ["html_page", "write_html", "figure1a_runs"]

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.PASS{color:#137333;font-weight:bold}
.FAIL,.ERROR{color:#b3261e;font-weight:bold}.SKIP{color:#777}pre{white-space:pre-wrap;
background:#f8f8f8;padding:.5em}img{margin:4px;border:1px solid #ddd}.status{padding:.3em .6em;
background:#fff4ce}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));
gap:6px}.cell{border:1px solid #ccc;padding:4px;font-size:90%}
"""
FIT_ORDER = ("true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{_e(css)}"><tr>{head}</tr>{body}</table>'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return "-" if value is None else str(value)


def _img(svg: str, alt: str) -> str:
    return f'<img src="{data_uri(svg)}" alt="{_e(alt)}" width="500" height="300">'


# ------------------------------------------------------------------ sections

def _verdicts(items: list[Mapping[str, Any]]) -> str:
    rows = []
    for entry in items:
        cells = row_cells(entry)
        tds = "".join(f'<td class="{_e(c)}">{_e(c)}</td>' if i == 2 else f"<td>{_e(c)}</td>"
                      for i, c in enumerate(cells))
        rows.append(f"<tr>{tds}<td>{_e(entry.get('message') or '')}</td></tr>")
    head = "".join(f"<th>{_e(h)}</th>" for h in (*HEADER, "message"))
    return (f'<h2 id="verdicts">Verdicts</h2><table class="verdicts"><tr>{head}</tr>'
            f'{"".join(rows)}</table><details><summary>legend</summary><pre>{_e(LEGEND)}</pre>'
            "</details>")


def _points(curves: Mapping[str, Any], key: str) -> list[tuple[Any, Any]]:
    return list(zip(curves.get("step") or [], curves.get(key) or []))


def figure1a_runs(items: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, dict]]:
    """model -> fit -> curves: Figure 1a's fits (true labels and the four randomizations) over
    every item of the model; with several seeds, the first seed's fit of each."""
    models: dict[str, dict[str, dict]] = {}
    for entry in items:
        runs = models.setdefault(str(entry.get("model", "")), {})
        for name, curves in (entry.get("curves") or {}).items():
            base = str(name).split("@", 1)[0]
            if curves and base in FIT_ORDER:
                runs.setdefault(base, curves)
    return models


def _ordered_fits(runs: Mapping[str, Any]) -> list[str]:
    return sorted(runs, key=lambda n: (FIT_ORDER.index(n) if n in FIT_ORDER else len(FIT_ORDER), n))


def _fit_charts(runs: Mapping[str, Mapping[str, Any]], title: str) -> str:
    names = _ordered_fits(runs)
    loss = {n: _points(runs[n], "train_loss") for n in names}
    acc = {n: _points(runs[n], "train_accuracy") for n in names}
    running = {n: _points(runs[n], "running_accuracy") for n in names}
    return (_img(line_chart(loss, title=f"{title}: training loss", x_label="steps",
                            y_label="loss", log_y=True), f"{title} loss")
            + _img(line_chart(acc, title=f"{title}: training accuracy (measured)",
                              x_label="steps", y_label="accuracy"), f"{title} accuracy")
            + _img(line_chart(running, title=f"{title}: running accuracy (train mode)",
                              x_label="steps", y_label="accuracy"), f"{title} running"))


def _figure1a(items: list[Mapping[str, Any]]) -> str:
    parts = ['<h2 id="figure1a">Fits: loss and accuracy against steps (Figure 1a)</h2>']
    for model, runs in figure1a_runs(items).items():
        if runs:
            parts.append(f"<h3>{_e(model)}</h3>" + _fit_charts(runs, model))
    return "".join(parts) if len(parts) > 1 else parts[0] + "<p>No fit has curves yet.</p>"


def _tables_of(items: list[Mapping[str, Any]], check: str, table: str) -> list[tuple[str, list]]:
    return [(str(e.get("model", "")), (e.get("tables") or {}).get(table) or [])
            for e in items if e.get("check") == check and (e.get("tables") or {}).get(table)]


def _suspect_cell(r: Mapping[str, Any]) -> str:
    """One suspect: its preview (image, or raw values for tokens / features) and its scores."""
    image = str(r.get("image") or "")
    shown = f'<img src="{_e(image)}" alt="#{_e(r.get("index"))}"><br>' \
        if image.startswith("data:image/png;base64,") else ""
    detail = (f'score {_e(_fmt(r.get("score")))}, AUM {_e(_fmt(r.get("aum")))}' if "score" in r
              else f'fit epoch {_e(_fmt(r.get("fit_epoch")))}, forgets {_e(r.get("forgets"))}')
    raw = f'<br>{_e(" ".join(str(v) for v in r["raw"][:8]))}' if r.get("raw") else ""
    return (f'<div class="cell">{shown}#{_e(r.get("index"))}: label {_e(r.get("label"))}, '
            f'predicted {_e(r.get("prediction"))}<br>{detail}{raw}</div>')


def _slowdown(items: list[Mapping[str, Any]]) -> str:
    found = _tables_of(items, "slowdown", "slowdown")
    if not found:
        return ""
    cols = ("randomization", "fitted", "epochs_to_fit", "steps_to_fit", "slowdown")
    body = "".join(f"<h3>{_e(model)}</h3>" + _table(cols, [[_fmt(r.get(c)) for c in cols]
                                                            for r in rows])
                   for model, rows in found)
    return '<h2 id="slowdown">Slowdown against true labels (Figure 1b\'s ratio)</h2>' + body


def _mean_by_p(rows: list[Mapping[str, Any]], column: str) -> list[tuple[float, float]]:
    """(p, mean of ``column`` over the rows at p), by p: one point per level over seeds."""
    by_p: dict[float, list[float]] = {}
    for row in rows:
        p, value = row.get("p"), row.get(column)
        if isinstance(p, (int, float)) and isinstance(value, (int, float)):
            by_p.setdefault(float(p), []).append(float(value))
    return [(p, sum(v) / len(v)) for p, v in sorted(by_p.items())]


def _partial(items: list[Mapping[str, Any]]) -> str:
    found = _tables_of(items, "partial_labels", "sweep")
    if not found:
        return ""
    parts = ['<h2 id="figure1bc">Partially corrupted labels (Figure 1b/c)</h2>']
    for model, rows in found:
        cols = [c for c in ("p", "fitted", "epochs_to_fit", "relative_time", "train_accuracy",
                            "test_error", "seconds") if any(c in r for r in rows)]
        rel = {model: _mean_by_p(rows, "relative_time")}
        err = {model: _mean_by_p(rows, "test_error")}
        parts.append(f"<h3>{_e(model)}</h3>"
                     + _img(line_chart(rel, title="Figure 1b: time to fit vs p", x_label="p",
                                       y_label="relative time"), f"{model} relative time")
                     + _img(line_chart(err, title="Figure 1c: test error vs p", x_label="p",
                                       y_label="test error"), f"{model} test error")
                     + _table(cols, [[_fmt(r.get(c)) for c in cols] for r in rows]))
    return "".join(parts)


def _png(path: str | os.PathLike | None) -> str:
    """A PNG file inline as a data URI ("" when there is none to read)."""
    try:
        data = Path(path).read_bytes() if path else b""
    except OSError:
        return ""
    if not data.startswith(b"\x89PNG"):
        return ""
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<img src="{uri}" alt="{_e(Path(path).name)}" style="max-width:100%">'


def _memorization(items: list[Mapping[str, Any]],
                  images: Mapping[str, str | os.PathLike] | None = None) -> str:
    parts = []
    for entry in items:
        metrics = entry.get("metrics") or {}
        if entry.get("check") == "memorization" and "auc" in metrics:
            keys = [k for k in ("auc", "median_fit_epoch_clean", "median_fit_epoch_corrupted",
                                "clean_fitted_fraction", "corrupted_fitted_fraction",
                                "early_stopping_gain") if k in metrics]
            parts.append(f"<h3>{_e(entry.get('model'))}: memorization</h3>"
                         + _table(("metric", "value"), [(k, _fmt(metrics[k])) for k in keys]))
    found = _tables_of(items, "suspects", "suspects") + _tables_of(items, "true_labels", "suspects")
    for model, rows in found:
        cells = "".join(_suspect_cell(r) for r in rows)
        picture = _png(images.get(model)) if images else ""
        parts.append(f"<h3>{_e(model)}: suspects (likely mislabels)</h3>"
                     f'<div class="grid suspects">{cells}</div>{picture}')
    if not parts:
        return ""
    return '<h2 id="memorization">Memorization and suspects</h2>' + "".join(parts)


def _metrics_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Metric name and value; with several seeds ``mean [ci_low, ci_high] (std)``."""
    rows = []
    for name, value in metrics.items():
        if any(name.endswith(s) for s in (".std", ".ci_low", ".ci_high", ".values")):
            continue
        text = _fmt(value)
        low, high = metrics.get(f"{name}.ci_low"), metrics.get(f"{name}.ci_high")
        if low is not None and high is not None:
            text += f" [{_fmt(low)}, {_fmt(high)}] 95% over seeds"
            if metrics.get(f"{name}.std") is not None:
                text += f", std {_fmt(metrics[f'{name}.std'])}"
        rows.append((name, text))
    return rows


def _item(entry: Mapping[str, Any]) -> str:
    verdict = row_cells(entry)[2]
    curves = {n: c for n, c in (entry.get("curves") or {}).items() if c}
    settings = entry.get("settings")
    return (f'<details class="item"><summary><span class="{_e(verdict)}">{_e(verdict)}</span> '
            f"{_e(entry.get('model'))} {_e(entry.get('check'))} "
            f"<code>{_e(entry.get('nodeid', ''))}</code></summary>"
            f"<p><b>criterion</b>: {_e(entry.get('criterion') or '-')}</p>"
            f"<p><b>message</b>: {_e(entry.get('message') or '-')}</p>"
            + _table(("metric", "value"), _metrics_rows(entry.get("metrics") or {}))
            + (_fit_charts(curves, f"{entry.get('model')} {entry.get('check')}") if curves else "")
            + "<p><b>settings it ran with</b></p>"
            + f"<pre>{_e(json.dumps(settings, indent=1, default=str))}</pre></details>")


def _environment(doc: Mapping[str, Any]) -> str:
    machine = doc.get("machine") or {}
    rows = [(k, _fmt(v)) for k, v in machine.items()]
    rows += [("machine_id", doc.get("machine_id")), ("rethink_checks", doc.get("version")),
             ("data", doc.get("data")), ("seed", doc.get("seed"))]
    hosts = doc.get("machines") or {}
    extra = "".join(f"<h3>host {_e(h)}</h3>" + _table(("key", "value"),
                                                      [(k, _fmt(v)) for k, v in info.items()])
                    for h, info in hosts.items() if isinstance(info, Mapping))
    options = (doc.get("plugin") or {}).get("options")
    return ('<h2 id="environment">Environment and session settings</h2>'
            + _table(("key", "value"), rows) + extra
            + (f"<p><b>plugin options</b></p><pre>{_e(json.dumps(options, default=str))}</pre>"
               if options else "")
            + "<p><b>session settings</b></p>"
            + f"<pre>{_e(json.dumps(doc.get('settings'), indent=1, default=str))}</pre>")


def _status(doc: Mapping[str, Any]) -> str:
    status = doc.get("status") or "finished"
    note = ""
    if status == "running":
        note = " (still running: this page is rewritten after every item)"
    elif status == "interrupted":
        why = doc.get("interrupted") or {}
        note = f" ({why.get('by', '?')}: {why.get('message', '')})"
    return f'<p class="status">status: {_e(status)}{_e(note)}; written {_e(doc.get("created", ""))}</p>'


Tables = Mapping[str, tuple[Sequence[str], Sequence[Sequence[Any]]]]


def _extra(tables: Tables | None) -> str:
    return "".join(f"<h2>{_e(title)}</h2>" + _table(header, [[_fmt(c) for c in row] for row in rows])
                   for title, (header, rows) in (tables or {}).items())


def html_page(doc: Mapping[str, Any], title: str = "rethink_checks report",
              images: Mapping[str, str | os.PathLike] | None = None,
              tables: Tables | None = None) -> str:
    """The whole page for a session document (see the module docstring for its sections).

    ``images`` maps a model name to its suspects grid PNG (``--rethink-plots`` writes it),
    embedded under that model's suspects; ``tables`` (title -> (header, rows)) are shown
    after the verdicts (the reproduction's Table 1 and its differences from the paper).
    """
    items = [i for i in doc.get("items") or [] if isinstance(i, Mapping)]
    sections = [_status(doc), _verdicts(items), _extra(tables), _figure1a(items), _slowdown(items),
                _partial(items), _memorization(items, images),
                '<h2 id="items">Items: criterion, metrics, fits, settings</h2>'
                + "".join(_item(e) for e in items), _environment(doc)]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{_e(title)}</h1>" + "".join(s for s in sections if s) + "</body></html>\n")


def write_html(doc: Mapping[str, Any], path: str | os.PathLike, title: str = "rethink_checks report",
               images: Mapping[str, str | os.PathLike] | None = None,
               tables: Tables | None = None) -> Path:
    """Write :func:`html_page` atomically (temp file, then rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html_page(doc, title, images, tables), encoding="utf-8")
    tmp.replace(path)
    return path
