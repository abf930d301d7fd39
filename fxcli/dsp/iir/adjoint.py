"""The numba backward (adjoint) of the biquad cascade, for :mod:`fxcli.dsp.iir.autograd`.

The forward stores the cascade's state every :data:`~fxcli.dsp.iir.cpu.BLOCK`
samples (same arithmetic as the forward kernel, bit for bit); the backward runs
the adjoint recursion block by block, backwards in time, from those states. See
:mod:`fxcli.dsp.iir.autograd` for the maths.
"""

from __future__ import annotations

import numpy as np
import torch

from fxcli._jit import njit as _njit
from fxcli._jit import numba as _numba
from fxcli.dsp.iir._numba_cpu import BLOCK, I64, LANES, VEC, group, run_rows, splat, tile_group
from fxcli.dsp.iir.args import sos_to_numpy, zi_rows

__all__ = ["numba_ok", "sos_backward_numba", "sosfilt_ckpt"]


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
    """Backward of row r (scalar kernels): chunks of BLOCK from the end, the chunk's
    section signals recomputed from ck[r, j], then the adjoint. lam (R, S, 2) in: grad
    of zf, out: grad of zi; acc (R, S, 5) += the coefficient sums."""
    n_sec = sos.shape[0]
    n_t = x.shape[1]
    cap = min(BLOCK, n_t)
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
    n_chunks = (n_t + BLOCK - 1) // BLOCK
    for j in range(n_chunks - 1, -1, -1):
        t0 = j * BLOCK
        n = min(BLOCK, n_t - t0)
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
# every BLOCK samples is stored in ck (rows, n_blocks, S, 2), which the backward
# uses instead of a second forward pass.


@_njit
def _ckpt_row(x, y, sos, z, r, ck):  # pragma: no cover - compiled
    """Row r of x -> y (sosfilt's scalar kernels), z (S, R, 2) updated, ck[r, j] states."""
    n_sec = sos.shape[0]
    n_t = x.shape[1]
    n_groups = (n_sec + 3) // 4
    buf = np.empty(min(BLOCK, n_t), dtype=np.float64)
    j = 0
    for t0 in range(0, n_t, BLOCK):
        n = min(n_t - t0, BLOCK)
        for s in range(n_sec):
            ck[r, j, s, 0] = z[s, r, 0]
            ck[r, j, s, 1] = z[s, r, 1]
        j += 1
        if n_sec <= 4:  # one fused group straight from x to y, as _rows does
            group(x[r, t0:], y[r, t0:], n, sos, 0, n_sec, z, r)
            continue
        for t in range(n):
            buf[t] = x[r, t0 + t]
        g = 0
        for k in range(n_groups):
            m = (n_sec - g + n_groups - k - 1) // (n_groups - k)
            group(buf, buf, n, sos, g, m, z, r)
            g += m
        for t in range(n):
            y[r, t0 + t] = buf[t]


