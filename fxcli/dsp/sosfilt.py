"""Second-order-section (biquad cascade) IIR filtering for torch tensors.

:func:`sosfilt` mirrors :func:`scipy.signal.sosfilt` (same coefficient layout,
same ``zi``/``zf`` state layout and semantics) and streams exactly: filtering a
signal in chunks while carrying ``zf`` into the next call's ``zi`` gives the
same result as one call on the whole signal.

Two backends compute it:

``"numba"`` (CPU only)
    A fused, compiled cascade. For each sample all sections run with their
    coefficients and states in local variables (registers); the batch is
    flattened to rows (channels) that are spread over numba's threads, and
    groups of 4 rows are filtered together with 4-wide SIMD vectors on a
    time-major copy (see ``_LANES``). The
    arithmetic is operation for operation SciPy's transposed direct form II
    (no FMA contraction), so on x86-64 float64 results equal
    ``scipy.signal.sosfilt`` bit for bit, and chunked calls always equal one
    call bit for bit.

``"torch"`` (any device; the GPU path)
    A time-parallel block algorithm on the cascade's state-space form: the time
    axis is cut into segments of ``L`` samples, each segment's zero-state
    response is a Toeplitz matmul, the segment boundary states come from a
    parallel (Hillis-Steele) scan, and the state response is added back. The
    matrices (powers of the state matrix, impulse response) are precomputed in
    extended precision (``np.longdouble``, 80-bit on x86-64) and rounded once
    to float64: computing them in float64 made the results up to ~1000x less
    accurate than SciPy's for designs with poles close to z = 1 (e.g. 20 Hz at
    96 kHz). With it, the distance to the exact result is within about 20x of
    SciPy's own float64 rounding error (measured on 285 random designs against
    an 80-bit reference and SciPy); on platforms where ``np.longdouble`` is
    float64 that advantage is lost for such designs. Not bit-identical to
    SciPy, and chunked calls agree with one call to rounding.

All arithmetic, coefficients and states are float64 whatever the input dtype.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from fxcli._jit import njit as _njit

try:  # numba is optional at run time: without it "auto" uses the torch backend.
    import numba as _numba
except Exception:  # pragma: no cover - depends on the environment
    _numba = None  # type: ignore[assignment]

__all__ = ["sosfilt", "numba_available"]

_BACKENDS = ("auto", "numba", "torch", "triton")


def numba_available() -> bool:
    """Whether the ``"numba"`` backend can be used (numba imported)."""
    return _numba is not None


# ---------------------------------------------------------------------------
# argument checking
# ---------------------------------------------------------------------------


def _check_x(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if x.ndim < 1:
        raise ValueError("x must have at least one dimension (the last one is time)")


def _sos_to_numpy(sos: torch.Tensor | np.ndarray) -> np.ndarray:
    """Validate ``sos`` and return it as a C-contiguous float64 numpy array, a0 = 1."""
    if isinstance(sos, torch.Tensor):
        arr = sos.detach().to(device="cpu", dtype=torch.float64).numpy()
    else:
        arr = np.asarray(sos, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 6 or arr.shape[0] < 1:
        raise ValueError(
            "sos must have shape (n_sections, 6) with rows [b0, b1, b2, a0, a1, a2] "
            f"and n_sections >= 1, got shape {tuple(arr.shape)}"
        )
    if not np.isfinite(arr).all():
        bad = sorted({int(i) for i in np.nonzero(~np.isfinite(arr))[0]})
        raise ValueError(f"sos has non-finite coefficients (nan or inf) in section(s) {bad}")
    a0 = arr[:, 3]
    if not (a0 == 1.0).all():
        if (a0 == 0.0).any():
            bad = [int(i) for i in np.nonzero(a0 == 0.0)[0]]
            raise ValueError(f"sos has a0 == 0 (column 3) in section(s) {bad}; a0 must be nonzero")
        arr = arr / a0[:, None]
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _zi_rows(
    zi: torch.Tensor | None,
    n_sections: int,
    batch: tuple[int, ...],
    rows: int,
    device: torch.device,
) -> torch.Tensor:
    """Return the state as a fresh contiguous float64 (S, rows, 2) tensor on ``device``."""
    expected = (n_sections, *batch, 2)
    if zi is None:
        return torch.zeros((n_sections, rows, 2), dtype=torch.float64, device=device)
    if not isinstance(zi, torch.Tensor):
        zi = torch.as_tensor(zi)
    if tuple(zi.shape) != expected:
        raise ValueError(
            f"zi must have shape (n_sections, *batch, 2) = {expected}, got {tuple(zi.shape)}"
        )
    return zi.detach().to(device=device, dtype=torch.float64).reshape(n_sections, rows, 2).clone()


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
# block by block (_BLOCK samples) through a float64 scratch buffer that stays in
# L1: the block is converted in, every group runs over it in place, and it is
# converted out.
# The operation order per section is SciPy's transposed direct form II, so the
# results equal scipy.signal.sosfilt bit for bit (with SciPy built without FMA
# contraction, as on x86-64) and chunked calls equal one call bit for bit.
# (Routing every cascade through the buffer would cost 20-30 % at 4 sections;
# reading x and writing y of every dtype in every group would mean one compiled
# specialization per input/output dtype pair and ~20 s of cold compile.)
_BLOCK = 2048


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
def _group(u, v, n, sos, g, m, z, r):  # pragma: no cover - compiled
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
            _group(x[r], y[r], n_t, sos, 0, n_sec, z, r)
        return
    n_groups = (n_sec + 3) // 4
    buf = np.empty(min(_BLOCK, n_t), dtype=np.float64)
    for r in range(r0, r1):
        for t0 in range(0, n_t, _BLOCK):
            n = min(n_t - t0, _BLOCK)
            for t in range(n):
                buf[t] = x[r, t0 + t]
            g = 0
            for k in range(n_groups):
                # balanced group sizes, e.g. 5 -> 3 + 2, 9 -> 3 + 3 + 3
                m = (n_sec - g + n_groups - k - 1) // (n_groups - k)
                _group(buf, buf, n, sos, g, m, z, r)
                g += m
            for t in range(n):
                y[r, t0 + t] = buf[t]


# Channel tiles (SIMD across channels). One row's cascade is a serial recurrence
# (each sample waits for the previous one: ~12 cycles per sample per section
# chain), so a single row cannot use the SIMD lanes. Groups of _LANES = 4 rows are
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
_LANES = 4
_TILE_COST = 2.2  # time of one tile in scalar-row units (see _sosfilt_numba)

if _numba is not None:
    from llvmlite import ir as _ir
    from numba.core import cgutils as _cgutils
    from numba.core import types as _types
    from numba.extending import intrinsic as _intrinsic

    _F64 = _ir.DoubleType()
    _VEC = _ir.VectorType(_F64, _LANES)
    _I64 = _ir.IntType(64)

    def _splat(builder, value):
        vec = _ir.Constant(_VEC, _ir.Undefined)
        for i in range(_LANES):
            vec = builder.insert_element(vec, value, _ir.Constant(_ir.IntType(32), i))
        return vec

    def _make_tile_kernel(m: int):
        """Intrinsic ``kern(buf, n, sos, g, st)``: sections g..g+m-1 on ``_LANES`` rows.

        ``buf`` float64, time-major (buf[_LANES * t + c], t < n), filtered in place;
        ``st`` float64 with st[(2 j + i) * _LANES + c] = state i of section g + j,
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
                bufv = builder.bitcast(bufp, _VEC.as_pointer())
                stv = builder.bitcast(stp, _VEC.as_pointer())
                g64 = builder.sext(a_g, _I64) if a_g.type.width < 64 else a_g
                coef = []
                for j in range(m):
                    row = builder.mul(
                        builder.add(g64, _ir.Constant(_I64, j)), _ir.Constant(_I64, 6)
                    )
                    coef.append(
                        [
                            _splat(
                                builder,
                                builder.load(
                                    builder.gep(sosp, [builder.add(row, _ir.Constant(_I64, col))])
                                ),
                            )
                            for col in (0, 1, 2, 4, 5)
                        ]
                    )
                slots = []
                for i in range(2 * m):
                    slot = _cgutils.alloca_once(builder, _VEC)
                    builder.store(
                        builder.load(builder.gep(stv, [_ir.Constant(_I64, i)]), align=8), slot
                    )
                    slots.append(slot)
                n64 = builder.sext(a_n, _I64) if a_n.type.width < 64 else a_n
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
                        builder.load(slots[i]), builder.gep(stv, [_ir.Constant(_I64, i)]), align=8
                    )
                return context.get_dummy_value()

            return sig, codegen

        return kern

    _tk1, _tk2, _tk3, _tk4 = (_make_tile_kernel(m) for m in (1, 2, 3, 4))

    @_njit
    def _tile_group(buf, n, sos, g, m, st):  # pragma: no cover - compiled
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
        """Rows r0..r0+_LANES-1 of ``x`` into ``y`` with the vector kernels."""
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
        for t0 in range(0, n_t, _BLOCK):
            n = min(n_t - t0, _BLOCK)
            for c in range(lanes):
                xr = x[r0 + c]
                for t in range(n):
                    buf[lanes * t + c] = xr[t0 + t]
            g = 0
            for k in range(n_groups):
                m = (n_sec - g + n_groups - k - 1) // (n_groups - k)
                _tile_group(buf, n, sos, g, m, st[2 * g * lanes :])
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
            _tile(x, y, sos, z, _LANES * i)
        _rows(x, y, sos, z, _LANES * n_tiles, x.shape[0])

    @_njit(parallel=True)
    def _rows_parallel(x, y, sos, z, n_tiles):  # pragma: no cover - compiled
        """``n_tiles`` vector tiles, then the remaining rows one by one, over numba's threads."""
        n_items = n_tiles + x.shape[0] - _LANES * n_tiles
        for i in _numba.prange(n_items):
            if i < n_tiles:
                _tile(x, y, sos, z, _LANES * i)
            else:
                r = _LANES * n_tiles + (i - n_tiles)
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


