"""Live progress in a pytest session: the terminal it is drawn on, and pytest-xdist forwarding.

The process that owns the terminal (the single process, or xdist's controller) keeps a
:class:`~.progress.Board`. Without xdist the item's ``FitConfig.progress`` callback updates it
directly. Under xdist the controller opens one execnet channel per worker
(``pytest_configure_node``: ``gateway.newchannel()``, sent to the worker inside its
``workerinput``, which execnet serializes channels in) and each worker's callback sends its
epoch rows over it while the item runs; the controller's channel callback (execnet's receiver
thread) updates the board. An item leaves the board when its report arrives. A display
problem never fails a check: a closed channel or a terminal error is ignored.
"""
from __future__ import annotations

import functools
import threading
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator

import pytest

from .progress import ERASE, Board

PLUGIN_NAME = "rethink-progress"
CHANNEL_KEY = "rethink_progress_channel"  # workerinput key of the controller's channel
LINE_EVERY = 5.0  # seconds between lines of one item unless --rethink-progress-interval says


def resolve_mode(option: str | None, verbose: int, isatty: bool) -> str:
    """``none``, ``lines`` or ``bar``: the option when given, else quiet under ``-q``, else a
    bar on a terminal and plain lines elsewhere (CI logs get no escape codes)."""
    if option not in (None, "auto"):
        return str(option)
    if verbose < 0:
        return "none"
    return "bar" if isatty else "lines"


class TerminalScreen:
    """Draws on pytest's terminal: whole lines, or one bar line redrawn in place that is
    cleared before pytest writes (it is only redrawn while it is still the current line)."""

    def __init__(self, config: pytest.Config) -> None:
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.capture = config.pluginmanager.get_plugin("capturemanager")
        self._drawn: str | None = None

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Around a write: pytest's capture suspended when it runs in the main thread (a fit
        reports from inside an item's setup, where stdout is captured)."""
        main = threading.current_thread() is threading.main_thread()
        hold = self.capture.global_and_fixture_disabled() if self.capture and main else nullcontext()
        with hold:
            yield

    def line(self, text: str) -> None:
        with self._writing():
            self.clear()
            self.reporter.ensure_newline()  # after "test_x.py " without xdist
            if self.reporter._tw.width_of_current_line:  # after xdist's dots
                self.reporter._tw.line()
            self.reporter.write_line(text)

    def redraw(self, text: str) -> None:
        tw = self.reporter._tw
        current = getattr(tw, "_current_line", None)
        with self._writing():
            if current not in ("", self._drawn):
                tw.line()  # pytest's dots stay on their line; the bar goes under them
            width = max(getattr(tw, "fullwidth", 80) - 1, 20)
            tw.write(ERASE + text[:width], flush=True)
            self._drawn = getattr(tw, "_current_line", None)

    def clear(self) -> None:
        tw = self.reporter._tw
        if self._drawn is not None and getattr(tw, "_current_line", None) == self._drawn:
            tw.write(ERASE, flush=True)
            tw._current_line = ""  # the line is empty again: pytest's width counting starts over
        self._drawn = None


class LiveProgress:
    """The session's live progress (registered as ``rethink-progress`` under ``--rethink``)."""

    def __init__(self, config: pytest.Config, mode_option: str | None, interval: float | None,
                 workerinput: dict[str, Any] | None) -> None:
        self.config, self.mode_option, self.is_worker = config, mode_option, workerinput is not None
        self.interval = LINE_EVERY if interval is None else interval
        self.channel = (workerinput or {}).get(CHANNEL_KEY)
        self.board: Board | None = None

    @pytest.hookimpl(tryfirst=True)  # before xdist starts its workers (pytest_configure_node)
    def pytest_sessionstart(self) -> None:
        """The board, once the terminal reporter exists (it is registered after our configure)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if self.is_worker or reporter is None:
            return
        mode = resolve_mode(self.mode_option, self.config.getoption("verbose"),
                            bool(getattr(reporter._tw, "hasmarkup", False)))
        if mode != "none":
            self.board = Board(TerminalScreen(self.config), mode, self.interval)

    def callback(self, nodeid: str, label: str, check: str) -> Callable[[dict], None] | None:
        """The ``FitConfig.progress`` callback of one item, or None where nothing is shown."""
        label = f"{label} {check}"
        if self.channel is not None:
            return functools.partial(self._send, nodeid, label, check)
        if self.board is not None:
            return functools.partial(self.board.update, nodeid, label, check)
        return None

    def _send(self, nodeid: str, label: str, check: str, row: dict[str, Any]) -> None:
        try:
            self.channel.send({"nodeid": nodeid, "label": label, "check": check, "row": row})
        except Exception:  # noqa: BLE001 - the controller went away: train on, quietly
            self.channel = None

    # ------------------------------------------------------------ controller side

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.board is None:
            return
        channel = node.gateway.newchannel()
        channel.setcallback(functools.partial(self._received, node.gateway.id))
        node.workerinput[CHANNEL_KEY] = channel

    def _received(self, worker: str, message: dict[str, Any]) -> None:
        """A worker's row (on execnet's receiver thread: cheap, and never raises)."""
        try:
            if self.board is not None:
                self.board.update(message["nodeid"], f"[{worker}] {message['label']}",
                                  message["check"], message["row"])
        except Exception:  # noqa: BLE001 - a display problem must not take the worker down
            pass

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Iterator[None]:
        if self.board is not None:
            self.board.clear()
        yield
        if self.board is not None and (report.when != "setup" or not report.passed):
            self.board.done(report.nodeid)

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_logstart(self) -> Iterator[None]:
        if self.board is not None:
            self.board.clear()
        yield

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self) -> None:
        if self.board is not None:
            self.board.clear()


def item_progress(config: pytest.Config, nodeid: str, label: str,
                  check: str) -> Callable[[dict], None] | None:
    """The progress callback for one item (None without ``--rethink`` or when quiet)."""
    live = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return live.callback(nodeid, label, check) if live is not None else None

