"""The one place the optional ``triton`` is imported for fxcli's GPU kernels, with the
checks both kernel modules share: whether a kernel can run here, and the device rule
(CUDA tensors, or CPU tensors under Triton's interpreter, ``TRITON_INTERPRET=1``, which
the tests use)."""

from __future__ import annotations

import os

import torch

try:  # triton is optional: it ships with CUDA builds of torch, not with CPU ones
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - depends on the environment
    triton = None  # type: ignore[assignment]
    tl = None  # type: ignore[assignment]

__all__ = ["available", "check_device", "interpret", "tl", "triton"]


def interpret() -> bool:
    """Whether Triton's CPU interpreter is on (``TRITON_INTERPRET`` set and not 0)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def available() -> bool:
    """Whether a Triton kernel can run: triton imported and CUDA present (or the interpreter)."""
    if triton is None:
        return False
    return interpret() or torch.cuda.is_available()


def check_device(x: torch.Tensor, name: str) -> None:
    """Raise unless ``x`` can go to a Triton kernel (``name`` is the caller, for the message)."""
    if triton is None:
        raise RuntimeError(f"{name} needs triton, which could not be imported")
    if x.device.type != "cuda" and not (x.device.type == "cpu" and interpret()):
        raise ValueError(
            f"{name} needs a CUDA tensor (or a CPU one with TRITON_INTERPRET=1), x is on {x.device}"
        )
