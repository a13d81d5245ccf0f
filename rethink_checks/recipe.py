"""The training recipe of one fit at run time: optimizer, lr schedule, loss, clipping, scaler, step hook.

:mod:`rethink_checks.recipe_table` names the choices (torch-free, read by the settings); this
module builds them for :class:`rethink_checks.step._Loop`, which calls :meth:`Recipe.update`
once per step on both the eager and the CUDA-graph path.

Optimizers are ``torch.optim`` classes (``foreach`` on CPU, ``fused`` on an eager GPU loop,
``capturable`` with the learning rate as a device tensor under CUDA graphs), except the
paper's ``sgd``: :class:`PaperSGD` is a ``torch.optim.Optimizer`` whose update is the one fits
used before the recipe became configurable (:func:`sgd_momentum_update`). ``torch.optim.SGD``
computes the same algorithm but adds ``-lr * buf`` in one rounding (``add_(buf, alpha=-lr)``)
where that update rounds ``buf * -lr`` first; after 20 steps the weights differ by up to
3.6e-7 (measured on CPU, torch 2.14), and the paper's fits are pinned bit for bit
(tests/test_recipe_pin.py), so the default keeps its update.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import validation as v
from .errors import ModelError, SettingsError
from .recipe_table import OPTIMIZERS, lr_multiplier, step_budget, warmup_steps

if TYPE_CHECKING:  # pragma: no cover
    from .settings import FitConfig

__all__ = ["PaperSGD", "Recipe", "sgd_momentum_update", "default_lr", "recipe_regularizers",
           "without_recipe_regularizers", "describe"]


def sgd_momentum_update(params: list[torch.Tensor], grads: list[torch.Tensor], bufs: list[torch.Tensor],
                        lr: torch.Tensor, momentum: float, weight_decay: float) -> None:
    """torch.optim.SGD's update (dampening 0, no Nesterov) with ``lr`` a device tensor, capturable.

    ``bufs`` start at zero, which gives SGD's first step exactly (0 * m + g == g). ``grads`` are
    overwritten (weight decay is added in place), as every step recomputes them.
    """
    if weight_decay:
        torch._foreach_add_(grads, params, alpha=weight_decay)
    torch._foreach_mul_(bufs, momentum)
    torch._foreach_add_(bufs, grads)
    torch._foreach_add_(params, torch._foreach_mul(bufs, -lr))


class PaperSGD(torch.optim.Optimizer):
    """The paper's SGD with momentum as a torch optimizer: :func:`sgd_momentum_update` per group.

    ``lr`` is kept as a float32 tensor on the parameters' device (refilled by the schedule), so
    one captured CUDA graph serves every learning rate; momentum buffers start at zero.
    """

    def __init__(self, params: Any, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})
        for group in self.param_groups:
            device = group["params"][0].device
            group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
            for p in group["params"]:
                self.state[p]["momentum_buffer"] = torch.zeros_like(p)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> None:  # noqa: D102 (Optimizer's)
        for group in self.param_groups:
            params = group["params"]
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            bufs = [self.state[p]["momentum_buffer"] for p in params]
            sgd_momentum_update(params, grads, bufs, group["lr"], group["momentum"], group["weight_decay"])


def default_lr(config: FitConfig, model: nn.Module) -> float:
    """The base learning rate: ``config.lr``; else for ``sgd`` the model's ``rethink_lr`` (set by
    models.build) or 0.01, for the others their table default (recipe_table.OPTIMIZERS)."""
    if config.lr is not None:
        return config.lr
    name = config.optimizer if isinstance(config.optimizer, str) else "sgd"
    if name == "sgd":
        return float(getattr(model, "rethink_lr", None) or OPTIMIZERS["sgd"][1])
    return OPTIMIZERS[name][1]


def _build_optimizer(params: list[nn.Parameter], config: FitConfig, lr: float,
                     device: torch.device, graph: bool) -> torch.optim.Optimizer:
    """The named optimizer, or the user's callable's (checked to be a torch optimizer)."""
    if callable(config.optimizer):
        try:
            opt = config.optimizer(params)
        except Exception as err:  # the user's factory failed: one line naming it
            raise SettingsError(f"FitConfig.optimizer={v.callable_name(config.optimizer)} raised "
                                f"{type(err).__name__}: {err}; allowed: a callable (params) -> "
                                f"torch.optim.Optimizer") from err
        if not isinstance(opt, torch.optim.Optimizer):
            raise SettingsError(f"FitConfig.optimizer={v.callable_name(config.optimizer)} returned "
                                f"{type(opt).__module__}.{type(opt).__qualname__}; allowed: a "
                                f"callable (params) -> torch.optim.Optimizer")
        return opt
    if config.optimizer == "sgd":
        return PaperSGD(params, lr, config.momentum, config.weight_decay)
    cls = getattr(torch.optim, OPTIMIZERS[config.optimizer][0])
    speed = {"capturable": True, "foreach": True} if graph else (
        {"fused": True} if device.type == "cuda" else {"foreach": True})
    if graph:  # a device tensor: the captured step reads each refill
        return cls(params, lr=torch.tensor(lr, dtype=torch.float32, device=device),
                   weight_decay=config.weight_decay, **speed)
    return cls(params, lr=lr, weight_decay=config.weight_decay, **speed)


class Recipe:
    """One fit's optimizer, schedule, loss, clipping and scaler, and the step's update.

    ``eager_reason`` says why the step cannot be a CUDA graph (None when it can): user
    callables may synchronize or allocate, and fp16's gradient scaler skips steps on the host.
    """

    def __init__(self, params: list[nn.Parameter], config: FitConfig, lr: float, device: torch.device,
                 steps_per_epoch: int, graph: bool):
        self.config, self.params = config, params
        self.eager_reason = _eager_reason(config)
        graph = graph and self.eager_reason is None
        self.optimizer = _build_optimizer(params, config, lr, device, graph)
        self.removed: list[str] = []
        if "weight_decay" in config.remove and callable(config.optimizer):
            self.removed = _zero_weight_decay(self.optimizer)
        self.base_lrs = ([float(g["lr"]) for g in self.optimizer.param_groups] if callable(config.optimizer)
                         else [lr] * len(self.optimizer.param_groups))
        self.total = step_budget(config.max_epochs, config.max_steps, steps_per_epoch)
        self.warmup = warmup_steps(config.warmup, self.total)
        self._levels = [[b] for b in self.base_lrs]  # the paper's staircase, per group
        self._set: list[float] | None = None
        self.scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" else None
        self.loss = _loss_function(config)
        self.lr_at(0)  # a user schedule that fails, fails before training

    @property
    def lr(self) -> float:
        """The first group's base learning rate (what the fit records as its lr)."""
        return self.base_lrs[0]

    def lr_at(self, step: int) -> list[float]:
        """Every param group's learning rate at optimizer step ``step`` (0-based)."""
        cfg = self.config
        if cfg.schedule == "paper":
            level = step // cfg.lr_decay_steps
            ramp = (step + 1) / self.warmup if step < self.warmup else 1.0
            out = []
            for levels in self._levels:
                while len(levels) <= level:
                    levels.append(levels[-1] * cfg.lr_decay)  # one factor at a time, as ever
                out.append(levels[level] * ramp if ramp != 1.0 else levels[level])
            return out
        scale = lr_multiplier(cfg.schedule, step, self.total, self.warmup)
        return [base * scale for base in self.base_lrs]

    def set_step(self, step: int) -> None:
        """Load step ``step``'s learning rates into the optimizer where they change (a tensor lr
        is refilled in place, asynchronously, so CUDA-graph replays read it too)."""
        lrs = self.lr_at(step)
        if lrs == self._set:
            return
        for group, lr in zip(self.optimizer.param_groups, lrs):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._set = lrs

    def update(self, loss: torch.Tensor) -> None:
        """Backward from ``loss``, clip, step (through the fp16 scaler when there is one)."""
        if self.scaler is None:
            loss.backward()
            if self.config.clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(self.params, self.config.clip_grad_norm, foreach=True)
            self.optimizer.step()
            return
        self.scaler.scale(loss).backward()
        if self.config.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.params, self.config.clip_grad_norm, foreach=True)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def user_step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run ``config.train_step``; its loss checked to be a finite scalar (one line if not)."""
        fn = self.config.train_step
        name = v.callable_name(fn)
        allowed = "a finite scalar loss, or (loss, logits)"
        try:
            out = fn(model, (x, y), self.optimizer)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as err:  # the user's step failed: say which and where
            raise ModelError(f"FitConfig.train_step={name} raised {type(err).__name__} at step "
                             f"{step}: {err}") from err
        loss, logits = out if isinstance(out, tuple) and len(out) == 2 else (out, None)
        if isinstance(loss, (int, float)) and not isinstance(loss, bool):
            loss = torch.tensor(float(loss))
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            got = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ModelError(f"FitConfig.train_step={name} returned {got} at step {step}; allowed: {allowed}")
        value = float(loss.detach().reshape(()))
        if not math.isfinite(value):
            raise ModelError(f"FitConfig.train_step={name} returned a non-finite loss ({value}) at "
                             f"step {step}; allowed: {allowed}")
        return loss.detach().reshape(()).float(), logits

    def reset_state(self) -> None:
        """Zero the optimizer's state in place (buffers a captured graph holds by address): the
        state of an optimizer that has not stepped, for every built-in (all start at zero)."""
        for state in self.optimizer.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor):
                    value.zero_()
        self._set = None


def _eager_reason(config: FitConfig) -> str | None:
    """Why a recipe keeps the step eager (None: graph-safe)."""
    for name in ("train_step", "optimizer", "loss", "schedule"):
        value = getattr(config, name)
        if callable(value) and name != "schedule":
            return f"FitConfig.{name} is a callable ({v.callable_name(value)}), which may synchronize"
    if config.precision == "fp16":
        return "precision fp16: the gradient scaler skips steps on the host"
    return None


def _loss_function(config: FitConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The recipe's loss on float32 logits; a callable's result is checked to be a scalar."""
    if callable(config.loss):
        user, name = config.loss, v.callable_name(config.loss)

        def checked(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            try:
                loss = user(out, y)
            except Exception as err:  # the user's loss failed: one line naming it
                raise ModelError(f"FitConfig.loss={name} raised {type(err).__name__}: {err}") from err
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ModelError(f"FitConfig.loss={name} returned {type(loss).__name__}"
                                 f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}; "
                                 f"allowed: a scalar tensor")
            return loss.reshape(())
        return lambda out, y: checked(out.float(), y)
    if config.label_smoothing:
        smoothing = config.label_smoothing
        return lambda out, y: F.cross_entropy(out.float(), y, label_smoothing=smoothing)
    return lambda out, y: F.cross_entropy(out.float(), y)


