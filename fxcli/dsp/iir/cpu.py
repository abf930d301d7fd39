"""The CPU kernel of the biquad cascade: ``sosfilt`` of the compiled core
(``csrc/iir.cpp``), fused sections, SIMD across rows, threads across rows.

For each sample all sections of a group (up to 4) run with coefficients and states
in registers; groups of :data:`LANES` rows are filtered together with 4-wide
vectors, the remaining rows one by one, spread over :func:`fxcli.dsp.native.threads`
threads. Inputs of fewer than :data:`LANES` rows (mono, stereo, 3 channels) fill the
lanes with sections instead: section s works on sample t - s while section s + 1
works on t - s - 1 (``csrc/iir_skew.hpp``; each section's operations unchanged, so the
same bits). The arithmetic is operation for operation SciPy's transposed direct form
II (no FMA contraction), so on x86-64 float64 results equal
``scipy.signal.sosfilt`` bit for bit, and chunked calls always equal one call bit
for bit. No torch and no JIT: this is the CPU path's entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fxcli.dsp.native import core, threads

if TYPE_CHECKING:
    import torch

__all__ = ["BLOCK", "LANES", "sosfilt_array", "sosfilt_cpu"]

#: rows filtered together with one 4-wide vector
LANES = int(core.LANES)
#: samples per block of the scratch buffer of cascades longer than 4 sections
BLOCK = 2048


def sosfilt_array(x2: np.ndarray, sos_np: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The cascade on a 2-D (rows, time) float32/float64 numpy array; ``sos_np``
    (S, 6) float64 with a0 = 1 (see :func:`fxcli.dsp.iir.args.sos_to_numpy`), ``z``
    (S, rows, 2) float64 C-contiguous, updated in place to the final state. Returns
    ``y`` of ``x2``'s shape and dtype."""
    x_np = np.ascontiguousarray(x2)
    if x_np.dtype not in (np.float32, np.float64):
        x_np = x_np.astype(np.float64)
    # numpy allocates large arrays with madvise(MADV_HUGEPAGE): on Linux with THP in
    # "madvise" mode first-touch page faults of the output then cost ~6x less than
    # for torch.empty (measured: 10 ms vs 60 ms for 85 MB, as much as the filtering).
    y_np = np.empty(x_np.shape, dtype=x_np.dtype)
    if x_np.size:
        core.sosfilt(x_np, y_np, sos_np, z, threads())
    return y_np


def sosfilt_cpu(
    x2: torch.Tensor, sos_np: np.ndarray, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel on a 2-D (rows, time) CPU tensor; ``z`` (S, rows, 2) float64 is updated."""
    import torch

    y = sosfilt_array(x2.contiguous().numpy(), sos_np, z.numpy())
    return torch.from_numpy(y), z


def sosfilt_np(
    x: np.ndarray, sos_np: np.ndarray, zi: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fxcli.dsp.sosfilt` for numpy arrays: ``x`` (*batch, time) float32/float64,
    ``sos_np`` (S, 6) float64 with a0 = 1, ``zi`` (S, *batch, 2) float64 or ``None``
    (zeros; never modified). Returns ``(y, zf)`` as the torch function does, with the
    same bits. CPU only, no torch."""
    n_sec = sos_np.shape[0]
    batch = x.shape[:-1]
    rows = int(np.prod(batch)) if batch else 1
    if zi is None:
        z = np.zeros((n_sec, rows, 2))
    else:
        if zi.shape != (n_sec, *batch, 2):
            raise ValueError(
                f"zi must have shape (n_sections, *batch, 2) = {(n_sec, *batch, 2)}, "
                f"got {tuple(zi.shape)}"
            )
        z = np.array(zi, dtype=np.float64, order="C").reshape(n_sec, rows, 2)
    y = sosfilt_array(x.reshape(rows, x.shape[-1]), sos_np, z)
    return y.reshape(x.shape), z.reshape(n_sec, *batch, 2)
