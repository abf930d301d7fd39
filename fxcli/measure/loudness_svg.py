"""A file's loudness over time as a small inline SVG (the plots of
``fxcli process --report``; no matplotlib).

:func:`loudness_curve` meters a file with the numpy meter of :mod:`fxcli.dsp.loudness`
(:func:`fxcli.measure.loudness_plot.loudness_over_time`: numpy and the compiled core,
no torch) and keeps its momentary loudness (400 ms windows every 100 ms, BS.1770-4)
averaged by power into at most :data:`PLOT_POINTS` bins (:func:`decimate`: a
10-minute file gets 3 s bins); :func:`loudness_svg` draws curves (input and output)
as polylines on axes labelled in seconds and LUFS, with tick values and a legend.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["PLOT_POINTS", "PLOT_RANGE_LU", "Curve", "decimate", "loudness_curve", "loudness_svg"]

#: points per curve (each ~12 bytes in the page: a 10 000-file batch stays ~50 MB)
PLOT_POINTS = 200
#: the lowest level drawn, below the loudest point of a plot (LU)
PLOT_RANGE_LU = 40.0


def _esc(name: str) -> str:
    return html.escape(name, quote=True)


@dataclass
class Curve:
    """A loudness curve to draw: times (s, ``(n,)``) and loudness (LUFS, ``(n,)``,
    ``-inf`` when silent), and the file's length (s)."""

    t: np.ndarray
    lufs: np.ndarray
    duration_s: float


def decimate(
    t: np.ndarray, lufs: np.ndarray, points: int = PLOT_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` points: consecutive windows averaged by power (a silent
    window counts as zero power), each bin at its last window's time. ``(n,)`` in,
    ``(min(n, points),)`` out."""
    n = t.size
    if n <= points:
        return t, lufs
    edges = np.linspace(0, n, points + 1).astype(np.int64)
    with np.errstate(over="ignore"):
        power = np.where(np.isfinite(lufs), 10.0 ** (lufs / 10.0), 0.0)
    sums = np.add.reduceat(power, edges[:-1])
    mean = sums / np.diff(edges)
    with np.errstate(divide="ignore"):
        out = np.where(mean > 0, 10.0 * np.log10(np.maximum(mean, 1e-300)), -np.inf)
    return t[edges[1:] - 1], out


def loudness_curve(path: str | Path, points: int = PLOT_POINTS) -> Curve:
    """The momentary loudness (400 ms windows) of ``path`` averaged into at most
    ``points`` bins (:func:`decimate`); empty for files shorter than 400 ms. Raises
    :class:`AudioError` (unreadable) or ``ValueError`` (rate below the meter's
    lowest)."""
    from fxcli.measure.loudness_plot import loudness_over_time

    c = loudness_over_time(Path(path))
    t, v = decimate(c.momentary_t, c.momentary, points)
    return Curve(t, v, c.duration_s)


def _fmt_tick(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.1f}"


def loudness_svg(curves: dict[str, Curve], *, width: int = 260, height: int = 110) -> str:
    """A small inline SVG: one polyline per curve (``class="curve KEY"``, e.g. input
    and output), x: time in seconds, y: loudness in LUFS, both axes with their tick
    values and labels, a legend. Silent windows are drawn at the lowest level."""
    left, right, top, bottom = 36, 8, 18, 24
    pw, ph = width - left - right, height - top - bottom
    finite = [c.lufs[np.isfinite(c.lufs)] for c in curves.values()]
    vals = np.concatenate(finite) if finite else np.zeros(0)
    hi = float(vals.max()) if vals.size else -20.0
    lo = float(vals.min()) if vals.size else hi - PLOT_RANGE_LU
    hi = math.ceil((hi + 1.0) / 5.0) * 5.0
    lo = max(math.floor((lo - 1.0) / 5.0) * 5.0, hi - PLOT_RANGE_LU)
    if hi - lo < 10.0:
        lo = hi - 10.0
    dur = max([c.duration_s for c in curves.values()] + [0.1])

    def x(t: np.ndarray) -> np.ndarray:
        return left + np.clip(t / dur, 0.0, 1.0) * pw

    def y(v: np.ndarray) -> np.ndarray:
        v = np.where(np.isfinite(v), v, lo)
        return top + (1.0 - np.clip((v - lo) / (hi - lo), 0.0, 1.0)) * ph

    x0, x1, y0, y1 = left, left + pw, top, top + ph
    parts = [
        f'<svg class="plot" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        "<title>Loudness over time (LUFS vs seconds): "
        + ", ".join(_esc(k) for k in curves)
        + "</title>",
        f'<g class="axes"><line class="x-axis" x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}"/>'
        f'<line class="y-axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/></g>',
        f'<text class="tick y" x="{x0 - 3}" y="{y0 + 4}" text-anchor="end">{_fmt_tick(hi)}</text>',
        f'<text class="tick y" x="{x0 - 3}" y="{y1}" text-anchor="end">{_fmt_tick(lo)}</text>',
        f'<text class="tick x" x="{x0}" y="{y1 + 11}" text-anchor="start">0</text>',
        f'<text class="tick x" x="{x1}" y="{y1 + 11}" text-anchor="end">{dur:.1f}</text>',
        f'<text class="axis-label x" x="{(x0 + x1) / 2:.0f}" y="{height - 2}" '
        'text-anchor="middle">time (s)</text>',
        f'<text class="axis-label y" x="0" y="0" text-anchor="middle" '
        f'transform="translate(9 {(y0 + y1) / 2:.0f}) rotate(-90)">LUFS</text>',
    ]
    for k, (key, c) in enumerate(curves.items()):
        px, py = x(c.t), y(c.lufs)
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
        parts.append(f'<polyline class="curve {_esc(key)}" points="{pts}"/>')
        parts.append(  # the legend above the plot, right-aligned, one entry per curve
            f'<text class="legend {_esc(key)}" x="{x1 - 42 * (len(curves) - 1 - k)}" '
            f'y="{y0 - 6}" text-anchor="end">{_esc(key)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
