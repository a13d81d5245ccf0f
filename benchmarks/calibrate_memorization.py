"""Calibrate ``min_memorization_auc``: the memorization check's AUC on a panel of digits models.

Usage: python benchmarks/calibrate_memorization.py [--seeds 0,1,2] [--p 0.2] [--out PATH]
Runs ``rethink[memorization]`` (digits, the check's defaults: p = 0.2, label_mode "paper",
the digits fit defaults) for the paper's MLPs (1x512, 3x512) and a small CNN, over seeds;
prints the AUC, median fit epochs and early-stopping gain per run and writes JSON (default
benchmarks/results/memorization-calibration.json). The default threshold sits well below the
panel's lowest AUC and well above 0.5 (no ordering).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from rethink_checks.checks import run_check
from rethink_checks.data import load
from rethink_checks.layers import layered
from rethink_checks.models import mlp

from _common import RESULTS, hardware, write_json  # benchmarks/_common.py


def small_cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Two 3x3 conv layers (16, 32 channels), a 2x2 max pool and a linear classifier."""
    c, h, w = input_shape
    return nn.Sequential(nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * (h // 2) * (w // 2), num_classes))


PANEL = {
    "mlp_1x512": lambda shape, k: mlp(shape, k, depth=1),
    "mlp_3x512": lambda shape, k: mlp(shape, k, depth=3),
    "small_cnn": small_cnn,
}
KEYS = ("auc", "median_fit_epoch_clean", "median_fit_epoch_corrupted", "forgets_clean_mean",
        "forgets_corrupted_mean", "early_stopping_gain", "clean_fitted_fraction",
        "corrupted_fitted_fraction", "epochs", "test_accuracy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--p", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=RESULTS / "memorization-calibration.json")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load("digits")
    rows = []
    print(f"{'model':<11}{'seed':>5}{'auc':>7}{'med clean':>10}{'med noisy':>10}"
          f"{'forg c':>8}{'forg n':>8}{'gain':>8}{'epochs':>7}{'s':>6}")
    for name, build in PANEL.items():
        for seed in (int(s) for s in args.seeds.split(",")):
            settings = layered(data, cli={"device": "cpu", "seed": seed,
                                          "memorization_p": args.p}).settings
            start = time.perf_counter()
            result = run_check("memorization", lambda: build(data.input_shape, data.num_classes),
                               data, settings)
            row = {"model": name, "seed": seed, "passed": result.passed,
                   "seconds": round(time.perf_counter() - start, 1),
                   **{k: result.metrics.get(k) for k in KEYS}}
            rows.append(row)
            m = row
            print(f"{name:<11}{seed:>5}{m['auc'] or float('nan'):>7.3f}"
                  f"{m['median_fit_epoch_clean'] or float('nan'):>10.0f}"
                  f"{m['median_fit_epoch_corrupted'] or float('nan'):>10.0f}"
                  f"{m['forgets_clean_mean']:>8.2f}{m['forgets_corrupted_mean']:>8.2f}"
                  f"{m['early_stopping_gain'] or float('nan'):>+8.3f}{m['epochs']:>7}"
                  f"{row['seconds']:>6.0f}", flush=True)
    aucs = [r["auc"] for r in rows if r["auc"] is not None]
    summary = {"min_auc": min(aucs), "max_auc": max(aucs), "runs": len(rows)}
    print(f"AUC over the panel: min {summary['min_auc']:.3f}, max {summary['max_auc']:.3f}")
    write_json({"data": "digits", "p": args.p, "label_mode": "paper", "torch": torch.__version__,
                "machine": hardware("cpu"), "summary": summary, "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
