"""True-peak measurement: a rate-dependent polyphase interpolator (the default)
and the ITU-R BS.1770-4 Annex 2 4x filter (:data:`BS1770`).

An :class:`Interpolator` is ``L`` polyphase branches of ``T`` taps
(``phases``, an ``(L, T)`` float64 array). Phase ``p`` of input step ``n`` gives
oversampled sample ``L n + p``:

    y[L n + p] = sum_{k=0}^{T-1} phases[p, k] * x[n - k]

where samples before the stream's start are zero, and samples before the
start of one call come from the explicit ``state`` (the last ``T - 1`` input
samples). ``y[L n + p]`` estimates the continuous signal at input time
``n - delay + p / L``.

**The default, :func:`interpolator`.** The BS.1770-4 example filter
(48 taps, 4x) reads inter-sample peaks up to ~0.15 dB low on real recordings,
and 4x sampling alone misses up to ``1 - cos(pi f / (4 fs))`` of a peak at
frequency ``f`` (0.55 dB at 0.45 fs). :func:`interpolator` samples at
``L = 4 ceil(max(8, 192000 / fs) / 4)``: at least 8x (worst sampling loss 0.14 dB
at 0.45 fs, 0.035 dB at 0.225 fs; on real content, whose energy near Nyquist is
small, far less), at least 192 kHz (the rate ffmpeg's ``ebur128`` meter
upsamples to, so low rates are not sampled more coarsely than by that meter:
16 kHz -> 12x, 22.05 kHz -> 12x, 44.1/48/96 kHz -> 8x), and a multiple of 4 (the
compiled kernels work in 4-wide vectors; the extra cost is for low rates, which
have few samples). The phases are a Kaiser-windowed sinc (cutoff at Nyquist,
``beta`` for 76 dB) of ``T = 48`` taps per phase, designed in float64 with numpy
at first use: for sinusoids up to 0.45 fs (0.9 of Nyquist) each phase's
fractional-delay error is at most 3.8e-4 of the amplitude (0.0033 dB; 0.0017 dB
up to 0.4 fs). Phase 0 is the identity (the input samples themselves, exactly),
each other phase is normalized to unit DC gain. The delay is ``T / 2 = 24``
input samples.

Everything is computed in float64 in a fixed order (each value summed in tap
order, no fused multiply-add; no reductions whose blocking depends on the
length), so chunked calls carrying the state give bit-identical oversampled
values and peaks to one call on the whole signal, on any device. CPU arrays and
tensors run the compiled core (``true_peak`` and ``truepeak_oversample`` of
:mod:`fxcli.dsp.native`, ``csrc/truepeak.cpp``: the same products and sums, bit
for bit; rows and long stretches of a row over :func:`fxcli.dsp.native.threads`
threads; the peak skips blocks that provably cannot exceed it); other devices
run the same arithmetic as tensor operations there (no host copy).
:func:`true_peak_array` needs no torch.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from fxcli.dsp.native import core, threads

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = [
    "PHASES",
    "HISTORY",
    "DELAY_OVERSAMPLED",
    "Interpolator",
    "BS1770",
    "TAPS_PER_PHASE",
    "MIN_RATE_HZ",
    "oversampling_factor",
    "interpolator",
    "oversample",
    "oversample4",
    "true_peak",
    "true_peak_array",
    "init_state",
]

#: ITU-R BS.1770-4 Annex 2 interpolation filter: 4 phases x 12 taps, as published.
PHASES: tuple[tuple[float, ...], ...] = (
    (
        0.0017089843750,
        0.0109863281250,
        -0.0196533203125,
        0.0332031250000,
        -0.0594482421875,
        0.1373291015625,
        0.9721679687500,
        -0.1022949218750,
        0.0476074218750,
        -0.0266113281250,
        0.0148925781250,
        -0.0083007812500,
    ),
    (
        -0.0291748046875,
        0.0292968750000,
        -0.0517578125000,
        0.0891113281250,
        -0.1665039062500,
        0.4650878906250,
        0.7797851562500,
        -0.2003173828125,
        0.1015625000000,
        -0.0582275390625,
        0.0330810546875,
        -0.0189208984375,
    ),
    (
        -0.0189208984375,
        0.0330810546875,
        -0.0582275390625,
        0.1015625000000,
        -0.2003173828125,
        0.7797851562500,
        0.4650878906250,
        -0.1665039062500,
        0.0891113281250,
        -0.0517578125000,
        0.0292968750000,
        -0.0291748046875,
    ),
    (
        -0.0083007812500,
        0.0148925781250,
        -0.0266113281250,
        0.0476074218750,
        -0.1022949218750,
        0.9721679687500,
        0.1373291015625,
        -0.0594482421875,
        0.0332031250000,
        -0.0196533203125,
        0.0109863281250,
        0.0017089843750,
    ),
)

#: Input samples of history each call of the BS.1770-4 filter needs (taps - 1).
HISTORY = 11
#: Group delay of the BS.1770-4 filter's output, in oversampled samples (5.875 input samples).
DELAY_OVERSAMPLED = 23.5
#: Taps per phase of the default interpolator.
TAPS_PER_PHASE = 48
#: The default interpolator's oversampled rate is at least this (Hz).
MIN_RATE_HZ = 192_000.0
#: Kaiser window stopband attenuation of the default interpolator (dB).
_KAISER_DB = 76.0


class Interpolator(NamedTuple):
    """A polyphase true-peak interpolator.

    ``name``: ``"sinc"`` (:func:`interpolator`) or ``"bs1770"`` (:data:`BS1770`);
    ``factor``: oversampling factor ``L``; ``phases``: ``(L, T)`` float64 taps
    (read-only); ``history``: ``T - 1``, the input samples of state each call
    carries; ``delay``: input samples by which the oversampled signal lags.
    """

    name: str
    factor: int
    phases: np.ndarray
    history: int
    delay: float


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


#: ITU-R BS.1770-4 Annex 2: 4x, the published 48-tap filter (:data:`PHASES`). Its
#: figure is the Recommendation's exact one; it reads fast peaks low (see above).
BS1770 = Interpolator("bs1770", 4, _frozen(np.array(PHASES)), HISTORY, DELAY_OVERSAMPLED / 4)


def oversampling_factor(fs: float) -> int:
    """``L = 4 ceil(max(8, 192000 / fs) / 4)``: 8 at 44.1-96 kHz, 12 at 16-22.05 kHz."""
    if not (fs > 0 and math.isfinite(fs)):
        raise ValueError(f"sample rate must be positive, got {fs}")
    return 4 * math.ceil(max(8.0, MIN_RATE_HZ / fs) / 4.0 - 1e-9)


def kaiser_sinc_phases(factor: int, taps: int, atten_db: float = _KAISER_DB) -> np.ndarray:
    """``(factor, taps)`` polyphase taps of a Kaiser-windowed sinc interpolator
    (cutoff at the input's Nyquist, float64, numpy only): ``phases[p, k] =
    h[p + factor k]``, ``h[m] = sinc((m - c) / factor) w(m - c)``, ``c = factor taps
    / 2``; phase 0 is exactly the unit impulse at ``k = taps / 2``, every phase is
    normalized to sum 1. ``taps`` must be even."""
    if taps % 2 or taps < 2 or factor < 1:
        raise ValueError("taps must be even and >= 2, factor >= 1")
    beta = 0.1102 * (atten_db - 8.7)  # Kaiser's formula, atten_db > 50
    c = factor * taps // 2
    m = np.arange(factor * taps, dtype=np.float64) - c
    w = np.i0(beta * np.sqrt(np.clip(1.0 - (m / c) ** 2, 0.0, None))) / np.i0(beta)
    h = np.sinc(m / factor) * w
    phases = h.reshape(taps, factor).T.copy()
    phases[0] = 0.0
    phases[0, taps // 2] = 1.0
    phases /= phases.sum(axis=1, keepdims=True)
    return phases


@functools.lru_cache(maxsize=16)
def _sinc_interpolator(factor: int) -> Interpolator:
    phases = _frozen(kaiser_sinc_phases(factor, TAPS_PER_PHASE))
    return Interpolator("sinc", factor, phases, TAPS_PER_PHASE - 1, TAPS_PER_PHASE / 2)


def interpolator(fs: float, method: str = "sinc") -> Interpolator:
    """The true-peak interpolator for sample rate ``fs`` (Hz): ``"sinc"`` (the
    default, see the module docstring) or ``"bs1770"`` (:data:`BS1770`)."""
    if method == "bs1770":
        return BS1770
    if method != "sinc":
        raise ValueError(f"true-peak method must be 'sinc' or 'bs1770', got {method!r}")
    return _sinc_interpolator(oversampling_factor(fs))


def init_state(
    batch_shape: tuple[int, ...],
    interp: Interpolator = BS1770,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Zero state (silence before the stream): ``(*batch_shape, interp.history)``
    float64 on ``device``."""
    import torch

    return torch.zeros((*batch_shape, interp.history), dtype=torch.float64, device=device)


def _history(x: Tensor, state: Tensor | None, interp: Interpolator) -> Tensor:
    import torch

    from fxcli.dsp.checks import check_signal

    check_signal(x)
    expected = (*x.shape[:-1], interp.history)
    if state is None:
        return init_state(tuple(x.shape[:-1]), interp, x.device)
    if tuple(state.shape) != expected:
        raise ValueError(
            f"state must have shape (*batch, {interp.history}) = {expected}, "
            f"got {tuple(state.shape)}"
        )
    return state.detach().to(device=x.device, dtype=torch.float64)


def oversample(x: Tensor, state: Tensor | None, interp: Interpolator) -> tuple[Tensor, Tensor]:
    """``L``x oversample ``x`` with ``interp`` (``L = interp.factor``).

    Args:
        x: Signal ``(*batch, n)``, float32 or float64, any device.
        state: The last ``interp.history`` input samples before ``x`` (oldest
            first), ``(*batch, history)`` float64, or ``None`` for silence. Never
            modified.
        interp: :func:`interpolator` or :data:`BS1770`.

    Returns:
        ``(y, new_state)``: ``y`` is ``(*batch, L n)`` float64 on ``x``'s device,
        ``y[..., L i + p]`` = phase ``p`` at input index ``i``; it lags the input
        by ``interp.delay`` input samples. ``new_state`` is ``(*batch, history)``
        float64 (exact copies of the last samples of ``concat(state, x)``).
    """
    import torch

    hist = _history(x, state, interp)
    n = x.shape[-1]
    big_l, h = interp.factor, interp.history
    if x.device.type == "cpu" and n > 0:
        x_np = x.detach().numpy()
        x2, h2 = _rows_of(x_np, hist.numpy(), h)
        out = np.empty((x2.shape[0], big_l * n), dtype=np.float64)
        core.truepeak_oversample(x2, h2, out, interp.phases, threads())
        y_cpu = torch.from_numpy(out).reshape(*x.shape[:-1], big_l * n)
        return y_cpu, torch.from_numpy(_new_state(x_np, hist.numpy(), h))
    xs = torch.cat([hist, x.detach().to(torch.float64)], dim=-1)
    new_state = xs[..., n:].clone()
    phases = []
    for taps in interp.phases.tolist():
        # tap k multiplies x[i - k], i.e. xs[h + i - k]; summed in tap order
        acc = xs[..., h : h + n] * taps[0]
        for k in range(1, len(taps)):
            acc = acc + xs[..., h - k : h - k + n] * taps[k]
        phases.append(acc)
    y = torch.stack(phases, dim=-1).reshape(*x.shape[:-1], big_l * n)
    return y, new_state


def oversample4(x: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
    """:func:`oversample` with :data:`BS1770` (4x, state ``(*batch, 11)``)."""
    return oversample(x, state, BS1770)


def true_peak(x: Tensor, state: Tensor | None, interp: Interpolator) -> tuple[Tensor, Tensor]:
    """True peak of ``x`` (linear, not dB): max of ``|oversample(x)|`` and ``|x|``.

    Args:
        x: Signal ``(*batch, n)``, float32 or float64, any device.
        state: As for :func:`oversample` (``None`` = silence before ``x``).
        interp: :func:`interpolator` (``interpolator(fs)``) or :data:`BS1770`.

    Returns:
        ``(peak, new_state)``: ``peak`` is ``(*batch,)`` float64 on ``x``'s device
        (0 for ``n == 0``); the peak of the interpolated values produced during
        this call (which include the ringing of samples in ``state``). Chunked
        calls carrying the state give the same maximum as one call. Convert with
        ``20 * log10(peak)`` for dBTP.
    """
    import torch

    if x.device.type == "cpu" and x.shape[-1] > 0:
        hist = _history(x, state, interp)
        peak_np, state_np = true_peak_array(x.detach().numpy(), hist.numpy(), interp)
        return torch.from_numpy(peak_np), torch.from_numpy(state_np)
    y, new_state = oversample(x, state, interp)
    if x.shape[-1] == 0:
        return torch.zeros(x.shape[:-1], dtype=torch.float64, device=x.device), new_state
    peak = torch.maximum(y.abs().amax(dim=-1), x.detach().to(torch.float64).abs().amax(dim=-1))
    return peak, new_state


def true_peak_array(
    x: np.ndarray, state: np.ndarray | None, interp: Interpolator
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`true_peak` on numpy arrays (no torch): ``x`` ``(*batch, n)`` float32 or
    float64, ``state`` ``(*batch, interp.history)`` float64 or ``None``; returns
    ``(peak (*batch,), new_state)`` float64, bit-identical to :func:`true_peak` on a
    CPU tensor."""
    if x.ndim < 1:
        raise ValueError("x must have at least one dimension (the last one is time)")
    batch, n = x.shape[:-1], x.shape[-1]
    h = interp.history
    hist = np.zeros((*batch, h)) if state is None else np.asarray(state, np.float64)
    if hist.shape != (*batch, h):
        raise ValueError(f"state must have shape (*batch, {h}) = {(*batch, h)}, got {hist.shape}")
    new_state = _new_state(x, hist, h)
    if n == 0:
        return np.zeros(batch), new_state
    x2, h2 = _rows_of(x, hist, h)
    peaks = np.empty(x2.shape[0], dtype=np.float64)
    core.true_peak(x2, h2, peaks, interp.phases, threads())
    return peaks.reshape(batch), new_state


def _rows_of(x: np.ndarray, hist: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` as C-contiguous (rows, n) float32/float64 and ``hist`` as (rows, h)
    float64, the layouts the compiled core takes."""
    x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
    if x2.dtype not in (np.float32, np.float64):
        x2 = x2.astype(np.float64)
    h2 = np.ascontiguousarray(hist.reshape(-1, h), dtype=np.float64)
    return x2, h2


def _new_state(x: np.ndarray, hist: np.ndarray, h: int) -> np.ndarray:
    """The last ``h`` samples of ``concat(hist, x)`` (float64, C-contiguous)."""
    n = x.shape[-1]
    if n >= h:
        return x[..., n - h :].astype(np.float64, order="C")  # a copy, never a view
    return np.concatenate([hist[..., n:], x.astype(np.float64)], axis=-1)
