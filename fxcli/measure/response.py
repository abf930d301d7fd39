"""What a preset does to a spectrum: the frequency response of its linear steps, and
a picture of several presets overlaid (``fxcli presets plot``).

:func:`preset_response` designs the preset's chain at a sample rate (numpy only, the
designs of :mod:`fxcli.preset.build`) and multiplies the responses of its linear,
time-invariant steps: IIR cascades (every filter type), FIR filters, constant gains
and polarity, each evaluated at its own rate (a filter after ``resample`` is
designed, and evaluated, at the new rate; frequencies above a step's Nyquist are
left out of the curve). The other steps (dynamics, loudness, normalize, delay,
reverb, convolution, remix, edits) change level over time or depend on the signal:
they are listed as text, with their parameters, not drawn.

Magnitude in dB (``20 log10 |H|``, floored at -200 dB) and group delay in ms
(``Re(z B'(z)/B(z)) - Re(z A'(z)/A(z))`` per section, exact, no phase unwrapping).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Response", "preset_response", "plot_responses", "frequency_grid"]

#: the magnitude floor of the curves, dB (a zero of the response)
FLOOR_DB = -200.0


@dataclass
class Response:
    """The response of one preset at one rate, on ``freqs`` (Hz, log spaced)."""

    label: str
    fs: float
    freqs: np.ndarray
    magnitude_db: np.ndarray
    group_delay_ms: np.ndarray
    #: one line per linear step that is in the curve
    drawn: list[str] = field(default_factory=list)
    #: one line per step that is not (dynamics, loudness, edits, ...)
    listed: list[str] = field(default_factory=list)


def frequency_grid(fs: float, points: int = 1024, low_hz: float = 10.0) -> np.ndarray:
    """``points`` log-spaced frequencies from ``low_hz`` to just below ``fs / 2``."""
    return np.geomspace(low_hz, 0.4999 * fs, points)


def _poly_response(b: np.ndarray, z1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``B(z) = sum b_k z^-k`` and ``sum k b_k z^-k`` at ``z1 = z^-1``."""
    k = np.arange(b.shape[-1])
    powers = z1[:, None] ** k[None, :]
    return powers @ b, powers @ (k * b)


