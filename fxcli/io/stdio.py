"""Audio through pipes (issue 16): stdin read as audio, a finished file copied to
stdout, as ``sox``'s ``-`` does.

- :func:`sniff` names the container of a stream from its first bytes (WAV, RF64,
  W64, FLAC, OGG Vorbis, Opus, AIFF, AU, CAF, MP3). Data with no known magic is
  either raw PCM (the caller says its rate, channels and sample format,
  :class:`RawInput`) or refused with one line: text that looks like a list of
  paths (one a line, or NUL-separated as ``find -print0`` writes) points to
  ``--input-list -`` (and ``--null``), where paths on stdin now belong.
- :func:`spool_stdin` copies stdin to a file in a private temporary folder, in
  blocks of :data:`BLOCK_BYTES` (memory stays bounded whatever the length). It
  spools rather than streams because the engine reads its input more than once
  (the header probe, the measuring pass of ``normalize``/``loudness`` steps, the
  writing pass) and libsndfile needs to seek in FLAC, OGG and WAV headers; the
  cost is disk space equal to the input (``$TMPDIR``). Raw PCM is given a WAV
  header on the way (same sample format, so the samples are unchanged).
- :func:`copy_to_fd` copies a finished output file to stdout in blocks. Outputs
  are written completely to a temporary file first, so the WAV header on stdout
  carries the true sizes (every reader takes it, unlike the ``0xFFFFFFFF``
  placeholder of a streamed header) and a run that fails writes no audio at all
  to the pipe; the price is that nothing flows before the file is processed.

Arrays are not involved here except for raw PCM: ``(frames, channels)`` blocks
as soundfile reads them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fxcli.errors import UsageError

__all__ = [
    "BLOCK_BYTES",
    "RAW_SUBTYPES",
    "RawInput",
    "copy_to_fd",
    "is_stdin",
    "is_stdout",
    "sniff",
    "spool_stdin",
]

#: bytes read or written at a time (memory used by a pipe is about this much)
BLOCK_BYTES = 1 << 20
#: bytes looked at to recognise a container
HEAD_BYTES = 1 << 12
#: ``--input-subtype`` values for raw PCM on stdin (little-endian)
RAW_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8", "PCM_S8")
#: names that mean stdin / stdout as INPUT / OUTPUT
STDIN_NAMES = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})
STDOUT_NAMES = frozenset({"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})
#: the WAV64 GUID of its ``riff`` chunk
_W64_RIFF = bytes.fromhex("726966662e91cf11a5d628db04c10000")


def is_stdin(name: str) -> bool:
    """Whether INPUT ``name`` means audio on stdin (``-``, ``/dev/stdin``)."""
    return name in STDIN_NAMES


def is_stdout(name: str) -> bool:
    """Whether OUTPUT ``name`` means audio on stdout (``-``, ``/dev/stdout``)."""
    return name in STDOUT_NAMES


@dataclass(frozen=True)
class RawInput:
    """Raw PCM on stdin: ``rate`` in Hz, ``channels``, ``subtype`` (one of
    :data:`RAW_SUBTYPES`, little-endian, interleaved)."""

    rate: int
    channels: int
    subtype: str


def sniff(head: bytes) -> str | None:
    """The file extension of the container whose magic ``head`` starts with
    (``.wav``, ``.flac``, ``.ogg``, ...), or None."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
        return ".wav"
    if len(head) >= 12 and head[:4] == b"RF64" and head[8:12] == b"WAVE":
        return ".rf64"
    if head[:16] == _W64_RIFF:
        return ".w64"
    if head[:4] == b"fLaC":
        return ".flac"
    if head[:4] == b"OggS":
        return ".opus" if b"OpusHead" in head[:HEAD_BYTES] else ".ogg"
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return ".aiff"
    if head[:4] == b".snd":
        return ".au"
    if head[:4] == b"caff":
        return ".caf"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return ".mp3"
    return None


