"""Triton GPU kernel for :func:`fxcli.dsp.firfilt` on float32 signals.

:func:`firfilt_triton` has exactly the semantics of ``fxcli.dsp.firfilt``
(``y = scipy.signal.lfilter(taps, [1.0], x, axis=-1)`` with the input history as
state):

- ``x``: shape ``(*batch, time)``, **float32**, on a CUDA device (or on the CPU when
  the environment has ``TRITON_INTERPRET=1`` set before triton was imported:
  Triton's interpreter, for tests; slow). float64 signals keep ``firfilt``'s
  float64 paths.
- ``taps``: shape ``(K,)``, ``K >= 1``, any real dtype and device; validated like
  ``firfilt`` (float64, finite), then rounded once to float32.
- ``zi``: ``(*batch, K - 1)`` input history (oldest first) or ``None`` (zeros), any
  real dtype; used as float32 in the arithmetic. ``zf``: ``(*batch, K - 1)`` float64
  on ``x``'s device, the last ``K - 1`` samples of ``concat(zi, x)`` (exact copies:
  ``zi`` itself for the part it supplies, so carrying ``zf`` is lossless).
- ``y`` has ``x``'s shape, dtype (float32) and device.
- No autograd: inputs are detached. :func:`fxcli.dsp.firfilt` routes calls
  that need gradients through :class:`fxcli.dsp.fir.FirfiltFunction`, whose
  forward may call this function and whose backward runs the float64 paths.

Algorithm (banded-Toeplitz block GEMM on tensor cores): with ``KP = K - 1`` rounded
up to a multiple of 16 (the taps padded with trailing zeros to ``KP + 1``, which
changes no output; it keeps the signal loads 16-byte aligned) and
``full = concat(zeros(KP - (K - 1)), zi, x)``, an output block of ``N`` consecutive
samples starting at ``n0`` is ``y[n0 + j] = sum_m full[n0 + m] * Tm[m, j]`` with
``Tm[m, j] = h[KP - m + j]`` when ``0 <= KP - m + j < K``, else 0, for
``m < WPAD = roundup(N + KP, BK)``. One Triton program stacks ``M`` consecutive
blocks (``n0 = base + i N``, ``i < M``) as the rows of ``Y (M x N) = A (M x WPAD) @
Tm (WPAD x N)``, accumulated in float32 over ``BK``-wide slices of ``WPAD`` with
``tl.dot(..., input_precision="tf32x3")`` (three TF32 tensor-core products per
slice: float32-level accuracy). ``A[i, m] = full[n0 + m]`` is a gather of
overlapping windows straight from ``x`` (and from ``zi`` for the first samples of
a row; ``full`` is never materialized): a program reads ``M * WPAD`` samples for
``M * N`` outputs, the overlap (``WPAD / N`` reads per sample) served by L2 (the
compiled sm_90 code stages the tiles through shared memory with 16-byte
``cp.async.cg``, which bypasses L1, when ``x``'s pointer and length are multiples
of 16 elements; otherwise scalar copies). ``Tm`` is built once per call in
torch (float32, stored transposed ``(N, WPAD)`` so that the dot's B operand is
K-contiguous). Grid: one program per (row, block of ``M * N`` outputs), 1-D,
int64 offsets.

Work: ``WPAD`` multiply-adds per output (3x that in TF32 tensor-core operations),
vs. ``K`` for the direct sum (e.g. K = 105, N = 64, BK = 32: KP = 112,
WPAD = 192); DRAM traffic: one read of ``x``, one write of ``y``; no intermediate
buffers besides ``Tm`` (``N * WPAD * 4`` bytes) and float32 copies of ``zi`` and
(only when ``x`` is not contiguous) of ``x``.

Accuracy: 3xTF32 splits each float32 operand into a TF32 "big" part and a TF32
"small" remainder and drops the small x small product: per-product relative error
about ``2^-21`` (float32: ``2^-24``), accumulated in float32 by the tensor cores.
``precision="ieee"`` uses plain float32 FMAs (no tensor cores, slower),
``"tf32"`` a single TF32 product (fast, ~1e-3 relative error: for measurement
only). Triton's CPU interpreter ignores ``input_precision`` (it multiplies in
float32 with NumPy), so interpreter tests check the indexing, not TF32 rounding.
"""

