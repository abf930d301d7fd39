"""Time-varying biquad cascades: one set of second-order sections per sample.

:func:`tvsosfilt` (also reached through :func:`fxcli.dsp.sosfilt` when ``sos``
has shape ``(..., time, S, 6)``) runs SciPy's transposed direct form II with the
coefficients of sample ``t`` used for everything computed at sample ``t``::

    o[t]   = b0[t] w[t] + p[t]
    p[t+1] = b1[t] w[t] - a1[t] o[t] + q[t]
    q[t+1] = b2[t] w[t] - a2[t] o[t]

(``w`` a section's input, ``o`` its output, ``(p, q)`` its state, SciPy's
``zi``/``zf`` layout). With constant coefficients this is exactly
:func:`~fxcli.dsp.sosfilt` (the same operations in the same order: equal bit for
bit on the CPU backend), and chunked calls carrying ``zf`` equal one call.

Gradients (``x``, ``sos``, ``zi``, from ``y`` and ``zf``) come from
:class:`TvSosfiltFunction`. Its backward is the adjoint recursion, backward in time,
per section with adjoint states started at the gradient of ``zf``::

    g[t] = G[t] - a1[t] g[t+1] - a2[t] g[t+2]       (g[n] = dzf_p, g[n+1] = dzf_q)
    dL/dw[t]  = b0[t] g[t] + b1[t] g[t+1] + b2[t] g[t+2]
    dL/db_k[t] = g[t+k] w[t],   dL/da_k[t] = -g[t+k] o[t],   dL/dzi = (g[0], g[1])

The all-pole part runs as this same time-varying filter on the flipped signal
with the section ``[1, 0, 0, 1, alpha1, alpha2]``, where in flipped time
``alpha1[m] = a1[n-m]`` and ``alpha2[m] = a2[n-1-m]`` (the TDF-II recursion
applies ``a1`` one sample and ``a2`` two samples after the output they multiply,
hence the one-sample shift of ``a1`` relative to ``a2``; zero outside
``0..n-1``). Everything else is tensor ops, so the backward is differentiable
again (double backward works) and runs on any device.

Backends: ``"cpu"`` (CPU tensors; ``tvsosfilt`` of the compiled core,
``csrc/iir_tv.cpp``: a loop with coefficients read per sample, rows over
:func:`fxcli.dsp.native.threads` threads; ``"numba"``, its former name, still
works with a DeprecationWarning) and ``"torch"`` (any device, the CUDA fallback):
a Python loop over time with one small batched tensor update per sample and
section, i.e. ``time * S`` kernel launches: correct but slow (~10-50 us per
sample on a GPU); a time-parallel scan is not implemented. ``"auto"`` picks cpu
for CPU tensors, else torch. Coefficients, states and arithmetic are float64.

Memory: the coefficients are broadcast to ``(rows, time, S, 6)`` float64 (a copy
when batch dims are broadcast); the backward holds ``S + 3`` float64 signals.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fxcli.dsp.checks import check_signal
from fxcli.dsp.iir.dispatch import check_backend
from fxcli.dsp.native import core, threads

__all__ = ["TvSosfiltFunction", "tvsosfilt"]


def _tv_torch(
    x: torch.Tensor, sos: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loop over time (the CUDA fallback): x (R, n), sos (R, n, S, 6), z (S, R, 2)."""
    n_t = x.shape[1]
    n_sec = sos.shape[2]
    p = [z[s, :, 0].clone() for s in range(n_sec)]
    q = [z[s, :, 1].clone() for s in range(n_sec)]
    out = []
    x64 = x.to(torch.float64)
    for t in range(n_t):
        w = x64[:, t]
        c = sos[:, t]
        for s in range(n_sec):
            b0, b1, b2, _, a1, a2 = c[:, s].unbind(-1)
            o = b0 * w + p[s]
            p[s], q[s] = b1 * w - a1 * o + q[s], b2 * w - a2 * o
            w = o
        out.append(w)
    y = torch.stack(out, dim=1) if out else x64.new_empty(x.shape)
    zf = torch.stack([torch.stack((p[s], q[s]), dim=-1) for s in range(n_sec)])
    return y.to(x.dtype), zf


