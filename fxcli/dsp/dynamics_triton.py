"""The compressor / expander gain of :func:`fxcli.dsp.dynamics.dynamics_gain` on the
tensor's own device (CUDA), without a copy to the CPU and back.

The same three stages as the compiled CPU kernel (``csrc/dynamics.cpp``), with the
same arithmetic in the same order:

1. the detector level in dB per frame: ``20 log10 max_c |d|`` (``"peak"``) or
   ``10 log10 max_c ms`` (``"rms"``; the mean square ``ms[n] = b ms[n-1] + (1 - b)
   d[n]^2`` per channel is a sequential Triton loop, one program per channel row);
   levels at or below 1e-15 (1e-30 for mean squares) read ``-300 dB``. Elementwise
   torch operations on the device.
2. the static curve and the one-pole smoothing of the gain in dB (attack/release,
   the expander's hold): sequential in time, one Triton program per gain group, so
   channels and files run in parallel and each group runs its samples in order.
3. ``10 ** ((y + makeup) / 20)``: elementwise on the device.

Everything is float64 (state included). The result equals the CPU kernel's within
float64 rounding (the device's ``log10``/``pow`` and fused multiply-adds differ in
the last bits), far inside the float32 output's resolution; chunked calls carrying
the state equal one call to the same rounding.

Devices: CUDA tensors, or CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1``, how the tests run it without a GPU). Autograd: none (the
gain is a detached function of the detector, as on the CPU).
"""

from __future__ import annotations

from typing import Any

import torch

from fxcli.dsp._triton import available, check_device, tl, triton

__all__ = ["dynamics_gain_device", "usable"]

_LEVEL_FLOOR_DB = -300.0  # fxcli.dsp.dynamics._LEVEL_FLOOR_DB


if triton is not None:

    @triton.jit
    def _mean_square_kernel(d_ptr, out_ptr, ms_ptr, n, p_ptr):  # type: ignore[no-untyped-def]
        """Row r: out[r, t] = ms = a ms + (1 - a) d[r, t]^2 in time order; ms_ptr[r]
        holds the state in and out; a = p_ptr[0] (float64: Triton would pass a
        Python float as float32)."""
        r = tl.program_id(0).to(tl.int64)
        a_rms = tl.load(p_ptr)
        m = tl.load(ms_ptr + r)
        one_minus = 1.0 - a_rms
        for t in range(0, n):
            v = tl.load(d_ptr + r * n + t).to(tl.float64)
            m = a_rms * m + one_minus * (v * v)
            tl.store(out_ptr + r * n + t, m)
        tl.store(ms_ptr + r, m)

    @triton.jit
    def _gain_kernel(  # type: ignore[no-untyped-def]
        lev_ptr,
        env_ptr,
        hold_ptr,
        n,
        p_ptr,
        KIND: tl.constexpr,
    ):
        """Group g: lev[g, :] (dB) is replaced by the smoothed gain in dB, in time
        order; env_ptr[g] / hold_ptr[g] hold the state in and out. The parameters
        come as float64 values at p_ptr (threshold, 1/ratio - 1, ratio - 1, knee,
        attack and release coefficients, hold frames, floor)."""
        g = tl.program_id(0).to(tl.int64)
        thr = tl.load(p_ptr + 0)
        slope = tl.load(p_ptr + 1)
        ratio_m1 = tl.load(p_ptr + 2)
        knee = tl.load(p_ptr + 3)
        a_att = tl.load(p_ptr + 4)
        a_rel = tl.load(p_ptr + 5)
        hold_n = tl.load(p_ptr + 6)
        floor_db = tl.load(p_ptr + 7)
        y = tl.load(env_ptr + g)
        h = tl.load(hold_ptr + g)
        for t in range(0, n):
            dx = tl.load(lev_ptr + g * n + t) - thr
            if KIND == 0:  # compressor: soft knee, attack when the gain falls
                q = dx + knee / 2.0
                in_knee = (knee > 0.0) & (2.0 * tl.abs(dx) <= knee)
                soft = tl.where(in_knee, slope * q * q / (2.0 * knee), 0.0)
                gs = tl.where(2.0 * dx > knee, slope * dx, soft)
                a = tl.where(gs < y, a_att, a_rel)
                y = a * y + (1.0 - a) * gs
            else:  # downward expander / gate: attack opens, closing held for hold_n
                gs = tl.where(dx < 0.0, ratio_m1 * dx, 0.0)
                gs = tl.where(gs < floor_db, floor_db, gs)
                opening = gs >= y
                held = (gs < y) & (h > 0)
                y_att = a_att * y + (1.0 - a_att) * gs
                y_rel = a_rel * y + (1.0 - a_rel) * gs
                y = tl.where(opening, y_att, tl.where(held, y, y_rel))
                h = tl.where(opening, hold_n, tl.where(held, h - 1.0, h))
            tl.store(lev_ptr + g * n + t, y)
        tl.store(env_ptr + g, y)
        tl.store(hold_ptr + g, h)


