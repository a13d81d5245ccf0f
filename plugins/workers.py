"""pytest-xdist: one GPU per worker, and ``-n auto`` meaning one worker per GPU.

The controller lists the GPUs the caller made visible (``CUDA_VISIBLE_DEVICES``, else
every device torch sees) and hands the list to each worker; the worker narrows its own
``CUDA_VISIBLE_DEVICES`` to entry ``index % len(gpus)`` in ``pytest_configure``, before
anything in it initialises CUDA.
"""
from __future__ import annotations

import os
from typing import Any

WORKERINPUT_KEY = "rethink_gpus"


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
    """Narrow this worker to one GPU (round-robin by worker index); returns the GPU id."""
    gpus = workerinput.get(WORKERINPUT_KEY) or []
    if not gpus:
        return None
    worker = str(workerinput.get("workerid", "gw0"))
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    chosen = gpus[index % len(gpus)]
    environ["CUDA_VISIBLE_DEVICES"] = chosen
    return chosen


def cpu_threads(requested: int | None, workerinput: dict[str, Any] | None) -> int | None:
    """Threads torch should use here: as requested, else cores / workers under xdist."""
    if requested is not None:
        return requested
    if workerinput is None:
        return None
    workers = int(workerinput.get("workercount") or 1)
    return max(1, (os.cpu_count() or 1) // workers)
