"""Several machines through pytest-xdist gateways: probe each worker's host, pin its GPU, name it.

pytest-xdist's gateways (``--tx 8*ssh=host//python=...``, ``--tx N*popen``) are the
distributed engine; this module only adds what the rethink items need from them:

- **The probe.** Before xdist starts pytest in a new gateway, the controller runs a few
  lines there (``pytest_configure_node``): host name, the gateway's own
  ``CUDA_VISIBLE_DEVICES``, whether pytest, pytest-xdist and this plugin import. A host
  that lacks them is a usage error naming the gateway and what to install.
- **The pinning rule.** A worker's GPU pool is its gateway's ``CUDA_VISIBLE_DEVICES`` if
  set, else every GPU of its host; its *local rank* is its place among the workers that
  share its host and pool (in gateway order, a crashed worker's replacement taking the
  freed rank); it gets ``pool[rank % len(pool)]``. The probe sets that
  ``CUDA_VISIBLE_DEVICES`` in the gateway process itself, before pytest, conftests or CUDA
  start there.
- **The machine of each item**, for the JSON and baselines (:func:`item_machine`).
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

PROBE = r'''
import importlib.util, os, shutil, socket, subprocess, sys
missing = []
for name in ("pytest", "xdist", "rethink_checks_pytest", "rethink_checks", "torch"):
    try:
        found = importlib.util.find_spec(name) is not None
    except Exception:
        found = False
    if not found:
        missing.append(name)
channel.send({"host": socket.gethostname(), "python": sys.executable,
              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
              "missing": missing})
while True:
    kind, value = channel.receive()
    if kind == "count":
        count = None
        if shutil.which("nvidia-smi"):
            try:
                out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                     timeout=30).stdout
                count = sum(line.startswith("GPU ") for line in out.splitlines())
            except Exception:
                count = None
        if count is None and os.path.isdir("/proc/driver/nvidia/gpus"):
            count = len(os.listdir("/proc/driver/nvidia/gpus"))
        channel.send(count or 0)
    else:
        if value is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = value
        channel.send("ok")
        break
'''

PACKAGES = {"pytest": "pytest", "xdist": "pytest-xdist", "rethink_checks_pytest": "rethink-checks",
            "rethink_checks": "rethink-checks", "torch": "torch"}
PROBE_TIMEOUT = 120.0


class GatewayError(Exception):
    """A gateway's host cannot run the rethink items (turned into a pytest usage error)."""


def parse_devices(value: str | None) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` as a list of entries (empty or ``-1``: no GPU)."""
    if value is None:
        return []
    return [d.strip() for d in value.split(",") if d.strip() and not d.strip().startswith("-")]


@dataclass
class HostPools:
    """Local ranks of the live workers, per (host, GPU pool); the controller's bookkeeping."""

    taken: dict[tuple[str, tuple[str, ...]], dict[int, str]] = field(default_factory=dict)
    nodes: dict[str, tuple[tuple[str, tuple[str, ...]], int]] = field(default_factory=dict)
    gpu_counts: dict[str, int] = field(default_factory=dict)  # host -> GPUs, probed once

    def assign(self, gateway_id: str, host: str, pool: list[str]) -> tuple[int, str | None]:
        """The worker's local rank (lowest free one in its pool) and the GPU it gets, if any."""
        key = (host, tuple(pool))
        ranks = self.taken.setdefault(key, {})
        rank = next(r for r in range(len(ranks) + 1) if r not in ranks)
        ranks[rank] = gateway_id
        self.nodes[gateway_id] = (key, rank)
        return rank, (pool[rank % len(pool)] if pool else None)

    def release(self, gateway_id: str) -> None:
        """Free the rank of a worker that finished or died (its replacement takes it)."""
        key, rank = self.nodes.pop(gateway_id, ((None, ()), -1))
        self.taken.get(key, {}).pop(rank, None)  # type: ignore[arg-type]


def missing_message(spec: str, info: dict[str, Any]) -> str:
    """What to tell the user about a gateway whose Python lacks packages."""
    missing = info.get("missing") or []
    install = sorted({PACKAGES.get(m, m) for m in missing})
    return (f"rethink: the pytest-xdist gateway {spec} (host {info.get('host')}, python "
            f"{info.get('python')}) cannot import {', '.join(missing)}; install them in that "
            f"interpreter ({info.get('python')} -m pip install {' '.join(install)}, the same "
            "versions as here) or point the gateway at one that has them with "
            "//python=/path/to/python")


def configure_gateway(node: Any, pools: HostPools, pins: bool,
                      local_gpus: Any) -> dict[str, Any]:
    """Probe a new xdist gateway, choose its local rank and GPU, pin it there; the facts.

    ``local_gpus`` is called for the controller's own GPU list (only when a worker on the
    controller's host has no ``CUDA_VISIBLE_DEVICES`` of its own). Raises
    :class:`GatewayError` when the gateway's Python lacks a needed package.
    """
    gateway = node.gateway
    channel = gateway.remote_exec(PROBE)
    try:
        try:
            info = channel.receive(timeout=PROBE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - execnet's errors: say which gateway
            raise GatewayError(f"rethink: could not probe the pytest-xdist gateway {gateway.spec}: "
                               f"{type(exc).__name__}: {exc}") from None
        if info.get("missing"):
            channel.send(("pin", None))
            raise GatewayError(missing_message(str(gateway.spec), info))
        host = info["host"]
        own = info.get("cuda_visible_devices")
        pool: list[str] = []
        if pins:
            if own is not None:
                pool = parse_devices(own)
            elif host == socket.gethostname():
                pool = list(local_gpus())
            else:
                if host not in pools.gpu_counts:
                    channel.send(("count", None))
                    pools.gpu_counts[host] = int(channel.receive(timeout=PROBE_TIMEOUT))
                pool = [str(i) for i in range(pools.gpu_counts[host])]
        rank, gpu = pools.assign(gateway.id, host, pool)
        channel.send(("pin", gpu))
        channel.receive(timeout=PROBE_TIMEOUT)
    finally:
        channel.waitclose(timeout=PROBE_TIMEOUT)
    return {"host": host, "local_rank": rank, "gpu": gpu, "pool": pool}


def plain(info: dict[str, Any]) -> dict[str, Any]:
    """A machine_info() made of JSON types only (torch's version is a str subclass)."""
    return json.loads(json.dumps(info, default=str))


def item_machine(state: Any, workerinput: dict[str, Any] | None) -> tuple[dict[str, Any], dict]:
    """Where an item ran (host, machine id, GPU, local rank) and this process's machine_info."""
    from rethink_checks.report import machine_id, machine_info

    if state.machine is None:
        state.machine = plain(machine_info())
    info = state.machine
    workerinput = workerinput or {}
    place = {"host": socket.gethostname(), "machine_id": machine_id(info), "gpu": info.get("gpu"),
             "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
             "local_rank": workerinput.get("rethink_local_rank"),
             "worker": workerinput.get("workerid")}
    return place, info
