"""Time-frequency features as ``torch.nn.Module``s: spectrogram, mel, log-mel, MFCC.

The steps are those of the usual GPU log-mel recipe: STFT (``torch.stft``), magnitude
or power, a mel filterbank, one matmul, and a numerically safe conversion to dB with
``top_db`` clipping; MFCC adds a DCT-II (orthonormal). Everything is pure torch, so
the modules run on any device, in float32 or float64, and are differentiable (usable
as the first layer of a network).

Parameters and defaults follow librosa (``librosa.stft``, ``feature.melspectrogram``,
``filters.mel``, ``power_to_db``, ``feature.mfcc``), so moving from librosa gives the
same numbers without changing anything:

- ``n_fft`` 2048, ``hop_length`` ``win_length // 4``, ``win_length`` ``n_fft``,
  ``window`` ``"hann"`` (periodic, SciPy's ``get_window(window, win_length,
  fftbins=True)``, zero-padded to ``n_fft`` in the centre), ``center`` True with
  ``pad_mode`` ``"constant"`` (``n_fft // 2`` zeros each side), ``power`` 2;
- ``n_mels`` 128, ``f_min`` 0, ``f_max`` ``fs / 2``, ``mel_scale`` ``"slaney"``
  (``"htk"``: ``2595 log10(1 + f / 700)``), ``norm`` ``"slaney"`` (area
  normalization) or ``None``;
- dB: ``ref`` ``"max"`` (log-mel) or a value (MFCC: 1.0, as librosa's ``mfcc``),
  ``amin`` 1e-10, ``top_db`` 80.

Shapes: input ``(..., time)`` (the engine's ``(channels, time)``; any leading batch
axes); outputs ``(..., n_freq, frames)`` with ``n_freq`` ``n_fft // 2 + 1`` (spectrogram),
``n_mels`` (mel, log-mel) or ``n_mfcc`` (MFCC). ``frames`` is ``1 + n // hop_length``
with ``center`` (``1 + (n - n_fft) // hop_length`` without). The window, filterbank and
DCT are built and stored in float64 (buffers: ``.to(device)`` moves them) and cast to
the input's dtype per call (float32 audio gives float32 features, complex64 STFT).

Streaming: :meth:`Spectrogram.process` / :meth:`Spectrogram.flush` (also on
:class:`MelSpectrogram`) take the signal chunk by chunk with explicit state and return
the frames that are complete; the concatenation equals :meth:`forward` on the whole
signal, frame for frame (same frame grid, anchored at the signal start; chunks overlap
by the window through the state). The dB conversion needs the whole result (``ref``
``"max"`` and ``top_db`` are relative to the maximum), so :class:`LogMelSpectrogram` and
:class:`MFCC` stream through their ``.mel`` module and finish with :meth:`from_power`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fxcli.dsp import design_np

__all__ = [
    "MFCC",
    "LogMelSpectrogram",
    "MelSpectrogram",
    "Spectrogram",
    "StreamState",
    "dct_matrix",
    "hz_to_mel",
    "mel_filterbank",
    "mel_frequencies",
    "mel_to_hz",
    "power_to_db",
    "window_tensor",
]

MEL_SCALES = ("slaney", "htk")
MEL_NORMS = ("slaney", None)
PAD_MODES = ("constant", "reflect")
#: The mel matmul runs on blocks of this many frames, aligned to the signal's first frame,
#: so each frame goes through a matmul of the same shape at the same block position
#: whether the signal comes whole, in chunks, or padded in a batch: the results are
#: bit-identical on CPU (a BLAS kernel's choice, and so its rounding, depends on the
#: matrix sizes).
MEL_BLOCK = 64

# Slaney's Auditory Toolbox mel scale (librosa's default): linear below 1 kHz, log above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


# ---------------------------------------------------------------------------- mel scale
def hz_to_mel(freqs: Any, mel_scale: str = "slaney") -> np.ndarray:
    """Hz to mel (float64 numpy), as ``librosa.hz_to_mel(freqs, htk=mel_scale == "htk")``."""
    f = np.asarray(freqs, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    mels = f / _F_SP
    with np.errstate(divide="ignore", invalid="ignore"):
        log_part = _MIN_LOG_MEL + np.log(np.maximum(f, 1e-300) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log_part, mels)


def mel_to_hz(mels: Any, mel_scale: str = "slaney") -> np.ndarray:
    """Mel to Hz (float64 numpy), the inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    freqs = _F_SP * m
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log_part, freqs)


