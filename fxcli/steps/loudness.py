"""Loudness normalization (EBU R128 / ITU-R BS.1770-4) as a chain step.

:class:`Loudness` measures the integrated loudness of the chain's output up to
this step (a measuring pass, like peak ``normalize``), then applies one
constant gain that brings it to ``target_lufs``; with ``max_true_peak_db`` the
gain is lowered where needed so that the output's true peak
(:func:`fxcli.dsp.truepeak.interpolator`: 8x or more, at least 192 kHz) stays
at or below the ceiling. Being a single linear gain it
never changes the sound otherwise (no limiting): a ceiling that is reached
leaves the output quieter than the target.

Measuring: :func:`fxcli.dsp.loudness.meter_update` and
:func:`fxcli.dsp.truepeak.true_peak` on the chunk's device (CPU or CUDA), or on numpy
arrays (the torch-free CPU path: a numpy meter and
:func:`fxcli.dsp.truepeak.true_peak_array`, the same bits); the accumulator is
``(meter state, true-peak state, running true peak)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from fxcli.dsp import loudness as L
from fxcli.dsp import truepeak as TP
from fxcli.preset.spec import check
from fxcli.steps.base import Step, check_fs
from fxcli.steps.gain import Gain

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["Loudness", "LoudnessAcc"]

#: ``(meter state, true-peak state or None, max true peak so far, linear)``
LoudnessAcc = tuple[L.MeterState, "Tensor | np.ndarray | None", float]


class Loudness(Step):
    """Gain to an integrated loudness target, optionally under a true-peak ceiling.

    Args:
        target_lufs: integrated loudness of the output, LUFS, in [-70, 0]
            (EBU R128 broadcast: -23; streaming platforms: about -14 to -16).
        max_true_peak_db: optional true-peak ceiling of the output, dBTP, in
            [-30, 0] (R128: -1). ``None``: no ceiling (the gain may push peaks
            beyond full scale; the writer clips and reports them).
        fs: sample rate of the step's input, Hz (>= 4000, for the K-weighting).
        label: name used in messages.

    Silence (nothing above the -70 LUFS absolute gate, or shorter than 400 ms)
    gets unity gain (still lowered to respect the ceiling, if one is set).
    Channel weights follow :func:`fxcli.dsp.loudness.channel_weights`.

    Devices: any. Autograd: gradients flow to the input through the applied gain (the
    measured loudness is a constant).
    """

    late_binding = "fs"

    needs_analysis = True

    def __init__(
        self,
        target_lufs: float = -23.0,
        max_true_peak_db: float | None = None,
        *,
        fs: float,
        label: str = "loudness",
    ) -> None:
        super().__init__()
        target_lufs = check("loudness", "target_lufs", target_lufs)
        if max_true_peak_db is not None:
            max_true_peak_db = check("loudness", "max_true_peak_db", max_true_peak_db)
        fs = check_fs(fs)
        if not (math.isfinite(fs) and fs >= L.MIN_RATE_HZ):
            raise ValueError(
                f"fs must be >= {L.MIN_RATE_HZ:g} Hz for loudness metering, got {fs:g}"
            )
        self.target_lufs = target_lufs
        self.max_true_peak_db = max_true_peak_db
        self.fs = fs
        self.label = label

    def measure(self, acc: LoudnessAcc | None, y: Any) -> LoudnessAcc:
        """Fold one chunk ``(channels, n)`` (or ``(n,)`` mono) of the chain's output in."""
        arrays = isinstance(y, np.ndarray)
        # (n,) mono -> (1, n); explicit rows: an empty chunk (a limiter's lookahead
        # holds the first frames back) cannot be reshaped with -1 (issue 16)
        y = y.reshape(math.prod(y.shape[:-1]) if y.ndim > 1 else 1, y.shape[-1])
        if acc is None:
            meter = L.meter_init(y.shape[0], self.fs, None if arrays else y.device)
            tp_state: Any = None
            if self.max_true_peak_db is not None:
                tp_state = (
                    np.zeros((y.shape[0], self._interp.history))
                    if arrays
                    else TP.init_state((y.shape[0],), self._interp, y.device)
                )
            acc = (meter, tp_state, 0.0)
        meter, tp_state, peak = acc
        meter = L.meter_update(y, meter)
        if tp_state is not None and y.shape[-1]:
            p: Any
            p, tp_state = (TP.true_peak_array if arrays else TP.true_peak)(
                y, tp_state, self._interp
            )
            peak = max(peak, float(p.max()))
        return meter, tp_state, peak

    @property
    def _interp(self) -> TP.Interpolator:
        return TP.interpolator(self.fs)

    def true_peak(self, acc: LoudnessAcc | None) -> float:
        """Linear true peak of everything measured, including the interpolator's
        ringing after the last sample (the stream followed by silence); 0 when no
        ceiling is set."""
        if acc is None:
            return 0.0
        _, tp_state, peak = acc
        if tp_state is None:
            return 0.0
        interp = self._interp
        if isinstance(tp_state, np.ndarray):
            zeros = np.zeros((*tp_state.shape[:-1], interp.history))
            return max(peak, float(TP.true_peak_array(zeros, tp_state, interp)[0].max()))
        tail = tp_state.new_zeros((*tp_state.shape[:-1], interp.history))
        return max(peak, float(TP.true_peak(tail, tp_state, interp)[0].max()))

    def gain_for(self, acc: LoudnessAcc | None) -> float:
        """The linear gain :meth:`resolve` applies for this measurement."""
        if acc is None:
            return 1.0
        meter = acc[0]
        peak = self.true_peak(acc)
        integrated = L.integrated_lufs(meter)
        gain = 1.0 if integrated == -math.inf else 10.0 ** ((self.target_lufs - integrated) / 20.0)
        if self.max_true_peak_db is not None and peak > 0.0:
            gain = min(gain, 10.0 ** (self.max_true_peak_db / 20.0) / peak)
        return gain

    def aim(
        self,
        acc: LoudnessAcc | None,
        measure_at: Callable[[float], LoudnessAcc | None],
        tolerance_lu: float = 0.05,
        max_passes: int = 12,
    ) -> Step:
        """The gain that meets the target at the output of a peak limiter that follows.

        ``measure_at(g)`` measures the limiter's output when this step applies gain
        ``g``. The output loudness grows monotonically with the gain in dB, with a
        slope of 1 below the ceiling and less once the limiter works, so a secant
        search on ``(gain dB, LUFS)`` starting from the linear estimate converges in a
        few passes; it stops within ``tolerance_lu`` of the target or after
        ``max_passes`` passes (returning the best gain found). The limiter's ceiling
        governs peaks here, so ``max_true_peak_db`` is not applied.
        """
        if acc is None or L.integrated_lufs(acc[0]) == -math.inf:
            return self.resolve(acc)
        g_db = self.target_lufs - L.integrated_lufs(acc[0])
        tried: list[tuple[float, float]] = []
        for _ in range(max_passes):
            out = measure_at(10.0 ** (g_db / 20.0))
            level = L.integrated_lufs(out[0]) if out is not None else -math.inf
            if level == -math.inf:
                break
            tried.append((g_db, level))
            if abs(level - self.target_lufs) <= tolerance_lu:
                break
            slope = 1.0
            if len(tried) >= 2:
                (g0, l0), (g1, l1) = tried[-2], tried[-1]
                if g1 != g0:
                    slope = min(max((l1 - l0) / (g1 - g0), 0.01), 1.0)
            g_db += max(min((self.target_lufs - level) / slope, 24.0), -24.0)
        if tried:
            g_db = min(tried, key=lambda t: abs(t[1] - self.target_lufs))[0]
        return Gain.factor(10.0 ** (g_db / 20.0), label=self.label)

    def resolve(self, acc: LoudnessAcc | None) -> Step:
        """The :class:`fxcli.steps.Gain` (labelled like this step) for the measurement."""
        return Gain.factor(self.gain_for(acc), label=self.label)

    def describe(self, acc: LoudnessAcc | None) -> str:
        """One line for reports: measured loudness, true peak and the gain applied."""
        if acc is None:
            return f"{self.label}: nothing measured, gain 0.00 dB"
        meter, tp_state, _ = acc
        peak = self.true_peak(acc)
        integrated = L.integrated_lufs(meter)
        gain_db = 20.0 * math.log10(self.gain_for(acc))
        text = f"{self.label}: {integrated:.2f} LUFS"
        if tp_state is not None:
            text += f", true peak {20.0 * math.log10(peak) if peak > 0 else -math.inf:.2f} dBTP"
        return text + f", gain {gain_db:+.2f} dB"

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise RuntimeError(
            f"{self.label} needs a measuring pass: run the chain through fxcli.engine, "
            "or call measure()/resolve() and use the returned Gain"
        )

    def extra_repr(self) -> str:
        return (
            f"target_lufs={self.target_lufs}, max_true_peak_db={self.max_true_peak_db}, "
            f"fs={self.fs}"
        )