def _tv_nograd(
    x: torch.Tensor, sos: torch.Tensor, z: torch.Tensor | None, backend: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized 2-D form without autograd: x (R, n), sos (R, n, S, 6) a0 = 1, z (S, R, 2)."""
    rows, n_t = x.shape
    n_sec = sos.shape[2]
    if z is None:
        zz = torch.zeros((n_sec, rows, 2), dtype=torch.float64, device=x.device)
    else:
        zz = z.detach().to(torch.float64).clone(memory_format=torch.contiguous_format)
    if backend == "auto":
        backend = "cpu" if x.device.type == "cpu" else "torch"
    if backend in ("cpu", "numba"):  # "numba": TvSosfiltFunction.apply called directly
        if x.device.type != "cpu":
            raise ValueError(f'backend="cpu" needs a CPU tensor, x is on {x.device}')
        x_np = x.detach().contiguous().numpy()
        y_np = np.empty(x_np.shape, dtype=x_np.dtype)
        if n_t and rows:
            sos_np = np.ascontiguousarray(sos.detach().numpy(), dtype=np.float64)
            core.tvsosfilt(x_np, sos_np, zz.numpy(), y_np, threads())
        return torch.from_numpy(y_np), zz
    with torch.no_grad():
        return _tv_torch(x.detach(), sos.detach(), zz)


def _tv(
    x: torch.Tensor, sos: torch.Tensor, zi: torch.Tensor | None, backend: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized form, recording gradients when needed."""
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, sos, zi)):
        out = TvSosfiltFunction.apply(x, sos, zi, backend)
        return out[0], out[1]
    return _tv_nograd(x, sos, zi, backend)


class TvSosfiltFunction(torch.autograd.Function):
    """Time-varying cascade with gradients for ``x``, ``sos``, ``zi`` (see the module doc).

    Normalized inputs: ``x`` (rows, time) float32/float64, ``sos`` (rows, time,
    S, 6) float64 with ``a0 == 1`` on ``x``'s device, ``zi`` (S, rows, 2) float64
    or ``None``. Use :func:`tvsosfilt` rather than ``apply``.
    """

    @staticmethod
    def forward(ctx, x, sos, zi, backend):  # type: ignore[override]
        y, zf = _tv_nograd(x, sos, zi, backend)
        ctx.save_for_backward(x, sos, zi)
        ctx.backend = backend
        return y, zf

    @staticmethod
    def backward(ctx, gy, gzf):  # type: ignore[override]
        x, sos, zi = ctx.saved_tensors
        backend = ctx.backend
        rows, n_t = x.shape
        n_sec = sos.shape[2]
        if gy is None:
            gy = torch.zeros_like(x)
        if gzf is None:
            gzf = x.new_zeros((n_sec, rows, 2), dtype=torch.float64)
        # section signals, recomputed one section at a time (differentiable)
        sig = [x.to(torch.float64)]
        for s in range(n_sec):
            zs = None if zi is None else zi[s : s + 1]
            sig.append(_tv(sig[-1], sos[:, :, s : s + 1], zs, backend)[0])
        g = gy.to(torch.float64)
        gzf = gzf.to(torch.float64)
        gsos: list[torch.Tensor] = []
        gzi: list[torch.Tensor] = []
        pad2 = g.new_zeros((rows, 2))
        for s in range(n_sec - 1, -1, -1):
            b0, b1, b2, _, a1, a2 = sos[:, :, s].unbind(-1)  # each (rows, n)
            ge = torch.cat((g, gzf[s]), dim=1)  # (rows, n + 2): gv[n], gv[n+1] = dzf
            # flipped time m (0..n+1): alpha1[m] = a1[n-m], alpha2[m] = a2[n-1-m] (zero outside)
            alpha1 = torch.cat((pad2[:, :1], a1.flip(-1), pad2[:, :1]), dim=1)
            alpha2 = torch.cat((a2.flip(-1), pad2), dim=1)
            one = torch.ones_like(alpha1)
            zero = torch.zeros_like(alpha1)
            allpole = torch.stack((one, zero, zero, one, alpha1, alpha2), dim=-1)[:, :, None]
            gv = _tv(ge.flip(-1), allpole, None, backend)[0].flip(-1)  # (rows, n + 2)
            gzi.append(gv[:, 0:2])
            w, o = sig[s], sig[s + 1]
            g0, g1, g2 = gv[:, :n_t], gv[:, 1 : n_t + 1], gv[:, 2 : n_t + 2]
            zero_n = torch.zeros_like(w)
            gsos.append(torch.stack((g0 * w, g1 * w, g2 * w, zero_n, -g1 * o, -g2 * o), dim=-1))
            g = b0 * g0 + b1 * g1 + b2 * g2
        return (
            g.to(x.dtype) if ctx.needs_input_grad[0] else None,
            torch.stack(gsos[::-1], dim=2) if ctx.needs_input_grad[1] else None,
            torch.stack(gzi[::-1]) if zi is not None and ctx.needs_input_grad[2] else None,
            None,
        )


