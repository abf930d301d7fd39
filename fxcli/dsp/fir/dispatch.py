"""The forward FIR filter without autograd. CPU tensors go to the compiled kernel
(:func:`fxcli.dsp.fir.cpu.firfilt_np`: overlap-save FFT or direct sums, GIL released,
:func:`fxcli.dsp.native.threads` threads); other devices use direct (banded Toeplitz
GEMM) or overlap-save FFT in torch, and float32 CUDA signals with at most
:data:`AUTO_TRITON_MAX_TAPS` taps the Triton kernel of :mod:`fxcli.dsp.fir.triton`.
The semantics are :func:`fxcli.dsp.firfilt`'s.
"""

from __future__ import annotations

import math

import torch

from fxcli.dsp.fir.args import check_taps, history
from fxcli.dsp.fir.cpu import AUTO_FFT_MIN_TAPS, firfilt_np
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
    if device.type == "cpu":
        # issue 15: the compiled kernel; measured on the 2-core dev VM, K = 511,
        # 8 ch x 60 s float32: ~0.15-0.25 s against ~1-3 s for torch.fft frames
        x_np = x.detach().reshape(rows, n_t).contiguous().numpy()
        y_np, zf_np = firfilt_np(x_np, h.numpy(), hist.numpy(), method)
        y_t, zf_t = torch.from_numpy(y_np), torch.from_numpy(zf_np)
        return y_t.reshape(x.shape), zf_t.reshape(hist_shape)
    if method == "auto":
        method = "direct" if k < AUTO_FFT_MIN_TAPS else "fft"
    with torch.no_grad():
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
