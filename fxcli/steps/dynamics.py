"""Dynamics steps: :class:`Compressor`, :class:`Limiter`, :class:`Gate`, :class:`Expander`.

Thin :class:`fxcli.steps.Step` wrappers around :mod:`fxcli.dsp.dynamics` (see
it for the algorithms, the time-constant convention and the CUDA route).
Constructor keyword names are the preset keys; units are in the names (dB, ms,
Hz), ``fs`` is the input's sample rate in Hz. Channels are dim -2 of the
``(*batch, channels, n)`` input (the engine passes ``(channels, n)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fxcli.dsp import design as D
from fxcli.dsp.dynamics import (
    DynamicsState,
    LimiterState,
    dynamics_gain,
    dynamics_init_state,
    limit,
    limiter_init_state,
    limiter_latency,
)
from fxcli.preset.spec import check
from fxcli.steps.base import IIR, Step, check_fs, coefficients, zeros
from fxcli.steps.module import torch_free

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["Compressor", "Limiter", "Gate", "Expander"]


def _apply(x: Tensor, gain: Any) -> Tensor:
    """``x`` times the float64 gain, computed in float64, returned in ``x``'s dtype."""
    if isinstance(x, np.ndarray):
        return (x.astype(np.float64) * gain).astype(x.dtype)  # type: ignore[return-value]
    import torch

    return (x.to(torch.float64) * gain).to(x.dtype)


def _state_device(device: Any) -> Any:
    """``None`` (numpy state arrays) for the torch-free steps, else ``device``."""
    return None if torch_free() else device


class Compressor(Step):
    """Feed-forward soft-knee compressor (Giannoulis, Massberg & Reiss 2012).

    Static curve :func:`fxcli.dsp.dynamics.compressor_curve_db` on the detector
    level (``"peak"``: instantaneous ``|x|``; ``"rms"``: one-pole mean square with
    a 10 ms time constant); the gain in dB is smoothed by a one-pole with attack
    (gain falling) / release (gain rising) time constants: a gain step in dB
    covers 63.2 % of its size in ``attack_ms`` (``release_ms``). ``makeup_db`` is
    added after. ``link_channels``: one gain for all channels (max of their
    detector levels) or one per channel. ``sidechain_highpass_hz``: the detector
    sees the input through a 2nd-order Butterworth highpass (state carried).

    State: ``(DynamicsState, sidechain sosfilt state or None)``. No latency.

    Devices: any (CPU: the compiled gain-envelope kernel; CUDA: Triton programs on the
    device, :mod:`fxcli.dsp.dynamics_triton`, or the CPU kernel where Triton is
    missing). Autograd: gradients flow to the input through the applied gain (the gain
    itself is treated as a constant).
    """

    spec_type = "compressor"
    late_binding = "fs"

    def __init__(
        self,
        threshold_db: float = -18.0,
        ratio: float = 4.0,
        attack_ms: float = 10.0,
        release_ms: float = 100.0,
        knee_db: float = 6.0,
        makeup_db: float = 0.0,
        detector: str = "peak",
        sidechain_highpass_hz: float | None = None,
        link_channels: bool = True,
        *,
        fs: float,
        label: str = "compressor",
    ) -> None:
        super().__init__()
        self.fs = check_fs(fs)
        self.threshold_db = check(self.spec_type, "threshold_db", threshold_db)
        self.ratio = check(self.spec_type, "ratio", ratio)
        self.attack_ms = check(self.spec_type, "attack_ms", attack_ms)
        self.release_ms = check(self.spec_type, "release_ms", release_ms)
        self.knee_db = check(self.spec_type, "knee_db", knee_db)
        self.makeup_db = check(self.spec_type, "makeup_db", makeup_db)
        self.detector = check(self.spec_type, "detector", detector)
        self.link_channels = check(self.spec_type, "link_channels", link_channels)
        self.sidechain_highpass_hz = None
        self.register_buffer("sc_sos", None)
        if sidechain_highpass_hz is not None:
            hz = check(self.spec_type, "sidechain_highpass_hz", sidechain_highpass_hz)
            try:
                sos = D.iir_pass("highpass", hz, self.fs, 2, "butterworth")
            except D.DesignError as exc:
                raise ValueError(f"sidechain_highpass_hz: {exc}") from None
            self.sidechain_highpass_hz = hz
            self.sc_sos = coefficients(sos)
        self.label = label

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Any:
        dyn = dynamics_init_state(batch_shape, _state_device(device), self.link_channels)
        sc = None
        if self.sc_sos is not None:
            sc = zeros((self.sc_sos.shape[0], *batch_shape, 2), device)
        return (dyn, sc)

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        dyn, sc = state
        det = x
        if self.sc_sos is not None:
            det, sc = IIR.filter(x, self.sc_sos, sc)
        gain, dyn = dynamics_gain(
            det,
            dyn,
            kind="compressor",
            fs=self.fs,
            threshold_db=self.threshold_db,
            ratio=self.ratio,
            attack_ms=self.attack_ms,
            release_ms=self.release_ms,
            knee_db=self.knee_db,
            makeup_db=self.makeup_db,
            detector=self.detector,
            link=self.link_channels,
        )
        return _apply(x, gain), (dyn, sc)


