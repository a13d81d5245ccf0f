"""Live progress: the line of a running item, its throttle and bar, and xdist forwarding.

Unit tests drive :class:`rethink_checks_pytest.progress.Board` with a fake clock and screen;
plugin tests run pytest (in process, and ``-n 2`` in a subprocess) on an MLP of width 8 on
40 digits for a few epochs.
"""
from __future__ import annotations

import pytest
import sklearn.datasets  # noqa: F401 - loaded once: pytester's in-process runs unload the
import torch  # noqa: F401 - modules they import, and extension modules must not load twice
from hypothesis import given, settings
from hypothesis import strategies as st

import rethink_checks.training  # noqa: F401
from rethink_checks_pytest import live, progress

ROW = {"epoch": 4, "step": 28, "train_loss": 1.25, "running_accuracy": 0.5, "train_accuracy": None,
       "test_accuracy": None, "lr": 0.01, "elapsed": 2.0, "max_epochs": 20, "max_steps": None,
       "max_seconds": None, "target": 0.99, "run": "random_labels", "p": 1.0}


class Screen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.bars: list[str] = []
        self.cleared = 0

    def line(self, text: str) -> None:
        self.lines.append(text)

    def redraw(self, text: str) -> None:
        self.bars.append(text)

    def clear(self) -> None:
        self.cleared += 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_says_fit_epoch_budget_steps_loss_accuracy_and_time_left() -> None:
    item = progress.Running("cnn random_labels", "random_labels", started=0.0)
    item.update(ROW)
    text = progress.describe(item, now=2.0)
    assert text == ("cnn random_labels: epoch 4/20, step 28, loss 1.2500, acc 0.500, "
                    "train acc n/m, 2.0s, <= 8.0s left in this fit")
    item.update({**ROW, "epoch": 5, "train_accuracy": 0.61, "elapsed": 2.5})
    item.update({**ROW, "epoch": 6, "train_accuracy": None, "elapsed": 3.0})
    text = progress.describe(item, now=3.0)
    assert "train acc 0.610 (epoch 5)" in text and "None" not in text  # the last measured value


def test_a_new_fit_forgets_the_last_fits_measurement_and_names_p() -> None:
    item = progress.Running("m partial_labels", "partial_labels", started=0.0)
    item.update({**ROW, "run": "partial_labels", "p": 0.2, "train_accuracy": 0.9})
    item.update({**ROW, "run": "partial_labels", "p": 0.4, "epoch": 1})
    text = progress.describe(item, now=1.0)
    assert "[partial_labels p=0.4]" in text and "train acc n/m" in text


def test_time_left_uses_the_tightest_budget() -> None:
    assert progress.time_left({"epoch": 5, "max_epochs": 10, "elapsed": 10.0}) == pytest.approx(10.0)
    by_steps = {"epoch": 5, "max_epochs": 100, "step": 50, "max_steps": 100, "elapsed": 10.0}
    assert progress.time_left(by_steps) == pytest.approx(10.0)
    by_seconds = {"epoch": 1, "max_epochs": 100, "elapsed": 10.0, "max_seconds": 12.0}
    assert progress.time_left(by_seconds) == pytest.approx(2.0)
    assert progress.time_left({"epoch": 3, "elapsed": 1.0}) is None  # no budget: no estimate


@settings(max_examples=200, deadline=None)
@given(epoch=st.integers(0, 10_000), max_epochs=st.one_of(st.none(), st.integers(1, 10_000)),
       step=st.one_of(st.none(), st.integers(0, 10**7)),
       max_steps=st.one_of(st.none(), st.integers(1, 10**7)),
       elapsed=st.one_of(st.none(), st.floats(0, 1e6)),
       max_seconds=st.one_of(st.none(), st.floats(1e-3, 1e6)),
       acc=st.one_of(st.none(), st.floats(0, 1)), loss=st.one_of(st.none(), st.floats()))
def test_any_row_gives_a_line_without_none_and_a_fraction_in_0_1(epoch, max_epochs, step, max_steps,
                                                                  elapsed, max_seconds, acc, loss):
    row = {"epoch": epoch, "max_epochs": max_epochs, "step": step, "max_steps": max_steps,
           "elapsed": elapsed, "max_seconds": max_seconds, "train_accuracy": acc,
           "train_loss": loss, "running_accuracy": acc}
    item = progress.Running("m c", "c", started=0.0)
    item.update(row)
    assert "None" not in progress.describe(item, now=1.0)
    assert "None" not in progress.compact(item, now=1.0)
    done = progress.fraction_done(row)
    assert done is None or 0.0 <= done <= 1.0
    left = progress.time_left(row)
    assert left is None or left >= 0.0
    assert len(progress.bar(done)) >= progress.BAR_WIDTH + 2


