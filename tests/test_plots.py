"""Figure 1 panels are written as PNGs; without matplotlib the error says how to install it."""
from __future__ import annotations

import sys

import pytest

from rethink_checks import plots
from rethink_checks.errors import RethinkError
from rethink_checks.results import FitResult

PNG = b"\x89PNG\r\n\x1a\n"


def run(losses, steps_per_epoch=10):
    n = len(losses)
    return FitResult(fitted=True, stop_reason="fitted", epochs=n, steps=n * steps_per_epoch,
                     epochs_to_fit=n, steps_to_fit=n * steps_per_epoch, train_seconds=0.1,
                     total_seconds=0.1, train_accuracy=1.0, train_loss=losses[-1],
                     test_accuracy=0.9, best_test_accuracy=0.9, best_test_epoch=n,
                     curves={"epoch": list(range(1, n + 1)),
                             "step": [steps_per_epoch * e for e in range(1, n + 1)],
                             "train_loss": losses})


RUNS = {"random_labels": run([2.3, 2.2, 1.0, 0.01]),
        "true_labels": run([1.0, 0.1, 0.0]).to_dict(),       # dicts work too; zero loss is clipped
        "gaussian": {"curves": {"step": [], "train_loss": []}}}  # no curve: skipped, no error
ROWS = [{"p": 0.0, "relative_time": 1.0, "test_error": 0.05},
        {"p": 0.5, "relative_time": 1.8, "test_error": 0.45},
        {"p": 1.0, "relative_time": 3.1, "test_error": 0.9},
        {"p": 0.2, "relative_time": None, "test_error": None}]  # a level that did not fit


@pytest.fixture
def matplotlib():
    return pytest.importorskip("matplotlib")


def assert_png(path):
    assert path.is_file() and path.read_bytes()[:8] == PNG and path.stat().st_size > 2000


def test_figure1_writes_three_panels(matplotlib, tmp_path):
    paths = plots.figure1(RUNS, ROWS, tmp_path / "figs", prefix="mlp_", title="mlp")
    assert [p.name for p in paths] == [f"mlp_{name}" for name in plots.FIGURE1_FILES]
    for path in paths:
        assert_png(path)


def test_figure1_skips_panels_without_data(matplotlib, tmp_path):
    assert [p.name for p in plots.figure1(RUNS, [], tmp_path)] == [plots.FIGURE1_FILES[0]]
    assert [p.name for p in plots.figure1({}, ROWS, tmp_path)] == list(plots.FIGURE1_FILES[1:])
    assert plots.figure1({}, None, tmp_path) == []


def test_single_panels_and_empty_inputs(matplotlib, tmp_path):
    assert_png(plots.plot_loss_curves({}, tmp_path / "empty.png"))
    assert_png(plots.plot_relative_time([], tmp_path / "b.png"))
    assert_png(plots.plot_test_error(ROWS, tmp_path / "c.png", chance=0.1))


def test_long_runs_label_steps_in_thousands(matplotlib, tmp_path):
    long = {"true_labels": run([2.0, 1.0, 0.5, 0.1], steps_per_epoch=2000)}
    assert_png(plots.plot_loss_curves(long, tmp_path / "k.png"))


def test_plotting_leaves_the_pyplot_backend_alone(matplotlib, tmp_path):
    before = matplotlib.get_backend()
    plots.figure1(RUNS, ROWS, tmp_path)
    assert matplotlib.get_backend() == before


def test_missing_matplotlib_names_the_install_command(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now raises ImportError
    with pytest.raises(plots.PlotsUnavailable, match=r"pip install 'rethink-checks\[plots\]'") as err:
        plots.figure1(RUNS, ROWS, tmp_path)
    assert isinstance(err.value, ImportError) and isinstance(err.value, RethinkError)
    with pytest.raises(plots.PlotsUnavailable):
        plots.require_matplotlib()
    assert not list(tmp_path.iterdir())


def test_importing_plots_does_not_import_matplotlib():
    import subprocess

    code = "import sys, rethink_checks.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