def tvsosfilt(
    x: torch.Tensor,
    sos: torch.Tensor,
    zi: torch.Tensor | None = None,
    *,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Filter ``x`` with per-sample second-order sections (differentiable).

    Args:
        x: Signal, shape ``(*xbatch, time)``, float32 or float64, any device.
        sos: Coefficients per sample, shape ``(*sbatch, time, S, 6)``, rows
            ``[b0, b1, b2, a0, a1, a2]``; ``sbatch`` broadcasts against
            ``xbatch`` (e.g. ``(time, S, 6)`` for every channel). Used as
            float64 on ``x``'s device; every row is divided by its ``a0``
            (differentiably). Non-finite values or ``a0 == 0`` raise
            :class:`ValueError`; stability is not checked.
        zi: Initial state ``(S, *batch, 2)`` (``batch`` the broadcast batch
            shape), SciPy layout, or ``None`` for zeros; never modified.
        backend: ``"auto"``, ``"cpu"`` (CPU tensors, the compiled core;
            ``"numba"`` is its deprecated alias) or ``"torch"`` (any device: a
            Python loop over time, the CUDA fallback; ``"triton"`` means torch
            here).

    Returns:
        ``(y, zf)``: ``y`` shape ``(*batch, time)``, ``x``'s dtype and device;
        ``zf`` ``(S, *batch, 2)`` float64. Gradients flow to ``x``, ``sos``
        and ``zi`` from ``y`` and ``zf`` when autograd is recording.
    """
    check_signal(x)
    backend = check_backend(backend)
    if backend == "triton":
        backend = "torch"
    if not isinstance(sos, torch.Tensor):
        sos = torch.as_tensor(np.asarray(sos, dtype=np.float64))
    if sos.ndim < 3 or sos.shape[-1] != 6 or sos.shape[-2] < 1:
        raise ValueError(
            f"time-varying sos must have shape (..., time, n_sections, 6), got {tuple(sos.shape)}"
        )
    n_t = x.shape[-1]
    if sos.shape[-3] != n_t:
        raise ValueError(
            f"time-varying sos has {sos.shape[-3]} time steps (axis -3) but x has {n_t} samples"
        )
    n_sec = sos.shape[-2]
    sos_d = sos.detach()
    if not bool(torch.isfinite(sos_d).all()):
        raise ValueError("sos has non-finite coefficients (nan or inf)")
    if bool((sos_d[..., 3] == 0).any()):
        raise ValueError("sos has a0 == 0 (column 3); a0 must be nonzero")
    try:
        batch = tuple(torch.broadcast_shapes(tuple(x.shape[:-1]), tuple(sos.shape[:-3])))
    except RuntimeError as exc:
        raise ValueError(
            f"sos batch shape {tuple(sos.shape[:-3])} does not broadcast against "
            f"x batch shape {tuple(x.shape[:-1])}"
        ) from exc
    rows = math.prod(batch)
    device = x.device
    s64 = sos.to(device=device, dtype=torch.float64)
    s64 = s64 / s64[..., 3:4]
    s4 = s64.expand(*batch, n_t, n_sec, 6).reshape(rows, n_t, n_sec, 6)
    x2 = x.expand(*batch, n_t).reshape(rows, n_t)
    z = None
    if zi is not None:
        zi = torch.as_tensor(zi)
        expected = (n_sec, *batch, 2)
        if tuple(zi.shape) != expected:
            raise ValueError(
                f"zi must have shape (n_sections, *batch, 2) = {expected}, got {tuple(zi.shape)}"
            )
        z = zi.to(device=device, dtype=torch.float64).reshape(n_sec, rows, 2)
    y, zf = _tv(x2, s4, z, backend)
    return y.reshape(*batch, n_t), zf.reshape(n_sec, *batch, 2)
