"""The reproduction's settings as one typed, frozen value: what the library functions take.

:mod:`.cli` turns the command line into a :class:`ReproduceOptions`; the plan, the runs and the
report read only this (never an ``argparse.Namespace``), so they can be called from Python too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SettingsError
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
    one; ``out`` receives ``runs/``, ``report.md``, ``report.json`` and the PNGs. Built
    from Python, the values are checked as the command line checks them (SettingsError).
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

    def __post_init__(self) -> None:
        """Lists become tuples and ``out`` a Path; a value the command line would refuse raises."""
        set_ = object.__setattr__
        set_(self, "out", Path(self.out))
        for name, allowed in (("models", MODEL_NAMES), ("rows", ROW_GROUPS),
                              ("table_rows", tuple(VARIANTS))):
            value = tuple(getattr(self, name))
            set_(self, name, value)
            bad = [v for v in value if v not in allowed]
            if not value or bad:
                raise SettingsError(f"ReproduceOptions.{name}={value!r}: {bad or 'empty'} is not "
                                    f"allowed; allowed: a non-empty subset of {', '.join(allowed)}")
        set_(self, "p", tuple(self.p))
        if not self.p or any(not 0.0 <= v <= 1.0 for v in self.p):
            raise SettingsError(f"ReproduceOptions.p={self.p!r} is not allowed; "
                                "allowed: one or more numbers in [0, 1]")
        for name, allowed in (("figure_model", MODEL_NAMES), ("preprocess", PREPROCESS_CHOICES)):
            if getattr(self, name) not in allowed:
                raise SettingsError(f"ReproduceOptions.{name}={getattr(self, name)!r} is not "
                                    f"allowed; allowed: {', '.join(allowed)}")
        set_(self, "argv", tuple(self.argv))