def test_lines_are_throttled_per_item_and_an_ended_item_leaves_the_board() -> None:
    screen, clock = Screen(), Clock()
    board = progress.Board(screen, "lines", interval=5.0, clock=clock)
    board.update("a", "m true_labels", "true_labels", ROW)
    board.update("b", "[gw1] m gaussian", "gaussian", ROW)
    clock.now += 1.0
    board.update("a", "m true_labels", "true_labels", {**ROW, "epoch": 5})  # throttled
    clock.now += 5.0
    board.update("a", "m true_labels", "true_labels", {**ROW, "epoch": 6})
    assert [line.split(":")[0].strip() for line in screen.lines] == [
        "m true_labels [random_labels]", "[gw1] m gaussian [random_labels]",
        "m true_labels [random_labels]"]
    assert "epoch 6/20" in screen.lines[-1]
    board.done("a")
    assert set(board.items) == {"b"}


def test_the_bar_holds_every_running_item_on_one_line() -> None:
    screen, clock = Screen(), Clock()
    board = progress.Board(screen, "bar", interval=5.0, clock=clock)
    board.update("a", "[gw0] m true_labels", "true_labels", {**ROW, "run": "true_labels"})
    clock.now += 1.0
    board.update("b", "[gw1] m gaussian", "gaussian", {**ROW, "run": "gaussian", "epoch": 10})
    assert screen.bars[-1].startswith("[#" ) and " | " in screen.bars[-1]
    assert "[gw0] m true_labels ep 4/20" in screen.bars[-1]
    assert "[gw1] m gaussian ep 10/20" in screen.bars[-1] and "50%" in screen.bars[-1]
    board.done("a")
    assert screen.cleared == 1


@pytest.mark.parametrize(("option", "verbose", "tty", "mode"), [
    (None, 0, True, "bar"), (None, 0, False, "lines"), (None, -1, True, "none"),
    ("auto", 1, False, "lines"), ("lines", -1, True, "lines"), ("none", 2, True, "none")])
def test_mode_follows_the_option_then_quiet_then_the_terminal(option, verbose, tty, mode) -> None:
    assert live.resolve_mode(option, verbose, tty) == mode


# ---------------------------------------------------------------- in pytest

MODULE = '''
import pytest
from rethink_checks.models import mlp
pytestmark = pytest.mark.rethink(checks=["true_labels", "random_labels"], train_size=40,
                                 batch_size=20, lr=0.1, max_epochs=4, device="cpu",
                                 fit_threshold=0.1, memorize_threshold=1.0)

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=8)
'''


def test_plain_lines_without_escape_codes_and_quiet_modes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=MODULE)
    args = ("--rethink", "--rethink-progress-interval=0", "-p", "no:randomly")
    result = pytester.runpytest(*args)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["    test_model random_labels: epoch 1/4, step 2, loss *, acc *, "
                                 "train acc *, *s, <= *s left in this fit",
                                 "    test_model random_labels: epoch 4/4, *"])
    assert "\x1b" not in out and "train acc None" not in out
    for quiet in (("-q",), ("--rethink-progress=none",)):
        assert "epoch 1/4" not in pytester.runpytest(*args, *quiet).stdout.str()
    forced = pytester.runpytest(*args, "-q", "--rethink-progress=lines").stdout.str()
    assert "random_labels: epoch 1/4" in forced  # an explicit mode wins over -q
    bar = pytester.runpytest(*args, "--rethink-progress=bar").stdout.str()
    assert "\x1b[K" in bar and "ep 4/4" in bar  # (pytester splits lines at the \r)
    bad = pytester.runpytest("--rethink", "--rethink-progress=fancy")
    bad.stderr.fnmatch_lines(["*--rethink-progress: invalid value 'fancy'; allowed: auto | none "
                              "| lines | bar*"])


def test_xdist_controller_shows_each_workers_running_item(pytester: pytest.Pytester) -> None:
    """Under ``-n 2`` the rows come from the workers while their items run: the controller's
    output holds a line per worker, tagged with its gateway id, with epoch and time left."""
    pytest.importorskip("xdist")
    pytester.makepyfile(test_model=MODULE)
    result = pytester.runpytest_subprocess("-n", "2", "--rethink", "-p", "no:randomly",
                                           "--rethink-progress-interval=0")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "[gw0] test_model " in out and "[gw1] test_model " in out
    result.stdout.fnmatch_lines(["    ?gw?? test_model true_labels: epoch 1/4, step 2, *, "
                                 "<= *s left in this fit"])  # ? for the brackets (fnmatch)
    result.stdout.fnmatch_lines(["    ?gw?? test_model random_labels: epoch 4/4, *"])
