"""Figure 1 of Zhang et al. (2017) as PNGs: loss vs steps, relative time and test error vs p.

matplotlib is an optional extra, imported only when a plot is drawn; figures use the
Agg canvas directly, so no display and no global backend switch are needed.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import RethinkError
from .randomizations import FIGURE1
from .results import FitResult

__all__ = ["PlotsUnavailable", "plot_loss_curves", "plot_relative_time", "plot_test_error",
           "figure1", "FIGURE1_FILES", "require_matplotlib", "plot_suspects"]

FIGURE1_FILES = ("figure1a_loss.png", "figure1b_relative_time.png", "figure1c_test_error.png")
INSTALL_HINT = "pip install 'rethink-checks[plots]'"
# the paper's order of randomizations in Figure 1a
_ORDER = FIGURE1


class PlotsUnavailable(RethinkError, ImportError):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    """Raise :class:`PlotsUnavailable` (naming the install command) if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise PlotsUnavailable(f"plots need matplotlib, which is not installed: {INSTALL_HINT}") from exc


def _figure(width: float = 5.0, height: float = 3.6) -> Any:
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _curves(run: FitResult | Mapping[str, Any]) -> Mapping[str, list]:
    if isinstance(run, FitResult):
        return run.curves or {}
    return run.get("curves") or {}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _ordered(names: Iterable[str]) -> list[str]:
    names = list(names)
    return [n for n in _ORDER if n in names] + [n for n in names if n not in _ORDER]


def plot_loss_curves(runs: Mapping[str, FitResult | Mapping[str, Any]], path: str | os.PathLike,
                     title: str = "training loss") -> Path:
    """Figure 1a: mean training loss per epoch against optimizer steps, one line per run (log y)."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    for name in _ordered(runs):
        c = _curves(runs[name])
        pts = [(s, max(l, 1e-6)) for s, l in zip(c.get("step") or [], c.get("train_loss") or [])
               if _finite(s) and _finite(l)]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name.replace("_", " "))
            drawn += 1
    ax.set_yscale("log")
    ax.set_xlabel("thousand steps" if _max_step(runs) >= 5000 else "steps")
    if _max_step(runs) >= 5000:
        ax.xaxis.set_major_formatter(_thousands())
    ax.set_ylabel("average training loss")
    ax.set_title(title)
    if drawn:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no curves recorded", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def _max_step(runs: Mapping[str, Any]) -> float:
    steps = [s for r in runs.values() for s in (_curves(r).get("step") or []) if _finite(s)]
    return max(steps, default=0)


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _pos: f"{x / 1000:g}")


def _xy(rows: Iterable[Mapping[str, Any]], column: str) -> tuple[list[float], list[float]]:
    pts = sorted((float(r["p"]), float(r[column])) for r in rows
                 if _finite(r.get("p")) and _finite(r.get(column)))
    return [p for p, _ in pts], [v for _, v in pts]


def _plot_vs_p(rows: Iterable[Mapping[str, Any]], column: str, ylabel: str, title: str,
               path: str | os.PathLike, reference: float | None = None) -> Path:
    rows = list(rows)
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    xs, ys = _xy(rows, column)
    if xs:
        ax.plot(xs, ys, marker="o")
    else:
        ax.text(0.5, 0.5, f"no {column} values", ha="center", va="center", transform=ax.transAxes)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("label corruption p")
    ax.set_ylabel(ylabel)
    ax.set_xlim(-0.05, 1.05)
    ax.set_title(title)
    return _save(fig, path)


def plot_relative_time(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike,
                       title: str = "time to fit") -> Path:
    """Figure 1b: epochs to fit relative to true labels against label corruption p."""
    return _plot_vs_p(rows, "relative_time", "time to overfit (relative)", title, path, 1.0)


def plot_test_error(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike,
                    title: str = "test error", chance: float | None = None) -> Path:
    """Figure 1c: test error against label corruption p (dashed: chance error, if given)."""
    return _plot_vs_p(rows, "test_error", "test error", title, path,
                      None if chance is None else 1.0 - chance)


def figure1(runs: Mapping[str, FitResult | Mapping[str, Any]],
            sweep_rows: Iterable[Mapping[str, Any]] | None, out_dir: str | os.PathLike,
            prefix: str = "", title: str = "") -> list[Path]:
    """Write the three panels of Figure 1 that have data into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    suffix = f" ({title})" if title else ""
    written = []
    if runs:
        written.append(plot_loss_curves(runs, out / f"{prefix}{FIGURE1_FILES[0]}",
                                        "training loss" + suffix))
    rows = list(sweep_rows or [])
    if rows:
        written.append(plot_relative_time(rows, out / f"{prefix}{FIGURE1_FILES[1]}",
                                          "time to fit" + suffix))
        written.append(plot_test_error(rows, out / f"{prefix}{FIGURE1_FILES[2]}",
                                       "test error" + suffix))
    return written


def plot_suspects(images: Any, suspects: Iterable[Any], path: str | os.PathLike,
                  title: str = "suspected mislabels", columns: int = 8) -> Path:
    """A grid of the suspected training images captioned index, given label -> prediction, fit epoch.

    ``images``: the training inputs (N x C x H x W, or N x D drawn as one row); ``suspects``:
    :class:`rethink_checks.memorization.Suspect` objects or their dicts. Each image is scaled to
    its own min-max range (whitened inputs have no fixed one).
    """
    rows = [s if isinstance(s, Mapping) else s.to_dict() for s in suspects]
    count = max(len(rows), 1)
    cols = min(columns, count)
    lines = math.ceil(count / cols)
    fig = _figure(1.4 * cols, 1.6 * lines + 0.4)
    for k, row in enumerate(rows):
        ax = fig.add_subplot(lines, cols, k + 1)
        image = images[int(row["index"])].detach().float().cpu()
        image = image.reshape(1, 1, -1) if image.dim() == 1 else image
        low, high = float(image.min()), float(image.max())
        image = (image - low) / (high - low) if high > low else image * 0
        if image.shape[0] == 3:
            ax.imshow(image.permute(1, 2, 0).numpy())
        else:
            ax.imshow(image[0].numpy(), cmap="gray", aspect="auto" if image.shape[1] == 1 else None)
        pred = "?" if row.get("prediction") is None else row["prediction"]
        if "score" in row:  # the suspects check's row: its combined score and AUM
            detail = f"s{row['score']:.2f} aum{row.get('aum', 0):.1f}"
        else:  # a true_labels fit's row: fit epoch and forgetting events
            epoch = "never" if row.get("fit_epoch") is None else f"e{row['fit_epoch']}"
            detail = f"{epoch} f{row.get('forgets', 0)}"
        ax.set_title(f"#{row['index']} {row['label']}->{pred}\n{detail}", fontsize=7)
        ax.set_axis_off()
    if not rows:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no suspects", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)
