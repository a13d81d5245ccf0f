"""Find mislabelled training examples early: training dynamics plus out-of-sample probabilities.

The finder fits ``folds`` copies of the user's own model in lockstep, each on all but one fold
of the training set (k-fold cross-fitting, as confident learning does), for a few ordinary
epochs; it never waits for the noisy labels to be memorized. Two signals per example:

* **training dynamics** (ours, Pleiss et al. 2020 "Area Under the Margin"): the margin
  ``logit[given label] - max other logit`` read from the training forward pass itself (no extra
  pass), averaged over every epoch and every fold that trains on the example (AUM). Also kept,
  for the report: wrong predictions during training (cumulative count), forgetting events and
  the first epoch the example was predicted right.
* **out-of-sample probabilities** (confident learning, Northcutt et al. 2021): each fold's model
  scores its held-out examples after every epoch (an exponential moving average over epochs);
  the label quality score of the given label is ``cleanlab.rank.get_label_quality_scores``
  (self-confidence) when cleanlab is installed (extra ``labels``), else the same self-confidence
  computed here; cleanlab's ``cleanlab.filter.find_label_issues`` estimates how many labels are
  wrong (without cleanlab: the held-out disagreements, and the report says so).

The two are combined by rank averaging (each signal's percentile rank, mean of both). The fit
stops as soon as the top-``n`` list is stable (overlap of the top ``n`` between consecutive
epochs >= ``stability`` for ``patience`` epochs), at ``max_epochs``, or when the check's time
budget runs out; the report says which and how stable the list was.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .errors import DataError, ModelError, SettingsError
from .step import _Placed

if TYPE_CHECKING:  # pragma: no cover
    from .data import Dataset
    from .settings import CheckSettings

__all__ = ["MislabelReport", "find_mislabels", "cross_fit", "CrossFit", "label_quality",
           "estimate_issues", "rank_average", "top_overlap", "cleanlab_available"]

#: the exponential-moving-average weight of the newest held-out probabilities
OOS_EMA = 0.5


def cleanlab_available() -> bool:
    """Whether cleanlab (the ``labels`` extra) can be imported."""
    try:
        import cleanlab.filter  # noqa: F401
        import cleanlab.rank  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- scoring

def label_quality(labels: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Per example: the quality of its given label (high: fine), cleanlab's self-confidence."""
    if cleanlab_available():
        from cleanlab.rank import get_label_quality_scores

        scores = get_label_quality_scores(labels.numpy(), probs.double().numpy(),
                                          method="self_confidence")
        return torch.as_tensor(scores, dtype=torch.float64)
    return probs.double().gather(1, labels.view(-1, 1)).view(-1)


def estimate_issues(labels: torch.Tensor, probs: torch.Tensor) -> tuple[int, str]:
    """How many labels look wrong, and by what estimator (cleanlab's confident learning if here)."""
    if cleanlab_available():
        from cleanlab.filter import find_label_issues

        try:
            # n_jobs=1: cleanlab's default forks a process pool, and a fork of a process with
            # torch's threads running can deadlock (it hung a CI run's pytest worker)
            mask = find_label_issues(labels.numpy(), probs.double().numpy(), n_jobs=1)
            return int(mask.sum()), "cleanlab.filter.find_label_issues"
        except Exception:  # cleanlab refuses degenerate input (a class never predicted): fall back
            pass
    disagree = int((probs.argmax(dim=1) != labels).sum())
    return disagree, "held-out disagreements (cleanlab not installed or not applicable)"


def rank_average(*suspicions: torch.Tensor) -> torch.Tensor:
    """Mean percentile rank (0..1, 1: most suspicious) of each signal (higher: more suspicious)."""
    total = torch.zeros(len(suspicions[0]), dtype=torch.float64)
    for values in suspicions:
        order = torch.argsort(values.double(), stable=True)
        ranks = torch.empty_like(total)
        ranks[order] = torch.arange(len(values), dtype=torch.float64)
        total += ranks / max(len(values) - 1, 1)
    return total / len(suspicions)


def top_overlap(a: Sequence[int], b: Sequence[int]) -> float:
    """|a & b| / |a|: how much of one top-n list the other keeps."""
    return len(set(a) & set(b)) / max(len(a), 1)


# ---------------------------------------------------------------- cross-fitting

