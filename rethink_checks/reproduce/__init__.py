"""Reproduce Table 1 and Figure 1 of Zhang et al. (ICLR 2017), resumably.

``python -m rethink_checks.reproduce`` (script ``rethink-reproduce``) is :func:`main`. The parts:
:mod:`.options` (the typed :class:`ReproduceOptions`), :mod:`.cli` (argparse -> options),
:mod:`.inputs` (data specs, folders and archives to a dataset), :mod:`.runs` (the plan and the
resumable runs), :mod:`.report` (report.md, report.json, figures) and :mod:`.paper` (the
paper's published numbers). None imports torch at import time.
"""
from __future__ import annotations

from .cli import build_parser, main, parse_options
from .inputs import OptionError, prepare_data, resolve_data
from .options import DEFAULT_P, DEFAULT_WEIGHT_DECAY, ROW_GROUPS, ReproduceOptions
from .paper import FIGURE1A, MODEL_LABELS, MODEL_NAMES, PAPER_TABLE1, VARIANTS
from .report import write_report
from .runs import Plan, Record, RunSpec, common_settings, make_plan, run_plan, train_one

__all__ = [
    "main", "build_parser", "parse_options", "ReproduceOptions", "OptionError", "prepare_data",
    "resolve_data", "DEFAULT_P", "DEFAULT_WEIGHT_DECAY", "ROW_GROUPS", "FIGURE1A", "MODEL_LABELS",
    "MODEL_NAMES", "PAPER_TABLE1", "VARIANTS", "write_report", "Plan", "Record", "RunSpec",
    "common_settings", "make_plan", "run_plan", "train_one",
]
