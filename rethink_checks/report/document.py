"""The session JSON document: item entries, the machine description, strict JSON writing.

An item entry is built where the check ran (``item_entry``) and travels to the controller
as plain data (on the pytest report under xdist); ``session_document`` gathers the entries
with the machine and settings. The schema is versioned by ``SCHEMA_VERSION``.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..results import CheckResult

__all__ = ["SCHEMA_VERSION", "item_entry", "session_document", "write_json", "machine_info",
           "machine_id"]

SCHEMA_VERSION = 1


def item_entry(nodeid: str, model: str, check: str, outcome: str,
               result: CheckResult | Mapping[str, Any] | None = None,
               message: str = "", seconds: float | None = None) -> dict[str, Any]:
    """One JSON entry for a check item: verdict, metrics, tables, per-run curves and the
    check's summary-table row (``CheckResult.summary``)."""
    res = result.to_dict() if isinstance(result, CheckResult) else dict(result or {})
    runs = res.get("runs") or {}
    return {
        "nodeid": nodeid, "model": model, "check": check, "outcome": outcome,
        "criterion": res.get("criterion", ""),
        "message": message or res.get("message", ""),
        "seconds": seconds if seconds is not None else res.get("seconds"),
        "metrics": dict(res.get("metrics") or {}),
        "tables": dict(res.get("tables") or {}),
        "curves": {name: run.get("curves", {}) for name, run in runs.items()},
        "summary": dict(res.get("summary") or {}),
    }


def _normalize_item(item: Mapping[str, Any] | CheckResult) -> dict[str, Any]:
    if isinstance(item, CheckResult):
        return item_entry(item.check, "", item.check, "passed" if item.passed else "failed", item)
    item = dict(item)
    if "result" in item:
        result = item.pop("result")
        entry = item_entry(item.get("nodeid", ""), item.get("model", ""),
                           item.get("check", ""), item.get("outcome", ""), result,
                           item.get("message", ""), item.get("seconds"))
        return {**item, **entry}
    for key, default in (("nodeid", ""), ("model", ""), ("check", ""), ("outcome", ""),
                         ("metrics", {}), ("curves", {})):
        item.setdefault(key, default)
    return item


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Platform, CPU, GPU and library versions: what a measured number depends on."""
    info: dict[str, Any] = {
        "platform": platform.platform(), "system": platform.system(),
        "machine": platform.machine(), "python": platform.python_version(),
        "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
        "torch": None, "cuda": None, "gpu": None, "gpus": [],
    }
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return info
    info["torch"] = torch.__version__
    info["cuda"] = torch.version.cuda
    try:
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["gpu"] = info["gpus"][0] if info["gpus"] else None
    except Exception:  # noqa: BLE001 - a broken driver must not break the report
        pass
    return info


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_id(info: Mapping[str, Any] | None = None) -> str:
    """Folder name for baselines: system, arch, CPU, GPU and torch version, slugged."""
    info = info if info is not None else machine_info()
    parts = [info.get("system") or "", info.get("machine") or "", info.get("cpu") or "",
             info.get("gpu") or "nogpu", f"torch{info.get('torch') or ''}"]
    return _slug("-".join(str(p) for p in parts))[:150] or "unknown"


def _settings_dict(settings: Any) -> Any:
    if settings is None or isinstance(settings, Mapping):
        return dict(settings or {})
    if hasattr(settings, "to_dict"):
        return settings.to_dict()
    return repr(settings)


def session_document(items: Iterable[Mapping[str, Any] | CheckResult], settings: Any = None, *,
                     seed: int | None = None, data: str | None = None,
                     machine: Mapping[str, Any] | None = None,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The session's JSON: version, machine, settings, seed and one entry per item."""
    from .. import __version__

    settings_d = _settings_dict(settings)
    if seed is None and isinstance(settings_d, Mapping):
        seed = settings_d.get("seed")
    doc = {
        "schema": SCHEMA_VERSION, "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": dict(machine) if machine is not None else machine_info(),
        "settings": settings_d, "seed": seed, "data": data,
        "items": [_normalize_item(i) for i in items],
    }
    doc["machine_id"] = machine_id(doc["machine"])
    if extra:
        doc.update(extra)
    if settings is None and "layered_defaults" in doc:  # per-item settings; the session's defaults
        del doc["settings"]
    return doc


def _strict(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become null, tuples lists, unknown objects strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "to_dict"):
        return _strict(value.to_dict())
    return str(value)


def write_json(doc: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``doc`` as strict JSON (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_strict(doc), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
