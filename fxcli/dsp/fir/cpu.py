"""The FIR filter on numpy arrays (no torch): the torch-free CPU path's
:func:`firfilt_np`, which runs the compiled kernel ``core.firfilt`` (csrc/fir.cpp),
and the frame plan shared with :mod:`fxcli.dsp.fir.dispatch`.

Methods: "fft" is overlap-save with the frames of :func:`plan` (FFT of
:func:`fft_size` points, pocketfft vendored in the core; torch uses its own FFT on
CUDA, so the paths agree to float64 rounding, not bit for bit), "direct" explicit
K-term sums. float64 arithmetic, the output rounded once to the input's dtype; the
kernel releases the GIL and spreads rows and frames over :func:`threads` threads.
"""

from __future__ import annotations

import math

import numpy as np

from fxcli.dsp.native import core, threads

__all__ = [
    "AUTO_FFT_MIN_TAPS",
    "NATIVE_FFT_MIN_TAPS",
    "direct_block",
    "fft_size",
    "firfilt_np",
    "plan",
]

# "auto" uses the FFT from this many taps on. Measured on the 2-core AMD EPYC
# (Zen 3) dev VM, torch 2.13 CPU, one thread, 8 ch x 2^20 float32 samples,
# Msamples/s direct vs fft: K=16 64 vs 52, K=32 62 vs 52, K=64 50 vs 45,
# K=72 43 vs 54, K=96 38 vs 70. The crossover sits where the direct method's
# frame grows from 64 to 128 outputs (K = 65).
AUTO_FFT_MIN_TAPS = 65

# "auto" in the compiled kernel (firfilt_np, and torch CPU tensors without autograd)
# uses the FFT from this many taps on. Measured on the 2-core dev VM (AMD EPYC, AVX2),
# one thread, 8 ch x 2^18 float32 samples, Msamples/s direct vs fft (plan's frames):
# K=2 670 vs 440, K=4 390 vs 440, K=8 305 vs 425, K=16 140 vs 415, K=32 63 vs 400.
# Without AVX2 (the 2-frame SSE2 loop) the FFT is ~1.5x slower and the crossover
# sits near K = 12.
NATIVE_FFT_MIN_TAPS = 8


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
    last K-1 samples of ``concat(zi, x)`` (float64, exact copies). CPU only, no torch.

    ``method``: "fft" (overlap-save, :func:`plan`'s frames), "direct" (explicit K-term
    sums) or "auto" (direct below :data:`NATIVE_FFT_MIN_TAPS` taps, else fft). A
    non-finite sample spoils the outputs whose sums include it: for "direct" the K
    outputs from it on (as ``scipy.signal.lfilter``), for "fft" every output of the
    (one or two) frames that read it."""
    h = np.ascontiguousarray(taps, dtype=np.float64)
    if h.ndim != 1 or h.shape[0] < 1:
        raise ValueError(f"taps must have shape (K,) with K >= 1, got {tuple(h.shape)}")
    if not np.isfinite(h).all():
        raise ValueError("taps must be finite")
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"method must be auto, direct or fft on numpy arrays, got {method!r}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    k = h.shape[0]
    batch, n_t = x.shape[:-1], x.shape[-1]
    rows = math.prod(batch)
    if zi is None:
        hist = np.zeros((rows, k - 1))
    else:
        if tuple(zi.shape) != (*batch, k - 1):
            raise ValueError(f"zi must have shape {(*batch, k - 1)}, got {tuple(zi.shape)}")
        hist = np.ascontiguousarray(np.asarray(zi, dtype=np.float64).reshape(rows, k - 1))
    x2 = np.ascontiguousarray(x.reshape(rows, n_t))
    if n_t >= k - 1:
        zf = x2[:, n_t - (k - 1) :].astype(np.float64)
    else:
        zf = np.concatenate((hist[:, n_t:], x2), axis=1, dtype=np.float64)
    if method == "auto":
        method = "direct" if k < NATIVE_FFT_MIN_TAPS else "fft"
    y = np.empty((rows, n_t), dtype=x.dtype)
    core.firfilt(x2, y, h, hist, fft_size(k) if method == "fft" else 0, threads())
    return y.reshape(x.shape), zf.reshape(*batch, k - 1)