def _zero_weight_decay(optimizer: torch.optim.Optimizer) -> list[str]:
    """Turn off a user optimizer's weight decay in every group; what was there, for the record."""
    decays = sorted({float(g.get("weight_decay", 0.0)) for g in optimizer.param_groups} - {0.0})
    for group in optimizer.param_groups:
        if "weight_decay" in group:
            group["weight_decay"] = 0.0
    return [f"weight_decay:{d:g}" for d in decays]


# ---------------------------------------------------------------- regularizers and the record

def recipe_regularizers(config: FitConfig) -> dict[str, float]:
    """The recipe's own regularizers and their strengths: weight decay (any built-in optimizer;
    a callable optimizer's is found and zeroed when its fit is built) and label smoothing."""
    found = {"weight_decay": config.weight_decay, "label_smoothing": config.label_smoothing}
    return {k: x for k, x in found.items() if x}


def without_recipe_regularizers(config: FitConfig, names: tuple[str, ...]) -> tuple[FitConfig, list[str]]:
    """``config`` with the recipe regularizers in ``names`` turned off, and what went
    (``"weight_decay:0.05"``, ``"label_smoothing:0.1"``), for ``FitResult.removed``."""
    present = recipe_regularizers(config)
    gone = {k: 0.0 for k in names if k in ("weight_decay", "label_smoothing")}
    removed = [f"{k}:{present[k]:g}" for k in gone if k in present]
    return (dataclasses.replace(config, **gone) if gone else config), removed


def describe(config: FitConfig, lr: float, precision: str) -> str:
    """One line naming the recipe a fit ran (the JSON's ``settings.recipe``)."""
    opt = v.jsonable(config.optimizer)
    if config.optimizer == "sgd":
        opt = f"sgd(momentum={config.momentum:g})"
    parts = [f"{opt} lr={lr:g}"]
    if config.weight_decay:
        parts.append(f"weight_decay={config.weight_decay:g}")
    sched = v.jsonable(config.schedule)
    if config.schedule == "paper":
        sched = f"paper(x{config.lr_decay:g}/{config.lr_decay_steps} steps)"
    parts.append(sched + (f" warmup={config.warmup:g}" if config.warmup else ""))
    parts.append(v.jsonable(config.loss) + (f"(label_smoothing={config.label_smoothing:g})"
                                            if config.label_smoothing else ""))
    if config.clip_grad_norm is not None:
        parts.append(f"clip_grad_norm={config.clip_grad_norm:g}")
    if config.train_step is not None:
        parts.append(f"train_step={v.jsonable(config.train_step)}")
    return ", ".join(parts + [precision])