#: Limiters aim this far (linear, 4 LSB of 16-bit) below the ceiling so that the written
#: file still meets it after rounding to 16-bit PCM with TPDF dither (+-2.5 LSB at most).
QUANTIZATION_MARGIN = 2.0**-13


class Limiter(Step):
    """Lookahead brickwall limiter (:func:`fxcli.dsp.dynamics.limit`), channels linked.

    ``peak_limiter``: a ``loudness`` step directly before a limiter aims its gain
    through it (see :func:`fxcli.engine.runner.resolve_analysis`).

    With ``true_peak`` the output's true peak never exceeds ``ceiling_db`` dBTP as
    measured by ``fxcli analyze`` (:func:`fxcli.dsp.truepeak.interpolator`: 8x or
    more, at least 192 kHz), by scipy's ``resample_poly(y, 8, 1)`` and by FFmpeg's
    ``ebur128=peak=true`` (the limiter checks all three interpolators,
    :func:`fxcli.dsp.dynamics.limiter_interpolator`; FFmpeg's reading of a file's
    first ~1 ms excepted: it mirrors them) (it aims 0.15 dB under, see
    :data:`fxcli.dsp.dynamics.TRUE_PEAK_MARGIN_DB`); without, its sample peak never
    exceeds ``ceiling_db`` dBFS.
    The gain aims :data:`QUANTIZATION_MARGIN` below the ceiling so that 16-bit
    output, TPDF-dithered, still meets it (8-bit output may not). Input that stays
    below that passes bit for bit. The step holds
    ``round(lookahead_ms * fs / 1000)`` frames (+ 94 with ``true_peak``: twice the
    interpolator's 47 samples of history, :func:`fxcli.dsp.dynamics.limiter_latency`): the
    first chunks return fewer frames and :meth:`flush` the rest, so the output
    has the input's length and alignment. Release: one-pole in dB, 63.2 % in
    ``release_ms``.

    Devices: any (CPU: the compiled limiter kernel; CUDA: Triton programs on the
    device, :mod:`fxcli.dsp.limiter_triton`, with the state there, no copy to the
    CPU; where Triton is missing CUDA tensors are copied to the CPU kernel and the
    result back). Autograd: not supported: calling it on a tensor that requires grad
    raises (run it under torch.no_grad()).
    """

    differentiable = False

    spec_type = "limiter"
    late_binding = "fs"

    peak_limiter = True

    def __init__(
        self,
        ceiling_db: float = -1.0,
        true_peak: bool = True,
        lookahead_ms: float = 5.0,
        release_ms: float = 50.0,
        *,
        fs: float,
        label: str = "limiter",
    ) -> None:
        super().__init__()
        self.fs = check_fs(fs)
        self.ceiling_db = check(self.spec_type, "ceiling_db", ceiling_db)
        self.true_peak = check(self.spec_type, "true_peak", true_peak)
        self.lookahead_ms = check(self.spec_type, "lookahead_ms", lookahead_ms)
        self.release_ms = check(self.spec_type, "release_ms", release_ms)
        self.lookahead = max(1, round(self.lookahead_ms * 1e-3 * self.fs))
        self.latency = limiter_latency(self.lookahead, self.true_peak, self.fs)
        self.label = label

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Any:
        """``(LimiterState, batch_shape, dtype of the last chunk or None)``."""
        st = limiter_init_state(
            batch_shape, _state_device(device), self.lookahead, self.true_peak, self.fs
        )
        return (st, batch_shape, None)

    def _run(self, x: Tensor, st: LimiterState) -> tuple[Tensor, LimiterState]:
        return limit(
            x,
            st,
            ceiling=10.0 ** (self.ceiling_db / 20.0) - QUANTIZATION_MARGIN,
            true_peak=self.true_peak,
            lookahead=self.lookahead,
            release_ms=self.release_ms,
            fs=self.fs,
        )

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        st, batch, _ = state
        y, st = self._run(x, st)
        return y, (st, batch, x.dtype)

    def flush(self, state: Any) -> tuple[Tensor | None, Any]:
        """The held frames (in the dtype of the last chunk), by feeding silence."""
        st, batch, dtype = state
        if isinstance(st.pending, np.ndarray):
            silence: Any = np.zeros((*batch, self.latency), dtype=dtype or np.float32)
        else:
            import torch

            silence = torch.zeros(
                (*batch, self.latency),
                dtype=dtype or torch.get_default_dtype(),
                device=st.pending.device,
            )
        y, st = self._run(silence, st)
        return y, (st, batch, dtype)


