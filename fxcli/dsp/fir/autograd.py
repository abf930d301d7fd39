"""Gradients of :func:`fxcli.dsp.firfilt` w.r.t. the signal, the taps and the history.

The input gradient is the filter applied to the flipped output gradient (same
taps, full length), the taps' gradient an FFT cross-correlation of the output
gradient with the input (history included); both are again differentiable.
"""

from __future__ import annotations

import math

import torch

from fxcli.dsp.checks import needs_grad
from fxcli.dsp.fir.args import check_taps
from fxcli.dsp.fir.dispatch import forward

__all__ = ["FirfiltFunction", "firfilt_autograd"]


def _fir(
    x: torch.Tensor, taps: torch.Tensor, zi: torch.Tensor | None, method: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """firfilt recording gradients when needed: x (rows, n), taps (K,) float64, zi (rows, K-1)."""
    if needs_grad(x, taps, zi):
        out = FirfiltFunction.apply(x, taps, zi, method)
        return out[0], out[1]
    return forward(x.detach(), taps.detach(), None if zi is None else zi.detach(), method)


class FirfiltFunction(torch.autograd.Function):
    """``(y, zf) = firfilt(x, taps, zi)`` with gradients for ``x``, ``taps`` and ``zi``.

    Normalized form: ``x`` (rows, time) float32/float64, ``taps`` (K,) float64 on
    ``x``'s device, ``zi`` (rows, K-1) float64 or ``None``. Use
    :func:`firfilt_autograd` (or :func:`fxcli.dsp.firfilt`) rather than ``apply``.
    """

    @staticmethod
    def forward(ctx, x, taps, zi, method):  # type: ignore[override]
        y, zf = forward(x, taps, zi, method)
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
    h = check_taps(x, taps, method)  # validation (detached copy)
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
