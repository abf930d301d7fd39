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
    The Function's forward runs the numba backend's own kernels (fused sections,
    4-row SIMD tiles, threads over rows; bit-identical ``y`` and ``zf``) block by
    block and keeps the cascade state at the start of every ``_BLOCK`` (2048)
    samples (``rows * time / 2048 * S * 2`` float64: ~0.2 % of a float32 signal
    per section). The backward then goes block by block from the end: the block's
    section signals are recomputed from the stored state into a cache-resident
    buffer (same arithmetic as the forward, so they equal the forward's signals)
    and the adjoint recursion above runs over it with all sections of a group
    fused per sample, coefficients, adjoint states and the five gradient sums in
    registers; 4 rows at a time as 4-wide vectors (LLVM IR, like the forward's
    tiles), remaining rows scalar. The adjoint uses fused multiply-adds
    (``llvm.fma``, in the same order in the vector and the scalar kernel, so
    gradients do not depend on how rows are split into tiles and threads).
    Nothing of length ``time`` is stored besides ``x`` (saved by reference) and
    the gradients. Measured on the 2-core dev VM (seed IIR chain, 4 sections,
    8 ch float32): backward ~2.5-3.5x the forward time (``bench/bench_grad.py``).
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

import importlib
import math

import numpy as np
import torch

from fxcli.dsp.sosfilt import _njit, _numba

# the modules (``fxcli.dsp.sosfilt`` / ``.firfilt`` are also names of functions in fxcli.dsp)
_sosmod = importlib.import_module("fxcli.dsp.sosfilt")
_firmod = importlib.import_module("fxcli.dsp.firfilt")

_BLOCK = _sosmod._BLOCK  # samples between the forward's stored states = backward block
_LANES = _sosmod._LANES  # rows per SIMD tile

__all__ = [
    "FirfiltFunction",
    "SosfiltFunction",
    "firfilt_autograd",
    "needs_grad",
    "sosfilt_autograd",
]


def needs_grad(*tensors: object) -> bool:
    """Whether autograd is recording and one of ``tensors`` requires grad."""
    if not torch.is_grad_enabled():
        return False
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


# ---------------------------------------------------------------------------
# numba backward of the constant-coefficient cascade (generated, fused groups)
# ---------------------------------------------------------------------------


if _numba is not None:
    from llvmlite import ir as _ir
    from numba.core import cgutils as _cgutils
    from numba.core import types as _types
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def _fma(typingctx, a, b, c):
        """Fused multiply-add a * b + c, one rounding (llvm.fma.f64)."""
        sig = _types.float64(_types.float64, _types.float64, _types.float64)

        def codegen(context, builder, signature, args):
            f64 = _ir.DoubleType()
            fn = _cgutils.get_or_insert_function(
                builder.module, _ir.FunctionType(f64, [f64] * 3), "llvm.fma.f64"
            )
            return builder.call(fn, list(args))

        return sig, codegen

else:  # pragma: no cover - depends on the environment

    def _fma(a, b, c):  # type: ignore[no-redef]
        return a * b + c


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
def _adjoint1(sig, gb, n, sos, g, lam, acc):  # pragma: no cover - compiled
    """Adjoint of sections g+0..g over t = n-1..0: gb[:n] (grad of the output of
    section g+0) -> grad of the input of section g, in place; lam (S, 2) adjoint
    states, acc (S, 5) gradient sums [b0, b1, b2, a1, a2] updated."""
    b00 = sos[g + 0, 0]
    b01 = sos[g + 0, 1]
    b02 = sos[g + 0, 2]
    n01 = -sos[g + 0, 4]
    n02 = -sos[g + 0, 5]
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
        gv = _fma(n02, q0, _fma(n01, p0, G))
        c00 = _fma(gv, w, c00)
        c01 = _fma(p0, w, c01)
        c02 = _fma(q0, w, c02)
        c03 = _fma(p0, o, c03)
        c04 = _fma(q0, o, c04)
        G = _fma(b02, q0, _fma(b01, p0, b00 * gv))
        q0 = p0
        p0 = gv
        gb[t] = G
    lam[g + 0, 0] = p0
    lam[g + 0, 1] = q0
    acc[g + 0, 0] += c00
    acc[g + 0, 1] += c01
    acc[g + 0, 2] += c02
    acc[g + 0, 3] -= c03
    acc[g + 0, 4] -= c04


@_njit
def _fwd_store(sig, n, sos, g, m, z):  # pragma: no cover - compiled
    """Sections g..g+m-1 one after the other, every section's output stored. The
    per-section arithmetic is that of sosfilt's fused kernels, so the signals are
    the forward's bit for bit (this scalar path only serves rows outside the
    4-row SIMD tiles, where keeping the signal in registers gains little)."""
    for k in range(m):
        _fwd_store1(sig, n, sos, g + k, z)


@_njit
def _adjoint(sig, gb, n, sos, g, m, lam, acc):  # pragma: no cover - compiled
    """Adjoint of sections g+m-1..g, one after the other (same arithmetic per
    section as the fused tile kernel: gradients bit for bit)."""
    for k in range(m - 1, -1, -1):
        _adjoint1(sig, gb, n, sos, g + k, lam, acc)


@_njit
def _groups(n_sec):  # pragma: no cover - compiled
    """Start and size of the fused section groups (balanced, as in sosfilt's _rows)."""
    n_groups = (n_sec + 3) // 4
    gs = np.empty(n_groups, dtype=np.int64)
    ms = np.empty(n_groups, dtype=np.int64)
    g = 0
    for k in range(n_groups):
        m = (n_sec - g + n_groups - k - 1) // (n_groups - k)
        gs[k] = g
        ms[k] = m
        g += m
    return gs, ms


@_njit
def _bwd_row(x, gy, gx, sos, ck, lam, acc, r):  # pragma: no cover - compiled
    """Backward of row r (scalar kernels): chunks of _BLOCK from the end, the chunk's
    section signals recomputed from ck[r, j], then the adjoint. lam (R, S, 2) in: grad
    of zf, out: grad of zi; acc (R, S, 5) += the coefficient sums."""
    n_sec = sos.shape[0]
    n_t = x.shape[1]
    cap = min(_BLOCK, n_t)
    gs, ms = _groups(n_sec)
    n_groups = gs.shape[0]
    sig = np.empty((n_sec + 1, cap), dtype=np.float64)
    gb = np.empty(cap, dtype=np.float64)
    zz = np.empty((n_sec, 2), dtype=np.float64)
    lm = np.empty((n_sec, 2), dtype=np.float64)
    ac = np.zeros((n_sec, 5), dtype=np.float64)
    lm[:, :] = lam[r]
    xr = x[r]
    gyr = gy[r]
    gxr = gx[r]
    n_chunks = (n_t + _BLOCK - 1) // _BLOCK
    for j in range(n_chunks - 1, -1, -1):
        t0 = j * _BLOCK
        n = min(_BLOCK, n_t - t0)
        zz[:, :] = ck[r, j]
        for t in range(n):
            sig[0, t] = xr[t0 + t]
        for k in range(n_groups):
            _fwd_store(sig, n, sos, gs[k], ms[k], zz)
        for t in range(n):
            gb[t] = gyr[t0 + t]
        for k in range(n_groups - 1, -1, -1):
            _adjoint(sig, gb, n, sos, gs[k], ms[k], lm, ac)
        for t in range(n):
            gxr[t0 + t] = gb[t]
    lam[r] = lm
    acc[r] += ac


# --- checkpointing forward (the numba backend's kernels, plus the state every block) ---
#
# The same arithmetic as fxcli.dsp.sosfilt's numba backend (its _group / tile
# kernels, block by block with the state carried, which is how it streams), so y
# and zf are bit-identical to sosfilt's; in addition the state at the start of
# every _BLOCK samples is stored in ck (rows, n_blocks, S, 2), which the backward
# uses instead of a second forward pass.


@_njit
def _ckpt_row(x, y, sos, z, r, ck):  # pragma: no cover - compiled
    """Row r of x -> y (sosfilt's scalar kernels), z (S, R, 2) updated, ck[r, j] states."""
    n_sec = sos.shape[0]
    n_t = x.shape[1]
    n_groups = (n_sec + 3) // 4
    buf = np.empty(min(_BLOCK, n_t), dtype=np.float64)
    j = 0
    for t0 in range(0, n_t, _BLOCK):
        n = min(n_t - t0, _BLOCK)
        for s in range(n_sec):
            ck[r, j, s, 0] = z[s, r, 0]
            ck[r, j, s, 1] = z[s, r, 1]
        j += 1
        if n_sec <= 4:  # one fused group straight from x to y, as _rows does
            _sosmod._group(x[r, t0:], y[r, t0:], n, sos, 0, n_sec, z, r)
            continue
        for t in range(n):
            buf[t] = x[r, t0 + t]
        g = 0
        for k in range(n_groups):
            m = (n_sec - g + n_groups - k - 1) // (n_groups - k)
            _sosmod._group(buf, buf, n, sos, g, m, z, r)
            g += m
        for t in range(n):
            y[r, t0 + t] = buf[t]


if _numba is not None:
    from llvmlite import ir as _ir
    from numba.core import cgutils as _cgutils
    from numba.core import types as _types
    from numba.extending import intrinsic as _intrinsic

    _VEC = _sosmod._VEC
    _I64 = _sosmod._I64
    _splat = _sosmod._splat

    def _coefs(builder, sosp, g64, m):
        out = []
        for j in range(m):
            row = builder.mul(builder.add(g64, _ir.Constant(_I64, j)), _ir.Constant(_I64, 6))
            out.append(
                [
                    _splat(
                        builder,
                        builder.load(builder.gep(sosp, [builder.add(row, _ir.Constant(_I64, c))])),
                    )
                    for c in (0, 1, 2, 4, 5)
                ]
            )
        return out

    def _i64(builder, v):
        return builder.sext(v, _I64) if v.type.width < 64 else v

    def _make_store_kernel(m: int):
        """Intrinsic ``kern(sig, cap, n, sos, g, st)``: sections g..g+m-1 on _LANES rows,
        reading signal g and writing signals g+1..g+m of ``sig`` (float64, vector
        index s * cap + t, lane-interleaved), states in ``st`` as for the tile kernels."""

        @_intrinsic
        def kern(typingctx, sig, cap, n, sos, g, st):
            signature = _types.void(sig, cap, n, sos, g, st)

            def codegen(context, builder, sg, args):
                a_sig, a_cap, a_n, a_sos, a_g, a_st = args
                tys = sg.args
                sigv = builder.bitcast(
                    context.make_array(tys[0])(context, builder, a_sig).data, _VEC.as_pointer()
                )
                sosp = context.make_array(tys[3])(context, builder, a_sos).data
                stv = builder.bitcast(
                    context.make_array(tys[5])(context, builder, a_st).data, _VEC.as_pointer()
                )
                g64 = _i64(builder, a_g)
                cap = _i64(builder, a_cap)
                coef = _coefs(builder, sosp, g64, m)
                slots = []
                for i in range(2 * m):
                    slot = _cgutils.alloca_once(builder, _VEC)
                    builder.store(
                        builder.load(builder.gep(stv, [_ir.Constant(_I64, i)]), align=8), slot
                    )
                    slots.append(slot)
                bases = [
                    builder.mul(builder.add(g64, _ir.Constant(_I64, j)), cap) for j in range(m + 1)
                ]
                with _cgutils.for_range(builder, _i64(builder, a_n)) as loop:
                    t = loop.index
                    w = builder.load(builder.gep(sigv, [builder.add(bases[0], t)]), align=8)
                    for j in range(m):
                        b0, b1, b2, a1, a2 = coef[j]
                        p = builder.load(slots[2 * j])
                        q = builder.load(slots[2 * j + 1])
                        o = builder.fadd(builder.fmul(b0, w), p)
                        p = builder.fadd(builder.fsub(builder.fmul(b1, w), builder.fmul(a1, o)), q)
                        q = builder.fsub(builder.fmul(b2, w), builder.fmul(a2, o))
                        builder.store(p, slots[2 * j])
                        builder.store(q, slots[2 * j + 1])
                        builder.store(o, builder.gep(sigv, [builder.add(bases[j + 1], t)]), align=8)
                        w = o
                for i in range(2 * m):
                    builder.store(
                        builder.load(slots[i]), builder.gep(stv, [_ir.Constant(_I64, i)]), align=8
                    )
                return context.get_dummy_value()

            return signature, codegen

        return kern

    def _make_adjoint_kernel(m: int):
        """Intrinsic ``kern(sig, cap, gb, n, sos, g, lam, acc)``: the adjoint of sections
        g+m-1..g on _LANES rows over t = n-1..0 (see _adjoint1: the same
        fused multiply-adds in the same order, so tiles and rows give identical
        gradients); ``gb`` (vector index t) in place; ``lam`` adjoint states like
        ``st``; ``acc`` vector (5 j + k) the gradient sums of section g + j, added to
        (k < 3) or subtracted from (k = 3, 4)."""

        @_intrinsic
        def kern(typingctx, sig, cap, gb, n, sos, g, lam, acc):
            signature = _types.void(sig, cap, gb, n, sos, g, lam, acc)

            def codegen(context, builder, sg, args):
                a_sig, a_cap, a_gb, a_n, a_sos, a_g, a_lam, a_acc = args
                tys = sg.args

                def vptr(i, a):
                    data = context.make_array(tys[i])(context, builder, a).data
                    return builder.bitcast(data, _VEC.as_pointer())

                sigv = vptr(0, a_sig)
                gbv = vptr(2, a_gb)
                lamv = vptr(6, a_lam)
                accv = vptr(7, a_acc)
                sosp = context.make_array(tys[4])(context, builder, a_sos).data
                g64 = _i64(builder, a_g)
                cap = _i64(builder, a_cap)
                n64 = _i64(builder, a_n)
                coef = _coefs(builder, sosp, g64, m)
                slots = []
                for i in range(2 * m):
                    slot = _cgutils.alloca_once(builder, _VEC)
                    builder.store(
                        builder.load(builder.gep(lamv, [_ir.Constant(_I64, i)]), align=8), slot
                    )
                    slots.append(slot)
                accs = []
                for _ in range(5 * m):
                    slot = _cgutils.alloca_once(builder, _VEC)
                    builder.store(_ir.Constant(_VEC, [0.0] * _LANES), slot)
                    accs.append(slot)
                bases = [
                    builder.mul(builder.add(g64, _ir.Constant(_I64, j)), cap) for j in range(m + 1)
                ]
                fma = _cgutils.get_or_insert_function(
                    builder.module, _ir.FunctionType(_VEC, [_VEC] * 3), f"llvm.fma.v{_LANES}f64"
                )

                def fm(a, b, c):
                    return builder.call(fma, [a, b, c])

                neg = [(builder.fneg(c[3]), builder.fneg(c[4])) for c in coef]
                with _cgutils.for_range(builder, n64) as loop:
                    t = builder.sub(builder.sub(n64, _ir.Constant(_I64, 1)), loop.index)
                    gptr = builder.gep(gbv, [t])
                    big_g = builder.load(gptr, align=8)
                    for j in range(m - 1, -1, -1):
                        b0, b1, b2, _, _ = coef[j]
                        na1, na2 = neg[j]
                        w = builder.load(builder.gep(sigv, [builder.add(bases[j], t)]), align=8)
                        o = builder.load(builder.gep(sigv, [builder.add(bases[j + 1], t)]), align=8)
                        p = builder.load(slots[2 * j])
                        q = builder.load(slots[2 * j + 1])
                        gv = fm(na2, q, fm(na1, p, big_g))
                        for k, (u, v) in enumerate(((gv, w), (p, w), (q, w), (p, o), (q, o))):
                            builder.store(fm(u, v, builder.load(accs[5 * j + k])), accs[5 * j + k])
                        big_g = fm(b2, q, fm(b1, p, builder.fmul(b0, gv)))
                        builder.store(p, slots[2 * j + 1])
                        builder.store(gv, slots[2 * j])
                    builder.store(big_g, gptr, align=8)
                for i in range(2 * m):
                    builder.store(
                        builder.load(slots[i]), builder.gep(lamv, [_ir.Constant(_I64, i)]), align=8
                    )
                for i in range(5 * m):  # sums of a1, a2 (k = 3, 4) are subtracted
                    ptr = builder.gep(accv, [_ir.Constant(_I64, i)])
                    old = builder.load(ptr, align=8)
                    new = builder.load(accs[i])
                    res = builder.fsub(old, new) if i % 5 >= 3 else builder.fadd(old, new)
                    builder.store(res, ptr, align=8)
                return context.get_dummy_value()

            return signature, codegen

        return kern

    _sk1, _sk2, _sk3, _sk4 = (_make_store_kernel(m) for m in (1, 2, 3, 4))
    _ak1, _ak2, _ak3, _ak4 = (_make_adjoint_kernel(m) for m in (1, 2, 3, 4))

    @_njit
    def _tile_store(sig, cap, n, sos, g, m, st):  # pragma: no cover - compiled
        if m == 4:
            _sk4(sig, cap, n, sos, g, st)
        elif m == 3:
            _sk3(sig, cap, n, sos, g, st)
        elif m == 2:
            _sk2(sig, cap, n, sos, g, st)
        else:
            _sk1(sig, cap, n, sos, g, st)

    @_njit
    def _tile_adjoint(sig, cap, gb, n, sos, g, m, lam, acc):  # pragma: no cover - compiled
        if m == 4:
            _ak4(sig, cap, gb, n, sos, g, lam, acc)
        elif m == 3:
            _ak3(sig, cap, gb, n, sos, g, lam, acc)
        elif m == 2:
            _ak2(sig, cap, gb, n, sos, g, lam, acc)
        else:
            _ak1(sig, cap, gb, n, sos, g, lam, acc)

    @_njit
    def _ckpt_tile(x, y, sos, z, r0, ck):  # pragma: no cover - compiled
        """Rows r0..r0+3 with sosfilt's vector kernels (as its _tile), plus ck states."""
        n_sec = sos.shape[0]
        n_t = x.shape[1]
        lanes = _LANES
        n_groups = (n_sec + 3) // 4
        buf = np.empty(lanes * min(_BLOCK, n_t), dtype=np.float64)
        st = np.empty(2 * n_sec * lanes, dtype=np.float64)
        for s in range(n_sec):
            for i in range(2):
                for c in range(lanes):
                    st[(2 * s + i) * lanes + c] = z[s, r0 + c, i]
        j = 0
        for t0 in range(0, n_t, _BLOCK):
            n = min(n_t - t0, _BLOCK)
            for s in range(n_sec):
                for i in range(2):
                    for c in range(lanes):
                        ck[r0 + c, j, s, i] = st[(2 * s + i) * lanes + c]
            j += 1
            for c in range(lanes):
                xr = x[r0 + c]
                for t in range(n):
                    buf[lanes * t + c] = xr[t0 + t]
            g = 0
            for k in range(n_groups):
                m = (n_sec - g + n_groups - k - 1) // (n_groups - k)
                _sosmod._tile_group(buf, n, sos, g, m, st[2 * g * lanes :])
                g += m
            for c in range(lanes):
                yr = y[r0 + c]
                for t in range(n):
                    yr[t0 + t] = buf[lanes * t + c]
        for s in range(n_sec):
            for i in range(2):
                for c in range(lanes):
                    z[s, r0 + c, i] = st[(2 * s + i) * lanes + c]

    @_njit
    def _bwd_tile(x, gy, gx, sos, ck, lam, acc, r0):  # pragma: no cover - compiled
        """Backward of rows r0..r0+3 (vector kernels): chunks from the end, the chunk's
        section signals recomputed from ck, then the adjoint. lam (R, S, 2) in: grad
        of zf, out: grad of zi; acc (R, S, 5) += the coefficient sums."""
        n_sec = sos.shape[0]
        n_t = x.shape[1]
        lanes = _LANES
        cap = min(_BLOCK, n_t)
        gs, ms = _groups(n_sec)
        n_groups = gs.shape[0]
        sig = np.empty((n_sec + 1) * cap * lanes, dtype=np.float64)
        gb = np.empty(cap * lanes, dtype=np.float64)
        st = np.empty(2 * n_sec * lanes, dtype=np.float64)
        lm = np.empty(2 * n_sec * lanes, dtype=np.float64)
        ac = np.zeros(5 * n_sec * lanes, dtype=np.float64)
        for s in range(n_sec):
            for i in range(2):
                for c in range(lanes):
                    lm[(2 * s + i) * lanes + c] = lam[r0 + c, s, i]
        n_chunks = (n_t + _BLOCK - 1) // _BLOCK
        for j in range(n_chunks - 1, -1, -1):
            t0 = j * _BLOCK
            n = min(n_t - t0, _BLOCK)
            for s in range(n_sec):
                for i in range(2):
                    for c in range(lanes):
                        st[(2 * s + i) * lanes + c] = ck[r0 + c, j, s, i]
            for c in range(lanes):
                xr = x[r0 + c]
                gr = gy[r0 + c]
                for t in range(n):
                    sig[lanes * t + c] = xr[t0 + t]
                    gb[lanes * t + c] = gr[t0 + t]
            for k in range(n_groups):
                g = gs[k]
                _tile_store(sig, cap, n, sos, g, ms[k], st[2 * g * lanes :])
            for k in range(n_groups - 1, -1, -1):
                g = gs[k]
                _tile_adjoint(
                    sig, cap, gb, n, sos, g, ms[k], lm[2 * g * lanes :], ac[5 * g * lanes :]
                )
            for c in range(lanes):
                gr = gx[r0 + c]
                for t in range(n):
                    gr[t0 + t] = gb[lanes * t + c]
        for s in range(n_sec):
            for i in range(2):
                for c in range(lanes):
                    lam[r0 + c, s, i] = lm[(2 * s + i) * lanes + c]
            for k in range(5):
                for c in range(lanes):
                    acc[r0 + c, s, k] += ac[(5 * s + k) * lanes + c]

    @_njit
    def _ckpt_serial(x, y, sos, z, ck, n_tiles):  # pragma: no cover - compiled
        for i in range(n_tiles):
            _ckpt_tile(x, y, sos, z, _LANES * i, ck)
        for r in range(_LANES * n_tiles, x.shape[0]):
            _ckpt_row(x, y, sos, z, r, ck)

    @_njit(parallel=True)
    def _ckpt_parallel(x, y, sos, z, ck, n_tiles):  # pragma: no cover - compiled
        n_items = n_tiles + x.shape[0] - _LANES * n_tiles
        for i in _numba.prange(n_items):
            if i < n_tiles:
                _ckpt_tile(x, y, sos, z, _LANES * i, ck)
            else:
                _ckpt_row(x, y, sos, z, _LANES * n_tiles + (i - n_tiles), ck)

    @_njit
    def _bwd_serial(x, gy, gx, sos, ck, lam, acc, n_tiles):  # pragma: no cover - compiled
        for i in range(n_tiles):
            _bwd_tile(x, gy, gx, sos, ck, lam, acc, _LANES * i)
        for r in range(_LANES * n_tiles, x.shape[0]):
            _bwd_row(x, gy, gx, sos, ck, lam, acc, r)

    @_njit(parallel=True)
    def _bwd_parallel(x, gy, gx, sos, ck, lam, acc, n_tiles):  # pragma: no cover - compiled
        n_items = n_tiles + x.shape[0] - _LANES * n_tiles
        for i in _numba.prange(n_items):
            if i < n_tiles:
                _bwd_tile(x, gy, gx, sos, ck, lam, acc, _LANES * i)
            else:
                _bwd_row(x, gy, gx, sos, ck, lam, acc, _LANES * n_tiles + (i - n_tiles))


def _run(serial, parallel, rows: int, n_t: int, *args) -> None:
    """Run a kernel pair with sosfilt's threading policy and tile/row split."""
    threads = min(_sosmod._n_threads(), rows)
    n_tiles = rows // _LANES
    if (
        threads > 1
        and rows * n_t >= _sosmod._PAR_MIN_SAMPLES
        and not _sosmod._forked_child
        and _sosmod._par_lock.acquire(blocking=False)
    ):
        rem = rows - _LANES * n_tiles
        cost = _sosmod._TILE_COST
        tiled = max(cost if n_tiles else 0.0, (cost * n_tiles + rem) / threads)
        if n_tiles and tiled >= math.ceil(rows / threads):
            n_tiles = 0
        try:
            _numba.set_num_threads(min(threads, n_tiles + rows - _LANES * n_tiles))
            parallel(*args, n_tiles)
        finally:
            _sosmod._par_lock.release()
    else:
        serial(*args, n_tiles)


def _numba_ok(x: torch.Tensor, backend: str) -> bool:
    return x.device.type == "cpu" and _numba is not None and backend in ("auto", "numba")


def _sosfilt_ckpt(
    x2: torch.Tensor, sos: torch.Tensor, zi: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """The numba forward on (rows, n) CPU x (n > 0): y, zf (bit-identical to sosfilt's)
    and ck (rows, n_blocks, S, 2), the state at the start of every _BLOCK samples."""
    rows, n_t = x2.shape
    sos_np = _sosmod._sos_to_numpy(sos)
    n_sec = sos_np.shape[0]
    z = _sosmod._zi_rows(zi, n_sec, (rows,), rows, x2.device)
    x_np = x2.detach().contiguous().numpy()
    y_np = np.empty(x_np.shape, dtype=x_np.dtype)
    ck = np.empty((rows, -(-n_t // _BLOCK), n_sec, 2), dtype=np.float64)
    _run(_ckpt_serial, _ckpt_parallel, rows, n_t, x_np, y_np, sos_np, z.numpy(), ck)
    return torch.from_numpy(y_np), z, ck


def _sos_backward_numba(
    x2: torch.Tensor,
    sos: torch.Tensor,
    z0: torch.Tensor | None,
    gy: torch.Tensor,
    gzf: torch.Tensor,
    ck: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """numba backward on CPU: x2, gy (rows, n); z0, gzf (S, rows, 2) -> (gx, gsos (S, 6),
    gzi). ``ck`` from :func:`_sosfilt_ckpt` (recomputed here when None)."""
    rows, n_t = x2.shape
    n_sec = sos.shape[0]
    if n_t == 0 or rows == 0:
        gsos0 = torch.zeros((n_sec, 6), dtype=torch.float64)
        return x2.new_zeros(x2.shape), gsos0, gzf.detach().to(torch.float64).clone()
    if ck is None:
        ck = _sosfilt_ckpt(x2, sos, z0)[2]
    sos_np = np.ascontiguousarray(sos.detach().numpy())
    x_np = x2.detach().contiguous().numpy()
    gy_np = gy.detach().to(x2.dtype).contiguous().numpy()
    # a fresh copy: the kernel writes the zi gradient into it (never into grad_output)
    lam = np.array(gzf.detach().to(torch.float64).numpy().transpose(1, 0, 2), order="C")
    acc = np.zeros((rows, n_sec, 5), dtype=np.float64)
    gx_np = np.empty((rows, n_t), dtype=x_np.dtype)
    _run(_bwd_serial, _bwd_parallel, rows, n_t, x_np, gy_np, gx_np, sos_np, ck, lam, acc)
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
        ctx.ck = None
        if _numba_ok(x, backend) and x.shape[0] and x.shape[1]:
            # sosfilt's numba arithmetic (bit-identical), keeping block states for backward
            y, zf, ctx.ck = _sosfilt_ckpt(x, sos, zi)
        else:
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
        if not torch.is_grad_enabled() and _numba_ok(x, backend):
            gx, gsos, gzi = _sos_backward_numba(x, sos, zi, gy, gzf, ctx.ck)
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
