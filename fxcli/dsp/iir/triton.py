"""Triton GPU kernel for :func:`fxcli.dsp.sosfilt` (time-parallel biquad cascade).

:func:`sosfilt_triton` has exactly the semantics of ``fxcli.dsp.sosfilt``
(SciPy's ``sosfilt`` coefficient and ``zi``/``zf`` layout):

- ``x``: shape ``(*batch, time)``, float32 or float64, on a CUDA device (or on the
  CPU when the environment has ``TRITON_INTERPRET=1`` set before triton was
  imported: Triton's interpreter, for tests; slow).
- ``sos``: shape ``(S, 6)``, rows ``[b0, b1, b2, a0, a1, a2]``, any real dtype and
  device; validated and normalized by ``a0`` like ``sosfilt`` (float64).
- ``zi``: ``(S, *batch, 2)`` or ``None`` (zeros); ``zf``: ``(S, *batch, 2)``
  float64 on ``x``'s device. ``y`` has ``x``'s shape, dtype and device.

Algorithm (the cascade is one linear system with ``N = 2S`` states, the states of
section ``s`` being SciPy's ``zi[s, 0], zi[s, 1]``; time cut into segments of
``L`` samples; one Triton *lane* per (row, segment), many segments in parallel):

1. ``_seg_kernel`` pass 1: every lane runs the cascade (SciPy's transposed direct
   form II, all sections per sample, state in registers, float64) over its segment
   from zero state and stores only the segment's end state ``f_j`` (rows, J, N).
2. Scan (torch ops, float64): ``s_j = P s_{j-1} + f_j`` with ``P = A^L``
   (Hillis-Steele doubling with the precomputed ``(A^(L 2^k))^T`` of
   :func:`fxcli.dsp.iir.scan.block_mats`, computed in extended precision and
   rounded once to float64, cached per (sos, L, device)); ``s_{-1}`` = ``zi``.
3. ``_seg_kernel`` pass 2: every lane re-runs the cascade over its segment from
   its true incoming state ``s_{j-1}`` and writes ``y``; the lane of the last
   segment also stores the state after the last real sample (``zf``).

From 2^24 samples (rows x time) on, passes 1 and 2 run as ``_tile_kernel``
(``layout="tile"``; below, the one-word ``_seg_kernel`` measured faster): each lane
moves its segment through registers 8 samples at a time (one full 32-byte sector
per lane per load and store, split into per-sample columns through shared
memory), over every segment but the last; the last segment of each row (1 to
``L`` samples) then runs from its incoming state through ``_seg_kernel``'s pass 2,
which stores ``zf``. On an H200 (4-section IIR chain, 12 ch x 600 s float32) the one-word
``_seg_kernel`` reached 28 Gsamples/s, its pass 2 alone 36 (pass 1: 222): each
warp store touched 32 sectors; the tiled kernels reach 115.

Pass 2 is the blocked scan's "state response correction" ``y = y_zs + C A^n s_{j-1}``
done by re-running the recursion from ``s_{j-1}`` instead: mathematically the same,
but it needs no float64 ``y_zs`` buffer and no ``T`` table (memory traffic: two
reads of ``x`` and one write of ``y``), and inside a segment the arithmetic is
SciPy's own recursion.

Cascades of more than ``_MAX_SEC`` (8) sections run group by group (each group the
whole three-step algorithm), through a float64 intermediate.

Memory: besides ``y``, about ``3 * rows * ceil(time / L) * N * 8`` bytes of float64
segment states (plus a float64 copy of the signal between groups for S > 8).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from fxcli.dsp._triton import available, check_device, tl, triton
from fxcli.dsp.checks import check_signal
from fxcli.dsp.iir.args import sos_to_numpy, zi_rows
from fxcli.dsp.iir.scan import block_mats

__all__ = ["available", "sosfilt_triton"]

_MAX_SEC = 8  # sections per kernel (16 float64 states + 40 coefficients in registers)
_SCAN_LEVELS_MAX = 26  # block_mats precomputes P^(2^k) for k < 26


if triton is not None:

    @triton.jit
    def _lanes(s_ptr, J, JS, NSEC: tl.constexpr, BLOCK: tl.constexpr):
        # 1-D grid over (row, block of BLOCK segments): no per-axis grid limit.
        # Returns the row, the program's segments j (and which are real), j as
        # int64 and the address of each lane's state in s (rows, JS, 2 NSEC).
        pid = tl.program_id(0).to(tl.int64)
        nb = tl.cdiv(J, BLOCK)
        r64 = pid // nb
        j = (pid % nb) * BLOCK + tl.arange(0, BLOCK)
        j64 = j.to(tl.int64)
        return r64, j, j < J, j64, s_ptr + (r64 * JS + j64) * (2 * NSEC)

    @triton.jit
    def _bq(w, p, q, b0, b1, b2, a1, a2):
        # one DF2T section, SciPy's operation order
        o = b0 * w + p
        p = b1 * w - a1 * o + q
        q = b2 * w - a2 * o
        return o, p, q

    @triton.jit
    def _seg_kernel(
        x_ptr,  # (rows, T) contiguous, float32/float64
        y_ptr,  # (rows, T) contiguous (pass 2 only)
        c_ptr,  # (_MAX_SEC, 5) float64: b0, b1, b2, a1, a2 (zero-padded)
        s_ptr,  # pass 1: out f (rows, J, N); pass 2: in s_{j-1} (rows, J, N)
        zf_ptr,  # pass 2: out (rows, N), state after the last real sample
        T,
        J,
        RS,  # row stride of x and y (elements): T, or more for a row's tail
        L: tl.constexpr,
        NSEC: tl.constexpr,
        BLOCK: tl.constexpr,
        PASS2: tl.constexpr,
    ):
        r64, j, lane, j64, sbase = _lanes(s_ptr, J, J, NSEC, BLOCK)
        # coefficients (scalars, registers)
        b00 = tl.load(c_ptr + 0)
        b01 = tl.load(c_ptr + 1)
        b02 = tl.load(c_ptr + 2)
        a01 = tl.load(c_ptr + 3)
        a02 = tl.load(c_ptr + 4)
        b10 = tl.load(c_ptr + 5)
        b11 = tl.load(c_ptr + 6)
        b12 = tl.load(c_ptr + 7)
        a11 = tl.load(c_ptr + 8)
        a12 = tl.load(c_ptr + 9)
        b20 = tl.load(c_ptr + 10)
        b21 = tl.load(c_ptr + 11)
        b22 = tl.load(c_ptr + 12)
        a21 = tl.load(c_ptr + 13)
        a22 = tl.load(c_ptr + 14)
        b30 = tl.load(c_ptr + 15)
        b31 = tl.load(c_ptr + 16)
        b32 = tl.load(c_ptr + 17)
        a31 = tl.load(c_ptr + 18)
        a32 = tl.load(c_ptr + 19)
        b40 = tl.load(c_ptr + 20)
        b41 = tl.load(c_ptr + 21)
        b42 = tl.load(c_ptr + 22)
        a41 = tl.load(c_ptr + 23)
        a42 = tl.load(c_ptr + 24)
        b50 = tl.load(c_ptr + 25)
        b51 = tl.load(c_ptr + 26)
        b52 = tl.load(c_ptr + 27)
        a51 = tl.load(c_ptr + 28)
        a52 = tl.load(c_ptr + 29)
        b60 = tl.load(c_ptr + 30)
        b61 = tl.load(c_ptr + 31)
        b62 = tl.load(c_ptr + 32)
        a61 = tl.load(c_ptr + 33)
        a62 = tl.load(c_ptr + 34)
        b70 = tl.load(c_ptr + 35)
        b71 = tl.load(c_ptr + 36)
        b72 = tl.load(c_ptr + 37)
        a71 = tl.load(c_ptr + 38)
        a72 = tl.load(c_ptr + 39)
        zero = tl.zeros([BLOCK], dtype=tl.float64)
        p0 = zero
        q0 = zero
        p1 = zero
        q1 = zero
        p2 = zero
        q2 = zero
        p3 = zero
        q3 = zero
        p4 = zero
        q4 = zero
        p5 = zero
        q5 = zero
        p6 = zero
        q6 = zero
        p7 = zero
        q7 = zero
        if PASS2:  # incoming state s_{j-1}
            p0 = tl.load(sbase + 0, mask=lane, other=0.0)
            q0 = tl.load(sbase + 1, mask=lane, other=0.0)
            if NSEC > 1:
                p1 = tl.load(sbase + 2, mask=lane, other=0.0)
                q1 = tl.load(sbase + 3, mask=lane, other=0.0)
            if NSEC > 2:
                p2 = tl.load(sbase + 4, mask=lane, other=0.0)
                q2 = tl.load(sbase + 5, mask=lane, other=0.0)
            if NSEC > 3:
                p3 = tl.load(sbase + 6, mask=lane, other=0.0)
                q3 = tl.load(sbase + 7, mask=lane, other=0.0)
            if NSEC > 4:
                p4 = tl.load(sbase + 8, mask=lane, other=0.0)
                q4 = tl.load(sbase + 9, mask=lane, other=0.0)
            if NSEC > 5:
                p5 = tl.load(sbase + 10, mask=lane, other=0.0)
                q5 = tl.load(sbase + 11, mask=lane, other=0.0)
            if NSEC > 6:
                p6 = tl.load(sbase + 12, mask=lane, other=0.0)
                q6 = tl.load(sbase + 13, mask=lane, other=0.0)
            if NSEC > 7:
                p7 = tl.load(sbase + 14, mask=lane, other=0.0)
                q7 = tl.load(sbase + 15, mask=lane, other=0.0)
        t0 = j64 * L
        xrow = x_ptr + r64 * RS + t0
        yrow = y_ptr + r64 * RS + t0
        for t in range(L):
            idx = t0 + t
            m = lane & (idx < T)
            xv = tl.load(xrow + t, mask=m, other=0.0)
            w = xv.to(tl.float64)
            w, n0, m0 = _bq(w, p0, q0, b00, b01, b02, a01, a02)
            if NSEC > 1:
                w, n1, m1 = _bq(w, p1, q1, b10, b11, b12, a11, a12)
            if NSEC > 2:
                w, n2, m2 = _bq(w, p2, q2, b20, b21, b22, a21, a22)
            if NSEC > 3:
                w, n3, m3 = _bq(w, p3, q3, b30, b31, b32, a31, a32)
            if NSEC > 4:
                w, n4, m4 = _bq(w, p4, q4, b40, b41, b42, a41, a42)
            if NSEC > 5:
                w, n5, m5 = _bq(w, p5, q5, b50, b51, b52, a51, a52)
            if NSEC > 6:
                w, n6, m6 = _bq(w, p6, q6, b60, b61, b62, a61, a62)
            if NSEC > 7:
                w, n7, m7 = _bq(w, p7, q7, b70, b71, b72, a71, a72)
            if PASS2:
                tl.store(yrow + t, w.to(xv.dtype), mask=m)
                # freeze the state after the last real sample (only the last
                # segment has samples past T)
                p0 = tl.where(m, n0, p0)
                q0 = tl.where(m, m0, q0)
                if NSEC > 1:
                    p1 = tl.where(m, n1, p1)
                    q1 = tl.where(m, m1, q1)
                if NSEC > 2:
                    p2 = tl.where(m, n2, p2)
                    q2 = tl.where(m, m2, q2)
                if NSEC > 3:
                    p3 = tl.where(m, n3, p3)
                    q3 = tl.where(m, m3, q3)
                if NSEC > 4:
                    p4 = tl.where(m, n4, p4)
                    q4 = tl.where(m, m4, q4)
                if NSEC > 5:
                    p5 = tl.where(m, n5, p5)
                    q5 = tl.where(m, m5, q5)
                if NSEC > 6:
                    p6 = tl.where(m, n6, p6)
                    q6 = tl.where(m, m6, q6)
                if NSEC > 7:
                    p7 = tl.where(m, n7, p7)
                    q7 = tl.where(m, m7, q7)
            else:
                # pass 1: padded samples (x = 0) past T only affect the last
                # segment's f, which no later segment uses
                p0 = n0
                q0 = m0
                if NSEC > 1:
                    p1 = n1
                    q1 = m1
                if NSEC > 2:
                    p2 = n2
                    q2 = m2
                if NSEC > 3:
                    p3 = n3
                    q3 = m3
                if NSEC > 4:
                    p4 = n4
                    q4 = m4
                if NSEC > 5:
                    p5 = n5
                    q5 = m5
                if NSEC > 6:
                    p6 = n6
                    q6 = m6
                if NSEC > 7:
                    p7 = n7
                    q7 = m7
        if PASS2:
            om = lane & (j == J - 1)
            obase = zf_ptr + r64 * (2 * NSEC) + j64 * 0
        else:
            om = lane
            obase = sbase
        tl.store(obase + 0, p0, mask=om)
        tl.store(obase + 1, q0, mask=om)
        if NSEC > 1:
            tl.store(obase + 2, p1, mask=om)
            tl.store(obase + 3, q1, mask=om)
        if NSEC > 2:
            tl.store(obase + 4, p2, mask=om)
            tl.store(obase + 5, q2, mask=om)
        if NSEC > 3:
            tl.store(obase + 6, p3, mask=om)
            tl.store(obase + 7, q3, mask=om)
        if NSEC > 4:
            tl.store(obase + 8, p4, mask=om)
            tl.store(obase + 9, q4, mask=om)
        if NSEC > 5:
            tl.store(obase + 10, p5, mask=om)
            tl.store(obase + 11, q5, mask=om)
        if NSEC > 6:
            tl.store(obase + 12, p6, mask=om)
            tl.store(obase + 13, q6, mask=om)
        if NSEC > 7:
            tl.store(obase + 14, p7, mask=om)
            tl.store(obase + 15, q7, mask=om)

    @triton.jit
    def _cascade(w, st, c, NSEC: tl.constexpr):
        # one sample through NSEC DF2T sections (SciPy's operation order);
        # st: (p0, q0, p1, q1, ...) float64, c: (b0, b1, b2, a1, a2) per section
        out = ()
        for s in tl.static_range(NSEC):
            o = c[5 * s] * w + st[2 * s]
            p = c[5 * s + 1] * w - c[5 * s + 3] * o + st[2 * s + 1]
            q = c[5 * s + 2] * w - c[5 * s + 4] * o
            out = out + (p, q)  # type: ignore[assignment]
            w = o
        return w, out

    @triton.jit
    def _tile_kernel(
        x_ptr,  # (rows, T) rows RS apart, float32/float64
        y_ptr,  # like x (pass 2 only)
        c_ptr,  # (_MAX_SEC, 5) float64
        s_ptr,  # pass 1: out f (rows, JS, N); pass 2: in s_{j-1} (rows, JS, N)
        J,  # full segments to run (j < J), all of length L
        JS,  # segments per row in s
        RS,  # row stride of x and y (elements)
        L: tl.constexpr,
        NSEC: tl.constexpr,
        BLOCK: tl.constexpr,
        PASS2: tl.constexpr,
    ):
        # Like _seg_kernel, but every lane reads (and in pass 2 writes) its segment
        # 8 samples at a time: a (BLOCK, 8) tile is one full 32-byte sector per lane
        # (float32), instead of 8 single words from 8 separate requests; Triton
        # turns the tile into 8 per-lane columns (tl.split) through shared memory.
        r64, j, lane, j64, sbase = _lanes(s_ptr, J, JS, NSEC, BLOCK)
        c = ()
        for i in tl.static_range(5 * NSEC):
            c = c + (tl.load(c_ptr + i),)  # type: ignore[assignment]
        st = ()
        for i in tl.static_range(2 * NSEC):
            if PASS2:
                st = st + (tl.load(sbase + i, mask=lane, other=0.0),)  # type: ignore[assignment]
            else:
                st = st + (tl.zeros([BLOCK], dtype=tl.float64),)  # type: ignore[assignment]
        cols = tl.arange(0, 8)
        base = x_ptr + r64 * RS + j64 * L
        ybase = y_ptr + r64 * RS + j64 * L
        m2 = lane[:, None] & (cols[None, :] < 8)
        for tt in range(L // 8):
            X = tl.load(base[:, None] + (tt * 8 + cols)[None, :], mask=m2, other=0.0)
            e, o = tl.split(tl.reshape(X, [BLOCK, 4, 2]))
            e0, e1 = tl.split(tl.reshape(e, [BLOCK, 2, 2]))
            o0, o1 = tl.split(tl.reshape(o, [BLOCK, 2, 2]))
            x0, x4 = tl.split(e0)
            x2, x6 = tl.split(e1)
            x1, x5 = tl.split(o0)
            x3, x7 = tl.split(o1)
            xs = (x0, x1, x2, x3, x4, x5, x6, x7)
            ys = ()
            for k in tl.static_range(8):
                w, st = _cascade(xs[k].to(tl.float64), st, c, NSEC)
                ys = ys + (w.to(X.dtype),)  # type: ignore[assignment]
            if PASS2:
                y0, y1, y2, y3, y4, y5, y6, y7 = ys  # type: ignore[misc]
                ev = tl.reshape(tl.join(tl.join(y0, y4), tl.join(y2, y6)), [BLOCK, 4])
                od = tl.reshape(tl.join(tl.join(y1, y5), tl.join(y3, y7)), [BLOCK, 4])
                Y = tl.reshape(tl.join(ev, od), [BLOCK, 8])
                tl.store(ybase[:, None] + (tt * 8 + cols)[None, :], Y, mask=m2)
        if not PASS2:
            for i in tl.static_range(2 * NSEC):
                tl.store(sbase + i, st[i], mask=lane)


# Below this many samples (rows x time) the one-word kernel ("plain") is the default:
# on an H200 it took 0.85 ms for 1 ch x 5 s and 1.47 ms for 64 ch x 5 s where the tiled
# one took 2.0 and 1.8 ms, while the tiled one won from 1 ch x 600 s (26 M samples:
# 1.6 against 2.1 ms) up (12 ch x 600 s: 2.8 against 11.4 ms).
_TILE_MIN_SAMPLES = 1 << 24


def _default_layout(rows: int, n_t: int, device: torch.device) -> str:
    if device.type == "cuda" and rows * n_t < _TILE_MIN_SAMPLES:
        return "plain"
    return "tile"


def _segment_length(rows: int, n_t: int, device: torch.device, layout: str = "tile") -> int:
    """Segment length: long segments (cheap scan, short sequential tail) while keeping
    enough lanes busy: >= 2^16 for the tiled kernel (on an H200, the 4-section IIR chain, 12 ch x
    600 s float32: L = 4096 115 Gsamples/s, 1024 93-101, 256 59), >= 2^18 for the
    one-word kernel (L from 1024)."""
    if device.type != "cuda":
        return 16  # interpreter: small L exercises many segments in small tests
    seg, lanes = (4096, 1 << 16) if layout == "tile" else (1024, 1 << 18)
    while seg > 32 and rows * (-(-n_t // seg)) < lanes:
        seg //= 2
    return seg


def _scan(f: torch.Tensor, state: torch.Tensor, pt: torch.Tensor) -> torch.Tensor:
    """States entering each segment: s_in[:, 0] = state, s_in[:, j] = e_{j-1} with
    e_j = P e_{j-1} + f_j (row vectors: e @ P^T), e_{-1} = state. f: (rows, J, N)."""
    e = f  # updated in place (f is a scratch buffer)
    e[:, 0] += state @ pt[0]
    d, k = 1, 0
    js = e.shape[1]
    while d < js:
        e[:, d:] += e[:, :-d] @ pt[k]
        d, k = 2 * d, k + 1
    return torch.cat((state.unsqueeze(1), e[:, :-1]), dim=1).contiguous()


def _run_group(
    x2: torch.Tensor,
    y2: torch.Tensor,
    sos_g: np.ndarray,
    state: torch.Tensor,
    seg: int,
    block: int,
    layout: str = "plain",
    num_warps: int = 4,
) -> torch.Tensor:
    """One group of <= _MAX_SEC sections: x2 -> y2 (rows, T); state (rows, N) -> zf (rows, N).

    ``layout="tile"`` (the default of :func:`sosfilt_triton`) runs
    :func:`_tile_kernel`, ``"plain"`` :func:`_seg_kernel` alone."""
    if layout not in ("tile", "plain"):
        raise ValueError(f"layout must be 'tile' or 'plain', got {layout!r}")
    rows, n_t = x2.shape
    n_sec = sos_g.shape[0]
    n = 2 * n_sec
    device = x2.device
    n_segs = -(-n_t // seg)
    if n_segs > (1 << _SCAN_LEVELS_MAX):
        raise ValueError(f"signal too long for segment length {seg}: {n_t} samples")
    mats = block_mats(np.ascontiguousarray(sos_g), seg, device)
    coef = np.zeros((_MAX_SEC, 5), dtype=np.float64)
    coef[:n_sec] = sos_g[:, [0, 1, 2, 4, 5]]
    coef_t = torch.from_numpy(coef).to(device)
    if layout == "tile":
        return _run_group_tiled(x2, y2, coef_t, n_sec, mats.PT, state, seg, block, num_warps)
    f = torch.empty((rows, n_segs, n), dtype=torch.float64, device=device)
    zf = torch.empty((rows, n), dtype=torch.float64, device=device)
    grid = (rows * triton.cdiv(n_segs, block),)
    common = dict(L=seg, NSEC=n_sec, BLOCK=block, num_warps=num_warps)
    _seg_kernel[grid](x2, y2, coef_t, f, zf, n_t, n_segs, n_t, PASS2=False, **common)
    s_in = _scan(f, state, mats.PT)
    _seg_kernel[grid](x2, y2, coef_t, s_in, zf, n_t, n_segs, n_t, PASS2=True, **common)
    return zf


def _run_group_tiled(
    x2: torch.Tensor,
    y2: torch.Tensor,
    coef_t: torch.Tensor,
    n_sec: int,
    pt: torch.Tensor,
    state: torch.Tensor,
    seg: int,
    block: int,
    num_warps: int,
) -> torch.Tensor:
    """``layout="tile"``: the segments before the last one (all full) run through
    :func:`_tile_kernel`; the last segment (1 to L samples) then runs from its
    incoming state through :func:`_seg_kernel`'s pass 2, which also stores ``zf``."""
    rows, n_t = x2.shape
    n = 2 * n_sec
    device = x2.device
    j_main = (n_t - 1) // seg
    f = torch.zeros((rows, j_main + 1, n), dtype=torch.float64, device=device)
    zf = torch.empty((rows, n), dtype=torch.float64, device=device)
    grid = (rows * triton.cdiv(j_main, block),)
    common = dict(L=seg, NSEC=n_sec, BLOCK=block, num_warps=num_warps)
    if j_main:
        _tile_kernel[grid](x2, y2, coef_t, f, j_main, j_main + 1, n_t, PASS2=False, **common)
    s_in = _scan(f, state, pt)  # (rows, j_main + 1, N): states entering each segment
    if j_main:
        _tile_kernel[grid](x2, y2, coef_t, s_in, j_main, j_main + 1, n_t, PASS2=True, **common)
    a = j_main * seg
    s_tail = s_in[:, j_main:].contiguous()  # (rows, 1, N)
    _seg_kernel[(rows,)](
        x2[:, a:],
        y2[:, a:],
        coef_t,
        s_tail,
        zf,
        n_t - a,
        1,
        n_t,
        L=seg,
        NSEC=n_sec,
        BLOCK=16,
        PASS2=True,
        num_warps=1,
    )
    return zf


