"""Lossy outputs around the writing pass: their encoder settings before it, and the
true peak of what was really written after it.

Before: a chain whose output rate the encoder cannot take (Opus at 44.1 kHz, MP3
at 96 kHz) gets a final resample step (:func:`encoder_rate`, as FFmpeg resamples
for libopus); :func:`prepare_output` refuses a stream the encoder still cannot
take (MP3 with 6 channels: one line naming the way out, before any work on the
file) and sets the bitrate or quality (:func:`fxcli.io.containers.lossy_encoding`;
a lossy input's bitrate is estimated from its size and duration).

After: a lossy codec changes the waveform, so the limiter's promise (true peak at
most its ceiling) may not survive the encode. :func:`encoded_peak_note` decodes
the written file, measures its true peak (ITU-R BS.1770-4, 4x oversampled,
:func:`fxcli.dsp.truepeak.true_peak_array`) and returns a note with both numbers
when it exceeds the ceiling of the chain's last limiter.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fxcli.io.audio import AudioInfo, OutputFormat
from fxcli.io.containers import (
    CODEC_RATES,
    LossyOptions,
    check_stream,
    input_kbps,
    lossy_encoding,
)
from fxcli.io.formats import LOSSY_SUBTYPES
from fxcli.preset.loader import StepConfig

#: a decoded true peak this far (dB) above the ceiling is reported (float rounding
#: of the decoder is far below it)
CEILING_TOLERANCE_DB = 0.01


def encoder_rate(subtype: str, rate: float) -> int | None:
    """The rate a stream of ``rate`` Hz is resampled to for an encoder that cannot
    take it (Opus: 8/12/16/24/48 kHz; MPEG: 8-48 kHz): the lowest allowed rate at or
    above it, else the highest; None when the rate is taken as it is."""
    rates = CODEC_RATES.get(subtype)
    if rates is None or round(rate) in rates:
        return None
    return next((r for r in rates if r >= rate), rates[-1])


def resample_config(rate: int, index: int, source: str) -> StepConfig:
    """A ``resample`` step to ``rate`` Hz (high quality), added at the end of a chain
    whose output rate the encoder cannot take."""
    return StepConfig("resample", {"rate_hz": rate, "quality": "high"}, index, None, source)


def prepare_output(
    ofmt: OutputFormat,
    opts: LossyOptions | None,
    info: AudioInfo,
    rate: float,
    channels: int,
) -> OutputFormat:
    """``ofmt`` with its lossy encoder's settings for a stream of ``rate`` Hz and
    ``channels`` (the chain's output); raises :class:`AudioError` where the encoder
    cannot take that stream. Other subtypes pass unchanged."""
    if ofmt.subtype not in LOSSY_SUBTYPES:
        return ofmt
    why = check_stream(ofmt.subtype, round(rate), channels)
    if why is not None:
        raise why
    try:
        size = Path(info.path).stat().st_size
    except OSError:
        size = 0
    kbps = input_kbps(info.subtype, size, info.frames, info.samplerate)
    return lossy_encoding(ofmt, opts, round(rate), channels, kbps)


def limiter_ceiling(steps: list[Any]) -> float | None:
    """The ``ceiling_db`` of the last ``limiter`` among preset step configs (objects
    with ``type`` and ``params``), None without one."""
    ceiling = None
    for step in steps:
        if getattr(step, "type", None) == "limiter":
            ceiling = float(step.params.get("ceiling_db", -1.0))
    return ceiling


def true_peak_db(path: Path, block_frames: int = 1 << 16) -> float:
    """True peak of a file in dBTP (``-inf`` for silence), read in blocks."""
    import numpy as np
    import soundfile as sf

    from fxcli.dsp.truepeak import interpolator, true_peak_array

    peak = 0.0
    state = None
    with sf.SoundFile(str(path)) as f:
        interp = interpolator(f.samplerate)
        while True:
            block = f.read(block_frames, dtype="float64", always_2d=True)
            if block.shape[0] == 0:
                break
            p, state = true_peak_array(np.ascontiguousarray(block.T), state, interp)
            peak = max(peak, float(p.max()))
        if state is not None:  # the interpolator's ringing after the last sample
            p, _ = true_peak_array(np.zeros_like(state), state, interp)
            peak = max(peak, float(p.max()))
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def encoded_peak_note(path: Path, ofmt: OutputFormat, steps: list[Any]) -> str | None:
    """A note when ``path`` (a just written lossy output) has a true peak above the
    chain's limiter ceiling; None otherwise (or no limiter, or not lossy)."""
    if ofmt.subtype not in LOSSY_SUBTYPES:
        return None
    ceiling = limiter_ceiling(steps)
    if ceiling is None:
        return None
    try:
        peak = true_peak_db(path)
    except (RuntimeError, OSError, ValueError) as exc:
        return f"could not decode the {ofmt.subtype} output to check its true peak: {exc}"
    if peak <= ceiling + CEILING_TOLERANCE_DB:
        return None
    return (
        f"true peak {peak:.2f} dBTP after the {ofmt.subtype} encode exceeds the limiter "
        f"ceiling {ceiling:.2f} dBTP by {peak - ceiling:.2f} dB (lower the ceiling, or "
        "raise the encoder's quality or bitrate)"
    )
