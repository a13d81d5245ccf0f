"""The training step of ``fit``: data placed on the device, autocast, the model call, the SGD update.

One step function (:meth:`_Loop.step`) serves both the eager loop and the CUDA-graph fast path
(:mod:`rethink_checks.cuda_graphs`, which only decides who launches it), so the two differ
only in numerics and in who launches the kernels. Everything the step touches lives in static
buffers on the loop, and :meth:`_Loop.snapshot` / :meth:`_Loop.restore` undo steps that were
run only to warm up or compile.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from .errors import ModelError
from .recipe import Recipe, sgd_momentum_update

if TYPE_CHECKING:  # pragma: no cover
    from .settings import FitConfig

__all__ = ["sgd_momentum_update", "lr_at"]


def lr_at(step: int, lr: float, decay: float, every: int) -> float:
    """The paper schedule's learning rate at optimizer step ``step`` (0-based): ``lr`` times
    ``decay`` once per ``every`` steps done (staircase), multiplied out one factor at a time
    exactly as the old per-epoch loop did (``lr *= decay``), so 391 steps an epoch reproduce it
    to the last bit. The fit's :class:`~rethink_checks.recipe.Recipe` computes it the same way.
    """
    level, value = step // every, lr
    for _ in range(level):
        value *= decay
    return value


class _Placed:
    """One split of the data on the device, stored NHWC for conv models so batches come out channels_last."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, device: torch.device, nhwc: bool):
        tokens = x.dim() == 2 and not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool)
        x = x.to(device=device, dtype=torch.int64 if tokens else torch.float32)  # token ids stay integer
        self.nhwc = nhwc and x.dim() == 4
        self.x = x.permute(0, 2, 3, 1).contiguous() if self.nhwc else x.contiguous()
        self.y = y.to(device=device, dtype=torch.int64)

    def view(self, stored: torch.Tensor) -> torch.Tensor:
        """Stored rows as the model's N x C x H x W input (a channels_last view when NHWC)."""
        return stored.permute(0, 3, 1, 2) if self.nhwc else stored

    def __len__(self) -> int:
        return len(self.y)


def _is_conv2d(model: nn.Module) -> bool:
    """Whether channels_last can help: the model has 2-D convolutions."""
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


def _accepts_channels_last(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether the (channels_last) model runs on a channels_last batch: a ``.view`` after a
    convolution does not, and such a model trains contiguous instead (one eval-mode forward, no
    state or RNG touched)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x.to(torch.float32).contiguous(memory_format=torch.channels_last))
        return True
    except Exception:  # any failure here: contiguous; _probe reports a model broken either way
        return False
    finally:
        model.train(was_training)


def _autocast(device: torch.device, precision: str):
    """bf16 or fp16 autocast over float32 master weights, or nothing for fp32."""
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=False)
    return nullcontext()


