"""Pure-Python reference of fxcli.dsp.dynamics (tests only): the kernels as they
were written for numba before the compiled core replaced them (the same loops,
operation for operation, in plain Python floats), with the same glue (requirements
from numpy instead of torch, in the same operations). The compiled core must give
these results bit for bit (tests/test_dynamics.py); slow, so for short signals only.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from fxcli.dsp.dynamics import (
    _CEILING_GUARD,
    _LEVEL_FLOOR_DB,
    _SOLVE,
    _UNITY_SNAP,
    MAX_ATTENUATION_DB,
    RMS_WINDOW_MS,
    DynamicsState,
    LimiterState,
    _groups,
    _margin_db,
    dynamics_init_state,
    limiter_init_state,
    limiter_interpolator,
    limiter_latency,
    one_pole_coeff,
)
from fxcli.dsp.truepeak import Interpolator


def _dyn_kernel(
    det,
    rms,
    a_rms,
    kind,
    thr,
    ratio,
    knee,
    a_att,
    a_rel,
    hold_n,
    floor_db,
    makeup,
    ms,
    env,
    hold,
    out,
):
    """det (G, C, n) float64 -> out (G, n) linear gain; ms (G, C), env (G,), hold (G,) updated."""
    n_g, n_c, n = det.shape
    slope = 1.0 / ratio - 1.0
    for g in range(n_g):
        y = env[g]
        h = hold[g]
        for t in range(n):
            if rms:
                lev = 0.0
                for c in range(n_c):
                    d = det[g, c, t]
                    m = a_rms * ms[g, c] + (1.0 - a_rms) * (d * d)
                    ms[g, c] = m
                    if m > lev:
                        lev = m
                ldb = 10.0 * math.log10(lev) if lev > 1e-30 else _LEVEL_FLOOR_DB
            else:
                lev = 0.0
                for c in range(n_c):
                    d = abs(det[g, c, t])
                    if d > lev:
                        lev = d
                ldb = 20.0 * math.log10(lev) if lev > 1e-15 else _LEVEL_FLOOR_DB
            dx = ldb - thr
            if kind == 0:  # compressor
                if 2.0 * dx > knee:
                    gs = slope * dx
                elif knee > 0.0 and 2.0 * abs(dx) <= knee:
                    q = dx + knee / 2.0
                    gs = slope * q * q / (2.0 * knee)
                else:
                    gs = 0.0
                if gs < y:
                    y = a_att * y + (1.0 - a_att) * gs
                else:
                    y = a_rel * y + (1.0 - a_rel) * gs
            else:  # downward expander / gate
                if dx < 0.0:
                    gs = (ratio - 1.0) * dx
                    if gs < floor_db:
                        gs = floor_db
                else:
                    gs = 0.0
                if gs >= y:
                    h = hold_n
                    y = a_att * y + (1.0 - a_att) * gs
                elif h > 0:
                    h -= 1
                else:
                    y = a_rel * y + (1.0 - a_rel) * gs
            out[g, t] = 10.0 ** ((y + makeup) / 20.0)
        env[g] = y
        hold[g] = h


def _excess(fin, un, s, ceil, n_c, n_pts):
    """Largest |fin + s un| - ceil over all points (<= 0: none above the ceiling)."""
    e = -ceil
    for c in range(n_c):
        for p in range(fin.shape[1]):
            for j in range(n_pts):
                v = abs(fin[c, p, j] + s * un[c, p, j]) - ceil
                if v > e:
                    e = v
    return e


def _fit_interval(fin, un, ceil, tgt, n_c, n_pts):
    """Largest s in [0, 1] with |fin + s un| <= tgt for the points now above ``ceil``
    and <= ceil for the others, or -1 when there is none."""
    lo = 0.0
    hi = 1.0
    for c in range(n_c):
        for p in range(fin.shape[1]):
            for j in range(n_pts):
                f = fin[c, p, j]
                u = un[c, p, j]
                # solve for a hair under the bound so rounding cannot land above it
                bound = (tgt if abs(f + u) > ceil else ceil) * _SOLVE
                if u == 0.0:
                    if abs(f) > bound and abs(f) > ceil:
                        return -1.0
                    continue
                a = (bound - f) / u
                b = (-bound - f) / u
                if a > b:
                    a, b = b, a
                if a > lo:
                    lo = a
                if b < hi:
                    hi = b
    if lo <= hi and _excess(fin, un, hi, ceil, n_c, n_pts) <= 0.0:
        return hi
    return -1.0


def _scale_to_fit(fin, un, ceil, tgt, n_c, n_pts):
    """Scale s in [0, 1] for the unfinalized contributions ``un``: 1 when no point
    exceeds the ceiling, else the largest s that brings the points above it to
    ``tgt`` (the planning target, leaving the margin for later corrections) and
    keeps the others under the ceiling; else the largest s that keeps every point
    under the ceiling (each point's feasible set is an interval of s); else the s
    with the smallest excess among the interval ends."""
    if _excess(fin, un, 1.0, ceil, n_c, n_pts) <= 0.0:
        return 1.0
    s = _fit_interval(fin, un, ceil, tgt, n_c, n_pts)
    if s >= 0.0:
        return s
    s = _fit_interval(fin, un, ceil, ceil, n_c, n_pts)
    if s >= 0.0:
        return s
    # no scale satisfies every point: least excess among the candidates
    best = 1.0
    best_e = _excess(fin, un, 1.0, ceil, n_c, n_pts)
    for c in range(n_c):
        for p in range(fin.shape[1]):
            for j in range(n_pts):
                f = fin[c, p, j]
                u = un[c, p, j]
                if u == 0.0:
                    continue
                for t in ((ceil * _SOLVE - f) / u, (-ceil * _SOLVE - f) / u):
                    if 0.0 <= t < 1.0:
                        e = _excess(fin, un, t, ceil, n_c, n_pts)
                        if e < best_e:
                            best_e = e
                            best = t
    return best


def _limiter_kernel(
    xx, rr, h, ramp, lag, ceil, tgt, a_rel, gp_state, plan_state, fin_state, un_state, out
):
    """Plan, check and finalize the gains of the next n = out.shape[1] samples.

    xx (G, C, D + n): pending + new input (index i = the sample finalized at step i);
    rr (G, ramp + n): gain requirements, rr[:, i : i + ramp + 1] is the window of
    the sample planned at step i; gp_state (G,) last planned gain; plan_state
    (G, lag) planned, unfinalized gains; fin_state / un_state (G, C, L, lag):
    finalized / unfinalized parts of the pending output points (updated
    incrementally); out (G, n) final gains.
    """
    n_g, n_c, _ = xx.shape
    n = out.shape[1]
    n_ph = h.shape[0]
    pw = np.empty(lag + 1, dtype=np.float64)
    fin = np.zeros((n_c, n_ph, lag + 1), dtype=np.float64)
    un = np.zeros((n_c, n_ph, lag + 1), dtype=np.float64)
    dq = np.empty(ramp + n + 1, dtype=np.int64)  # sliding-window minimum of rr
    for g in range(n_g):
        gp = gp_state[g]
        for q in range(lag):
            pw[q] = plan_state[g, q]
            for c in range(n_c):
                for p in range(n_ph):
                    fin[c, p, q] = fin_state[g, c, p, q]
                    un[c, p, q] = un_state[g, c, p, q]
        head = 0
        tail = 0
        for k in range(ramp):
            while tail > head and rr[g, dq[tail - 1]] >= rr[g, k]:
                tail -= 1
            dq[tail] = k
            tail += 1
        for i in range(n):
            k = i + ramp
            while tail > head and rr[g, dq[tail - 1]] >= rr[g, k]:
                tail -= 1
            dq[tail] = k
            tail += 1
            if dq[head] < i:
                head += 1
            # planner: release (one-pole in dB towards 0 dB: g -> g ** a_rel), then
            # linear ramps that reach each requirement of the window in time
            cand = 1.0
            if gp < 1.0:
                cand = gp**a_rel
                if cand > _UNITY_SNAP:
                    cand = 1.0
            if rr[g, dq[head]] < cand:  # else no requirement of the window binds
                for j in range(ramp + 1):
                    rj = rr[g, i + j]
                    if rj < cand:
                        need = gp + (rj - gp) / (j + 1)
                        if need < cand:
                            cand = need
            gp = cand
            if lag == 0:
                out[g, i] = cand
                continue
            pw[lag] = cand
            # Output points i + j, j = 0..lag (j = lag enters now, its support is
            # entirely unfinalized): value = fin + un, exact.
            for c in range(n_c):
                for p in range(n_ph):
                    fin[c, p, lag] = 0.0
                    u = 0.0
                    for q in range(lag + 1):
                        u += h[p, lag - q] * (pw[q] * xx[g, c, i + q])
                    un[c, p, lag] = u
            s = _scale_to_fit(fin, un, ceil, tgt, n_c, lag + 1)
            if s < 1.0:
                for q in range(lag + 1):
                    pw[q] *= s
                for c in range(n_c):
                    for p in range(n_ph):
                        for j in range(lag + 1):
                            un[c, p, j] *= s
            # finalize sample i: its contribution moves from un to fin
            gi = pw[0]
            for c in range(n_c):
                xi = xx[g, c, i]
                for p in range(n_ph):
                    for j in range(lag + 1):
                        w = h[p, j] * (gi * xi)
                        fin[c, p, j] += w
                        un[c, p, j] -= w
            out[g, i] = gi
            # point i is complete (its value fin[:, :, 0]); shift the window
            for q in range(lag):
                pw[q] = pw[q + 1]
                for c in range(n_c):
                    for p in range(n_ph):
                        fin[c, p, q] = fin[c, p, q + 1]
                        un[c, p, q] = un[c, p, q + 1]
        gp_state[g] = gp
        for q in range(lag):
            plan_state[g, q] = pw[q]
            for c in range(n_c):
                for p in range(n_ph):
                    fin_state[g, c, p, q] = fin[c, p, q]
                    un_state[g, c, p, q] = un[c, p, q]


def dynamics_gain(
    det: Tensor,
    state: DynamicsState | None,
    *,
    kind: str,
    fs: float,
    threshold_db: float,
    ratio: float,
    attack_ms: float,
    release_ms: float,
    knee_db: float = 0.0,
    hold_ms: float = 0.0,
    makeup_db: float = 0.0,
    detector: str = "peak",
    link: bool = True,
) -> tuple[Tensor, DynamicsState]:
    """fxcli.dsp.dynamics.dynamics_gain on the reference kernel (CPU tensors)."""
    batch = tuple(det.shape[:-1])
    n = det.shape[-1]
    n_g, n_c = _groups(batch, link)
    if state is None:
        state = dynamics_init_state(batch, "cpu", link)
    ms = state.ms.detach().to(torch.float64).numpy().copy()
    env = state.env.detach().to(torch.float64).numpy().copy()
    hold = state.hold.detach().to(torch.float64).numpy().copy()
    d = det.detach().to(torch.float64).reshape(n_g, n_c, n).contiguous().numpy()
    out = np.empty((n_g, n), dtype=np.float64)
    with np.errstate(all="ignore"):  # non-finite input
        _dyn_kernel(
            d,
            detector == "rms",
            one_pole_coeff(RMS_WINDOW_MS, fs),
            0 if kind == "compressor" else 1,
            float(threshold_db),
            float(ratio),
            float(knee_db),
            one_pole_coeff(attack_ms, fs),
            one_pole_coeff(release_ms, fs),
            float(round(hold_ms * 1e-3 * fs)),
            -MAX_ATTENUATION_DB,
            float(makeup_db),
            ms,
            env,
            hold,
            out,
        )
    gshape = (*batch[:-1], 1, n) if link and len(batch) >= 1 else (*batch, n)
    gain = torch.from_numpy(out).reshape(gshape)
    return gain, DynamicsState(torch.from_numpy(ms), torch.from_numpy(env), torch.from_numpy(hold))


def _oversample_abs_max(xs: np.ndarray, n: int, h: np.ndarray) -> np.ndarray:
    """(G, C, T - 1 + n) -> (G, n): max over channels and the L phases of the
    interpolated values |sum_k h[p, k] x[t - k]| (summed in tap order)."""
    peaks = None
    hist = h.shape[1] - 1
    for taps in h:
        acc = xs[..., hist : hist + n] * taps[0]
        for k in range(1, len(taps)):
            acc = acc + xs[..., hist - k : hist - k + n] * taps[k]
        a = np.abs(acc).max(axis=1)
        peaks = a if peaks is None else np.maximum(peaks, a)
    assert peaks is not None
    return peaks


def limit(
    x: Tensor,
    state: LimiterState | None,
    *,
    ceiling: float,
    true_peak: bool,
    lookahead: int,
    release_ms: float,
    fs: float,
    interp: Interpolator | None = None,
) -> tuple[Tensor, LimiterState]:
    """fxcli.dsp.dynamics.limit on the reference kernel (CPU tensors)."""
    batch = tuple(x.shape[:-1])
    n = x.shape[-1]
    n_g, n_c = _groups(batch, True)
    it = limiter_interpolator(fs, interp)
    HISTORY = it.history  # noqa: N806
    if state is None:
        state = limiter_init_state(batch, "cpu", lookahead, true_peak, fs, it)
    d = limiter_latency(lookahead, true_peak, fs, it)
    lag = HISTORY if true_peak else 0
    if n == 0:
        return x.detach().clone(), state
    pend = state.pending.detach().to(torch.float64).numpy()
    xn = x.detach().to(torch.float64).reshape(n_g, n_c, n).numpy()
    xx = np.concatenate([pend, xn], axis=-1)  # index k <-> time t0 - d + k
    tpq_hist = state.tpq.detach().to(torch.float64).numpy()
    ceil = float(ceiling) * _CEILING_GUARD
    if true_peak:
        tp_new = _oversample_abs_max(xx[..., d - HISTORY :], n, it.phases)
        tpq = np.concatenate([tpq_hist, tp_new], axis=-1)
        win = np.lib.stride_tricks.sliding_window_view(tpq, HISTORY + 1, axis=-1).max(axis=-1)
        xa = np.abs(xx[..., d - HISTORY : d - HISTORY + n]).max(axis=1)
        peak = np.maximum(win, xa)
        new_tpq = tpq[..., n:]
    else:
        peak = np.abs(xn).max(axis=1)
        new_tpq = tpq_hist
    target = ceil * 10.0 ** (-_margin_db(true_peak) / 20.0)
    # torch computed target / peak as peak.reciprocal() * target
    with np.errstate(divide="ignore"):
        req_new = np.where(peak > ceil, (1.0 / peak) * target, 1.0)
    rr = np.concatenate([state.req.detach().to(torch.float64).numpy(), req_new], axis=-1)
    gp = state.gain.detach().to(torch.float64).numpy().copy()
    plan = state.plan.detach().to(torch.float64).numpy().copy()
    fin = state.fin.detach().to(torch.float64).numpy().copy()
    unf = state.unf.detach().to(torch.float64).numpy().copy()
    out = np.empty((n_g, n), dtype=np.float64)
    with np.errstate(all="ignore"):  # non-finite input
        _limiter_kernel(
            xx,
            rr,
            it.phases,
            int(lookahead),
            lag,
            ceil,
            target,
            one_pole_coeff(release_ms, fs),
            gp,
            plan,
            fin,
            unf,
            out,
        )
    with np.errstate(invalid="ignore"):  # inf * 0
        emitted = xx[..., :n] * out[:, None, :]
    skip = int(state.skip)
    drop = min(skip, n)
    y = torch.from_numpy(np.ascontiguousarray(emitted[..., drop:])).reshape(*batch, n - drop)
    new_state = LimiterState(
        pending=torch.from_numpy(xx[..., n:].copy()),
        tpq=torch.from_numpy(np.ascontiguousarray(new_tpq)),
        req=torch.from_numpy(rr[..., n:].copy()),
        gain=torch.from_numpy(gp),
        plan=torch.from_numpy(plan),
        fin=torch.from_numpy(fin),
        unf=torch.from_numpy(unf),
        skip=torch.tensor(skip - drop, dtype=torch.int64),
    )
    return y.to(x.dtype), new_state
