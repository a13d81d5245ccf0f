"""What makes one CPU training step faster: torch threads, channels_last, torch.compile.

For each model (batch 128, random inputs and labels, cross-entropy, torch.optim.SGD with
momentum 0.9) it times forward + backward + SGD step under these variants:

  t1 / t2        eager, contiguous, torch.set_num_threads(1) / (2)
  t1-cl / t2-cl  eager, channels_last model and input (convolutional models only)
  compiled       torch.compile(model) (inductor), contiguous, at --compile-threads threads

Repetitions are interleaved (rep 1 of every variant, then rep 2, ...) so load from other jobs
hits all variants alike; each rep times --steps steps after one warm-up step, and the figure is
the median over reps of each rep's median step. Compile time is the first compiled step
(forward and backward graphs, cold: a fresh inductor cache dir) minus an eager step; break-even steps = compile_s /
(eager_step - compiled_step) against eager at the same thread count ("never" when compiled
is not faster).

Models: MLP 1x512 on digits-sized input (1x8x8), the paper's small AlexNet at 3x28x28, a
small BN + dropout CNN, torchvision ResNet-18 and MobileNetV3-small at 3x32x32.

Usage: python benchmarks/bench_cpu_step.py [--quick] [--models a,b] [--reps 5] [--steps 5]
           [--compile-threads 1] [--no-compile] [--compile-models a,b] [--out PATH]
Prints a table and writes JSON (default benchmarks/results/cpu_step.json; --quick writes
nothing unless --out is given).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Cold compiles: a fresh inductor cache, so compile_s is what a first run pays (set before torch).
if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _CACHE = tempfile.mkdtemp(prefix="bench-cpu-step-inductor-")
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from rethink_checks.models import build  # noqa: E402
from rethink_checks.report import machine_info  # noqa: E402

from _common import RESULTS, write_json  # noqa: E402  benchmarks/_common.py
from scenarios import nets  # noqa: E402  benchmarks/scenarios/nets.py

BATCH = 128

#: name -> (input shape, factory(input_shape, num_classes), convolutional?)
MODELS: dict[str, tuple[tuple[int, int, int], Callable[..., nn.Module], bool]] = {
    "mlp1x512": ((1, 8, 8), lambda s, k: build("mlp1x512", s, k), False),
    "alexnet": ((3, 28, 28), lambda s, k: build("alexnet", s, k), True),
    "bn_cnn": ((3, 32, 32), nets.bn_cnn, True),
    "resnet18": ((3, 32, 32), nets.resnet18, True),
    "mobilenet_v3_small": ((3, 32, 32), nets.mobilenet_v3_small, True),
}


class Variant:
    """One way of running the step: a model copy, its optimizer, inputs, threads."""

    def __init__(self, name: str, factory: Callable[..., nn.Module], shape: tuple[int, ...],
                 threads: int, channels_last: bool = False, compiled: bool = False):
        self.name, self.threads, self.compiled = name, threads, compiled
        torch.manual_seed(0)
        model = factory(shape, 10).train()
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(BATCH, *shape, generator=gen)
        self.y = torch.randint(0, 10, (BATCH,), generator=gen)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        self.x = x
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.model = torch.compile(model) if compiled else model
        self.samples: list[float] = []  # one median step time per rep

    def step(self) -> float:
        """One training step; returns its wall-clock seconds."""
        torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - t0

    def rep(self, steps: int) -> None:
        self.step()  # warm-up: caches, allocator, thread pool size change
        self.samples.append(statistics.median(self.step() for _ in range(steps)))

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def bench_model(name: str, reps: int, steps: int, compile_threads: int | None) -> dict[str, Any]:
    """Time every variant of one model, interleaved; returns its JSON entry."""
    shape, factory, conv = MODELS[name]
    variants = [Variant("t1", factory, shape, 1), Variant("t2", factory, shape, 2)]
    if conv:
        variants += [Variant("t1-cl", factory, shape, 1, channels_last=True),
                     Variant("t2-cl", factory, shape, 2, channels_last=True)]
    entry: dict[str, Any] = {"input_shape": list(shape), "batch": BATCH,
                             "parameters": sum(p.numel() for p in variants[0].model.parameters())}
    compiled = None
    if compile_threads is not None:
        compiled = Variant("compiled", factory, shape, compile_threads, compiled=True)
        eager_ref = next(v for v in variants if v.threads == compile_threads)
        eager_first = eager_ref.step()
        t0 = time.perf_counter()
        try:
            compiled.step()  # compiles forward and backward
            compiled.step()  # first step after compile (optimizer state, guards)
        except Exception as exc:  # noqa: BLE001 - report why compile is unusable, keep the rest
            entry["compile_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            compiled = None
        else:
            entry["compile_s"] = round(time.perf_counter() - t0 - 2 * eager_first, 2)
            variants.append(compiled)
            print(f"   compiled in {entry['compile_s']} s", flush=True)
    for _ in range(reps):
        for v in variants:
            v.rep(steps)
    ms = {v.name: round(1000 * v.median, 2) for v in variants}
    entry["step_ms"] = ms
    entry["step_ms_per_rep"] = {v.name: [round(1000 * s, 2) for s in v.samples] for v in variants}
    ratios = {"t2_vs_t1": ms["t1"] / ms["t2"]}  # > 1: the second variant is faster
    if conv:
        ratios["cl_vs_contiguous_t1"] = ms["t1"] / ms["t1-cl"]
        ratios["cl_vs_contiguous_t2"] = ms["t2"] / ms["t2-cl"]
    if compiled is not None:
        eager = ms[f"t{compile_threads}"]
        ratios["compiled_vs_eager"] = eager / ms["compiled"]
        gain_s = (eager - ms["compiled"]) / 1000
        entry["compile_threads"] = compile_threads
        entry["break_even_steps"] = round(entry["compile_s"] / gain_s) if gain_s > 0 else None
    entry["speedup"] = {k: round(v, 3) for k, v in ratios.items()}
    entry["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    entry["measured"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entry["fastest"] = min(ms, key=ms.get)
    return entry


def _fmt_ratio(entry: dict[str, Any], key: str) -> str:
    value = entry["speedup"].get(key)
    return "-" if value is None else f"x{value:.2f}"


def print_table(results: dict[str, dict[str, Any]]) -> None:
    cols = ["model", "t1 ms", "t2 ms", "t1-cl ms", "t2-cl ms", "compiled ms", "t2/t1", "cl t1",
            "cl t2", "compile", "compile s", "break-even", "fastest"]
    rows = []
    for name, e in results.items():
        ms = e["step_ms"]
        be = e.get("break_even_steps")
        rows.append([name] + [f"{ms[k]:.1f}" if k in ms else "-"
                              for k in ("t1", "t2", "t1-cl", "t2-cl", "compiled")]
                    + [_fmt_ratio(e, k) for k in ("t2_vs_t1", "cl_vs_contiguous_t1",
                                                   "cl_vs_contiguous_t2", "compiled_vs_eager")]
                    + [str(e.get("compile_s", e.get("compile_error", "-"))),
                       "-" if "compile_s" not in e else ("never" if be is None else str(be)),
                       e["fastest"]])
    widths = [max(len(str(r[i])) for r in rows + [cols]) for i in range(len(cols))]
    for r in [cols] + rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))
    print("ratios: x>1 means the named variant (t2, channels_last, compiled) is faster")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: MLP only, 1 rep of 2 steps, no compile, no JSON unless --out")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, of: " + ",".join(MODELS))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per rep")
    parser.add_argument("--compile-threads", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--compile-models", default=None,
                        help="models that get the compiled variant (default: all of --models)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--merge", action="store_true",
                        help="keep the other models' entries of an existing --out file (each entry "
                        "carries its own time and load)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {unknown}; allowed: {', '.join(MODELS)}")
    if args.quick:
        names = [n for n in names if n == "mlp1x512"] or names[:1]
        args.reps, args.steps, args.no_compile = 1, 2, True
    threads_before = torch.get_num_threads()
    load_before = os.getloadavg()
    started = time.perf_counter()
    out = args.out if args.out is not None else (None if args.quick else RESULTS / "cpu_step.json")
    results: dict[str, Any] = {}
    if args.merge and out is not None and out.exists():
        results = {k: v for k, v in json.loads(out.read_text()).get("models", {}).items() if k not in names}
    for name in names:
        print(f"-- {name}", flush=True)
        compiles = not args.no_compile and (args.compile_models is None or name in args.compile_models.split(","))
        results[name] = bench_model(name, args.reps, args.steps, args.compile_threads if compiles else None)
        if out is not None and name != names[-1]:  # partial results survive an interrupted run
            write_json(_report(args, argv, load_before, os.getloadavg(), started, results), out, quiet=True)
    torch.set_num_threads(threads_before)
    report = _report(args, argv, load_before, os.getloadavg(), started, results)
    print_table(results)
    print(f"load average (1, 5, 15 min) before {report['load_avg_before']}, after "
          f"{report['load_avg_after']}; {report['seconds']} s")
    if out is not None:
        write_json(report, out)
    return 0


def _report(args: argparse.Namespace, argv: list[str] | None, load_before: tuple[float, ...],
            load_after: tuple[float, ...], started: float, results: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: machine, torch, load at both ends, per-model results."""
    return {
        "benchmark": "cpu_step", "torch": torch.__version__, "machine": machine_info(),
        "cpu_count": os.cpu_count(), "batch": BATCH, "reps": args.reps, "steps_per_rep": args.steps,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        # "idle": nothing else asked for the cores (1-minute load below 0.5 at both ends);
        # the benchmark itself adds up to 2 to the load while it runs.
        "idle": max(load_before[0], load_after[0] - 2) < 0.5,
        "seconds": round(time.perf_counter() - started, 1),
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "models": results,
    }


if __name__ == "__main__":
    sys.exit(main())
