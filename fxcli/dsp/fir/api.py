"""Causal FIR filtering of torch tensors with exact streaming state.

:func:`firfilt` computes ``scipy.signal.lfilter(taps, [1.0], x, axis=-1)`` in
float64, either by direct convolution (explicit K-term sums) or by overlap-save
FFT convolution (on CPU tensors without autograd the compiled kernel of
:func:`fxcli.dsp.fir.cpu.firfilt_np`, elsewhere :func:`torch.fft.rfft`). The
state is the input history (the last ``K - 1`` input samples), so chunked calls
that carry ``zf`` into the next call's ``zi`` equal one call on the whole signal.
float32 signals on CUDA devices with at most :data:`AUTO_TRITON_MAX_TAPS` taps go
by default through the Triton kernel of :mod:`fxcli.dsp.fir.triton` (float32
arithmetic on tensor cores, 3xTF32) when triton is available.
"""

from __future__ import annotations

import torch

from fxcli.dsp.checks import needs_grad
from fxcli.dsp.fir.autograd import FirfiltFunction, firfilt_autograd
from fxcli.dsp.fir.dispatch import AUTO_FFT_MIN_TAPS, AUTO_TRITON_MAX_TAPS, forward

__all__ = [
    "AUTO_FFT_MIN_TAPS",
    "AUTO_TRITON_MAX_TAPS",
    "FirfiltFunction",
    "firfilt",
    "firfilt_autograd",
]


def firfilt(
    x: torch.Tensor,
    taps: torch.Tensor,
    zi: torch.Tensor | None = None,
    *,
    method: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal FIR filter along the last axis of ``x``.

    ``y[..., n] = sum_k taps[k] * x[..., n - k]``, where the samples before the
    start of this call come from ``zi``; equal (up to float64 rounding) to
    ``scipy.signal.lfilter(taps, [1.0], x, axis=-1)`` for ``zi=None``.

    Args:
        x: Signal, shape ``(*batch, time)`` (any number of batch dims,
            including none), float32 or float64, on any device.
        taps: Filter taps, shape ``(K,)``, ``K >= 1``; used as float64 on
            ``x``'s device. Non-finite taps raise :class:`ValueError`.
        zi: Input history, shape ``(*batch, K - 1)``: the last ``K - 1`` input
            samples before this call, oldest first (``zi[..., -1]`` is the
            sample just before ``x[..., 0]``). ``None`` means zeros. Used as
            float64 on ``x``'s device; never modified. This is not SciPy's
            ``lfilter`` ``zi`` (a filter state) but the raw input history.
        method: ``"direct"`` (explicit K-term sums: in the compiled kernel
            on CPU, evaluated as a banded Toeplitz GEMM elsewhere), ``"fft"``
            (overlap-save, FFT length the next power of two >= 8 K, at least
            256), ``"triton"``
            (:func:`fxcli.dsp.fir.triton.firfilt_triton`: float32 ``x`` on CUDA
            only, float32 arithmetic with 3xTF32 tensor-core products) or
            ``"auto"`` (triton for float32 CUDA ``x`` and ``K <=
            AUTO_TRITON_MAX_TAPS`` when triton is available, else direct for
            ``K < AUTO_FFT_MIN_TAPS`` (on CPU ``K <
            fxcli.dsp.fir.cpu.NATIVE_FFT_MIN_TAPS``), else fft).

    Returns:
        ``(y, zf)``: ``y`` has ``x``'s shape, dtype and device; ``zf`` is the
        new history, shape ``(*batch, K - 1)``, float64, on ``x``'s device: the
        last ``K - 1`` samples of ``concat(zi, x)`` along time (exact copies,
        so carrying it is lossless). For ``time == 0``, ``y`` is empty and
        ``zf`` equals ``zi``.

    Arithmetic is float64 also for float32 ``x`` (rounded to float32 once, at
    the end), except on the triton path (float32 arithmetic, error ~1e-7 for
    ``|x| <= 1`` and taps of moderate gain).

    Gradients: when autograd is recording and ``x``, ``taps`` or ``zi``
    requires grad, the call goes through
    :class:`fxcli.dsp.fir.FirfiltFunction` (same forward numbers;
    gradients w.r.t. ``x``, ``taps`` and ``zi`` from ``y`` and ``zf``: the
    input gradient is this function applied to the flipped output gradient,
    the tap gradient an FFT cross-correlation; differentiable again).
    Otherwise it runs without autograd. With gradients,
    ``method="triton"`` runs as ``"auto"`` (the forward still takes the triton
    path for float32 CUDA ``x``; the backward's float64 convolutions take the
    float64 paths).

    Example:

    >>> import torch
    >>> from scipy import signal
    >>> from fxcli.dsp import firfilt
    >>> taps = torch.tensor(signal.firwin(31, 1000, fs=48000))
    >>> x = torch.randn(1, 2000, dtype=torch.float64)
    >>> y, zf = firfilt(x, taps)
    >>> bool(torch.allclose(y, torch.from_numpy(signal.lfilter(taps.numpy(), 1, x.numpy()))))
    True
    >>> zf.shape  # the last K - 1 input samples: the next call's zi
    torch.Size([1, 30])
    """
    if needs_grad(x, taps, zi):
        return firfilt_autograd(x, taps, zi, "auto" if method == "triton" else method)
    return forward(x, taps, zi, method)