def dynamics_gain_device(
    d: torch.Tensor,
    state: Any,
    *,
    rms: bool,
    a_rms: float,
    kind: int,
    threshold_db: float,
    ratio: float,
    knee_db: float,
    a_att: float,
    a_rel: float,
    hold_n: float,
    floor_db: float,
    makeup_db: float,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The gain ``(G, n)`` float64 of detector ``d`` ``(G, C, n)`` on ``d``'s device.

    ``state``: a :class:`fxcli.dsp.dynamics.DynamicsState` (``ms`` ``(G, C)``, ``env``
    and ``hold`` ``(G,)``), copied, never modified. Returns ``(gain, (ms, env,
    hold))``: the new state, float64 on ``d``'s device. The other arguments are the
    CPU kernel's (``kind`` 0 compressor, 1 expander; coefficients already converted
    by the caller)."""
    check_device(d, "dynamics_gain_device")
    g_count, c_count, n = d.shape
    dev = d.device
    ms = state.ms.detach().to(dev, torch.float64).reshape(g_count * c_count).clone()
    env = state.env.detach().to(dev, torch.float64).reshape(g_count).clone()
    hold = state.hold.detach().to(dev, torch.float64).reshape(g_count).clone()
    d = d.detach()
    if d.dtype not in (torch.float32, torch.float64):
        d = d.to(torch.float64)
    d = d.contiguous()
    if n == 0:
        empty = torch.empty((g_count, 0), dtype=torch.float64, device=dev)
        return empty, (ms.reshape(g_count, c_count), env, hold)
    if rms:
        sq = torch.empty((g_count * c_count, n), dtype=torch.float64, device=dev)
        if g_count * c_count:
            p_ms = torch.tensor([float(a_rms)], dtype=torch.float64, device=dev)
            _mean_square_kernel[(g_count * c_count,)](d.reshape(-1, n), sq, ms, n, p_ms)
        level = sq.reshape(g_count, c_count, n).amax(dim=1)
        tiny, scale = 1e-30, 10.0
    else:
        level = d.abs().to(torch.float64).amax(dim=1)
        tiny, scale = 1e-15, 20.0
    lev = torch.where(
        level > tiny,
        scale * torch.log10(level),
        torch.full_like(level, _LEVEL_FLOOR_DB),
    ).contiguous()
    if g_count:
        params = torch.tensor(
            [float(threshold_db), 1.0 / float(ratio) - 1.0, float(ratio) - 1.0, float(knee_db),
             float(a_att), float(a_rel), float(hold_n), float(floor_db)],
            dtype=torch.float64, device=dev,
        )  # fmt: skip
        _gain_kernel[(g_count,)](lev, env, hold, n, params, KIND=int(kind))
    gain = torch.pow(10.0, (lev + float(makeup_db)) / 20.0)
    return gain, (ms.reshape(g_count, c_count), env, hold)


def usable(x: Any) -> bool:
    """Whether ``x`` takes the device path: a CUDA tensor, with Triton importable
    (CPU tensors keep the compiled core; the tests call
    :func:`dynamics_gain_device` on CPU tensors under Triton's interpreter)."""
    return isinstance(x, torch.Tensor) and x.device.type == "cuda" and available()
