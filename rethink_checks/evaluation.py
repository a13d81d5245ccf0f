"""What a fit measures, and when: eval-mode accuracy over a split, the test sample, the evaluation rule.

The stop rule needs eval-mode accuracy on the whole training set; curves need test accuracy.
:func:`_evaluate_now` decides at which epochs the training set is measured (near the target,
at least every ``eval_every`` epochs, at the budget's end; docs/checks.md "Evaluation
schedule"), :func:`_test_sample` which test examples the curve measures and :func:`_test_due`
when. Used by :mod:`rethink_checks.training`; imports only the step's placed data and model call.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .settings import FitConfig
from .step import _call_model, _Placed

__all__: list[str] = []


@torch.no_grad()
def _correct(model: nn.Module, split: _Placed, chunk: int, autocast) -> torch.Tensor:
    """Per-example correctness (a bool vector on the split's device) over a whole split in eval mode."""
    model.eval()
    correct = torch.empty(len(split), dtype=torch.bool, device=split.y.device)
    for lo in range(0, len(split), chunk):
        with autocast():
            out = _call_model(model, split.rows(lo, lo + chunk))
        correct[lo:lo + chunk] = out.argmax(dim=1) == split.y[lo:lo + chunk]
    model.train()
    return correct


def _accuracy(model: nn.Module, split: _Placed, chunk: int, autocast) -> float:
    """Accuracy over a whole split in eval mode, one host synchronization at the end."""
    return _correct(model, split, chunk, autocast).sum().item() / len(split)


def _evaluate_now(config: FitConfig, epoch: int, last_eval: int, running: float,
                  last_accuracy: float | None, budget_end: bool) -> bool:
    """Whether the epoch just trained is measured on the whole training set (the stop rule's input).

    Yes at the budget's end, when ``eval_every`` epochs have passed since the last measurement
    (``last_eval``, 0 before any), and whenever the stop rule may fire: the epoch's running
    train-mode accuracy or the last measured eval-mode accuracy is within ``eval_margin`` of
    the target. So a fit stops at exactly the epoch measuring every epoch would stop at when
    either accuracy is within the margin there, and otherwise at the next measurement (at most
    ``eval_every - 1`` epochs later) if the target still holds then.
    """
    near = config.target_accuracy - config.eval_margin
    return (budget_end or epoch - last_eval >= config.eval_every or running >= near
            or (last_accuracy is not None and last_accuracy >= near))


#: training examples per sampled test example between two measurements of the test sample:
#: a forward costs about a third of a training step per example, so the sample takes about
#: 1/12 of the training compute however small the training set (docs/checks.md)
TEST_SPACING = 4


#: on CPU, models with fewer parameters evaluate in chunks of 128 (activations stay in cache),
#: larger ones in chunks of 1024 (weights read once per chunk); measured in docs/benchmarks.md
CPU_SMALL_MODEL = 1_000_000


def _auto_eval_batch(config: FitConfig, device: torch.device, num_parameters: int) -> FitConfig:
    """``eval_batch_size`` "auto" resolved: 1024 on GPU; on CPU 128 for models under
    ``CPU_SMALL_MODEL`` parameters and 1024 above (2 cores: 3x and 1.2x faster than the other)."""
    if config.eval_batch_size is not None:
        return config
    small = device.type != "cuda" and num_parameters < CPU_SMALL_MODEL
    return dataclasses.replace(config, eval_batch_size=128 if small else 1024)


def _test_due(config: FitConfig, epoch: int, last_test: int, trained: int, sample_size: int) -> bool:
    """Whether the test sample is measured at an epoch where the fit goes on: ``eval_every``
    epochs since its last measurement and ``TEST_SPACING`` x its size in training examples;
    ``eval_every=1`` keeps the old rule, every epoch (the memorization check's curves need it)."""
    return epoch - last_test >= config.eval_every and (
        config.eval_every == 1 or trained >= TEST_SPACING * sample_size)


def _test_sample(test: _Placed | None, config: FitConfig,
                 n_train: int) -> tuple[_Placed | None, torch.Tensor | None]:
    """The test examples measured during the fit and their rows in the split: a seeded sample
    drawn once (sorted, so its order is the split's), or the whole split (rows None) when the
    sample would cover it."""
    if test is None:
        return None, None
    size = config.test_sample if config.test_sample is not None else max(1000, n_train)
    if size >= len(test):
        return test, None
    generator = torch.Generator().manual_seed(config.seed + 2_000_003)
    index = torch.randperm(len(test), generator=generator)[:size].sort().values.to(test.y.device)
    return test.select(index), index
