"""Argument checks shared by the dsp kernels (each check written once)."""

from __future__ import annotations

import torch

__all__ = ["check_signal", "needs_grad"]


def check_signal(x: torch.Tensor) -> None:
    """Raise unless ``x`` is a float32/float64 tensor with a time axis (the last one)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if x.ndim < 1:
        raise ValueError("x must have at least one dimension (the last one is time)")


def needs_grad(*tensors: object) -> bool:
    """Whether autograd is recording and one of ``tensors`` requires grad."""
    if not torch.is_grad_enabled():
        return False
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)
