"""The numpy FIR path as it was before the compiled kernel (tests only; issue 15):
overlap-save with numpy's FFT (pocketfft) on the frames of
:func:`fxcli.dsp.fir.cpu.plan`, or a banded Toeplitz GEMM per frame for "direct",
float64 arithmetic, output rounded once to the input's dtype. The compiled
``core.firfilt`` must agree with it to float64 rounding (tests/test_kernels.py).
"""

from __future__ import annotations

import math

import numpy as np

from fxcli.dsp.fir.cpu import AUTO_FFT_MIN_TAPS, plan

#: float64 elements per slab of frames (cache-resident)
SLAB = 1 << 18


def firfilt_np_reference(
    x: np.ndarray, taps: np.ndarray, zi: np.ndarray | None, method: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """The old :func:`fxcli.dsp.fir.cpu.firfilt_np`: ``x`` (*batch, n) float32/float64,
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
