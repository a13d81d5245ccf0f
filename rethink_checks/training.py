"""The one training loop: fit a model to a (possibly randomized) dataset and measure how it went.

CPU: a plain eager float32 loop, bit-identical for the same seed. GPU: data resident on the
device, channels_last for conv models, bf16 autocast over float32 master weights, and the whole
training step (batch gather, forward, backward, SGD-momentum update, loss accumulation) captured
in a CUDA graph, so an epoch is a loop of graph replays with no host synchronization until the
evaluation at its end. Both paths run the same step function (:class:`_Loop`), so they differ
only in numerics and in who launches the kernels.

Batches: the step count per epoch is ceil(N / batch_size) as in the paper's reproductions; the
final partial batch gets its own (second) CUDA graph, so no example is dropped or padded.

The capture itself lives in :mod:`rethink_checks.cuda_graphs`, the on-device crop and flip in
:mod:`rethink_checks.augment`; both are re-exported here.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import platform
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .augment import augment_images
from .cuda_graphs import (WARMUP_STEPS, _CaptureFailed, _fast_path, _Graphs,  # noqa: F401
                          _restore, _root_cause)
from .errors import DataError, DeviceError, InputTypeError, ModelError, SettingsError
from .example_record import ExampleRecord
from .results import FitResult

__all__ = ["FitConfig", "fit", "augment_images", "sgd_momentum_update", "WARMUP_STEPS"]


@dataclass
class FitConfig:
    """Settings of one fit; the defaults are the paper's (SGD 0.9, x0.95 per epoch, batch 128).

    lr: None uses ``model.rethink_lr`` (set by ``models.build``), else 0.01; multiplied by
    ``lr_decay`` after every epoch. ``augment``: random crop (zero padding of 4 px per 32 px of
    height) and horizontal flip, drawn per image per epoch. ``regularizers``: "model" keeps the
    model's dropout / batch norm; "none" also strips them, and forces weight decay 0 and no
    augmentation (``FitResult.removed`` lists what went). ``target_accuracy`` is measured on the
    full (randomized) training set in eval mode every ``eval_every`` epochs and after the last.
    ``max_seconds`` bounds the epoch loop's wall clock, checked after each epoch (at least one
    runs). ``precision`` "auto" is bf16 autocast (float32 master weights) on GPU, float32 on
    CPU. ``fast`` allows the CUDA-graph step. ``progress`` gets each epoch's curve row.
    ``compile`` (GPU only, opt-in): run the full-batch training forward through
    ``torch.compile`` (Inductor, no CUDA graphs of its own) before capture, for fewer, fused
    kernels per step at the price of compile time on first use; a failure to compile falls
    back to the plain model, with the reason recorded.
    """

    lr: float | None = None
    momentum: float = 0.9
    lr_decay: float = 0.95
    batch_size: int = 128
    weight_decay: float = 0.0
    augment: bool = False
    regularizers: str = "model"
    remove_dropout: bool = False
    remove_batchnorm: bool = False
    corruption: Any = None
    target_accuracy: float = 1.0
    eval_every: int = 1
    max_epochs: int = 100
    max_seconds: float | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    fast: bool = True
    eval_batch_size: int = 1024
    progress: Callable[[dict], None] | None = field(default=None, compare=False)
    compile: bool = False

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings: the corruption as its own dict, the progress callback left out."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "progress"}
        out["corruption"] = _corruption_dict(self.corruption)
        return out


def fit(model_or_factory: nn.Module | Callable[[], nn.Module], data: Any,
        config: FitConfig | None = None, **overrides: Any) -> FitResult:
    """Train a copy of the model on ``data`` until the full training set is fitted or a budget ends."""
    started = time.perf_counter()
    config = _with_overrides(config or FitConfig(), overrides)
    device = _resolve_device(config.device)
    _check_dataset(data)
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), _cudnn_benchmark(device.type == "cuda"):
        torch.manual_seed(config.seed)
        model = _make_model(model_or_factory)
        model, removed, config = _apply_regularizers(model, config)
        lr = config.lr if config.lr is not None else float(getattr(model, "rethink_lr", None) or 0.01)
        if config.corruption is not None:
            if device.type == "cuda" and callable(getattr(data, "to", None)):
                try:  # corruptions draw on the CPU: the same result, made faster on the GPU
                    data = data.to(device)
                except torch.cuda.OutOfMemoryError as err:
                    raise DeviceError(f"CUDA out of memory placing the dataset {getattr(data, 'name', '')!r} "
                                      f"on {device}; use a smaller training set (Dataset.subset)") from err
            data = config.corruption.apply(data)
            _check_dataset(data)
        result = _train(model, data, config, device, lr, started)
    result.removed = removed
    return result


# ----------------------------------------------------------------------------- settings

def _validate(config: FitConfig) -> None:
    """Reject settings that cannot work, naming the field, the value and what is allowed."""
    def bad(name: str, allowed: str) -> SettingsError:
        return SettingsError(f"FitConfig.{name}={getattr(config, name)!r} is invalid; expected {allowed}")

    def positive_int(name: str) -> None:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad(name, "a positive integer")

    def number(name: str, low: float, high: float, low_open: bool = False) -> None:
        value = getattr(config, name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value > high or value < low or (low_open and value == low):
            raise bad(name, f"a number in {'(' if low_open else '['}{low}, {high}]")

    for name in ("batch_size", "eval_every", "max_epochs", "eval_batch_size"):
        positive_int(name)
    if config.lr is not None:
        number("lr", 0.0, math.inf, low_open=True)
    number("momentum", 0.0, 1.0)
    number("lr_decay", 0.0, math.inf, low_open=True)
    number("weight_decay", 0.0, math.inf)
    number("target_accuracy", 0.0, 1.0, low_open=True)
    if config.max_seconds is not None:
        number("max_seconds", 0.0, math.inf, low_open=True)
    if config.regularizers not in ("model", "none"):
        raise bad("regularizers", "'model' (keep the model's own) or 'none' (strip them all)")
    if config.precision not in ("auto", "fp32", "bf16"):
        raise bad("precision", "'auto', 'fp32' or 'bf16'")
    if not isinstance(config.device, str):
        raise bad("device", "a string: 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not isinstance(config.seed, int) or isinstance(config.seed, bool):
        raise bad("seed", "an integer")
    if config.progress is not None and not callable(config.progress):
        raise bad("progress", "None or a callable taking the epoch's curve row")
    if config.corruption is not None and not callable(getattr(config.corruption, "apply", None)):
        raise bad("corruption", "None or a CorruptionSpec (an object with .apply(dataset))")


def _with_overrides(config: FitConfig, overrides: dict[str, Any]) -> FitConfig:
    """``config`` with keyword overrides applied; an unknown keyword names the allowed ones."""
    if not isinstance(config, FitConfig):
        raise InputTypeError(f"fit(config=...) must be a FitConfig or None; got {type(config).__name__}")
    known = [f.name for f in dataclasses.fields(FitConfig)]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise InputTypeError(f"fit() got unknown setting(s) {unknown}; FitConfig fields are {known}")
    return dataclasses.replace(config, **overrides) if overrides else config


def _corruption_dict(spec: Any) -> Any:
    """A JSON-able description of a corruption spec (its to_dict, dataclass fields, or repr)."""
    if spec is None:
        return None
    if callable(getattr(spec, "to_dict", None)):
        return spec.to_dict()
    if dataclasses.is_dataclass(spec):
        return {k: v for k, v in dataclasses.asdict(spec).items()
                if v is None or isinstance(v, (bool, int, float, str))}
    return repr(spec)


def _resolve_device(spec: str) -> torch.device:
    """'auto' -> cuda if present else cpu; a cuda request without a usable GPU is a DeviceError."""
    if spec == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() \
            else torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as err:
        raise SettingsError(f"FitConfig.device={spec!r} is invalid; expected 'auto', 'cpu', 'cuda' "
                         f"or 'cuda:N'") from err
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise SettingsError(f"FitConfig.device={spec!r} is not supported; expected 'auto', 'cpu', "
                         f"'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise DeviceError(f"device={spec!r} was requested but CUDA is not available "
                          f"(torch {torch.__version__}); use device='cpu' or 'auto'")
    count = torch.cuda.device_count()
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index >= count:
        raise DeviceError(f"device={spec!r} was requested but only {count} CUDA device(s) exist "
                          f"(cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)


@contextmanager
def _cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """Let cuDNN pick the fastest kernels during this fit only; restore the global flag afterwards."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = previous or enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


