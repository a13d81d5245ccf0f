"""Minimum-norm kernel interpolation (paper section 5) on digits and CIFAR-10: true vs random labels.

Prints a table and writes JSON (default benchmarks/results/kernel-<device>.json). Each training
size builds and factors one Gram matrix and solves the true and the random labelling against it.

    python benchmarks/bench_kernel.py                                  # digits only
    python benchmarks/bench_kernel.py --data /path/cifar10-jpg.tar.gz --n 2000,4000
    python benchmarks/bench_kernel.py --data /path/cifar10 --device cuda --n 10000,50000
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from rethink_checks.corruptions import CorruptionSpec
from rethink_checks.data import Dataset, load, load_digits
from rethink_checks.theory import KernelInterpolant

from _common import RESULTS, hardware, write_json  # benchmarks/_common.py

PAPER = {"cifar10_rbf_pixels_test_error": 0.46, "mnist_test_error": 0.012,
         "source": "Zhang et al. 2017, section 5 (full CIFAR-10 training set, Gaussian kernel on pixels)"}


def _sizes(text: str, total: int, device: torch.device) -> list[int]:
    """Training sizes from '--n': a comma list, 'all', or 'auto' (what fits: 4,000 on CPU, all on CUDA)."""
    if text == "all":
        return [total]
    if text == "auto":
        if device.type != "cuda":
            return [min(total, 4000)]
        free, _ = torch.cuda.mem_get_info(device)
        fits = int((free * 0.8 / 8 / 3) ** 0.5)  # Gram, its Cholesky factor and the rest, float64
        return [min(total, fits)]
    sizes = [int(s) for s in text.split(",") if s.strip()]
    bad = [s for s in sizes if not 1 <= s <= total]
    if bad:
        sys.exit(f"--n: sizes {bad} are outside [1, {total}] (the training split has {total} examples)")
    return sizes


def _run(data: Dataset, n: int, kernel: str, args: argparse.Namespace, device: torch.device) -> list[dict]:
    """One Gram matrix on n training points; rows for the true and the random labelling."""
    sub = data if n == len(data.train_x) else data.subset(n, seed=args.seed)
    if args.n_test and args.n_test < len(sub.test_x):
        sub = sub.subset(len(sub.train_x), seed=args.seed, n_test=args.n_test)
    noisy = CorruptionSpec(name="random_labels", seed=args.seed).apply(sub)
    dtype = torch.float32 if args.dtype == "float32" else torch.float64
    started = time.perf_counter()
    model = KernelInterpolant(sub.train_x, kernel=kernel, jitter=args.jitter, device=str(device), dtype=dtype)
    results = model.interpolate_many({"true": sub.train_y, "random": noisy.train_y}, sub.test_x, sub.test_y,
                                     num_classes=data.num_classes)
    total = time.perf_counter() - started
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return [{"data": data.name, "labels": name, **res.to_dict(), "wall_seconds_both": total}
            for name, res in results.items()]


def _fmt(x: object) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return "-" if x is None else str(x)


def _table(rows: list[dict]) -> str:
    cols = ["data", "kernel", "labels", "n_train", "n_test", "train_error", "test_error", "rkhs_norm",
            "bandwidth", "solver", "gram_seconds", "solve_seconds", "wall_seconds_both"]
    cells = [cols] + [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CIFAR-10 as an image folder or .tar.gz of one (train/<class>/*, "
                        "test/<class>/*), or any rethink_checks.data.load spec")
    parser.add_argument("--n", default="auto", help="CIFAR training sizes: comma list, 'all', or 'auto'")
    parser.add_argument("--n-test", type=int, default=None, help="test examples (default: all)")
    parser.add_argument("--kernels", default="rbf", help="kernels for --data (digits always runs rbf,linear)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/kernel-<device type>.json)")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    rows: list[dict] = []
    out = Path(args.out) if args.out else RESULTS / f"kernel-{device.type}.json"

    def save() -> None:  # after every size, so a run cut short still leaves its rows
        doc = {"benchmark": "kernel_interpolation",
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "hardware": hardware(device), "args": vars(args), "paper": PAPER, "rows": rows}
        write_json(doc, out, quiet=True)

    if not args.skip_digits:
        digits = load_digits(seed=args.seed)
        for kernel in ("rbf", "linear"):
            rows += _run(digits, len(digits.train_x), kernel, args, device)
            print(_table(rows[-2:]), flush=True)
            save()
    if args.data:
        spec = args.data if ":" in args.data and not Path(args.data).exists() else f"folder:{args.data},raw"
        started = time.perf_counter()
        data = load(spec).replace(name="cifar10-jpg" if "cifar" in args.data.lower() else Path(args.data).stem)
        print(f"loaded {spec} in {time.perf_counter() - started:.1f}s: {len(data.train_x)} train, "
              f"{len(data.test_x)} test, shape {data.input_shape}", flush=True)
        for n in _sizes(args.n, len(data.train_x), device):
            for kernel in args.kernels.split(","):
                rows += _run(data, n, kernel, args, device)
                print(_table(rows[-2:]), flush=True)
                save()
    print("\n" + _table(rows))
    save()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