def _sections_response(sos: np.ndarray, z1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complex response and group delay (samples) of a cascade ``(S, 6)``."""
    h = np.ones(z1.shape, dtype=complex)
    gd = np.zeros(z1.shape)
    for sec in np.atleast_2d(sos):
        b, db = _poly_response(sec[:3], z1)
        a, da = _poly_response(sec[3:], z1)
        h *= b / a
        with np.errstate(divide="ignore", invalid="ignore"):
            gd += np.nan_to_num(np.real(db / b)) - np.real(da / a)
    return h, gd


def _fir_response(taps: np.ndarray, z1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b, db = _poly_response(taps, z1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return b, np.nan_to_num(np.real(db / b))


def _describe(cfg: Any, width: int = 44) -> str:
    """``type key=value, ...`` of a step's keys that are set (None left out), cut at
    ``width`` characters."""
    parts = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
             for k, v in cfg.params.items() if v is not None]  # fmt: skip
    text = f"{cfg.type} " + ", ".join(parts) if parts else cfg.type
    return text if len(text) <= width else text[: width - 3] + "..."


#: frequency axis ticks (Hz) and their labels
_TICKS = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)


def _hz(f: float) -> str:
    return f"{f / 1000:g}k" if f >= 1000 else f"{f:g}"


def preset_response(
    preset: Any,
    fs: float,
    *,
    channels: int = 2,
    points: int = 1024,
    label: str | None = None,
) -> Response:
    """The response of ``preset`` (a loaded :class:`fxcli.preset.loader.Preset`) for
    input at ``fs`` Hz with ``channels`` channels. Raises the preset's own errors
    (a design the rate does not allow) as :class:`fxcli.preset.loader.PresetError`."""
    from fxcli.preset.build import build_step
    from fxcli.steps.base import FIR, IIR, as_numpy
    from fxcli.steps.gain import Gain, Polarity

    freqs = frequency_grid(fs, points)
    h = np.ones(freqs.shape, dtype=complex)
    gd = np.zeros(freqs.shape)
    keep = np.ones(freqs.shape, dtype=bool)
    drawn: list[str] = []
    listed: list[str] = []
    rate, ch = float(fs), channels
    for cfg in preset.steps:
        step = build_step(cfg, rate, ch)
        z1 = np.exp(-2j * np.pi * freqs / rate)
        if isinstance(step, IIR):
            hs, gs = _sections_response(as_numpy(step.sos), z1)
        elif isinstance(step, FIR):
            hs, gs = _fir_response(as_numpy(step.taps), z1)
        elif isinstance(step, (Gain, Polarity)):
            hs, gs = np.full(freqs.shape, complex(step.gain)), np.zeros(freqs.shape)
        else:
            listed.append(_describe(cfg))
            rate, ch = step.output_rate(rate), step.output_channels(ch)
            continue
        keep &= freqs < rate / 2
        h *= hs
        gd += gs / rate * 1000.0
        drawn.append(_describe(cfg))
        rate, ch = step.output_rate(rate), step.output_channels(ch)
    with np.errstate(divide="ignore"):
        mag = np.maximum(20.0 * np.log10(np.abs(h)), FLOOR_DB)
    return Response(
        label=label or str(getattr(preset, "source", "preset")),
        fs=float(fs),
        freqs=freqs[keep],
        magnitude_db=mag[keep],
        group_delay_ms=gd[keep],
        drawn=drawn,
        listed=listed,
    )


def plot_responses(
    responses: list[Response], path: str | Path, *, group_delay: bool = False
) -> Any:
    """Draw the magnitude responses (and with ``group_delay`` a second panel of group
    delay) overlaid, log frequency axis in Hz, and beside them the steps that are not
    in the curves; write a PNG to ``path`` (atomically) and return the figure.

    Needs matplotlib (``pip install 'fxcli[plot]'``): ImportError otherwise."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = 2 if group_delay else 1
    fig, axes = plt.subplots(rows, 1, figsize=(13, 4.2 * rows), squeeze=False, sharex=True)
    mag_ax = axes[0][0]
    for r in responses:
        mag_ax.semilogx(r.freqs, r.magnitude_db, label=f"{r.label} @ {r.fs:g} Hz")
    mag_ax.set_ylabel("Magnitude (dB)")
    mag_ax.set_title("Frequency response of the filter steps")
    mag_ax.grid(True, which="both", alpha=0.3)
    lows = [float(np.min(r.magnitude_db)) for r in responses if r.magnitude_db.size]
    highs = [float(np.max(r.magnitude_db)) for r in responses if r.magnitude_db.size]
    if lows:
        mag_ax.set_ylim(max(min(lows), max(highs) - 60.0) - 3.0, max(highs) + 3.0)
    mag_ax.legend(loc="lower right", fontsize="small")
    last = mag_ax
    if group_delay:
        gd_ax = axes[1][0]
        for r in responses:
            gd_ax.semilogx(r.freqs, r.group_delay_ms, label=r.label)
        gd_ax.set_ylabel("Group delay (ms)")
        gd_ax.grid(True, which="both", alpha=0.3)
        last = gd_ax
    last.set_xlabel("Frequency (Hz)")
    top = max((float(r.freqs[-1]) for r in responses if r.freqs.size), default=20000.0)
    ticks = [t for t in _TICKS if t <= top]
    last.set_xticks(ticks, [_hz(t) for t in ticks])
    last.set_xlim(10.0, top)
    notes = []
    for r in responses:
        if r.listed:
            notes.append(f"{r.label}, not drawn:")
            notes.extend(f"  {line}" for line in r.listed)
    if notes:
        fig.subplots_adjust(right=0.66)
        fig.text(0.675, 0.95, "\n".join(notes), va="top", ha="left", family="monospace",
                 fontsize="x-small")  # fmt: skip
    from fxcli.io.atomic import atomic_path

    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return fig
