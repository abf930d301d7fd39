"""Validation of FIR arguments: the taps and the input-history state."""

from __future__ import annotations

import math

import torch

from fxcli.dsp.checks import check_signal

__all__ = ["METHODS", "check_taps", "history"]

METHODS = ("auto", "direct", "fft", "triton")


def check_taps(x: torch.Tensor, taps: torch.Tensor, method: str) -> torch.Tensor:
    check_signal(x)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    h = torch.as_tensor(taps).detach()
    if h.ndim != 1 or h.shape[0] < 1:
        raise ValueError(f"taps must have shape (K,) with K >= 1, got {tuple(h.shape)}")
    h = h.to(device=x.device, dtype=torch.float64)
    if not bool(torch.isfinite(h).all()):
        raise ValueError("taps contain non-finite values (nan or inf)")
    return h


def history(
    zi: torch.Tensor | None, batch: tuple[int, ...], k: int, device: torch.device
) -> torch.Tensor:
    """The input history ``zi`` (``(*batch, K - 1)`` or None for zeros), checked, as
    a fresh ``(rows, K - 1)`` float64 tensor on ``device``."""
    rows = math.prod(batch)
    hist_shape = (*batch, k - 1)
    if zi is None:
        return torch.zeros((rows, k - 1), dtype=torch.float64, device=device)
    zi = torch.as_tensor(zi)
    if tuple(zi.shape) != hist_shape:
        raise ValueError(
            f"zi must have shape (*batch, K - 1) = {hist_shape}, got {tuple(zi.shape)}"
        )
    return zi.detach().to(device=device, dtype=torch.float64).reshape(rows, k - 1)
