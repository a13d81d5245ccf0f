"""Session-level hooks of an active ``--rethink`` run (registered only with ``--rethink``).

Gathers the entries of every report (local or from xdist workers), writes the outputs
at the end, prints the summary and fails the session on a compare-fail regression.
"""
from __future__ import annotations

from typing import Any

import pytest

from . import recorder, terminal, workers
from .state import RethinkState


class RethinkSession:
    """The controller's (or single process's) view of the rethink items of one session."""

    def __init__(self, state: RethinkState, config: pytest.Config) -> None:
        self.state = state
        self.config = config
        self._threads_before: int | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        threads = workers.cpu_threads(self.state.options.get("threads"),
                                      getattr(self.config, "workerinput", None))
        if threads is not None:
            import torch

            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(threads)

    def pytest_unconfigure(self) -> None:
        if self._threads_before is not None:  # leave the process as we found it (pytester)
            import torch

            torch.set_num_threads(self._threads_before)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, "rethink", None) is not None and not self.state.is_worker:
            recorder.add_entry(self.state, report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.state.is_worker:
            return
        recorder.finish(self.state, self.config,
                        interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)
        if self.state.compare_failures and session.exitstatus in (
                pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.state.is_worker:
            return
        if self.state.generated == 0 and not self.state.entries:
            terminalreporter.write_line(
                "rethink: no test module defines a rethink_model fixture, so there is nothing "
                "to check (see docs/plugin.md)")
            return
        terminal.write_summary(terminalreporter, self.state)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.state.generated = max(self.state.generated, sum("::rethink[" in i for i in ids))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if workers.pins_gpu(self.state.options.get("device", "auto")):
            node.workerinput[workers.WORKERINPUT_KEY] = workers.visible_gpus()
