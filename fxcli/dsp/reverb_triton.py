"""Freeverb's comb/allpass network (:func:`fxcli.dsp.reverb.freeverb`) on the tensor's
own device (CUDA), without a copy to the CPU and back.

One Triton program per row (delay-line set) runs the row's samples in time order,
as ``csrc/reverb.cpp`` does, with the same operations in the same order: the 8
combs as one vector of lanes (``o = buf[p]; last = o*(1-damp) + last*damp;
buf[p] = x + last*feedback``) summed into ``out`` lane by lane in comb order, then
the 4 allpasses in series (``b = buf[p]; buf[p] = out + b*0.5; out = b - out``).
Delay buffers, positions and lowpass states are the same state dict as the CPU's,
moved to the device. Float64 throughout; equal to the CPU kernel to float64
rounding (bit for bit under the interpreter; the device may fuse multiply-adds).

Devices: CUDA tensors, or CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1``, how the tests run it). Autograd: none.
"""

from __future__ import annotations

from typing import Any

import torch

from fxcli.dsp._triton import available, check_device, tl, triton

__all__ = ["freeverb_device", "usable"]


if triton is not None:

    @triton.jit
    def _freeverb_kernel(  # type: ignore[no-untyped-def]
        x_ptr,
        wet_ptr,
        n,
        cbuf_ptr,
        clen_ptr,
        cpos_ptr,
        clast_ptr,
        c_stride,
        abuf_ptr,
        alen_ptr,
        apos_ptr,
        a_stride,
        p_ptr,
        NC: tl.constexpr,
        NA: tl.constexpr,
    ):
        r = tl.program_id(0).to(tl.int64)
        feedback = tl.load(p_ptr + 0)
        damp = tl.load(p_ptr + 1)
        damp1 = 1.0 - damp
        jc = tl.arange(0, NC)
        ja = tl.arange(0, NA)
        c_rows = cbuf_ptr + (r * NC + jc).to(tl.int64) * c_stride
        clen = tl.load(clen_ptr + r * NC + jc)
        cp = tl.load(cpos_ptr + r * NC + jc)
        last = tl.load(clast_ptr + r * NC + jc)
        alen = tl.load(alen_ptr + r * NA + ja)
        ap = tl.load(apos_ptr + r * NA + ja)
        for t in range(0, n):
            xi = tl.load(x_ptr + r * n + t)
            o = tl.load(c_rows + cp)
            last = o * damp1 + last * damp
            tl.store(c_rows + cp, xi + last * feedback)
            cp = cp + 1
            cp = tl.where(cp >= clen, 0, cp)
            out = xi * 0.0  # 0.0 as float64
            for j in tl.static_range(NC):  # summed in comb order, as on the CPU
                out = out + tl.sum(tl.where(jc == j, o, 0.0))
            for j in tl.static_range(NA):
                pj = tl.sum(tl.where(ja == j, ap, 0))
                lj = tl.sum(tl.where(ja == j, alen, 0))
                ptr = abuf_ptr + (r * NA + j) * a_stride + pj
                b = tl.load(ptr)
                tl.store(ptr, out + b * 0.5)
                out = b - out
                pj = pj + 1
                pj = tl.where(pj >= lj, 0, pj)
                ap = tl.where(ja == j, pj, ap)
            tl.store(wet_ptr + r * n + t, out)
        tl.store(cpos_ptr + r * NC + jc, cp)
        tl.store(clast_ptr + r * NC + jc, last)
        tl.store(apos_ptr + r * NA + ja, ap)


def freeverb_device(
    x: torch.Tensor, state: dict[str, Any], feedback: float, damp: float
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Run the network on ``x`` ``(rows, n)`` (the scaled comb input) on ``x``'s device.

    ``state`` (from :func:`fxcli.dsp.reverb.freeverb_state`, on any device) is not
    modified; returns ``(wet (rows, n) float64, new_state on x's device)``."""
    check_device(x, "freeverb_device")
    dev = x.device
    new = {
        k: v.detach().to(dev).clone(memory_format=torch.contiguous_format) for k, v in state.items()
    }
    rows, n = x.shape
    nc, na = new["comb_len"].shape[1], new["ap_len"].shape[1]
    if nc & (nc - 1) or na & (na - 1):
        raise ValueError(f"freeverb_device: line counts must be powers of 2, got {nc}, {na}")
    x64 = x.detach().to(torch.float64).contiguous()
    wet = torch.empty((rows, n), dtype=torch.float64, device=dev)
    if rows and n:
        params = torch.tensor([float(feedback), float(damp)], dtype=torch.float64, device=dev)
        _freeverb_kernel[(rows,)](
            x64, wet, n,
            new["comb_buf"], new["comb_len"], new["comb_pos"], new["comb_last"],
            new["comb_buf"].shape[2],
            new["ap_buf"], new["ap_len"], new["ap_pos"], new["ap_buf"].shape[2],
            params, NC=nc, NA=na,
        )  # fmt: skip
    return wet, new


def usable(x: Any) -> bool:
    """Whether ``x`` takes the device path: a CUDA tensor, with Triton importable."""
    return isinstance(x, torch.Tensor) and x.device.type == "cuda" and available()
