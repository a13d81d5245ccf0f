"""The device a fit runs on: resolving ``FitConfig.device``, cuDNN's autotuner for one fit, the
device's name for results, and out-of-memory errors that say which setting to lower."""
from __future__ import annotations

import platform
from contextlib import contextmanager
from typing import Iterator

import torch

from .errors import DeviceError
from .settings import FitConfig

__all__ = ["resolve_device", "cudnn_benchmark", "device_name", "oom_error"]


def resolve_device(spec: str) -> torch.device:
    """'auto' -> cuda if present else cpu; a cuda request without a usable GPU is a DeviceError."""
    if spec == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() \
            else torch.device("cpu")
    device = torch.device(spec)  # FitConfig accepts only auto, cpu, cuda and cuda:N
    if device.type == "cpu":
        return device
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
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """Let cuDNN pick the fastest kernels during this fit only; restore the global flag afterwards."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = previous or enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def oom_error(err: BaseException, config: FitConfig, what: str) -> DeviceError:
    size = config.batch_size if what == "training" else config.eval_batch_size
    name = "batch_size" if what == "training" else "eval_batch_size"
    return DeviceError(f"CUDA out of memory during {what} with {name}={size}; try a smaller "
                       f"{name} (e.g. {max(1, size // 2)}) or a smaller model. ({str(err).splitlines()[0] if str(err) else 'OOM'})")
