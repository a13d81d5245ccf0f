"""Small SVG line charts for the HTML report: no matplotlib, no network, escaped text.

A chart is a self-contained SVG document (``line_chart``) that the page embeds as an
``<img>`` data URI (:func:`data_uri`), so the page stays one file that any browser draws and
no text from a run can become markup: every label is XML-escaped here.
"""
from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["line_chart", "data_uri", "PALETTE"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#17becf", "#bcbd22")
WIDTH, HEIGHT = 500, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 28, 40

Series = Sequence[tuple[float, float]]


def _finite_points(points: Series) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in points
            if isinstance(x, (int, float)) and isinstance(y, (int, float))
            and math.isfinite(x) and math.isfinite(y)]


def _span(values: Sequence[float], log: bool) -> tuple[float, float]:
    low, high = min(values), max(values)
    if log:
        low, high = math.log10(low), math.log10(high)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    return low, high


def _tick(value: float, log: bool) -> str:
    value = 10 ** value if log else value
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value != 0 and abs(value) < 1e-2:
        return f"{value:.0e}"
    return f"{value:.3g}"


def _axes(x_span: tuple[float, float], y_span: tuple[float, float], log_y: bool,
          x_label: str, y_label: str) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    out = [f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
           'stroke="#999"/>']
    for i in range(5):
        fx, fy = i / 4, i / 4
        x = LEFT + fx * plot_w
        y = TOP + plot_h - fy * plot_h
        xv = x_span[0] + fx * (x_span[1] - x_span[0])
        yv = y_span[0] + fy * (y_span[1] - y_span[0])
        out.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">'
                   f'{escape(_tick(xv, False))}</text>')
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(_tick(yv, log_y))}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle">'
               f'{escape(x_label)}</text>')
    out.append(f'<text x="12" y="{TOP + plot_h / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})">{escape(y_label)}</text>')
    return out


def line_chart(series: Mapping[str, Series], *, title: str, x_label: str, y_label: str,
               log_y: bool = False) -> str:
    """An SVG document: one polyline (with dots) per named series, a legend on the right.

    Non-finite points are dropped (a diverged loss); ``log_y`` drops points <= 0 too. A
    chart with no point left says so instead of drawing empty axes.
    """
    clean = {name: [p for p in _finite_points(pts) if not log_y or p[1] > 0]
             for name, pts in series.items()}
    clean = {name: pts for name, pts in clean.items() if pts}
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">'
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>'
            f'<text x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" font-size="13">'
            f'{escape(title)}</text>')
    if not clean:
        return head + f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT / 2:.0f}" text-anchor="middle">' \
                      'no data</text></svg>'
    x_span = _span([x for pts in clean.values() for x, _ in pts], False)
    y_span = _span([y for pts in clean.values() for _, y in pts], log_y)
    body = _axes(x_span, y_span, log_y, x_label, y_label)
    body += _lines(clean, x_span, y_span, log_y)
    return head + "".join(body) + "</svg>"


def _lines(clean: Mapping[str, list[tuple[float, float]]], x_span: tuple[float, float],
           y_span: tuple[float, float], log_y: bool) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(x: float, y: float) -> tuple[float, float]:
        y = math.log10(y) if log_y else y
        return (LEFT + (x - x_span[0]) / (x_span[1] - x_span[0]) * plot_w,
                TOP + plot_h - (y - y_span[0]) / (y_span[1] - y_span[0]) * plot_h)

    out = []
    for i, (name, pts) in enumerate(clean.items()):
        color = PALETTE[i % len(PALETTE)]
        coords = [at(x, y) for x, y in pts]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        if len(coords) <= 40:
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{color}"/>' for x, y in coords]
        ly = TOP + 12 + 16 * i
        out.append(f'<line x1="{WIDTH - RIGHT + 8}" y1="{ly - 4}" x2="{WIDTH - RIGHT + 24}" '
                   f'y2="{ly - 4}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{WIDTH - RIGHT + 28}" y="{ly}">{escape(str(name)[:24])}</text>')
    return out


def data_uri(svg: str) -> str:
    """The SVG as a ``data:image/svg+xml;base64,...`` URI for an ``<img src>``."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
