"""Time the randomizations on a CIFAR-10-sized training set (50,000 x 3 x 32 x 32 float32).

Usage: python benchmarks/bench_corruptions.py [--device cpu|cuda|all] [--repeats 5] [--out PATH]
Prints a table and writes JSON (default benchmarks/results/corruptions-<device>.json, one
file per device). Times are medians over repeats, after one warm-up call.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from rethink_checks.corruptions import (
    corrupt_labels, gaussian_noise, random_pixels, shuffle_pixels)

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = (50_000, 3, 32, 32)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _median_seconds(fn, device: str, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up (allocator, kernels)
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench(device: str, repeats: int) -> dict:
    """Median seconds per corruption on ``device`` for the CIFAR-10-sized tensors."""
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(SHAPE, generator=gen).to(device)
    labels = torch.randint(0, 10, (SHAPE[0],), generator=gen).to(device)
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
    hardware = (torch.cuda.get_device_name(device) if device.startswith("cuda")
                else f"{_cpu_model()}, {torch.get_num_threads()} threads")
    return {"device": device, "hardware": hardware, "shape": list(SHAPE), "dtype": "float32",
            "repeats": repeats, "torch": torch.__version__, "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "load_avg_1m_after": round(os.getloadavg()[0], 2),
            "results": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="all", help="cpu, cuda, or all (cuda if available)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (only with a single device)")
    args = parser.parse_args(argv)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    if args.out is not None and len(devices) != 1:
        parser.error("--out needs a single device (--device cpu or --device cuda)")
    for device in devices:
        report = bench(device, args.repeats)
        print(f"\n{report['hardware']} ({device}), {'x'.join(map(str, SHAPE))} float32, "
              f"median of {args.repeats}")
        print(f"{'op':<22}{'median s':>10}")
        for row in report["results"]:
            print(f"{row['op']:<22}{row['median_s']:>10.4f}")
        out = args.out or RESULTS / f"corruptions-{device.split(':')[0]}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
