"""The public biquad-cascade functions (torch): :func:`sosfilt` and re-exports.

See :mod:`fxcli.dsp.iir` for the algorithms and modules."""

from __future__ import annotations

import numpy as np
import torch

from fxcli.dsp.checks import check_signal, needs_grad
from fxcli.dsp.iir.autograd import SosfiltFunction, sosfilt_autograd
from fxcli.dsp.iir.dispatch import check_backend, forward
from fxcli.dsp.iir.timevarying import TvSosfiltFunction, tvsosfilt

__all__ = [
    "SosfiltFunction",
    "TvSosfiltFunction",
    "sosfilt",
    "sosfilt_autograd",
    "tvsosfilt",
]


def sosfilt(
    x: torch.Tensor,
    sos: torch.Tensor,
    zi: torch.Tensor | None = None,
    *,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Filter ``x`` along its last axis with a cascade of second-order sections.

    Equivalent to ``scipy.signal.sosfilt(sos, x, axis=-1, zi=zi)`` (which
    always returns the final state; ``zi=None`` means zero initial state).

    Args:
        x: Signal, shape ``(*batch, time)`` (any number of batch dims, including
            none), float32 or float64, on any device (CPU or CUDA).
        sos: Coefficients, shape ``(S, 6)``, rows ``[b0, b1, b2, a0, a1, a2]``
            like SciPy. Any real dtype/device; used as float64 on ``x``'s
            device. Rows with ``a0 != 1`` are normalized by ``a0``. Non-finite
            values, ``a0 == 0`` or a wrong shape raise :class:`ValueError`.
            Stability is not checked.
        zi: Initial state, shape ``(S, *batch, 2)`` (for 1-D ``x``: ``(S, 2)``),
            or ``None`` for zeros. Same layout and meaning as SciPy's ``zi``:
            ``zi[s, ..., 0]`` and ``zi[s, ..., 1]`` are the two transposed
            direct form II delay states of section ``s``, so values from
            :func:`scipy.signal.sosfilt_zi` (times the first sample) work. Used
            as float64 on ``x``'s device; never modified.
        backend: ``"cpu"`` (CPU tensors only: the fused cascade of the compiled
            core, rows threaded over :func:`fxcli.dsp.native.threads` threads,
            SciPy's arithmetic; ``"numba"``, its former name, still works with a
            DeprecationWarning), ``"torch"``
            (time-parallel block algorithm, any device; matrices cached per
            (sos, L, device), a new ``sos`` costs ~1-100 ms of set-up on the
            CPU), ``"triton"`` (the same block algorithm as Triton kernels:
            CUDA, or CPU under ``TRITON_INTERPRET=1``; see
            :mod:`fxcli.dsp.iir.triton`) or ``"auto"`` (cpu for CPU tensors;
            Triton for CUDA tensors when triton is installed, else torch).

    Returns:
        ``(y, zf)``: ``y`` has ``x``'s shape, dtype and device; ``zf`` is the
        final state, shape ``(S, *batch, 2)``, float64, on ``x``'s device, in
        the same layout as ``zi`` (pass it as the next chunk's ``zi``). For
        ``time == 0``, ``y`` is empty and ``zf`` equals ``zi`` (zeros if None).

    All arithmetic, coefficients and states are float64, also for float32 ``x``
    (float32 in and out, float64 inside).

    Gradients: when autograd is recording and ``x``, ``sos`` or ``zi`` requires
    grad, the call goes through :class:`fxcli.dsp.iir.SosfiltFunction`
    (same forward numbers; backward w.r.t. ``x``, ``sos`` and ``zi`` from
    ``y`` and ``zf``, on the compiled kernels on CPU, differentiable again for
    double backward; see :mod:`fxcli.dsp.iir.autograd`). Otherwise it runs without
    autograd.

    Time-varying coefficients: ``sos`` of shape ``(..., time, S, 6)`` (one
    cascade per sample, batch dims broadcast against ``x``'s) is handled by
    :func:`fxcli.dsp.iir.tvsosfilt` (differentiable too).

    Example (chunked calls carrying the state equal one call, bit for bit on CPU):

    >>> import torch
    >>> from scipy import signal
    >>> from fxcli.dsp import sosfilt
    >>> sos = torch.tensor(signal.butter(4, 1000, fs=48000, output="sos"))
    >>> x = torch.randn(2, 4800, dtype=torch.float64)
    >>> y, zf = sosfilt(x, sos)
    >>> y1, z = sosfilt(x[:, :1000], sos)
    >>> y2, z = sosfilt(x[:, 1000:], sos, z)
    >>> torch.equal(torch.cat([y1, y2], dim=-1), y)
    True
    >>> bool(torch.allclose(y, torch.from_numpy(signal.sosfilt(sos.numpy(), x.numpy()))))
    True
    """
    check_signal(x)
    backend = check_backend(backend)
    if getattr(sos, "ndim", np.ndim(sos)) >= 3:
        return tvsosfilt(x, sos, zi, backend=backend)
    if needs_grad(x, sos, zi):
        return sosfilt_autograd(x, sos, zi, backend)
    return forward(x, sos, zi, backend)
