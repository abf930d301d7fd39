"""Streaming sample-rate conversion of torch tensors, two backends.

``"torch"`` (any device; the GPU path)
    A band-limited polyphase windowed-sinc (Kaiser) resampler for rational
    ratios ``up / down`` (rates reduced by their gcd, e.g. 44100 -> 48000 is
    160 / 147). Output frame ``k`` sits at input time ``t_k = k * down / up``
    (input frames) and is ``sum_i x[i] h(t_k - i)`` with the zero-phase kernel
    ``h(tau) = 2 fc sinc(2 fc tau) kaiser(tau / half)``, ``|tau| <= half``, where
    ``fc`` is the middle of the transition band ``[passband, 1] * min(fs_in,
    fs_out) / 2`` and the Kaiser window and ``half`` come from Kaiser's formulas
    for the stopband attenuation. There is no delay to compensate (frame 0 of the
    output is input time 0, as with soxr); the input before the stream and after
    its end counts as zeros. Outputs are produced one period (``up`` output frames,
    ``down`` input frames) at a time as one matmul of the unfolded input frames
    with the ``(F, up)`` polyphase matrix, all in float64 (the bank is designed
    in float64). The state is the exact input history, so chunked calls agree
    with one call to float64 rounding (matmul blocking may differ with the chunk
    size).

``"soxr"`` (CPU)
    :class:`soxr.ResampleStream` (libsoxr). Its chunked output equals one call of
    ``soxr.resample`` on the whole signal bit for bit (measured for float32 and
    float64, chunks of 7, 4097 and more than the signal). A libsoxr stream cannot
    be copied, so this state is *consumed* by each call: see :class:`SoxrState`.

Both produce ``int(n / (fs_in / fs_out) + 0.5)`` frames (float64 arithmetic) for a
whole signal of ``n`` frames: the length ``soxr.resample`` returns (python-soxr's
formula; checked against it for n < 400 and exact halves on 9 rate pairs), i.e.
``n * fs_out / fs_in`` rounded to nearest; at exact halves the float64 rounding of
the ratio decides (4000 frames 96 kHz -> 44.1 kHz give 1837, 160 give 74). Frames
still held when the stream ends come out of the ``*_flush`` functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "QUALITIES",
    "PolyphaseBank",
    "design_polyphase",
    "out_length",
    "poly_state",
    "poly_resample",
    "poly_flush",
    "SoxrState",
    "soxr_state",
    "soxr_resample",
    "soxr_flush",
]

#: Quality name -> (soxr recipe, torch passband end as a fraction of min(fs)/2,
#: torch stopband attenuation in dB). The torch designs approximate soxr's
#: (soxr 'HQ' is 20-bit, 'VHQ' 28-bit, passband to ~0.91 of the lower Nyquist);
#: only 'high' is measured against soxr in the tests.
QUALITIES: dict[str, tuple[str, float, float]] = {
    "quick": ("QQ", 0.80, 60.0),
    "low": ("LQ", 0.80, 96.0),
    "medium": ("MQ", 0.88, 100.0),
    "high": ("HQ", 0.913, 125.0),
    "very_high": ("VHQ", 0.913, 170.0),
}

_MAX_BANK = 1 << 24  # elements of the (F, up) polyphase matrix


def _ratio(fs_in: float, fs_out: float) -> tuple[int, int]:
    if fs_in != int(fs_in) or fs_out != int(fs_out) or fs_in <= 0 or fs_out <= 0:
        raise ValueError(
            f"the torch resampler needs positive integer rates in Hz, got {fs_in} -> {fs_out}"
        )
    r = Fraction(int(fs_out), int(fs_in))
    return r.numerator, r.denominator


@dataclass(frozen=True)
class PolyphaseBank:
    """A designed polyphase resampler.

    ``bank``: ``(F, up)`` float64 (CPU numpy); column ``l`` holds the taps of output
    phase ``l`` over the ``F`` input frames ``c * down - half_taps + f`` of period ``c``.
    """

    up: int
    down: int
    half_taps: int  # W: input frames each side of an output instant
    bank: np.ndarray
    passband: float
    atten_db: float

    @property
    def frame(self) -> int:
        return int(self.bank.shape[0])


def design_polyphase(
    fs_in: float, fs_out: float, passband: float = 0.913, atten_db: float = 125.0
) -> PolyphaseBank:
    """Kaiser windowed-sinc polyphase bank for integer rates ``fs_in -> fs_out`` (Hz).

    ``passband``: passband end as a fraction of ``min(fs_in, fs_out) / 2`` (the
    stopband starts at that Nyquist); ``atten_db``: stopband attenuation. float64.
    """
    if not (0.0 < passband < 1.0):
        raise ValueError(f"passband must be in (0, 1), got {passband}")
    up, down = _ratio(fs_in, fs_out)
    scale = min(1.0, up / down)  # lower Nyquist in units of the input Nyquist
    fc = 0.5 * scale * (1.0 + passband) / 2.0  # cutoff, cycles per input frame
    delta = 0.5 * scale * (1.0 - passband)  # transition width, cycles per input frame
    a = float(atten_db)
    if a > 50:
        beta = 0.1102 * (a - 8.7)
    elif a > 21:
        beta = 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    else:
        beta = 0.0
    span = (a - 7.95) / (2.285 * 2 * math.pi * delta) + 1.0  # taps, in input frames
    half = span / 2.0
    w = max(int(math.ceil(half)), -(-down // up))  # >= ceil(down/up): flush bound
    q = (np.arange(up, dtype=np.int64) * down) // up
    frac = ((np.arange(up, dtype=np.int64) * down) % up) / up
    f_len = int(q[-1]) + 2 * w + 1
    if f_len * up > _MAX_BANK:
        raise ValueError(
            f"the torch resampler's polyphase bank for {fs_in:g} -> {fs_out:g} Hz "
            f"({up}/{down}) would have {f_len * up} taps; use the soxr backend"
        )
    f = np.arange(f_len, dtype=np.float64)[:, None]
    tau = (q + frac)[None, :].astype(np.float64) + w - f  # (F, up), input frames
    u = tau / half
    inside = np.abs(u) <= 1.0
    win = np.where(inside, np.i0(beta * np.sqrt(np.clip(1.0 - u * u, 0.0, None))), 0.0)
    bank = 2.0 * fc * np.sinc(2.0 * fc * tau) * win / np.i0(beta)
    return PolyphaseBank(up, down, w, np.ascontiguousarray(bank), passband, a)


def out_length(n: int, fs_in: float, fs_out: float) -> int:
    """Frames out for ``n`` frames in: ``int(n / (fs_in / fs_out) + 0.5)``, as python-soxr."""
    return int(n / (fs_in / fs_out) + 0.5)


def poly_state(
    batch_shape: tuple[int, ...], bank: PolyphaseBank, device: torch.device | str
) -> dict[str, Any]:
    """Zero state: ``buf`` ``(*batch, W)`` float64 zeros (the input before the stream),
    ``n_in``/``n_out`` frames consumed/produced so far, ``dtype`` of the input."""
    import torch

    buf = torch.zeros((*batch_shape, bank.half_taps), dtype=torch.float64, device=device)
    return {"buf": buf, "n_in": 0, "n_out": 0, "dtype": None}


def _periods(buf: torch.Tensor, bank: PolyphaseBank, count: int) -> torch.Tensor:
    """Outputs of ``count`` periods from ``buf`` (starting at a period's first frame)."""
    import torch

    batch = tuple(buf.shape[:-1])
    if count <= 0:
        return buf.new_zeros((*batch, 0))
    h = torch.from_numpy(bank.bank).to(buf.device)
    frames = buf[..., : (count - 1) * bank.down + bank.frame].unfold(-1, bank.frame, bank.down)
    y = torch.matmul(frames, h)  # (*batch, count, up)
    return y.reshape(*batch, count * bank.up)


def poly_resample(
    x: torch.Tensor, bank: PolyphaseBank, state: dict[str, Any]
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Resample one chunk ``x`` ``(*batch, n)`` (float32/float64, any device).

    Returns ``(y, new_state)``: ``y`` ``(*batch, m)`` in ``x``'s dtype/device, whole
    periods of ``up`` frames only (the rest is held back); ``state`` is not modified.
    """
    import torch

    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    with torch.no_grad():
        buf = torch.cat((state["buf"].to(x.device), x.detach().to(torch.float64)), dim=-1)
        length = buf.shape[-1]
        count = (length - bank.frame) // bank.down + 1 if length >= bank.frame else 0
        y = _periods(buf, bank, count)
        new = {
            "buf": buf[..., count * bank.down :].clone(),
            "n_in": state["n_in"] + x.shape[-1],
            "n_out": state["n_out"] + count * bank.up,
            "dtype": x.dtype,
        }
        return y.to(x.dtype), new


def poly_flush(bank: PolyphaseBank, state: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    """End of stream: the remaining ``out_length(n_in) - n_out`` frames
    (input after the end counts as zeros), in the dtype of the last input."""
    import torch

    with torch.no_grad():
        buf = state["buf"]
        total = out_length(state["n_in"], bank.down, bank.up)
        need = total - state["n_out"]
        dtype = state["dtype"] or torch.float64
        if need <= 0:
            return buf.new_zeros((*buf.shape[:-1], 0)).to(dtype), state
        count = -(-need // bank.up)
        length = (count - 1) * bank.down + bank.frame
        pad = buf.new_zeros((*buf.shape[:-1], max(0, length - buf.shape[-1])))
        y = _periods(torch.cat((buf, pad), dim=-1), bank, count)[..., :need]
        new = dict(state, buf=buf[..., :0].clone(), n_out=total)
        return y.to(dtype), new


# ---------------------------------------------------------------------------
# soxr backend
# ---------------------------------------------------------------------------


@dataclass
class _SoxrHandle:
    stream: Any = None
    calls: int = 0  # how many calls advanced the stream


@dataclass(frozen=True)
class SoxrState:
    """State of the soxr backend: a libsoxr stream (which cannot be copied) and the
    call count this state stands for.

    Each :func:`soxr_resample` call advances the shared stream, so the state it was
    given is *consumed*: calling again with it raises :class:`RuntimeError` (it is
    detected, never silently wrong). The engine only retries a chunk after a CUDA
    out-of-memory error, and this backend only runs on CPU tensors or numpy arrays.
    ``dtype`` is the stream's numpy dtype name once started; ``tensors`` whether it
    was fed torch tensors (its flush then returns one).
    """

    fs_in: float
    fs_out: float
    recipe: str
    batch_shape: tuple[int, ...]
    handle: _SoxrHandle = field(default_factory=_SoxrHandle)
    calls: int = 0
    dtype: str | None = None
    tensors: bool = False


def soxr_state(
    batch_shape: tuple[int, ...],
    fs_in: float,
    fs_out: float,
    recipe: str = "HQ",
    *,
    tensors: bool = True,
) -> SoxrState:
    """A fresh soxr state (the stream is created at the first call, for its dtype);
    ``tensors``: what a flush of a stream that never got a chunk returns (a tensor or
    a numpy array; once fed, the kind of the chunks decides)."""
    return SoxrState(float(fs_in), float(fs_out), recipe, tuple(batch_shape), tensors=tensors)


def _advance(state: SoxrState, x_np: np.ndarray | None, last: bool, dtype: str) -> np.ndarray:
    import soxr

    h = state.handle
    if h.calls != state.calls:
        raise RuntimeError(
            "this soxr resampler state was already consumed by an earlier call "
            "(a libsoxr stream cannot be copied, so a chunk cannot be retried from it)"
        )
    rows = math.prod(state.batch_shape)
    np_dtype = np.dtype(dtype)
    if h.stream is None:
        h.stream = soxr.ResampleStream(
            state.fs_in, state.fs_out, rows, dtype=np_dtype, quality=state.recipe
        )
    if x_np is None:
        x_np = np.zeros((0, rows), dtype=np_dtype)
    y = h.stream.resample_chunk(x_np, last=last)
    h.calls += 1
    return y


def _rows_out(y: np.ndarray, state: SoxrState, tensors: bool) -> Any:
    """soxr's (frames, rows) output as ``(*batch, frames)``, a tensor or an array."""
    out = np.ascontiguousarray(y.T).reshape(*state.batch_shape, y.shape[0])
    if not tensors:
        return out
    import torch

    return torch.from_numpy(out)


def _next(state: SoxrState, dtype: str | None, tensors: bool) -> SoxrState:
    return SoxrState(
        state.fs_in,
        state.fs_out,
        state.recipe,
        state.batch_shape,
        state.handle,
        state.calls + 1,
        dtype,
        tensors,
    )


def soxr_resample(x: Any, state: SoxrState) -> tuple[Any, SoxrState]:
    """Resample one chunk ``x`` ``(*batch, n)`` float32/float64 on the CPU with libsoxr:
    a CPU tensor, or a numpy array (no torch involved).

    Returns ``(y, new_state)``, ``y`` ``(*batch, m)`` of ``x``'s kind and dtype;
    ``state`` is consumed (see :class:`SoxrState`).
    """
    tensors = not isinstance(x, np.ndarray)
    if tensors and x.device.type != "cpu":
        raise ValueError(f"the soxr backend needs CPU tensors, got {x.device}")
    name = str(x.dtype).replace("torch.", "")
    if name not in ("float32", "float64"):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if tuple(x.shape[:-1]) != state.batch_shape:
        raise ValueError(f"x has batch shape {tuple(x.shape[:-1])}, the state {state.batch_shape}")
    if state.dtype is not None and name != state.dtype:
        raise TypeError(f"x is {x.dtype} but this stream was started with {state.dtype}")
    rows = math.prod(state.batch_shape)
    n = x.shape[-1]
    if rows == 0:
        empty = np.zeros((*state.batch_shape, 0), dtype=name)
        return (x.new_zeros((*state.batch_shape, 0)) if tensors else empty), state
    x2 = x.detach().reshape(rows, n).numpy() if tensors else x.reshape(rows, n)
    y = _advance(state, np.ascontiguousarray(x2.T), False, name)
    return _rows_out(y, state, tensors), _next(state, name, tensors)


def soxr_flush(state: SoxrState) -> tuple[Any, SoxrState]:
    """End of stream: the frames libsoxr still holds (``(*batch, k)``), a tensor if the
    stream was fed tensors, else a numpy array."""
    rows = math.prod(state.batch_shape)
    dtype = state.dtype or "float64"
    if rows == 0 or state.handle.stream is None:
        return _rows_out(np.zeros((0, max(rows, 0)), dtype=dtype), state, state.tensors), state
    y = _advance(state, None, True, dtype)
    return _rows_out(y, state, state.tensors), _next(state, dtype, state.tensors)
