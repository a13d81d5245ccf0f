"""Time the randomizations on a CIFAR-10-sized training set (50,000 x 3 x 32 x 32 float32).

Usage: python benchmarks/bench_corruptions.py [--device cpu|cuda|all] [--repeats 5] [--n 50000]
           [--out PATH]
Prints a table and writes JSON (default benchmarks/results/corruptions-<device>.json, one
file per device). Times are medians over repeats, after one warm-up call.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from rethink_checks.corruptions import (
    corrupt_labels, gaussian_noise, random_pixels, shuffle_pixels)

from _common import RESULTS, hardware, sync, write_json  # benchmarks/_common.py

SHAPE = (50_000, 3, 32, 32)


def _median_seconds(fn, device: str, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up (allocator, kernels)
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def bench(device: str, repeats: int, n: int = SHAPE[0]) -> dict:
    """Median seconds per corruption on ``device`` for the CIFAR-10-sized tensors."""
    gen = torch.Generator().manual_seed(0)
    shape = (n, *SHAPE[1:])
    images = torch.rand(shape, generator=gen).to(device)
    labels = torch.randint(0, 10, (n,), generator=gen).to(device)
    cases = {
        "random_pixels": lambda: random_pixels(images, seed=1),
        "shuffle_pixels": lambda: shuffle_pixels(images, seed=1),
        "gaussian_noise": lambda: gaussian_noise(images, seed=1),
        "corrupt_labels(p=1)": lambda: corrupt_labels(labels, 1.0, 10, seed=1),
    }
    rows = []
    for name, fn in cases.items():
        median, times = _median_seconds(fn, device, repeats)
        rows.append({"op": name, "median_s": round(median, 5),
                     "times_s": [round(t, 5) for t in times]})
    machine = hardware(device)  # after the runs: load_avg_1m is the load they ran under
    return {"device": device, "hardware": machine["label"], "shape": list(shape), "dtype": "float32",
            "repeats": repeats, "torch": torch.__version__, "machine": machine, "results": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="all", help="cpu, cuda, or all (cuda if available)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=SHAPE[0],
                        help="images (default 50,000; fewer for a quick check, not a figure)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (only with a single device)")
    args = parser.parse_args(argv)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    if args.out is not None and len(devices) != 1:
        parser.error("--out needs a single device (--device cpu or --device cuda)")
    for device in devices:
        report = bench(device, args.repeats, args.n)
        print(f"\n{report['hardware']} ({device}), {'x'.join(map(str, report['shape']))} float32, "
              f"median of {args.repeats}")
        print(f"{'op':<22}{'median s':>10}")
        for row in report["results"]:
            print(f"{row['op']:<22}{row['median_s']:>10.4f}")
        write_json(report, args.out or RESULTS / f"corruptions-{device.split(':')[0]}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
