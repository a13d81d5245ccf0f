"""Streamed against materialized training (issue #22): the epoch time of a fit fed through a
DataLoader (``rethink_checks.streaming``) as a ratio to the device-resident fit on the same data.

Data: ``--images`` uint8 3x32x32 images held by a map-style torch Dataset (as torchvision
datasets hand them over), 10 classes. Model: the small BN + dropout CNN of the CPU scenarios.
Each variant (materialized; streamed with 0 workers; streamed with ``--workers``) runs one fit
of ``--epochs`` epochs (no evaluation until the last), interleaved over ``--reps`` reps; the
figure is the median training seconds per epoch (``FitResult.train_seconds / epochs``) and
the ratio is materialized / streamed (1.0: as fast; the aim is >= 0.7 on CPU).

Usage: python benchmarks/bench_streaming.py [--images 2048] [--epochs 2] [--reps 3]
           [--workers 2] [--threads 2] [--quick] [--out PATH]
"""
from __future__ import annotations

import argparse
import statistics

import torch

from rethink_checks.data import as_dataset
from rethink_checks.training import fit

from _common import RESULTS, hardware, write_json  # benchmarks/_common.py
from scenarios import nets  # benchmarks/scenarios/nets.py


class Images(torch.utils.data.Dataset):
    """uint8 images and labels in memory, read item by item."""

    def __init__(self, n: int):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
        self.targets = torch.randint(0, 10, (n,), generator=g).tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.x[i], self.targets[i]


def epoch_seconds(data, epochs: int) -> float:
    result = fit(lambda: nets.bn_cnn((3, 32, 32), 10), data, max_epochs=epochs, eval_every=10_000, batch_size=128,
                 device="cpu", test_sample=1)
    return result.train_seconds / result.epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="256 images, 1 epoch, 1 rep (a smoke test)")
    parser.add_argument("--out", default=str(RESULTS / "streaming-cpu.json"))
    args = parser.parse_args()
    if args.quick:
        args.images, args.epochs, args.reps = 256, 1, 1
    torch.set_num_threads(args.threads)
    ds = Images(args.images)
    variants = {"materialized": as_dataset(ds, stream=False, cache=False),
                "streamed_w0": as_dataset(ds, stream=True),
                f"streamed_w{args.workers}": as_dataset(ds, stream=True).replace(workers=args.workers)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.reps):  # interleaved: load drifts hit every variant alike
        for name, data in variants.items():
            times[name].append(epoch_seconds(data, args.epochs))
    median = {k: statistics.median(v) for k, v in times.items()}
    base = median["materialized"]
    print(f"{'variant':<16} {'s/epoch':>8} {'ratio':>6}  (materialized / variant; aim >= 0.7)")
    for name, s in median.items():
        print(f"{name:<16} {s:8.3f} {base / s:6.2f}")
    write_json({"images": args.images, "epochs": args.epochs, "reps": args.reps, "threads": args.threads,
                "seconds_per_epoch": times, "median": median,
                "ratio": {k: base / s for k, s in median.items()}, "machine": hardware("cpu")}, args.out)


if __name__ == "__main__":
    main()
