"""The CPU kernel of the biquad cascade (numba): fused sections, SIMD across rows.

A fused, compiled cascade. For each sample all sections run with their
coefficients and states in local variables (registers); the batch is flattened
to rows (channels) that are spread over numba's threads, and groups of 4 rows
are filtered together with 4-wide SIMD vectors on a time-major copy (see
:data:`LANES`). The arithmetic is operation for operation SciPy's transposed
direct form II (no FMA contraction), so on x86-64 float64 results equal
``scipy.signal.sosfilt`` bit for bit, and chunked calls always equal one call
bit for bit.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from typing import TYPE_CHECKING

import numpy as np

from fxcli._jit import njit as _njit
from fxcli._jit import numba as _numba

if TYPE_CHECKING:
    import torch

__all__ = ["BLOCK", "LANES", "numba_available", "run_rows", "sosfilt_array", "sosfilt_numba"]


def numba_available() -> bool:
    """Whether the ``"numba"`` backend can be used (numba imported)."""
    return _numba is not None


# ---------------------------------------------------------------------------
# numba backend
# ---------------------------------------------------------------------------

# The kernels compile with fxcli._jit.njit: numba.njit(cache=True, nogil=True) whose
# on-disk cache never fails a run (a corrupt or unwritable cache recompiles).


# Kernel layout. Sections run in fused groups of up to 4: within a group all
# coefficients and states are scalars the compiler keeps in registers (4
# sections = 20 coefficients + 8 states is about what fits), so each sample runs
# through the whole group without touching memory. Cascades of up to 4 sections
# (8th order) are one group reading x and writing y directly. Longer ones go
# block by block (BLOCK samples) through a float64 scratch buffer that stays in
# L1: the block is converted in, every group runs over it in place, and it is
# converted out.
# The operation order per section is SciPy's transposed direct form II, so the
# results equal scipy.signal.sosfilt bit for bit (with SciPy built without FMA
# contraction, as on x86-64) and chunked calls equal one call bit for bit.
# (Routing every cascade through the buffer would cost 20-30 % at 4 sections;
# reading x and writing y of every dtype in every group would mean one compiled
# specialization per input/output dtype pair and ~20 s of cold compile.)
BLOCK = 2048


@_njit
def _sec1(u, v, n, sos, g, z, r):  # pragma: no cover - compiled
    """Sections g..g+0 of row r, u[:n] -> v[:n] (u may be v); states in z[g:g+1, r]."""
    b00 = sos[g + 0, 0]
    b01 = sos[g + 0, 1]
    b02 = sos[g + 0, 2]
    a01 = sos[g + 0, 4]
    a02 = sos[g + 0, 5]
    p0 = z[g + 0, r, 0]
    q0 = z[g + 0, r, 1]
    for t in range(n):
        w = np.float64(u[t])
        o = b00 * w + p0
        p0 = b01 * w - a01 * o + q0
        q0 = b02 * w - a02 * o
        w = o
        v[t] = w
    z[g + 0, r, 0] = p0
    z[g + 0, r, 1] = q0


@_njit
def _sec2(u, v, n, sos, g, z, r):  # pragma: no cover - compiled
    """Sections g..g+1 of row r, u[:n] -> v[:n] (u may be v); states in z[g:g+2, r]."""
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
    p0 = z[g + 0, r, 0]
    q0 = z[g + 0, r, 1]
    p1 = z[g + 1, r, 0]
    q1 = z[g + 1, r, 1]
    for t in range(n):
        w = np.float64(u[t])
        o = b00 * w + p0
        p0 = b01 * w - a01 * o + q0
        q0 = b02 * w - a02 * o
        w = o
        o = b10 * w + p1
        p1 = b11 * w - a11 * o + q1
        q1 = b12 * w - a12 * o
        w = o
        v[t] = w
    z[g + 0, r, 0] = p0
    z[g + 0, r, 1] = q0
    z[g + 1, r, 0] = p1
    z[g + 1, r, 1] = q1


@_njit
def _sec3(u, v, n, sos, g, z, r):  # pragma: no cover - compiled
    """Sections g..g+2 of row r, u[:n] -> v[:n] (u may be v); states in z[g:g+3, r]."""
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
    p0 = z[g + 0, r, 0]
    q0 = z[g + 0, r, 1]
    p1 = z[g + 1, r, 0]
    q1 = z[g + 1, r, 1]
    p2 = z[g + 2, r, 0]
    q2 = z[g + 2, r, 1]
    for t in range(n):
        w = np.float64(u[t])
        o = b00 * w + p0
        p0 = b01 * w - a01 * o + q0
        q0 = b02 * w - a02 * o
        w = o
        o = b10 * w + p1
        p1 = b11 * w - a11 * o + q1
        q1 = b12 * w - a12 * o
        w = o
        o = b20 * w + p2
        p2 = b21 * w - a21 * o + q2
        q2 = b22 * w - a22 * o
        w = o
        v[t] = w
    z[g + 0, r, 0] = p0
    z[g + 0, r, 1] = q0
    z[g + 1, r, 0] = p1
    z[g + 1, r, 1] = q1
    z[g + 2, r, 0] = p2
    z[g + 2, r, 1] = q2


@_njit
def _sec4(u, v, n, sos, g, z, r):  # pragma: no cover - compiled
    """Sections g..g+3 of row r, u[:n] -> v[:n] (u may be v); states in z[g:g+4, r]."""
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
    p0 = z[g + 0, r, 0]
    q0 = z[g + 0, r, 1]
    p1 = z[g + 1, r, 0]
    q1 = z[g + 1, r, 1]
    p2 = z[g + 2, r, 0]
    q2 = z[g + 2, r, 1]
    p3 = z[g + 3, r, 0]
    q3 = z[g + 3, r, 1]
    for t in range(n):
        w = np.float64(u[t])
        o = b00 * w + p0
        p0 = b01 * w - a01 * o + q0
        q0 = b02 * w - a02 * o
        w = o
        o = b10 * w + p1
        p1 = b11 * w - a11 * o + q1
        q1 = b12 * w - a12 * o
        w = o
        o = b20 * w + p2
        p2 = b21 * w - a21 * o + q2
        q2 = b22 * w - a22 * o
        w = o
        o = b30 * w + p3
        p3 = b31 * w - a31 * o + q3
        q3 = b32 * w - a32 * o
        w = o
        v[t] = w
    z[g + 0, r, 0] = p0
    z[g + 0, r, 1] = q0
    z[g + 1, r, 0] = p1
    z[g + 1, r, 1] = q1
    z[g + 2, r, 0] = p2
    z[g + 2, r, 1] = q2
    z[g + 3, r, 0] = p3
    z[g + 3, r, 1] = q3


@_njit
def group(u, v, n, sos, g, m, z, r):  # pragma: no cover - compiled
    """Run ``m`` (1..4) sections starting at section ``g`` of row ``r``: u[:n] -> v[:n]."""
    if m == 4:
        _sec4(u, v, n, sos, g, z, r)
    elif m == 3:
        _sec3(u, v, n, sos, g, z, r)
    elif m == 2:
        _sec2(u, v, n, sos, g, z, r)
    else:
        _sec1(u, v, n, sos, g, z, r)


@_njit
def _rows(x, y, sos, z, r0, r1):  # pragma: no cover - compiled
    """Filter rows r0..r1-1 of the 2-D C-contiguous ``x`` into ``y``; ``z`` is (S, R, 2)."""
    n_sec = sos.shape[0]
    n_t = x.shape[1]
    if n_sec <= 4:  # one fused group straight from x to y
        for r in range(r0, r1):
            group(x[r], y[r], n_t, sos, 0, n_sec, z, r)
        return
    n_groups = (n_sec + 3) // 4
    buf = np.empty(min(BLOCK, n_t), dtype=np.float64)
    for r in range(r0, r1):
        for t0 in range(0, n_t, BLOCK):
            n = min(n_t - t0, BLOCK)
            for t in range(n):
                buf[t] = x[r, t0 + t]
            g = 0
            for k in range(n_groups):
                # balanced group sizes, e.g. 5 -> 3 + 2, 9 -> 3 + 3 + 3
                m = (n_sec - g + n_groups - k - 1) // (n_groups - k)
                group(buf, buf, n, sos, g, m, z, r)
                g += m
            for t in range(n):
                y[r, t0 + t] = buf[t]


# Channel tiles (SIMD across channels). One row's cascade is a serial recurrence
# (each sample waits for the previous one: ~12 cycles per sample per section
# chain), so a single row cannot use the SIMD lanes. Groups of LANES = 4 rows are
# therefore transposed block by block into a time-major float64 buffer
# buf[4 t + c] and filtered with 4-wide vectors (AVX2: one ymm register per
# state), i.e. four channels for the cost of about one. numba's own
# auto-vectorizers do not vectorize this (SLP is off in numba; the loop vectorizer
# gave up on the state arrays), so the kernels below emit the vector loop as LLVM
# IR directly (numba @intrinsic): plain fmul / fadd / fsub without fast-math
# flags, in the scalar kernel's operation order, so every lane computes exactly
# what _sec1.._sec4 compute for its row (bit-identical to SciPy on x86-64, and
# tiles and single rows can be mixed freely). States live in allocas that LLVM
# promotes to registers. Measured on the 2-core dev VM (8 ch x 60 s float32,
# 4 biquads): one thread ~310 Msamples/s vs ~200 for the scalar rows; two
# threads (one tile each) ~780 vs ~330.
LANES = 4
TILE_COST = 2.2  # time of one tile in scalar-row units (see sosfilt_numba)

if _numba is not None:
    from llvmlite import ir as _ir
    from numba.core import cgutils as _cgutils
    from numba.core import types as _types
    from numba.extending import intrinsic as _intrinsic

    _F64 = _ir.DoubleType()
    VEC = _ir.VectorType(_F64, LANES)
    I64 = _ir.IntType(64)

    def splat(builder, value):
        vec = _ir.Constant(VEC, _ir.Undefined)
        for i in range(LANES):
            vec = builder.insert_element(vec, value, _ir.Constant(_ir.IntType(32), i))
        return vec

    def _make_tile_kernel(m: int):
        """Intrinsic ``kern(buf, n, sos, g, st)``: sections g..g+m-1 on ``LANES`` rows.

        ``buf`` float64, time-major (buf[LANES * t + c], t < n), filtered in place;
        ``st`` float64 with st[(2 j + i) * LANES + c] = state i of section g + j,
        lane c (read at the start, written at the end).
        """

        @_intrinsic
        def kern(typingctx, buf, n, sos, g, st):
            sig = _types.void(buf, n, sos, g, st)

            def codegen(context, builder, signature, args):
                a_buf, a_n, a_sos, a_g, a_st = args
                tys = signature.args
                bufp = context.make_array(tys[0])(context, builder, a_buf).data
                sosp = context.make_array(tys[2])(context, builder, a_sos).data
                stp = context.make_array(tys[4])(context, builder, a_st).data
                bufv = builder.bitcast(bufp, VEC.as_pointer())
                stv = builder.bitcast(stp, VEC.as_pointer())
                g64 = builder.sext(a_g, I64) if a_g.type.width < 64 else a_g
                coef = []
                for j in range(m):
                    row = builder.mul(builder.add(g64, _ir.Constant(I64, j)), _ir.Constant(I64, 6))
                    coef.append(
                        [
                            splat(
                                builder,
                                builder.load(
                                    builder.gep(sosp, [builder.add(row, _ir.Constant(I64, col))])
                                ),
                            )
                            for col in (0, 1, 2, 4, 5)
                        ]
                    )
                slots = []
                for i in range(2 * m):
                    slot = _cgutils.alloca_once(builder, VEC)
                    builder.store(
                        builder.load(builder.gep(stv, [_ir.Constant(I64, i)]), align=8), slot
                    )
                    slots.append(slot)
                n64 = builder.sext(a_n, I64) if a_n.type.width < 64 else a_n
                with _cgutils.for_range(builder, n64) as loop:
                    ptr = builder.gep(bufv, [loop.index])
                    w = builder.load(ptr, align=8)
                    for j in range(m):
                        b0, b1, b2, a1, a2 = coef[j]
                        p = builder.load(slots[2 * j])
                        q = builder.load(slots[2 * j + 1])
                        o = builder.fadd(builder.fmul(b0, w), p)  # o = b0 * w + p
                        p = builder.fadd(builder.fsub(builder.fmul(b1, w), builder.fmul(a1, o)), q)
                        q = builder.fsub(builder.fmul(b2, w), builder.fmul(a2, o))
                        builder.store(p, slots[2 * j])
                        builder.store(q, slots[2 * j + 1])
                        w = o
                    builder.store(w, ptr, align=8)
                for i in range(2 * m):
                    builder.store(
                        builder.load(slots[i]), builder.gep(stv, [_ir.Constant(I64, i)]), align=8
                    )
                return context.get_dummy_value()

            return sig, codegen

        return kern

    _tk1, _tk2, _tk3, _tk4 = (_make_tile_kernel(m) for m in (1, 2, 3, 4))

    @_njit
    def tile_group(buf, n, sos, g, m, st):  # pragma: no cover - compiled
        if m == 4:
            _tk4(buf, n, sos, g, st)
        elif m == 3:
            _tk3(buf, n, sos, g, st)
        elif m == 2:
            _tk2(buf, n, sos, g, st)
        else:
            _tk1(buf, n, sos, g, st)

    @_njit
    def _tile(x, y, sos, z, r0):  # pragma: no cover - compiled
        """Rows r0..r0+LANES-1 of ``x`` into ``y`` with the vector kernels."""
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
        for t0 in range(0, n_t, BLOCK):
            n = min(n_t - t0, BLOCK)
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
    def _tiled(x, y, sos, z, n_tiles):  # pragma: no cover - compiled
        """The first ``n_tiles`` tiles with the vector kernels, the remaining rows scalar."""
        for i in range(n_tiles):
            _tile(x, y, sos, z, LANES * i)
        _rows(x, y, sos, z, LANES * n_tiles, x.shape[0])

    @_njit(parallel=True)
    def _rows_parallel(x, y, sos, z, n_tiles):  # pragma: no cover - compiled
        """``n_tiles`` vector tiles, then the remaining rows one by one, over numba's threads."""
        n_items = n_tiles + x.shape[0] - LANES * n_tiles
        for i in _numba.prange(n_items):
            if i < n_tiles:
                _tile(x, y, sos, z, LANES * i)
            else:
                r = LANES * n_tiles + (i - n_tiles)
                _rows(x, y, sos, z, r, r + 1)


