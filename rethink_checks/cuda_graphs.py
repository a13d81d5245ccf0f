"""The CUDA-graph fast path of ``fit``: warm up, capture the training step, undo the warm-up.

Imports run one way: this module uses the step (:mod:`rethink_checks.step`, whose
``_Loop.step`` is the same on both paths) and is used by :mod:`rethink_checks.training`. It only
decides whether the step runs as replays of captured CUDA graphs (one for full batches, one for
the final partial batch) or stays eager, and says why.
"""
from __future__ import annotations

import torch

from .step import _Loop

__all__ = ["WARMUP_STEPS"]

WARMUP_STEPS = 3  # eager steps on a side stream before capture, as the CUDA-graph docs require


class _CaptureFailed(Exception):
    """Capturing the (already warmed-up, working) step in a CUDA graph was impossible."""


class _Graphs:
    """The training step captured as CUDA graphs: one for full batches, one for the final partial batch."""

    def __init__(self, loop: _Loop):
        self.loop = loop
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up: real updates, undone by the caller
            for _ in range(WARMUP_STEPS):
                loop.base.zero_()
                if loop.full_steps:
                    loop.step(True)
                if loop.tail:
                    loop.step(False)
        torch.cuda.current_stream().wait_stream(stream)
        try:
            self.full = self._capture(True) if loop.full_steps else None
            self.tail = self._capture(False) if loop.tail else None
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as err:
            raise _CaptureFailed(_root_cause(err)) from err

    def _capture(self, full: bool) -> torch.cuda.CUDAGraph:
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.current_stream()
        try:
            with torch.cuda.graph(graph):
                self.loop.step(full)
        finally:  # a failed capture_end skips torch.cuda.graph's own stream restore
            torch.cuda.set_stream(stream)
        return graph

    def run_epoch(self, first: int, steps: int) -> None:
        """Replay the epoch's first ``steps`` steps; the loop's recipe refills the (tensor)
        learning rate between replays."""
        tail = self.tail.replay if self.tail is not None else None
        full = self.full.replay if self.full is not None else None
        self.loop.run_epoch(first, steps, full=full, tail=tail)


def _root_cause(err: BaseException) -> BaseException:
    """The first exception of a chain (capture_end's error hides the one that broke the capture)."""
    seen = {id(err)}
    while (inner := err.__cause__ or err.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        err = inner
    return err


def _fast_path(loop: _Loop, device: torch.device, fast: bool, use_compile: bool) -> tuple[_Graphs | None, str]:
    """Capture the step in CUDA graphs where allowed; otherwise say why the loop stays eager.

    ``fast`` and ``use_compile`` are ``FitConfig.fast`` and ``FitConfig.compile``.
    """
    note = _compile_forward(loop, device, use_compile)
    if device.type != "cuda":
        return None, "eager loop: CUDA graphs need a GPU (device is cpu)" + note
    if not fast:
        return None, "eager loop: FitConfig.fast=False" + note
    if loop.recipe.eager_reason is not None:
        return None, f"eager loop: {loop.recipe.eager_reason}" + note
    state = loop.snapshot()
    try:
        graphs = _Graphs(loop)
    except _CaptureFailed as err:  # this model cannot be captured: train it eagerly instead
        _restore(loop, state, drop_grads=True)
        return None, f"eager fallback: CUDA graph capture failed ({_describe(err.args[0])})" + note
    _restore(loop, state, drop_grads=False)
    return graphs, "CUDA graph of the whole training step" + note


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"


def _compile_forward(loop: _Loop, device: torch.device, use_compile: bool) -> str:
    """With compile=True on a GPU, compile the full-batch forward and run one step to build it."""
    if not use_compile:
        return ""
    if device.type != "cuda":
        return "; compile=True ignored on cpu"
    state = loop.snapshot()
    loop.compiled = torch.compile(loop.model, dynamic=False)
    try:
        loop.base.zero_()
        loop.step(True)  # compiles forward and backward (the slow part, once per process and shape)
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as err:  # compilation failed: train the plain model
        loop.compiled = None
        return f"; torch.compile failed ({_describe(_root_cause(err))}), trained uncompiled"
    finally:
        _restore(loop, state, drop_grads=True)
    return "; forward compiled with torch.compile"


def _restore(loop: _Loop, state: dict[str, torch.Tensor], drop_grads: bool) -> None:
    """Undo the warm-up steps once the GPU has finished them (:meth:`_Loop.restore`)."""
    try:
        torch.cuda.synchronize()
    except RuntimeError:
        pass
    loop.restore(state, drop_grads)
