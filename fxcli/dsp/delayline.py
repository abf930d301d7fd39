"""Feedback delay (echo) on torch tensors with exact streaming state.

:func:`feedback_delay` computes, for a delay of ``D >= 1`` frames and a feedback
gain ``g``::

    wet[n] = x[n - D] + g * wet[n - D]        (x[n] = wet[n] = 0 for n < 0)

i.e. ``wet`` is the sum of the echoes ``g**(k-1) * x[n - k D]``, ``k >= 1``. The
recursion only reaches ``D`` frames back, so blocks of ``D`` frames are computed at
once from the previous block (pure torch, any device; ``ceil(n / D)`` vectorized
steps per call). The state is the last ``D`` input frames and the last ``D`` wet
frames, float64, so chunked calls equal one call on the whole signal bit for bit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["feedback_delay", "delay_state"]


def delay_state(
    batch_shape: tuple[int, ...], delay: int, device: torch.device | str | None
) -> tuple[Any, Any]:
    """Zero state ``(x_hist, wet_hist)``, each ``(*batch, delay)`` float64 on ``device``
    (numpy arrays for ``device=None``: the torch-free CPU path)."""
    if device is None:
        z = np.zeros((*batch_shape, delay))
        return z, z.copy()
    import torch

    zt = torch.zeros((*batch_shape, delay), dtype=torch.float64, device=device)
    return zt, zt.clone()


def feedback_delay(
    x: Any,
    delay: int,
    feedback: float,
    state: tuple[Any, Any] | None = None,
) -> tuple[Any, tuple[Any, Any]]:
    """The wet (echo) signal of a feedback delay line.

    Args:
        x: ``(*batch, n)`` float32 or float64: a tensor on any device, or a numpy
            array (the same operations in numpy, the same bits; state numpy too).
        delay: ``D`` in frames, ``>= 1``.
        feedback: ``g``; any finite float (|g| < 1 for a decaying echo).
        state: ``(x_hist, wet_hist)``, each ``(*batch, D)`` float64: the last ``D``
            input frames and the last ``D`` wet frames before ``x``, oldest first;
            ``None`` means zeros. Never modified.

    Returns:
        ``(wet, new_state)``: ``wet`` is ``(*batch, n)`` float64 on ``x``'s device
        (the caller mixes and casts); ``new_state`` as ``state``.
    """
    if delay < 1:
        raise ValueError(f"delay must be >= 1 frame, got {delay}")
    batch = tuple(x.shape[:-1])
    n = x.shape[-1]
    arrays = isinstance(x, np.ndarray)
    if state is None:
        state = delay_state(batch, delay, None if arrays else x.device)
    xh, wh = state
    if tuple(xh.shape) != (*batch, delay) or tuple(wh.shape) != (*batch, delay):
        raise ValueError(
            f"state must be two tensors of shape {(*batch, delay)}, got "
            f"{tuple(xh.shape)} and {tuple(wh.shape)}"
        )
    if arrays:
        xs: Any = np.concatenate((np.asarray(xh, np.float64), x.astype(np.float64)), axis=-1)
        ws: Any = np.empty_like(xs)
        ws[..., :delay] = wh
    else:
        import torch

        x = x.detach()
        xs = torch.cat((xh.detach().to(x.device, torch.float64), x.to(torch.float64)), dim=-1)
        ws = torch.empty_like(xs)
        ws[..., :delay] = wh.detach().to(x.device, torch.float64)
    # the same slicing arithmetic for numpy arrays and tensors (the same bits)
    for b in range(math.ceil(n / delay)):
        lo = delay + b * delay
        hi = min(lo + delay, delay + n)
        m = hi - lo
        ws[..., lo:hi] = (
            xs[..., lo - delay : lo - delay + m] + feedback * ws[..., lo - delay : lo - delay + m]
        )
    if arrays:
        return ws[..., delay:], (xs[..., n:].copy(), ws[..., n:].copy())
    return ws[..., delay:], (xs[..., n:].clone(), ws[..., n:].clone())
