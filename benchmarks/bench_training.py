"""Time fit(): the CUDA-graph fast path against a plain eager bf16 loop on a GPU; time-to-fit on CPU.

GPU (cuda): the paper's small Inception on CIFAR-10-shaped data (3x28x28, batch 128, 50,000
training images; the real CIFAR-10 with --data, random tensors otherwise), seconds per
training epoch for
  plain     a plain PyTorch loop written below (data on the GPU, bf16 autocast, channels_last,
            torch.optim.SGD foreach, eager): the ANCHORS' "plain loop", the baseline;
  fit-eager fit(..., fast=False): the same step as the fast path, launched eagerly;
  fit-fast  fit()'s fast path (the whole step in a CUDA graph),
plus the evaluation cost fit adds per epoch (eval mode, full training and test sets), the
speedup, images per second and the fraction of the GPU's bf16 peak (training FLOPs = 3x the
forward FLOPs counted by torch's FlopCounterMode, 0.41 GFLOP per image forward).
--full-fit adds a random-label fit of the whole training set until 100% train accuracy.

CPU: MLP 1x512 on the plugin's default data (the ``digits`` spec: scikit-learn's digits,
per-image whitened) with true and random labels, under the schedule the checks use there
(data.DIGITS_FIT_DEFAULTS: batch 32, 300 epochs; the MLP's paper rate 0.01 from models.build,
x0.95 every 391 optimizer steps): time to 100% training accuracy.

Usage: python benchmarks/bench_training.py [--device auto|cpu|cuda] [--data PATH_OR_SPEC]
           [--epochs 3] [--peak-tflops 990] [--full-fit] [--threads N] [--out PATH]
Prints a table and writes JSON (default benchmarks/results/training-<device>.json).
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rethink_checks.corruptions import CorruptionSpec
from rethink_checks.data import Dataset, load, paper_preprocess
from rethink_checks.models import build, small_inception
from rethink_checks.training import fit

from _common import RESULTS, hardware, sync, write_json  # benchmarks/_common.py

BATCH = 128
INCEPTION_LR = 0.1


def _forward_flops(shape: tuple[int, ...]) -> float:
    """Forward FLOPs of the small Inception for one image (multiply-add = 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = small_inception(shape, 10).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *shape))
    return float(counter.get_total_flops())


def cifar_shaped(data_arg: str | None) -> Dataset:
    """The real CIFAR-10 (paper preprocessing: 28x28 centre crop, per-image whitening) or noise."""
    if data_arg:
        spec = data_arg if ":" in data_arg.split(",")[0] else f"folder:{data_arg},paper"
        data = load(spec)
        if data.input_shape[-1] != 28:
            data = data.map_inputs(paper_preprocess)
        return data
    gen = torch.Generator().manual_seed(0)
    return Dataset(torch.randn(50_000, 3, 28, 28, generator=gen), torch.randint(0, 10, (50_000,), generator=gen),
                   torch.randn(10_000, 3, 28, 28, generator=gen), torch.randint(0, 10, (10_000,), generator=gen),
                   num_classes=10, name="random-tensors")


