"""What the plugin prints: the header line, live progress of running checks, the summary."""
from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from .state import RethinkState

PROGRESS_EVERY = 5.0  # seconds between progress lines unless --rethink-progress-interval says


def describe_device(requested: str) -> str:
    """The device the checks will use, in words (says so when there is no GPU)."""
    import torch

    if requested in ("auto", "cuda") or requested.startswith("cuda:"):
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if torch.cuda.is_available() and index < torch.cuda.device_count():
            name = "cuda" if requested == "auto" else requested
            return f"{name} ({torch.cuda.get_device_name(index)})"
        if requested == "auto":
            return "cpu (no GPU: running on CPU)"
        return f"{requested} (not available: no such CUDA device)"
    return requested


def header_lines(state: RethinkState) -> list[str]:
    """``pytest_report_header`` lines: device, data, seed, checks and the main budgets."""
    import torch

    opts = state.options
    checks = state.cli_checks or state.ini_checks
    lines = [f"rethink: device {describe_device(opts.get('device', 'auto'))}, "
             f"data {state.data_default}, seed {opts.get('seed', 0)}, torch {torch.__version__}",
             "rethink: checks " + (", ".join(checks) if checks else
                                   "per module (default: " + ", ".join(state.known_checks) + ")")]
    units = {"time_budget": " s per check"}
    budget = [f"{name.replace('_', ' ')} {opts.get(name)}{units.get(name, '')}"
              for name in ("train_size", "max_epochs", "time_budget", "threads")
              if opts.get(name) is not None]
    if budget:
        lines.append("rethink: " + ", ".join(budget))
    return lines


def progress_printer(config: pytest.Config, state: RethinkState, model: str,
                     check: str) -> Callable[[dict], None] | None:
    """A FitConfig.progress callback writing throttled lines, or None (quiet, xdist worker)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or state.is_worker or config.getoption("verbose") < 0:
        return None
    interval = state.options.get("progress_interval", PROGRESS_EVERY)
    last = [time.monotonic()]

    def progress(row: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] < interval:
            return
        last[0] = now
        acc = row.get("train_accuracy")
        acc_text = f"{acc:.4f}" if isinstance(acc, float) else str(acc)
        run = row.get("run") or check
        if run == "partial_labels" and row.get("p") is not None:
            run = f"partial_labels p={row['p']:g}"
        label = f"{model} {check}" + (f" [{run}]" if run != check else "")
        line = (f"    {label}: epoch {row.get('epoch')}  train acc {acc_text}  "
                f"{row.get('elapsed', 0.0):.1f} s")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if capture is None:
            reporter.write_line(line)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    return progress


def write_summary(reporter: Any, state: RethinkState) -> None:
    """The summary table (one row per model and check, with legend) and the session's notes."""
    from rethink_checks.report import format_table

    reporter.write_sep("=", "rethink summary")
    if state.entries:
        reporter.write_line(format_table(state.ordered_entries()))
    write_suspects(reporter, state)
    for line in state.finish_lines:
        reporter.write_line(line)


def write_suspects(reporter: Any, state: RethinkState) -> None:
    """``--rethink-suspects``: each model's likeliest mislabels, from its suspects item."""
    for entry in state.ordered_entries():
        rows = (entry.get("tables") or {}).get("suspects")
        if not rows:
            continue
        from rethink_checks.suspects import format_rows

        metrics = entry.get("metrics") or {}
        reporter.write_line(f"rethink suspects: {entry.get('model')}: the {len(rows)} training "
                            f"examples whose label looks wrong (confidence "
                            f"{metrics.get('confidence', '?')}: stopped {metrics.get('stop_reason', '?')} "
                            f"after {metrics.get('epochs', '?')} epochs, top-{len(rows)} overlap "
                            f"{metrics.get('stability', '?')}, held-out accuracy "
                            f"{metrics.get('held_out_accuracy', '?')}, ~{metrics.get('estimated_issues', '?')} "
                            "label issues estimated)")
        reporter.write_line(format_rows(rows))
