"""The training step of ``fit``: data placed on the device, autocast, the model call, the SGD update.

One step function (:meth:`_Loop.step`) serves both the eager loop and the CUDA-graph fast path
(:mod:`rethink_checks.cuda_graphs`, which only decides who launches it), so the two differ
only in numerics and in who launches the kernels. Everything the step touches lives in static
buffers on the loop, and :meth:`_Loop.snapshot` / :meth:`_Loop.restore` undo steps that were
run only to warm up or compile.
"""
from __future__ import annotations

import copy
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from .adapters import Batch, call_model, logits_of, output_form
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
    """One split of the data on the device, stored NHWC for conv models so batches come out channels_last.

    ``extra`` holds the per-example tensors beside the main input (an attention mask, the other
    inputs of a multi-input model); ``form`` and ``keys`` say how a batch reaches the model
    (``Dataset.input_form`` / ``input_keys``): ``model(x)``, ``model(x, *others)`` or
    ``model(**{keys[0]: x, ...})``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, device: torch.device, nhwc: bool,
                 extra: dict[str, torch.Tensor] | None = None, form: str = "tensor",
                 keys: tuple[str, ...] = ()):
        tokens = x.dim() == 2 and not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool)
        x = x.to(device=device, dtype=torch.int64 if tokens else torch.float32)  # token ids stay integer
        self.nhwc = nhwc and x.dim() == 4
        self.x = x.permute(0, 2, 3, 1).contiguous() if self.nhwc else x.contiguous()
        self.y = y.to(device=device, dtype=torch.int64)
        self.form, self.keys = form, tuple(keys)
        passed = self.keys[1:] if form != "tensor" else ()
        self.extra = {k: extra[k].to(device).contiguous() for k in passed} if extra else {}

    @classmethod
    def of(cls, data: Any, split: str, device: torch.device, nhwc: bool) -> "_Placed":
        """One split of a Dataset on the device, with the extras its batches pass."""
        return cls(getattr(data, f"{split}_x"), getattr(data, f"{split}_y"), device, nhwc=nhwc,
                   extra=getattr(data, f"{split}_extra", None), form=getattr(data, "input_form", "tensor"),
                   keys=getattr(data, "input_keys", ()))

    def view(self, stored: torch.Tensor) -> torch.Tensor:
        """Stored rows as the model's N x C x H x W input (a channels_last view when NHWC)."""
        return stored.permute(0, 3, 1, 2) if self.nhwc else stored

    def batch(self, x: torch.Tensor, rows: torch.Tensor | slice) -> Batch:
        """The model input for ``rows``: ``x`` (those rows' main input, as the model takes it)
        with the other inputs of the same rows, in the data's form."""
        if self.form == "tensor":
            return x
        others = [self.extra[k][rows] if isinstance(rows, slice) else self.extra[k].index_select(0, rows)
                  for k in self.keys[1:]]
        if self.form == "tuple":
            return (x, *others)
        return {self.keys[0]: x, **dict(zip(self.keys[1:], others))}

    def rows(self, lo: int, hi: int) -> Batch:
        """The model input of rows ``lo:hi`` (evaluation chunks)."""
        return self.batch(self.view(self.x[lo:hi]), slice(lo, hi))

    def select(self, index: torch.Tensor) -> "_Placed":
        """A copy holding the rows ``index`` (a sorted sample of a split)."""
        sample = copy.copy(self)
        sample.x, sample.y = self.x.index_select(0, index), self.y.index_select(0, index)
        sample.extra = {k: t.index_select(0, index) for k, t in self.extra.items()}
        return sample

    def __len__(self) -> int:
        return len(self.y)


def _is_conv2d(model: nn.Module) -> bool:
    """Whether channels_last can help: the model has 2-D convolutions."""
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


def _has_batchnorm(model: nn.Module) -> bool:
    """Whether the model holds batch norm, which needs more than one example per training batch."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


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


def _call_model(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Run the model on a batch and read its logits (:mod:`rethink_checks.adapters`)."""
    return logits_of(call_model(model, batch))