def plain_loop(data: Dataset, epochs: int, device: str = "cuda", warmup_steps: int = 30) -> list[float]:
    """Seconds per epoch of a plain eager bf16 channels_last loop (the baseline the fast path beats)."""
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = small_inception(data.input_shape, data.num_classes).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=INCEPTION_LR, momentum=0.9, foreach=True)
    x = data.train_x.to(device).contiguous(memory_format=torch.channels_last)
    y = data.train_y.to(device)
    n = len(y)

    def step(idx: torch.Tensor) -> torch.Tensor:
        xb = x[idx].contiguous(memory_format=torch.channels_last)
        with torch.autocast(device, dtype=torch.bfloat16):
            out = model(xb)
        loss = F.cross_entropy(out.float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    perm = torch.randperm(n, device=device)
    for i in range(warmup_steps):
        step(perm[i * BATCH:(i + 1) * BATCH])
    sync(device)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        perm = torch.randperm(n, device=device)
        total = torch.zeros((), device=device)
        for lo in range(0, n, BATCH):
            total += step(perm[lo:lo + BATCH])
        total.item()  # one sync per epoch, like fit
        times.append(time.perf_counter() - start)
    return times


def fit_epochs(data: Dataset, epochs: int, fast: bool, device: str = "cuda", compile: bool = False) -> dict:
    """Per-epoch training seconds of fit() (evaluation only after the last epoch) and that eval's cost."""
    result = fit(lambda: small_inception(data.input_shape, data.num_classes), data, lr=INCEPTION_LR,
                 max_epochs=epochs, eval_every=epochs, fast=fast, device=device, precision="bf16",
                 compile=compile)
    elapsed = result.curves["elapsed"]
    per_epoch = [b - a for a, b in zip([0.0] + elapsed[:-1], elapsed)]
    train_only = per_epoch[:-1]
    steady = statistics.median(train_only[1:] if len(train_only) > 1 else train_only)
    return {"epoch_seconds": per_epoch, "train_epoch_s": steady,
            "eval_s": max(0.0, per_epoch[-1] - steady), "setup_s": result.total_seconds - result.train_seconds,
            "fast_path": result.fast_path, "fast_path_reason": result.fast_path_reason,
            "peak_memory_bytes": result.peak_memory_bytes}


def full_random_label_fit(data: Dataset, max_epochs: int, max_seconds: float, device: str = "cuda") -> dict:
    result = fit(lambda: small_inception(data.input_shape, data.num_classes), data, lr=INCEPTION_LR,
                 corruption=CorruptionSpec("random_labels", seed=0), max_epochs=max_epochs,
                 max_seconds=max_seconds, device=device, precision="bf16")
    return {"fitted": result.fitted, "stop_reason": result.stop_reason, "epochs": result.epochs,
            "train_seconds": round(result.train_seconds, 2), "total_seconds": round(result.total_seconds, 2),
            "train_accuracy": result.train_accuracy, "test_accuracy": result.test_accuracy,
            "fast_path": result.fast_path, "curves_train_accuracy": result.curves["train_accuracy"]}


def bench_gpu(args: argparse.Namespace) -> dict:
    loaded = time.perf_counter()
    data = cifar_shaped(args.data)
    device = "cuda"
    if args.smoke:  # check this code path on a CPU in seconds: tiny data, same functions
        data, device = data.subset(300, seed=0, n_test=100), "cpu"
    load_s = time.perf_counter() - loaded
    n = len(data.train_y)
    flops_fwd = _forward_flops(data.input_shape)
    peak = args.peak_tflops * 1e12
    rows = []
    plain = plain_loop(data, args.epochs, device, warmup_steps=2 if args.smoke else 30)
    methods = {"plain": {"train_epoch_s": statistics.median(plain), "epoch_seconds": plain,
                         "fast_path": False, "eval_s": None}}
    methods["fit-eager"] = fit_epochs(data, max(2, min(args.epochs, 3)), fast=False, device=device)
    methods["fit-fast"] = fit_epochs(data, args.epochs + 2, fast=True, device=device)
    if args.compile:
        methods["fit-fast-compiled"] = fit_epochs(data, args.epochs + 2, fast=True, device=device, compile=True)
    base = methods["plain"]["train_epoch_s"]
    for name, m in methods.items():
        s = m["train_epoch_s"]
        rows.append({"method": name, "train_epoch_s": round(s, 4),
                     "ms_per_step": round(1000 * s / math.ceil(n / BATCH), 3),
                     "images_per_s": round(n / s), "speedup_vs_plain": round(base / s, 2),
                     "bf16_peak_fraction": round(3 * flops_fwd * n / s / peak, 4),
                     "eval_s": None if m.get("eval_s") is None else round(m["eval_s"], 4),
                     "setup_s": None if m.get("setup_s") is None else round(m["setup_s"], 2),
                     "fast_path": m["fast_path"], "detail": m})
    machine = hardware(device)
    report = {"device": device, "hardware": machine["label"], "machine": machine, "torch": torch.__version__,
              "data": data.name, "train_size": n, "batch_size": BATCH, "load_seconds": round(load_s, 2),
              "gflop_forward_per_image": round(flops_fwd / 1e9, 4), "peak_tflops_assumed": args.peak_tflops,
              "rows": rows}
    if args.full_fit:
        report["random_label_fit"] = full_random_label_fit(data, args.full_fit_epochs, args.full_fit_seconds, device)
    return report


def bench_cpu(args: argparse.Namespace) -> dict:
    """MLP 1x512 on the ``digits`` spec under its fit defaults: seconds and epochs to 100% train accuracy."""
    digits = load("digits")  # whitened, with DIGITS_FIT_DEFAULTS attached (what the plugin trains on)
    settings = dict(digits.fit_defaults)
    rows, used = [], {}
    for labels in ("true_labels", "random_labels"):
        times, result = [], None
        for _ in range(args.repeats):
            result = fit(lambda: build("mlp1x512", digits.input_shape, digits.num_classes), digits,
                         device="cpu", corruption=CorruptionSpec(labels, seed=0), **settings)
            times.append(result.train_seconds)
        used = {k: result.settings[k] for k in ("lr", "lr_decay", "batch_size", "momentum", "max_epochs",
                                                 "precision", "steps_per_epoch", "train_size")}
        rows.append({"labels": labels, "fitted": result.fitted, "epochs_to_fit": result.epochs_to_fit,
                     "steps_to_fit": result.steps_to_fit, "train_seconds_median": round(statistics.median(times), 3),
                     "train_seconds": [round(t, 3) for t in times], "test_accuracy": round(result.test_accuracy, 4)})
    machine = hardware("cpu")  # after the fits: load_avg_1m is the load they ran under
    return {"device": "cpu", "hardware": machine["label"], "torch": torch.__version__, "machine": machine,
            "data": "digits spec (sklearn, 1,438 train / 359 test, per-image whitened)",
            "model": "mlp1x512 (models.build)", "settings": used, "fit_defaults": settings,
            "repeats": args.repeats, "rows": rows}


def print_table(report: dict) -> None:
    print(f"\n{report['hardware']} ({report['device']}), torch {report['torch']}")
    rows = report["rows"]
    keys = [k for k in rows[0] if k not in ("detail", "train_seconds")]
    print("  ".join(f"{k:>18}" for k in keys))
    for row in rows:
        print("  ".join(f"{str(row[k]):>18}" for k in keys))
    if "random_label_fit" in report:
        r = report["random_label_fit"]
        print(f"random-label fit: fitted={r['fitted']} epochs={r['epochs']} train {r['train_seconds']} s "
              f"(total {r['total_seconds']} s), train acc {r['train_accuracy']:.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--data", default=None, help="CIFAR-10: an image folder / .tar.gz, or a load() spec")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per GPU method")
    parser.add_argument("--peak-tflops", type=float, default=990.0, help="dense bf16 peak of the GPU")
    parser.add_argument("--full-fit", action="store_true", help="GPU: also fit random labels to 100%%")
    parser.add_argument("--compile", action="store_true",
                        help="GPU: also time fit(compile=True) (torch.compile'd forward inside the CUDA graph)")
    parser.add_argument("--full-fit-epochs", type=int, default=100)
    parser.add_argument("--full-fit-seconds", type=float, default=150.0)
    parser.add_argument("--repeats", type=int, default=3, help="CPU: fits per labelling")
    parser.add_argument("--threads", type=int, default=None, help="CPU: torch intra-op threads")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true",
                        help="run the GPU benchmark's code on the CPU with tiny data (a check, not a figure)")
    args = parser.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    if args.threads:
        torch.set_num_threads(args.threads)
    report = bench_gpu(args) if device == "cuda" or args.smoke else bench_cpu(args)
    report["command"] = " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:]))
    print_table(report)
    write_json(report, args.out or RESULTS / f"training-{'smoke' if args.smoke else device}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
