"""The one training loop: fit a model to a (possibly randomized) dataset and measure how it went.

Both devices: channels_last storage and model for 2-D conv models that accept it (on 2 CPU
cores it makes evaluation 2-5x faster; docs/benchmarks.md "CPU budget"). CPU: a plain eager
float32 loop, bit-identical for the same seed. GPU: data resident on the device, bf16 autocast
over float32 master weights, and the whole training step (batch gather, forward, backward,
SGD-momentum update, loss accumulation) captured in a CUDA graph, so an epoch is a loop of
graph replays with no host synchronization until the evaluation at its end.

Batches: the step count per epoch is ceil(N / batch_size) as in the paper's reproductions; the
final partial batch gets its own (second) CUDA graph, so no example is dropped or padded.

Layers, imported one way: the settings (``FitConfig``, torch-free) live in
:mod:`rethink_checks.settings`, the step in :mod:`rethink_checks.step`, its CUDA-graph capture
in :mod:`rethink_checks.cuda_graphs`, what is measured when in :mod:`rethink_checks.evaluation`,
the on-device crop and flip in :mod:`rethink_checks.augment`;
this module holds ``fit`` and the epoch loop (``_Run``). ``FitConfig``, ``augment_images``,
``sgd_momentum_update``, ``lr_at`` and ``WARMUP_STEPS`` are re-exported from their home modules.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from .augment import augment_images
from .cuda_graphs import WARMUP_STEPS, _fast_path
from .devices import cudnn_benchmark, device_name, oom_error, resolve_device
from .errors import DataError, DeviceError, InputTypeError, ModelError
from .example_record import ExampleRecord
from .results import FitResult
from .settings import FitConfig
from .evaluation import _accuracy, _auto_eval_batch, _correct, _evaluate_now, _test_due, _test_sample
from .recipe import default_lr, describe, without_recipe_regularizers
from .step import (_accepts_channels_last, _autocast, _is_conv2d, _Loop, _Placed, _probe,
                   lr_at, sgd_momentum_update)

__all__ = ["FitConfig", "fit", "augment_images", "sgd_momentum_update", "lr_at", "WARMUP_STEPS"]


@dataclass(frozen=True)
class _Plan:
    """What one fit runs with, decided once in :func:`fit` and handed down to the epoch loop."""

    config: FitConfig      # after the removals (weight decay / augment forced off where removed)
    device: torch.device
    precision: str         # "fp32" | "bf16" | "fp16" ("auto" resolved: bf16 where the GPU has it)
    lr: float              # the base learning rate (recipe.default_lr)
    started: float         # perf_counter() when fit was called
    conv: bool             # channels_last storage and model (2-D convolutions that accept it)
    dataset_name: str

    def autocast(self):
        """The precision's autocast context for this device."""
        return _autocast(self.device, self.precision)


def fit(model_or_factory: nn.Module | Callable[[], nn.Module], data: Any,
        config: FitConfig | None = None, **overrides: Any) -> FitResult:
    """Train a copy of the model on ``data`` until the full training set is fitted or a budget ends."""
    started = time.perf_counter()
    config = _with_overrides(config or FitConfig(), overrides)
    device = resolve_device(config.device)
    _check_dataset(data)
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), cudnn_benchmark(device.type == "cuda"):
        torch.manual_seed(config.seed)
        model = _make_model(model_or_factory)
        model, removed, config = _apply_regularizers(model, config)
        lr = default_lr(config, model)
        if config.corruption is not None:
            if device.type == "cuda" and callable(getattr(data, "to", None)):
                try:  # corruptions draw on the CPU: the same result, made faster on the GPU
                    data = data.to(device)
                except torch.cuda.OutOfMemoryError as err:
                    raise DeviceError(f"CUDA out of memory placing the dataset {getattr(data, 'name', '')!r} "
                                      f"on {device}; use a smaller training set (Dataset.subset)") from err
            data = config.corruption.apply(data)
            _check_dataset(data)
        plan = _Plan(config=config, device=device,
                     precision=_precision(config.precision, device),
                     lr=lr, started=started,
                     conv=data.train_x.dim() == 4 and _is_conv2d(model),
                     dataset_name=getattr(data, "name", ""))
        result = _train(model, data, plan)
    result.removed = removed + result.removed  # + a callable optimizer's weight decay
    return result


# ----------------------------------------------------------------------------- overrides and device

