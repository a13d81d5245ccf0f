"""pytest-xdist: one GPU per worker, and ``-n auto`` meaning one worker per GPU.

The controller decides each worker's GPU when it sets the worker's gateway up
(:func:`rethink_checks_pytest.hosts.configure_gateway`: the worker's local rank on its
own host, modulo the GPUs its gateway may use) and already sets ``CUDA_VISIBLE_DEVICES``
in the gateway process; it also hands the choice over in ``workerinput``, and the worker
applies it again in its ``pytest_configure`` (:func:`pin_worker_gpu`), before anything in
it initialises CUDA.
"""
from __future__ import annotations

import os
from typing import Any

PIN_KEY = "rethink_gpu"  # workerinput: the CUDA_VISIBLE_DEVICES entry chosen for the worker


def visible_gpus() -> list[str]:
    """The GPU ids visible to this process, as ``CUDA_VISIBLE_DEVICES`` entries."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and not d.strip().startswith("-")]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def pins_gpu(device: str) -> bool:
    """Whether the device setting leaves the choice of GPU to the plugin."""
    return device in ("auto", "cuda")


def pin_worker_gpu(workerinput: dict[str, Any], environ: Any = os.environ) -> str | None:
    """Narrow this worker to the GPU the controller chose for it; returns the GPU id."""
    chosen = workerinput.get(PIN_KEY)
    if chosen is None:
        return None
    environ["CUDA_VISIBLE_DEVICES"] = str(chosen)
    return str(chosen)


def cpu_threads(requested: int | None, workerinput: dict[str, Any] | None) -> int | None:
    """Threads torch should use here: as requested, else cores / workers under xdist."""
    if requested is not None:
        return requested
    if workerinput is None:
        return None
    workers = int(workerinput.get("workercount") or 1)
    return max(1, (os.cpu_count() or 1) // workers)
