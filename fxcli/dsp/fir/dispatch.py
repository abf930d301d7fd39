"""The forward FIR filter without autograd: direct (banded Toeplitz GEMM) or
overlap-save FFT (on CPU the frames are assembled by NumPy in small reused buffers,
see :func:`_fft_cpu`); float32 CUDA signals with at most
:data:`AUTO_TRITON_MAX_TAPS` taps take the Triton kernel of :mod:`fxcli.dsp.fir.triton`.
The semantics are :func:`fxcli.dsp.firfilt`'s.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fxcli.dsp.fir.args import check_taps, history
from fxcli.dsp.fir.cpu import AUTO_FFT_MIN_TAPS
from fxcli.dsp.fir.cpu import plan as _plan

__all__ = ["AUTO_FFT_MIN_TAPS", "AUTO_TRITON_MAX_TAPS", "forward"]


# "auto" on float32 CUDA input uses the Triton block-Toeplitz kernel up to this many
# taps. Measured on an H200 (2026-12-04, 12 ch x 600 s float32, K = 101): 3.7 ms per
# call against 13.1 ms for the float64 FFT path; the kernel's work grows with
# (64 + K) per output while the FFT's barely does, so by that count the two meet
# near K = 500: above 256 (long fused FIRs, reverb-like taps) the FFT stays.
AUTO_TRITON_MAX_TAPS = 256


def _auto_triton(x: torch.Tensor, taps: object) -> bool:
    """Whether ``method="auto"`` takes the Triton path: float32 CUDA input, at most
    :data:`AUTO_TRITON_MAX_TAPS` taps, triton present."""
    if not (isinstance(x, torch.Tensor) and x.is_cuda and x.dtype == torch.float32):
        return False
    if int(torch.as_tensor(taps).shape[-1]) > AUTO_TRITON_MAX_TAPS:
        return False
    from fxcli.dsp.fir import triton as fir_triton  # lazy: optional dependency

    return fir_triton.available()


def _slab_elements(device: torch.device) -> int:
    """float64 elements per slab of frames: small on CPU (cache-resident, and no
    page-fault churn from fresh large allocations), large on GPUs."""
    return 1 << 18 if device.type == "cpu" else 1 << 24


def _fft_cpu(
    x: np.ndarray, hist: np.ndarray, h: torch.Tensor, y: np.ndarray, slab: int = 1 << 18
) -> None:
    """Overlap-save on the CPU, float64 throughout; the same frames as :func:`_convolve`.

    ``x`` (rows, n) float32/float64, ``hist`` (rows, K-1) float64, ``y`` (rows, n)
    receives ``y[:, m] = sum_k h[k] * full[:, m + K-1 - k]`` with
    ``full = concat(hist, x, zeros)``. Each slab of frames is copied by NumPy
    (strided copies in NumPy are ~10x faster than torch's ``unfold`` copies here)
    into one reused cache-resident float64 buffer, straight from ``x`` for
    interior slabs (only the first and last slab, which need the history or the
    zero padding, go through a second small buffer), so there is no full-length
    float64 copy of the signal; the slab is transformed as one contiguous batch
    by ``torch.fft`` (MKL on x86-64 builds: measured ~1.2x faster than pocketfft
    with 2 workers), and the outputs are written to ``y`` in one strided copy.
    Measured on the 2-core dev VM, K = 511, 8 ch x 60 s float32: ~1.8x the
    throughput of the ``unfold`` path of :func:`_convolve`. Same frames
    (:func:`_plan`) as that path, so the results agree to rounding.
    """
    rows, n = y.shape
    k = h.shape[0]
    step, win, n_frames = _plan("fft", k, n)
    hf = torch.fft.rfft(h, n=win)
    per = max(1, min(n_frames, slab // (rows * win)))
    buf = np.empty((rows, (per - 1) * step + win), dtype=np.float64)
    frames = np.empty((rows, per, win), dtype=np.float64)
    for f0 in range(0, n_frames, per):
        f1 = min(n_frames, f0 + per)
        t0, t1 = f0 * step, min(n, f1 * step)
        length = (f1 - f0 - 1) * step + win
        a = t0 - (k - 1)  # full[t0 + j] = x[a + j]
        if a >= 0 and a + length <= n:  # interior slab: frames straight from x
            b = x[:, a : a + length]
        else:  # first / last slab: history and zero padding through buf
            b = buf[:, :length]
            lo = max(0, -a)
            if lo:
                b[:, :lo] = hist[:, k - 1 - lo :]
            e = max(lo, min(length, n - a))
            b[:, lo:e] = x[:, a + lo : a + e]
            b[:, e:] = 0.0
        fr = frames[:, : f1 - f0]
        np.copyto(fr, np.lib.stride_tricks.sliding_window_view(b, win, axis=-1)[:, ::step])
        spec = torch.fft.rfft(torch.from_numpy(fr), dim=-1)
        spec *= hf
        out = torch.fft.irfft(spec, n=win, dim=-1).numpy()[..., k - 1 :]
        if t1 - t0 == (f1 - f0) * step:  # whole frames: one strided copy, no reshape copy
            y[:, t0:t1].reshape(rows, f1 - f0, step)[...] = out
        else:
            y[:, t0:t1] = out.reshape(rows, (f1 - f0) * step)[:, : t1 - t0]


def _direct_matrix(h: torch.Tensor, step: int, win: int) -> torch.Tensor:
    """Banded Toeplitz W (win, step): W[i, j] = h[K-1-(i-j)] for 0 <= i-j < K, else 0."""
    k = h.shape[0]
    i = torch.arange(win, device=h.device)[:, None]
    j = torch.arange(step, device=h.device)[None, :]
    d = i - j
    return torch.where((d >= 0) & (d < k), h.flip(0)[d.clamp(0, k - 1)], h.new_zeros(()))


def _convolve(full: torch.Tensor, h: torch.Tensor, y: torch.Tensor, method: str) -> None:
    """``y[:, n] = sum_k h[k] * full[:, n + K-1 - k]`` for every ``n < y.shape[1]``.

    ``full`` (rows, >= needed length) float64 is the history, then the signal,
    then zero padding; ``y`` (rows, n_t), float32 or float64, receives the result.

    "direct": direct-form convolution (every output an explicit sum of the K
    products, no transform) evaluated as a banded-Toeplitz GEMM ``frames @ W``
    with B = _direct_block(K) outputs per frame of B + K - 1 inputs. Used instead
    of ``conv1d`` because float64 ``conv1d`` on CPU has no fast kernel (measured
    on the 2-core dev VM, 8 x 2^20 samples, K = 64: ~2 Msamples/s for conv1d vs
    ~35 for the GEMM form) and it builds a K x T im2col buffer.

    "fft": overlap-save. Frames of nfft = _fft_size(K) inputs advance by
    nfft - (K - 1); the last nfft - (K - 1) samples of each circular
    convolution are exact linear-convolution outputs.
    """
    rows, n_t = y.shape
    k = h.shape[0]
    step, win, n_frames = _plan(method, k, n_t)
    if method == "direct":
        w = _direct_matrix(h, step, win)
    else:
        hf = torch.fft.rfft(h, n=win)
    per_slab = max(1, _slab_elements(full.device) // (rows * win))
    for f0 in range(0, n_frames, per_slab):
        f1 = min(n_frames, f0 + per_slab)
        frames = full[:, f0 * step : (f1 - 1) * step + win].unfold(-1, win, step)
        if method == "direct":
            out = frames @ w
        else:
            spec = torch.fft.rfft(frames, dim=-1) * hf
            out = torch.fft.irfft(spec, n=win, dim=-1)[..., k - 1 :]
        t0, t1 = f0 * step, min(n_t, f1 * step)
        y[:, t0:t1] = out.reshape(rows, (f1 - f0) * step)[:, : t1 - t0]


def forward(
    x: torch.Tensor, taps: torch.Tensor, zi: torch.Tensor | None, method: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`fxcli.dsp.firfilt` without autograd."""
    if method == "triton" or (method == "auto" and _auto_triton(x, taps)):
        from fxcli.dsp.fir.triton import firfilt_triton  # lazy: optional dependency

        return firfilt_triton(x, taps, zi)
    h = check_taps(x, taps, method)
    k = h.shape[0]
    batch = tuple(x.shape[:-1])
    n_t = x.shape[-1]
    rows = math.prod(batch)
    device = x.device
    hist_shape = (*batch, k - 1)
    hist = history(zi, batch, k, device)
    if method == "auto":
        method = "direct" if k < AUTO_FFT_MIN_TAPS else "fft"
    with torch.no_grad():
        if method == "fft" and device.type == "cpu" and n_t and rows and k > 1:
            x_np = x.detach().reshape(rows, n_t).numpy()
            hist_np = hist.numpy()
            if n_t >= k - 1:
                zf = torch.from_numpy(x_np[:, n_t - (k - 1) :].astype(np.float64))
            else:
                zf = torch.from_numpy(np.concatenate((hist_np[:, n_t:], x_np), axis=1))
            y_np = np.empty((rows, n_t), dtype=x_np.dtype)
            _fft_cpu(x_np, hist_np, h, y_np)
            return torch.from_numpy(y_np).reshape(x.shape), zf.reshape(hist_shape)
        if n_t == 0 or rows == 0 or k == 1:
            x2 = x.detach().reshape(rows, n_t).to(torch.float64)
            full = torch.cat((hist, x2), dim=1)
            zf = full[:, full.shape[1] - (k - 1) :].clone().reshape(hist_shape)
            return (x2 * h[0]).to(x.dtype).reshape(x.shape), zf
        # one float64 buffer: history, signal, zero padding up to the last frame
        step, win, n_frames = _plan(method, k, n_t)
        need = (n_frames - 1) * step + win
        full = torch.empty((rows, need), dtype=torch.float64, device=device)
        full[:, : k - 1] = hist
        full[:, k - 1 : k - 1 + n_t] = x.detach().reshape(rows, n_t)
        full[:, k - 1 + n_t :] = 0.0
        zf = full[:, n_t : n_t + k - 1].clone().reshape(hist_shape)
        y = torch.empty((rows, n_t), dtype=x.dtype, device=device)
        _convolve(full, h, y, method)
    return y.reshape(x.shape), zf
