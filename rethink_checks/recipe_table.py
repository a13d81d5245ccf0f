"""The training recipe's names, torch-free: optimizers, learning-rate schedules, losses.

One table per choice, read by every consumer: ``FitConfig`` validation
(:mod:`rethink_checks.settings`), the runtime recipe (:mod:`rethink_checks.recipe`, which
builds the optimizer and asks :func:`lr_multiplier` for every step's learning rate), the
plugin's options and the docs. Importing it never imports torch, so settings stay torch-free.

The schedules are pure functions of (step, step budget): every fit of a check gets the same
learning rate at the same step, and a CUDA-graph replay reads it from a device tensor the loop
refills. ``torch.optim.lr_scheduler`` objects mutate the optimizer's Python-float ``lr`` as
they go, which neither a captured graph nor the snapshot/restore of warm-up steps can follow;
tests/test_recipe.py checks that ``cosine``, ``linear`` and ``onecycle`` equal
``CosineAnnealingLR``, ``LinearLR`` and ``OneCycleLR`` step for step.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import validation as v
from .errors import SettingsError

__all__ = ["OPTIMIZERS", "SCHEDULES", "LOSSES", "PAPER_RECIPE", "step_budget", "warmup_steps",
           "lr_multiplier", "validate_recipe"]

#: optimizer name -> (torch.optim class, default learning rate when FitConfig.lr is None).
#: "sgd" is the paper's: momentum FitConfig.momentum (0.9), dampening 0, no Nesterov; its
#: default lr is the model's ``rethink_lr`` (models.build) or 0.01. Adam-family defaults are
#: torch's and the transformer literature's 1e-3.
OPTIMIZERS: dict[str, tuple[str, float]] = {
    "sgd": ("SGD", 0.01),
    "adam": ("Adam", 1e-3),
    "adamw": ("AdamW", 1e-3),
    "rmsprop": ("RMSprop", 1e-3),
}

#: OneCycleLR's defaults (torch.optim.lr_scheduler): 30% rising, start at max/25, end at max/25e4
_ONECYCLE_PCT, _ONECYCLE_DIV, _ONECYCLE_FINAL_DIV = 0.3, 25.0, 1e4


def _cos(start: float, end: float, fraction: float) -> float:
    """Cosine annealing from ``start`` to ``end`` as ``fraction`` goes 0 -> 1 (OneCycleLR's)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)


def _onecycle(step: int, total: int) -> float:
    """OneCycleLR's multiplier (anneal "cos", three_phase False) of the maximum learning rate."""
    low = 1.0 / _ONECYCLE_DIV
    rise_end = float(_ONECYCLE_PCT * total) - 1
    if step <= rise_end:
        return _cos(low, 1.0, step / rise_end if rise_end > 0 else 1.0)
    down = (total - 1) - rise_end
    return _cos(1.0, low / _ONECYCLE_FINAL_DIV, (step - rise_end) / down if down > 0 else 1.0)


#: schedule name -> multiplier of the base lr at ``step`` of ``total`` steps (after warmup);
#: "paper" is the staircase x FitConfig.lr_decay per FitConfig.lr_decay_steps, done by
#: rethink_checks.recipe's _Staircase (multiplied out one factor at a time, bit for bit).
SCHEDULES: dict[str, Callable[[int, int], float] | None] = {
    "paper": None,
    "constant": lambda step, total: 1.0,
    "cosine": lambda step, total: _cos(1.0, 0.0, min(step, total) / total) if total > 0 else 1.0,
    "linear": lambda step, total: 1.0 - min(step, total) / total if total > 0 else 1.0,
    "onecycle": _onecycle,
}

#: built-in losses (FitConfig.loss); label smoothing is FitConfig.label_smoothing
LOSSES = ("cross_entropy",)

#: the paper's recipe, FitConfig's defaults for the recipe fields
PAPER_RECIPE: dict[str, Any] = {"optimizer": "sgd", "schedule": "paper", "warmup": 0.0,
                                "loss": "cross_entropy", "label_smoothing": 0.0,
                                "clip_grad_norm": None, "train_step": None}


def step_budget(max_epochs: int, max_steps: int | None, steps_per_epoch: int) -> int:
    """Optimizer steps a fit may take: ``max_steps``, or ``max_epochs`` x steps an epoch if fewer."""
    by_epochs = max_epochs * steps_per_epoch
    return by_epochs if max_steps is None else min(max_steps, by_epochs)


def warmup_steps(warmup: float, budget: int) -> int:
    """FitConfig.warmup in steps: a value >= 1 is steps, one in (0, 1) a fraction of ``budget``.

    Raises :class:`SettingsError` when the warmup leaves no step of the budget after it.
    """
    steps = int(warmup) if warmup >= 1 else int(round(warmup * budget))
    if warmup and steps >= budget:
        raise v.invalid("FitConfig", "warmup", warmup,
                        f"fewer steps than the fit's step budget of {budget} (max_steps, or "
                        f"max_epochs x steps an epoch), or a fraction in (0, 1)")
    return steps


def lr_multiplier(schedule: str | Callable[[int, int], Any], step: int, total: int,
                  warmup: int) -> float:
    """The base lr's multiplier at ``step`` (0-based): linear warmup over ``warmup`` steps, then
    ``schedule`` over the remaining ``total - warmup`` steps (a callable gets the raw step and
    total and owns any warmup it wants beside this one)."""
    ramp = (step + 1) / warmup if step < warmup else 1.0
    if callable(schedule):
        return ramp * _called(schedule, step, total)
    shape = SCHEDULES[schedule]
    return ramp * (shape(step - warmup, total - warmup) if step >= warmup else shape(0, total - warmup))


def _called(schedule: Callable[[int, int], Any], step: int, total: int) -> float:
    """A user schedule's multiplier, checked: its errors name the setting and what is allowed."""
    allowed = "a callable (step, total_steps) -> a finite multiplier >= 0 of the base lr"
    try:
        value = schedule(step, total)
    except Exception as err:  # the user's schedule failed: one line, the step it failed at
        raise SettingsError(f"FitConfig.schedule={v.callable_name(schedule)} raised "
                            f"{type(err).__name__} at step {step} of {total}: {err}; allowed: "
                            f"{allowed}") from err
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise SettingsError(f"FitConfig.schedule={v.callable_name(schedule)} returned {value!r} "
                            f"at step {step} of {total}; allowed: {allowed}")
    return number


def validate_recipe(c: Any) -> None:
    """Check ``FitConfig``'s recipe fields, naming field, value and what is allowed."""
    own = "FitConfig"
    for name, table in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
        value = getattr(c, name)
        if isinstance(value, str):
            setattr(c, name, value.strip().lower())
        if not callable(value) and getattr(c, name) not in table:
            what = ("(params) -> torch.optim.Optimizer" if name == "optimizer"
                    else "(step, total_steps) -> lr multiplier")
            raise v.invalid(own, name, value, f"{', '.join(table)} or a callable {what}")
    if not callable(c.loss) and c.loss not in LOSSES:
        raise v.invalid(own, "loss", c.loss,
                        f"{', '.join(LOSSES)} or a callable (logits, targets) -> scalar loss")
    c.warmup = v.number(own, "warmup", c.warmup, 0.0, finite=True)
    if c.warmup >= 1 and c.warmup != int(c.warmup):
        raise v.invalid(own, "warmup", c.warmup, "a whole number of steps >= 1, or a fraction in [0, 1)")
    v.number(own, "label_smoothing", c.label_smoothing, 0.0, 1.0)
    if c.label_smoothing and callable(c.loss):
        raise v.invalid(own, "label_smoothing", c.label_smoothing,
                        "0 with a callable loss (smooth the labels inside it)")
    if c.clip_grad_norm is not None:
        v.number(own, "clip_grad_norm", c.clip_grad_norm, 0.0, low_open=True, finite=True)
    if c.train_step is not None and not callable(c.train_step):
        raise v.invalid(own, "train_step", c.train_step,
                        "None or a callable (model, (inputs, targets), optimizer) -> loss")
    if c.train_step is not None and c.precision == "fp16":
        raise v.invalid(own, "precision", c.precision,
                        "auto, fp32 or bf16 with a train_step (fp16's gradient scaler is the "
                        "harness's; scale inside your step instead)")