from __future__ import annotations

import contextlib
import math

import torch

from fxcli.dsp._triton import available, check_device, tl, triton
from fxcli.dsp.checks import check_signal
from fxcli.dsp.fir.args import check_taps, history

__all__ = ["PRECISIONS", "available", "firfilt_triton"]

PRECISIONS = ("tf32x3", "ieee", "tf32")

# defaults of the tile parameters (to be tuned on a GPU)
_M, _N, _BK = 64, 64, 32
_NUM_WARPS, _NUM_STAGES = 4, 3
_KP_ALIGN = 16  # history padding: signal loads 16-element (64-byte) aligned


if triton is not None:

    @triton.jit
    def _fir_kernel(
        x_ptr,  # (rows, T) float32, contiguous
        z_ptr,  # (rows, HL) float32 history, contiguous, HL = K - 1
        t_ptr,  # (N, WPAD) float32: t[j, m] = Tm[m, j]
        y_ptr,  # (rows, T) float32, contiguous
        T,
        HL,
        KP,  # HL rounded up to a multiple of 16
        WPAD,  # roundup(N + KP, BK)
        NB,  # blocks of M * N outputs per row
        M: tl.constexpr,
        N: tl.constexpr,
        BK: tl.constexpr,
        PRECISION: tl.constexpr,
    ):
        pid = tl.program_id(0).to(tl.int64)
        r = pid // NB
        base = (pid % NB) * (M * N)  # first output of this program (int64)
        i = tl.arange(0, M)
        j = tl.arange(0, N)
        kk = tl.arange(0, BK)
        n0 = base + i * N  # (M,) first output of each tile row
        xrow = x_ptr + r * T
        zrow = z_ptr + r * HL
        d = KP - HL  # zero padding in front of the history
        acc = tl.zeros((M, N), dtype=tl.float32)
        for k0 in range(0, WPAD, BK):
            f = n0[:, None] + (k0 + kk)[None, :]  # (M, BK) index into full (padded)
            xi = f - KP
            a = tl.load(xrow + xi, mask=(xi >= 0) & (xi < T), other=0.0)
            if base + k0 < KP:  # the slice reaches into the history (first block(s))
                a += tl.load(zrow + (f - d), mask=(f >= d) & (f < KP), other=0.0)
            b = tl.load(t_ptr + j[None, :] * WPAD + (k0 + kk)[:, None])  # (BK, N)
            acc = tl.dot(a, b, acc, input_precision=PRECISION)
        out = n0[:, None] + j[None, :]
        tl.store(y_ptr + r * T + out, acc, mask=out < T)


def _toeplitz(h: torch.Tensor, kp: int, n: int, wpad: int) -> torch.Tensor:
    """Tm transposed, ``(n, wpad)`` float32: ``[j, m] = h[kp - m + j]`` (0 outside ``[0, K)``).

    ``h``: ``(K,)`` float64 on the target device; the band is built in float64 and
    rounded once to float32.
    """
    k = h.shape[0]
    j = torch.arange(n, device=h.device)[:, None]
    m = torch.arange(wpad, device=h.device)[None, :]
    idx = kp - m + j
    band = torch.where((idx >= 0) & (idx < k), h[idx.clamp(0, k - 1)], h.new_zeros(()))
    return band.to(torch.float32).contiguous()


def _tile_param(name: str, value: int | None, default: int) -> int:
    v = default if value is None else value
    if isinstance(v, bool) or not isinstance(v, int) or v < 16 or v & (v - 1):
        raise ValueError(f"{name} must be a power of two >= 16, got {value!r}")
    return v


