"""The reproduction's settings as one typed, frozen value: what the library functions take.

:mod:`.cli` turns the command line into a :class:`ReproduceOptions`; the plan, the runs and the
report read only this (never an ``argparse.Namespace``), so they can be called from Python too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .paper import MODEL_NAMES, VARIANTS

DEFAULT_P = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
ROW_GROUPS = ("table1", "figure1a", "figure1bc")
#: The paper states no weight-decay value; 5e-4 is the common CIFAR-10 choice (and CheckSettings').
DEFAULT_WEIGHT_DECAY = 5e-4
PREPROCESS_CHOICES = ("auto", "paper", "none")


@dataclass(frozen=True)
class ReproduceOptions:
    """Every setting of one reproduction; the defaults are the paper's (see docs/reproduction.md).

    ``data`` is a data spec (:func:`rethink_checks.specs.parse_spec`), a folder or a .tar.gz of
    one; ``out`` receives ``runs/``, ``report.md``, ``report.json`` and the PNGs.
    """

    data: str
    out: Path
    models: tuple[str, ...] = MODEL_NAMES
    rows: tuple[str, ...] = ROW_GROUPS
    table_rows: tuple[str, ...] = tuple(VARIANTS)
    p: tuple[float, ...] = DEFAULT_P
    figure_model: str = "inception"
    train_size: int | None = None
    test_size: int | None = None
    max_epochs: int = 100
    target_accuracy: float = 1.0
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    batch_size: int = 128
    lr: float | None = None
    lr_decay: float = 0.95
    preprocess: str = "auto"
    device: str = "auto"
    seed: int = 0
    time_budget: float | None = None
    data_label: str | None = None
    quiet: bool = False
    #: The command line that produced these options (quoted in the report's header).
    argv: tuple[str, ...] = field(default=(), compare=False)
