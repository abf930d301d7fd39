"""Autograd for the filter kernels: custom :class:`torch.autograd.Function` s.

:func:`fxcli.dsp.sosfilt` and :func:`fxcli.dsp.firfilt` dispatch here when
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
backward-filtered gradient with the section's own input/output (seed 002's
derivation, with ``zi``/``zf`` terms). Two implementations:

``numba`` (CPU tensors, first-order backward: ``create_graph=False``)
    One compiled pass per row (rows spread over numba's threads): a forward
    pass stores the cascade state every ``_CHUNK`` samples; then chunk by chunk
    from the end, the chunk's section signals are recomputed from the stored
    state into an L1/L2-resident buffer (SciPy's arithmetic, so they equal the
    forward's) and the adjoint recursion above runs over it with all sections
    fused per sample (coefficients, states and the five gradient sums in
    registers). Nothing of length ``time`` is stored besides ``x`` (saved by
    reference) and the gradient itself.
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
one zero-padded ``torch.fft`` product (no wrap-around).
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import torch

from fxcli.dsp.sosfilt import _njit, _numba

# the modules (``fxcli.dsp.sosfilt`` / ``.firfilt`` are also names of functions in fxcli.dsp)
_sosmod = importlib.import_module("fxcli.dsp.sosfilt")
_firmod = importlib.import_module("fxcli.dsp.firfilt")

__all__ = [
    "FirfiltFunction",
    "SosfiltFunction",
    "firfilt_autograd",
    "needs_grad",
    "sosfilt_autograd",
]

_CHUNK = 2048  # samples per recompute chunk of the numba backward (S+1 float64 rows of it)


def needs_grad(*tensors: object) -> bool:
    """Whether autograd is recording and one of ``tensors`` requires grad."""
    if not torch.is_grad_enabled():
        return False
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


# ---------------------------------------------------------------------------
# numba backward of the constant-coefficient cascade (generated, fused groups)
# ---------------------------------------------------------------------------


@_njit
def _fwd_store1(sig, n, sos, g, z):  # pragma: no cover - compiled
    """Sections g..g+0: sig[g, :n] -> sig[g + 1 .. g + 1, :n]; states z[s, :] updated."""
    b00 = sos[g + 0, 0]
    b01 = sos[g + 0, 1]
    b02 = sos[g + 0, 2]
    a01 = sos[g + 0, 4]
    a02 = sos[g + 0, 5]
    p0 = z[g + 0, 0]
    q0 = z[g + 0, 1]
    for t in range(n):
        w = sig[g, t]
        o = b00 * w + p0
        p0 = b01 * w - a01 * o + q0
        q0 = b02 * w - a02 * o
        sig[g + 1, t] = o
        w = o
    z[g + 0, 0] = p0
    z[g + 0, 1] = q0


@_njit
def _fwd_store2(sig, n, sos, g, z):  # pragma: no cover - compiled
    """Sections g..g+1: sig[g, :n] -> sig[g + 1 .. g + 2, :n]; states z[s, :] updated."""
    b00 = sos[g + 0, 0]
    b01 = sos[g + 0, 1]
    b02 = sos[g + 0, 2]
    a01 = sos[g + 0, 4]
    a02 = sos[g + 0, 5]
    b10 = sos[g + 1, 0]
    b11 = sos[g + 1, 1]
    b12 = sos[g + 1, 2]
    a11 = sos[g + 1, 4]
    a12 = sos[g + 1, 5]
    p0 = z[g + 0, 0]
    q0 = z[g + 0, 1]
    p1 = z[g + 1, 0]
    q1 = z[g + 1, 1]
    for t in range(n):
        w = sig[g, t]
        o = b00 * w + p0
        p0 = b01 * w - a01 * o + q0
        q0 = b02 * w - a02 * o
        sig[g + 1, t] = o
        w = o
        o = b10 * w + p1
        p1 = b11 * w - a11 * o + q1
        q1 = b12 * w - a12 * o
        sig[g + 2, t] = o
        w = o
    z[g + 0, 0] = p0
    z[g + 0, 1] = q0
    z[g + 1, 0] = p1
    z[g + 1, 1] = q1


@_njit
def _fwd_store3(sig, n, sos, g, z):  # pragma: no cover - compiled
    """Sections g..g+2: sig[g, :n] -> sig[g + 1 .. g + 3, :n]; states z[s, :] updated."""
    b00 = sos[g + 0, 0]
    b01 = sos[g + 0, 1]
    b02 = sos[g + 0, 2]
    a01 = sos[g + 0, 4]
    a02 = sos[g + 0, 5]
    b10 = sos[g + 1, 0]
    b11 = sos[g + 1, 1]
    b12 = sos[g + 1, 2]
    a11 = sos[g + 1, 4]
    a12 = sos[g + 1, 5]
    b20 = sos[g + 2, 0]
    b21 = sos[g + 2, 1]
    b22 = sos[g + 2, 2]
    a21 = sos[g + 2, 4]
    a22 = sos[g + 2, 5]
    p0 = z[g + 0, 0]
    q0 = z[g + 0, 1]
    p1 = z[g + 1, 0]
    q1 = z[g + 1, 1]
    p2 = z[g + 2, 0]
    q2 = z[g + 2, 1]
    for t in range(n):
        w = sig[g, t]
        o = b00 * w + p0
        p0 = b01 * w - a01 * o + q0
        q0 = b02 * w - a02 * o
        sig[g + 1, t] = o
        w = o
        o = b10 * w + p1
        p1 = b11 * w - a11 * o + q1
        q1 = b12 * w - a12 * o
        sig[g + 2, t] = o
        w = o
        o = b20 * w + p2
        p2 = b21 * w - a21 * o + q2
        q2 = b22 * w - a22 * o
        sig[g + 3, t] = o
        w = o
    z[g + 0, 0] = p0
    z[g + 0, 1] = q0
    z[g + 1, 0] = p1
    z[g + 1, 1] = q1
    z[g + 2, 0] = p2
    z[g + 2, 1] = q2


@_njit
def _fwd_store4(sig, n, sos, g, z):  # pragma: no cover - compiled
    """Sections g..g+3: sig[g, :n] -> sig[g + 1 .. g + 4, :n]; states z[s, :] updated."""
    b00 = sos[g + 0, 0]
    b01 = sos[g + 0, 1]
    b02 = sos[g + 0, 2]
    a01 = sos[g + 0, 4]
    a02 = sos[g + 0, 5]
    b10 = sos[g + 1, 0]
    b11 = sos[g + 1, 1]
    b12 = sos[g + 1, 2]
    a11 = sos[g + 1, 4]
    a12 = sos[g + 1, 5]
    b20 = sos[g + 2, 0]
    b21 = sos[g + 2, 1]
    b22 = sos[g + 2, 2]
    a21 = sos[g + 2, 4]
    a22 = sos[g + 2, 5]
    b30 = sos[g + 3, 0]
    b31 = sos[g + 3, 1]
    b32 = sos[g + 3, 2]
    a31 = sos[g + 3, 4]
    a32 = sos[g + 3, 5]
    p0 = z[g + 0, 0]
    q0 = z[g + 0, 1]
    p1 = z[g + 1, 0]
    q1 = z[g + 1, 1]
    p2 = z[g + 2, 0]
    q2 = z[g + 2, 1]
    p3 = z[g + 3, 0]
    q3 = z[g + 3, 1]
    for t in range(n):
        w = sig[g, t]
        o = b00 * w + p0
        p0 = b01 * w - a01 * o + q0
        q0 = b02 * w - a02 * o
        sig[g + 1, t] = o
        w = o
        o = b10 * w + p1
        p1 = b11 * w - a11 * o + q1
        q1 = b12 * w - a12 * o
        sig[g + 2, t] = o
        w = o
        o = b20 * w + p2
        p2 = b21 * w - a21 * o + q2
        q2 = b22 * w - a22 * o
        sig[g + 3, t] = o
        w = o
        o = b30 * w + p3
        p3 = b31 * w - a31 * o + q3
        q3 = b32 * w - a32 * o
        sig[g + 4, t] = o
        w = o
    z[g + 0, 0] = p0
    z[g + 0, 1] = q0
    z[g + 1, 0] = p1
    z[g + 1, 1] = q1
    z[g + 2, 0] = p2
    z[g + 2, 1] = q2
    z[g + 3, 0] = p3
    z[g + 3, 1] = q3


@_njit
def _adjoint1(sig, gb, n, sos, g, lam, acc):  # pragma: no cover - compiled
    """Adjoint of sections g+0..g over t = n-1..0: gb[:n] (grad of the output of
    section g+0) -> grad of the input of section g, in place; lam (S, 2) adjoint
    states, acc (S, 5) gradient sums [b0, b1, b2, a1, a2] updated."""
    b00 = sos[g + 0, 0]
    b01 = sos[g + 0, 1]
    b02 = sos[g + 0, 2]
    a01 = sos[g + 0, 4]
    a02 = sos[g + 0, 5]
    p0 = lam[g + 0, 0]
    q0 = lam[g + 0, 1]
    c00 = 0.0
    c01 = 0.0
    c02 = 0.0
    c03 = 0.0
    c04 = 0.0
    for t in range(n - 1, -1, -1):
        G = gb[t]
        w = sig[g + 0, t]
        o = sig[g + 1, t]
        gv = G - a01 * p0 - a02 * q0
        c00 += gv * w
        c01 += p0 * w
        c02 += q0 * w
        c03 -= p0 * o
        c04 -= q0 * o
        G = b00 * gv + b01 * p0 + b02 * q0
        q0 = p0
        p0 = gv
        gb[t] = G
    lam[g + 0, 0] = p0
    lam[g + 0, 1] = q0
    acc[g + 0, 0] += c00
    acc[g + 0, 1] += c01
    acc[g + 0, 2] += c02
    acc[g + 0, 3] += c03
    acc[g + 0, 4] += c04


@_njit
def _adjoint2(sig, gb, n, sos, g, lam, acc):  # pragma: no cover - compiled
    """Adjoint of sections g+1..g over t = n-1..0: gb[:n] (grad of the output of
    section g+1) -> grad of the input of section g, in place; lam (S, 2) adjoint
    states, acc (S, 5) gradient sums [b0, b1, b2, a1, a2] updated."""
    b00 = sos[g + 0, 0]
    b01 = sos[g + 0, 1]
    b02 = sos[g + 0, 2]
    a01 = sos[g + 0, 4]
    a02 = sos[g + 0, 5]
    b10 = sos[g + 1, 0]
    b11 = sos[g + 1, 1]
    b12 = sos[g + 1, 2]
    a11 = sos[g + 1, 4]
    a12 = sos[g + 1, 5]
    p0 = lam[g + 0, 0]
    q0 = lam[g + 0, 1]
    p1 = lam[g + 1, 0]
    q1 = lam[g + 1, 1]
    c00 = 0.0
    c01 = 0.0
    c02 = 0.0
    c03 = 0.0
    c04 = 0.0
    c10 = 0.0
    c11 = 0.0
    c12 = 0.0
    c13 = 0.0
    c14 = 0.0
    for t in range(n - 1, -1, -1):
        G = gb[t]
        w = sig[g + 1, t]
        o = sig[g + 2, t]
        gv = G - a11 * p1 - a12 * q1
        c10 += gv * w
        c11 += p1 * w
        c12 += q1 * w
        c13 -= p1 * o
        c14 -= q1 * o
        G = b10 * gv + b11 * p1 + b12 * q1
        q1 = p1
        p1 = gv
        w = sig[g + 0, t]
        o = sig[g + 1, t]
        gv = G - a01 * p0 - a02 * q0
        c00 += gv * w
        c01 += p0 * w
        c02 += q0 * w
        c03 -= p0 * o
        c04 -= q0 * o
        G = b00 * gv + b01 * p0 + b02 * q0
        q0 = p0
        p0 = gv
        gb[t] = G
    lam[g + 0, 0] = p0
    lam[g + 0, 1] = q0
    acc[g + 0, 0] += c00
    acc[g + 0, 1] += c01
    acc[g + 0, 2] += c02
    acc[g + 0, 3] += c03
    acc[g + 0, 4] += c04
    lam[g + 1, 0] = p1
    lam[g + 1, 1] = q1
    acc[g + 1, 0] += c10
    acc[g + 1, 1] += c11
    acc[g + 1, 2] += c12
    acc[g + 1, 3] += c13
    acc[g + 1, 4] += c14


@_njit
def _adjoint3(sig, gb, n, sos, g, lam, acc):  # pragma: no cover - compiled
    """Adjoint of sections g+2..g over t = n-1..0: gb[:n] (grad of the output of
    section g+2) -> grad of the input of section g, in place; lam (S, 2) adjoint
    states, acc (S, 5) gradient sums [b0, b1, b2, a1, a2] updated."""
    b00 = sos[g + 0, 0]
    b01 = sos[g + 0, 1]
    b02 = sos[g + 0, 2]
    a01 = sos[g + 0, 4]
    a02 = sos[g + 0, 5]
    b10 = sos[g + 1, 0]
    b11 = sos[g + 1, 1]
    b12 = sos[g + 1, 2]
    a11 = sos[g + 1, 4]
    a12 = sos[g + 1, 5]
    b20 = sos[g + 2, 0]
    b21 = sos[g + 2, 1]
    b22 = sos[g + 2, 2]
    a21 = sos[g + 2, 4]
    a22 = sos[g + 2, 5]
    p0 = lam[g + 0, 0]
    q0 = lam[g + 0, 1]
    p1 = lam[g + 1, 0]
    q1 = lam[g + 1, 1]
    p2 = lam[g + 2, 0]
    q2 = lam[g + 2, 1]
    c00 = 0.0
    c01 = 0.0
    c02 = 0.0
    c03 = 0.0
    c04 = 0.0
    c10 = 0.0
    c11 = 0.0
    c12 = 0.0
    c13 = 0.0
    c14 = 0.0
    c20 = 0.0
    c21 = 0.0
    c22 = 0.0
    c23 = 0.0
    c24 = 0.0
    for t in range(n - 1, -1, -1):
        G = gb[t]
        w = sig[g + 2, t]
        o = sig[g + 3, t]
        gv = G - a21 * p2 - a22 * q2
        c20 += gv * w
        c21 += p2 * w
        c22 += q2 * w
        c23 -= p2 * o
        c24 -= q2 * o
        G = b20 * gv + b21 * p2 + b22 * q2
        q2 = p2
        p2 = gv
        w = sig[g + 1, t]
        o = sig[g + 2, t]
        gv = G - a11 * p1 - a12 * q1
        c10 += gv * w
        c11 += p1 * w
        c12 += q1 * w
        c13 -= p1 * o
        c14 -= q1 * o
        G = b10 * gv + b11 * p1 + b12 * q1
        q1 = p1
        p1 = gv
        w = sig[g + 0, t]
        o = sig[g + 1, t]
        gv = G - a01 * p0 - a02 * q0
        c00 += gv * w
        c01 += p0 * w
        c02 += q0 * w
        c03 -= p0 * o
        c04 -= q0 * o
        G = b00 * gv + b01 * p0 + b02 * q0
        q0 = p0
        p0 = gv
        gb[t] = G
    lam[g + 0, 0] = p0
    lam[g + 0, 1] = q0
    acc[g + 0, 0] += c00
    acc[g + 0, 1] += c01
    acc[g + 0, 2] += c02
    acc[g + 0, 3] += c03
    acc[g + 0, 4] += c04
    lam[g + 1, 0] = p1
    lam[g + 1, 1] = q1
    acc[g + 1, 0] += c10
    acc[g + 1, 1] += c11
    acc[g + 1, 2] += c12
    acc[g + 1, 3] += c13
    acc[g + 1, 4] += c14
    lam[g + 2, 0] = p2
    lam[g + 2, 1] = q2
    acc[g + 2, 0] += c20
    acc[g + 2, 1] += c21
    acc[g + 2, 2] += c22
    acc[g + 2, 3] += c23
    acc[g + 2, 4] += c24


@_njit
def _adjoint4(sig, gb, n, sos, g, lam, acc):  # pragma: no cover - compiled
    """Adjoint of sections g+3..g over t = n-1..0: gb[:n] (grad of the output of
    section g+3) -> grad of the input of section g, in place; lam (S, 2) adjoint
    states, acc (S, 5) gradient sums [b0, b1, b2, a1, a2] updated."""
    b00 = sos[g + 0, 0]
    b01 = sos[g + 0, 1]
    b02 = sos[g + 0, 2]
    a01 = sos[g + 0, 4]
    a02 = sos[g + 0, 5]
    b10 = sos[g + 1, 0]
    b11 = sos[g + 1, 1]
    b12 = sos[g + 1, 2]
    a11 = sos[g + 1, 4]
    a12 = sos[g + 1, 5]
    b20 = sos[g + 2, 0]
    b21 = sos[g + 2, 1]
    b22 = sos[g + 2, 2]
    a21 = sos[g + 2, 4]
    a22 = sos[g + 2, 5]
    b30 = sos[g + 3, 0]
    b31 = sos[g + 3, 1]
    b32 = sos[g + 3, 2]
    a31 = sos[g + 3, 4]
    a32 = sos[g + 3, 5]
    p0 = lam[g + 0, 0]
    q0 = lam[g + 0, 1]
    p1 = lam[g + 1, 0]
    q1 = lam[g + 1, 1]
    p2 = lam[g + 2, 0]
    q2 = lam[g + 2, 1]
    p3 = lam[g + 3, 0]
    q3 = lam[g + 3, 1]
    c00 = 0.0
    c01 = 0.0
    c02 = 0.0
    c03 = 0.0
    c04 = 0.0
    c10 = 0.0
    c11 = 0.0
    c12 = 0.0
    c13 = 0.0
    c14 = 0.0
    c20 = 0.0
    c21 = 0.0
    c22 = 0.0
    c23 = 0.0
    c24 = 0.0
    c30 = 0.0
    c31 = 0.0
    c32 = 0.0
    c33 = 0.0
    c34 = 0.0
    for t in range(n - 1, -1, -1):
        G = gb[t]
        w = sig[g + 3, t]
        o = sig[g + 4, t]
        gv = G - a31 * p3 - a32 * q3
        c30 += gv * w
        c31 += p3 * w
        c32 += q3 * w
        c33 -= p3 * o
        c34 -= q3 * o
        G = b30 * gv + b31 * p3 + b32 * q3
        q3 = p3
        p3 = gv
        w = sig[g + 2, t]
        o = sig[g + 3, t]
        gv = G - a21 * p2 - a22 * q2
        c20 += gv * w
        c21 += p2 * w
        c22 += q2 * w
        c23 -= p2 * o
        c24 -= q2 * o
        G = b20 * gv + b21 * p2 + b22 * q2
        q2 = p2
        p2 = gv
        w = sig[g + 1, t]
        o = sig[g + 2, t]
        gv = G - a11 * p1 - a12 * q1
        c10 += gv * w
        c11 += p1 * w
        c12 += q1 * w
        c13 -= p1 * o
        c14 -= q1 * o
        G = b10 * gv + b11 * p1 + b12 * q1
        q1 = p1
        p1 = gv
        w = sig[g + 0, t]
        o = sig[g + 1, t]
        gv = G - a01 * p0 - a02 * q0
        c00 += gv * w
        c01 += p0 * w
        c02 += q0 * w
        c03 -= p0 * o
        c04 -= q0 * o
        G = b00 * gv + b01 * p0 + b02 * q0
        q0 = p0
        p0 = gv
        gb[t] = G
    lam[g + 0, 0] = p0
    lam[g + 0, 1] = q0
    acc[g + 0, 0] += c00
    acc[g + 0, 1] += c01
    acc[g + 0, 2] += c02
    acc[g + 0, 3] += c03
    acc[g + 0, 4] += c04
    lam[g + 1, 0] = p1
    lam[g + 1, 1] = q1
    acc[g + 1, 0] += c10
    acc[g + 1, 1] += c11
    acc[g + 1, 2] += c12
    acc[g + 1, 3] += c13
    acc[g + 1, 4] += c14
    lam[g + 2, 0] = p2
    lam[g + 2, 1] = q2
    acc[g + 2, 0] += c20
    acc[g + 2, 1] += c21
    acc[g + 2, 2] += c22
    acc[g + 2, 3] += c23
    acc[g + 2, 4] += c24
    lam[g + 3, 0] = p3
    lam[g + 3, 1] = q3
    acc[g + 3, 0] += c30
    acc[g + 3, 1] += c31
    acc[g + 3, 2] += c32
    acc[g + 3, 3] += c33
    acc[g + 3, 4] += c34


@_njit
def _fwd_store(sig, n, sos, g, m, z):  # pragma: no cover - compiled
    if m == 4:
        _fwd_store4(sig, n, sos, g, z)
    elif m == 3:
        _fwd_store3(sig, n, sos, g, z)
    elif m == 2:
        _fwd_store2(sig, n, sos, g, z)
    else:
        _fwd_store1(sig, n, sos, g, z)


@_njit
def _adjoint(sig, gb, n, sos, g, m, lam, acc):  # pragma: no cover - compiled
    if m == 4:
        _adjoint4(sig, gb, n, sos, g, lam, acc)
    elif m == 3:
        _adjoint3(sig, gb, n, sos, g, lam, acc)
    elif m == 2:
        _adjoint2(sig, gb, n, sos, g, lam, acc)
    else:
        _adjoint1(sig, gb, n, sos, g, lam, acc)


@_njit
def _row_backward(xr, gyr, gxr, sos, z0, lam, acc):  # pragma: no cover - compiled
    """Backward of one row: x (n,), gy (n,) -> gx (n,); z0 (S, 2) the row's zi;
    lam (S, 2) in: gradient of zf, out: gradient of zi; acc (S, 5) += coefficient sums."""
    n_sec = sos.shape[0]
    n_t = xr.shape[0]
    c = min(_CHUNK, n_t)
    n_groups = (n_sec + 3) // 4
    gs = np.empty(n_groups, dtype=np.int64)
    ms = np.empty(n_groups, dtype=np.int64)
    g = 0
    for k in range(n_groups):  # balanced groups, as in fxcli.dsp.sosfilt._rows
        m = (n_sec - g + n_groups - k - 1) // (n_groups - k)
        gs[k] = g
        ms[k] = m
        g += m
    n_chunks = (n_t + c - 1) // c
    ck = np.empty((n_chunks, n_sec, 2), dtype=np.float64)
    z = np.empty((n_sec, 1, 2), dtype=np.float64)
    z[:, 0, :] = z0
    gb = np.empty(c, dtype=np.float64)
    for j in range(n_chunks):  # pass 1: the state at every chunk start
        ck[j] = z[:, 0, :]
        if j == n_chunks - 1:
            break
        t0 = j * c
        for t in range(c):
            gb[t] = xr[t0 + t]
        for k in range(n_groups):
            _sosmod._group(gb, gb, c, sos, gs[k], ms[k], z, 0)
    sig = np.empty((n_sec + 1, c), dtype=np.float64)
    zz = np.empty((n_sec, 2), dtype=np.float64)
    for j in range(n_chunks - 1, -1, -1):  # pass 2: recompute the chunk, then its adjoint
        t0 = j * c
        n = min(c, n_t - t0)
        zz[:, :] = ck[j]
        for t in range(n):
            sig[0, t] = xr[t0 + t]
        for k in range(n_groups):
            _fwd_store(sig, n, sos, gs[k], ms[k], zz)
        for t in range(n):
            gb[t] = gyr[t0 + t]
        for k in range(n_groups - 1, -1, -1):
            _adjoint(sig, gb, n, sos, gs[k], ms[k], lam, acc)
        for t in range(n):
            gxr[t0 + t] = gb[t]


@_njit
def _backward_rows(x, gy, gx, sos, z0, lam, acc, r0, r1):  # pragma: no cover - compiled
    for r in range(r0, r1):
        _row_backward(x[r], gy[r], gx[r], sos, z0[r], lam[r], acc[r])


if _numba is not None:

    @_numba.njit(cache=True, nogil=True, parallel=True)
    def _backward_rows_parallel(x, gy, gx, sos, z0, lam, acc):  # pragma: no cover - compiled
        for r in _numba.prange(x.shape[0]):
            _row_backward(x[r], gy[r], gx[r], sos, z0[r], lam[r], acc[r])


def _sos_backward_numba(
    x2: torch.Tensor,
    sos: torch.Tensor,
    z0: torch.Tensor | None,
    gy: torch.Tensor,
    gzf: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """numba backward on CPU: x2, gy (rows, n); z0, gzf (S, rows, 2) -> (gx, gsos (S, 6), gzi)."""
    rows, n_t = x2.shape
    n_sec = sos.shape[0]
    sos_np = np.ascontiguousarray(sos.detach().numpy())
    x_np = x2.detach().contiguous().numpy()
    gy_np = gy.detach().to(x2.dtype).contiguous().numpy()
    if z0 is None:
        z0_np = np.zeros((rows, n_sec, 2), dtype=np.float64)
    else:
        z0_np = np.ascontiguousarray(z0.detach().numpy().transpose(1, 0, 2))
    # a fresh copy: the kernel writes the zi gradient into it (never into grad_output)
    lam = np.array(gzf.detach().to(torch.float64).numpy().transpose(1, 0, 2), order="C")
    acc = np.zeros((rows, n_sec, 5), dtype=np.float64)
    gx_np = np.empty((rows, n_t), dtype=x_np.dtype)
    if n_t:
        threads = min(_sosmod._n_threads(), rows)
        if (
            threads > 1
            and rows * n_t >= _sosmod._PAR_MIN_SAMPLES
            and not _sosmod._forked_child
            and _sosmod._par_lock.acquire(blocking=False)
        ):
            try:
                _numba.set_num_threads(threads)
                _backward_rows_parallel(x_np, gy_np, gx_np, sos_np, z0_np, lam, acc)
            finally:
                _sosmod._par_lock.release()
        else:
            _backward_rows(x_np, gy_np, gx_np, sos_np, z0_np, lam, acc, 0, rows)
    s = acc.sum(axis=0)
    gsos = np.zeros((n_sec, 6), dtype=np.float64)
    gsos[:, 0:3] = s[:, 0:3]
    gsos[:, 4:6] = s[:, 3:5]
    gzi = torch.from_numpy(np.ascontiguousarray(lam.transpose(1, 0, 2)))
    return torch.from_numpy(gx_np), torch.from_numpy(gsos), gzi


def _filt(
    x: torch.Tensor, sos: torch.Tensor, zi: torch.Tensor | None, backend: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """sosfilt recording gradients when needed: x (rows, n), sos (S, 6) a0 = 1, zi (S, rows, 2)."""
    if needs_grad(x, sos, zi):
        out = SosfiltFunction.apply(x, sos, zi, backend)
        return out[0], out[1]
    return _sosmod.sosfilt(
        x.detach(), sos.detach(), None if zi is None else zi.detach(), backend=backend
    )


def _sos_backward_composed(
    x2: torch.Tensor,
    sos: torch.Tensor,
    z0: torch.Tensor | None,
    gy: torch.Tensor,
    gzf: torch.Tensor,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Differentiable backward (any device): same results as the numba one, see the module doc."""
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
        y, zf = _sosmod.sosfilt(x, sos, zi, backend=backend)
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
        if (
            not torch.is_grad_enabled()
            and x.device.type == "cpu"
            and _numba is not None
            and backend in ("auto", "numba")
        ):
            gx, gsos, gzi = _sos_backward_numba(x, sos, zi, gy, gzf)
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
    _sosmod._check_x(x)
    if backend not in _sosmod._BACKENDS:
        raise ValueError(f"backend must be one of {_sosmod._BACKENDS}, got {backend!r}")
    sos_np = _sosmod._sos_to_numpy(sos)  # validates shape, finiteness, a0 != 0
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


