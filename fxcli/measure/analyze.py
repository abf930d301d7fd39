"""Levels and loudness of audio files, streamed in bounded memory (``fxcli analyze``).

Per file: integrated loudness (LUFS, ITU-R BS.1770-4 gating), loudness range
(LU, EBU Tech 3342), max momentary and max short-term loudness (LUFS), and over
all channels the sample peak, true peak, RMS and clipped-sample count; per
channel: sample peak (dBFS), true peak (dBTP, :func:`fxcli.dsp.truepeak.interpolator`:
8x or more, at least 192 kHz, agreeing with ffmpeg's ``ebur128=peak=true``
within 0.1 dB on music and speech; on clicks, clipped noise and tones near Nyquist
ffmpeg reads up to 1.6 dB lower (its 192 kHz grid is 4x at 48 kHz, 2x at 96 kHz)
or up to 0.05 dB higher (issue 17);
including the interpolator's ringing after the last sample),
RMS (dBFS), DC offset (mean, full scale = 1), clipped samples and the
channel's own integrated loudness (measured alone as mono). Plus duration,
sample rate, channel count, container format and subtype.

Conventions:

- dBFS is ``20 log10(|x|)`` with full scale 1.0; RMS is unweighted, so a
  full-scale square wave reads 0 dBFS and a full-scale sine -3.01 dBFS.
- Clipped samples are samples at or beyond full scale: ``|x| >= 1 - 2^-(bits-1)``
  for integer PCM (the largest positive code, and the most negative one), and
  ``|x| >= 1`` for float and other (compressed) subtypes.
- Silence reads ``-inf`` (``null`` in JSON). Loudness needs >= 400 ms (LRA and
  max short-term: 3 s) and a rate of at least 4 kHz; otherwise it is ``-inf``
  (``null``) / LRA ``0``.
- Files are read with :func:`fxcli.io.audio.read_blocks` in chunks sized by
  :func:`fxcli.engine.device.chunk_frames` (10 s on CPU), and measured on the
  chosen device (CPU or CUDA tensors; the accumulators are float64).

:func:`analyze_file` returns a :class:`FileAnalysis`; the command
(:mod:`fxcli.cli.analyze`) finds the files and renders the results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_KEYS = (
    "input",
    "status",
    "error",
    "format",
    "subtype",
    "sample_rate",
    "channels",
    "frames",
    "duration_s",
    "integrated_lufs",
    "loudness_range_lu",
    "max_momentary_lufs",
    "max_short_term_lufs",
    "sample_peak_dbfs",
    "true_peak_dbtp",
    "rms_dbfs",
    "clipped_samples",
    "per_channel",
)
CHANNEL_KEYS = (
    "channel",
    "sample_peak_dbfs",
    "true_peak_dbtp",
    "rms_dbfs",
    "dc_offset",
    "clipped_samples",
    "integrated_lufs",
)


def _db(linear: float) -> float:
    return 20.0 * math.log10(linear) if linear > 0.0 else -math.inf


def _num(v: Any) -> Any:
    """JSON-safe number: non-finite floats become ``None`` (null)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass
class ChannelAnalysis:
    """One channel's measures (index from 0)."""

    channel: int
    sample_peak_dbfs: float
    true_peak_dbtp: float
    rms_dbfs: float
    dc_offset: float
    clipped_samples: int
    integrated_lufs: float

    def to_json(self) -> dict[str, Any]:
        return {k: _num(getattr(self, k)) for k in CHANNEL_KEYS}


@dataclass
class FileAnalysis:
    """A file's measures, or ``status == "failed"`` with ``error`` (one line)."""

    input: str
    status: str = "ok"
    error: str | None = None
    format: str | None = None
    subtype: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    frames: int | None = None
    duration_s: float | None = None
    integrated_lufs: float | None = None
    loudness_range_lu: float | None = None
    max_momentary_lufs: float | None = None
    max_short_term_lufs: float | None = None
    sample_peak_dbfs: float | None = None
    true_peak_dbtp: float | None = None
    rms_dbfs: float | None = None
    clipped_samples: int | None = None
    per_channel: list[ChannelAnalysis] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Stable keys (:data:`FILE_KEYS`); numbers as numbers; -inf/nan as ``None``."""
        out: dict[str, Any] = {}
        for k in FILE_KEYS:
            v = getattr(self, k)
            out[k] = [c.to_json() for c in v] if k == "per_channel" else _num(v)
        return out


def clip_threshold(subtype: str) -> float:
    """Magnitude at or beyond which a sample counts as clipped (see the module docstring)."""
    from fxcli.io.formats import PCM_BITS

    bits = PCM_BITS.get(subtype)
    return 1.0 - 2.0 ** -(bits - 1) if bits else 1.0


class _NumpyOps:
    """The few array operations of :func:`analyze_file`, on numpy (the CPU path: no torch)."""

    device: Any = None

    def block(self, b: Any) -> Any:
        return b

    def zeros(self, n: int, integer: bool = False) -> Any:
        import numpy as np

        return np.zeros(n, dtype=np.int64 if integer else np.float64)

    def f64(self, x: Any) -> Any:
        import numpy as np

        return x.astype(np.float64)

    def amax(self, a: Any) -> Any:
        return a.max(axis=-1)

    def maximum(self, a: Any, b: Any) -> Any:
        import numpy as np

        return np.maximum(a, b)

    def first_nonfinite(self, x64: Any) -> tuple[int, int] | None:
        import numpy as np

        bad = ~np.isfinite(x64)
        if not bad.any():
            return None
        frame = int(np.flatnonzero(bad.any(axis=0))[0])
        return frame, int(np.flatnonzero(bad[:, frame])[0])

    def tolist(self, a: Any) -> list[Any]:
        return list(a.tolist())


class _TorchOps(_NumpyOps):
    """The same operations on torch tensors on ``device`` (CUDA)."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch, self.device = torch, torch.device(device)

    def block(self, b: Any) -> Any:
        return self.torch.from_numpy(b).to(self.device)

    def zeros(self, n: int, integer: bool = False) -> Any:
        t = self.torch
        return t.zeros(n, dtype=t.int64 if integer else t.float64, device=self.device)

    def f64(self, x: Any) -> Any:
        return x.to(self.torch.float64)

    def amax(self, a: Any) -> Any:
        return a.amax(dim=-1)

    def maximum(self, a: Any, b: Any) -> Any:
        return self.torch.maximum(a, b)

    def first_nonfinite(self, x64: Any) -> tuple[int, int] | None:
        bad = ~self.torch.isfinite(x64)
        if not bool(bad.any()):
            return None
        frame = int(bad.any(dim=0).nonzero()[0])
        return frame, int(bad[:, frame].nonzero()[0])

    def tolist(self, a: Any) -> list[Any]:
        return list(a.cpu().tolist())