# ----------------------------------------------------------------------------- model and data

def _make_model(model_or_factory: Any) -> nn.Module:
    """A private copy of the given module, or a fresh one from the factory."""
    if isinstance(model_or_factory, nn.Module):
        return copy.deepcopy(model_or_factory)
    if not callable(model_or_factory):
        raise ModelError(f"model must be a torch.nn.Module or a zero-argument factory returning one; "
                         f"got {type(model_or_factory).__name__}")
    try:
        model = model_or_factory()
    except Exception as err:  # the user's factory failed: say so instead of a deep traceback
        raise ModelError(f"the model factory {getattr(model_or_factory, '__name__', model_or_factory)!r} "
                         f"raised {type(err).__name__}: {err}") from err
    if not isinstance(model, nn.Module):
        raise ModelError(f"the model factory returned {type(model).__module__}.{type(model).__qualname__};"
                         f" expected a torch.nn.Module")
    return model


def _apply_regularizers(model: nn.Module, config: FitConfig) -> tuple[nn.Module, list[str], FitConfig]:
    """Strip dropout / batch norm as configured; regularizers='none' also zeroes weight decay and augment."""
    from .regularizers import remove_batchnorm, remove_dropout

    removed: list[str] = []
    strip_all = config.regularizers == "none"
    if strip_all or config.remove_dropout:
        model, paths = remove_dropout(model)
        removed += [f"dropout:{p}" for p in paths]
    if strip_all or config.remove_batchnorm:
        model, paths = remove_batchnorm(model)
        removed += [f"batchnorm:{p}" for p in paths]
    if strip_all:
        if config.weight_decay:
            removed.append(f"weight_decay:{config.weight_decay}")
        if config.augment:
            removed.append("augment")
        config = dataclasses.replace(config, weight_decay=0.0, augment=False)
    return model, removed, config


