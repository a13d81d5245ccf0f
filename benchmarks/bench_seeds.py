"""What N seeds cost, and the "must not memorize" example of docs/checks.md, measured.

Cost: ``true_labels``, ``random_labels`` and ``slowdown`` (the CI trio) through
``rethink_checks.checks.run_check`` with ``seeds`` = 1, 3 and 5, each with a fresh run cache,
the three settings interleaved per repeat so they see the same machine load; reports seconds
and the ratio to one seed (the fits are the cost, so the ratio should be about N: `slowdown`
reuses the memorization fits of every seed). Models: the paper's MLP 1x512 and the panel's
BN + dropout CNN, on 400 of the default digits with the data's own defaults.

Expectation (``--expect``): the worked example of docs/checks.md, a 4-unit MLP expected
``not_memorized`` on random labels (3 seeds, 400 digits, ``fit_threshold`` 0.9 for the true
labels) and the same with 512 units, which must fail; prints both verdicts and messages.

Usage: python benchmarks/bench_seeds.py [--seeds 1,3,5] [--repeats 2] [--models mlp_1x512,bn_dropout_cnn]
           [--expect] [--quick] [--out PATH]
Prints a table and writes JSON (default benchmarks/results/seeds_cost.json).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from _common import RESULTS, hardware, write_json
from panel import ARCHITECTURES, _factory

from rethink_checks.checks import CheckSettings, RunCache, run_check
from rethink_checks.data import load
from rethink_checks.layers import layered
from rethink_checks.models import mlp

CHECKS = ("true_labels", "random_labels", "slowdown")


def _settings(data: Any, **extra: Any) -> CheckSettings:
    """The data's defaults under the benchmark's settings, as the plugin layers them."""
    return layered(data, cli={"train_size": 400, "device": "cpu", **extra}).settings


def time_seeds(model: str, data: Any, n: int, extra: dict[str, Any]) -> tuple[float, list[bool]]:
    """Seconds for the CI trio with ``n`` seeds on a fresh cache, and each check's verdict."""
    settings = _settings(data, seeds=n, **extra)
    factory = _factory(model, data.input_shape, data.num_classes)
    cache = RunCache()
    start = time.perf_counter()
    verdicts = [run_check(c, factory, data, settings, cache).passed for c in CHECKS]
    return time.perf_counter() - start, verdicts


def measure_cost(args: argparse.Namespace, data: Any) -> list[dict[str, Any]]:
    seeds = [int(s) for s in args.seeds.split(",")]
    extra = {"max_epochs": 3} if args.quick else {}
    rows = []
    for model in args.models.split(","):
        times: dict[int, list[float]] = {n: [] for n in seeds}
        verdicts: dict[int, list[bool]] = {}
        for _ in range(args.repeats):
            for n in seeds:  # interleaved: each repeat sees every N under the same load
                seconds, verdicts[n] = time_seeds(model, data, n, extra)
                times[n].append(seconds)
        base = statistics.median(times[seeds[0]])
        for n in seeds:
            med = statistics.median(times[n])
            rows.append({"model": model, "seeds": n, "seconds": round(med, 2),
                         "all_seconds": [round(t, 2) for t in times[n]],
                         "ratio_to_first": round(med / base, 2), "verdicts": dict(zip(CHECKS, verdicts[n]))})
            print(f"{model:16s} seeds={n}  {med:8.2f} s  x{med / base:5.2f}  "
                  f"verdicts {verdicts[n]}", flush=True)
    return rows


def run_expectation(data: Any, quick: bool) -> list[dict[str, Any]]:
    """The docs' worked example both ways: 4 units pass 'not_memorized', 512 units fail it."""
    extra = {"max_epochs": 3} if quick else {}
    settings = _settings(data, seeds=3, fit_threshold=0.9,
                         expect={"random_labels": "not_memorized"}, **extra)
    out = []
    for width in (4, 512):
        cache = RunCache()
        def factory(width: int = width) -> torch.nn.Module:
            return mlp(data.input_shape, data.num_classes, width=width)
        start = time.perf_counter()
        for check in ("true_labels", "random_labels"):
            r = run_check(check, factory, data, settings, cache)
            out.append({"width": width, "check": check, "passed": r.passed, "message": r.message,
                        "seconds": round(time.perf_counter() - start, 1)})
            print(f"width {width:3d} {check:13s} {'PASS' if r.passed else 'FAIL'}: {r.message}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="1,3,5")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--models", default="mlp_1x512,bn_dropout_cnn",
                   help="comma-separated, from benchmarks/panel.py: " + ", ".join(ARCHITECTURES))
    p.add_argument("--expect", action="store_true", help="also run the must-not-memorize example")
    p.add_argument("--quick", action="store_true", help="3 epochs: plumbing only, the figures mean nothing")
    p.add_argument("--out", type=Path, default=RESULTS / "seeds_cost.json")
    args = p.parse_args(argv)
    data = load("digits")
    report: dict[str, Any] = {"machine": hardware("cpu"), "checks": list(CHECKS), "quick": args.quick,
                              "cost": measure_cost(args, data)}
    if args.expect:
        report["expectation"] = run_expectation(data, args.quick)
    report["machine"]["load_avg_1m_after"] = hardware("cpu")["load_avg_1m"]
    write_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
