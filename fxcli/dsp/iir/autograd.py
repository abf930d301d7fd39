"""Autograd for the filter kernels: custom :class:`torch.autograd.Function` s.

:func:`fxcli.dsp.sosfilt` dispatches here when
gradients are being recorded (``torch.is_grad_enabled()`` and one of ``x``,
``sos``/``taps`` or ``zi`` requires grad); the forward of each Function is the
unchanged fast kernel (same numbers bit for bit as the no-grad call), so only the
backward is new.

IIR (:class:`SosfiltFunction`), per section of the cascade, in SciPy's
transposed direct form II (``o = b0 w + p``, ``p' = b1 w - a1 o + q``,
``q' = b2 w - a2 o``; ``w`` the section's input, ``o`` its output), the adjoint
recursion runs backward in time, ``t = n-1 .. 0``, with adjoint states
``(P, Q)`` that start at the gradient of ``zf`` and end at the gradient of ``zi``::

    gv    = G[t] - a1 P - a2 Q          # dL/do[t] (G: gradient of o[t] from downstream)
    W[t] = b0 gv + b1 P + b2 Q          # dL/dw[t], the upstream section's G
    dL/db0 += gv w[t];  dL/db1 += P w[t];  dL/db2 += Q w[t]
    dL/da1 -= P o[t];  dL/da2 -= Q o[t]
    Q, P = P, gv

i.e. ``gv = flip(allpole(flip(G)))`` (the section's poles run backward in time)
and ``W = B^T gv`` (its zeros, correlated): the same cascade, transposed and
time-reversed, and the coefficient gradients are dot products of that
backward-filtered gradient with the section's own input/output (the standard IIR
adjoint derivation, with ``zi``/``zf`` terms). Two implementations:

``cpu`` (CPU tensors, first-order backward: ``create_graph=False``)
    The Function's forward runs the compiled core's cascade kernels (fused
    sections, 4-row SIMD tiles, threads over rows; bit-identical ``y`` and ``zf``)
    block by block and keeps the cascade state at the start of every ``BLOCK``
    (2048) samples (``rows * time / 2048 * S * 2`` float64: ~0.2 % of a float32
    signal per section). The backward then goes block by block from the end: the
    block's section signals are recomputed from the stored state into a
    cache-resident buffer (same arithmetic as the forward, so they equal the
    forward's signals) and the adjoint recursion above runs over it with all
    sections of a group fused per sample, coefficients, adjoint states and the
    five gradient sums in registers; 4 rows at a time as 4-wide vectors, remaining
    rows scalar (``csrc/iir_adjoint.cpp``). The adjoint uses fused multiply-adds
    (exact ``fma``, in the same order in the vector and the scalar kernel, so
    gradients do not depend on how rows are split into tiles and threads).
    The sections of a group are skewed by one sample each in the loop (each
    section's values are unchanged), so the group's sections run in parallel in
    the pipeline. Nothing of length ``time`` is stored besides ``x`` (saved by
    reference) and the gradients. Measured on the 2-core dev VM (4 sections,
    float32, 60 s, one thread): backward ~2.1x the forward time for 8 channels,
    ~3x for 2 (``bench/bench_grad.py``).
``composed`` (CUDA tensors, or ``create_graph=True`` for double backward)
    The same equations with differentiable operations: section signals
    recomputed by :func:`~fxcli.dsp.sosfilt` one section at a time, the
    backward all-pole filter is :func:`~fxcli.dsp.sosfilt` of the flipped
    gradient with the section ``[1, 0, 0, 1, a1, a2]`` (i.e. this Function
    again, so the backward is itself differentiable: ``gradgradcheck`` passes),
    the zeros and the sums are tensor ops. On CUDA every step runs on the GPU
    (the triton / torch block kernels); memory ``(S + 3) * rows * time``
    float64.

``a0``: :func:`sosfilt` normalizes rows with ``a0 != 1`` by dividing the row by
``a0`` *in torch* before the Function (so ``a0`` gets the exact gradient of the
normalization); inside the Function ``a0 == 1`` is a constant and its gradient
column is zero.

FIR (:class:`FirfiltFunction`): ``y[n] = sum_k h[k] full[n + K-1 - k]`` with
``full = concat(zi, x)``. The input gradient is a convolution of the flipped
output gradient with the same taps (computed by :func:`~fxcli.dsp.firfilt`
itself, direct or FFT, so it is differentiable again), plus the gradient of
``zf`` (the last ``K-1`` samples of ``full``); the tap gradient is the
cross-correlation ``dL/dh[k] = sum_n gy[n] full[n + K-1 - k]`` summed over rows,
one zero-padded ``torch.fft`` product over the whole signal (no wrap-around;
memory two complex128 spectra of ``rows x next_pow2(time + K - 1)``, e.g. ~0.5 GB
for 8 ch x 60 s at 44.1 kHz: fine for training excerpts, heavy for whole files).
"""

from __future__ import annotations

import math

import torch

from fxcli.dsp.checks import check_signal, needs_grad
from fxcli.dsp.iir.adjoint import cpu_ok, sos_backward_cpu, sosfilt_ckpt
from fxcli.dsp.iir.args import sos_to_numpy
from fxcli.dsp.iir.dispatch import check_backend, forward

__all__ = ["SosfiltFunction", "sosfilt_autograd"]


