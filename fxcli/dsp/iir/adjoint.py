"""The CPU backward (adjoint) of the biquad cascade, for :mod:`fxcli.dsp.iir.autograd`.

The kernels are ``sosfilt_ckpt`` and ``sos_backward`` of the compiled core
(``csrc/iir_adjoint.cpp``). The forward stores the cascade's state every
:data:`~fxcli.dsp.iir.cpu.BLOCK` samples (the arithmetic of the forward kernel,
bit for bit); the backward runs the adjoint recursion block by block, backwards in
time, from those states. See :mod:`fxcli.dsp.iir.autograd` for the maths.
"""

from __future__ import annotations

import numpy as np
import torch

from fxcli.dsp.iir.args import sos_to_numpy, zi_rows
from fxcli.dsp.iir.cpu import BLOCK
from fxcli.dsp.native import core, threads

__all__ = ["cpu_ok", "sos_backward_cpu", "sosfilt_ckpt"]


def cpu_ok(x: torch.Tensor, backend: str) -> bool:
    """Whether the compiled CPU backward serves ``x`` with ``backend``."""
    return x.device.type == "cpu" and backend in ("auto", "cpu", "numba")


def sosfilt_ckpt(
    x2: torch.Tensor, sos: torch.Tensor, zi: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """The compiled forward on (rows, n) CPU x (n > 0): y, zf (bit-identical to sosfilt's)
    and ck (rows, n_blocks, S, 2), the state at the start of every BLOCK samples."""
    rows, n_t = x2.shape
    sos_np = sos_to_numpy(sos)
    n_sec = sos_np.shape[0]
    z = zi_rows(zi, n_sec, (rows,), rows, x2.device)
    x_np = x2.detach().contiguous().numpy()
    y_np = np.empty(x_np.shape, dtype=x_np.dtype)
    ck = np.empty((rows, -(-n_t // BLOCK), n_sec, 2), dtype=np.float64)
    core.sosfilt_ckpt(x_np, y_np, sos_np, z.numpy(), ck, threads())
    return torch.from_numpy(y_np), z, ck


def sos_backward_cpu(
    x2: torch.Tensor,
    sos: torch.Tensor,
    z0: torch.Tensor | None,
    gy: torch.Tensor,
    gzf: torch.Tensor,
    ck: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The compiled backward on CPU: x2, gy (rows, n); z0, gzf (S, rows, 2) -> (gx, gsos (S, 6),
    gzi). ``ck`` from :func:`sosfilt_ckpt` (recomputed here when None)."""
    rows, n_t = x2.shape
    n_sec = sos.shape[0]
    if n_t == 0 or rows == 0:
        gsos0 = torch.zeros((n_sec, 6), dtype=torch.float64)
        return x2.new_zeros(x2.shape), gsos0, gzf.detach().to(torch.float64).clone()
    if ck is None:
        ck = sosfilt_ckpt(x2, sos, z0)[2]
    sos_np = np.ascontiguousarray(sos.detach().numpy(), dtype=np.float64)
    x_np = x2.detach().contiguous().numpy()
    gy_np = gy.detach().to(x2.dtype).contiguous().numpy()
    # a fresh copy: the kernel writes the zi gradient into it (never into grad_output)
    lam = np.array(gzf.detach().to(torch.float64).numpy().transpose(1, 0, 2), order="C")
    acc = np.zeros((rows, n_sec, 5), dtype=np.float64)
    gx_np = np.empty((rows, n_t), dtype=x_np.dtype)
    core.sos_backward(x_np, gy_np, gx_np, sos_np, ck, lam, acc, threads())
    s = acc.sum(axis=0)
    gsos = np.zeros((n_sec, 6), dtype=np.float64)
    gsos[:, 0:3] = s[:, 0:3]
    gsos[:, 4:6] = s[:, 3:5]
    gzi = torch.from_numpy(np.ascontiguousarray(lam.transpose(1, 0, 2)))
    return torch.from_numpy(gx_np), torch.from_numpy(gsos), gzi