def _check_dataset(data: Any) -> None:
    """Fail early, with the shapes named, on data fit() cannot train on."""
    needed = ("train_x", "train_y", "test_x", "test_y", "num_classes")
    missing = [n for n in needed if not hasattr(data, n)]
    if missing:
        raise DataError(f"data must be a rethink_checks.data.Dataset; got {type(data).__name__} "
                        f"without {missing}")
    x, y = data.train_x, data.train_y
    if len(x) == 0 or len(x) != len(y):
        raise DataError(f"the training split needs matching, non-empty images and labels; got "
                        f"{tuple(x.shape)} images and {tuple(y.shape)} labels")
    for split in ("train", "test"):
        labels = getattr(data, f"{split}_y")
        if labels.numel() and (labels.min() < 0 or labels.max() >= data.num_classes):
            raise DataError(f"{split} labels must lie in [0, {data.num_classes}) "
                            f"(num_classes={data.num_classes}); got [{int(labels.min())}, "
                            f"{int(labels.max())}]")


def _is_conv2d(model: nn.Module) -> bool:
    """Whether channels_last can help: the model has 2-D convolutions."""
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


class _Placed:
    """One split of the data on the device, stored NHWC for conv models so batches come out channels_last."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, device: torch.device, nhwc: bool):
        x = x.to(device=device, dtype=torch.float32)
        self.nhwc = nhwc and x.dim() == 4
        self.x = x.permute(0, 2, 3, 1).contiguous() if self.nhwc else x.contiguous()
        self.y = y.to(device=device, dtype=torch.int64)

    def view(self, stored: torch.Tensor) -> torch.Tensor:
        """Stored rows as the model's N x C x H x W input (a channels_last view when NHWC)."""
        return stored.permute(0, 3, 1, 2) if self.nhwc else stored

    def __len__(self) -> int:
        return len(self.y)


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)
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