# Threading across channels. Measured on the 2-core dev VM (8 ch x 60 s, 4
# biquads, output pre-faulted): numba prange ~400 Msamples/s vs ~350 for a
# ThreadPoolExecutor over row blocks (nogil kernels) vs ~215 single-threaded, and
# prange's hand-off costs ~5 us where the pool's cost ~100 us (prange already
# wins at 2 ch x 4096 samples: 25 us vs 44 us serial). So prange it is, for
# inputs of at least _PAR_MIN_SAMPLES samples and at least 2 rows.
# Safety: only one thread at a time runs the parallel kernel (others run the
# serial one, so concurrent callers never block and numba's "workqueue"
# layer, which is not thread-safe, is never entered concurrently), and a forked
# child never runs it (GNU OpenMP is not fork-safe).
_PAR_MIN_SAMPLES = 2048
_par_lock = threading.Lock()
_forked_child = False


def _mark_forked_child() -> None:  # pragma: no cover - runs in a forked child
    global _forked_child, _par_lock
    _forked_child = True
    _par_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked_child)


def n_threads() -> int:
    """Threads for the numba backend: torch's intra-op setting when torch is loaded (the
    library), else the processor count; capped by numba's pool."""
    torch_mod = sys.modules.get("torch")
    n = torch_mod.get_num_threads() if torch_mod is not None else (os.cpu_count() or 1)
    if _numba is not None:
        n = min(n, int(_numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    return max(1, n)


def run_rows(serial, parallel, rows: int, n_t: int, *args) -> None:  # type: ignore[no-untyped-def]
    """Run a (serial, parallel) kernel pair over ``rows`` rows of ``n_t`` samples with
    the threading policy above: ``parallel(*args, n_tiles)`` on several threads when
    that pays and is safe, else ``serial(*args, n_tiles)`` (``n_tiles`` SIMD tiles of
    :data:`LANES` rows, the remaining rows scalar)."""
    threads = min(n_threads(), rows)
    n_tiles = rows // LANES
    if (
        threads > 1
        and rows * n_t >= _PAR_MIN_SAMPLES
        and not _forked_child
        and _par_lock.acquire(blocking=False)
    ):
        # A tile of 4 rows takes ~2.2 scalar rows' time on one thread (measured
        # ~390 vs ~200 Msamples/s per thread): use tiles where that finishes first.
        rem = rows - LANES * n_tiles
        tiled = max(TILE_COST if n_tiles else 0.0, (TILE_COST * n_tiles + rem) / threads)
        if n_tiles and tiled >= math.ceil(rows / threads):
            n_tiles = 0
        try:
            _numba.set_num_threads(min(threads, n_tiles + rows - LANES * n_tiles))
            parallel(*args, n_tiles)
        finally:
            _par_lock.release()
    else:
        serial(*args, n_tiles)


def _serial(x, y, sos, z, n_tiles):  # type: ignore[no-untyped-def]
    if n_tiles:
        _tiled(x, y, sos, z, n_tiles)
    else:
        _rows(x, y, sos, z, 0, x.shape[0])


def sosfilt_array(x2: np.ndarray, sos_np: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The cascade on a 2-D (rows, time) float32/float64 numpy array; ``sos_np``
    (S, 6) float64 with a0 = 1 (see :func:`fxcli.dsp.iir.args.sos_to_numpy`), ``z``
    (S, rows, 2) float64 C-contiguous, updated in place to the final state. Returns
    ``y`` of ``x2``'s shape and dtype. No torch involved: this is the CPU path's entry."""
    x_np = np.ascontiguousarray(x2)
    # numpy allocates large arrays with madvise(MADV_HUGEPAGE): on Linux with THP in
    # "madvise" mode first-touch page faults of the output then cost ~6x less than
    # for torch.empty (measured: 10 ms vs 60 ms for 85 MB, as much as the filtering).
    y_np = np.empty(x_np.shape, dtype=x_np.dtype)
    rows, n_t = x_np.shape
    if rows and n_t:
        run_rows(_serial, _rows_parallel, rows, n_t, x_np, y_np, sos_np, z)
    return y_np


def sosfilt_numba(
    x2: torch.Tensor, sos_np: np.ndarray, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """numba backend on a 2-D (rows, time) CPU tensor; ``z`` (S, rows, 2) float64 is updated."""
    import torch

    y = sosfilt_array(x2.contiguous().numpy(), sos_np, z.numpy())
    return torch.from_numpy(y), z
