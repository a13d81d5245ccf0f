"""Results that survive any stop: signals turned into pytest's Ctrl-C path, and why a run stopped.

SIGTERM (what ``timeout``, CI cancels and job schedulers send) would kill pytest on the
spot and lose every finished check that was only in memory. While a session runs,
:class:`SignalGuard` turns SIGTERM (and a default SIGINT) into :class:`SessionTerminated`,
a ``KeyboardInterrupt``, so pytest unwinds exactly as after Ctrl-C and the plugin's
``pytest_sessionfinish`` writes the JSON with an ``interrupted`` record. The JSON is also
rewritten after every finished item (see ``recorder.write_progress``), which covers what no
handler can: SIGKILL, a crash, an exception in another plugin.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Callable

from .item_id import ItemId

#: While the session runs the document says this: a file left like that was killed outright.
RUNNING = {"by": "unfinished",
           "message": "the session had not finished when this file was written; if it stays "
                      "like this, the process was killed before it could say why (SIGKILL, "
                      "out of memory, power loss)"}


class SessionTerminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (or SIGINT): pytest stops as after Ctrl-C."""

    def __init__(self, signame: str) -> None:
        super().__init__(f"received {signame}: stopping; finished rethink items are kept")
        self.signame = signame


class SignalGuard:
    """Installs the SIGTERM/SIGINT handlers for one session and puts the previous ones back.

    SIGINT is taken over only while Python's default handler is in place (someone else's
    handler is left alone); nothing is installed outside the main thread (signal rules).
    """

    def __init__(self, signals: tuple[str, ...] = ("SIGTERM", "SIGINT")) -> None:
        self.signals = signals
        self.received: list[str] = []
        self.quiet = False  # set while the final document is written: a repeat signal waits
        self._previous: dict[int, Any] = {}

    def install(self) -> bool:
        """Take over the signals; False when this is not the main thread."""
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return False
        for name in self.signals:
            number = getattr(signal, name, None)
            if number is None:
                continue
            previous = signal.getsignal(number)
            if number == signal.SIGINT and previous is not signal.default_int_handler:
                continue
            self._previous[number] = previous
            signal.signal(number, self._handle)
        return True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.received.append(name)
        if self.quiet:
            return
        raise SessionTerminated(name)

    def restore(self) -> None:
        """Put back the handlers found by :meth:`install` (idempotent)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for number, previous in self._previous.items():
            signal.signal(number, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    @property
    def installed(self) -> bool:
        return bool(self._previous)


def from_exception(exc: BaseException) -> dict[str, Any]:
    """The ``interrupted`` record for the exception pytest stopped on (``pytest_keyboard_interrupt``)."""
    if isinstance(exc, SessionTerminated):
        return {"by": exc.signame, "message": str(exc)}
    name = type(exc).__name__
    if name == "Interrupted":  # pytest's / xdist's own stop (-x under xdist, a worker's Ctrl-C)
        return {"by": "stopped", "message": str(exc)}
    return {"by": "KeyboardInterrupt", "message": str(exc) or "KeyboardInterrupt"}


def interruption(record: dict[str, Any] | None, exitstatus: int, session: Any,
                 not_run: list[str], crashed: int, worker_reasons: list[str]) -> dict[str, Any] | None:
    """The final ``interrupted`` record: None for a session that ran every item to the end."""
    import pytest

    if record is None and exitstatus == pytest.ExitCode.INTERRUPTED:
        record = {"by": "stopped", "message": "pytest was interrupted"}
    if record is None and exitstatus == pytest.ExitCode.INTERNAL_ERROR:
        record = {"by": "internal error", "message": "pytest stopped on an internal error"}
    if record is None and not_run:
        reason = getattr(session, "shouldfail", None) or getattr(session, "shouldstop", None)
        if reason:
            record = {"by": "stopped", "message": str(reason)}
        elif crashed:
            record = {"by": "worker crash", "message": "pytest-xdist stopped replacing crashed "
                      "workers (see --max-worker-restart); the items with outcome 'crashed' "
                      "say where"}
        else:
            record = {"by": "incomplete", "message": "collected items were never reported"}
    if record is None:
        return None
    if worker_reasons and record.get("by") in ("stopped", "KeyboardInterrupt"):
        record = {**record, "workers": worker_reasons}
    return {**record, "not_run": sorted(not_run)}


def crash_entry(nodeid: str, known_checks: list[str], message: str,
                make_entry: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The JSON entry of an item whose xdist worker died under it (no result, the crash message)."""
    item = ItemId.parse(nodeid, known_checks)
    if item is None:  # not a known check's id: keep what the id says
        path, _, rest = nodeid.partition("::")
        item = ItemId(path, rest.removeprefix("rethink[").removesuffix("]"))
    entry = make_entry(nodeid, item.model, item.check, "crashed", None, message)
    entry["model_key"] = item.model_key
    entry["settings"] = None
    return entry


def is_rethink_id(nodeid: str) -> bool:
    """Whether a node id is a generated rethink item (``path::rethink[...]``)."""
    return ItemId.is_item(nodeid)


def plain_id(nodeid: str) -> str:
    """The node id without xdist's ``@group`` suffix (``--dist loadgroup``)."""
    return ItemId.plain(nodeid)
