"""Per-session state of an active ``--rethink`` run: options, loaded data, run caches, entries.

Exists only when ``--rethink`` is given (stored in ``config.stash``); without it the
plugin has no state and does nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from .options import PluginOptions

STATE_KEY = pytest.StashKey["RethinkState"]()
#: rethink_data values (torch datasets, arrays) kept for the by-identity memo; the oldest go.
OBJECTS_HELD = 8


@dataclass
class RethinkState:
    """What one pytest process (controller or xdist worker) holds for the rethink checks."""

    options: PluginOptions
    known_checks: list[str]
    is_worker: bool = False
    generated: int = 0  # rethink items collected (controller under xdist: reported by workers)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # node id -> JSON entry
    data_cache: dict[str, Any] = field(default_factory=dict)
    # id(fixture value) -> (the value, kept alive so its id stays unique; its Dataset)
    object_data: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)  # --rethink-model spec -> what it names
    run_caches: dict[str, Any] = field(default_factory=dict)
    finish_lines: list[str] = field(default_factory=list)  # printed in the terminal summary
    compare_failures: list[str] = field(default_factory=list)
    collected: set[str] = field(default_factory=set)  # rethink node ids due to run (controller)
    interruption: dict[str, Any] | None = None  # why the session stopped early, once known
    machine: dict[str, Any] | None = None  # this process's machine_info(), computed once
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> machine_info
    node_errors: dict[str, str] = field(default_factory=dict)  # xdist gateway id -> why it died
    writes_failed: set[str] = field(default_factory=set)  # "JSON"/"HTML" writes that failed (said once)

    @property
    def cli_checks(self) -> tuple[str, ...] | None:
        return self.options.cli.get("checks")

    @property
    def ini_checks(self) -> tuple[str, ...] | None:
        return self.options.ini.get("checks")

    @property
    def data_default(self) -> str:
        return self.options.get("data", "digits")

    def ordered_entries(self) -> list[dict[str, Any]]:
        """Entries grouped by model, checks in the engine's order (xdist delivers them mixed)."""
        rank = {name: i for i, name in enumerate(self.known_checks)}
        return sorted(self.entries.values(),
                      key=lambda e: (e.get("model_key", ""), rank.get(e.get("check"), 99)))

    def load_data(self, spec: Any, progress: Any = None) -> Any:
        """The Dataset for what ``rethink_data`` gave, made once per process.

        A spec string is loaded once; a Dataset is returned as is; any other object (torch
        datasets, array tuples: :func:`rethink_checks.data.as_dataset`'s forms) is
        materialized once per object, and a new map-style dataset with the content
        fingerprint (``materialize.cache_key``) of one already read reuses that read, so a
        function-scoped fixture does not read its dataset once per item.
        """
        if isinstance(spec, str):
            if spec not in self.data_cache:
                from rethink_checks.data import load

                self.data_cache[spec] = load(spec)
            return self.data_cache[spec]
        from rethink_checks.data import Dataset

        if isinstance(spec, Dataset):
            return spec
        held = self.object_data.get(id(spec))
        if held is not None and held[0] is spec:
            return held[1]
        fingerprint = _fingerprint(spec)
        if fingerprint is not None and fingerprint in self.data_cache:
            dataset = self.data_cache[fingerprint]
        else:
            from rethink_checks.materialize import materialize

            dataset = materialize(spec, progress=progress)
            if fingerprint is not None:
                self.data_cache[fingerprint] = dataset
        self.object_data[id(spec)] = (spec, dataset)
        while len(self.object_data) > OBJECTS_HELD:  # a function-scoped fixture's objects
            del self.object_data[next(iter(self.object_data))]
        return dataset

    def cache_for(self, model_key: str) -> Any:
        """The RunCache of one model (module + fixture parameter) in this process."""
        if model_key not in self.run_caches:
            from rethink_checks.checks import RunCache

            self.run_caches[model_key] = RunCache()
        return self.run_caches[model_key]


def _fingerprint(obj: Any) -> str | None:
    """A content key for a map-style dataset or a (train, test) pair of them, else None.

    Reads a fixed sample of items (``materialize.cache_key``), not the whole dataset; array
    tuples get None (materializing them again costs no item reads).
    """
    from rethink_checks.materialize import cache_key

    def one(ds: Any) -> str | None:
        if isinstance(ds, (str, bytes, tuple, list, dict)) or not hasattr(ds, "__len__") \
                or not hasattr(ds, "__getitem__") or hasattr(ds, "shape"):
            return None
        try:
            return f"{type(ds).__module__}.{type(ds).__qualname__}:{cache_key(ds)}"
        except Exception:  # an unreadable item: materialize says which, with its index
            return None

    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        keys = [one(v) for v in obj]
        return "pair:" + "|".join(keys) if None not in keys else None  # type: ignore[arg-type]
    key = one(obj)
    return "dataset:" + key if key is not None else None


def get_state(config: pytest.Config) -> RethinkState | None:
    """The session's state, or None when ``--rethink`` is off."""
    return config.stash.get(STATE_KEY, None)
