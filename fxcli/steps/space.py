"""Rooms and spaces as chain steps: :class:`Convolve` (impulse responses) and
:class:`Reverb` (algorithmic, Freeverb)."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from fxcli.dsp import reverb as RV
from fxcli.errors import ParameterError
from fxcli.preset.spec import check
from fxcli.steps.base import Step, as_numpy, check_fs, coefficients, zeros
from fxcli.steps.module import torch_free

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["Convolve", "Reverb", "MAX_IR_SECONDS", "MAX_IR_BYTES"]

MAX_IR_SECONDS = 60.0
MAX_IR_BYTES = 64 * 1024 * 1024


def _channels(batch_shape: tuple[int, ...]) -> int:
    """Channel count of an input ``(*batch, time)``: the last batch axis (1 for 1-D)."""
    return batch_shape[-1] if batch_shape else 1


def load_ir(path: str | os.PathLike[str], fs: float, label: str = "convolve") -> np.ndarray:
    """Read an impulse response with soundfile as ``(C, K)`` float64 at ``fs`` Hz.

    Rejects (one-line :class:`ValueError` naming the file, never quoting its
    content) missing or unreadable files, anything but a regular file (a FIFO, a
    device, a folder) and files under /proc, /sys or /dev, files over 64 MiB (checked
    on the opened file, and at most 64 MiB + 1 byte read: see
    :func:`fxcli.preset.files.read_regular_file`), IRs over 60 s and empty IRs;
    resamples with soxr ('VHQ') when the file's rate is not ``fs``.
    """
    import io

    import soundfile as sf

    from fxcli.preset.files import FileTooLargeError, PresetFileError, read_regular_file

    p = os.fspath(path)
    try:
        raw = read_regular_file(p, MAX_IR_BYTES)
    except FileTooLargeError as exc:
        raise ValueError(
            f"{label}: impulse response {p} is {exc.size / 2**20:.1f} MiB on disk (limit 64 MiB)"
        ) from None
    except PresetFileError as exc:
        raise ValueError(f"{label}: cannot read impulse response {p}: it {exc.reason}") from None
    try:
        with sf.SoundFile(io.BytesIO(raw)) as f:
            if f.frames > MAX_IR_SECONDS * f.samplerate:
                raise ValueError(
                    f"{label}: impulse response {p} is {f.frames / f.samplerate:.1f} s long "
                    f"(limit {MAX_IR_SECONDS:g} s)"
                )
            data, sr = f.read(dtype="float64", always_2d=True), f.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError, EOFError):
        # libsndfile's message is not repeated: only the format verdict matters here
        raise ValueError(
            f"{label}: cannot read impulse response {p}: not an audio file soundfile can read"
        ) from None
    ir = np.ascontiguousarray(data.T)
    if ir.shape[1] == 0:
        raise ValueError(f"{label}: impulse response {p} has no frames")
    if not np.isfinite(ir).all():
        raise ValueError(f"{label}: impulse response {p} contains non-finite samples")
    if sr != fs:
        import soxr

        ir = np.ascontiguousarray(soxr.resample(np.ascontiguousarray(ir.T), sr, fs, "VHQ").T)
        if ir.shape[1] == 0:
            raise ValueError(f"{label}: impulse response {p} is empty at {fs:g} Hz")
    return ir


class Convolve(Step):
    """Convolution with an impulse response file (reverb, cabinet, room).

    ``y = (1 - mix) * x + mix * wet`` with ``wet[c, t] = sum_k ir[c, k] x[c, t - k]``
    (float64, cast to ``x``'s dtype). The IR is read with soundfile (no pickle),
    resampled to ``fs`` with soxr when its rate differs, and used as float64 on the
    input's device. A mono IR applies to every channel; an IR with as many channels
    as the input applies channel by channel; any other count raises
    :class:`ValueError` at :meth:`init_state` / :meth:`process`.

    ``normalize_ir``: the IR (all channels by one factor, keeping their balance) is
    scaled so that its mean per-channel energy ``sum(ir**2) / C`` is 1, i.e. white
    noise keeps its power through the wet path; a silent IR is then rejected.

    Output length equals input length: the reverb tail after the input's last frame
    is not emitted (append silence to the input to keep it). State: the last
    ``K - 1`` input frames ``(*batch, K - 1)`` float64 on the input's device
    (overlap-save, :func:`fxcli.dsp.reverb.fft_convolve`); chunked processing equals
    whole-signal processing to float64 rounding.

    Args:
        ir_file: path of the IR (any soundfile-readable file, <= 60 s, <= 64 MiB).
        mix: dry/wet in [0, 1].
        normalize_ir: scale the IR to unit energy (above).
        fs: input sample rate in Hz.

    Devices: any. Autograd: not supported: calling it on a tensor that requires grad
    raises (run it under torch.no_grad()).
    """

    differentiable = False

    late_binding = "fs"

    ir: Tensor

    def __init__(
        self,
        ir_file: str | os.PathLike[str],
        mix: float = 1.0,
        normalize_ir: bool = True,
        *,
        fs: float,
        label: str = "convolve",
    ) -> None:
        super().__init__()
        self.label = label
        fs = check_fs(fs)
        self.ir_file = os.fspath(ir_file)
        self.mix = check("convolve", "mix", mix)
        self.normalize_ir = bool(normalize_ir)
        self.fs = float(fs)
        ir = load_ir(self.ir_file, self.fs, label)
        if self.normalize_ir:
            energy = float(np.sum(ir * ir)) / ir.shape[0]
            if energy == 0.0:
                raise ValueError(
                    f"{label}: impulse response {self.ir_file} is silent (cannot normalize)"
                )
            ir = ir / math.sqrt(energy)
        self.register_buffer("ir", coefficients(ir))
        self._spectra: dict[Any, Tensor] = {}

    def _check_channels(self, channels: int) -> None:
        c_ir = self.ir.shape[0]
        if c_ir != 1 and c_ir != channels:
            raise ValueError(
                f"{self.label}: impulse response {self.ir_file} has {c_ir} channels but the "
                f"input has {channels} (use a mono IR or one with {channels} channels)"
            )

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        self._check_channels(_channels(batch_shape))
        k = self.ir.shape[1]
        return zeros((*batch_shape, k - 1), device)  # type: ignore[no-any-return]

    def process(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        self._check_channels(_channels(tuple(x.shape[:-1])))
        if len(self._spectra) > 4:  # a memo of IR spectra per FFT size, kept small
            self._spectra.clear()
        if isinstance(x, np.ndarray):  # the torch-free CPU path
            wet, hist = RV.fft_convolve(x, as_numpy(self.ir), state, self._spectra)
            if self.mix != 1.0:
                wet = (1.0 - self.mix) * x.astype(np.float64) + self.mix * wet
            return wet.astype(x.dtype), hist
        wet, hist = RV.fft_convolve(x, self.ir.to(x.device), state, self._spectra)
        if self.mix == 1.0:
            return wet.to(x.dtype), hist
        import torch

        y = (1.0 - self.mix) * x.detach().to(torch.float64) + self.mix * wet
        return y.to(x.dtype), hist


class Reverb(Step):
    """Algorithmic reverb: Freeverb as in JUCE's ``juce::Reverb`` / pedalboard's ``Reverb``.

    Same parameters and defaults as pedalboard.Reverb (without freeze mode); JUCE's
    mapping: comb feedback ``0.7 + 0.28 * room_size``, comb damping
    ``0.4 * damping``, input gain 0.015, wet gains ``w1 = 1.5 * wet * (1 + width)``,
    ``w2 = 1.5 * wet * (1 - width)``, dry gain ``2 * dry``. Parameters are constant
    (JUCE's 10 ms parameter smoothing only matters when they change).

    Channels: stereo input (2 channels) runs the Freeverb pair: both sides are fed
    ``0.015 * (L + R)``, the right side's delay lines are 23 frames (at 44.1 kHz)
    longer, and ``L' = w1 * wetL + w2 * wetR + 2 * dry * L`` (and symmetrically R').
    Mono input runs one Freeverb: ``y = w1 * wet + 2 * dry * x`` (as JUCE's
    ``processMono``). Any other channel count: every channel runs its own mono
    Freeverb independently (left-side delay lengths).

    Arithmetic and state are float64 (JUCE works in float32; the tests compare with
    pedalboard). The recurrence runs in the compiled core on the CPU and as a Triton
    program per channel on CUDA (:mod:`fxcli.dsp.reverb_triton`; without Triton CUDA
    inputs are copied to the CPU and back); the state (delay-line buffers, positions,
    comb lowpass states, see :func:`fxcli.dsp.reverb.freeverb_state`) starts on the
    CPU and moves to the device with the first chunk. Output length equals input
    length (the tail after the end is not emitted); chunked processing equals
    whole-signal processing bit for bit on the CPU.

    Args:
        room_size: in [0, 1].
        damping: in [0, 1] (high-frequency damping of the tail).
        wet: wet level in [0, 1].
        dry: dry level in [0, 1].
        width: stereo width in [0, 1].
        fs: input sample rate in Hz (>= 100).

    Devices: any (CPU: the compiled comb/allpass kernel; CUDA: Triton programs on the
    device, :mod:`fxcli.dsp.reverb_triton`, or the CPU kernel where Triton is missing).
    Autograd: not
    supported: calling it on a tensor that requires grad raises (run it under
    torch.no_grad()).
    """

    differentiable = False

    late_binding = "fs"

    def __init__(
        self,
        room_size: float = 0.5,
        damping: float = 0.5,
        wet: float = 0.33,
        dry: float = 0.4,
        width: float = 1.0,
        *,
        fs: float,
        label: str = "reverb",
    ) -> None:
        super().__init__()
        self.label = label
        if not (math.isfinite(fs) and fs >= 100):
            raise ParameterError("fs", f"got {fs!r}", "a sample rate >= 100 Hz")
        self.room_size = check("reverb", "room_size", room_size)
        self.damping = check("reverb", "damping", damping)
        self.wet = check("reverb", "wet", wet)
        self.dry = check("reverb", "dry", dry)
        self.width = check("reverb", "width", width)
        self.fs = float(fs)
        self.feedback = 0.7 + 0.28 * self.room_size
        self.damp = 0.4 * self.damping
        w = 3.0 * self.wet
        self.wet1 = 0.5 * w * (1.0 + self.width)
        self.wet2 = 0.5 * w * (1.0 - self.width)
        self.dry_gain = 2.0 * self.dry

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Any:
        stereo = _channels(batch_shape) == 2 and len(batch_shape) >= 1
        return RV.freeverb_state(self.fs, batch_shape, stereo, tensors=not torch_free())

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        arrays = isinstance(x, np.ndarray)
        if arrays:
            x64: Any = x.astype(np.float64)  # type: ignore[attr-defined]
        else:
            import torch

            x64 = x.detach().to(torch.float64)
        stereo = x.ndim >= 2 and x.shape[-2] == 2
        if stereo:
            mono = 0.015 * (x64[..., 0:1, :] + x64[..., 1:2, :])
            inp = np.broadcast_to(mono, x64.shape) if arrays else mono.expand_as(x64)
            wet, new = RV.freeverb(inp, state, self.feedback, self.damp)
            left, right = wet[..., 0:1, :], wet[..., 1:2, :]
            sides = [self.wet1 * left + self.wet2 * right, self.wet1 * right + self.wet2 * left]
            wet_mix = np.concatenate(sides, axis=-2) if arrays else torch.cat(sides, dim=-2)
        else:
            wet, new = RV.freeverb(0.015 * x64, state, self.feedback, self.damp)
            wet_mix = self.wet1 * wet
        y = wet_mix + self.dry_gain * x64
        return (y.astype(x.dtype) if arrays else y.to(x.dtype)), new
