"""The controller's end of the session: the JSON document, Figure 1 plots and baselines.

Entries arrive as ``report.rethink`` on test reports (from this process or from xdist
workers, crashed workers' items included) and are gathered in ``RethinkState.entries``.
The JSON (and the ``--rethink-html`` page) is rewritten atomically at session start and after every entry
(:func:`write_progress`, marked unfinished), so a killed run still leaves a valid file
holding what finished; :func:`finish` writes the final document, plots and baselines at
``pytest_sessionfinish``, also after Ctrl-C and SIGTERM.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from . import survival
from .state import RethinkState

FIGURE_RUNS = ("true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")


def add_entry(state: RethinkState, report: pytest.TestReport) -> None:
    """Keep a report's rethink entry, keyed by node id (without xdist's ``@group`` suffix)."""
    entry = dict(report.rethink)  # type: ignore[attr-defined]
    nodeid = report.nodeid.split("@rethink:", 1)[0]
    entry["nodeid"] = nodeid
    gateway = getattr(getattr(report, "node", None), "gateway", None)
    entry["worker"] = getattr(gateway, "id", None)
    host_info = getattr(report, "rethink_machine", None)
    place = entry.get("machine") or {}
    if isinstance(host_info, dict) and place.get("host"):
        state.machines.setdefault(place["host"], host_info)
    state.entries[nodeid] = entry


def session_settings(state: RethinkState) -> dict[str, Any]:
    """The session-wide settings (ini and command line over the defaults), as JSON."""
    from rethink_checks.checks import CheckSettings

    ini, cli = state.options.settings_layers()
    return CheckSettings.from_mapping({**ini, **cli}).to_dict()


def document(state: RethinkState, interrupted: dict[str, Any] | None,
             running: bool = False) -> dict[str, Any]:
    """The session document of :mod:`rethink_checks.report` for the entries so far.

    Beyond the library's fields: ``status`` (``running``, ``finished`` or ``interrupted``),
    ``interrupted`` (None, or ``by`` / ``message`` / ``not_run``; while running it says the
    session is unfinished) and ``machines`` (host name -> machine_info of every host that
    reported an item).
    """
    from rethink_checks.report import machine_info, session_document

    if state.machine is None:
        from .hosts import plain

        state.machine = plain(machine_info())
    settings = session_settings(state)
    if running:
        interrupted = dict(survival.RUNNING)
    plugin = {"checks": list(state.cli_checks or state.ini_checks or state.known_checks),
              "options": {**state.options.ini, **state.options.cli},
              "interrupted": interrupted is not None}
    status = "running" if running else "interrupted" if interrupted else "finished"
    return session_document(state.ordered_entries(), settings, seed=settings.get("seed"),
                            data=state.data_default, machine=state.machine,
                            extra={"plugin": plugin, "status": status,
                                   "interrupted": interrupted,
                                   "machines": dict(state.machines)})


def json_path(state: RethinkState, config: pytest.Config) -> Path | None:
    """Where ``--rethink-json`` writes (relative to the invocation directory), or None."""
    name = state.options.get("json")
    return Path(config.invocation_params.dir) / name if name else None


def html_path(state: RethinkState, config: pytest.Config) -> Path | None:
    """Where ``--rethink-html`` writes (relative to the invocation directory), or None."""
    name = state.options.get("html")
    return Path(config.invocation_params.dir) / name if name else None


def suspect_images(state: RethinkState, config: pytest.Config) -> dict[str, Path]:
    """model -> the suspects grid PNG that ``--rethink-suspects`` with ``--rethink-plots``
    writes (plugins/items.py ``add_suspects``), for the models that have suspects."""
    plots = state.options.get("plots")
    if not plots:
        return {}
    folder = Path(config.invocation_params.dir) / plots
    return {e["model"]: folder / f"{_slug(e['model'])}_suspects.png"
            for e in state.entries.values() if (e.get("tables") or {}).get("suspects")}


def _writers(state: RethinkState, config: pytest.Config) -> list[tuple[str, Path, Any]]:
    """(what, path, writer) of the JSON and HTML outputs asked for."""
    import functools

    from rethink_checks.report import write_html, write_json

    pairs = (("JSON", json_path(state, config), write_json),
             ("HTML", html_path(state, config),
              functools.partial(write_html, images=suspect_images(state, config))))
    return [(what, path, writer) for what, path, writer in pairs if path is not None]


def write_progress(state: RethinkState, config: pytest.Config) -> None:
    """Rewrite the JSON and HTML with the entries so far, marked unfinished (atomic: temp +
    rename), so an interrupted run still leaves a valid file and a readable page."""
    writers = _writers(state, config)
    if not writers:
        return
    doc = document(state, None, running=True)
    for what, path, writer in writers:
        try:
            writer(doc, path)
        except (OSError, ValueError, TypeError) as exc:
            if what not in state.writes_failed:
                state.writes_failed.add(what)
                state.finish_lines.append(f"rethink: {what} not written during the run: {exc}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-") or "model"


def write_plots(state: RethinkState, out_dir: Path) -> list[Path]:
    """Figure 1 panels per model (loss curves, relative time and test error against p)."""
    from rethink_checks.plots import figure1

    models: dict[str, dict[str, Any]] = {}
    for entry in state.ordered_entries():
        slot = models.setdefault(entry["model"], {"runs": {}, "rows": []})
        for name, curves in (entry.get("curves") or {}).items():
            if name in FIGURE_RUNS and curves:
                slot["runs"].setdefault(name, {"curves": curves})
        slot["rows"] = slot["rows"] or (entry.get("tables") or {}).get("sweep") or []
    written: list[Path] = []
    for model, slot in models.items():
        written += figure1(slot["runs"], slot["rows"], out_dir, prefix=_slug(model) + "_",
                           title=model)
    return written


def _compare(state: RethinkState, doc: dict[str, Any], storage: Path) -> None:
    from rethink_checks.errors import RethinkError
    from rethink_checks.report import BaselineStore, compare_baseline, format_comparison

    opts = state.options
    name = opts.compare if opts.compare not in (None, "latest") else None
    try:
        baseline = BaselineStore(storage).load(name, machine=doc["machine_id"])
    except RethinkError as exc:
        state.finish_lines.append(f"rethink compare: {exc}")
        if opts.compare_fail:
            state.compare_failures.append(str(exc))
        return
    rows, failures = compare_baseline(doc, baseline, opts.compare_fail)
    state.finish_lines.append(f"rethink compare: against {baseline['baseline_path']}")
    state.finish_lines.append(format_comparison(rows))
    state.compare_failures += failures


def finish(state: RethinkState, config: pytest.Config, interrupted: dict[str, Any] | None,
           keep_baseline: bool = True) -> None:
    """Write the JSON, plots and baselines asked for; note what was written and what failed.

    ``interrupted`` is the document's record of why the session stopped early (None: it
    ran to the end); ``keep_baseline`` False refuses ``--rethink-save`` (a signal, Ctrl-C or
    an internal error cut the session short).
    """
    opts = state.options
    wants = any(opts.get(n) for n in ("json", "html", "plots", "save")) or opts.compare \
        or opts.compare_fail
    if not wants:
        return
    doc = document(state, interrupted)
    root = Path(config.rootpath)
    for what, target, writer in _writers(state, config):
        try:
            path = writer(doc, target)
        except (OSError, ValueError, TypeError) as exc:
            state.finish_lines.append(f"rethink: {what} not written: {exc}")
        else:
            state.finish_lines.append(f"rethink: wrote {len(doc['items'])} item(s) to {path}")
    if opts.get("plots") and state.entries:
        try:
            written = write_plots(state, Path(config.invocation_params.dir) / opts.get("plots"))
        except Exception as exc:  # noqa: BLE001 - a plotting problem must not lose the session
            state.finish_lines.append(f"rethink plots: not written: {type(exc).__name__}: {exc}")
        else:
            state.finish_lines.append(f"rethink: wrote {len(written)} plot(s) to "
                                      f"{Path(opts.get('plots'))}")
    storage = root / opts.get("storage", ".rethink")
    if opts.compare or opts.compare_fail:
        _compare(state, doc, storage)
    if opts.get("save"):
        from rethink_checks.report import BaselineStore

        if not keep_baseline:
            state.finish_lines.append("rethink: baseline not saved (the session was interrupted)")
        else:
            from rethink_checks.errors import RethinkError

            try:
                path = BaselineStore(storage).save(doc, opts.get("save"))
            except (RethinkError, OSError) as exc:
                state.finish_lines.append(f"rethink: baseline not saved: {exc}")
            else:
                state.finish_lines.append(f"rethink: saved baseline {path}")
    for failure in state.compare_failures:
        state.finish_lines.append(f"rethink compare-fail: {failure}")
