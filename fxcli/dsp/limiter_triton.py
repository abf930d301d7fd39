"""The lookahead limiter of :func:`fxcli.dsp.dynamics.limit` on the tensor's own device
(CUDA), without a copy to the CPU and back (issue 17).

The same three stages as the compiled CPU kernel (``limiter`` in ``csrc/dynamics.cpp``),
with the same arithmetic in the same order:

1. gain requirements per frame, parallel, torch operations on the device: the sample
   peak ``max_c |x|``, or in true-peak mode also the largest ``|sum_k h[p, k] x[t - k]|``
   (``L`` phases of ``T`` taps, each summed in tap order) over the ``T`` output points
   whose support holds the frame; ``r = (1 / peak) * target`` above the ceiling, else 1
   (NaN wins every max, as on the CPU, and a NaN peak asks for nothing).
2. the planner (linear ramps that reach every requirement of the lookahead window in
   time, release as a one-pole in dB, snapped to 1 within 1e-7) and, in true-peak
   mode, the exact output check: the ``C x L`` values of the ``T`` pending output
   points are kept as finalized and unfinalized parts, the newest point's entry sum is
   a prefix sum in tap order, and when one exceeds the ceiling all unfinalized gains are
   scaled (the CPU's ``scale_to_fit``: the interval fit to the target, then to the
   ceiling, then the least excess). Sequential in time: one Triton program per linked
   group (a file's row of channels), the lookahead window and the ``C x L x T`` window
   as vector operations inside a step; the pending points sit in a ring of ``T``
   columns instead of being shifted. This is the plain reference algorithm
   (``tests/_dynamics_reference.py``); the CPU kernel's fast mode (bounds that skip the
   exact check while nothing was corrected, rebuilt by replay) is a speed-up with the
   same bits and is not implemented here.
3. the gain applied to the delayed input (``concat(pending, x)``): elementwise on the
   device.

Everything is float64, state included (:class:`fxcli.dsp.dynamics.LimiterState`, on
the device; ``skip`` stays a CPU 0-d tensor, read every call). Under Triton's
interpreter the gains, the output and the state equal the CPU kernel's bit for bit
(the tests compare them; ``pow`` is then the host's libm, the CPU kernel's). On a GPU
the programs are compiled without fused multiply-adds, but libdevice's ``pow`` may
differ from the host's in the last bit and the prefix sum may associate differently,
so there they agree to float64 rounding (far inside the float32 output's
resolution); chunked calls carrying the state equal one call the same way.

Schedule: sequential per group, parallel across groups (files, rows); the channels of
a group and the interpolator's phases are lanes of the group's program. Speed: not
measured (written and tested in a session without a GPU; the programs were only
compiled for sm_90 there). Each step does the ``C x L x T`` window's vector work and a
short dependent chain (the ramp search, a prefix sum, reductions), so one file uses
one streaming multiprocessor and a long mono or stereo file may well be slower than
the CPU kernel, whose fast mode skips most of the check; many files or rows run in
parallel. The requirement stage holds at most 2^24 interpolated values at a time.

Devices: CUDA tensors, or CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1``, how the tests run it without a GPU). Autograd: none (the
input is detached, as on the CPU path).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from fxcli.dsp._triton import available, check_device, interpret, tl, triton

__all__ = ["limit_device", "usable"]

if triton is not None and interpret():

    def _pow(x: Any, y: Any) -> Any:
        """``x ** y`` of two float64 scalars under Triton's interpreter, which has no
        libdevice: the host's libm ``pow``, the CPU kernel's (``std::pow``)."""
        from triton.runtime.interpreter import TensorHandle

        xd, yd = np.asarray(x.handle.data), np.asarray(y.handle.data)
        v = np.array(
            math.pow(float(xd.reshape(-1)[0]), float(yd.reshape(-1)[0])), dtype=np.float64
        ).reshape(xd.shape)
        return tl.tensor(TensorHandle(v, tl.float64), tl.float64)

elif triton is not None:
    from triton.language.extra import libdevice

    _pow = libdevice.pow

if triton is not None:

    @triton.jit
    def _plan(r_ptr, ramp, gp, a_rel, snap, BR: tl.constexpr):  # type: ignore[no-untyped-def]
        """The planned gain of one step: the release candidate ``gp ** a_rel`` (1 above
        ``snap``), lowered by the ramps ``gp + (r[j] - gp) / (j + 1)`` to the
        requirements ``r[j] = r_ptr[j]``, ``j = 0 .. ramp``, visited in order: a
        requirement counts only while it is under the current candidate (the CPU's
        loop; each pass of the inner loop finds the next one that lowers it)."""
        rel = _pow(gp, a_rel)
        rel = tl.where(rel > snap, 1.0, rel)
        one = a_rel * 0.0 + 1.0  # 1.0 as float64
        cand = tl.where(gp < 1.0, rel, one)
        jr = tl.arange(0, BR)
        for b0 in range(0, ramp + 1, BR):
            j = b0 + jr
            r = tl.load(r_ptr + j, mask=j <= ramp, other=float("inf"))
            need = gp + (r - gp) / (j + 1).to(tl.float64)
            last = b0 - 1
            go = ramp >= 0
            while go:
                sel = (j > last) & (r < cand) & (need < cand)
                js = tl.min(tl.where(sel, j, 1 << 30))
                go = js < (1 << 30)
                cand = tl.where(go, tl.min(tl.where(j == js, need, float("inf"))), cand)
                last = js
        return cand

    @triton.jit
    def _sp_kernel(rr_ptr, gp_ptr, out_ptr, n, rlen, ramp, p_ptr, BR: tl.constexpr):  # type: ignore[no-untyped-def]
        """Sample-peak mode, group g: the planned gains are final (out[g, :])."""
        g = tl.program_id(0).to(tl.int64)
        a_rel = tl.load(p_ptr + 2)
        snap = tl.load(p_ptr + 3)
        gp = tl.load(gp_ptr + g)
        for i in range(0, n):
            gp = _plan(rr_ptr + g * rlen + i, ramp, gp, a_rel, snap, BR)
            tl.store(out_ptr + g * n + i, gp)
        tl.store(gp_ptr + g, gp)

    @triton.jit
    def _excess(F, U, s, ceil):  # type: ignore[no-untyped-def]
        """Largest ``|F + s U| - ceil`` (at least ``-ceil``; NaN never counts)."""
        v = tl.abs(F + s * U) - ceil
        v = tl.where(v == v, v, -float("inf"))
        return tl.maximum(tl.max(v), -ceil)

    @triton.jit
    def _fit(F, U, ceil, tgt, solve):  # type: ignore[no-untyped-def]
        """The CPU's ``fit_interval``: the largest s in [0, 1] with ``|F + s U|`` at or
        under ``tgt * solve`` for the points now above ``ceil`` and ``ceil * solve``
        for the others, or -1."""
        bound = tl.where(tl.abs(F + U) > ceil, tgt, ceil) * solve
        af = tl.abs(F)
        uz = U == 0.0
        bad = uz & (af > bound) & (af > ceil)
        fail = tl.max(tl.max(tl.where(bad, 1, 0), axis=1), axis=0) > 0
        a = (bound - F) / U
        b = (-bound - F) / U
        sw = a > b
        lo_c = tl.where(sw, b, a)
        hi_c = tl.where(sw, a, b)
        lo = tl.max(tl.max(tl.where((~uz) & (lo_c > 0.0), lo_c, 0.0), axis=1), axis=0)
        hi = tl.min(tl.min(tl.where((~uz) & (hi_c < 1.0), hi_c, 1.0), axis=1), axis=0)
        ok = (~fail) & (lo <= hi) & (_excess(F, U, hi, ceil) <= 0.0)
        return tl.where(ok, hi, -1.0)

    @triton.jit
    def _tp_kernel(  # type: ignore[no-untyped-def]
        xx_ptr,
        rr_ptr,
        h_ptr,
        gp_ptr,
        plan_ptr,
        fin_ptr,
        unf_ptr,
        out_ptr,
        scr_ptr,
        p_ptr,
        n,
        nx,
        rlen,
        ramp,
        C,
        L,
        T,
        BR: tl.constexpr,
        LP: tl.constexpr,
        CLP: tl.constexpr,
        TP: tl.constexpr,
    ):
        """True-peak mode, group g: plan, check and finalize the gains of n frames.

        xx (G C, nx) float64 delayed input (frame i is finalized at step i); rr (G,
        rlen) requirements; h (L, T) phases; gp (G,), plan (G, T - 1), fin / unf (G,
        C, L, T - 1) the state, in and out; out (G, n) final gains; scr (G, 2 C L T +
        CLP T) scratch (the least-excess search, the entry sum's products). Register
        windows: rows c LP + p, columns a ring of the T pending points (point i + j at
        column (i + j) mod T) and of the planned gains (frame i + q at column (i + q)
        mod T)."""
        g = tl.program_id(0).to(tl.int64)
        ceil = tl.load(p_ptr + 0)
        tgt = tl.load(p_ptr + 1)
        a_rel = tl.load(p_ptr + 2)
        snap = tl.load(p_ptr + 3)
        solve = tl.load(p_ptr + 4)
        lag = T - 1
        rows = tl.arange(0, CLP)
        cols = tl.arange(0, TP)
        c_of = rows // LP
        p_of = rows % LP
        rvalid = (c_of < C) & (p_of < L)
        cvalid = cols < T
        valid = rvalid[:, None] & cvalid[None, :]
        xrow = xx_ptr + (g * C + c_of) * nx  # (CLP,) pointers to each row's channel
        hrow = h_ptr + p_of * T
        srow = ((g * C + c_of) * L + p_of) * lag  # state row offsets
        m_in = rvalid[:, None] & (cols < lag)[None, :]
        F = tl.load(fin_ptr + srow[:, None] + cols[None, :], mask=m_in, other=0.0)
        U = tl.load(unf_ptr + srow[:, None] + cols[None, :], mask=m_in, other=0.0)
        PW = tl.load(plan_ptr + g * lag + cols, mask=cols < lag, other=0.0)
        gp = tl.load(gp_ptr + g)
        clt = C * L * T
        scr_f = scr_ptr + g * (2 * clt + CLP * T)
        scr_u = scr_f + clt
        scr_p = scr_u + clt
        for i in range(0, n):
            gp = _plan(rr_ptr + g * rlen + i, ramp, gp, a_rel, snap, BR)
            ci = i % T
            c_new = (ci + lag) % T
            q = (cols - ci + T) % T  # relative index of every column
            PW = tl.where(cols == c_new, gp, PW)
            # the entering point i + lag: its support (frames i .. i + lag) is entirely
            # unfinalized; summed in tap order (q = 0 .. lag), as on the CPU
            xw = tl.load(xrow[:, None] + (i + q)[None, :], mask=valid, other=0.0)
            he = tl.load(hrow[:, None] + (lag - q)[None, :], mask=valid, other=0.0)
            prod = he * (PW[None, :] * xw)  # column of frame i + q: h[p, lag - q] g x
            # staged in the scratch in tap order, then summed in that order (a prefix sum)
            tl.debug_barrier()
            tl.store(scr_p + rows[:, None] * T + q[None, :], prod, mask=valid)
            tl.debug_barrier()
            staged = tl.load(scr_p + rows[:, None] * T + cols[None, :], mask=valid, other=0.0)
            u = tl.sum(tl.where(cols == TP - 1, tl.cumsum(staged, axis=1), 0.0), axis=1)
            is_new = (cols == c_new)[None, :]
            F = tl.where(is_new, 0.0, F)
            U = tl.where(is_new, u[:, None], U)
            # the exact check: scale every unfinalized gain when a point is above
            s = ceil * 0.0 + 1.0
            if _excess(F, U, 1.0, ceil) > 0.0:
                s = _fit(F, U, ceil, tgt, solve)
                if s < 0.0:
                    s = _fit(F, U, ceil, ceil, solve)
                if s < 0.0:
                    # no scale fits every point: the least excess among the ends of
                    # the points' intervals, in the CPU's order (c, p, j)
                    s = ceil * 0.0 + 1.0
                    best_e = _excess(F, U, 1.0, ceil)
                    qj = (cols - ci + T) % T
                    off = ((c_of * L + p_of) * T)[:, None] + qj[None, :]
                    tl.debug_barrier()
                    tl.store(scr_f + off, F, mask=valid)
                    tl.store(scr_u + off, U, mask=valid)
                    tl.debug_barrier()
                    for k in range(0, clt):
                        f = tl.load(scr_f + k)
                        uk = tl.load(scr_u + k)
                        if uk != 0.0:
                            t0 = (ceil * solve - f) / uk
                            if (t0 >= 0.0) & (t0 < 1.0):
                                e = _excess(F, U, t0, ceil)
                                if e < best_e:
                                    best_e = e
                                    s = t0
                            t1 = (-ceil * solve - f) / uk
                            if (t1 >= 0.0) & (t1 < 1.0):
                                e = _excess(F, U, t1, ceil)
                                if e < best_e:
                                    best_e = e
                                    s = t1
                if s < 1.0:
                    PW = PW * s
                    U = U * s
            # finalize frame i: its contribution moves from the unfinalized parts to
            # the finalized ones of every pending point (point j: tap j)
            gi = tl.sum(tl.where(cols == ci, PW, 0.0))
            xi = tl.load(xrow + i, mask=rvalid, other=0.0)
            hf = tl.load(hrow[:, None] + q[None, :], mask=valid, other=0.0)
            w = tl.where(valid, hf * (gi * xi)[:, None], 0.0)
            F = F + w
            U = U - w
            tl.store(out_ptr + g * n + i, gi)
        # the state: pending point / gain q at column (n + q) mod T, q < T - 1
        qn = (cols - n % T + T) % T
        m_out = cvalid & (qn < lag)
        off = srow[:, None] + qn[None, :]
        tl.store(fin_ptr + off, F, mask=rvalid[:, None] & m_out[None, :])
        tl.store(unf_ptr + off, U, mask=rvalid[:, None] & m_out[None, :])
        tl.store(plan_ptr + g * lag + qn, PW, mask=m_out)
        tl.store(gp_ptr + g, gp)


#: Largest number of interpolated values the requirement stage holds at once.
_TP_BLOCK_VALUES = 1 << 24
#: Requirements the planner reads per vector (longer lookahead windows take several).
_RAMP_BLOCK = 1024


def _pow2(v: int) -> int:
    return 1 << max(int(v) - 1, 0).bit_length()


def limit_device(
    x: torch.Tensor,
    state: Any,
    *,
    phases: Any,
    true_peak: bool,
    ceil: float,
    target: float,
    a_rel: float,
    snap: float,
    solve: float,
    drop: int,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The limiter on ``x`` ``(G, C, n)`` (``n >= 1``) on ``x``'s device.

    ``state``: a :class:`fxcli.dsp.dynamics.LimiterState` (any device; copied, never
    modified; its ``skip`` is not used: ``drop`` is the caller's). ``phases``: the
    interpolator's ``(L, T)`` float64 taps. ``ceil``, ``target``: the guarded ceiling
    and the planning target (linear); ``a_rel``: the release coefficient; ``snap``,
    ``solve``: the CPU kernel's constants. Returns ``(y, (pending, tpq, req, gain,
    plan, fin, unf))``: ``y`` ``(G, C, n - drop)`` in ``x``'s dtype (frames ``drop``..
    of the delayed input times the gain), the new state float64 on ``x``'s device."""
    check_device(x, "limit_device")
    dev = x.device
    n_g, n_c, n = x.shape

    def own(t: Any) -> torch.Tensor:  # a copy on the device (numpy state arrays too)
        return torch.as_tensor(t).detach().to(dev, torch.float64).contiguous().clone()

    pend, tpq, req, gain = own(state.pending), own(state.tpq), own(state.req), own(state.gain)
    plan, fin, unf = own(state.plan), own(state.fin), own(state.unf)
    d = pend.shape[-1]
    ramp = req.shape[-1]
    h = torch.tensor(np.asarray(phases, dtype=np.float64), device=dev)
    n_l, n_t = h.shape
    lag = n_t - 1
    x64 = x.detach().to(torch.float64)
    xx = torch.cat([pend, x64], dim=-1).contiguous()  # (G, C, d + n)
    # 1. requirements of the frames d - lag .. (true peak) or d .. (sample peak) of xx
    if true_peak:
        xs = xx[..., d - lag : d + n].unsqueeze(2)  # (G, C, 1, lag + n)
        tpk = torch.empty((n_g, n), dtype=torch.float64, device=dev)  # per-frame peaks
        # blocks of frames: the (G, C, L, block) sums stay under 2^24 values (128 MiB)
        blk = max(1, _TP_BLOCK_VALUES // max(1, n_g * n_c * n_l))
        for t0 in range(0, n, blk):
            t1 = min(n, t0 + blk)
            acc = xs[..., lag + t0 : lag + t1] * h[:, 0, None]
            for k in range(1, n_t):
                acc.add_(xs[..., lag - k + t0 : lag - k + t1] * h[:, k, None])
            tpk[:, t0:t1] = acc.abs_().amax(dim=(1, 2))
        tq = torch.cat([tpq, tpk], dim=-1)  # (G, lag + n)
        win = tq.unfold(-1, lag + 1, 1).amax(-1)
        peak = torch.maximum(win, xx[..., d - lag : d - lag + n].abs().amax(1))
        tpq = tq[..., n:].contiguous()
    else:
        peak = xx[..., d:].abs().amax(1)
    r_new = torch.where(peak > ceil, torch.reciprocal(peak) * target, 1.0)
    rr = torch.cat([req, r_new], dim=-1).contiguous()  # (G, ramp + n)
    # 2. the sequential planner (and exact check), one program per group
    gout = torch.empty((n_g, n), dtype=torch.float64, device=dev)
    if n_g:
        params = torch.tensor(
            [float(ceil), float(target), float(a_rel), float(snap), float(solve)],
            dtype=torch.float64, device=dev,
        )  # fmt: skip
        br = min(max(_pow2(ramp + 1), 16), _RAMP_BLOCK)
        if true_peak:
            lp = _pow2(n_l)
            clp = _pow2(n_c) * lp
            tp = _pow2(n_t)
            scratch = torch.empty(
                (n_g, 2 * n_c * n_l * n_t + clp * n_t), dtype=torch.float64, device=dev
            )
            _tp_kernel[(n_g,)](
                xx, rr, h, gain, plan, fin, unf, gout, scratch, params,
                n, d + n, ramp + n, ramp, n_c, n_l, n_t,
                BR=br, LP=lp, CLP=clp, TP=tp, num_warps=4 if clp * tp <= 2048 else 8,
                enable_fp_fusion=False,
            )  # fmt: skip
        else:
            _sp_kernel[(n_g,)](
                rr, gain, gout, n, ramp + n, ramp, params, BR=br, num_warps=1,
                enable_fp_fusion=False,
            )  # fmt: skip
    # 3. the gain on the delayed input
    y = (xx[..., drop:n] * gout[:, None, drop:]).to(x.dtype)
    new_pend = xx[..., n:].contiguous()
    return y, (new_pend, tpq, rr[:, n:].contiguous(), gain, plan, fin, unf)


def usable(x: Any) -> bool:
    """Whether ``x`` takes the device path: a CUDA tensor, with Triton importable (CPU
    tensors keep the compiled core; the tests call :func:`limit_device` on CPU tensors
    under Triton's interpreter)."""
    return isinstance(x, torch.Tensor) and x.device.type == "cuda" and available()
