"""Per-example bookkeeping of a fit: when each training example was fitted for good, how often forgotten.

Every full-training-set evaluation the training loop already makes (``FitConfig.eval_every``
epochs apart, plus the last epoch) yields one correctness bit per example; :class:`ExampleRecord`
folds those bits into two small integer vectors in O(N) per evaluation, with no extra forward
pass. The granularity therefore follows the evaluation schedule: a fit epoch of 6 with
``eval_every=3`` means "wrong at the epoch-3 evaluation, right from epoch 6 on".

Definitions (Toneva et al. 2019, "An empirical study of example forgetting"):

* ``fit_epoch[i]``: the epoch of the first evaluation from which example ``i`` stayed
  correct through the last evaluation; -1 when it was wrong at the last evaluation
  (never fitted for good).
* ``forgets[i]``: forgetting events, transitions correct -> wrong between consecutive
  evaluations.

Serialized (:meth:`ExampleRecord.to_dict`) as plain JSON lists of ints, one entry per example,
so a result file stays readable and diffable (about 3-4 characters per example and vector).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .errors import DataError

__all__ = ["ExampleRecord", "NEVER"]

#: ``fit_epoch`` of an example that was wrong at the last evaluation
NEVER = -1


class ExampleRecord:
    """Fit epochs and forgetting counts of ``n`` examples, updated once per evaluation."""

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise DataError(f"ExampleRecord: n must be an integer >= 0, got {n!r}")
        self.n = n
        self.evaluations: list[int] = []
        # index into ``evaluations`` where the current run of correct answers began; -1: wrong now
        self._start = torch.full((n,), -1, dtype=torch.int64)
        self._forgets = torch.zeros(n, dtype=torch.int64)
        self._last = torch.zeros(n, dtype=torch.bool)
        self._placed = False

    def update(self, correct: torch.Tensor, epoch: int) -> None:
        """Fold in one evaluation: ``correct[i]`` says whether example ``i`` was right at ``epoch``.

        The vectors live on ``correct``'s device (no host transfer during training).
        """
        correct = torch.as_tensor(correct)
        if correct.shape != (self.n,):
            raise DataError(f"ExampleRecord.update: correct has shape {tuple(correct.shape)}; "
                            f"expected ({self.n},)")
        if self.evaluations and epoch <= self.evaluations[-1]:
            raise DataError(f"ExampleRecord.update: epoch {epoch} is not after the last "
                            f"evaluation ({self.evaluations[-1]})")
        correct = correct.to(torch.bool)
        if not self._placed:
            self._start = self._start.to(correct.device)
            self._forgets = self._forgets.to(correct.device)
            self._last = self._last.to(correct.device)
            self._placed = True
        self._forgets += (self._last & ~correct).long()
        index = len(self.evaluations)
        begun = torch.full_like(self._start, index)
        self._start = torch.where(correct, torch.where(self._last, self._start, begun),
                                  torch.full_like(self._start, -1))
        self._last = correct.clone()
        self.evaluations.append(int(epoch))

    @property
    def fit_epoch(self) -> list[int]:
        """Per example: epoch of the first evaluation from which it stayed correct; -1 never."""
        if not self.evaluations:
            return [NEVER] * self.n
        epochs = torch.tensor(self.evaluations + [NEVER], dtype=torch.int64)
        return epochs[self._start.cpu()].tolist()  # index -1 picks the appended NEVER

    @property
    def forgets(self) -> list[int]:
        """Per example: forgetting events (correct at one evaluation, wrong at the next)."""
        return self._forgets.cpu().tolist()

    def to_dict(self) -> dict[str, Any]:
        """``{"n", "evaluations", "fit_epoch", "forgets"}`` as plain lists of ints (JSON-ready)."""
        return {"n": self.n, "evaluations": list(self.evaluations),
                "fit_epoch": self.fit_epoch, "forgets": self.forgets}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExampleRecord":
        """The record :meth:`to_dict` wrote (enough to answer ``fit_epoch`` / ``forgets`` again)."""
        try:
            n = int(data["n"])
            evaluations = [int(e) for e in data["evaluations"]]
            fit_epoch = [int(e) for e in data["fit_epoch"]]
            forgets = [int(f) for f in data["forgets"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"ExampleRecord.from_dict: expected keys n, evaluations, fit_epoch, "
                            f"forgets with integer values ({exc})") from None
        if len(fit_epoch) != n or len(forgets) != n:
            raise DataError(f"ExampleRecord.from_dict: n={n} but fit_epoch has {len(fit_epoch)} "
                            f"and forgets {len(forgets)} entries")
        bad = sorted({e for e in fit_epoch if e != NEVER and e not in evaluations})
        if bad:
            raise DataError(f"ExampleRecord.from_dict: fit epochs {bad[:5]} are not evaluations")
        record = cls(n)
        record.evaluations = evaluations
        where = {e: i for i, e in enumerate(evaluations)}
        record._start = torch.tensor([where.get(e, -1) for e in fit_epoch], dtype=torch.int64)
        record._forgets = torch.tensor(forgets, dtype=torch.int64)
        record._last = record._start >= 0
        return record

    def __repr__(self) -> str:
        return f"ExampleRecord(n={self.n}, evaluations={len(self.evaluations)})"

