"""Reproduce Table 1 and Figure 1 of Zhang et al. (ICLR 2017): the resumable command line.

``python -m rethink_checks.reproduce --data D --out OUT`` (also ``rethink-reproduce``) loads the
data, plans the runs (:mod:`.reproduce_runs`), trains those not already in ``OUT/runs`` and
writes ``OUT/report.md`` with our numbers beside the paper's (:mod:`.reproduce_report`, numbers
from :mod:`.paper`). Run it with ``--help`` for the options.
"""
from __future__ import annotations

import argparse
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .paper import MODEL_NAMES, VARIANTS
from .reproduce_report import write_report
from .reproduce_runs import (DEFAULT_P, DEFAULT_WEIGHT_DECAY, ROW_GROUPS, common_settings,
                             make_plan, run_plan)

REPORT_RESERVE_S = 15.0    # seconds of the time budget kept back for writing the report
#: data.load spec sources; a --data value starting with one of these is passed through.
SPEC_SOURCES = ("digits", "cifar10", "mnist", "folder")
DIGITS_LABELS = {"digits": "digits (8x8, per-image whitened)",
                 "digits,raw": "digits (8x8, raw pixels in [0, 1])"}


class OptionError(ValueError):
    """A command-line value that only the loaded data shows to be wrong; names its option."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _choices(allowed: Sequence[str], what: str) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"empty {what} list {text!r}; choose from "
                                             f"{', '.join(allowed)}")
        bad = [t for t in items if t not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(map(repr, bad))}; "
                                             f"choose from {', '.join(allowed)}")
        return list(dict.fromkeys(items))
    return parse


def _p_list(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"p values must be numbers in [0, 1], got {text!r}")
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"p values must be numbers in [0, 1], got {text!r}")
    return sorted(set(values))


def _number(kind: type, low: float, strict: bool = False) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}")
        if value < low or (strict and value == low):
            rel = ">" if strict else ">="
            raise argparse.ArgumentTypeError(f"must be {rel} {low:g}, got {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m rethink_checks.reproduce`` command line."""
    ap = argparse.ArgumentParser(
        prog="python -m rethink_checks.reproduce",
        description="Reproduce Table 1 and Figure 1 of Zhang et al. (ICLR 2017); resumable.")
    ap.add_argument("--data", required=True,
                    help="data spec (digits, cifar10:ROOT, folder:ROOT, mnist:ROOT), a folder "
                         "(cifar-10-batches-py or train/ + test/ class folders) or a .tar.gz "
                         "of one")
    ap.add_argument("--out", required=True, type=Path,
                    help="output folder (runs/, report.md, PNGs)")
    ap.add_argument("--models", type=_choices(MODEL_NAMES, "model"), default=list(MODEL_NAMES),
                    help="Table 1 models, in training order (default: all five)")
    ap.add_argument("--rows", type=_choices(ROW_GROUPS, "row group"), default=list(ROW_GROUPS),
                    help="parts to run: table1, figure1a, figure1bc (default: all)")
    ap.add_argument("--table-rows", type=_choices(tuple(VARIANTS), "Table 1 row"),
                    default=list(VARIANTS),
                    help="Table 1 variants, in training order: plain, random_labels, wd, crop, "
                         "crop_wd (default: all the paper has for each model)")
    ap.add_argument("--p", type=_p_list, default=list(DEFAULT_P),
                    help="label-corruption levels for Figure 1b/c (default 0,0.2,...,1.0)")
    ap.add_argument("--figure-model", choices=MODEL_NAMES, default="inception", metavar="MODEL",
                    help="model for Figure 1 (paper: inception)")
    ap.add_argument("--train-size", type=_number(int, 1), default=None,
                    help="seeded training subset (default: all)")
    ap.add_argument("--test-size", type=_number(int, 1), default=None,
                    help="seeded test subset (default: all)")
    ap.add_argument("--max-epochs", type=_number(int, 1), default=100,
                    help="epoch cap per run (default 100)")
    ap.add_argument("--target-accuracy", type=_number(float, 0.0, strict=True), default=1.0,
                    help="stop a run when full-train-set accuracy reaches this (default 1.0)")
    ap.add_argument("--weight-decay", type=_number(float, 0.0, strict=True),
                    default=DEFAULT_WEIGHT_DECAY,
                    help="value for the weight-decay rows; the paper gives none (default 5e-4)")
    ap.add_argument("--batch-size", type=_number(int, 1), default=128, help="default 128")
    ap.add_argument("--lr", type=_number(float, 0.0, strict=True), default=None,
                    help="override the paper's per-model learning rate")
    ap.add_argument("--lr-decay", type=_number(float, 0.0, strict=True), default=0.95,
                    help="learning-rate factor per epoch (default 0.95)")
    ap.add_argument("--preprocess", choices=("auto", "paper", "none"), default="auto",
                    help="paper = 28x28 centre crop + per-image whitening; auto = paper for "
                         "3x32x32 images (default)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--seed", type=_number(int, 0), default=0)
    ap.add_argument("--time-budget", type=_number(float, 0.0), default=None,
                    help="seconds for the whole command: no run starts after it, a running one "
                         "is stopped, the report is still written")
    ap.add_argument("--data-label", default=None, help="name of the data in the report")
    ap.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    return ap

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def _folder_spec(path: Path) -> str | None:
    """The ``data.load`` spec for a folder, looking one level down (archives add a top folder)."""
    for cand in (path, *sorted(p for p in path.iterdir() if p.is_dir())):
        if cand.name == "cifar-10-batches-py":
            return f"cifar10:{cand.parent}"
        if (cand / "cifar-10-batches-py").is_dir():
            return f"cifar10:{cand}"
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return f"folder:{cand}"
    return None


