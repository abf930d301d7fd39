"""A streaming level meter of a file's samples: integrated loudness (BS.1770-4),
true peak (BS.1770-4 Annex 2, 4x oversampled) and sample peak, on numpy arrays.

Feeds on the blocks a run reads or writes anyway (the engine calls
:meth:`LevelMeter.update` from its reader and writer threads), so measuring the
input and output of a file costs no extra pass over it. numpy and the compiled
core only: no torch, no scipy. The meters' modules are imported by the first
:class:`LevelMeter` (a run whose chain promises no level imports neither).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["LevelMeter", "db"]


def db(linear: float) -> float:
    """``20 log10(linear)``; ``-inf`` for 0."""
    return 20.0 * math.log10(linear) if linear > 0.0 else -math.inf


class LevelMeter:
    """Loudness, true peak and sample peak of ``(channels, n)`` float blocks at
    ``fs`` Hz (full scale 1.0). Below :data:`fxcli.dsp.loudness.MIN_RATE_HZ` no
    loudness is measured (:meth:`lufs` is ``None``)."""

    def __init__(self, channels: int, fs: float) -> None:
        from fxcli.dsp import loudness as L
        from fxcli.dsp import truepeak as TP

        self._L, self._TP = L, TP
        self.channels = channels
        self.fs = float(fs)
        self.frames = 0
        self._meter: Any = L.meter_init(channels, fs, None) if fs >= L.MIN_RATE_HZ else None
        self._interp = TP.interpolator(self.fs)  # the careful meter analyze reports
        self._tp_state: np.ndarray = np.zeros((channels, self._interp.history))
        self._tp = 0.0
        self._peak = 0.0

    def update(self, block: np.ndarray) -> None:
        """Fold one ``(channels, n)`` (or ``(n,)`` mono) block in."""
        x = np.asarray(block)
        n = x.shape[-1]
        if n == 0:
            return
        x = x.reshape(-1, n)
        if self._meter is not None:
            self._meter = self._L.meter_update(x, self._meter)
        p, self._tp_state = self._TP.true_peak_array(x, self._tp_state, self._interp)
        self._tp = max(self._tp, float(p.max()))
        self._peak = max(self._peak, float(np.abs(x).max()))
        self.frames += n

    def lufs(self) -> float | None:
        """Integrated loudness, LUFS; ``-inf`` when undefined (shorter than 400 ms,
        or nothing above the -70 LUFS gate); ``None`` when not measured."""
        return None if self._meter is None else self._L.integrated_lufs(self._meter)

    def true_peak_db(self) -> float:
        """True peak, dBTP, including the interpolator's ringing after the last sample."""
        zeros = np.zeros((self.channels, self._interp.history))
        tail, _ = self._TP.true_peak_array(zeros, self._tp_state, self._interp)
        return db(max(self._tp, float(tail.max())))

    def peak_db(self) -> float:
        """Sample peak, dBFS."""
        return db(self._peak)

    def summary(self) -> dict[str, float | None]:
        """``{"lufs", "true_peak_dbtp", "peak_dbfs"}``, rounded to 0.01 (``None`` for
        values that are undefined: -inf, or loudness not measured)."""
        return {
            "lufs": _rounded(self.lufs()),
            "true_peak_dbtp": _rounded(self.true_peak_db()),
            "peak_dbfs": _rounded(self.peak_db()),
        }


def _rounded(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, 2)