# ----------------------------------------------------------------------------- the step

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


class _Loop:
    """Static buffers and the training step shared by the eager and the CUDA-graph paths."""

    def __init__(self, model: nn.Module, train: _Placed, config: FitConfig, lr: float, autocast):
        device = train.y.device
        self.model, self.train, self.autocast = model, train, autocast
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.batch = config.batch_size
        self.momentum, self.weight_decay = config.momentum, config.weight_decay
        self.n = len(train)
        self.full_steps, self.tail = divmod(self.n, self.batch)
        self.steps_per_epoch = self.full_steps + (1 if self.tail else 0)
        self.source = train.x  # replaced by an augmented copy each epoch when augment is on
        self.perm = torch.arange(self.n, device=device)
        self.base = torch.zeros((), dtype=torch.int64, device=device)
        self.offsets = torch.arange(self.batch, device=device)
        self.tail_positions = torch.arange(self.full_steps * self.batch, self.n, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        self.lr = torch.tensor(lr, dtype=torch.float32, device=device)
        self.bufs = [torch.zeros_like(p) for p in self.params]
        self.compiled: Callable | None = None  # torch.compile'd model for full batches, if asked

    def step(self, full: bool) -> None:
        """One SGD step on the next batch of the epoch's permutation; no host synchronization."""
        positions = self.base + self.offsets if full else self.tail_positions
        index = self.perm.index_select(0, positions)
        x = self.train.view(self.source.index_select(0, index))
        y = self.train.y.index_select(0, index)
        for p in self.params:
            p.grad = None
        with self.autocast():
            out = _call_model(self.compiled if full and self.compiled is not None else self.model, x)
        loss = F.cross_entropy(out.float(), y)
        loss.backward()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        with torch.no_grad():
            sgd_momentum_update(self.params, grads, self.bufs, self.lr, self.momentum, self.weight_decay)
            self.loss_sum += loss.detach()
            if full:
                self.base += self.batch

    def start_epoch(self, perm: torch.Tensor, source: torch.Tensor | None) -> None:
        self.perm.copy_(perm, non_blocking=True)
        if source is not None:
            self.source.copy_(source)
        self.base.zero_()
        self.loss_sum.zero_()


def _eager_epoch(loop: _Loop) -> None:
    for _ in range(loop.full_steps):
        loop.step(True)
    if loop.tail:
        loop.step(False)


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def _correct(model: nn.Module, split: _Placed, chunk: int, autocast) -> torch.Tensor:
    """Per-example correctness (a bool vector on the split's device) over a whole split in eval mode."""
    model.eval()
    correct = torch.empty(len(split), dtype=torch.bool, device=split.y.device)
    for lo in range(0, len(split), chunk):
        with autocast():
            out = _call_model(model, split.view(split.x[lo:lo + chunk]))
        correct[lo:lo + chunk] = out.argmax(dim=1) == split.y[lo:lo + chunk]
    model.train()
    return correct


def _accuracy(model: nn.Module, split: _Placed, chunk: int, autocast) -> float:
    """Accuracy over a whole split in eval mode, one host synchronization at the end."""
    return _correct(model, split, chunk, autocast).sum().item() / len(split)


# ----------------------------------------------------------------------------- the loop

def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def _oom_error(err: BaseException, config: FitConfig, what: str) -> DeviceError:
    size = config.batch_size if what == "training" else config.eval_batch_size
    name = "batch_size" if what == "training" else "eval_batch_size"
    return DeviceError(f"CUDA out of memory during {what} with {name}={size}; try a smaller "
                       f"{name} (e.g. {max(1, size // 2)}) or a smaller model. ({str(err).splitlines()[0] if str(err) else 'OOM'})")


def _train(model: nn.Module, data: Any, config: FitConfig, device: torch.device, lr: float,
           started: float) -> FitResult:
    precision = config.precision if config.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    autocast = lambda: _autocast(device, precision)  # noqa: E731
    if not any(p.requires_grad for p in model.parameters()):
        raise ModelError(f"the model ({type(model).__name__}) has no trainable parameters")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    conv = device.type == "cuda" and data.train_x.dim() == 4 and _is_conv2d(model)
    with torch.cuda.device(device) if device.type == "cuda" else nullcontext():
        return _train_on(model, data, config, device, lr, started, precision, autocast, conv)


def _train_on(model: nn.Module, data: Any, config: FitConfig, device: torch.device, lr: float,
              started: float, precision: str, autocast: Callable, conv: bool) -> FitResult:
    """Place model and data, probe, capture (or not), run the epochs; OOM becomes a DeviceError."""
    try:
        model.to(device)
        if conv:
            model.to(memory_format=torch.channels_last)
        train = _Placed(data.train_x, data.train_y, device, nhwc=conv)
        test = _Placed(data.test_x, data.test_y, device, nhwc=conv) if len(data.test_y) else None
        model.train()
        _probe(model, train, config.batch_size, data.num_classes, autocast)
        if config.augment and data.train_x.dim() != 4:
            raise DataError(f"augment=True needs image inputs (N, C, H, W); got input shape "
                             f"{tuple(data.train_x.shape)}")
        loop = _Loop(model, train, config, lr, autocast)
        if config.augment:
            loop.source = train.x.clone()
        graphs, reason = _fast_path(loop, device, config)
        run = _Run(model, loop, graphs, train, test, config, autocast, started, lr)
        run.epochs()
    except torch.cuda.OutOfMemoryError as err:
        raise _oom_error(err, config, "training") from err
    return run.result(device, precision, lr, reason, data)


class _Run:
    """The epoch loop and the bookkeeping that becomes a FitResult."""

    def __init__(self, model, loop, graphs, train, test, config, autocast, started, lr):
        self.lr = lr
        self.model, self.loop, self.graphs = model, loop, graphs
        self.train, self.test, self.config, self.autocast = train, test, config, autocast
        self.started = started
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.crops = torch.Generator().manual_seed(config.seed + 1_000_003)
        self.curves: dict[str, list] = {k: [] for k in
                                        ("epoch", "step", "train_loss", "train_accuracy",
                                         "test_accuracy", "lr", "elapsed")}
        self.stop_reason, self.fitted_epoch, self.diverged_epoch = "max_epochs", None, None
        self.train_accuracy, self.test_accuracy = 0.0, None
        self.train_seconds = 0.0
        self.examples = ExampleRecord(len(train))  # per-example fit epochs and forgetting events

    def epochs(self) -> None:
        cfg, loop = self.config, self.loop
        t0 = time.perf_counter()
        lr = self.lr
        for epoch in range(1, cfg.max_epochs + 1):
            loop.lr.fill_(lr)
            perm = torch.randperm(loop.n, generator=self.shuffle)
            source = None
            if cfg.augment:
                source = self._augmented_source()
            loop.start_epoch(perm.to(loop.perm.device), source)
            if self.graphs is not None:
                self.graphs.run_epoch()
            else:
                _eager_epoch(loop)
            mean_loss = loop.loss_sum.item() / loop.steps_per_epoch
            diverged = not math.isfinite(mean_loss)
            evaluate = not diverged and (epoch % cfg.eval_every == 0 or epoch == cfg.max_epochs)
            train_acc = test_acc = None
            if evaluate:
                train_acc, test_acc = self._evaluate(epoch)
            elapsed = time.perf_counter() - t0
            if not evaluate and not diverged and cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
                train_acc, test_acc = self._evaluate(epoch)  # the run ends here: measure it
                elapsed = time.perf_counter() - t0
            self._record(epoch, mean_loss, train_acc, test_acc, lr, elapsed)
            self.train_seconds = elapsed
            if diverged:
                self.stop_reason, self.diverged_epoch = "diverged", epoch
                break
            if train_acc is not None and train_acc >= cfg.target_accuracy:
                self.stop_reason, self.fitted_epoch = "fitted", epoch
                break
            if cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
                self.stop_reason = "time_budget"
                break
            lr *= cfg.lr_decay

    def _augmented_source(self) -> torch.Tensor:
        images = self.train.view(self.train.x)
        augmented = augment_images(images, self.crops)
        return augmented.permute(0, 2, 3, 1) if self.train.nhwc else augmented

    def _evaluate(self, epoch: int) -> tuple[float, float | None]:
        chunk = self.config.eval_batch_size
        try:
            correct = _correct(self.model, self.train, chunk, self.autocast)
            self.examples.update(correct, epoch)
            train_acc = correct.sum().item() / len(self.train)
            test_acc = _accuracy(self.model, self.test, chunk, self.autocast) if self.test else None
        except torch.cuda.OutOfMemoryError as err:
            raise _oom_error(err, self.config, "evaluation") from err
        self.train_accuracy, self.test_accuracy = train_acc, test_acc
        return train_acc, test_acc

    def _record(self, epoch, mean_loss, train_acc, test_acc, lr, elapsed) -> None:
        row = {"epoch": epoch, "step": epoch * self.loop.steps_per_epoch,
               "train_loss": mean_loss if math.isfinite(mean_loss) else None,
               "train_accuracy": train_acc, "test_accuracy": test_acc, "lr": lr, "elapsed": elapsed}
        for key, value in row.items():
            self.curves[key].append(value)
        if self.config.progress is not None:
            self.config.progress(dict(row))

    def result(self, device, precision, lr, reason, data) -> FitResult:
        tests = [(a, e) for a, e in zip(self.curves["test_accuracy"], self.curves["epoch"]) if a is not None]
        best = max(tests, key=lambda t: t[0]) if tests else (None, None)
        losses = self.curves["train_loss"]
        steps_per_epoch = self.loop.steps_per_epoch
        settings = self.config.to_dict()
        settings.update(lr=lr, device=str(device), precision=precision,
                        steps_per_epoch=steps_per_epoch, train_size=self.loop.n, dataset=getattr(data, "name", ""))
        self.model.eval()
        for p in self.loop.params:
            p.grad = None
        epochs = len(self.curves["epoch"])
        result = FitResult(
            fitted=self.stop_reason == "fitted", stop_reason=self.stop_reason,
            epochs=epochs, steps=epochs * steps_per_epoch,
            epochs_to_fit=self.fitted_epoch,
            steps_to_fit=self.fitted_epoch * steps_per_epoch if self.fitted_epoch else None,
            train_seconds=self.train_seconds, total_seconds=time.perf_counter() - self.started,
            train_accuracy=self.train_accuracy,
            train_loss=losses[-1] if losses and losses[-1] is not None else float("nan"),
            test_accuracy=self.test_accuracy, best_test_accuracy=best[0], best_test_epoch=best[1],
            diverged=self.stop_reason == "diverged", diverged_epoch=self.diverged_epoch,
            curves=self.curves, settings=settings,
            num_parameters=sum(p.numel() for p in self.loop.params),
            device=str(device), device_name=_device_name(device), torch_version=torch.__version__,
            peak_memory_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
            fast_path=self.graphs is not None, fast_path_reason=reason,
            examples=self.examples.to_dict(),
        )
        result.model = self.model.cpu() if device.type == "cuda" else self.model  # not serialized
        return result