def _filt(
    x: torch.Tensor, sos: torch.Tensor, zi: torch.Tensor | None, backend: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """sosfilt recording gradients when needed: x (rows, n), sos (S, 6) a0 = 1, zi (S, rows, 2)."""
    if needs_grad(x, sos, zi):
        out = SosfiltFunction.apply(x, sos, zi, backend)
        return out[0], out[1]
    return forward(x.detach(), sos.detach(), None if zi is None else zi.detach(), backend)


def _sos_backward_composed(
    x2: torch.Tensor,
    sos: torch.Tensor,
    z0: torch.Tensor | None,
    gy: torch.Tensor,
    gzf: torch.Tensor,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Differentiable backward (any device): same results as the CPU one, see the module doc."""
    n_sec = sos.shape[0]
    n_t = x2.shape[1]
    sig = [x2.to(torch.float64)]
    for s in range(n_sec):
        zs = None if z0 is None else z0[s : s + 1]
        sig.append(_filt(sig[-1], sos[s : s + 1], zs, backend)[0])
    g = gy.to(torch.float64)
    gzf = gzf.to(torch.float64)
    one = sos.new_ones(())
    zero = sos.new_zeros(())
    gsos: list[torch.Tensor] = []
    gzi: list[torch.Tensor] = []
    for s in range(n_sec - 1, -1, -1):
        b0, b1, b2, _, a1, a2 = sos[s].unbind()
        gp, gq = gzf[s, :, 0:1], gzf[s, :, 1:2]
        # gv[t] = dL/do[t] for t < n, extended by gv[n] = gzf_p, gv[n+1] = gzf_q
        ge = torch.cat((g, gp + a1 * gq, gq), dim=1)
        allpole = torch.stack((one, zero, zero, one, a1, a2))[None]
        gv = _filt(ge.flip(-1), allpole, None, backend)[0].flip(-1)
        gzi.append(gv[:, 0:2])
        w, o = sig[s], sig[s + 1]
        g0, g1, g2 = gv[:, :n_t], gv[:, 1 : n_t + 1], gv[:, 2 : n_t + 2]
        gsos.append(
            torch.stack(
                (
                    (g0 * w).sum(),
                    (g1 * w).sum(),
                    (g2 * w).sum(),
                    zero,
                    -(g1 * o).sum(),
                    -(g2 * o).sum(),
                )
            )
        )
        g = b0 * g0 + b1 * g1 + b2 * g2
    return g, torch.stack(gsos[::-1]), torch.stack(gzi[::-1])


class SosfiltFunction(torch.autograd.Function):
    """``(y, zf) = sosfilt(x, sos, zi)`` with gradients for ``x``, ``sos`` and ``zi``.

    Inputs in the normalized 2-D form: ``x`` (rows, time) float32/float64,
    ``sos`` (S, 6) float64 with ``a0 == 1`` on ``x``'s device, ``zi``
    (S, rows, 2) float64 or ``None``, ``backend`` as for ``sosfilt``. Use
    :func:`sosfilt_autograd` (or just :func:`fxcli.dsp.sosfilt`) rather than
    ``apply``.
    """

    @staticmethod
    def forward(ctx, x, sos, zi, backend):  # type: ignore[override]
        ctx.ck = None
        if cpu_ok(x, backend) and x.shape[0] and x.shape[1]:
            # sosfilt's CPU arithmetic (bit-identical), keeping block states for backward
            y, zf, ctx.ck = sosfilt_ckpt(x, sos, zi)
        else:
            y, zf = forward(x, sos, zi, backend)
        ctx.save_for_backward(x, sos, zi)
        ctx.backend = backend
        return y, zf

    @staticmethod
    def backward(ctx, gy, gzf):  # type: ignore[override]
        x, sos, zi = ctx.saved_tensors
        backend = ctx.backend
        if gy is None:
            gy = torch.zeros_like(x)
        if gzf is None:
            gzf = torch.zeros((sos.shape[0], x.shape[0], 2), dtype=torch.float64, device=x.device)
        if not torch.is_grad_enabled() and cpu_ok(x, backend):
            gx, gsos, gzi = sos_backward_cpu(x, sos, zi, gy, gzf, ctx.ck)
        else:
            gx, gsos, gzi = _sos_backward_composed(x, sos, zi, gy, gzf, backend)
        return (
            gx.to(x.dtype) if ctx.needs_input_grad[0] else None,
            gsos if ctx.needs_input_grad[1] else None,
            gzi if zi is not None and ctx.needs_input_grad[2] else None,
            None,
        )


def sosfilt_autograd(
    x: torch.Tensor, sos: torch.Tensor, zi: torch.Tensor | None, backend: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable :func:`fxcli.dsp.sosfilt` (same arguments, same forward numbers).

    Gradients flow to ``x``, ``sos`` (shape (S, 6); rows with ``a0 != 1`` are
    divided by ``a0`` here, differentiably) and ``zi``, from both ``y`` and ``zf``.
    """
    check_signal(x)
    backend = check_backend(backend)
    sos_np = sos_to_numpy(sos)  # validates shape, finiteness, a0 != 0
    n_sec = sos_np.shape[0]
    batch = tuple(x.shape[:-1])
    rows = math.prod(batch)
    n_t = x.shape[-1]
    device = x.device
    if isinstance(sos, torch.Tensor):
        # always divided (exact where a0 == 1): a0 gets the normalization's gradient
        sos_t = sos.to(device=device, dtype=torch.float64)
        sos_t = sos_t / sos_t[:, 3:4]
    else:
        sos_t = torch.from_numpy(sos_np).to(device)
    z = None
    if zi is not None:
        zi = torch.as_tensor(zi)
        expected = (n_sec, *batch, 2)
        if tuple(zi.shape) != expected:
            raise ValueError(
                f"zi must have shape (n_sections, *batch, 2) = {expected}, got {tuple(zi.shape)}"
            )
        z = zi.to(device=device, dtype=torch.float64).reshape(n_sec, rows, 2)
    y, zf = SosfiltFunction.apply(x.reshape(rows, n_t), sos_t, z, backend)
    return y.reshape(x.shape), zf.reshape(n_sec, *batch, 2)