if _numba is not None:
    from llvmlite import ir as _ir
    from numba.core import cgutils as _cgutils
    from numba.core import types as _types
    from numba.extending import intrinsic as _intrinsic

    _VEC = VEC
    _I64 = I64
    _splat = splat

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
        """Intrinsic ``kern(sig, cap, n, sos, g, st)``: sections g..g+m-1 on LANES rows,
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
        g+m-1..g on LANES rows over t = n-1..0 (see _adjoint1: the same
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
                    builder.store(_ir.Constant(_VEC, [0.0] * LANES), slot)
                    accs.append(slot)
                bases = [
                    builder.mul(builder.add(g64, _ir.Constant(_I64, j)), cap) for j in range(m + 1)
                ]
                fma = _cgutils.get_or_insert_function(
                    builder.module, _ir.FunctionType(_VEC, [_VEC] * 3), f"llvm.fma.v{LANES}f64"
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
        lanes = LANES
        n_groups = (n_sec + 3) // 4
        buf = np.empty(lanes * min(BLOCK, n_t), dtype=np.float64)
        st = np.empty(2 * n_sec * lanes, dtype=np.float64)
        for s in range(n_sec):
            for i in range(2):
                for c in range(lanes):
                    st[(2 * s + i) * lanes + c] = z[s, r0 + c, i]
        j = 0
        for t0 in range(0, n_t, BLOCK):
            n = min(n_t - t0, BLOCK)
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
                tile_group(buf, n, sos, g, m, st[2 * g * lanes :])
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
        lanes = LANES
        cap = min(BLOCK, n_t)
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
        n_chunks = (n_t + BLOCK - 1) // BLOCK
        for j in range(n_chunks - 1, -1, -1):
            t0 = j * BLOCK
            n = min(n_t - t0, BLOCK)
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
            _ckpt_tile(x, y, sos, z, LANES * i, ck)
        for r in range(LANES * n_tiles, x.shape[0]):
            _ckpt_row(x, y, sos, z, r, ck)

    @_njit(parallel=True)
    def _ckpt_parallel(x, y, sos, z, ck, n_tiles):  # pragma: no cover - compiled
        n_items = n_tiles + x.shape[0] - LANES * n_tiles
        for i in _numba.prange(n_items):
            if i < n_tiles:
                _ckpt_tile(x, y, sos, z, LANES * i, ck)
            else:
                _ckpt_row(x, y, sos, z, LANES * n_tiles + (i - n_tiles), ck)

    @_njit
    def _bwd_serial(x, gy, gx, sos, ck, lam, acc, n_tiles):  # pragma: no cover - compiled
        for i in range(n_tiles):
            _bwd_tile(x, gy, gx, sos, ck, lam, acc, LANES * i)
        for r in range(LANES * n_tiles, x.shape[0]):
            _bwd_row(x, gy, gx, sos, ck, lam, acc, r)

    @_njit(parallel=True)
    def _bwd_parallel(x, gy, gx, sos, ck, lam, acc, n_tiles):  # pragma: no cover - compiled
        n_items = n_tiles + x.shape[0] - LANES * n_tiles
        for i in _numba.prange(n_items):
            if i < n_tiles:
                _bwd_tile(x, gy, gx, sos, ck, lam, acc, LANES * i)
            else:
                _bwd_row(x, gy, gx, sos, ck, lam, acc, LANES * n_tiles + (i - n_tiles))


def numba_ok(x: torch.Tensor, backend: str) -> bool:
    return x.device.type == "cpu" and _numba is not None and backend in ("auto", "cpu", "numba")


def sosfilt_ckpt(
    x2: torch.Tensor, sos: torch.Tensor, zi: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """The numba forward on (rows, n) CPU x (n > 0): y, zf (bit-identical to sosfilt's)
    and ck (rows, n_blocks, S, 2), the state at the start of every BLOCK samples."""
    rows, n_t = x2.shape
    sos_np = sos_to_numpy(sos)
    n_sec = sos_np.shape[0]
    z = zi_rows(zi, n_sec, (rows,), rows, x2.device)
    x_np = x2.detach().contiguous().numpy()
    y_np = np.empty(x_np.shape, dtype=x_np.dtype)
    ck = np.empty((rows, -(-n_t // BLOCK), n_sec, 2), dtype=np.float64)
    run_rows(_ckpt_serial, _ckpt_parallel, rows, n_t, x_np, y_np, sos_np, z.numpy(), ck)
    return torch.from_numpy(y_np), z, ck


def sos_backward_numba(
    x2: torch.Tensor,
    sos: torch.Tensor,
    z0: torch.Tensor | None,
    gy: torch.Tensor,
    gzf: torch.Tensor,
    ck: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """numba backward on CPU: x2, gy (rows, n); z0, gzf (S, rows, 2) -> (gx, gsos (S, 6),
    gzi). ``ck`` from :func:`sosfilt_ckpt` (recomputed here when None)."""
    rows, n_t = x2.shape
    n_sec = sos.shape[0]
    if n_t == 0 or rows == 0:
        gsos0 = torch.zeros((n_sec, 6), dtype=torch.float64)
        return x2.new_zeros(x2.shape), gsos0, gzf.detach().to(torch.float64).clone()
    if ck is None:
        ck = sosfilt_ckpt(x2, sos, z0)[2]
    sos_np = np.ascontiguousarray(sos.detach().numpy())
    x_np = x2.detach().contiguous().numpy()
    gy_np = gy.detach().to(x2.dtype).contiguous().numpy()
    # a fresh copy: the kernel writes the zi gradient into it (never into grad_output)
    lam = np.array(gzf.detach().to(torch.float64).numpy().transpose(1, 0, 2), order="C")
    acc = np.zeros((rows, n_sec, 5), dtype=np.float64)
    gx_np = np.empty((rows, n_t), dtype=x_np.dtype)
    run_rows(_bwd_serial, _bwd_parallel, rows, n_t, x_np, gy_np, gx_np, sos_np, ck, lam, acc)
    s = acc.sum(axis=0)
    gsos = np.zeros((n_sec, 6), dtype=np.float64)
    gsos[:, 0:3] = s[:, 0:3]
    gsos[:, 4:6] = s[:, 3:5]
    gzi = torch.from_numpy(np.ascontiguousarray(lam.transpose(1, 0, 2)))
    return torch.from_numpy(gx_np), torch.from_numpy(gsos), gzi