def mel_frequencies(
    n_mels: int, f_min: float, f_max: float, mel_scale: str = "slaney"
) -> np.ndarray:
    """``n_mels`` frequencies (Hz, float64) evenly spaced on the mel scale from f_min to f_max."""
    lo, hi = hz_to_mel(f_min, mel_scale), hz_to_mel(f_max, mel_scale)
    return mel_to_hz(np.linspace(lo, hi, n_mels), mel_scale)


def _check_mel(
    fs: float, n_fft: int, n_mels: int, f_min: float, f_max: float | None, mel_scale: str, norm: Any
) -> float:
    if not fs > 0:
        raise ValueError(f"fs: must be a positive sample rate in Hz, got {fs}")
    if n_mels < 1:
        raise ValueError(f"n_mels: must be >= 1, got {n_mels}")
    if mel_scale not in MEL_SCALES:
        raise ValueError(f"mel_scale: got {mel_scale!r}; allowed: htk, slaney")
    if norm not in MEL_NORMS:
        raise ValueError(f"norm: got {norm!r}; allowed: slaney, none")
    top = fs / 2.0 if f_max is None else float(f_max)
    if not 0.0 <= f_min < top:
        raise ValueError(f"f_min: must be >= 0 and below f_max ({top:g} Hz), got {f_min}")
    if top > fs / 2.0 + 1e-9 * fs:
        raise ValueError(f"f_max: must be <= fs / 2 ({fs / 2:g} Hz), got {f_max}")
    return top