def _probe(model: nn.Module, train: _Placed, batch: int, num_classes: int, autocast,
           stochastic: bool = False) -> tuple[str, bool]:
    """Forwards on a real batch in train mode and in eval mode, so output forms, shapes and
    types that do not fit surface before training; returns the output form (both modes named
    when they differ) and, when ``stochastic`` is asked, whether two train-mode forwards on the
    same batch differ (dropout called functionally inside ``forward``). The train-mode forwards
    leave no trace: the RNG is forked and batch-norm buffers are restored."""
    n = min(max(batch, 2), len(train))
    x = train.rows(0, n)
    was_training = model.training
    buffers = [(b, b.clone()) for b in model.buffers()]
    devices = [train.y.device.index or 0] if train.y.device.type == "cuda" else []
    try:
        with torch.no_grad(), autocast(), torch.random.fork_rng(devices=devices):
            model.train()
            outs = [call_model(model, x)]
            if stochastic:
                outs.append(call_model(model, x))
            model.eval()
            outs.append(call_model(model, x))
    finally:
        model.train(was_training)
        with torch.no_grad():
            for buf, saved in buffers:
                buf.copy_(saved)
    forms = []
    for mode, out in (("train", outs[0]), ("eval", outs[-1])):
        forms.append(output_form(out))
        _check_logits(logits_of(out), n, num_classes, mode, x)
    moved = stochastic and not torch.allclose(logits_of(outs[0]).float(), logits_of(outs[1]).float(),
                                              rtol=1e-3, atol=1e-4)
    form = forms[0] if forms[0] == forms[1] else f"{forms[0]} in train mode, {forms[1]} in eval mode"
    return form, moved


def _check_logits(out: torch.Tensor, n: int, num_classes: int, mode: str, x: Batch) -> None:
    """A ModelError unless ``out`` is (n, num_classes) floating-point logits."""
    if tuple(out.shape) != (n, num_classes):
        from .adapters import describe_batch

        raise ModelError(f"model returned shape {tuple(out.shape)}; expected ({n}, {num_classes}) "
                         f"(batch, num_classes logits) for {describe_batch(x)} in {mode} mode")
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
        #: a last batch of one example cannot train batch norm; dropped each epoch, as trainers do
        self.dropped_tail = self.tail == 1 and self.full_steps > 0 and _has_batchnorm(model)
        if self.dropped_tail:
            self.tail = 0
        self.steps_per_epoch = self.full_steps + (1 if self.tail else 0)
        # graph: the optimizer is built capturable (lr a device tensor) for the CUDA-graph path
        self.recipe = Recipe(self.params, config, lr, device, self.steps_per_epoch, graph)
        self.counts_accuracy = config.train_step is None  # a train_step may return no logits
        self.steps_done = 0  # optimizer steps before the current one (a train_step's errors say which)
        self.source = train.x  # replaced by an augmented copy each epoch when augment is on
        self.perm = torch.arange(self.n, device=device)
        self.base = torch.zeros((), dtype=torch.int64, device=device)
        self.offsets = torch.arange(self.batch, device=device)
        self.tail_positions = torch.arange(self.full_steps * self.batch, self.full_steps * self.batch + self.tail,
                                           device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        self.correct_sum = torch.zeros((), dtype=torch.int64, device=device)  # train-mode, this epoch
        self.compiled: Callable | None = None  # torch.compile'd model for full batches, if asked

    def step(self, full: bool) -> None:
        """One optimizer step on the next batch of the epoch's permutation (the recipe's loss,
        clipping and update, or the user's ``train_step``); no host synchronization unless the
        recipe's callables need one."""
        positions = self.base + self.offsets if full else self.tail_positions
        index = self.perm.index_select(0, positions)
        x = self.train.batch(self.train.view(self.source.index_select(0, index)), index)
        self.update(x, self.train.y.index_select(0, index), full)

    def update(self, x: Batch, y: torch.Tensor, full: bool) -> None:
        """Forward, backward and the recipe's update (or the user's ``train_step``) on one batch
        ``x`` (any batch form) with labels ``y``; the epoch's sums grow on the device."""
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
        return self.n - self.dropped_tail if steps >= self.steps_per_epoch else steps * self.batch

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
