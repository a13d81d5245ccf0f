"""What the benchmark scripts share: the machine a figure came from, timing sync, writing results.

The scripts run as ``python benchmarks/bench_*.py`` (their folder is first on ``sys.path``), so
they import this as ``_common``. Machine facts come from :func:`rethink_checks.report.machine_info`
(the same description the plugin's session JSON carries).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from rethink_checks.report import machine_info

#: Where the committed result JSONs live.
RESULTS = Path(__file__).resolve().parent / "results"


def sync(device: str | torch.device) -> None:
    """Wait for queued GPU work so a wall-clock interval covers it (no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def hardware(device: str | torch.device) -> dict[str, Any]:
    """The machine behind a figure: :func:`machine_info` plus the device, threads and load.

    ``label`` is the one-line name the tables print: the GPU's name for a CUDA device, else
    the CPU model and the torch thread count.
    """
    device = torch.device(device)
    info = machine_info()
    info.update(device=str(device), torch_threads=torch.get_num_threads(),
                load_avg_1m=round(os.getloadavg()[0], 2))
    if device.type == "cuda":
        info["label"] = torch.cuda.get_device_name(device)
    else:
        info["label"] = f"{info['cpu']}, {torch.get_num_threads()} torch threads"
    return info


def write_json(report: dict[str, Any], out: Path, quiet: bool = False) -> Path:
    """Write ``report`` as indented JSON to ``out`` (creating folders) and, unless quiet, say where."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    if not quiet:
        print(f"wrote {out}")
    return out
