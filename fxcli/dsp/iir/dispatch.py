"""The forward biquad cascade without autograd: picks the backend and runs it."""

from __future__ import annotations

import math
import warnings

import torch

from fxcli.dsp.iir.args import sos_to_numpy, zi_rows
from fxcli.dsp.iir.cpu import sosfilt_cpu
from fxcli.dsp.iir.scan import sosfilt_scan

__all__ = ["BACKENDS", "check_backend", "forward"]

BACKENDS = ("auto", "cpu", "torch", "triton")


def check_backend(backend: str) -> str:
    """``backend`` checked against :data:`BACKENDS`; ``"numba"`` (the name of the CPU
    kernel before it was compiled ahead of time) is taken as ``"cpu"`` with a
    ``DeprecationWarning`` (same algorithm, same bits)."""
    if backend == "numba":
        warnings.warn(
            'backend="numba" is now backend="cpu" (the compiled CPU kernel, same results)',
            DeprecationWarning,
            stacklevel=3,
        )
        return "cpu"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def forward(
    x: torch.Tensor, sos: torch.Tensor, zi: torch.Tensor | None, backend: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`fxcli.dsp.sosfilt` without autograd (``x`` already checked, constant ``sos``)."""
    backend = check_backend(backend)
    if backend == "triton" or (backend == "auto" and x.device.type == "cuda"):
        from fxcli.dsp.iir import triton as sos_triton  # lazy: optional dependency

        if backend == "triton" or sos_triton.available():
            return sos_triton.sosfilt_triton(x, sos, zi)
    sos_np = sos_to_numpy(sos)
    n_sec = sos_np.shape[0]
    batch = tuple(x.shape[:-1])
    n_t = x.shape[-1]
    rows = math.prod(batch)
    device = x.device
    z = zi_rows(zi, n_sec, batch, rows, device)
    if backend == "auto":
        backend = "cpu" if device.type == "cpu" else "torch"
    if backend == "cpu" and device.type != "cpu":
        raise ValueError(f'backend="cpu" needs a CPU tensor, x is on {device}')
    zf_shape = (n_sec, *batch, 2)
    if n_t == 0 or rows == 0:
        return x.detach().clone(), z.reshape(zf_shape)
    x2 = x.detach().reshape(rows, n_t)
    if backend == "cpu":
        y, zf = sosfilt_cpu(x2, sos_np, z)
    else:
        with torch.no_grad():
            y, zf = sosfilt_scan(x2, sos_np, z)
    return y.reshape(x.shape), zf.reshape(zf_shape)
