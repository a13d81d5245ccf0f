"""Plain-data results (fits and checks) that serialize to JSON and cross process boundaries."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from collections.abc import Iterable
from typing import Any, ClassVar

__all__ = ["FitResult", "CheckResult", "table_summary", "key_metric", "fitted"]


@dataclass
class FitResult:
    """What one call of :func:`rethink_checks.fit` measured.

    ``curves`` holds one entry per epoch for each of: ``epoch``, ``step`` (optimizer steps
    done by the end of the epoch), ``train_loss`` (mean over the epoch's steps),
    ``running_accuracy`` (train mode, over the epoch's steps, as the weights moved),
    ``train_accuracy`` (full training set, eval mode; None where not measured),
    ``test_accuracy`` (on the test sample of ``test_sample_size`` examples; None where not
    measured), ``lr`` (at the epoch's first step), ``elapsed``.

    ``test_accuracy`` is always the whole test split, measured once at the end;
    ``best_test_accuracy`` / ``best_test_epoch`` are the best of the curve, i.e. on the test
    sample (the whole split when ``test_sample_size`` equals it). ``train_seconds`` is pure
    training (the steps), ``eval_seconds`` every evaluation (training set, test sample, the
    final test split; ``final_test_seconds`` is that last part), ``total_seconds`` the whole
    call of ``fit``.
    """

    fitted: bool
    stop_reason: str  # "fitted" | "max_epochs" | "max_steps" | "time_budget" | "diverged"
    epochs: int
    steps: int
    epochs_to_fit: int | None
    steps_to_fit: int | None
    train_seconds: float
    total_seconds: float
    train_accuracy: float
    train_loss: float
    test_accuracy: float | None
    best_test_accuracy: float | None
    best_test_epoch: int | None
    diverged: bool = False
    diverged_epoch: int | None = None
    curves: dict[str, list] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    num_parameters: int = 0
    device: str = "cpu"
    device_name: str = ""
    torch_version: str = ""
    peak_memory_bytes: int | None = None
    fast_path: bool = False
    fast_path_reason: str = ""
    eval_seconds: float = 0.0
    final_test_seconds: float = 0.0  # the part of eval_seconds spent on the whole test split at the end
    test_sample_size: int = 0
    #: per-example fit epochs and forgetting counts over the training-set evaluations
    #: (``ExampleRecord.to_dict()``; ``ExampleRecord.from_dict`` reads it); None in old JSON
    examples: dict[str, Any] | None = None

    #: The trained model (on the CPU, in eval mode) when this result came from ``fit`` in this
    #: process; None after a JSON round trip. A class-level default, not a field: never serialized.
    model: ClassVar[Any] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FitResult":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class CheckResult:
    """The verdict of one check plus the metrics that justify it.

    ``metrics`` is a flat dict of JSON scalars (what lands in JUnit properties and tables);
    ``tables`` holds row lists (e.g. the partial-label sweep); ``runs`` holds the fits
    the check made, keyed by a short name, as :meth:`FitResult.to_dict` output.
    ``summary`` is what the summary table shows, filled by the check itself (see
    :func:`table_summary`) so that the table knows no check's metric names; results saved
    before it existed load with an empty summary.
    """

    check: str
    passed: bool
    criterion: str
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CheckResult":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def key_metric(label: str, value: Any, format: str = "{}") -> dict[str, Any]:
    """One key metric of a check for the summary table, shown as ``label`` then the value.

    ``format`` is a :meth:`str.format` template applied to ``value`` (a list value is
    spread over the template's fields), e.g. ``key_metric("slowdown", 3.1, "{:.2f}x")`` shows
    ``slowdown 3.10x`` and ``key_metric("err", [0.05, 0.9], "{:.2f}->{:.2f}")`` ``err 0.05->0.90``.
    """
    return {"label": str(label), "value": value, "format": str(format)}


def table_summary(*, train: float | None = None, test: float | None = None,
                  epochs: int | None = None, key: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """A check's row in the summary table: train and test accuracy, epochs to fit, key metrics.

    ``None`` leaves a column empty; ``key`` holds :func:`key_metric` entries.
    """
    return {"train": train, "test": test, "epochs": epochs, "key": [dict(k) for k in key]}


def fitted(run: FitResult, threshold: float) -> bool:
    """Whether ``run`` reached train accuracy ``threshold`` without diverging: the one test every
    check, the capacity search and the run metrics use for "fitted" (and "memorized")."""
    return bool(run.train_accuracy >= threshold and not run.diverged)
