"""Audio I/O: probing, streaming reads, and atomic writes that keep the input's format.

- Reads stream in blocks until the data ends (a header's frame count is never
  trusted for allocation).
- Writes go to a temporary file in the destination folder, are fsynced, then
  renamed over the destination; on any failure (or interrupt) the temporary
  file is removed and an existing destination is left untouched.
- Integer PCM is quantized here, not by libsndfile: samples are rounded,
  clipped at full scale and counted (SoX's "clipped N samples"), never wrapped.
  Optional TPDF dither is added before rounding.

Arrays at this layer are numpy ``(channels, frames)``; float32 or float64.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

AUDIO_EXTENSIONS = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".aif",
        ".aiff",
        ".aifc",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".w64",
        ".rf64",
        ".caf",
        ".au",
        ".snd",
    }
)
FORMAT_EXTENSIONS = {"wav": ".wav", "flac": ".flac"}
PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
TEMP_MARK = ".fxcli-tmp"


class AudioError(Exception):
    """An input or output file cannot be handled; the message is one line."""


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    text = msg[-1] if msg else type(exc).__name__
    # soundfile: "Error opening 'x.wav': Format not recognised." -> keep the reason
    if ": " in text and text.startswith("Error opening"):
        text = text.split(": ", 1)[1]
    return text.rstrip(".")


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says. ``frames`` may be wrong for damaged files."""

    path: Path
    samplerate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def compute_dtype(self) -> np.dtype:
        """float64 where float32 would lose bits (32-bit int, double), else float32."""
        return np.dtype(np.float64 if self.subtype in ("DOUBLE", "PCM_32") else np.float32)


def probe(path: Path) -> AudioInfo:
    """Read a file's header; raise :class:`AudioError` with the reason if unreadable."""
    if path.is_dir():
        raise AudioError("is a directory, not an audio file")
    if not path.exists():
        raise AudioError("no such file")
    try:
        with sf.SoundFile(str(path)) as f:
            info = AudioInfo(
                path, int(f.samplerate), int(f.channels), int(f.frames), f.format, f.subtype
            )
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(f"cannot read audio: {_one_line(exc)}") from None
    if info.channels < 1 or info.samplerate < 1:
        raise AudioError(f"invalid header: {info.channels} channels at {info.samplerate} Hz")
    return info


def read_blocks(info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    """Yield ``(channels, n)`` C-contiguous arrays in ``info.compute_dtype`` until the data ends."""
    dtype = "float64" if info.compute_dtype == np.float64 else "float32"
    try:
        with sf.SoundFile(str(info.path)) as f:
            while True:
                block = f.read(block_frames, dtype=dtype, always_2d=True)
                if block.shape[0] == 0:
                    return
                yield np.ascontiguousarray(block.T)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"read failed: {_one_line(exc)}") from None


@dataclass(frozen=True)
class OutputFormat:
    """Container and subtype of an output file."""

    format: str
    subtype: str
    extension: str


def output_format(info: AudioInfo, fmt: str, subtype: str, preset_subtype: str) -> OutputFormat:
    """Resolve the output container/subtype: ``--subtype`` beats the preset's
    ``output.subtype``, which beats the input's own subtype. Never silently 16-bit."""
    if fmt == "same":
        container = info.format
        ext = info.path.suffix or ".wav"
    else:
        container = fmt.upper()
        ext = FORMAT_EXTENSIONS[fmt]
    sub = subtype if subtype != "same" else preset_subtype
    if sub == "same":
        sub = info.subtype
    if not sf.check_format(container, sub):
        allowed = ", ".join(sorted(sf.available_subtypes(container)))
        raise AudioError(
            f"cannot write subtype {sub} to {container}; allowed for {container}: {allowed} "
            "(choose one with --subtype)"
        )
    return OutputFormat(container, sub, ext)


class Quantizer:
    """Turns float blocks into what the writer stores, counting clipped samples.

    For PCM subtypes: ``round(x * 2**(bits-1) [+ TPDF dither])`` clipped to the
    integer range; libsndfile reads ``q / 2**(bits-1)`` back, so an unprocessed
    round trip is bit-exact. Other non-float subtypes (lossy, companded) are
    clipped to [-1, 1]. FLOAT/DOUBLE pass through unchanged.
    """

    def __init__(self, subtype: str, dither: str = "none", seed: int = 0) -> None:
        self.subtype = subtype
        self.bits = PCM_BITS.get(subtype)
        self.dither = dither if self.bits is not None else "none"
        self.rng = np.random.default_rng(seed)
        self.clipped = 0

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """``y``: (channels, n) float -> (n, channels) array to hand to soundfile."""
        if self.subtype in FLOAT_SUBTYPES:
            return y.T
        if self.bits is None:
            over = np.abs(y) > 1.0
            self.clipped += int(np.count_nonzero(over))
            return np.clip(y, -1.0, 1.0).T
        scale = float(2 ** (self.bits - 1))
        v = y.T.astype(np.float64) * scale  # (n, channels): dither drawn frame-major
        if self.dither == "tpdf":
            v += self.rng.random(v.shape) - self.rng.random(v.shape)
        q = np.rint(v)
        lo, hi = -scale, scale - 1.0
        clip = (q < lo) | (q > hi)
        n_clip = int(np.count_nonzero(clip))
        if n_clip:
            self.clipped += n_clip
            np.clip(q, lo, hi, out=q)
        container_bits = 16 if self.bits <= 16 else 32
        q *= float(2 ** (container_bits - self.bits))
        return q.astype(np.int16 if container_bits == 16 else np.int32)


class AtomicWriter:
    """Write an audio file atomically (temp file in the same folder, fsync, rename).

    Use as a context manager; :meth:`commit` publishes the file. Leaving the block
    without committing (exception, interrupt) removes the temporary file.
    """

    def __init__(
        self, dest: Path, samplerate: int, channels: int, out: OutputFormat, dither: str = "none"
    ) -> None:
        self.dest = dest
        self.tmp = dest.parent / f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_MARK}"
        self.quantizer = Quantizer(out.subtype, dither)
        self._file: sf.SoundFile | None = None
        self._args = (samplerate, channels, out.subtype, out.format)
        self.frames = 0

    def __enter__(self) -> AtomicWriter:
        sr, ch, subtype, fmt = self._args
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            self._file = sf.SoundFile(
                str(self.tmp), "w", samplerate=sr, channels=ch, subtype=subtype, format=fmt
            )
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            self._cleanup()
            raise AudioError(f"cannot write {self.dest}: {_one_line(exc)}") from None
        return self

    @property
    def clipped(self) -> int:
        return self.quantizer.clipped

    def write(self, y: np.ndarray) -> None:
        """Append a ``(channels, n)`` float block."""
        assert self._file is not None
        try:
            self._file.write(self.quantizer(y))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(f"write failed for {self.dest}: {_one_line(exc)}") from None
        self.frames += y.shape[-1]

    def commit(self) -> None:
        assert self._file is not None
        try:
            self._file.close()
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.tmp, self.dest)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(f"cannot finish {self.dest}: {_one_line(exc)}") from None
        self._file = None

    def _cleanup(self) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError, OSError):
            self.tmp.unlink()

    def __exit__(self, *exc: object) -> None:
        self._cleanup()
