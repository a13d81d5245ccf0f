"""Reproduce Table 1 and Figure 1 of Zhang et al. (ICLR 2017): the resumable command line.

``python -m rethink_checks.reproduce --data D --out OUT`` (also ``rethink-reproduce``) parses
the command line into a :class:`~.options.ReproduceOptions` (the ``argparse.Namespace`` never
leaves this module), loads the data (:mod:`.inputs`), plans the runs (:mod:`.runs`), trains
those not already in ``OUT/runs`` and writes ``OUT/report.md`` with our numbers beside the
paper's (:mod:`.report`, numbers from :mod:`.paper`). Run it with ``--help`` for the options.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import DataError
from ..specs import SPEC_FORMS, parse_spec
from .inputs import OptionError, is_spec, prepare_data
from .options import DEFAULT_P, DEFAULT_WEIGHT_DECAY, PREPROCESS_CHOICES, ROW_GROUPS, ReproduceOptions
from .paper import MODEL_NAMES, VARIANTS
from .report import write_report
from .runs import common_settings, make_plan, run_plan

REPORT_RESERVE_S = 15.0    # seconds of the time budget kept back for writing the report


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


def _data_arg(text: str) -> str:
    """A --data value: a spec must pass parse_spec (as everywhere); a path is checked later."""
    if is_spec(text):
        try:
            parse_spec(text)
        except DataError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m rethink_checks.reproduce`` command line."""
    ap = argparse.ArgumentParser(
        prog="python -m rethink_checks.reproduce",
        description="Reproduce Table 1 and Figure 1 of Zhang et al. (ICLR 2017); resumable.")
    ap.add_argument("--data", required=True, type=_data_arg,
                    help=f"data spec ({SPEC_FORMS}), a folder "
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
                    help="learning-rate factor per 391 optimizer steps, the paper's CIFAR-10 epoch (default 0.95)")
    ap.add_argument("--preprocess", choices=PREPROCESS_CHOICES, default="auto",
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


def parse_options(argv: Sequence[str],
                  parser: argparse.ArgumentParser | None = None) -> ReproduceOptions:
    """The command line as a typed ReproduceOptions; argparse exits (code 2) on a bad value."""
    args = (parser or build_parser()).parse_args(list(argv))
    values = {f.name: getattr(args, f.name) for f in fields(ReproduceOptions) if f.name != "argv"}
    return ReproduceOptions(**values, argv=tuple(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected reproduction, resuming from OUT/runs, and write OUT/report.md."""
    start = time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    options = parse_options(argv, parser)
    deadline = (None if options.time_budget is None
                else start + options.time_budget - REPORT_RESERVE_S)
    options.out.mkdir(parents=True, exist_ok=True)
    if options.device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            parser.error(f"argument --device: {options.device!r} asked for, but torch "
                         f"{torch.__version__} sees no CUDA device (use --device cpu or auto)")
    try:
        dataset, data_spec, label, paper_pre = prepare_data(options)
    except OptionError as exc:
        parser.error(f"argument {exc.option}: {exc}")
    except (FileNotFoundError, ValueError) as exc:  # DataError is a ValueError
        parser.error(f"argument --data: {exc}")
    common = common_settings(options, data_spec, paper_pre)
    plan = make_plan(options.rows, options.table_rows, options.models, options.p,
                     options.figure_model, options.weight_decay)
    records = run_plan(plan, dataset, options, common, deadline)
    report = write_report(plan, records, options, common, label, dataset,
                          time.monotonic() - start)
    print(f"report: {report}", file=sys.stderr)
    return 1 if any(r.status == "failed" for r in records.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
