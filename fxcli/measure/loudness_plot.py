"""A file's loudness over time as a picture (``fxcli analyze FILE --plot out.png``).

:func:`loudness_over_time` meters a file (BS.1770-4, the meter of
:mod:`fxcli.dsp.loudness`, numpy and the compiled core, no torch) and returns the
momentary (400 ms) and short-term (3 s) loudness every 100 ms with the LRA band;
:func:`plot_loudness` draws them with the integrated loudness and the true peak as
horizontal lines (the figures ``fxcli analyze`` reports), time in seconds, levels in
LUFS / dBTP, and writes a PNG atomically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LoudnessOverTime", "loudness_over_time", "plot_loudness"]


@dataclass
class LoudnessOverTime:
    """Curves of one file: times (s) and loudness (LUFS, ``-inf`` when silent)."""

    momentary_t: np.ndarray
    momentary: np.ndarray
    short_term_t: np.ndarray
    short_term: np.ndarray
    #: the LRA band (short-term loudness at the 10th and 95th percentiles), or None
    lra: tuple[float, float] | None
    duration_s: float


def loudness_over_time(path: Path) -> LoudnessOverTime:
    """Meter ``path`` (streamed in blocks); raises :class:`fxcli.io.audio.AudioError`
    when it cannot be read, ``ValueError`` below the meter's lowest rate."""
    from fxcli.dsp import loudness as L
    from fxcli.engine.device import chunk_frames
    from fxcli.io.audio import probe, read_blocks

    info = probe(path)
    if info.samplerate < L.MIN_RATE_HZ:
        raise ValueError(f"{info.samplerate} Hz is below the loudness meter's {L.MIN_RATE_HZ:g} Hz")
    meter = L.meter_init(info.channels, info.samplerate, None)
    frames = 0
    for block in read_blocks(info, chunk_frames("cpu", info.samplerate, info.channels, None)):
        meter = L.meter_update(block, meter)
        frames += block.shape[-1]
    c = L.loudness_curves(meter)
    return LoudnessOverTime(
        c["momentary_t"], c["momentary"], c["short_term_t"], c["short_term"],
        L.loudness_range_bounds(meter), frames / info.samplerate,
    )  # fmt: skip


def _finite(v: np.ndarray, floor: float) -> np.ndarray:
    """Silent windows (-inf) drawn at the axis floor."""
    return np.where(np.isfinite(v), v, floor)


def plot_loudness(
    curves: LoudnessOverTime,
    path: str | Path,
    *,
    integrated_lufs: float,
    true_peak_dbtp: float,
    title: str = "",
) -> Any:
    """Draw momentary and short-term loudness, the integrated loudness and the true
    peak (horizontal lines), and the LRA band; write a PNG to ``path`` (atomically)
    and return the figure. Needs matplotlib (``pip install 'fxcli[plot]'``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    values = [v[np.isfinite(v)] for v in (curves.momentary, curves.short_term)]
    finite = np.concatenate(values) if any(v.size for v in values) else np.zeros(0)
    top = float(finite.max()) if finite.size else -10.0
    marks = [x for x in (integrated_lufs, true_peak_dbtp) if math.isfinite(x)]
    top = max([top, *marks])
    floor = (float(np.percentile(finite, 2)) if finite.size else top) - 12.0
    floor = max(min(floor, top - 20.0), -70.0)
    if curves.lra is not None:
        lo, hi = curves.lra
        ax.axhspan(lo, hi, color="tab:green", alpha=0.12, label=f"LRA {hi - lo:.1f} LU")
    ax.plot(curves.momentary_t, _finite(curves.momentary, floor), lw=0.8, alpha=0.7,
            color="tab:blue", label="momentary (400 ms)")  # fmt: skip
    ax.plot(curves.short_term_t, _finite(curves.short_term, floor), lw=1.6,
            color="tab:orange", label="short-term (3 s)")  # fmt: skip
    if math.isfinite(integrated_lufs):
        ax.axhline(integrated_lufs, color="black", ls="--", lw=1.2,
                   label=f"integrated {integrated_lufs:.1f} LUFS")  # fmt: skip
    if math.isfinite(true_peak_dbtp):
        ax.axhline(true_peak_dbtp, color="tab:red", ls=":", lw=1.4,
                   label=f"true peak {true_peak_dbtp:.1f} dBTP")  # fmt: skip
    ax.set_xlim(0.0, max(curves.duration_s, 0.1))
    ax.set_ylim(floor, top + 3.0)
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("Loudness (LUFS) / true peak (dBTP)")
    ax.set_title(title or "Loudness over time (ITU-R BS.1770-4)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    from fxcli.io.atomic import atomic_path

    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return fig