def _not_audio(head: bytes) -> UsageError:
    """The one-line refusal of stdin data that is no known audio container."""
    sample = head[:HEAD_BYTES]
    body = sample.replace(b"\0", b"")
    printable = all(32 <= b < 127 or b in b"\t\r\n" or b >= 0x80 for b in body)
    if b"\0" in sample and printable and body:
        return UsageError.about(
            "stdin (-) holds NUL-separated names (find -print0), not audio: "
            "- is audio on stdin (as in sox); for a NUL byte separated list of paths "
            "use {input_list} - {null}"
        )
    if printable and body:
        return UsageError.about(
            "stdin (-) holds text (a list of paths?), not audio: - is audio on stdin "
            "(as in sox); for paths one per line use {input_list} -"
        )
    return UsageError.about(
        "stdin (-): not a known audio container (WAV, RF64, W64, FLAC, OGG, Opus, AIFF, "
        "AU, CAF, MP3); raw PCM needs {input_rate}, {input_channels} and {input_subtype}"
    )


def _stdin() -> BinaryIO:
    stream = sys.stdin
    if stream is None or stream.closed:
        raise UsageError("INPUT -: stdin is closed (pipe audio into fxcli)")
    if stream.isatty():
        raise UsageError("INPUT -: stdin is a terminal; pipe audio into fxcli (... | fxcli ...)")
    return stream.buffer


def _read_full(stream: BinaryIO, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        b = stream.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def spool_stdin(folder: Path, raw: RawInput | None = None) -> Path:
    """Copy the audio on stdin to ``folder/stdin<ext>`` (the extension of the
    container :func:`sniff` recognised; ``.wav`` for ``raw`` PCM, given a header)
    and return its path. Memory stays within :data:`BLOCK_BYTES`. Data that is no
    audio, an empty or closed stdin and a terminal are :class:`UsageError`."""
    stream = _stdin()
    try:
        head = _read_full(stream, HEAD_BYTES)
        if not head:
            raise UsageError("INPUT -: stdin is empty (no audio)")
        ext = ".raw" if raw is not None else sniff(head)
        if ext is None:
            raise _not_audio(head)
        dest = folder / f"stdin{ext}"
        with open(dest, "wb") as f:
            f.write(head)
            while True:
                block = stream.read(BLOCK_BYTES)
                if not block:
                    break
                f.write(block)
    except OSError as exc:
        raise UsageError(f"INPUT -: cannot read stdin: {exc.strerror or exc}") from None
    if raw is None:
        return dest
    wav = folder / "stdin.wav"
    _raw_to_wav(dest, wav, raw)
    dest.unlink()
    return wav


def _raw_to_wav(src: Path, dest: Path, raw: RawInput) -> None:
    """Give raw PCM ``src`` a WAV header (same sample format: samples unchanged;
    signed 8-bit becomes WAV's unsigned 8-bit, the same values)."""
    import soundfile as sf

    out_sub = "PCM_U8" if raw.subtype == "PCM_S8" else raw.subtype
    width = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}.get(raw.subtype, 1)
    if src.stat().st_size < width * raw.channels:
        raise UsageError(
            f"INPUT -: raw PCM shorter than one frame ({raw.channels} ch x {width} bytes)"
        )
    dtype = "float64" if raw.subtype in ("PCM_32", "DOUBLE") else "float32"
    frames = max(1, BLOCK_BYTES // (width * raw.channels))
    with (
        sf.SoundFile(
            os.fsencode(src),
            samplerate=raw.rate,
            channels=raw.channels,
            subtype=raw.subtype,
            format="RAW",
            endian="LITTLE",
        ) as r,
        sf.SoundFile(
            os.fsencode(dest),
            "w",
            samplerate=raw.rate,
            channels=raw.channels,
            subtype=out_sub,
            format="WAV",
        ) as w,
    ):
        while True:
            block = r.read(frames, dtype=dtype, always_2d=True)
            if block.shape[0] == 0:
                break
            w.write(block)


def copy_to_fd(path: Path, fd: int) -> None:
    """Copy the file ``path`` to the descriptor ``fd`` (stdout) in blocks of
    :data:`BLOCK_BYTES`. A reader that went away raises :class:`BrokenPipeError`."""
    with open(path, "rb") as f:
        while True:
            block = f.read(BLOCK_BYTES)
            if not block:
                return
            view = memoryview(block)
            while view:
                n = os.write(fd, view)
                view = view[n:]
