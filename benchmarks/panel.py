"""The calibration panel: do the default criteria pass ordinary models and fail incapable ones?

    python benchmarks/panel.py                      # full panel: 3 seeds, digits and CIFAR-10 subset
    python benchmarks/panel.py --quick              # plumbing smoke run: 2 seeds, 64 examples,
                                                    # 3 epochs, 3 checks (its verdicts mean nothing)
    python benchmarks/panel.py --data digits --seeds 3 --checks true_labels,random_labels,slowdown

Ordinary architectures (they must PASS every default check): the paper's MLP 1x512 and
3x512 and small AlexNet, a BN + dropout CNN (two 3x3 convolutions with batch norm, a pool to a
4 x 4 map, dropout 0.2, about 29k parameters on any image size), LeNet-5, a small ResNet
(ResNet-8), torchvision's ResNet-18 and MobileNetV3-small, and the paper's small Inception
where a GPU is present.
Incapable controls (they must FAIL ``random_labels``): a linear model, a 16-unit MLP and a
linear model of 4 x 4 average-pooled pixels, each only on the data where it is incapable. A
linear model is incapable only while the training set is larger than its input dimension
(n > d: 400 digits of d = 64), and a 16-unit MLP only while it has few parameters per example
(1,210 for 400 digits); on the 500-image CIFAR-10 subset (d = 3,072; the MLP has 49,338
parameters) both memorize random labels within the 600-epoch budget, as the paper predicts
for models with more parameters than examples. There they are "reference" rows, reported and
not judged, and the pooled linear model (d = 48) is the control. ``bn_dropout_cnn_flat`` (the
CNN without its 4 x 4 pool) is a reference row everywhere: it keeps a learning-rate blow-up on
CIFAR-10 reproducible. The summary judges the data as the specs load it by default (rows
labelled ``cifar+raw`` or ``cifar+paper`` are summarized apart, under ``by_data``).

Every check runs through ``rethink_checks.checks.run_check`` with the data's own defaults
(``Dataset.check_defaults`` and ``fit_defaults``, as the plugin layers them), then the panel's
``--train-size``, ``--seeds``, ``--device`` and any ``--set key=value``; the default checks
are the memorization checks and slowdown (``partial_labels`` and ``regularizers`` add 7 fits
a model and seed; add them with ``--checks``). Fits are shared through one run cache per model
and data, so ``slowdown`` costs nothing extra. Cost: (models x data x seeds x 5) fits.

Margins: for the fit checks, ``budget x`` = max_epochs / the worst seed's epochs to fit (how
far the epoch budget could shrink); for partial_labels, max_epochs / the upper end of the 95%
interval of the slowest level's epochs; for slowdown, ``limit x`` = max_slowdown / the upper end
of the 95% interval of the worst mean ratio; for memorization, the worst seed's AUC /
min_memorization_auc; for regularizers, max_regularizer_gain - the mean gain; for capacity,
the worst seed's n* / the capacity asked for (min_capacity, else every example). Writes
benchmarks/results/panel.json (and a markdown table with ``--markdown``), with the machine it
ran on; the JSON is rewritten after every row (``"partial": true`` until the end), so a
stopped run keeps what it measured.

Runs split across processes (models side by side, one torch thread each) become one panel with
``--merge RUN.json [RUN.json ...] --out panel.json``: a later run's row replaces an earlier
run's row of the same data, model and check, and the merged JSON lists every run's command.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from _common import RESULTS, hardware, write_json

from rethink_checks.checks import CheckSettings, RunCache, run_check
from rethink_checks.corruptions import NotApplicable
from rethink_checks.data import load
from rethink_checks.layers import layered
from rethink_checks.models import count_parameters, mlp, small_alexnet, small_inception

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKS = ("true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian",
                  "slowdown")
FIT_CHECKS = ("true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")
QUICK_CHECKS = ("true_labels", "random_labels", "slowdown")
CHECK_ORDER = FIT_CHECKS + ("slowdown", "partial_labels", "regularizers", "capacity", "expressivity",
                            "memorization")
DATA = {"digits": ("digits", 400), "cifar": ("folder:{cifar}", 500)}


# ---------------------------------------------------------------- architectures

def _flat(features: nn.Module, shape: tuple[int, ...]) -> int:
    with torch.no_grad():
        return int(features(torch.zeros(1, *shape)).numel())


def bn_dropout_cnn(shape: tuple[int, ...], k: int, grid: int | None = 4) -> nn.Module:
    """Two 3x3 convolutions with batch norm, a 2x2 max pool, an average pool to a ``grid`` x
    ``grid`` map, dropout 0.2: 29k parameters on any image size. The grid pool (as torchvision's
    VGG pools to 7 x 7) is the identity on the 8 x 8 digits; on 32 x 32 CIFAR-10 it keeps the
    head at 1,024 inputs. ``grid=None`` is the model before it (``bn_dropout_cnn_flat``): 16,384
    head inputs on CIFAR-10, whose steps at lr 0.01 blew up on one seed (docs/checks.md)."""
    pool = [nn.AdaptiveAvgPool2d(grid)] if grid else []
    features = nn.Sequential(
        nn.Conv2d(shape[0], 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(2), *pool, nn.Dropout(0.2), nn.Flatten())
    return nn.Sequential(features, nn.Linear(_flat(features, shape), k))


def lenet(shape: tuple[int, ...], k: int) -> nn.Module:
    """LeNet-5 with ReLU and max pooling (5x5 convolutions padded to keep small inputs)."""
    features = nn.Sequential(
        nn.Conv2d(shape[0], 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    return nn.Sequential(features, nn.Linear(_flat(features, shape), 120), nn.ReLU(),
                         nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, k))


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def small_resnet(shape: tuple[int, ...], k: int) -> nn.Module:
    """ResNet-8: a 16-channel stem and three basic blocks (16, 32, 64 channels)."""
    return nn.Sequential(nn.Conv2d(shape[0], 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                         nn.ReLU(), _Block(16, 16, 1), _Block(16, 32, 2), _Block(32, 64, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, k))


def _first_conv_to(model: nn.Module, conv_path: str, channels: int) -> nn.Module:
    """Replace the 3-channel stem convolution at ``conv_path`` by one taking ``channels``."""
    parent_path, _, name = conv_path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    old = getattr(parent, name)
    if old.in_channels != channels:
        setattr(parent, name, nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride,
                                        old.padding, bias=old.bias is not None))
    return model


def resnet18(shape: tuple[int, ...], k: int) -> nn.Module:
    """torchvision ResNet-18 (11M parameters), untrained, its stem adapted to the channels."""
    from torchvision.models import resnet18 as build

    return _first_conv_to(build(num_classes=k), "conv1", shape[0])


def mobilenet_v3_small(shape: tuple[int, ...], k: int) -> nn.Module:
    """torchvision MobileNetV3-small (1.5M parameters; BN, dropout 0.2), untrained."""
    from torchvision.models import mobilenet_v3_small as build

    return _first_conv_to(build(num_classes=k), "features.0.0", shape[0])


def linear(shape: tuple[int, ...], k: int) -> nn.Module:
    """Control: a linear classifier of the flattened input."""
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(shape).prod()), k))


def pooled_linear(shape: tuple[int, ...], k: int) -> nn.Module:
    """Control: a linear classifier of the 4 x 4 average-pooled input (48 features on CIFAR-10),
    incapable on any subset larger than a few hundred images, unlike the raw linear model."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(shape[0] * 16, k))