def sosfilt_triton(
    x: torch.Tensor,
    sos: torch.Tensor | np.ndarray,
    zi: torch.Tensor | None = None,
    *,
    seg: int | None = None,
    block: int | None = None,
    layout: str | None = None,
    num_warps: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``fxcli.dsp.sosfilt`` computed by Triton kernels (see the module doc).

    Args:
        x: ``(*batch, time)`` float32/float64 CUDA tensor (CPU with ``TRITON_INTERPRET=1``).
        sos: ``(S, 6)`` coefficients, SciPy layout (normalized by ``a0``).
        zi: ``(S, *batch, 2)`` initial state (SciPy layout) or ``None`` for zeros.
        seg: segment length L (default on CUDA: 4096 down to 32 so that at least
            2^16 (row, segment) lanes run with the tiled kernel, 1024 down and 2^18
            lanes with the plain one; 16 on the interpreter).
        block: lanes (segments) per Triton program (default on CUDA 64 tiled, 128
            plain; 16 on the interpreter).
        layout: ``"tile"`` (each lane loads and stores its segment 8 samples at a
            time, full 32-byte sectors), ``"plain"`` (one word per lane per step;
            its uncoalesced stores made pass 2 6x slower than pass 1 on an H200, 28
            against 101-115 Gsamples/s for the whole call on 12 ch x 600 s) or
            ``None``: tiled from 2^24 samples (rows x time), plain below, where it
            measured faster (fixed costs); always tiled on the interpreter.
        num_warps: Triton warps per program (default 2 for blocks of <= 64 lanes, else 4).

    Returns:
        ``(y, zf)``: ``y`` like ``x`` (shape, dtype, device); ``zf`` ``(S, *batch, 2)``
        float64 on ``x``'s device. ``time == 0``: ``y`` empty, ``zf`` = ``zi`` (or zeros).
    """
    check_signal(x)
    check_device(x, "sosfilt_triton")
    device = x.device
    sos_np = sos_to_numpy(sos)
    n_sec = sos_np.shape[0]
    batch = tuple(x.shape[:-1])
    n_t = x.shape[-1]
    rows = math.prod(batch)
    z = zi_rows(zi, n_sec, batch, rows, device)  # (S, rows, 2) float64, fresh
    zf_shape = (n_sec, *batch, 2)
    if n_t == 0 or rows == 0:
        return x.detach().clone(), z.reshape(zf_shape)
    if layout is None:
        layout = _default_layout(rows, n_t, device)
    if seg is None:
        seg = _segment_length(rows, n_t, device, layout)
    if block is None:
        block = 16 if device.type != "cuda" else (64 if layout == "tile" else 128)
    if num_warps is None:
        num_warps = 2 if block <= 64 else 4
    x2 = x.detach().reshape(rows, n_t).contiguous()
    bounds = [(g, min(n_sec, g + _MAX_SEC)) for g in range(0, n_sec, _MAX_SEC)]
    zfs = []
    with torch.no_grad():
        ctx: contextlib.AbstractContextManager[object] = (
            torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
        )
        with ctx:
            cur = x2
            for gi, (g0, g1) in enumerate(bounds):
                last = gi == len(bounds) - 1
                out = torch.empty(
                    (rows, n_t), dtype=x.dtype if last else torch.float64, device=device
                )
                state = z[g0:g1].permute(1, 0, 2).reshape(rows, 2 * (g1 - g0)).contiguous()
                zf_g = _run_group(cur, out, sos_np[g0:g1], state, seg, block, layout, num_warps)
                zfs.append(zf_g.reshape(rows, g1 - g0, 2).permute(1, 0, 2))
                cur = out
    y = cur
    zf = torch.cat(zfs, dim=0).contiguous()
    return y.reshape(x.shape), zf.reshape(zf_shape)
