"""Live progress of running checks: what each running item is doing and how long is left.

A check is minutes of training; this module turns the epoch rows of ``FitConfig.progress``
(``training._Run._record``: epoch, step, running loss and accuracy, the training-set accuracy
where it was measured, elapsed seconds, and the fit's budgets) into one line per running
item. Two displays (``--rethink-progress``): ``lines``, plain throttled lines with no escape
codes (CI logs; the default when stdout is not a terminal), and ``bar``, one line redrawn in
place with a bar per running item (the default on a terminal). ``none`` (or ``-q``) is quiet.

Under pytest-xdist the rows are forwarded from the workers to the controller while the item
runs (:mod:`.live`), so the controller's board holds every worker's running item. This
module is pure formatting and bookkeeping; it imports neither torch nor pytest.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

MODES = ("auto", "none", "lines", "bar")
BAR_REFRESH = 0.5  # seconds between redraws of the bar (lines use --rethink-progress-interval)
BAR_WIDTH = 12
ERASE = "\r\x1b[K"  # carriage return, then clear to the end of the line


def duration(seconds: float) -> str:
    """``8.2s``, ``1m05s``, ``2h03m``: short and unambiguous in a log line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def fit_name(row: dict[str, Any], check: str) -> str:
    """The fit a row belongs to: its randomization, with ``p`` where it is partial."""
    run = str(row.get("run") or check)
    p = row.get("p")
    if run.startswith("p=") or p is None or run not in ("partial_labels", "partial"):
        return run
    return f"{run} p={float(p):g}"


def fraction_done(row: dict[str, Any]) -> float | None:
    """How far the fit is through its tightest budget (epochs, steps or seconds), in [0, 1]."""
    shares = []
    epoch, max_epochs = row.get("epoch"), row.get("max_epochs")
    if epoch and max_epochs:
        shares.append(epoch / max_epochs)
    step, max_steps = row.get("step"), row.get("max_steps")
    if step and max_steps:
        shares.append(step / max_steps)
    elapsed, max_seconds = row.get("elapsed"), row.get("max_seconds")
    if elapsed is not None and max_seconds:
        shares.append(elapsed / max_seconds)
    return min(max(shares), 1.0) if shares else None


def time_left(row: dict[str, Any]) -> float | None:
    """Seconds left in the fit's budget at its pace so far: an upper bound (the fit stops
    earlier once the training set reaches its target accuracy), None without a pace yet."""
    done, elapsed = fraction_done(row), row.get("elapsed")
    if done is None or not done or elapsed is None:
        return None
    return max(elapsed / done - elapsed, 0.0)


@dataclass
class Running:
    """One running item: its label, when its first row arrived, its last row."""

    label: str
    check: str
    started: float
    row: dict[str, Any] = field(default_factory=dict)
    measured: tuple[float, int] | None = None  # last measured train accuracy, and its epoch

    def update(self, row: dict[str, Any]) -> None:
        if row.get("run") != self.row.get("run") or row.get("p") != self.row.get("p"):
            self.measured = None  # a new fit: the last fit's measurement says nothing of it
        self.row = row
        acc = row.get("train_accuracy")
        if isinstance(acc, (int, float)):
            self.measured = (float(acc), int(row.get("epoch") or 0))


def _num(value: Any, spec: str = "") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def _of(row: dict[str, Any], key: str, budget: str) -> str:
    """``14/100``: a count and its budget, ``14`` without one, ``-`` without the count."""
    return _num(row.get(key)) + (f"/{row[budget]}" if row.get(budget) else "")


def describe(item: Running, now: float) -> str:
    """``cnn random_labels [random_labels]: epoch 14/100, step 98, loss 1.234, acc 0.570,
    train acc 0.612 (epoch 10), 21.0s, <= 1m30s left``: one running item in words."""
    row = item.row
    fit = fit_name(row, item.check)
    head = item.label + (f" [{fit}]" if fit != item.check else "")
    epoch, steps = f"epoch {_of(row, 'epoch', 'max_epochs')}", f"step {_of(row, 'step', 'max_steps')}"
    measured = (f"train acc {item.measured[0]:.3f} (epoch {item.measured[1]})"
                if item.measured is not None else "train acc n/m")
    left = time_left(row)
    timing = f"{duration(now - item.started)}" + (f", <= {duration(left)} left in this fit"
                                                   if left is not None else "")
    return (f"{head}: {epoch}, {steps}, loss {_num(row.get('train_loss'), '.4f')}, "
            f"acc {_num(row.get('running_accuracy'), '.3f')}, {measured}, {timing}")


def compact(item: Running, now: float) -> str:
    """The bar's short form: ``cnn random_labels ep 14/100 acc 0.570 1m02s <=1m30s``."""
    row = item.row
    fit = fit_name(row, item.check)
    head = item.label + (f" [{fit}]" if fit != item.check else "")
    left = time_left(row)
    return (f"{head} ep {_of(row, 'epoch', 'max_epochs')} acc {_num(row.get('running_accuracy'), '.3f')} "
            f"{duration(now - item.started)}" + (f" <={duration(left)}" if left is not None else ""))


def bar(fraction: float | None, width: int = BAR_WIDTH) -> str:
    """``[#####-------] 41%`` (``[?]`` without a budget to measure against)."""
    if fraction is None:
        return "[" + "?" * width + "]"
    filled = int(round(fraction * width))
    return "[" + "#" * filled + "-" * (width - filled) + f"] {100 * fraction:3.0f}%"


class Board:
    """The running items of a session and their display (thread-safe: xdist's rows arrive on
    execnet's receiver thread, the end of an item on pytest's main thread).

    ``screen`` is what draws: ``line(text)`` writes a whole line, ``redraw(text)`` replaces
    the bar line in place and ``clear()`` takes it away before anyone else writes.
    """

    def __init__(self, screen: Any, mode: str, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.screen, self.mode, self.interval, self.clock = screen, mode, interval, clock
        self.items: dict[str, Running] = {}
        self._last_line: dict[str, float] = {}
        self._last_bar = float("-inf")
        self._lock = threading.Lock()

    def update(self, key: str, label: str, check: str, row: dict[str, Any]) -> None:
        """A new epoch row of item ``key`` (its node id); writes when the throttle allows."""
        with self._lock:
            now = self.clock()
            item = self.items.get(key)
            if item is None:
                item = self.items[key] = Running(label, check, now - float(row.get("elapsed") or 0.0))
            item.update(row)
            if self.mode == "lines":
                self._line(key, item, now)
            elif self.mode == "bar" and now - self._last_bar >= min(self.interval, BAR_REFRESH):
                self._last_bar = now
                self.screen.redraw(self.bar_text(now))

    def _line(self, key: str, item: Running, now: float) -> None:
        if now - self._last_line.get(key, float("-inf")) >= self.interval:
            self._last_line[key] = now
            self.screen.line("    " + describe(item, now))

    def bar_text(self, now: float) -> str:
        """Every running item with its bar, joined on one line (the screen cuts it to width)."""
        parts = [f"{bar(fraction_done(item.row))} {compact(item, now)}"
                 for item in self.items.values()]
        return " | ".join(parts)

    def done(self, key: str) -> None:
        """Item ``key`` ended: it leaves the board (and the bar, at once)."""
        with self._lock:
            if self.items.pop(key, None) is not None:
                self._last_line.pop(key, None)
                if self.mode == "bar":
                    self.screen.clear()

    def clear(self) -> None:
        """Take the bar away before pytest writes (it is drawn again with the next row)."""
        if self.mode == "bar":
            with self._lock:
                self.screen.clear()