@dataclass
class CrossFit:
    """What the lockstep k-fold fits recorded (all tensors indexed by training example)."""

    labels: torch.Tensor
    oos_probs: torch.Tensor          # held-out class probabilities (EMA over epochs)
    margin_sum: torch.Tensor         # sum of training-pass margins (given label - best other)
    seen: torch.Tensor               # training passes per example
    wrong: torch.Tensor              # training passes that predicted another class
    forgets: torch.Tensor            # right -> wrong between consecutive passes
    first_right: torch.Tensor        # first epoch predicted right in a training pass; -1 never
    epochs: int = 0
    held_out_accuracy: float = 0.0

    @property
    def aum(self) -> torch.Tensor:
        """Area under the margin: the mean training-pass margin (low: likely mislabelled)."""
        return self.margin_sum / self.seen.clamp(min=1)


def _folds(n: int, folds: int, seed: int) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [perm[i::folds].sort().values for i in range(folds)]


def _fresh_model(model_factory: Callable, device: torch.device) -> nn.Module:
    from .training import _make_model

    return _make_model(model_factory).to(device)


class _Fold:
    """One fold's model, optimizer and index split."""

    def __init__(self, model: nn.Module, lr: float, config: Any, train: torch.Tensor,
                 held: torch.Tensor, seed: int) -> None:
        self.model, self.train, self.held = model, train, held
        self.opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum,
                                   weight_decay=config.weight_decay)
        self.gen = torch.Generator().manual_seed(seed)
        self.last_right = torch.zeros(0, dtype=torch.bool)


def cross_fit(model_factory: Callable, data: "Dataset", settings: "CheckSettings", *,
              folds: int = 5, max_epochs: int = 30,
              after_epoch: Callable[[CrossFit], bool] | None = None,
              stop: Callable[[], bool] | None = None) -> CrossFit:
    """Fit ``folds`` models in lockstep and record held-out probabilities and training dynamics.

    ``after_epoch(record)`` runs after every epoch of all folds; returning True stops early.
    ``stop()`` is asked after every batch (a deadline): True ends the fit mid-epoch, keeping the
    record so far (``record.epochs`` counts the completed epochs); the first epoch always ends,
    as a fit's does in the engine.
    The same ``settings.seed`` gives the same folds, batches and initial weights (bit-identical
    on CPU).
    """
    from .devices import resolve_device

    config = settings.fit
    n, k = len(data.train_y), data.num_classes
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= n:
        raise SettingsError(f"mislabels: folds must be an integer in [2, {n}], got {folds!r}")
    device = resolve_device(config.device)
    rec = CrossFit(labels=data.train_y.clone(), oos_probs=torch.full((n, k), 1.0 / k),
                   margin_sum=torch.zeros(n, dtype=torch.float64), seen=torch.zeros(n),
                   wrong=torch.zeros(n), forgets=torch.zeros(n),
                   first_right=torch.full((n,), -1, dtype=torch.int64))
    splits = _folds(n, folds, config.seed)
    with torch.random.fork_rng(devices=[]):
        runs = []
        for f, held in enumerate(splits):
            torch.manual_seed(config.seed * 1000 + f)
            model = _fresh_model(model_factory, device)
            lr = config.lr if config.lr is not None else float(getattr(model, "rethink_lr", None) or 0.01)
            train = torch.cat([s for j, s in enumerate(splits) if j != f]).sort().values
            runs.append(_Fold(model, lr, config, train, held, config.seed * 1000 + f))
        placed = _place(runs, data, device, config.batch_size)
        for epoch in range(1, max_epochs + 1):
            for run in runs:
                if not _train_epoch(run, placed, rec, epoch, config.batch_size,
                                    stop if epoch > 1 else None):  # the first epoch always ends
                    return rec  # out of time mid-epoch: the record so far
                _score_held_out(run, placed, rec, first=epoch == 1)
            rec.epochs = epoch
            rec.held_out_accuracy = float((rec.oos_probs.argmax(1) == rec.labels).float().mean())
            if after_epoch is not None and after_epoch(rec):
                break
    return rec