#: name -> (builder, learning rate or None for the fit default, GPU only, the data it is an
#: incapable control on: () for an ordinary model; on other data a control is a reference row)
ARCHITECTURES: dict[str, tuple[Callable[[tuple[int, ...], int], nn.Module], float | None, bool, tuple[str, ...]]] = {
    "mlp_1x512": (lambda s, k: mlp(s, k, depth=1, width=512), 0.01, False, ()),
    "mlp_3x512": (lambda s, k: mlp(s, k, depth=3, width=512), 0.01, False, ()),
    "small_alexnet": (small_alexnet, 0.01, False, ()),
    "bn_dropout_cnn": (bn_dropout_cnn, None, False, ()),
    "bn_dropout_cnn_flat": (lambda s, k: bn_dropout_cnn(s, k, grid=None), None, False, ()),
    "lenet5": (lenet, None, False, ()),
    "small_resnet": (small_resnet, None, False, ()),
    "resnet18": (resnet18, None, False, ()),
    "mobilenet_v3_small": (mobilenet_v3_small, None, False, ()),
    "small_inception": (lambda s, k: small_inception(s, k, batch_norm=True), 0.1, True, ()),
    "control_linear": (linear, None, False, ("digits",)),
    "control_mlp_1x16": (lambda s, k: mlp(s, k, depth=1, width=16), None, False, ("digits",)),
    "control_pooled_linear": (pooled_linear, None, False, ("digits", "cifar")),
}