def resolve_data(data: str) -> tuple[str, str]:
    """(``data.load`` spec, label for the report) for a spec, a folder or a .tar(.gz) of one."""
    label = "CIFAR-10 (JPEG re-encoded)" if "cifar10-jpg" in data else None
    source = data.split(":", 1)[0].split(",", 1)[0].strip().lower()
    if source == "digits" or (":" in data and source in SPEC_SOURCES):
        return data, label or DIGITS_LABELS.get(data.strip().lower(), data)
    path = Path(data)
    if path.is_file() and tarfile.is_tarfile(path):
        spec = f"folder:{path.resolve()}"  # data.load_image_folder reads and caches archives
    elif path.is_dir():
        spec = _folder_spec(path)
    else:
        raise FileNotFoundError(f"{data!r} is no file or folder, nor a spec "
                                "(digits, cifar10:ROOT, mnist:ROOT, folder:ROOT)")
    if spec is None:
        raise FileNotFoundError(f"{data!r}: found neither cifar-10-batches-py nor train/ and "
                                "test/ class folders in it (or one level down)")
    return spec, label or spec


def _subset(dataset: Any, args: argparse.Namespace) -> Any:
    """The seeded --train-size / --test-size subset; sizes beyond the data are an OptionError."""
    for option, size, have in (("--train-size", args.train_size, len(dataset.train_x)),
                               ("--test-size", args.test_size, len(dataset.test_x))):
        if size is not None and size > have:
            split = option[2:-5]
            raise OptionError(option, f"{size} {split} examples asked for, but the data has "
                                      f"{have}; allowed: 1 to {have}")
    if args.train_size is None and args.test_size is None:
        return dataset
    return dataset.subset(args.train_size or len(dataset.train_x), seed=args.seed,
                          n_test=args.test_size)


def prepare_data(args: argparse.Namespace) -> tuple[Any, str, str, bool]:
    """(dataset, spec, label, paper preprocessing?): load, subset, preprocess CIFAR-like images.

    The data's own ``fit_defaults`` (the digits' batch 32 and constant learning rate) are not
    used: every run trains with the paper's schedule and the command's options.
    """
    from . import data as data_mod

    spec, label = resolve_data(args.data)
    dataset = _subset(data_mod.load(spec), args)
    paper = args.preprocess == "paper" or (
        args.preprocess == "auto" and tuple(dataset.input_shape) == (3, 32, 32))
    if paper:
        dataset = dataset.replace(train_x=data_mod.paper_preprocess(dataset.train_x),
                                  test_x=data_mod.paper_preprocess(dataset.test_x))
    return dataset, spec, args.data_label or label, paper


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected reproduction, resuming from OUT/runs, and write OUT/report.md."""
    start = time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    deadline = None if args.time_budget is None else start + args.time_budget - REPORT_RESERVE_S
    args.out.mkdir(parents=True, exist_ok=True)
    if args.device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            parser.error(f"argument --device: {args.device!r} asked for, but torch "
                         f"{torch.__version__} sees no CUDA device (use --device cpu or auto)")
    try:
        dataset, data_spec, label, paper_pre = prepare_data(args)
    except OptionError as exc:
        parser.error(f"argument {exc.option}: {exc}")
    except (FileNotFoundError, ValueError) as exc:  # DataError is a ValueError
        parser.error(f"argument --data: {exc}")
    common = common_settings(args, data_spec, paper_pre)
    plan = make_plan(args.rows, args.table_rows, args.models, args.p, args.figure_model,
                     args.weight_decay)
    records = run_plan(plan, dataset, args, common, deadline)
    report = write_report(plan, records, args, common, label, dataset, argv,
                          time.monotonic() - start)
    print(f"report: {report}", file=sys.stderr)
    return 1 if any(r.status == "failed" for r in records.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
