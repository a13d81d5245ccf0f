"""Evaluation on CPU: eval-mode milliseconds per image, contiguous (NCHW) against channels_last,
by chunk size, and the training step in both layouts (issue #10: evaluation that costs little).

For each convolutional model at 3x32x32 (the small BN + dropout CNN, torchvision ResNet-18 and
MobileNetV3-small) it times ``model(x)`` under ``torch.inference_mode`` over --images random
images in chunks of 128, 256 and 1024, after one warm-up pass, and a training step (batch 128,
forward + backward + SGD momentum) in both layouts. Variants are interleaved over --reps reps;
figures are medians. What it decided: ``FitConfig.eval_batch_size`` "auto" and channels_last on
CPU (docs/checks.md, "Evaluation on CPU"). Run it on an otherwise idle machine.

Usage: python benchmarks/bench_cpu_eval.py [--threads 2] [--images 2000] [--reps 3] [--models a,b]
           [--out PATH]
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from rethink_checks.report import machine_info

from _common import RESULTS, write_json  # benchmarks/_common.py
from scenarios import nets  # benchmarks/scenarios/nets.py

CHUNKS = (128, 256, 1024)
MODELS: dict[str, Callable[..., nn.Module]] = {
    "bn_cnn": nets.bn_cnn, "resnet18": nets.resnet18, "mobilenet_v3_small": nets.mobilenet_v3_small}
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def eval_ms(model: nn.Module, images: torch.Tensor, chunk: int) -> float:
    """Milliseconds per image of one eval-mode pass over ``images``."""
    start = time.perf_counter()
    with torch.inference_mode():
        for lo in range(0, len(images), chunk):
            model(images[lo:lo + chunk])
    return (time.perf_counter() - start) / len(images) * 1e3


def step_ms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer) -> float:
    """Milliseconds of one training step."""
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    return (time.perf_counter() - start) * 1e3


def bench_model(name: str, n_images: int, reps: int) -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    base = MODELS[name]((3, 32, 32), 10)
    models = {k: copy.deepcopy(base).to(memory_format=f) for k, f in LAYOUTS.items()}
    images = {k: torch.randn(n_images, 3, 32, 32).contiguous(memory_format=f) for k, f in LAYOUTS.items()}
    x = {k: v[:128] for k, v in images.items()}
    y = torch.randint(0, 10, (128,))
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in models.items()}
    samples: dict[str, list[float]] = {}
    for k, m in models.items():  # warm-up
        m.eval()
        eval_ms(m, images[k][:256], 128)
        m.train()
        step_ms(m, x[k], y, opts[k])
    for _ in range(reps):
        for k, m in models.items():
            m.eval()
            for chunk in CHUNKS:
                samples.setdefault(f"{k}/eval@{chunk}", []).append(eval_ms(m, images[k], chunk))
            m.train()
            samples.setdefault(f"{k}/step", []).append(
                statistics.median(step_ms(m, x[k], y, opts[k]) for _ in range(3)))
    return {key: round(statistics.median(v), 3) for key, v in samples.items()}


def print_table(results: dict[str, dict[str, float]]) -> None:
    cols = [f"eval@{c}" for c in CHUNKS] + ["step"]
    print(f"{'model':20s} {'layout':14s} " + " ".join(f"{c:>10s}" for c in cols))
    for name, r in results.items():
        for layout in LAYOUTS:
            print(f"{name:20s} {layout:14s} " + " ".join(f"{r[f'{layout}/{c}']:10.3f}" for c in cols))
        print(f"{'':20s} {'x (cl faster)':14s} " + " ".join(
            f"{r[f'nchw/{c}'] / r[f'channels_last/{c}']:10.2f}" for c in cols))
    print("eval@N: eval-mode ms per image in chunks of N; step: ms per training step (batch 128)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", default=str(RESULTS / "cpu_eval.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    load = os.getloadavg()
    results = {name: bench_model(name, args.images, args.reps) for name in names}
    print_table(results)
    write_json({"benchmark": "cpu_eval", "machine": machine_info(), "threads": args.threads,
                "images": args.images, "reps": args.reps, "load_avg_before": load,
                "load_avg_after": os.getloadavg(), "results": results}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