def firfilt_triton(
    x: torch.Tensor,
    taps: torch.Tensor,
    zi: torch.Tensor | None = None,
    *,
    m: int | None = None,
    n: int | None = None,
    bk: int | None = None,
    precision: str = "tf32x3",
    num_warps: int | None = None,
    num_stages: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``fxcli.dsp.firfilt`` for float32 signals, by a Triton kernel (see the module doc).

    Args:
        x: ``(*batch, time)`` float32 CUDA tensor (CPU with ``TRITON_INTERPRET=1``).
        taps: ``(K,)`` filter taps, ``K >= 1``, finite.
        zi: ``(*batch, K - 1)`` input history (oldest first) or ``None`` for zeros.
        m: tile rows M, output blocks per program (power of two >= 16; default 64).
        n: tile columns N, outputs per block (power of two >= 16; default 64).
        bk: reduction slice BK of the window (power of two >= 16; default 32).
        precision: ``tl.dot`` input precision: ``"tf32x3"`` (default, float32-level
            accuracy on tensor cores), ``"ieee"`` (float32 FMAs) or ``"tf32"``
            (one TF32 product, ~1e-3 relative error; for measurement only).
        num_warps: Triton launch option (default 4; ignored by the interpreter).
        num_stages: Triton software-pipelining depth (default 3; ignored by the
            interpreter).

    Returns:
        ``(y, zf)``: ``y`` like ``x`` (shape, float32, device); ``zf``
        ``(*batch, K - 1)`` float64 on ``x``'s device, the last ``K - 1`` samples of
        ``concat(zi, x)``. ``time == 0``: ``y`` empty, ``zf`` = ``zi`` (or zeros).

    Raises:
        RuntimeError: triton is not importable.
        TypeError: ``x`` is not a float32 tensor.
        ValueError: bad device, shapes, taps, tile parameters or precision.
    """
    check_signal(x)
    check_device(x, "firfilt_triton")
    if x.dtype != torch.float32:
        raise TypeError(f"firfilt_triton needs a float32 x, got {x.dtype}")
    device = x.device
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    tm = _tile_param("m", m, _M)
    tn = _tile_param("n", n, _N)
    tbk = _tile_param("bk", bk, _BK)
    h = check_taps(x, taps, "triton")  # (K,) float64 on x's device
    k = h.shape[0]
    batch = tuple(x.shape[:-1])
    n_t = x.shape[-1]
    rows = math.prod(batch)
    hist_shape = (*batch, k - 1)
    hist = history(zi, batch, k, device)
    with torch.no_grad():
        x2 = x.detach().reshape(rows, n_t)
        if n_t >= k - 1:
            zf = x2[:, n_t - (k - 1) :].to(torch.float64)
        else:
            zf = torch.cat((hist[:, n_t:], x2.to(torch.float64)), dim=1)
        if n_t == 0 or rows == 0:
            return x.detach().clone(), zf.clone().reshape(hist_shape)
        x2 = x2.contiguous()
        hist32 = hist.to(torch.float32).contiguous()
        kp = -(-(k - 1) // _KP_ALIGN) * _KP_ALIGN
        wpad = -(-(tn + kp) // tbk) * tbk
        tmat = _toeplitz(h, kp, tn, wpad)
        y = torch.empty((rows, n_t), dtype=torch.float32, device=device)
        nb = triton.cdiv(n_t, tm * tn)
        grid = (rows * nb,)
        ctx: contextlib.AbstractContextManager[object] = (
            torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
        )
        with ctx:
            _fir_kernel[grid](
                x2,
                hist32,
                tmat,
                y,
                n_t,
                k - 1,
                kp,
                wpad,
                nb,
                M=tm,
                N=tn,
                BK=tbk,
                PRECISION=precision,
                num_warps=_NUM_WARPS if num_warps is None else num_warps,
                num_stages=_NUM_STAGES if num_stages is None else num_stages,
            )
    return y.reshape(x.shape), zf.reshape(hist_shape)
