"""True-peak measurement per ITU-R BS.1770-4 Annex 2 (4x oversampling).

The Recommendation's interpolator is a 48-tap FIR used as 4 polyphase
branches of 12 taps (:data:`PHASES`, the published coefficients verbatim, as in
libebur128 and other open implementations). Phase ``p`` of input step ``n``
gives oversampled sample ``4 n + p``:

    y[4 n + p] = sum_{k=0}^{11} PHASES[p, k] * x[n - k]

where samples before the stream's start are zero, and samples before the
start of one call come from the explicit ``state`` (the last 11 input samples).
The 48-tap filter is linear phase (symmetric about tap 23.5), so ``y[m]``
estimates the continuous signal at input time ``(m - 23.5) / 4`` sample
periods: a delay of 23.5 oversampled samples = 5.875 input samples. The
interpolated instants fall at 1/8, 3/8, 5/8 and 7/8 of each sample period,
never on the samples themselves, so :func:`true_peak` also takes the maximum
with ``|x|`` (the sample peak never exceeds the true peak).

Everything is computed in float64 in a fixed order (each value summed in tap
order, no fused multiply-add; no reductions whose blocking depends on the
length), so chunked calls carrying the state give bit-identical oversampled
values and peaks to one call on the whole signal, on any device. CPU arrays and
tensors run the compiled core (``true_peak`` and ``truepeak_oversample`` of
:mod:`fxcli.dsp.native`, ``csrc/truepeak.cpp``: the same products and sums, bit
for bit; rows and long stretches of a row over :func:`fxcli.dsp.native.threads`
threads); other devices run the same arithmetic as tensor operations there (no
host copy). :func:`true_peak_array` needs no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fxcli.dsp.native import core, threads

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = [
    "PHASES",
    "HISTORY",
    "DELAY_OVERSAMPLED",
    "oversample4",
    "true_peak",
    "true_peak_array",
    "init_state",
]

#: ITU-R BS.1770-4 Annex 2 interpolation filter: 4 phases x 12 taps, as published.
PHASES: tuple[tuple[float, ...], ...] = (
    (
        0.0017089843750,
        0.0109863281250,
        -0.0196533203125,
        0.0332031250000,
        -0.0594482421875,
        0.1373291015625,
        0.9721679687500,
        -0.1022949218750,
        0.0476074218750,
        -0.0266113281250,
        0.0148925781250,
        -0.0083007812500,
    ),
    (
        -0.0291748046875,
        0.0292968750000,
        -0.0517578125000,
        0.0891113281250,
        -0.1665039062500,
        0.4650878906250,
        0.7797851562500,
        -0.2003173828125,
        0.1015625000000,
        -0.0582275390625,
        0.0330810546875,
        -0.0189208984375,
    ),
    (
        -0.0189208984375,
        0.0330810546875,
        -0.0582275390625,
        0.1015625000000,
        -0.2003173828125,
        0.7797851562500,
        0.4650878906250,
        -0.1665039062500,
        0.0891113281250,
        -0.0517578125000,
        0.0292968750000,
        -0.0291748046875,
    ),
    (
        -0.0083007812500,
        0.0148925781250,
        -0.0266113281250,
        0.0476074218750,
        -0.1022949218750,
        0.9721679687500,
        0.1373291015625,
        -0.0594482421875,
        0.0332031250000,
        -0.0196533203125,
        0.0109863281250,
        0.0017089843750,
    ),
)

#: Input samples of history each call needs (taps per phase - 1).
HISTORY = 11
#: Group delay of the oversampled signal, in oversampled samples (5.875 input samples).
DELAY_OVERSAMPLED = 23.5


def init_state(batch_shape: tuple[int, ...], device: torch.device | str = "cpu") -> Tensor:
    """Zero state (silence before the stream): ``(*batch_shape, 11)`` float64 on ``device``."""
    import torch

    return torch.zeros((*batch_shape, HISTORY), dtype=torch.float64, device=device)


def _history(x: Tensor, state: Tensor | None) -> Tensor:
    import torch

    from fxcli.dsp.checks import check_signal

    check_signal(x)
    expected = (*x.shape[:-1], HISTORY)
    if state is None:
        return init_state(tuple(x.shape[:-1]), x.device)
    if tuple(state.shape) != expected:
        raise ValueError(
            f"state must have shape (*batch, 11) = {expected}, got {tuple(state.shape)}"
        )
    return state.detach().to(device=x.device, dtype=torch.float64)


def oversample4(x: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
    """4x oversample ``x`` with the BS.1770-4 Annex 2 interpolator.

    Args:
        x: Signal ``(*batch, n)``, float32 or float64, any device.
        state: The last 11 input samples before ``x`` (oldest first),
            ``(*batch, 11)`` float64, or ``None`` for silence. Never modified.

    Returns:
        ``(y, new_state)``: ``y`` is ``(*batch, 4 n)`` float64 on ``x``'s device,
        ``y[..., 4 i + p]`` = phase ``p`` at input index ``i``; it lags the input
        by 23.5 oversampled samples (5.875 input samples, see the module
        docstring). ``new_state`` is ``(*batch, 11)`` float64 (exact copies of
        the last 11 samples of ``concat(state, x)``).
    """
    import torch

    hist = _history(x, state)
    n = x.shape[-1]
    if x.device.type == "cpu" and n > 0:
        x_np = x.detach().numpy()
        x2, h2 = _rows_of(x_np, hist.numpy())
        out = np.empty((x2.shape[0], 4 * n), dtype=np.float64)
        core.truepeak_oversample(x2, h2, out, _PHASES_NP, threads())
        y_cpu = torch.from_numpy(out).reshape(*x.shape[:-1], 4 * n)
        return y_cpu, torch.from_numpy(_new_state(x_np, hist.numpy()))
    xs = torch.cat([hist, x.detach().to(torch.float64)], dim=-1)
    new_state = xs[..., n:].clone()
    phases = []
    for taps in PHASES:
        # tap k multiplies x[i - k], i.e. xs[HISTORY + i - k]; summed in tap order
        acc = xs[..., HISTORY : HISTORY + n] * taps[0]
        for k in range(1, len(taps)):
            acc = acc + xs[..., HISTORY - k : HISTORY - k + n] * taps[k]
        phases.append(acc)
    y = torch.stack(phases, dim=-1).reshape(*x.shape[:-1], 4 * n)
    return y, new_state


def true_peak(x: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
    """True peak of ``x`` (linear, not dB): max of ``|oversample4(x)|`` and ``|x|``.

    Args:
        x: Signal ``(*batch, n)``, float32 or float64, any device.
        state: As for :func:`oversample4` (``None`` = silence before ``x``).

    Returns:
        ``(peak, new_state)``: ``peak`` is ``(*batch,)`` float64 on ``x``'s device
        (0 for ``n == 0``); the peak of the interpolated values produced during
        this call (which include the ringing of samples in ``state``). Chunked
        calls carrying the state give the same maximum as one call. Convert with
        ``20 * log10(peak)`` for dBTP.
    """
    import torch

    if x.device.type == "cpu" and x.shape[-1] > 0:
        hist = _history(x, state)
        peak_np, state_np = true_peak_array(x.detach().numpy(), hist.numpy())
        return torch.from_numpy(peak_np), torch.from_numpy(state_np)
    y, new_state = oversample4(x, state)
    if x.shape[-1] == 0:
        return torch.zeros(x.shape[:-1], dtype=torch.float64, device=x.device), new_state
    peak = torch.maximum(y.abs().amax(dim=-1), x.detach().to(torch.float64).abs().amax(dim=-1))
    return peak, new_state


def true_peak_array(x: np.ndarray, state: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`true_peak` on numpy arrays (no torch): ``x`` ``(*batch, n)`` float32 or
    float64, ``state`` ``(*batch, 11)`` float64 or ``None``; returns ``(peak (*batch,),
    new_state)`` float64, bit-identical to :func:`true_peak` on a CPU tensor."""
    if x.ndim < 1:
        raise ValueError("x must have at least one dimension (the last one is time)")
    batch, n = x.shape[:-1], x.shape[-1]
    hist = np.zeros((*batch, HISTORY)) if state is None else np.asarray(state, np.float64)
    if hist.shape != (*batch, HISTORY):
        raise ValueError(
            f"state must have shape (*batch, 11) = {(*batch, HISTORY)}, got {hist.shape}"
        )
    new_state = _new_state(x, hist)
    if n == 0:
        return np.zeros(batch), new_state
    x2, h2 = _rows_of(x, hist)
    peaks = np.empty(x2.shape[0], dtype=np.float64)
    core.true_peak(x2, h2, peaks, _PHASES_NP, threads())
    return peaks.reshape(batch), new_state


#: :data:`PHASES` as the (4, 12) float64 array the compiled core takes
_PHASES_NP = np.array(PHASES, dtype=np.float64)


def _rows_of(x: np.ndarray, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` as C-contiguous (rows, n) float32/float64 and ``hist`` as (rows, 11)
    float64, the layouts the compiled core takes."""
    x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
    if x2.dtype not in (np.float32, np.float64):
        x2 = x2.astype(np.float64)
    h2 = np.ascontiguousarray(hist.reshape(-1, HISTORY), dtype=np.float64)
    return x2, h2


def _new_state(x: np.ndarray, hist: np.ndarray) -> np.ndarray:
    """The last 11 samples of ``concat(hist, x)`` (float64, C-contiguous)."""
    n = x.shape[-1]
    if n >= HISTORY:
        return x[..., n - HISTORY :].astype(np.float64, order="C")  # a copy, never a view
    return np.concatenate([hist[..., n:], x.astype(np.float64)], axis=-1)
