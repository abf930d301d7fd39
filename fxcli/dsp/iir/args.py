"""Validation of second-order-section arguments: ``sos`` and the ``zi`` state."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["sos_to_numpy", "zi_rows"]


def sos_to_numpy(sos: torch.Tensor | np.ndarray) -> np.ndarray:
    """Validate ``sos`` and return it as a C-contiguous float64 numpy array, a0 = 1."""
    torch_mod = sys.modules.get("torch")  # a tensor can only exist once torch is loaded
    if torch_mod is not None and isinstance(sos, torch_mod.Tensor):
        arr = sos.detach().to(device="cpu", dtype=torch_mod.float64).numpy()
    else:
        arr = np.asarray(sos, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 6 or arr.shape[0] < 1:
        raise ValueError(
            "sos must have shape (n_sections, 6) with rows [b0, b1, b2, a0, a1, a2] "
            f"and n_sections >= 1, got shape {tuple(arr.shape)}"
        )
    if not np.isfinite(arr).all():
        bad = sorted({int(i) for i in np.nonzero(~np.isfinite(arr))[0]})
        raise ValueError(f"sos has non-finite coefficients (nan or inf) in section(s) {bad}")
    a0 = arr[:, 3]
    if not (a0 == 1.0).all():
        if (a0 == 0.0).any():
            bad = [int(i) for i in np.nonzero(a0 == 0.0)[0]]
            raise ValueError(f"sos has a0 == 0 (column 3) in section(s) {bad}; a0 must be nonzero")
        arr = arr / a0[:, None]
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def zi_rows(
    zi: torch.Tensor | None,
    n_sections: int,
    batch: tuple[int, ...],
    rows: int,
    device: torch.device,
) -> torch.Tensor:
    """Return the state as a fresh contiguous float64 (S, rows, 2) tensor on ``device``."""
    import torch

    expected = (n_sections, *batch, 2)
    if zi is None:
        return torch.zeros((n_sections, rows, 2), dtype=torch.float64, device=device)
    if not isinstance(zi, torch.Tensor):
        zi = torch.as_tensor(zi)
    if tuple(zi.shape) != expected:
        raise ValueError(
            f"zi must have shape (n_sections, *batch, 2) = {expected}, got {tuple(zi.shape)}"
        )
    z = zi.detach().to(device=device, dtype=torch.float64).reshape(n_sections, rows, 2)
    return z.clone(memory_format=torch.contiguous_format)