def _n_threads() -> int:
    """Threads for the numba backend: torch's intra-op setting, capped by numba's pool."""
    n = torch.get_num_threads()
    if _numba is not None:
        n = min(n, int(_numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    return max(1, n)


def _sosfilt_numba(
    x2: torch.Tensor, sos_np: np.ndarray, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """numba backend on a 2-D (rows, time) CPU tensor; ``z`` (S, rows, 2) float64 is updated."""
    x_np = x2.contiguous().numpy()
    # numpy allocates large arrays with madvise(MADV_HUGEPAGE): on Linux with THP in
    # "madvise" mode first-touch page faults of the output then cost ~6x less than
    # for torch.empty (measured: 10 ms vs 60 ms for 85 MB, as much as the filtering).
    y_np = np.empty(x_np.shape, dtype=x_np.dtype)
    y = torch.from_numpy(y_np)
    z_np = z.numpy()
    rows, n_t = x_np.shape
    threads = min(_n_threads(), rows)
    n_tiles = rows // _LANES
    if (
        threads > 1
        and rows * n_t >= _PAR_MIN_SAMPLES
        and not _forked_child
        and _par_lock.acquire(blocking=False)
    ):
        # A tile of 4 rows takes ~2.2 scalar rows' time on one thread (measured
        # ~390 vs ~200 Msamples/s per thread): use tiles where that finishes first.
        rem = rows - _LANES * n_tiles
        tiled = max(_TILE_COST if n_tiles else 0.0, (_TILE_COST * n_tiles + rem) / threads)
        if n_tiles and tiled >= math.ceil(rows / threads):
            n_tiles = 0
        try:
            _numba.set_num_threads(min(threads, n_tiles + rows - _LANES * n_tiles))
            _rows_parallel(x_np, y_np, sos_np, z_np, n_tiles)
        finally:
            _par_lock.release()
    elif n_tiles:
        _tiled(x_np, y_np, sos_np, z_np, n_tiles)
    else:
        _rows(x_np, y_np, sos_np, z_np, 0, rows)
    return y, z


# ---------------------------------------------------------------------------
# torch backend (time-parallel block state-space algorithm)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _BlockMats:
    """Precomputed float64 matrices for segment length L (row-vector convention).

    With N = 2S states (section s owns states 2s, 2s+1 = scipy's zi[s, :]) and
    the cascade's state-space form x[n+1] = A x[n] + B u[n], y[n] = C x[n] + D u[n]:

    - ``HT``  (L, L): transposed lower-triangular Toeplitz matrix of the impulse
      response h[0] = D, h[m] = C A^(m-1) B; zero-state output = X @ HT.
    - ``MT``  (L, N): row k is (A^(L-1-k) B)^T; zero-state end state = X @ MT.
    - ``TT``  (N, L): column n is (C A^n)^T; state response = s @ TT.
    - ``PT``  (K, N, N): (A^(L * 2^k))^T for the doubling scan.
    - ``ApT`` (L+1, N, N): (A^n)^T, n = 0..L, for the final partial segment.
    """

    L: int
    N: int
    HT: torch.Tensor
    MT: torch.Tensor
    TT: torch.Tensor
    PT: torch.Tensor
    ApT: torch.Tensor


_MATS_CACHE: OrderedDict[tuple, _BlockMats] = OrderedDict()
_MATS_CACHE_SIZE = 32
_MATS_LOCK = threading.Lock()
_SCAN_LEVELS = 26  # P^(2^k) for k < 26: enough for 2^26 segments per slab


_XP = np.longdouble


def _state_space(sos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(A, B, C, D) of the cascade of DF2T sections; states ordered like scipy's zi."""
    n_sec = sos.shape[0]
    n = 2 * n_sec
    a = np.zeros((n, n), dtype=sos.dtype)
    b = np.zeros(n, dtype=sos.dtype)
    c = np.zeros(n, dtype=sos.dtype)
    d = sos.dtype.type(1.0)
    for s in range(n_sec):
        b0, b1, b2, _, a1, a2 = sos[s]
        i = 2 * s
        # section input u_s = c . state + d * x  (c, d: the cascade so far)
        a_s = np.array([[-a1, 1.0], [-a2, 0.0]], dtype=sos.dtype)
        b_s = np.array([b1 - a1 * b0, b2 - a2 * b0], dtype=sos.dtype)
        a[i : i + 2, :i] = np.outer(b_s, c[:i])
        a[i : i + 2, i : i + 2] = a_s
        b[i : i + 2] = b_s * d
        c[:i] = b0 * c[:i]
        c[i] = 1.0
        d = b0 * d
    return a, b, c, d


def _block_mats(sos: np.ndarray, seg: int, device: torch.device) -> _BlockMats:
    key = (sos.tobytes(), sos.shape[0], seg, str(device))
    with _MATS_LOCK:
        hit = _MATS_CACHE.get(key)
        if hit is not None:
            _MATS_CACHE.move_to_end(key)
            return hit
    a, b, c, d = _state_space(sos.astype(_XP))
    n = a.shape[0]
    apow = np.empty((seg + 1, n, n), dtype=_XP)
    apow[0] = np.eye(n, dtype=_XP)
    for k in range(1, seg + 1):
        apow[k] = a @ apow[k - 1]
    ab = apow[:seg] @ b  # (L, N): A^k B
    h = np.empty(seg, dtype=_XP)
    h[0] = d
    h[1:] = ab[: seg - 1] @ c
    idx = np.arange(seg)
    diff = idx[:, None] - idx[None, :]  # H[k, i] = h[k - i] for k >= i
    toep = np.where(diff >= 0, h[np.clip(diff, 0, None)], 0.0)
    mt = ab[::-1].copy()  # row k = A^(L-1-k) B
    tt = (apow[:seg].transpose(0, 2, 1) @ c).T  # column k = (C A^k)^T
    pt = np.empty((_SCAN_LEVELS, n, n), dtype=_XP)
    p = apow[seg]
    for k in range(_SCAN_LEVELS):
        pt[k] = p.T
        p = p @ p
        if not np.all(np.isfinite(p)):  # unstable filter: stop squaring before inf/nan
            p = np.where(np.isfinite(p), p, 0.0)

    def dev(arr: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64)).to(device)

    mats = _BlockMats(
        L=seg,
        N=n,
        HT=dev(toep.T),
        MT=dev(mt),
        TT=dev(tt),
        PT=dev(pt),
        ApT=dev(apow.transpose(0, 2, 1)),
    )
    with _MATS_LOCK:
        _MATS_CACHE[key] = mats
        _MATS_CACHE.move_to_end(key)
        while len(_MATS_CACHE) > _MATS_CACHE_SIZE:
            _MATS_CACHE.popitem(last=False)
    return mats


# The torch backend treats up to _TORCH_GROUP consecutive sections as one
# state-space system (N = 2 * sections states); longer cascades are run as
# several such systems one after another on each slab.
_TORCH_GROUP = 16


def _segment_length(n_states: int) -> int:
    """Segment length L for a system of ``n_states`` states (L >= 4 N keeps the scan cheap)."""
    return 64 if n_states <= 16 else 128


def _slab_elements(device: torch.device) -> int:
    """float64 elements of one (rows, segments, L) slab.

    Every temporary is at most about this size, so memory stays bounded for
    long signals. On CPU a small slab (2 MiB) stays in cache and avoids the
    page-fault cost of fresh large allocations (measured ~2x faster than
    32 MiB slabs); on GPUs a large slab amortizes kernel launches.
    """
    return 1 << 18 if device.type == "cpu" else 1 << 24


def _block_step(
    xs: torch.Tensor, m: _BlockMats, state: torch.Tensor, rows: int, js: int, pad: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One slab through one state-space group.

    ``xs`` is (rows * js, L) float64 (segments of the slab, the last one padded
    with ``pad`` samples), ``state`` (rows, N) the state entering the slab.
    Returns the output segments (same shape as ``xs``) and the state after the
    slab's last real sample.
    """
    n, seg = m.N, m.L
    # (2) zero-state end state of every segment; fold the incoming state in
    e = (xs @ m.MT).reshape(rows, js, n)
    e[:, 0] += state @ m.PT[0]
    # (3) inclusive scan e_j = P e_{j-1} + f_j (Hillis-Steele doubling with P^(2^k))
    d, k = 1, 0
    while d < js:
        e[:, d:] += e[:, :-d] @ m.PT[k]
        d, k = 2 * d, k + 1
    s_in = torch.cat((state.unsqueeze(1), e[:, :-1]), dim=1)  # state entering segment j
    # (1) + (4) zero-state output (causal Toeplitz) plus state response
    ys = torch.addmm(xs @ m.HT, s_in.reshape(rows * js, n), m.TT)
    # (5) state after the last real sample
    if pad:
        rem = seg - pad
        last_x = xs.reshape(rows, js, seg)[:, -1, :rem]
        state = s_in[:, -1] @ m.ApT[rem] + last_x @ m.MT[pad:]
    else:
        state = e[:, -1].clone()
    return ys, state


def _sosfilt_torch(
    x2: torch.Tensor, sos_np: np.ndarray, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """torch backend on a 2-D (rows, time) tensor; ``z`` is (S, rows, 2) float64."""
    rows, n_t = x2.shape
    device = x2.device
    n_sec = sos_np.shape[0]
    bounds = [(g, min(n_sec, g + _TORCH_GROUP)) for g in range(0, n_sec, _TORCH_GROUP)]
    seg = _segment_length(2 * (bounds[0][1] - bounds[0][0]))
    mats = [_block_mats(np.ascontiguousarray(sos_np[g0:g1]), seg, device) for g0, g1 in bounds]
    # row-vector states (rows, N_group): section s of the group owns columns 2s, 2s+1
    states = [z[g0:g1].permute(1, 0, 2).reshape(rows, 2 * (g1 - g0)) for g0, g1 in bounds]
    y = torch.empty((rows, n_t), dtype=x2.dtype, device=device)
    n_segs = -(-n_t // seg)
    per_slab = min(1 << _SCAN_LEVELS, max(1, _slab_elements(device) // (rows * seg)))
    for j0 in range(0, n_segs, per_slab):
        j1 = min(n_segs, j0 + per_slab)
        t0, t1 = j0 * seg, min(n_t, j1 * seg)
        js = j1 - j0
        pad = js * seg - (t1 - t0)
        if pad:  # only the last slab: zero-padded copy
            xs = torch.zeros((rows, js * seg), dtype=torch.float64, device=device)
            xs[:, : t1 - t0] = x2[:, t0:t1]
        else:  # may be a view of x2 (never written to)
            xs = x2[:, t0:t1].to(torch.float64)
        xs = xs.reshape(rows * js, seg)
        for gi, m in enumerate(mats):
            # outputs in the padded tail are junk but only feed later padded samples
            xs, states[gi] = _block_step(xs, m, states[gi], rows, js, pad)
        y[:, t0:t1] = xs.reshape(rows, js * seg)[:, : t1 - t0]
    zf = torch.cat([st.reshape(rows, -1, 2).permute(1, 0, 2) for st in states], dim=0)
    return y, zf.contiguous()


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


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
        backend: ``"numba"`` (CPU tensors only: fused compiled cascade,
            rows threaded over up to ``torch.get_num_threads()`` threads,
            SciPy's arithmetic; the first call per dtype compiles or loads
            the kernels, seconds when no numba cache exists yet), ``"torch"``
            (time-parallel block algorithm, any device; matrices cached per
            (sos, L, device), a new ``sos`` costs ~1-100 ms of set-up on the
            CPU), ``"triton"`` (the same block algorithm as Triton kernels:
            CUDA, or CPU under ``TRITON_INTERPRET=1``; see
            :mod:`fxcli.dsp.sos_triton`) or ``"auto"`` (numba for CPU tensors
            when numba is importable; Triton for CUDA tensors when triton is
            installed, else torch).

    Returns:
        ``(y, zf)``: ``y`` has ``x``'s shape, dtype and device; ``zf`` is the
        final state, shape ``(S, *batch, 2)``, float64, on ``x``'s device, in
        the same layout as ``zi`` (pass it as the next chunk's ``zi``). For
        ``time == 0``, ``y`` is empty and ``zf`` equals ``zi`` (zeros if None).

    All arithmetic, coefficients and states are float64, also for float32 ``x``
    (float32 in and out, float64 inside).

    Gradients: when autograd is recording and ``x``, ``sos`` or ``zi`` requires
    grad, the call goes through :class:`fxcli.dsp.autograd.SosfiltFunction`
    (same forward numbers; backward w.r.t. ``x``, ``sos`` and ``zi`` from
    ``y`` and ``zf``, on the numba kernels on CPU, differentiable again for
    double backward; see :mod:`fxcli.dsp.autograd`). Otherwise it runs without
    autograd, as before.

    Time-varying coefficients: ``sos`` of shape ``(..., time, S, 6)`` (one
    cascade per sample, batch dims broadcast against ``x``'s) is handled by
    :func:`fxcli.dsp.tvsosfilt.tvsosfilt` (differentiable too).
    """
    _check_x(x)
    if getattr(sos, "ndim", np.ndim(sos)) >= 3:
        from fxcli.dsp.tvsosfilt import tvsosfilt  # lazy: imports this module

        return tvsosfilt(x, sos, zi, backend=backend)
    if torch.is_grad_enabled() and any(
        isinstance(t, torch.Tensor) and t.requires_grad for t in (x, sos, zi)
    ):
        from fxcli.dsp.autograd import sosfilt_autograd  # lazy: imports this module

        return sosfilt_autograd(x, sos, zi, backend)
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if backend == "triton" or (backend == "auto" and x.device.type == "cuda"):
        from fxcli.dsp import sos_triton  # lazy: optional dependency, imports this module

        if backend == "triton" or sos_triton.available():
            return sos_triton.sosfilt_triton(x, sos, zi)
    sos_np = _sos_to_numpy(sos)
    n_sec = sos_np.shape[0]
    batch = tuple(x.shape[:-1])
    n_t = x.shape[-1]
    rows = math.prod(batch)
    device = x.device
    z = _zi_rows(zi, n_sec, batch, rows, device)
    if backend == "auto":
        backend = "numba" if (device.type == "cpu" and _numba is not None) else "torch"
    if backend == "numba":
        if _numba is None:
            raise RuntimeError('backend="numba" requested but numba could not be imported')
        if device.type != "cpu":
            raise ValueError(f'backend="numba" needs a CPU tensor, x is on {device}')
    zf_shape = (n_sec, *batch, 2)
    if n_t == 0 or rows == 0:
        return x.detach().clone(), z.reshape(zf_shape)
    x2 = x.detach().reshape(rows, n_t)
    if backend == "numba":
        y, zf = _sosfilt_numba(x2, sos_np, z)
    else:
        with torch.no_grad():
            y, zf = _sosfilt_torch(x2, sos_np, z)
    return y.reshape(x.shape), zf.reshape(zf_shape)
