"""pytest plugin that ``bench_cpu_budget.py`` loads into each timed run (``-p rethink_bench_probe``).

It proves which code ran and times each fit from outside, the same way for the before and the
after tree: it wraps ``rethink_checks.training.fit`` (the checks look it up at call time) and,
where it exists, ``training._accuracy`` (the evaluation of one split), and appends one JSON line
per fit to the file named by ``$RETHINK_BENCH_PROBE``: its wall seconds, the seconds spent
evaluating, and the FitResult's own ``train_seconds`` / ``total_seconds`` / ``eval_seconds``
(the last only where the tree reports it). Without that variable it does nothing.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

_OUT = os.environ.get("RETHINK_BENCH_PROBE")


def _write(record: dict[str, Any]) -> None:
    with open(_OUT, "a", encoding="utf-8") as fh:  # type: ignore[arg-type]
        fh.write(json.dumps(record, default=str) + "\n")


def _corruption(settings: dict[str, Any]) -> str:
    spec = settings.get("corruption")
    if isinstance(spec, dict):
        return spec.get("name")
    return "none (true labels)" if spec is None else str(spec)


def pytest_configure(config: Any) -> None:
    if not _OUT:
        return
    import torch

    import rethink_checks
    from rethink_checks import training

    plugin = sys.modules.get("rethink_checks_pytest.plugin")
    _write({"kind": "code", "rethink_checks": rethink_checks.__file__, "training": training.__file__,
            "plugin": getattr(plugin, "__file__", None), "torch": torch.__version__, "pid": os.getpid()})
    state = {"eval": 0.0}
    hooked = hasattr(training, "_accuracy")
    if hooked:
        accuracy = training._accuracy

        def timed_accuracy(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return accuracy(*args, **kwargs)
            finally:
                state["eval"] += time.perf_counter() - t0

        training._accuracy = timed_accuracy
    fit = training.fit

    def timed_fit(*args: Any, **kwargs: Any) -> Any:
        state["eval"] = 0.0
        t0 = time.perf_counter()
        result = fit(*args, **kwargs)
        settings = dict(getattr(result, "settings", {}) or {})
        _write({"kind": "fit", "wall_s": time.perf_counter() - t0,
                "probe_eval_s": state["eval"] if hooked else None,
                "train_seconds": getattr(result, "train_seconds", None),
                "eval_seconds": getattr(result, "eval_seconds", None),
                "total_seconds": getattr(result, "total_seconds", None),
                "epochs": result.epochs, "steps": result.steps, "fitted": result.fitted,
                "stop_reason": result.stop_reason, "train_accuracy": result.train_accuracy,
                "test_accuracy": result.test_accuracy, "corruption": _corruption(settings),
                "train_size": settings.get("train_size"), "threads": torch.get_num_threads()})
        return result

    training.fit = timed_fit