def _place(runs: list[_Fold], data: "Dataset", device: torch.device, batch: int) -> _Placed:
    """The training set on the device (NHWC for conv models that accept channels_last), after
    one probe forward that turns a broken model into a ModelError naming the input shape."""
    from .step import _accepts_channels_last, _is_conv2d, _probe

    first = runs[0].model
    nhwc = (data.kind == "image" and _is_conv2d(first)
            and _accepts_channels_last(first.to(memory_format=torch.channels_last), data.train_x[:2]))
    for run in runs:
        run.model.to(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
    placed = _Placed(data.train_x, data.train_y, device, nhwc)
    _probe(first, placed, batch, data.num_classes, nullcontext)
    return placed


def _train_epoch(run: _Fold, placed: _Placed, rec: CrossFit, epoch: int, batch: int,
                 stop: Callable[[], bool] | None) -> bool:
    """One epoch of SGD on the fold's training part, recording margins from the same forward;
    False when ``stop()`` ended it early."""
    run.model.train()
    order = run.train[torch.randperm(len(run.train), generator=run.gen)]
    right_now = torch.zeros(len(rec.labels), dtype=torch.bool)
    for lo in range(0, len(order), batch):
        if stop is not None and stop():
            return False
        idx = order[lo:lo + batch]
        idx_dev = idx.to(placed.y.device)
        logits = run.model(placed.view(placed.x[idx_dev]))
        loss = nn.functional.cross_entropy(logits, placed.y[idx_dev])
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        run.opt.step()
        with torch.no_grad():
            logits = logits.detach().float().cpu()
            given = logits.gather(1, rec.labels[idx].view(-1, 1)).view(-1)
            other = logits.scatter(1, rec.labels[idx].view(-1, 1), float("-inf")).amax(1)
            right = logits.argmax(1) == rec.labels[idx]
        rec.margin_sum[idx] += (given - other).double()
        rec.seen[idx] += 1
        rec.wrong[idx] += (~right).float()
        right_now[idx] = right
    if run.last_right.numel():
        rec.forgets[run.train] += (run.last_right[run.train] & ~right_now[run.train]).float()
    fresh = (rec.first_right < 0) & right_now
    rec.first_right[fresh] = epoch
    run.last_right = right_now
    if not math.isfinite(float(loss.detach())):
        raise ModelError(f"mislabels: the training loss became {float(loss.detach())} in epoch "
                         f"{epoch}; lower the learning rate (setting lr)")
    return True


def _score_held_out(run: _Fold, placed: _Placed, rec: CrossFit, first: bool,
                    chunk: int = 1024) -> None:
    """The fold's held-out class probabilities, folded into the moving average."""
    run.model.eval()
    parts = []
    with torch.no_grad():
        for lo in range(0, len(run.held), chunk):
            idx = run.held[lo:lo + chunk].to(placed.y.device)
            parts.append(torch.softmax(run.model(placed.view(placed.x[idx])).float(), dim=1).cpu())
    probs = torch.cat(parts)
    rec.oos_probs[run.held] = probs if first else OOS_EMA * probs + (1 - OOS_EMA) * rec.oos_probs[run.held]


# ---------------------------------------------------------------- the finder

@dataclass
class MislabelReport:
    """The finder's ranking of the training set and how far to trust it."""

    order: list[int]                 # every training index, most suspicious first
    score: list[float]               # per example: combined suspicion in [0, 1] (rank average)
    aum: list[float]                 # per example: area under the margin
    label_quality: list[float]       # per example: held-out self-confidence of the given label
    wrong: list[int]                 # per example: wrong predictions over training passes
    forgets: list[int]               # per example: forgetting events
    first_right: list[int]           # per example: first epoch predicted right (-1: never)
    predicted: list[int]             # per example: the held-out models' class
    labels: list[int]
    n: int                           # the list length asked for
    epochs: int
    stop_reason: str                 # "stable" | "max_epochs" | "time_budget"
    stability: float                 # top-n overlap between the last two epochs
    held_out_accuracy: float         # held-out accuracy against the given labels
    estimated_issues: int
    estimator: str
    folds: int
    seconds: float
    history: list[float] = field(default_factory=list)  # top-n overlap after each epoch

    def top(self, n: int | None = None) -> list[dict[str, Any]]:
        """The ``n`` (default: ``self.n``) most suspicious examples as table rows."""
        rows = []
        for rank, i in enumerate(self.order[: self.n if n is None else n], start=1):
            rows.append({"rank": rank, "index": i, "label": self.labels[i],
                         "prediction": self.predicted[i], "score": round(self.score[i], 4),
                         "aum": round(self.aum[i], 3),
                         "label_quality": round(self.label_quality[i], 4),
                         "wrong": self.wrong[i], "forgets": self.forgets[i],
                         "first_right": None if self.first_right[i] < 0 else self.first_right[i]})
        return rows

    @property
    def confidence(self) -> str:
        """``high``: stable list and a model that generalizes; ``low``: neither; else ``medium``."""
        stable = self.stop_reason == "stable"
        good = self.held_out_accuracy >= 0.7
        return "high" if stable and good else ("medium" if stable or good else "low")

    def metrics(self) -> dict[str, Any]:
        """JSON scalars for a CheckResult."""
        return {"suspects": min(self.n, len(self.order)),
                "suspects.indices": ",".join(str(i) for i in self.order[: self.n]),
                "epochs": self.epochs, "stop_reason": self.stop_reason,
                "stability": round(self.stability, 4), "confidence": self.confidence,
                "held_out_accuracy": round(self.held_out_accuracy, 4),
                "estimated_issues": self.estimated_issues, "estimator": self.estimator,
                "folds": self.folds, "cleanlab": cleanlab_available()}


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SettingsError(f"mislabels: {name} must be a positive integer, got {value!r}")
    return value


def suspicion(rec: CrossFit) -> torch.Tensor:
    """The combined suspicion of every example: rank average of low AUM and low label quality."""
    quality = label_quality(rec.labels, rec.oos_probs)
    return rank_average(-rec.aum, -quality)


def find_mislabels(model_factory: Callable, data: "Dataset", settings: "CheckSettings | None" = None,
                   n: int = 20, *, folds: int = 5, max_epochs: int = 30, min_epochs: int = 3,
                   stability: float = 0.9, patience: int = 2,
                   deadline: float | None = None) -> MislabelReport:
    """Rank ``data``'s training examples by how likely their label is wrong (top ``n`` reported).

    Stops when the top ``n`` keeps ``stability`` of itself for ``patience`` consecutive epochs
    (after ``min_epochs``), at ``max_epochs``, or at ``deadline`` (``time.monotonic()``; the
    running check's time budget when None). Indices refer to the training set as fitted (after
    ``settings.train_size`` subsetting).
    """
    from . import fits
    from .settings import CheckSettings

    n, max_epochs = _check_positive("n", n), _check_positive("max_epochs", max_epochs)
    if not 0.0 < stability <= 1.0:
        raise SettingsError(f"mislabels: stability must be in (0, 1], got {stability!r}")
    settings = settings if settings is not None else CheckSettings()
    data = fits.prepared(data, settings)
    if len(data.train_y) < 2 * folds:
        raise DataError(f"mislabels: {len(data.train_y)} training examples are too few for "
                        f"{folds} folds; give at least {2 * folds}")
    deadline = deadline if deadline is not None else fits.DEADLINE.get()
    started = time.perf_counter()
    state = {"top": [], "history": [], "calm": 0, "reason": "max_epochs"}
    k = min(n, len(data.train_y))

    def after_epoch(rec: CrossFit) -> bool:
        top = torch.argsort(suspicion(rec), descending=True, stable=True)[:k].tolist()
        overlap = top_overlap(top, state["top"]) if state["top"] else 0.0
        state["top"] = top
        state["history"].append(round(overlap, 4))
        state["calm"] = state["calm"] + 1 if overlap >= stability else 0
        if rec.epochs >= min_epochs and state["calm"] >= patience:
            state["reason"] = "stable"
            return True
        return out_of_time()

    def out_of_time() -> bool:
        if deadline is not None and time.monotonic() >= deadline:
            state["reason"] = "time_budget"
            return True
        return False

    rec = cross_fit(model_factory, data, settings, folds=folds, max_epochs=max_epochs,
                    after_epoch=after_epoch, stop=out_of_time)
    return _report(rec, n, folds, state, time.perf_counter() - started)


def _report(rec: CrossFit, n: int, folds: int, state: dict, seconds: float) -> MislabelReport:
    score = suspicion(rec)
    issues, estimator = estimate_issues(rec.labels, rec.oos_probs)
    history = state["history"]
    return MislabelReport(
        order=torch.argsort(score, descending=True, stable=True).tolist(), score=score.tolist(),
        aum=rec.aum.tolist(), label_quality=label_quality(rec.labels, rec.oos_probs).tolist(),
        wrong=rec.wrong.long().tolist(), forgets=rec.forgets.long().tolist(),
        first_right=rec.first_right.tolist(), predicted=rec.oos_probs.argmax(1).tolist(),
        labels=rec.labels.tolist(), n=n, epochs=rec.epochs, stop_reason=state["reason"],
        stability=history[-1] if history else 0.0, held_out_accuracy=rec.held_out_accuracy,
        estimated_issues=issues, estimator=estimator, folds=folds, seconds=round(seconds, 2),
        history=history)