#: ordinary models kept as reference rows on every data (measured, judged neither way): the
#: BN + dropout CNN as it was before its grid pool, to keep its blow-up on CIFAR-10 reproducible
REFERENCE = ("bn_dropout_cnn_flat",)


# ---------------------------------------------------------------- running

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny smoke run: 2 seeds, 64 examples, 3 epochs, CPU-sized models only")
    p.add_argument("--data", default="digits,cifar", help="comma-separated: digits, cifar")
    pre = p.add_mutually_exclusive_group()
    pre.add_argument("--paper", action="store_true",
                     help="CIFAR-10 with the paper's preprocessing (28x28 centre crop, per-image whitening); "
                          "rows labelled cifar+paper")
    pre.add_argument("--raw", action="store_true",
                     help="CIFAR-10 as [0, 1] pixels, not whitened (the default before 2026-11-29); "
                          "rows labelled cifar+raw")
    p.add_argument("--cifar", default=str(ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"),
                   help="the CIFAR-10 image-folder archive (default ../shared/data/cifar10-jpg.tar.gz)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--models", default="", help="comma-separated subset of " + ", ".join(ARCHITECTURES))
    p.add_argument("--checks", default=None,
                   help="default: " + ",".join(DEFAULT_CHECKS) + " (--quick: " + ",".join(QUICK_CHECKS) + ")")
    p.add_argument("--train-size", type=int, default=None,
                   help="training examples (default: digits 400, cifar 500)")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a CheckSettings / FitConfig override (repeatable), e.g. max_epochs=50")
    p.add_argument("--out", default=str(RESULTS / "panel.json"))
    p.add_argument("--markdown", default=None, help="also write the table as markdown to PATH")
    p.add_argument("--merge", nargs="+", default=None, metavar="RUN.json",
                   help="merge earlier runs into --out instead of running (later runs win per data, model, check)")
    args = p.parse_args(argv)
    args.command = "python benchmarks/panel.py " + " ".join(sys.argv[1:] if argv is None else argv)
    return args


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in args.set:
        key, sep, value = entry.partition("=")
        if not sep:
            raise SystemExit(f"--set {entry!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    if args.quick:
        out.setdefault("max_epochs", 3)
    return out


def _models(args: argparse.Namespace, gpu: bool) -> list[str]:
    names = [n.strip() for n in args.models.split(",") if n.strip()] or list(ARCHITECTURES)
    unknown = [n for n in names if n not in ARCHITECTURES]
    if unknown:
        raise SystemExit(f"--models: unknown {unknown}; allowed: {', '.join(ARCHITECTURES)}")
    return [n for n in names if gpu or not ARCHITECTURES[n][2]]


def _factory(name: str, shape: tuple[int, ...], k: int) -> Callable[[], nn.Module]:
    build, lr, _, _ = ARCHITECTURES[name]

    def make() -> nn.Module:
        model = build(shape, k)
        if lr is not None:
            model.rethink_lr = lr
        return model
    return make


def _role(model: str, data: str) -> dict[str, Any]:
    """``role``: ordinary, control (incapable on this data) or reference; ``control``: the flag."""
    incapable_on, data = ARCHITECTURES[model][3], data.split("+")[0]  # cifar+paper, cifar+raw: still cifar
    role = ("reference" if model in REFERENCE or (incapable_on and data not in incapable_on)
            else "control" if incapable_on else "ordinary")
    return {"control": role == "control", "role": role}


def _worst(result: Any, key: str, pick: Callable[..., Any]) -> Any:
    """``pick`` (min or max) of every seed's ``key`` (the one result's for a single seed);
    None when a seed has none."""
    values = [r.get(key) for r in result.tables.get("seeds", [])] or [result.metrics.get(key)]
    return None if any(x is None for x in values) else pick(values)


def _margin(check: str, result: Any, settings: CheckSettings) -> dict[str, Any]:
    """The judged value, its interval, the limit and the margin (see the module docstring)."""
    m = result.metrics
    if check in FIT_CHECKS:
        worst = _worst(result, "epochs_to_fit", max)
        return {"value": "epochs_to_fit", "mean": m.get("epochs_to_fit"),
                "ci_high": m.get("epochs_to_fit.ci_high"), "worst": worst,
                "limit": settings.fit.max_epochs,
                "margin": None if not worst else settings.fit.max_epochs / worst}
    if check == "slowdown":
        high = m.get("slowdown.max.ci_high") or m.get("slowdown.max")
        return {"value": "slowdown.max", "mean": m.get("slowdown.max"), "ci_high": high,
                "worst": max((r.get("slowdown.max") or 0) for r in result.tables.get("seeds", [m])),
                "limit": settings.max_slowdown,
                "margin": None if not high else settings.max_slowdown / high}
    if check == "partial_labels":  # the slowest level's epochs against the budget
        levels = [f"epochs_to_fit@{p:g}" for p in settings.partial_levels]  # checks.py's keys
        highs = [m.get(k + ".ci_high", m.get(k)) for k in levels]
        worst = None if any(h is None for h in highs) else max(highs)
        return {"value": "epochs_to_fit@slowest p",
                "mean": max((m[k] for k in levels if m.get(k) is not None), default=None),
                "ci_high": worst, "worst": worst, "limit": settings.fit.max_epochs,
                "margin": None if not worst else settings.fit.max_epochs / worst}
    if check == "memorization":  # every seed's detector AUC over its floor
        low = _worst(result, "auc", min)
        return {"value": "auc", "mean": m.get("auc"), "ci_high": m.get("auc.ci_high"), "worst": low,
                "limit": settings.min_memorization_auc,
                "margin": None if low is None else low / settings.min_memorization_auc}
    if check == "capacity":  # the worst seed's n* over the capacity asked for (default: every example)
        low = _worst(result, "n_star", min)
        need = m.get("min_capacity") or m.get("n_train")
        return {"value": "n_star", "mean": m.get("n_star"), "ci_high": m.get("n_star.ci_high"),
                "worst": low, "limit": need, "margin": None if not (low and need) else low / need}
    if check == "expressivity":
        return {"value": "residual", "mean": m.get("residual"), "ci_high": m.get("residual.ci_high"),
                "worst": None, "limit": None, "margin": None}
    if check == "regularizers":
        gain = m.get("gain")
        return {"value": "gain", "mean": gain, "ci_high": m.get("gain.ci_high"), "worst": None,
                "limit": settings.max_regularizer_gain,
                "margin": None if gain is None else settings.max_regularizer_gain - gain}
    return {"value": "", "mean": None, "ci_high": None, "worst": None, "limit": None, "margin": None}


def run_panel(args: argparse.Namespace,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
        "cpu" if args.device == "auto" else args.device)
    chosen = args.checks or ",".join(QUICK_CHECKS if args.quick else DEFAULT_CHECKS)
    checks = [c.strip() for c in chosen.split(",") if c.strip()]
    if "slowdown" in checks:  # last: it reuses every memorization fit
        checks = [c for c in checks if c != "slowdown"] + ["slowdown"]
    seeds = 2 if args.quick and args.seeds == 3 else args.seeds
    rows, start = [], time.perf_counter()
    for data_name in [d.strip() for d in args.data.split(",") if d.strip()]:
        spec, size = DATA[data_name]
        option = ("paper" if args.paper else "raw" if args.raw else "") if data_name == "cifar" else ""
        data = load(spec.format(cifar=args.cifar) + (f",{option}" if option else ""))
        size = 64 if args.quick else (args.train_size or size)
        settings = layered(data, cli={"train_size": size, "seeds": seeds, "device": device,
                                      **_overrides(args)}).settings
        for model_name in _models(args, device.startswith("cuda")):
            if args.quick and model_name in ("resnet18", "mobilenet_v3_small") and data_name != "digits":
                continue  # the quick run keeps CPU time small
            factory = _factory(model_name, data.input_shape, data.num_classes)
            params = count_parameters(factory())
            cache = RunCache()
            for check in checks:
                t0 = time.perf_counter()
                try:
                    result = run_check(check, factory, data, settings, cache)
                except NotApplicable as exc:
                    print(f"{data_name} {model_name} {check}: skipped ({exc})", flush=True)
                    continue
                row = {"data": data_name + (f"+{option}" if option else ""),
                       "train_size": size, "model": model_name, **_role(model_name, data_name), "params": params, "check": check,
                       "passed": result.passed, "seeds": result.metrics.get("seeds", 1),
                       "seeds_passed": result.metrics.get("seeds_passed", int(result.passed)),
                       **_margin(check, result, settings),
                       "seconds": round(time.perf_counter() - t0, 2), "message": result.message}
                rows.append(row)
                print(_line(row), flush=True)
                if on_row is not None:
                    on_row(_report(device, seeds, checks, args, rows, start, partial=True))
    return _report(device, seeds, checks, args, rows, start, partial=False)


def _report(device: str, seeds: int, checks: list[str], args: argparse.Namespace,
            rows: list[dict[str, Any]], start: float, partial: bool) -> dict[str, Any]:
    return {"machine": hardware(device), "command": getattr(args, "command", None), "seeds": seeds,
            "checks": checks, "quick": args.quick,
            "settings_overrides": _overrides(args), "partial": partial, "rows": rows,
            "summary": summaries(rows), "seconds": round(time.perf_counter() - start, 1)}


def merge(runs: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """One panel from several runs: a later run's row replaces earlier rows of the same
    (data, model, check); rows are ordered by data, then as ARCHITECTURES and CHECK_ORDER."""
    def key(r: dict[str, Any]) -> tuple[str, str, str]:
        return r["data"], r["model"], r["check"]
    owner = {key(r): i for i, run in enumerate(runs) for r in run["rows"]}
    rows = [{**r, **_role(r["model"], r["data"])}  # roles as ARCHITECTURES says now
            for i, run in enumerate(runs) for r in run["rows"] if owner[key(r)] == i]
    data_order = list(dict.fromkeys(r["data"] for r in rows))
    models, checks = list(ARCHITECTURES), list(CHECK_ORDER)
    rows.sort(key=lambda r: (data_order.index(r["data"]), models.index(r["model"]),
                             checks.index(r["check"]) if r["check"] in checks else len(checks)))
    listed = [{"file": name, "command": run.get("command"), "checks": run["checks"],
               "settings_overrides": run["settings_overrides"], "seconds": run["seconds"],
               "partial": run.get("partial", False),
               "models": sorted({r["model"] for r in run["rows"] if owner[key(r)] == i}),
               **{k: run[k] for k in ("note", "runs") if run.get(k)}}  # a relabelling, an earlier merge's runs
              for i, (name, run) in enumerate(zip(names, runs))]
    return {"machine": runs[-1]["machine"], "seeds": runs[-1]["seeds"],
            "checks": sorted({c for run in runs for c in run["checks"]}), "quick": any(run["quick"] for run in runs),
            "settings_overrides": {}, "partial": any(run.get("partial") for run in runs),
            "runs": listed, "rows": rows, "summary": summaries(rows),
            "seconds": round(sum(run["seconds"] for run in runs), 1)}


def summaries(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The panel's verdict on the data as the built-in specs load it (rows whose data has no
    ``+option``, else every row), and ``by_data``: one summary per data label (cifar+raw, ...)."""
    labels = dict.fromkeys(r["data"] for r in rows)
    default = [r for r in rows if "+" not in r["data"]] or rows
    return {**summarize(default), "by_data": {d: summarize([r for r in rows if r["data"] == d]) for d in labels}}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Ordinary models: all passed, and the smallest margin per check; controls: each failed
    random_labels. Reference rows are neither."""
    ordinary = [r for r in rows if r.get("role", "control" if r["control"] else "ordinary") == "ordinary"]
    controls = {(r["data"], r["model"]) for r in rows if r["control"]}
    failed_controls = {(r["data"], r["model"]) for r in rows
                       if r["control"] and not r["passed"] and r["check"] == "random_labels"}
    margins: dict[str, float] = {}
    for r in ordinary:
        if r["margin"] is not None:
            margins[r["check"]] = min(margins.get(r["check"], float("inf")), r["margin"])
    return {"ordinary_all_passed": all(r["passed"] for r in ordinary),
            "ordinary_failures": [f"{r['data']}/{r['model']}/{r['check']}: {r['message']}"
                                  for r in ordinary if not r["passed"]],
            "min_margin": margins,
            "controls_all_failed_random_labels": failed_controls == controls,
            "controls_that_passed": sorted(f"{d}/{m}" for d, m in controls - failed_controls)}


def _fmt(x: Any, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec) if isinstance(x, float) else str(x)


def _line(r: dict[str, Any]) -> str:
    verdict = "PASS" if r["passed"] else "FAIL"
    return (f"{r['data']:6s} {r['model']:18s} {r['check']:15s} {verdict} "
            f"{r['seeds_passed']}/{r['seeds']}  {r['value']} {_fmt(r['mean'])} "
            f"(ci_high {_fmt(r['ci_high'])}, limit {_fmt(r['limit'])}, margin {_fmt(r['margin'])}x) "
            f"{r['seconds']}s")


def markdown(report: dict[str, Any]) -> str:
    """The panel as a markdown table, with the machine and the summary."""
    head = ("| data | model | params | check | verdict | seeds passed | value | mean | 95% high "
            "| limit | margin |")
    runs = f" ({len(report['runs'])} runs merged; seconds summed)" if report.get("runs") else ""
    lines = [f"Machine: {report['machine'].get('label')} (torch {report['machine'].get('torch')}); "
             f"{report['seeds']} seeds; {report['seconds']} s{runs}.", "", head,
             "|" + " --- |" * (head.count("|") - 1)]
    for r in report["rows"]:
        model = r["model"] + {"control": " (control)", "reference": " (reference)"}.get(r.get("role"), "")
        lines.append(f"| {r['data']} | {model} | {r['params']:,} | {r['check']} | "
                     f"{'PASS' if r['passed'] else 'FAIL'} | {r['seeds_passed']}/{r['seeds']} | "
                     f"{r['value']} | {_fmt(r['mean'])} | {_fmt(r['ci_high'])} | {_fmt(r['limit'])} | "
                     f"{_fmt(r['margin'])}{'x' if r['margin'] is not None and r['check'] != 'regularizers' else ''} |")
    s = report["summary"]
    lines.append("")
    for label, part in [("", s)] + [(f"{d}: ", v) for d, v in s.get("by_data", {}).items()
                                    if len(s["by_data"]) > 1 and "+" in d]:
        lines.append(f"{label}Ordinary models all pass: {part['ordinary_all_passed']}; smallest margins: "
                     + ", ".join(f"{k} {v:.2f}" for k, v in part["min_margin"].items())
                     + f"; controls all fail random labels: {part['controls_all_failed_random_labels']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        report = merge([json.loads(Path(f).read_text()) for f in args.merge], args.merge)
    else:
        report = run_panel(args, on_row=lambda partial: write_json(partial, Path(args.out), quiet=True))
    print(markdown(report))
    write_json(report, Path(args.out))
    if args.markdown:
        Path(args.markdown).write_text(markdown(report))
    s = report["summary"]
    return 0 if s["ordinary_all_passed"] and s["controls_all_failed_random_labels"] else 1


if __name__ == "__main__":
    sys.exit(main())
