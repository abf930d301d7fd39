"""Recovering the samples of a WAV file whose header undercounts them.

A recorder that crashes (or a writer that cannot seek back to its header) leaves
a WAV whose ``data`` chunk declares 0 bytes, or the size of the last header
update, while audio runs on to the end of the file. libsndfile then reports 0 (or
too few) frames, and an output of it would be empty or short. Like ffmpeg (which
reads a ``data`` chunk declared as 0 bytes to the end of the file), fxcli reads
such a file's samples to its last whole frame, and the result carries a note.

Recovered: a ``data`` chunk declared 0 bytes with at least one frame after it;
or one declared smaller than the bytes after it when the RIFF size also ends with
the ``data`` chunk (a header last updated mid-recording) and those bytes are not
chunks (a valid chunk sequence to the end, e.g. a ``LIST`` after ``data``, is
metadata, not lost audio) nor an ID3 tag. A RIFF size that covers the whole file
while ``data`` declares less is a different damage, read as libsndfile reads it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from fxcli.io.wavmeta import walk

__all__ = ["Recovered", "read_blocks", "recover"]


@dataclass(frozen=True)
class Recovered:
    """Where a recovered file's samples are: ``data_offset`` (bytes from the start
    of the file), ``frames`` whole frames to the end of the file, and the
    ``declared`` size of its ``data`` chunk in bytes; ``block_align``: bytes per frame."""

    data_offset: int
    frames: int
    declared: int
    block_align: int

    @property
    def note(self) -> str:
        return (
            f"recovered: the WAV header declares {self.declared} bytes of audio data; "
            f"read {self.frames} frames to the end of the file (as ffmpeg does)"
        )


def recover(path: Path, block_align: int, reported_frames: int) -> Recovered | None:
    """A :class:`Recovered` if ``path``'s header undercounts its samples (see the
    module docstring) and more than ``reported_frames`` (libsndfile's count) whole
    frames of ``block_align`` bytes follow its ``data`` header; else None."""
    if block_align < 1:
        return None
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            kind, chunks = walk(f, size)
            data = next((c for c in chunks if c.cid == b"data"), None)
            if not kind or data is None:
                return None
            frames = (size - data.body_at) // block_align
            if frames <= reported_frames:
                return None
            if data.size != 0:
                end = data.body_at + data.size
                if data.size == 0xFFFFFFFF or not data.complete or end >= size:
                    return None  # a placeholder (libsndfile reads to the end) or cut short
                f.seek(4)
                riff = int.from_bytes(f.read(4), "little")
                if kind != b"RIFF" or riff + 8 > end + (data.size & 1):
                    return None
                if _chunks_to_end(f, end + (data.size & 1), size):
                    return None
    except OSError:
        return None
    return Recovered(data.body_at, frames, data.size, block_align)


def _chunks_to_end(f: BinaryIO, pos: int, size: int) -> bool:
    """Whether the bytes from ``pos`` to ``size`` are chunks (printable ids, sizes
    that fit), possibly ending in an ID3 tag, not samples."""
    while pos + 8 <= size:
        f.seek(pos)
        hdr = f.read(8)
        if hdr[:3] in (b"TAG", b"ID3"):
            return True
        if not all(0x20 <= b < 0x7F for b in hdr[:4]):
            return False
        n = int.from_bytes(hdr[4:], "little")
        if pos + 8 + n > size:
            return False
        pos += 8 + n + (n & 1)
    f.seek(pos)
    return size - pos <= 1 or f.read(3) == b"TAG"


class _Window(io.RawIOBase):
    """A read-only view of ``length`` bytes of a file from ``start`` (for soundfile)."""

    def __init__(self, f: io.BufferedReader, start: int, length: int) -> None:
        self._f, self._start, self._len, self._pos = f, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        base = (0, self._pos, self._len)[whence]
        self._pos = max(0, min(self._len, base + pos))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self._len - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._start + self._pos)
        got = self._f.readinto(memoryview(b)[:n])
        self._pos += got
        return got


def read_blocks(
    path: Path,
    rec: Recovered,
    samplerate: int,
    channels: int,
    subtype: str,
    block_frames: int,
    dtype: str,
) -> Iterator[np.ndarray]:
    """Yield ``(channels, n)`` C-contiguous ``dtype`` blocks of the recovered samples
    (decoded by libsndfile as headerless little-endian data of ``subtype``).
    Raises soundfile's errors and OSError."""
    with open(path, "rb") as raw:
        window = _Window(raw, rec.data_offset, rec.frames * rec.block_align)
        with sf.SoundFile(
            window,
            samplerate=samplerate,
            channels=channels,
            subtype=subtype,
            format="RAW",
            endian="LITTLE",
        ) as f:
            while True:
                block = f.read(block_frames, dtype=dtype, always_2d=True)
                if block.shape[0] == 0:
                    return
                yield np.ascontiguousarray(block.T)