class Expander(Step):
    """Downward expander: below ``threshold_db`` the gain falls ``ratio - 1`` dB per
    dB (at most 120 dB). Attack = opening (gain rising), release = closing; a
    closing starts only ``hold_ms`` after the level last asked for the current
    gain or more. Instantaneous peak detector, channels linked (max level).
    Time constants: 63.2 % of a gain step in dB (see :mod:`fxcli.dsp.dynamics`).

    Devices: any (CPU: the compiled gain-envelope kernel; CUDA: Triton programs on the
    device, :mod:`fxcli.dsp.dynamics_triton`, or the CPU kernel where Triton is
    missing). Autograd: gradients flow to the input through the applied gain (the gain
    itself is treated as a constant).
    """

    spec_type = "expander"
    late_binding = "fs"

    def __init__(
        self,
        threshold_db: float = -40.0,
        ratio: float = 2.0,
        attack_ms: float = 5.0,
        hold_ms: float = 20.0,
        release_ms: float = 100.0,
        *,
        fs: float,
        label: str = "expander",
    ) -> None:
        super().__init__()
        self.fs = check_fs(fs)
        self.threshold_db = check(self.spec_type, "threshold_db", threshold_db)
        self.ratio = check(self.spec_type, "ratio", ratio)
        self.attack_ms = check(self.spec_type, "attack_ms", attack_ms)
        self.hold_ms = check(self.spec_type, "hold_ms", hold_ms)
        self.release_ms = check(self.spec_type, "release_ms", release_ms)
        self.label = label

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Any:
        return dynamics_init_state(batch_shape, _state_device(device), True)

    def process(self, x: Tensor, state: DynamicsState) -> tuple[Tensor, Any]:
        gain, st = dynamics_gain(
            x,
            state,
            kind="expander",
            fs=self.fs,
            threshold_db=self.threshold_db,
            ratio=self.ratio,
            attack_ms=self.attack_ms,
            release_ms=self.release_ms,
            hold_ms=self.hold_ms,
            link=True,
        )
        return _apply(x, gain), st


class Gate(Expander):
    """Noise gate: an :class:`Expander` with a steep default ratio (10: 9 dB of
    attenuation per dB below the threshold, at most 120 dB) and gate timings.

    Devices: any (CPU: the compiled gain-envelope kernel; CUDA: Triton programs on the
    device, :mod:`fxcli.dsp.dynamics_triton`, or the CPU kernel where Triton is
    missing). Autograd: gradients flow to the input through the applied gain (the gain
    itself is treated as a constant).
    """

    spec_type = "gate"

    def __init__(
        self,
        threshold_db: float = -50.0,
        ratio: float = 10.0,
        attack_ms: float = 1.0,
        hold_ms: float = 50.0,
        release_ms: float = 100.0,
        *,
        fs: float,
        label: str = "gate",
    ) -> None:
        super().__init__(threshold_db, ratio, attack_ms, hold_ms, release_ms, fs=fs, label=label)
