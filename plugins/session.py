"""Session-level hooks of an active ``--rethink`` run (registered only with ``--rethink``).

Gathers the entries of every report (local, from xdist workers, and the failed reports
xdist makes up for items whose worker crashed), keeps the JSON current after every item,
turns SIGTERM into pytest's Ctrl-C path while the session runs, writes the outputs at the
end with a record of why the session stopped early, prints the summary and fails the
session on a compare-fail regression. Under xdist it also probes and pins each gateway
(:mod:`.hosts`).
"""
from __future__ import annotations

from typing import Any

import pytest

from . import hosts, recorder, survival, terminal, workers
from .state import RethinkState

#: Stops after which ``--rethink-save`` refuses to store the (partial) session.
CUT_SHORT = ("SIGTERM", "SIGINT", "KeyboardInterrupt", "internal error", "unfinished")


class RethinkSession:
    """The controller's (or single process's) view of the rethink items of one session."""

    def __init__(self, state: RethinkState, config: pytest.Config) -> None:
        self.state = state
        self.config = config
        self._threads_before: int | None = None
        self.guard = survival.SignalGuard(("SIGTERM",) if state.is_worker
                                          else ("SIGTERM", "SIGINT"))
        self.pools = hosts.HostPools()
        self._controller_gpus: list[str] | None = None
        self._worker_stops: list[str] = []

    # ------------------------------------------------------------ start and end

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.guard.install()
        threads = workers.cpu_threads(self.state.options.get("threads"),
                                      getattr(self.config, "workerinput", None))
        if threads is not None:
            import torch

            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(threads)
        if not self.state.is_worker:
            recorder.write_progress(self.state, self.config)  # replaces a stale file at once

    def pytest_unconfigure(self) -> None:
        self.guard.restore()
        if self._threads_before is not None:  # leave the process as we found it (pytester)
            import torch

            torch.set_num_threads(self._threads_before)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if self.state.interruption is None:
            self.state.interruption = survival.from_exception(excinfo.value)

    def pytest_internalerror(self, excrepr: Any, excinfo: Any) -> None:
        if self.state.interruption is None:
            lines = [line for line in str(excinfo.exconly()).splitlines() if line.strip()]
            text = lines[-1].strip() if lines else type(excinfo.value).__name__
            self.state.interruption = {"by": "internal error", "message": text[:500]}

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.guard.quiet = True  # a repeated SIGTERM must not cut the final write short
        try:
            if self.state.is_worker:
                if self.state.interruption is not None:  # tell the controller why (xdist)
                    self.config.workeroutput["rethink_interrupted"] = self.state.interruption  # type: ignore[attr-defined]
                return
            crashed = sum(e.get("outcome") == "crashed" for e in self.state.entries.values())
            not_run = sorted(self.state.collected - set(self.state.entries))
            record = survival.interruption(self.state.interruption, exitstatus, session,
                                           not_run, crashed, self._worker_stops)
            keep = record is None or record.get("by") not in CUT_SHORT
            if record is not None:
                self.state.finish_lines.append(
                    f"rethink: session interrupted ({record['by']}): {len(self.state.entries)} "
                    f"item(s) kept, {len(record['not_run'])} not run")
            recorder.finish(self.state, self.config, interrupted=record, keep_baseline=keep)
            if self.state.compare_failures and session.exitstatus in (
                    pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        finally:
            self.guard.restore()

    # ------------------------------------------------------------ items

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.state.is_worker:
            self.state.collected |= {survival.plain_id(i.nodeid) for i in session.items
                                     if survival.is_rethink_id(i.nodeid)}

    @pytest.hookimpl(tryfirst=True)  # before another plugin's hook can raise and lose it
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, "rethink", None) is not None and not self.state.is_worker:
            recorder.add_entry(self.state, report)
            recorder.write_progress(self.state, self.config)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.state.is_worker:
            return
        if self.state.generated == 0 and not self.state.entries:
            terminalreporter.write_line(
                "rethink: no test module defines a rethink_model fixture, so there is nothing "
                "to check (see docs/plugin.md)")
            return
        terminal.write_summary(terminalreporter, self.state)

    # ------------------------------------------------------------ pytest-xdist (controller)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.state.generated = max(self.state.generated, sum(survival.is_rethink_id(i) for i in ids))
        self.state.collected |= {survival.plain_id(i) for i in ids if survival.is_rethink_id(i)}

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        pins = workers.pins_gpu(self.state.options.get("device", "auto"))
        try:
            facts = hosts.configure_gateway(node, self.pools, pins, self._local_gpus)
        except hosts.GatewayError as exc:
            node.nodemanager.teardown_nodes()  # no half-started gateways left behind
            raise pytest.UsageError(str(exc)) from None
        node.workerinput[workers.PIN_KEY] = facts["gpu"]
        node.workerinput["rethink_local_rank"] = facts["local_rank"]
        node.workerinput["rethink_host"] = facts["host"]

    def _local_gpus(self) -> list[str]:
        if self._controller_gpus is None:
            self._controller_gpus = workers.visible_gpus()
        return self._controller_gpus

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        gateway_id = node.gateway.id
        self.pools.release(gateway_id)
        if error is not None:
            self.state.node_errors[gateway_id] = str(error)
        stop = (getattr(node, "workeroutput", None) or {}).get("rethink_interrupted")
        if stop:
            self._worker_stops.append(f"{gateway_id}: {stop.get('by')}")
            if self.state.interruption is None and stop.get("by") in ("SIGTERM", "SIGINT"):
                self.state.interruption = {"by": stop["by"], "message": f"worker {gateway_id} "
                                           f"received {stop['by']}"}

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        if not survival.is_rethink_id(crashitem):
            return
        from rethink_checks.report import item_entry

        node = getattr(report, "node", None)
        gateway_id = getattr(getattr(node, "gateway", None), "id", "?")
        message = str(report.longrepr)
        if gateway_id in self.state.node_errors:
            message += f" ({self.state.node_errors[gateway_id]})"
        entry = survival.crash_entry(survival.plain_id(crashitem), self.state.known_checks,
                                     message, item_entry)
        workerinput = getattr(node, "workerinput", None) or {}
        known = next((e.get("machine") for e in self.state.entries.values()
                      if (e.get("machine") or {}).get("host") == workerinput.get("rethink_host")),
                     None) or {}
        entry["machine"] = {"host": workerinput.get("rethink_host"),
                            "machine_id": known.get("machine_id"), "gpu": known.get("gpu"),
                            "cuda_visible_devices": workerinput.get(workers.PIN_KEY),
                            "local_rank": workerinput.get("rethink_local_rank"),
                            "worker": gateway_id}
        report.rethink = entry  # type: ignore[attr-defined] - recorded by pytest_runtest_logreport
