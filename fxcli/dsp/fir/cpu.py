"""The FIR filter on numpy arrays (no torch): the torch-free CPU path's
:func:`firfilt_np`, and the frame plan shared with :mod:`fxcli.dsp.fir.dispatch`.

The same frames as the torch methods (:func:`plan`): "direct" is a banded Toeplitz GEMM
per frame of ``B + K - 1`` inputs (``B`` = :func:`direct_block`), "fft" overlap-save
with an FFT of :func:`fft_size` points (numpy's pocketfft; torch uses its own FFT, so
the two paths agree to float64 rounding, not bit for bit). float64 arithmetic, the
output rounded once to the input's dtype.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["AUTO_FFT_MIN_TAPS", "direct_block", "fft_size", "firfilt_np", "plan"]

# "auto" uses the FFT from this many taps on. Measured on the 2-core AMD EPYC
# (Zen 3) dev VM, torch 2.13 CPU, one thread, 8 ch x 2^20 float32 samples,
# Msamples/s direct vs fft: K=16 64 vs 52, K=32 62 vs 52, K=64 50 vs 45,
# K=72 43 vs 54, K=96 38 vs 70. The crossover sits where the direct method's
# frame grows from 64 to 128 outputs (K = 65).
AUTO_FFT_MIN_TAPS = 65

#: float64 elements per slab of frames on the CPU (cache-resident)
SLAB = 1 << 18


def fft_size(k: int) -> int:
    """FFT length for K taps: next power of two >= 8 K, at least 256."""
    return max(256, 1 << math.ceil(math.log2(8 * k)))


def direct_block(k: int) -> int:
    """Outputs per frame of the direct method: next power of two >= K, at least 64."""
    return max(64, 1 << max(0, math.ceil(math.log2(k))))


def plan(method: str, k: int, n_t: int) -> tuple[int, int, int]:
    """(step, window, n_frames) for ``n_t`` outputs.

    Frame f reads ``full[f*step : f*step + window]`` and yields the outputs
    ``y[f*step : (f+1)*step]``, so ``full`` must hold
    ``(n_frames - 1) * step + window`` samples.
    """
    if method == "direct":
        step = direct_block(k)
        win = step + k - 1
    else:
        win = fft_size(k)
        step = win - (k - 1)
    return step, win, -(-n_t // step)


def firfilt_np(
    x: np.ndarray, taps: np.ndarray, zi: np.ndarray | None, method: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fxcli.dsp.firfilt` for numpy arrays: ``x`` (*batch, n) float32/float64,
    ``taps`` (K,), ``zi`` (*batch, K-1) float64 input history or ``None`` (zeros;
    never modified). Returns ``(y, zf)``: ``y`` in ``x``'s shape and dtype, ``zf`` the
    last K-1 samples of ``concat(zi, x)`` (float64, exact copies). CPU only, no torch."""
    h = np.asarray(taps, dtype=np.float64)
    if h.ndim != 1 or h.shape[0] < 1:
        raise ValueError(f"taps must have shape (K,) with K >= 1, got {tuple(h.shape)}")
    if not np.isfinite(h).all():
        raise ValueError("taps must be finite")
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"method must be auto, direct or fft on numpy arrays, got {method!r}")
    k = h.shape[0]
    batch, n_t = x.shape[:-1], x.shape[-1]
    rows = math.prod(batch)
    if zi is None:
        hist = np.zeros((rows, k - 1))
    else:
        if tuple(zi.shape) != (*batch, k - 1):
            raise ValueError(f"zi must have shape {(*batch, k - 1)}, got {tuple(zi.shape)}")
        hist = np.asarray(zi, dtype=np.float64).reshape(rows, k - 1)
    x2 = x.reshape(rows, n_t)
    full0 = np.concatenate((hist, x2.astype(np.float64)), axis=1)
    zf = full0[:, full0.shape[1] - (k - 1) :].copy().reshape(*batch, k - 1)
    if n_t == 0 or rows == 0 or k == 1:
        return (x2.astype(np.float64) * h[0]).astype(x.dtype).reshape(x.shape), zf
    if method == "auto":
        method = "direct" if k < AUTO_FFT_MIN_TAPS else "fft"
    step, win, n_frames = plan(method, k, n_t)
    full = np.zeros((rows, (n_frames - 1) * step + win))
    full[:, : full0.shape[1]] = full0
    y = np.empty((rows, n_t), dtype=x.dtype)
    if method == "direct":
        i = np.arange(win)[:, None]
        d = i - np.arange(step)[None, :]
        w = np.where((d >= 0) & (d < k), h[::-1][np.clip(d, 0, k - 1)], 0.0)
    else:
        hf = np.fft.rfft(h, n=win)
    per = max(1, SLAB // (rows * win))
    for f0 in range(0, n_frames, per):
        f1 = min(n_frames, f0 + per)
        seg = full[:, f0 * step : (f1 - 1) * step + win]
        frames = np.lib.stride_tricks.sliding_window_view(seg, win, axis=-1)[:, ::step]
        if method == "direct":
            out = frames @ w
        else:
            out = np.fft.irfft(np.fft.rfft(frames, axis=-1) * hf, n=win, axis=-1)[..., k - 1 :]
        t0, t1 = f0 * step, min(n_t, f1 * step)
        y[:, t0:t1] = out.reshape(rows, (f1 - f0) * step)[:, : t1 - t0]
    return y.reshape(x.shape), zf
