"""What the plugin prints: the header line and the summary (live progress: :mod:`.live`)."""
from __future__ import annotations

from typing import Any

from .state import RethinkState


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
    """``--rethink-suspects``: each model's likeliest mislabels, from its suspects item
    (a session where none ran says how to select it, rather than printing nothing)."""
    entries = state.ordered_entries()
    if state.options.get("suspects") and not any(e.get("check") == "suspects" for e in entries):
        reporter.write_line("rethink suspects: none: no rethink[suspects] item ran (it was "
                            "deselected; select it too, e.g. -k \"suspects or memorization\")")
    for entry in entries:
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
