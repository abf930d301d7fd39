"""Reverberation on torch tensors with explicit streaming state.

Two ideas, both "reverb":

:func:`fft_convolve` (any device; numpy arrays too)
    Long-kernel linear convolution ``wet[t] = sum_k ir[c, k] x[c, t - k]`` with one
    impulse response per channel (or one shared by all) by overlap-save FFT
    convolution with the exact input history as state (the last ``K - 1`` input
    frames, float64), so chunks of any size give the whole-signal result to float64
    rounding. Each call is cut into blocks of ``S`` frames with an FFT of
    ``N = next_pow2(K - 1 + min(n, max(K, 4096)))`` points, so long chunks cost about
    two FFTs of ``2 K`` points per ``K`` frames; short chunks are correct but pay an
    FFT of at least ``K`` points each. IR spectra are kept per FFT size in a
    caller-owned dict (a memo, not state).

:func:`freeverb` (CPU recurrence, or Triton on CUDA; any device)
    The Freeverb topology as in JUCE's ``juce::Reverb`` (which pedalboard's
    ``Reverb`` wraps): per channel 8 parallel lowpass-feedback comb filters
    (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617 frames at 44.1 kHz) into 4
    series allpasses (556, 441, 341, 225), lengths ``int(fs) * n // 44100``; the
    right channel of a stereo pair uses lengths ``+ 23`` (stereo spread). The
    recurrence is the compiled core's ``freeverb_rows`` (``csrc/reverb.cpp``) over
    float64 buffers, rows (channels) spread over :func:`fxcli.dsp.native.threads`
    threads; CUDA inputs run :mod:`fxcli.dsp.reverb_triton` on the device (one
    Triton program per row, the same operations; the state moves to the device)
    when Triton is importable, and other devices' inputs are copied to the CPU for
    it and the result copied back.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

from fxcli.dsp.native import core, threads

__all__ = [
    "fft_convolve",
    "COMB_TUNINGS",
    "ALLPASS_TUNINGS",
    "STEREO_SPREAD",
    "freeverb_lengths",
    "freeverb_state",
    "freeverb",
]


# ---------------------------------------------------------------------------
# convolution with long impulse responses
# ---------------------------------------------------------------------------


def _next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def fft_convolve(
    x: torch.Tensor | np.ndarray,
    ir: torch.Tensor | np.ndarray,
    hist: torch.Tensor | np.ndarray,
    spectra: dict[Any, Any] | None = None,
) -> tuple[Any, Any]:
    """Causal convolution of ``x`` with ``ir`` continuing from ``hist``.

    Args:
        x: ``(*batch, n)`` float32/float64: a torch tensor on any device, or a numpy
            array (the torch-free CPU path: numpy's FFT, torch is not imported).
        ir: ``(C, K)`` float64 of ``x``'s kind (on ``x``'s device); ``C == 1``
            (applied to every row) or ``C == x.shape[-2]`` (row ``c`` of the channel
            axis uses ``ir[c]``).
        hist: ``(*batch, K - 1)`` float64: the last ``K - 1`` input frames before
            ``x``, oldest first (zeros at the start of a stream). Never modified.
        spectra: optional memo ``{(N, device): rfft(ir, N)}``, filled as needed.

    Returns:
        ``(wet, new_hist)``: ``wet`` ``(*batch, n)`` float64 of ``x``'s kind (and
        device); ``new_hist`` the last ``K - 1`` frames of ``cat(hist, x)``
        (float64). The numpy and torch results agree to float64 rounding (two FFT
        libraries); each is chunk-invariant to float64 rounding.

    Autograd: none (computed under ``torch.no_grad()``).
    """
    c_ir, k = ir.shape
    batch = tuple(x.shape[:-1])
    n = x.shape[-1]
    if tuple(hist.shape) != (*batch, k - 1):
        raise ValueError(f"hist must have shape {(*batch, k - 1)}, got {tuple(hist.shape)}")
    if c_ir != 1 and (x.ndim < 2 or x.shape[-2] != c_ir):
        raise ValueError(f"ir has {c_ir} channels, x has shape {tuple(x.shape)}")
    if spectra is None:
        spectra = {}
    fft_n = _next_pow2(k - 1 + min(n, max(k, 4096)))
    if isinstance(x, np.ndarray):
        return _fft_convolve_np(x, np.asarray(ir), np.asarray(hist), spectra, fft_n)
    return _fft_convolve_torch(x, ir, hist, spectra, fft_n)  # type: ignore[arg-type]


def _segments(n: int, k: int, fft_n: int) -> list[tuple[int, int]]:
    """Overlap-save blocks ``(start, frames)`` of an ``n``-frame call: each block's
    FFT covers ``K - 1`` frames of history and at most ``fft_n - (K - 1)`` new ones."""
    s = fft_n - (k - 1)
    return [(lo, min(s, n - lo)) for lo in range(0, n, s)]


def _fft_convolve_np(
    x: np.ndarray, ir: np.ndarray, hist: np.ndarray, spectra: dict[Any, Any], fft_n: int
) -> tuple[np.ndarray, np.ndarray]:
    c_ir, k = ir.shape
    n = x.shape[-1]
    full = np.concatenate((hist.astype(np.float64, copy=False), x.astype(np.float64)), -1)
    new_hist = full[..., n:].copy()
    wet = np.empty((*x.shape[:-1], n), dtype=np.float64)
    if n == 0:
        return wet, new_hist
    key = (fft_n, "numpy")
    h = spectra.get(key)
    if h is None:
        h = np.fft.rfft(ir.astype(np.float64, copy=False), fft_n, axis=-1)
        spectra[key] = h
    if c_ir == 1:
        h = h[0]
    for lo, m in _segments(n, k, fft_n):
        seg = full[..., lo : lo + k - 1 + m]
        y = np.fft.irfft(np.fft.rfft(seg, fft_n, axis=-1) * h, fft_n, axis=-1)
        wet[..., lo : lo + m] = y[..., k - 1 : k - 1 + m]
    return wet, new_hist


def _fft_convolve_torch(
    x: torch.Tensor, ir: torch.Tensor, hist: torch.Tensor, spectra: dict[Any, Any], fft_n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    c_ir, k = ir.shape
    n = x.shape[-1]
    with torch.no_grad():
        full = torch.cat((hist.to(x.device, torch.float64), x.detach().to(torch.float64)), -1)
        new_hist = full[..., n:].clone()
        wet = torch.empty((*x.shape[:-1], n), dtype=torch.float64, device=x.device)
        if n == 0:
            return wet, new_hist
        key = (fft_n, str(x.device))
        h = spectra.get(key)
        if h is None:
            h = torch.fft.rfft(ir.to(x.device, torch.float64), fft_n, dim=-1)
            spectra[key] = h
        if c_ir == 1:
            h = h[0]
        for lo, m in _segments(n, k, fft_n):
            seg = full[..., lo : lo + k - 1 + m]
            y = torch.fft.irfft(torch.fft.rfft(seg, fft_n, dim=-1) * h, fft_n, dim=-1)
            wet[..., lo : lo + m] = y[..., k - 1 : k - 1 + m]
        return wet, new_hist


# ---------------------------------------------------------------------------
# Freeverb
# ---------------------------------------------------------------------------

COMB_TUNINGS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
ALLPASS_TUNINGS = (556, 441, 341, 225)
STEREO_SPREAD = 23


def _freeverb_rows(
    inp: np.ndarray,
    wet: np.ndarray,
    comb_buf: np.ndarray,
    comb_len: np.ndarray,
    comb_pos: np.ndarray,
    comb_last: np.ndarray,
    ap_buf: np.ndarray,
    ap_len: np.ndarray,
    ap_pos: np.ndarray,
    feedback: float,
    damp: float,
) -> None:
    """Rows (channels) independently; buffers, positions and lowpass states in place.

    Per sample ``x`` of a row (``damp1 = 1 - damp``; the core's order, bit for bit):
    each comb ``j`` in turn reads ``o = buf[p]``, updates ``last = o * damp1 +
    last * damp``, stores ``x + last * feedback`` and adds ``o`` to ``out`` (from
    0.0); each allpass reads ``b = buf[p]``, stores ``out + b * 0.5`` and sets
    ``out = b - out``; positions wrap at the line lengths. float64 buffers and
    states, int64 lengths and positions, all C-contiguous."""
    core.freeverb_rows(
        inp,
        wet,
        comb_buf,
        comb_len,
        comb_pos,
        comb_last,
        ap_buf,
        ap_len,
        ap_pos,
        float(feedback),
        float(damp),
        threads(),
    )


def freeverb_lengths(fs: float, right: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Comb (8,) and allpass (4,) delay lengths in frames at ``fs`` Hz (JUCE's formula)."""
    fs_i = int(fs)
    spread = STEREO_SPREAD if right else 0
    comb = np.array([fs_i * (t + spread) // 44100 for t in COMB_TUNINGS], dtype=np.int64)
    ap = np.array([fs_i * (t + spread) // 44100 for t in ALLPASS_TUNINGS], dtype=np.int64)
    if comb.min() < 1 or ap.min() < 1:
        raise ValueError(f"sample rate {fs} Hz is too low for the reverb's delay lines")
    return comb, ap


def freeverb_state(
    fs: float, batch_shape: tuple[int, ...], stereo: bool, *, tensors: bool = True
) -> dict[str, Any]:
    """Zero state for rows ``(*batch_shape)``: CPU tensors, or numpy arrays with
    ``tensors=False`` (the torch-free path). With ``stereo`` the last batch axis has 2
    channels and channel 1 uses the spread (right) lengths."""
    rows = math.prod(batch_shape)
    cl, al = freeverb_lengths(fs)
    comb_len = np.tile(cl, (rows, 1))
    ap_len = np.tile(al, (rows, 1))
    if stereo:
        cr, ar = freeverb_lengths(fs, right=True)
        comb_len[1::2] = cr
        ap_len[1::2] = ar
    c_max, a_max = int(comb_len.max()), int(ap_len.max())
    nc, na = len(COMB_TUNINGS), len(ALLPASS_TUNINGS)
    state = {
        "comb_buf": np.zeros((rows, nc, c_max)),
        "comb_len": comb_len,
        "comb_pos": np.zeros((rows, nc), dtype=np.int64),
        "comb_last": np.zeros((rows, nc)),
        "ap_buf": np.zeros((rows, na, a_max)),
        "ap_len": ap_len,
        "ap_pos": np.zeros((rows, na), dtype=np.int64),
    }
    if not tensors:
        return state
    import torch

    return {key: torch.from_numpy(v) for key, v in state.items()}


def freeverb(
    inp: Any, state: dict[str, Any], feedback: float, damp: float
) -> tuple[Any, dict[str, Any]]:
    """Run the comb/allpass network on ``inp`` ``(*batch, n)`` (the already scaled comb
    input, one row per delay-line set, rows as in :func:`freeverb_state`).

    Returns ``(wet, new_state)``: ``wet`` ``(*batch, n)`` float64 on ``inp``'s device
    (computed on the CPU; on CUDA by :mod:`fxcli.dsp.reverb_triton` when Triton is
    importable, the state then moving to the device), a numpy array for numpy input
    (with a numpy state); ``state`` is not modified (its buffers are copied).
    """
    batch = tuple(inp.shape[:-1])
    rows = math.prod(batch)
    n = inp.shape[-1]
    arrays = isinstance(inp, np.ndarray)
    if not arrays and inp.device.type == "cuda":
        from fxcli.dsp import reverb_triton

        if reverb_triton.usable(inp):  # on the device: no copy to the CPU and back
            if state["comb_buf"].shape[0] != rows:
                raise ValueError(f"state holds {state['comb_buf'].shape[0]} rows, input has {rows}")
            flat = inp.reshape(rows, n)
            wet_d, new_d = reverb_triton.freeverb_device(flat, state, feedback, damp)
            return wet_d.reshape(*batch, n), new_d
    if arrays:
        x = np.ascontiguousarray(inp.reshape(rows, n), dtype=np.float64)
    else:
        import torch

        x = np.ascontiguousarray(inp.detach().to("cpu", torch.float64).reshape(rows, n).numpy())
    if state["comb_buf"].shape[0] != rows:
        raise ValueError(f"state holds {state['comb_buf'].shape[0]} rows, input has {rows}")
    new = {
        key: np.array(v, order="C") if isinstance(v, np.ndarray)
        else v.clone(memory_format=torch.contiguous_format)
        for key, v in state.items()
    }  # fmt: skip
    wet = np.empty_like(x)

    def host(key: str) -> np.ndarray:
        v = new[key]
        return v if isinstance(v, np.ndarray) else v.numpy()

    _freeverb_rows(
        x,
        wet,
        host("comb_buf"),
        host("comb_len"),
        host("comb_pos"),
        host("comb_last"),
        host("ap_buf"),
        host("ap_len"),
        host("ap_pos"),
        float(feedback),
        float(damp),
    )
    if arrays:
        return wet.reshape(*batch, n), new
    return torch.from_numpy(wet).reshape(*batch, n).to(inp.device), new