def _precision(precision: str, device: torch.device) -> str:
    """``FitConfig.precision`` resolved: "auto" is bf16 on a GPU that supports it, else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"


def _with_overrides(config: FitConfig, overrides: dict[str, Any]) -> FitConfig:
    """``config`` with keyword overrides applied; an unknown keyword names the allowed ones."""
    if not isinstance(config, FitConfig):
        raise InputTypeError(f"fit(config=...) must be a FitConfig or None; got {type(config).__name__}")
    known = [f.name for f in dataclasses.fields(FitConfig)]
    unknown = sorted(set(overrides) - set(known) - set(_RENAMED_FIT_KEYS))
    if unknown:
        raise InputTypeError(f"fit() got unknown setting(s) {unknown}; FitConfig fields are {known}")
    return dataclasses.replace(config, **overrides) if overrides else config  # old names warn


_RENAMED_FIT_KEYS = ("regularizers", "remove_dropout", "remove_batchnorm")  # -> FitConfig.remove


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
    """Strip what ``config.remove`` names: dropout / batch norm modules, the recipe's weight decay
    and label smoothing (:func:`rethink_checks.recipe.without_recipe_regularizers`), augmentation."""
    from .regularizers import remove_batchnorm, remove_dropout

    removed: list[str] = []
    if "dropout" in config.remove:
        model, paths = remove_dropout(model)
        removed += [f"dropout:{p}" for p in paths]
    if "batchnorm" in config.remove:
        model, paths = remove_batchnorm(model)
        removed += [f"batchnorm:{p}" for p in paths]
    config, gone = without_recipe_regularizers(config, config.remove)  # weight decay, label smoothing
    removed += gone
    changes: dict[str, Any] = {}
    if "augment" in config.remove:
        if config.augment:
            removed.append("augment")
        changes["augment"] = False
    return model, removed, dataclasses.replace(config, **changes) if changes else config


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


# ----------------------------------------------------------------------------- the loop

def _train(model: nn.Module, data: Any, plan: _Plan) -> FitResult:
    """Place model and data, probe, capture (or not), run the epochs; OOM becomes a DeviceError."""
    if not any(p.requires_grad for p in model.parameters()):
        raise ModelError(f"the model ({type(model).__name__}) has no trainable parameters")
    device, config = plan.device, plan.config
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.cuda.device(device) if device.type == "cuda" else nullcontext():
        try:
            model.to(device)
            if plan.conv:
                model.to(memory_format=torch.channels_last)
                if not _accepts_channels_last(model, data.train_x[:2].to(device)):
                    model.to(memory_format=torch.contiguous_format)
                    plan = dataclasses.replace(plan, conv=False)
            train = _Placed(data.train_x, data.train_y, device, nhwc=plan.conv)
            test = _Placed(data.test_x, data.test_y, device, nhwc=plan.conv) if len(data.test_y) else None
            model.train()
            _probe(model, train, config.batch_size, data.num_classes, plan.autocast)
            if config.augment and data.train_x.dim() != 4:
                raise DataError(f"augment=True needs image inputs (N, C, H, W); got input shape "
                                f"{tuple(data.train_x.shape)}")
            loop = _Loop(model, train, config, plan.lr, plan.autocast,
                         graph=device.type == "cuda" and config.fast)
            if config.augment:
                loop.source = train.x.clone()
            graphs, reason = _fast_path(loop, device, config.fast, config.compile)
            run = _Run(model, loop, graphs, train, test, plan)
            run.epochs()
        except torch.cuda.OutOfMemoryError as err:
            raise oom_error(err, config, "training") from err
        return run.result(reason)


class _Run:
    """The epoch loop and the bookkeeping that becomes a FitResult."""

    def __init__(self, model: nn.Module, loop: _Loop, graphs: Any, train: _Placed,
                 test: _Placed | None, plan: _Plan):
        self.plan, self.autocast = plan, plan.autocast
        self.num_parameters = sum(p.numel() for p in loop.params)
        self.config = _auto_eval_batch(plan.config, plan.device, self.num_parameters)  # "auto" chunk
        self.model, self.loop, self.graphs = model, loop, graphs
        self.train, self.test = train, test
        self.sample, self.sample_rows = _test_sample(test, plan.config, len(train))
        self.shuffle = torch.Generator().manual_seed(plan.config.seed)
        self.crops = torch.Generator().manual_seed(plan.config.seed + 1_000_003)
        self.curves: dict[str, list] = {k: [] for k in
                                        ("epoch", "step", "train_loss", "running_accuracy",
                                         "train_accuracy", "test_accuracy", "lr", "elapsed")}
        self.stop_reason, self.fitted_epoch, self.diverged_epoch = "max_epochs", None, None
        self.train_accuracy, self.test_accuracy = 0.0, None
        self.train_seconds = self.eval_seconds = self.final_test_seconds = 0.0
        self.last_test_epoch, self.last_test_step = 0, 0  # when the test sample was last measured
        self.steps_done, self.fitted_steps = 0, None
        self.examples = ExampleRecord(len(train))  # per-example fit epochs and forgetting events

    def epochs(self) -> None:
        cfg, loop = self.config, self.loop
        t0 = time.perf_counter()
        last_eval, last_acc = 0, None
        for epoch in range(1, cfg.max_epochs + 1):
            steps = loop.steps_per_epoch if cfg.max_steps is None \
                else min(loop.steps_per_epoch, cfg.max_steps - self.steps_done)
            lr = loop.recipe.lr_at(self.steps_done)[0]
            ticked = time.perf_counter()
            perm = torch.randperm(loop.n, generator=self.shuffle)
            source = None
            if cfg.augment:
                source = self._augmented_source()
            loop.start_epoch(perm.to(loop.perm.device), source)
            if self.graphs is not None:
                self.graphs.run_epoch(self.steps_done, steps)
            else:
                loop.run_epoch(self.steps_done, steps)
            mean_loss = loop.loss_sum.item() / steps
            running = loop.correct_sum.item() / loop.seen(steps) if loop.counts_accuracy else math.nan
            self.train_seconds += time.perf_counter() - ticked
            self.steps_done += steps
            out_of_steps = cfg.max_steps is not None and self.steps_done >= cfg.max_steps
            diverged = not math.isfinite(mean_loss)
            evaluate = not diverged and _evaluate_now(cfg, epoch, last_eval, running, last_acc,
                                                      epoch == cfg.max_epochs or out_of_steps)
            train_acc = test_acc = None
            if not evaluate and not diverged and cfg.max_seconds is not None \
                    and time.perf_counter() - t0 >= cfg.max_seconds:
                evaluate = True  # the run ends here: measure it
            if evaluate:
                final = epoch == cfg.max_epochs or out_of_steps or (
                    cfg.max_seconds is not None and time.perf_counter() - t0 >= cfg.max_seconds)
                train_acc, test_acc = self._evaluate(epoch, final)
                last_eval, last_acc = epoch, train_acc
            elapsed = time.perf_counter() - t0
            self._record(epoch, mean_loss, running, train_acc, test_acc, lr, elapsed)
            if diverged:
                self.stop_reason, self.diverged_epoch = "diverged", epoch
                break
            if train_acc is not None and train_acc >= cfg.target_accuracy:
                self.stop_reason, self.fitted_epoch, self.fitted_steps = "fitted", epoch, self.steps_done
                break
            if cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
                self.stop_reason = "time_budget"
                break
            if out_of_steps:
                self.stop_reason = "max_steps"
                break
        self._final_test()

    def _final_test(self) -> None:
        """The reported test accuracy: the whole test split, measured once for the model as it
        ended (already done by :meth:`_evaluate` when the fit's last epoch was measured)."""
        if self.test is None or self.test_accuracy is not None:
            return
        ticked = time.perf_counter()
        try:
            self._measure_whole_test()
        except torch.cuda.OutOfMemoryError as err:
            raise oom_error(err, self.config, "evaluation") from err
        self.eval_seconds += time.perf_counter() - ticked

    def _augmented_source(self) -> torch.Tensor:
        images = self.train.view(self.train.x)
        augmented = augment_images(images, self.crops)
        return augmented.permute(0, 2, 3, 1) if self.train.nhwc else augmented

    def _evaluate(self, epoch: int, final: bool) -> tuple[float, float | None]:
        """Eval-mode accuracy on the whole training set (feeding the per-example record) and on
        the test sample when it is due (:func:`_test_due`). Where the fit ends (``final`` or the
        target met) the whole test split is measured once and the sample's value read from it."""
        cfg, chunk = self.config, self.config.eval_batch_size
        ticked = time.perf_counter()
        try:
            correct = _correct(self.model, self.train, chunk, self.autocast)
            self.examples.update(correct, epoch)
            train_acc = correct.sum().item() / len(self.train)
            test_acc = None
            if self.sample and (final or train_acc >= cfg.target_accuracy):
                test_acc = self._measure_whole_test()
            elif self.sample and _test_due(cfg, epoch, self.last_test_epoch,
                                           (self.steps_done - self.last_test_step) * cfg.batch_size,
                                           len(self.sample)):
                test_acc = _accuracy(self.model, self.sample, chunk, self.autocast)
            if test_acc is not None:
                self.last_test_epoch, self.last_test_step = epoch, self.steps_done
        except torch.cuda.OutOfMemoryError as err:
            raise oom_error(err, self.config, "evaluation") from err
        self.eval_seconds += time.perf_counter() - ticked
        self.train_accuracy = train_acc
        return train_acc, test_acc

    def _measure_whole_test(self) -> float:
        """The whole test split once (the reported accuracy); returns the sample's share of it."""
        ticked = time.perf_counter()
        correct = _correct(self.model, self.test, self.config.eval_batch_size, self.autocast)
        self.test_accuracy = correct.sum().item() / len(self.test)
        self.final_test_seconds = time.perf_counter() - ticked
        if self.sample_rows is None:
            return self.test_accuracy
        return correct.index_select(0, self.sample_rows).sum().item() / len(self.sample_rows)

    def _record(self, epoch, mean_loss, running, train_acc, test_acc, lr, elapsed) -> None:
        row = {"epoch": epoch, "step": self.steps_done,
               "train_loss": mean_loss if math.isfinite(mean_loss) else None,
               "running_accuracy": running if math.isfinite(mean_loss) and math.isfinite(running) else None,
               "train_accuracy": train_acc, "test_accuracy": test_acc, "lr": lr, "elapsed": elapsed}
        for key, value in row.items():
            self.curves[key].append(value)
        if self.config.progress is not None:  # the budgets too, so a live line can say what is left
            cfg = self.config
            self.config.progress({**row, "max_epochs": cfg.max_epochs, "max_steps": cfg.max_steps,
                                  "max_seconds": cfg.max_seconds, "target": cfg.target_accuracy})

    def result(self, reason: str) -> FitResult:
        """The FitResult of the epochs run; ``reason`` says why the step ran eager or as graphs."""
        device = self.plan.device
        tests = [(a, e) for a, e in zip(self.curves["test_accuracy"], self.curves["epoch"]) if a is not None]
        best = max(tests, key=lambda t: t[0]) if tests else (None, None)
        losses = self.curves["train_loss"]
        steps_per_epoch = self.loop.steps_per_epoch
        settings = self.config.to_dict()
        recipe = self.loop.recipe
        settings.update(test_sample=len(self.sample) if self.sample is not None else 0, lr=recipe.lr,
                        recipe=describe(self.plan.config, recipe.lr, self.plan.precision),
                        device=str(device), precision=self.plan.precision,
                        steps_per_epoch=steps_per_epoch, train_size=self.loop.n,
                        channels_last=self.plan.conv,
                        dataset=self.plan.dataset_name)
        self.model.eval()
        for p in self.loop.params:
            p.grad = None
        epochs = len(self.curves["epoch"])
        result = FitResult(
            fitted=self.stop_reason == "fitted", stop_reason=self.stop_reason,
            epochs=epochs, steps=self.steps_done,
            epochs_to_fit=self.fitted_epoch, steps_to_fit=self.fitted_steps,
            train_seconds=self.train_seconds, total_seconds=time.perf_counter() - self.plan.started,
            eval_seconds=self.eval_seconds, final_test_seconds=self.final_test_seconds,
            test_sample_size=len(self.sample) if self.sample is not None else 0,
            train_accuracy=self.train_accuracy,
            train_loss=losses[-1] if losses and losses[-1] is not None else float("nan"),
            test_accuracy=self.test_accuracy, best_test_accuracy=best[0], best_test_epoch=best[1],
            diverged=self.stop_reason == "diverged", diverged_epoch=self.diverged_epoch,
            curves=self.curves, settings=settings,
            num_parameters=self.num_parameters,
            device=str(device), device_name=device_name(device), torch_version=torch.__version__,
            peak_memory_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
            fast_path=self.graphs is not None, fast_path_reason=reason,
            examples=self.examples.to_dict(), removed=list(self.loop.recipe.removed),
        )
        result.model = self.model.cpu() if device.type == "cuda" else self.model  # not serialized
        return result