# ---------------------------------------------------------------------------
# FIR
# ---------------------------------------------------------------------------


def _fir(
    x: torch.Tensor, taps: torch.Tensor, zi: torch.Tensor | None, method: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """firfilt recording gradients when needed: x (rows, n), taps (K,) float64, zi (rows, K-1)."""
    if needs_grad(x, taps, zi):
        out = FirfiltFunction.apply(x, taps, zi, method)
        return out[0], out[1]
    return _firmod.firfilt(
        x.detach(), taps.detach(), None if zi is None else zi.detach(), method=method
    )


class FirfiltFunction(torch.autograd.Function):
    """``(y, zf) = firfilt(x, taps, zi)`` with gradients for ``x``, ``taps`` and ``zi``.

    Normalized form: ``x`` (rows, time) float32/float64, ``taps`` (K,) float64 on
    ``x``'s device, ``zi`` (rows, K-1) float64 or ``None``. Use
    :func:`firfilt_autograd` (or :func:`fxcli.dsp.firfilt`) rather than ``apply``.
    """

    @staticmethod
    def forward(ctx, x, taps, zi, method):  # type: ignore[override]
        y, zf = _firmod.firfilt(x, taps, zi, method=method)
        ctx.save_for_backward(x, taps, zi)
        ctx.method = method
        return y, zf

    @staticmethod
    def backward(ctx, gy, gzf):  # type: ignore[override]
        x, h, zi = ctx.saved_tensors
        rows, n_t = x.shape
        k = h.shape[0]
        if gy is None:
            gy = torch.zeros_like(x)
        g = gy.to(torch.float64)
        # d full: convolution of the flipped gradient with the same taps (full length)
        rg = torch.cat((g.flip(-1), g.new_zeros((rows, k - 1))), dim=1)
        gfull = _fir(rg, h, None, ctx.method)[0].flip(-1)  # (rows, n + K - 1)
        if gzf is not None and k > 1:
            gfull = gfull + torch.nn.functional.pad(gzf.to(torch.float64), (n_t, 0))
        gx = gfull[:, k - 1 :].to(x.dtype) if ctx.needs_input_grad[0] else None
        gzi = gfull[:, : k - 1] if zi is not None and ctx.needs_input_grad[2] else None
        gh = None
        if ctx.needs_input_grad[1]:
            hist = zi if zi is not None else g.new_zeros((rows, k - 1))
            full = torch.cat((hist, x.to(torch.float64)), dim=1)  # (rows, n + K - 1)
            nfft = 1 << max(1, math.ceil(math.log2(n_t + k - 1)))
            spec = (torch.fft.rfft(g, n=nfft).conj() * torch.fft.rfft(full, n=nfft)).sum(0)
            # c[j] = sum_n gy[n] full[n + j] (no wrap-around: n + j < n_t + K - 1 <= nfft)
            gh = torch.fft.irfft(spec, n=nfft)[:k].flip(0)
        return gx, gh, gzi, None


def firfilt_autograd(
    x: torch.Tensor, taps: torch.Tensor, zi: torch.Tensor | None, method: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable :func:`fxcli.dsp.firfilt` (same arguments, same forward numbers)."""
    h = _firmod._check(x, taps, method)  # validation (detached copy)
    k = h.shape[0]
    batch = tuple(x.shape[:-1])
    rows = math.prod(batch)
    n_t = x.shape[-1]
    if isinstance(taps, torch.Tensor):
        h = taps.to(device=x.device, dtype=torch.float64)
    hist = None
    if zi is not None:
        zi = torch.as_tensor(zi)
        if tuple(zi.shape) != (*batch, k - 1):
            raise ValueError(
                f"zi must have shape (*batch, K - 1) = {(*batch, k - 1)}, got {tuple(zi.shape)}"
            )
        hist = zi.to(device=x.device, dtype=torch.float64).reshape(rows, k - 1)
    y, zf = FirfiltFunction.apply(x.reshape(rows, n_t), h, hist, method)
    return y.reshape(x.shape), zf.reshape(*batch, k - 1)
