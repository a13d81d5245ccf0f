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


@dataclass
class RethinkState:
    """What one pytest process (controller or xdist worker) holds for the rethink checks."""

    options: PluginOptions
    known_checks: list[str]
    is_worker: bool = False
    generated: int = 0  # rethink items collected (controller under xdist: reported by workers)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # node id -> JSON entry
    data_memo: Any = None  # rethink_checks.data_memo.DataMemo, made on first use
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
        """The Dataset for what ``rethink_data`` gave, made once per process
        (:class:`rethink_checks.data_memo.DataMemo`)."""
        if self.data_memo is None:
            from rethink_checks.data_memo import DataMemo

            self.data_memo = DataMemo()
        return self.data_memo.load(spec, progress=progress)

    def cache_for(self, model_key: str) -> Any:
        """The RunCache of one model (module + fixture parameter) in this process."""
        if model_key not in self.run_caches:
            from rethink_checks.checks import RunCache

            self.run_caches[model_key] = RunCache()
        return self.run_caches[model_key]


def get_state(config: pytest.Config) -> RethinkState | None:
    """The session's state, or None when ``--rethink`` is off."""
    return config.stash.get(STATE_KEY, None)