def mel_filterbank(
    fs: float,
    n_fft: int,
    n_mels: int = 128,
    f_min: float = 0.0,
    f_max: float | None = None,
    mel_scale: str = "slaney",
    norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular mel filterbank ``(n_mels, n_fft // 2 + 1)``, float64 numpy.

    Same construction as ``librosa.filters.mel(sr=fs, n_fft=n_fft, n_mels=n_mels,
    fmin=f_min, fmax=f_max, htk=mel_scale == "htk", norm=norm)``: ``n_mels + 2`` edges
    evenly spaced in mel, triangles in Hz between neighbouring edges, and with ``norm``
    ``"slaney"`` each filter scaled by ``2 / (upper edge - lower edge)`` (constant
    energy per band). ``f_max`` None is ``fs / 2``.
    """
    top = _check_mel(fs, n_fft, n_mels, f_min, f_max, mel_scale, norm)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / fs)
    mel_f = mel_frequencies(n_mels + 2, f_min, top, mel_scale)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """Orthonormal DCT-II ``(n_mfcc, n_mels)``, float64: ``y = D @ x`` equals
    ``scipy.fft.dct(x, type=2, norm="ortho", axis=0)[:n_mfcc]``."""
    if not 1 <= n_mfcc <= n_mels:
        raise ValueError(f"n_mfcc: must be between 1 and n_mels ({n_mels}), got {n_mfcc}")
    k = np.arange(n_mfcc)[:, None]
    n = np.arange(n_mels)[None, :]
    d = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * math.sqrt(2.0 / n_mels)
    d[0] *= 1.0 / math.sqrt(2.0)
    return d


def window_tensor(window: str | Tensor, win_length: int, n_fft: int) -> np.ndarray:
    """The analysis window zero-padded to ``n_fft`` in the centre, float64 numpy ``(n_fft,)``.

    ``window``: a name for ``scipy.signal.get_window`` (periodic: ``fftbins=True``),
    e.g. ``"hann"``, ``"hamming"``, ``"blackman"``, ``"boxcar"``; or ``win_length``
    samples (tensor or array).
    """
    if isinstance(window, str) and design_np.covers_window(window):
        w = design_np.get_window(window, win_length, fftbins=True)  # no scipy import
    elif isinstance(window, str):
        from scipy.signal import get_window

        try:
            w = np.asarray(get_window(window, win_length, fftbins=True), dtype=np.float64)
        except ValueError as exc:
            raise ValueError(
                f"window: {window!r} is not a window scipy.signal.get_window knows ({exc})"
            ) from None
    else:
        w = np.asarray(torch.as_tensor(window).detach().cpu(), dtype=np.float64)
        if w.shape != (win_length,):
            raise ValueError(f"window: expected {win_length} samples, got shape {w.shape}")
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left))


# ---------------------------------------------------------------------------- dB
def power_to_db(
    S: Tensor,
    ref: str | float = "max",
    amin: float = 1e-10,
    top_db: float | None = 80.0,
    dims: tuple[int, ...] | None = None,
) -> Tensor:
    """Power to dB: ``10 log10(max(S, amin)) - 10 log10(max(ref, amin))``, then values
    more than ``top_db`` below the maximum are raised to ``max - top_db``.

    As ``librosa.power_to_db(S, ref=np.max if ref == "max" else ref, amin, top_db)``.
    ``dims``: the axes the maxima (``ref="max"`` and ``top_db``) are taken over; None
    (default) is the whole tensor, like librosa on one array. A network layer would
    pass ``(-2, -1)`` (per example and channel). Gradients flow through the maxima
    too (``ref="max"`` depends on ``S``: detaching it made the log-mel gradient ~20%
    off). Keeps ``S``'s dtype and device.
    """
    if not amin > 0:
        raise ValueError(f"amin: must be > 0, got {amin}")
    if top_db is not None and top_db < 0:
        raise ValueError(f"top_db: must be >= 0 or None, got {top_db}")

    def amax(t: Tensor) -> Tensor:
        return t.amax() if dims is None else t.amax(dim=dims, keepdim=True)

    log_spec = 10.0 * torch.log10(torch.clamp(S, min=amin))
    if isinstance(ref, str):
        if ref != "max":
            raise ValueError(f"ref: got {ref!r}; allowed: max or a positive number")
        if S.numel():
            log_spec = log_spec - 10.0 * torch.log10(torch.clamp(amax(S), min=amin))
    else:
        if not ref > 0:
            raise ValueError(f"ref: must be 'max' or a positive number, got {ref}")
        log_spec = log_spec - 10.0 * math.log10(max(float(ref), amin))
    if top_db is not None and log_spec.numel():
        log_spec = torch.maximum(log_spec, amax(log_spec) - top_db)
    return log_spec


# ---------------------------------------------------------------------------- modules
@dataclass(frozen=True)
class StreamState:
    """Streaming state of :meth:`Spectrogram.process` (never mutated).

    ``pending``: ``(*batch, m)`` samples of the padded signal from the next frame's
    start on; ``head``: raw samples held until the left reflection padding can be
    built (``None`` once it is); ``last``: the last ``n_fft // 2 + 1`` raw samples
    (reflect padding at the end); ``seen``: raw samples taken so far; ``held``:
    computed spectrogram frames ``(*batch, n_freq, h)`` not yet returned (the mel
    stage works in blocks of :data:`MEL_BLOCK` frames), or None.
    """

    pending: Tensor
    head: Tensor | None
    last: Tensor
    seen: int
    held: Tensor | None = None


class Spectrogram(nn.Module):
    """STFT power (``power=2``), magnitude (``power=1``) or complex STFT (``power=None``).

    ``forward(x)``: ``(..., time)`` -> ``(..., n_fft // 2 + 1, frames)``; float32/64 in,
    the same real dtype out (complex for ``power=None``), same device. Frame ``t``
    covers input samples ``[t * hop - n_fft // 2, t * hop + n_fft // 2)`` with
    ``center`` (padded by ``pad_mode``), ``[t * hop, t * hop + n_fft)`` without.
    Equals ``np.abs(librosa.stft(x, ...)) ** power``.
    """

    window: Tensor

    def __init__(
        self,
        n_fft: int = 2048,
        hop_length: int | None = None,
        win_length: int | None = None,
        window: str | Tensor = "hann",
        center: bool = True,
        pad_mode: str = "constant",
        power: float | None = 2.0,
    ) -> None:
        super().__init__()
        if n_fft < 1:
            raise ValueError(f"n_fft: must be >= 1, got {n_fft}")
        win_length = n_fft if win_length is None else int(win_length)
        if not 1 <= win_length <= n_fft:
            raise ValueError(f"win_length: must be between 1 and n_fft ({n_fft}), got {win_length}")
        hop_length = max(1, win_length // 4) if hop_length is None else int(hop_length)
        if hop_length < 1:
            raise ValueError(f"hop_length: must be >= 1, got {hop_length}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode: got {pad_mode!r}; allowed: constant, reflect")
        if power is not None and not power > 0:
            raise ValueError(f"power: must be > 0 (1 magnitude, 2 power) or None, got {power}")
        self.n_fft, self.hop_length, self.win_length = int(n_fft), hop_length, win_length
        self.center, self.pad_mode = bool(center), pad_mode
        self.power = None if power is None else float(power)
        self.window_name = window if isinstance(window, str) else "custom"
        w = window_tensor(window, win_length, n_fft)
        self.register_buffer("window", torch.from_numpy(w))  # float64; cast per call

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, n: int) -> int:
        """Frames for ``n`` input samples."""
        span = n + 2 * (self.n_fft // 2) if self.center else n
        return 0 if span < self.n_fft else 1 + (span - self.n_fft) // self.hop_length

    def _win(self, x: Tensor) -> Tensor:
        return self.window.to(device=x.device, dtype=x.dtype)

    def _frames(self, xp: Tensor) -> Tensor:
        """Frames of an already padded signal ``(..., m)``, ``m >= n_fft``; power applied."""
        shape = xp.shape[:-1]
        spec = torch.stft(
            xp.reshape(-1, xp.shape[-1]),
            self.n_fft,
            self.hop_length,
            window=self._win(xp),
            center=False,
            return_complex=True,
        )
        spec = spec.reshape(*shape, *spec.shape[-2:])
        return self._power(spec)

    def _power(self, spec: Tensor) -> Tensor:
        if self.power is None:
            return spec
        if self.power == 2.0:  # re^2 + im^2: no square root, ~3x faster than abs()^2 on CPU
            return spec.real.square().addcmul_(spec.imag, spec.imag)
        mag = spec.abs()
        return mag if self.power == 1.0 else mag.pow(self.power)

    def _empty(self, x: Tensor) -> Tensor:
        dtype = x.dtype if self.power is not None else _complex_of(x.dtype)
        return x.new_zeros((*x.shape[:-1], self.n_freq, 0), dtype=dtype)

    def _check_input(self, x: Tensor) -> None:
        if x.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"input: float32 or float64 audio expected, got {x.dtype}")

    def _pad_whole(self, x: Tensor) -> Tensor:
        p = self.n_fft // 2
        if not self.center or p == 0:
            return x
        if self.pad_mode == "reflect":
            if x.shape[-1] <= p:
                raise ValueError(
                    f"pad_mode reflect needs more than n_fft // 2 = {p} samples, got {x.shape[-1]}"
                )
            return torch.cat([x[..., 1 : p + 1].flip(-1), x, x[..., -p - 1 : -1].flip(-1)], -1)
        return F.pad(x, (p, p))

    def spectrogram(self, x: Tensor) -> Tensor:
        """The STFT stage of :meth:`forward` (power applied)."""
        self._check_input(x)
        xp = self._pad_whole(x)
        if xp.shape[-1] < self.n_fft:
            return self._empty(x)
        return self._frames(xp)

    def forward(self, x: Tensor) -> Tensor:
        return self.spectrogram(x)

    # ------------------------------------------------------------------ streaming
    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> StreamState:
        """Zero state for input ``(*batch_shape, n)`` (dtype is taken from the first chunk)."""
        empty = torch.zeros((*batch_shape, 0), device=device)
        head = empty if self.center and self.pad_mode == "reflect" else None
        return StreamState(empty, head, empty, 0)

    def _stream_frames(self, pending: Tensor) -> tuple[Tensor | None, Tensor]:
        m = pending.shape[-1]
        if m < self.n_fft:
            return None, pending
        k = 1 + (m - self.n_fft) // self.hop_length
        used = (k - 1) * self.hop_length + self.n_fft
        return self._frames(pending[..., :used]), pending[..., k * self.hop_length :]

    def _emit(self, spec: Tensor | None, held: Tensor | None, final: bool) -> tuple[Tensor, Any]:
        """Turn new spectrogram frames into output frames; returns (out, held).
        Here: everything at once (subclasses hold frames back for block alignment)."""
        if held is not None:
            spec = held if spec is None else torch.cat([held, spec], -1)
        assert spec is not None
        return spec, None

    def process(self, x: Tensor, state: StreamState) -> tuple[Tensor, StreamState]:
        """Take the next chunk ``(*batch, n)``; return the frames completed by it,
        ``(*batch, n_out, k)``, and the new state. See the module docstring."""
        self._check_input(x)
        p = self.n_fft // 2
        seen = state.seen + x.shape[-1]
        pending, head = state.pending.to(x.dtype), state.head
        last = state.last
        if self.center and self.pad_mode == "reflect":
            last = torch.cat([last.to(x.dtype), x], -1)[..., -(p + 1) :]
        if head is not None:  # reflect: wait for p + 1 samples to mirror
            raw = torch.cat([head.to(x.dtype), x], -1)
            if raw.shape[-1] <= p:
                return self._empty(x), StreamState(pending, raw, last, seen, state.held)
            pending, head = torch.cat([raw[..., 1 : p + 1].flip(-1), raw], -1), None
        elif state.seen == 0 and self.center and p:
            pending = torch.cat([x.new_zeros((*x.shape[:-1], p)), x], -1)
        else:
            pending = torch.cat([pending, x], -1)
        spec, pending = self._stream_frames(pending)
        if spec is None and state.held is None:
            return self._empty(x), StreamState(pending, head, last, seen, None)
        out, held = self._emit(spec, state.held, final=False)
        return out, StreamState(pending, head, last, seen, held)

    def flush(self, state: StreamState) -> tuple[Tensor, StreamState]:
        """End of the signal: the remaining frames (right padding applied)."""
        p = self.n_fft // 2
        pending = state.pending
        if self.center and p and state.head is not None:  # reflect, never more than p samples
            raise ValueError(
                f"pad_mode reflect needs more than n_fft // 2 = {p} samples, got {state.seen}"
            )
        if self.center and p and state.seen:
            if self.pad_mode == "reflect":
                right = state.last[..., :-1].flip(-1).to(pending.dtype)
            else:
                right = pending.new_zeros((*pending.shape[:-1], p))
            pending = torch.cat([pending, right], -1)
        spec, pending = self._stream_frames(pending)
        done = StreamState(pending, None, state.last, state.seen, None)
        if spec is None and state.held is None:
            return self._empty(pending), done
        out, _ = self._emit(spec, state.held, final=True)
        return out, done


def _complex_of(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


class MelSpectrogram(Spectrogram):
    """Mel power spectrogram: :class:`Spectrogram` then the mel filterbank (a matmul).

    ``forward(x)``: ``(..., time)`` -> ``(..., n_mels, frames)``. Equals
    ``librosa.feature.melspectrogram(y=x, sr=fs, ...)`` with the same parameters.
    ``fs``: sample rate of the input in Hz (keyword-only).
    """

    fb: Tensor

    def __init__(
        self,
        n_fft: int = 2048,
        hop_length: int | None = None,
        win_length: int | None = None,
        window: str | Tensor = "hann",
        center: bool = True,
        pad_mode: str = "constant",
        power: float = 2.0,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float | None = None,
        mel_scale: str = "slaney",
        norm: str | None = "slaney",
        *,
        fs: float,
    ) -> None:
        if power is None:
            raise ValueError("power: a mel spectrogram needs power > 0 (1 or 2), got None")
        super().__init__(n_fft, hop_length, win_length, window, center, pad_mode, power)
        self.fs = float(fs)
        self.n_mels, self.f_min, self.mel_scale, self.norm = (
            int(n_mels),
            float(f_min),
            mel_scale,
            norm,
        )
        fb = mel_filterbank(self.fs, n_fft, n_mels, f_min, f_max, mel_scale, norm)
        self.f_max = self.fs / 2.0 if f_max is None else float(f_max)
        self.register_buffer("fb", torch.from_numpy(fb))  # float64; cast per call

    def _fb(self, s: Tensor) -> Tensor:
        return self.fb.to(device=s.device, dtype=s.dtype)

    def mel(self, spec: Tensor) -> Tensor:
        """Filterbank applied to a spectrogram ``(..., n_freq, frames)`` -> ``(..., n_mels,
        frames)``: one ``(MEL_BLOCK, n_freq) @ (n_freq, n_mels)`` product per block of
        :data:`MEL_BLOCK` frames counted from the first (the last block zero-padded)."""
        *batch, n_freq, t = spec.shape
        nb = -(-t // MEL_BLOCK)
        s = spec.mT  # (..., frames, n_freq): contiguous as torch.stft returns it
        if nb * MEL_BLOCK != t:
            s = F.pad(s, (0, 0, 0, nb * MEL_BLOCK - t))
        s = s.contiguous().reshape(-1, MEL_BLOCK, n_freq)
        fbt = self._fb(spec).mT
        y = torch.bmm(s, fbt.expand(s.shape[0], *fbt.shape))  # (blocks, MEL_BLOCK, n_mels)
        return y.reshape(*batch, nb * MEL_BLOCK, self.n_mels)[..., :t, :].mT

    def _emit(self, spec: Tensor | None, held: Tensor | None, final: bool) -> tuple[Tensor, Any]:
        if held is not None:
            spec = held if spec is None else torch.cat([held, spec], -1)
        assert spec is not None
        k = spec.shape[-1] if final else spec.shape[-1] // MEL_BLOCK * MEL_BLOCK
        rest = None if k == spec.shape[-1] else spec[..., k:]
        if k == 0:
            return spec.new_zeros((*spec.shape[:-2], self.n_mels, 0)), rest
        return self.mel(spec[..., :k]), rest

    def _empty(self, x: Tensor) -> Tensor:
        return x.new_zeros((*x.shape[:-1], self.n_mels, 0))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        xp = self._pad_whole(x)
        t = self.n_frames(x.shape[-1])
        if t == 0:
            return self._empty(x)
        # frames up to a whole number of mel blocks (from zeros after the padded signal,
        # dropped): the blocks need no copy of the spectrogram
        extra = -(-t // MEL_BLOCK) * MEL_BLOCK - t
        xp = F.pad(xp[..., : (t - 1) * self.hop_length + self.n_fft], (0, extra * self.hop_length))
        return self.mel(self._frames(xp))[..., :t]

    def mel_hz(self) -> np.ndarray:
        """Centre frequencies (Hz) of the mel bands, ``(n_mels,)`` (for axis labels)."""
        return mel_frequencies(self.n_mels + 2, self.f_min, self.f_max, self.mel_scale)[1:-1]


class LogMelSpectrogram(nn.Module):
    """Log-mel spectrogram in dB: :class:`MelSpectrogram` then :func:`power_to_db`.

    ``forward(x)``: ``(..., time)`` -> ``(..., n_mels, frames)`` dB. Equals
    ``librosa.power_to_db(librosa.feature.melspectrogram(...), ref=np.max, amin=amin,
    top_db=top_db)`` (``ref`` ``"max"``, the default; or a number). ``db_dims``: the
    axes ``ref="max"`` and ``top_db`` take the maximum over, None = the whole output
    (librosa's semantics for one array, e.g. all channels of one file); ``(-2, -1)``
    makes it per example and channel for a batch. Streaming: ``.mel`` streams, then
    :meth:`from_power` on the concatenated mel power.
    """

    def __init__(
        self,
        n_fft: int = 2048,
        hop_length: int | None = None,
        win_length: int | None = None,
        window: str | Tensor = "hann",
        center: bool = True,
        pad_mode: str = "constant",
        power: float = 2.0,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float | None = None,
        mel_scale: str = "slaney",
        norm: str | None = "slaney",
        ref: str | float = "max",
        amin: float = 1e-10,
        top_db: float | None = 80.0,
        db_dims: tuple[int, ...] | None = None,
        *,
        fs: float,
    ) -> None:
        super().__init__()
        self.mel = MelSpectrogram(
            n_fft, hop_length, win_length, window, center, pad_mode, power,
            n_mels, f_min, f_max, mel_scale, norm, fs=fs,
        )  # fmt: skip
        power_to_db(torch.ones(1), ref, amin, top_db)  # checks ref, amin, top_db
        self.ref, self.amin, self.top_db, self.db_dims = ref, float(amin), top_db, db_dims

    def from_power(self, S: Tensor) -> Tensor:
        """dB of a mel power spectrogram (the last stage of :meth:`forward`)."""
        return power_to_db(S, self.ref, self.amin, self.top_db, self.db_dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.from_power(self.mel(x))


class MFCC(LogMelSpectrogram):
    """Mel-frequency cepstral coefficients: log-mel (dB) then an orthonormal DCT-II.

    ``forward(x)``: ``(..., time)`` -> ``(..., n_mfcc, frames)``. Equals
    ``librosa.feature.mfcc(y=x, sr=fs, n_mfcc=n_mfcc, lifter=lifter, ...)``: the dB
    defaults are librosa's ``power_to_db`` ones (``ref`` 1.0, ``top_db`` 80).
    ``lifter`` > 0 scales coefficient ``k`` by ``1 + lifter / 2 sin(pi (k + 1) / lifter)``.
    """

    dct: Tensor

    def __init__(
        self,
        n_fft: int = 2048,
        hop_length: int | None = None,
        win_length: int | None = None,
        window: str | Tensor = "hann",
        center: bool = True,
        pad_mode: str = "constant",
        power: float = 2.0,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float | None = None,
        mel_scale: str = "slaney",
        norm: str | None = "slaney",
        ref: str | float = 1.0,
        amin: float = 1e-10,
        top_db: float | None = 80.0,
        db_dims: tuple[int, ...] | None = None,
        n_mfcc: int = 20,
        lifter: float = 0.0,
        *,
        fs: float,
    ) -> None:
        super().__init__(
            n_fft, hop_length, win_length, window, center, pad_mode, power, n_mels,
            f_min, f_max, mel_scale, norm, ref, amin, top_db, db_dims, fs=fs,
        )  # fmt: skip
        if lifter < 0:
            raise ValueError(f"lifter: must be >= 0, got {lifter}")
        d = dct_matrix(n_mfcc, n_mels)
        if lifter > 0:
            d *= (1.0 + (lifter / 2.0) * np.sin(np.pi * np.arange(1, n_mfcc + 1) / lifter))[:, None]
        self.n_mfcc, self.lifter = int(n_mfcc), float(lifter)
        self.register_buffer("dct", torch.from_numpy(d))  # float64; cast per call

    def from_power(self, S: Tensor) -> Tensor:
        db = super().from_power(S)
        return torch.matmul(self.dct.to(device=db.device, dtype=db.dtype), db)