def _call_model(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run the model; its own exceptions become a ModelError naming the input shape."""
    try:
        return model(x)
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as err:  # the user's model failed: say on what
        raise ModelError(f"the model raised {type(err).__name__} on an input of shape "
                         f"{tuple(x.shape)} ({x.dtype}): {err}") from err


def _probe(model: nn.Module, train: _Placed, batch: int, num_classes: int, autocast) -> None:
    """One eval-mode forward on a real batch so shape and type errors surface before training."""
    n = min(batch, len(train))
    x = train.view(train.x[:n])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast():
            out = _call_model(model, x)
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ModelError(f"the model returned {type(out).__name__}; expected a tensor of logits "
                         f"of shape ({n}, {num_classes})")
    if tuple(out.shape) != (n, num_classes):
        raise ModelError(f"model returned shape {tuple(out.shape)}; expected ({n}, {num_classes}) "
                         f"(batch, num_classes logits) for input of shape {tuple(x.shape)}")
    if not out.is_floating_point():
        raise ModelError(f"the model returned {out.dtype} values; expected floating-point logits")


class _Loop:
    """Static buffers and the training step shared by the eager and the CUDA-graph paths."""

    def __init__(self, model: nn.Module, train: _Placed, config: FitConfig, lr: float, autocast,
                 graph: bool = False):
        device = train.y.device
        self.model, self.train, self.autocast = model, train, autocast
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.batch = config.batch_size
        self.n = len(train)
        self.full_steps, self.tail = divmod(self.n, self.batch)
        self.steps_per_epoch = self.full_steps + (1 if self.tail else 0)
        # graph: the optimizer is built capturable (lr a device tensor) for the CUDA-graph path
        self.recipe = Recipe(self.params, config, lr, device, self.steps_per_epoch, graph)
        self.counts_accuracy = config.train_step is None  # a train_step may return no logits
        self.steps_done = 0  # optimizer steps before the current one (a train_step's errors say which)
        self.source = train.x  # replaced by an augmented copy each epoch when augment is on
        self.perm = torch.arange(self.n, device=device)
        self.base = torch.zeros((), dtype=torch.int64, device=device)
        self.offsets = torch.arange(self.batch, device=device)
        self.tail_positions = torch.arange(self.full_steps * self.batch, self.n, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        self.correct_sum = torch.zeros((), dtype=torch.int64, device=device)  # train-mode, this epoch
        self.compiled: Callable | None = None  # torch.compile'd model for full batches, if asked

    def step(self, full: bool) -> None:
        """One optimizer step on the next batch of the epoch's permutation (the recipe's loss,
        clipping and update, or the user's ``train_step``); no host synchronization unless the
        recipe's callables need one."""
        positions = self.base + self.offsets if full else self.tail_positions
        index = self.perm.index_select(0, positions)
        x = self.train.view(self.source.index_select(0, index))
        y = self.train.y.index_select(0, index)
        for p in self.params:
            p.grad = None
        if self.recipe.config.train_step is not None:
            with self.autocast():
                loss, out = self.recipe.user_step(self.model, x, y, self.steps_done)
        else:
            with self.autocast():
                out = _call_model(self.compiled if full and self.compiled is not None else self.model, x)
            loss = self.recipe.loss(out, y)
            self.recipe.update(loss)
        with torch.no_grad():
            self.loss_sum += loss.detach().to(self.loss_sum.device)
            if isinstance(out, torch.Tensor) and out.dim() == 2 and len(out) == len(y):
                self.counts_accuracy = True
                self.correct_sum += (out.detach().argmax(dim=1) == y).sum()
            if full:
                self.base += self.batch

    def start_epoch(self, perm: torch.Tensor, source: torch.Tensor | None) -> None:
        """Load the epoch's permutation (and augmented images) into the static buffers."""
        self.perm.copy_(perm, non_blocking=True)
        if source is not None:
            self.source.copy_(source)
        self.base.zero_()
        self.loss_sum.zero_()
        self.correct_sum.zero_()

    def run_epoch(self, first: int, steps: int,
                  full: Callable[[], None] | None = None, tail: Callable[[], None] | None = None) -> None:
        """The epoch's first ``steps`` steps (full batches, then the partial one), ``first`` steps done
        before it; the recipe reloads the learning rate between steps where its schedule changes
        it (a device tensor's async fill, so CUDA-graph replays read it too). ``full``/``tail``
        default to eager steps.
        """
        full = full or (lambda: self.step(True))
        tail = tail or (lambda: self.step(False))
        for i in range(steps):
            self.steps_done = first + i
            self.recipe.set_step(first + i)
            (full if i < self.full_steps else tail)()

    def seen(self, steps: int) -> int:
        """Examples the epoch's first ``steps`` steps trained on."""
        return self.n if steps >= self.steps_per_epoch else steps * self.batch

    def snapshot(self) -> dict[str, torch.Tensor]:
        """Copies of the model's weights and buffers, for :meth:`restore` after warm-up steps."""
        return {k: t.clone() for k, t in self.model.state_dict().items()}

    def restore(self, state: dict[str, torch.Tensor], drop_grads: bool) -> None:
        """Undo steps since :meth:`snapshot`, in place: weights, buffers, momentum, counters."""
        with torch.no_grad():
            if drop_grads:
                for p in self.params:
                    p.grad = None
            for key, value in self.model.state_dict().items():
                value.copy_(state[key])
            self.recipe.reset_state()
            self.base.zero_()
            self.loss_sum.zero_()
            self.correct_sum.zero_()