def analyze_file(path: Path, device: Any = "cpu", block_frames: int | None = None) -> FileAnalysis:
    """Measure one file, streaming. Raises :class:`fxcli.io.audio.AudioError` (one-line
    reason) when the file cannot be read or holds a NaN or infinite sample (frame
    and channel, from 0, named as ``fxcli process`` does).

    ``device``: ``"cpu"`` (the string) measures with numpy and the compiled CPU
    kernels, without importing torch; a ``torch.device`` (or ``"cuda[:N]"``) measures
    with torch tensors on it. On CPU both run the same kernels and give the same
    figures (tested)."""
    import numpy as np

    from fxcli.dsp import loudness as L
    from fxcli.dsp import truepeak as TP
    from fxcli.engine.device import chunk_frames
    from fxcli.io.audio import AudioError, probe, read_blocks

    on_cpu = isinstance(device, str) and device.strip().lower() == "cpu"
    ops = _NumpyOps() if on_cpu else _TorchOps(device)
    info = probe(path)
    ch, fs = info.channels, info.samplerate
    if block_frames is None:
        block_frames = chunk_frames("cpu" if on_cpu else ops.device, fs, ch, None)
    meter = L.meter_init(ch, fs, ops.device) if fs >= L.MIN_RATE_HZ else None
    interp = TP.interpolator(fs)  # 8x or more, >= 192 kHz (not BS.1770's 4x)
    if on_cpu:
        tp_state: Any = np.zeros((ch, interp.history))
        true_peak = TP.true_peak_array
    else:
        tp_state = TP.init_state((ch,), interp, ops.device)
        true_peak = TP.true_peak  # type: ignore[assignment]
    zeros = ops.zeros(ch)
    peak, tpeak, sumsq, total = zeros, zeros, zeros, zeros
    clipped = ops.zeros(ch, integer=True)
    thr = clip_threshold(info.subtype)
    frames = 0
    for block in read_blocks(info, block_frames):
        x = ops.block(block)
        x64 = ops.f64(x)
        a = abs(x64)
        bad = ops.first_nonfinite(x64)
        if bad is not None:
            raise AudioError(
                f"non-finite input sample (NaN or Inf) at frame {frames + bad[0]}, channel {bad[1]}"
            )
        peak = ops.maximum(peak, ops.amax(a))
        sumsq = sumsq + (x64 * x64).sum(-1)
        total = total + x64.sum(-1)
        clipped = clipped + (a >= thr).sum(-1)
        p, tp_state = true_peak(x, tp_state, interp)
        tpeak = ops.maximum(tpeak, p)
        if meter is not None:
            meter = L.meter_update(x, meter)
        frames += x.shape[-1]
    # the interpolator's ringing after the last sample (the file followed by silence)
    silence = ops.f64(ops.block(np.zeros((ch, interp.history))))
    p, _ = true_peak(silence, tp_state, interp)
    tpeak = ops.maximum(tpeak, p)
    peak_l = ops.tolist(peak)
    tpeak_l = ops.tolist(tpeak)
    sumsq_l = ops.tolist(sumsq)
    total_l = ops.tolist(total)
    clipped_l = [int(c) for c in ops.tolist(clipped)]
    n = max(frames, 1)
    if meter is not None:
        ch_lufs = L.channel_integrated_lufs(meter)
    else:
        ch_lufs = [-math.inf] * ch
    per = [
        ChannelAnalysis(
            channel=i,
            sample_peak_dbfs=_db(peak_l[i]),
            true_peak_dbtp=_db(tpeak_l[i]),
            rms_dbfs=_db(math.sqrt(sumsq_l[i] / n)),
            dc_offset=total_l[i] / n if frames else 0.0,
            clipped_samples=clipped_l[i],
            integrated_lufs=ch_lufs[i],
        )
        for i in range(ch)
    ]
    return FileAnalysis(
        input=str(path),
        format=info.format,
        subtype=info.subtype,
        sample_rate=fs,
        channels=ch,
        frames=frames,
        duration_s=frames / fs,
        integrated_lufs=L.integrated_lufs(meter) if meter is not None else -math.inf,
        loudness_range_lu=L.loudness_range_lu(meter) if meter is not None else 0.0,
        max_momentary_lufs=L.max_momentary_lufs(meter) if meter is not None else -math.inf,
        max_short_term_lufs=L.max_short_term_lufs(meter) if meter is not None else -math.inf,
        sample_peak_dbfs=_db(max(peak_l)),
        true_peak_dbtp=_db(max(tpeak_l)),
        rms_dbfs=_db(math.sqrt(sum(sumsq_l) / (n * ch))),
        clipped_samples=sum(clipped_l),
        per_channel=per,
    )
