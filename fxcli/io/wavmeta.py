"""WAV header fidelity: the chunks of a RIFF/RF64 WAVE file beyond its samples.

What an output keeps of a WAV input (see :mod:`fxcli.io.carry`):

- the WAVE_FORMAT_EXTENSIBLE channel mask (``dwChannelMask``: 5.1 side stays 5.1
  side), where the output has the input's channel count;
- the Broadcast WAV ``bext`` chunk (EBU Tech 3285; a fixed 602-byte layout and a
  free coding history), parsed and written here because libsndfile's
  SFC_GET/SET_BROADCAST_INFO is not exposed by soundfile. Its time reference counts
  samples at the file's rate, so it is rescaled when the chain resamples; the
  loudness fields of a version 2 ``bext`` describe the input's audio and are reset
  to "not set" (0x7FFF) since the output's loudness differs;
- ``LIST`` chunks other than ``INFO`` (INFO holds the tags, which libsndfile reads and
  writes itself: :mod:`fxcli.io.tags`), copied as they are.

And RF64 (EBU Tech 3306): a RIFF header's sizes are 32-bit, so a WAV output whose
RIFF size would pass :data:`RIFF_MAX_BYTES` is turned into RF64 when it is finished
(:func:`finish`): in place where a ``JUNK`` chunk was reserved for the ``ds64``
chunk (:data:`JUNK_RESERVE`, written when the expected size is near the limit), else
by moving the samples 36 bytes up. Never a RIFF header that readers stop at 4 GiB.

Sizes are bytes; sample counts are frames at the file's rate.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "Bext",
    "JUNK_RESERVE",
    "RIFF_MAX_BYTES",
    "WavMeta",
    "chunk",
    "finish",
    "info_list",
    "read_wav_meta",
    "walk",
]

#: the largest RIFF size (file size - 8) a WAV output keeps a RIFF header for; past
#: it the file becomes RF64. Tests lower it to exercise the switch without 4 GiB.
RIFF_MAX_BYTES = 0xFFFFFFFF
#: a ``JUNK`` chunk the size of a ``ds64`` chunk, reserved right after ``WAVE`` in
#: outputs expected near :data:`RIFF_MAX_BYTES` so they can become RF64 in place
JUNK_RESERVE = b"JUNK" + struct.pack("<I", 28) + bytes(28)
#: the 32-bit size field RF64 puts in ``RIFF`` and ``data`` (the real ones are in ds64)
_RF64_SIZE = 0xFFFFFFFF
_MAX_CHUNKS = 10_000
#: chunks larger than this are not copied (a damaged size, not metadata)
_MAX_META_BYTES = 1 << 24
#: libsndfile's INFO ids of the tags it writes to WAV, in fxcli's tag order
INFO_IDS = {
    "title": b"INAM",
    "copyright": b"ICOP",
    "software": b"ISFT",
    "artist": b"IART",
    "comment": b"ICMT",
    "date": b"ICRD",
    "album": b"IPRD",
    "tracknumber": b"ITRK",
    "genre": b"IGNR",
}


def chunk(cid: bytes, body: bytes) -> bytes:
    """A RIFF chunk: id, little-endian size, body and a pad byte if the size is odd."""
    return cid + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def info_list(tags: dict[str, str]) -> bytes:
    """The ``LIST``/``INFO`` chunk of ``tags`` (names of :data:`INFO_IDS`, others
    ignored) as libsndfile writes it: each value NUL-terminated, padded to an even
    size, the padding counted in the sub-chunk's size; ``b""`` when none apply."""
    body = b""
    for name, cid in INFO_IDS.items():
        value = tags.get(name)
        if not value:
            continue
        raw = value.encode("utf-8") + b"\x00"
        raw += b"\x00" * (len(raw) & 1)
        body += cid + struct.pack("<I", len(raw)) + raw
    return chunk(b"LIST", b"INFO" + body) if body else b""


@dataclass(frozen=True)
class Chunk:
    """One chunk of a WAVE file: its id, where its body starts and its size (for an
    RF64 ``data`` chunk the size from ``ds64``); ``size`` may run past the end of a
    damaged file (``complete`` is then False)."""

    cid: bytes
    body_at: int
    size: int
    complete: bool = True


def walk(f: BinaryIO, size: int) -> tuple[bytes, list[Chunk]]:
    """``(b"RIFF" | b"RF64", chunks)`` of a WAVE file open for binary reading of
    ``size`` bytes, in file order; ``(b"", [])`` if it is not one. The walk stops at a
    chunk that runs past the end of the file (returned with ``complete=False``)."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return b"", []
    kind = head[:4]
    out: list[Chunk] = []
    ds64_data: int | None = None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > size:
            break
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8:
            break
        cid, n = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        if kind == b"RF64" and cid == b"ds64" and n >= 24:
            ds64_data = struct.unpack("<QQQ", f.read(24))[1]
        if cid == b"data" and kind == b"RF64" and n == _RF64_SIZE and ds64_data is not None:
            n = ds64_data
        body = pos + 8
        complete = body + n <= size
        out.append(Chunk(cid, body, n, complete))
        if not complete:
            break
        pos = body + n + (n & 1)
    return kind, out


# ---------------------------------------------------------------------------
# bext
# ---------------------------------------------------------------------------

_BEXT = struct.Struct("<256s32s32s10s8sIIH64s5h180s")  # 602 bytes
#: a loudness field of bext version 2 that holds no value
LOUDNESS_UNSET = 0x7FFF


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1")


@dataclass(frozen=True)
class Bext:
    """A Broadcast WAV ``bext`` chunk (EBU Tech 3285 v0-v2). Text fields are ASCII
    (read as latin-1); ``time_reference``: the first sample's count of samples since
    midnight, at the file's sample rate; ``loudness``: the five v2 loudness fields in
    hundredths (LU, LUFS, dBTP), :data:`LOUDNESS_UNSET` where absent."""

    description: str = ""
    originator: str = ""
    originator_reference: str = ""
    origination_date: str = ""
    origination_time: str = ""
    time_reference: int = 0
    version: int = 0
    umid: bytes = bytes(64)
    loudness: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    reserved: bytes = field(default=bytes(180), repr=False)
    coding_history: bytes = b""

    @classmethod
    def from_bytes(cls, body: bytes) -> Bext | None:
        """Parse a ``bext`` chunk body; None if shorter than the fixed 602 bytes."""
        if len(body) < _BEXT.size:
            return None
        v = _BEXT.unpack_from(body, 0)
        return cls(
            description=_text(v[0]),
            originator=_text(v[1]),
            originator_reference=_text(v[2]),
            origination_date=_text(v[3]),
            origination_time=_text(v[4]),
            time_reference=v[5] | (v[6] << 32),
            version=v[7],
            umid=v[8],
            loudness=tuple(v[9:14]),  # type: ignore[arg-type]
            reserved=v[14],
            coding_history=body[_BEXT.size :],
        )

    def to_bytes(self) -> bytes:
        """The chunk body (without id and size)."""

        def enc(s: str, n: int) -> bytes:
            return s.encode("latin-1", "replace")[:n]

        return (
            _BEXT.pack(
                enc(self.description, 256),
                enc(self.originator, 32),
                enc(self.originator_reference, 32),
                enc(self.origination_date, 10),
                enc(self.origination_time, 8),
                self.time_reference & 0xFFFFFFFF,
                (self.time_reference >> 32) & 0xFFFFFFFF,
                self.version,
                self.umid[:64],
                *self.loudness,
                self.reserved[:180],
            )
            + self.coding_history
        )

    def for_output(self, in_rate: int, out_rate: int) -> Bext:
        """This chunk as an output of the chain describes it: the time reference
        rescaled to ``out_rate`` (rounded), v2 loudness fields reset to unset."""
        tr = self.time_reference
        if in_rate != out_rate and in_rate > 0:
            tr = (tr * out_rate + in_rate // 2) // in_rate
        loud = self.loudness if self.version < 2 else (LOUDNESS_UNSET,) * 5
        return replace(self, time_reference=tr, loudness=loud)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WavMeta:
    """What a WAV file holds besides samples and tags: ``channel_mask`` (None: not
    WAVE_FORMAT_EXTENSIBLE), ``bext``, and ``lists``: the bodies of its ``LIST``
    chunks other than ``INFO``, in file order."""

    channel_mask: int | None = None
    bext: Bext | None = None
    lists: tuple[bytes, ...] = ()

    def __bool__(self) -> bool:
        return self.channel_mask is not None or self.bext is not None or bool(self.lists)


def read_wav_meta(path: Path | str) -> WavMeta:
    """The :class:`WavMeta` of a RIFF/RF64 WAVE file (empty for anything else, or
    for chunks it cannot read: a damaged header never fails a run here)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            kind, chunks = walk(f, size)
            mask = None
            bext = None
            lists: list[bytes] = []
            for c in chunks:
                if not c.complete or c.size > _MAX_META_BYTES:
                    continue
                if c.cid == b"fmt " and c.size >= 24:
                    f.seek(c.body_at)
                    body = f.read(c.size)
                    if struct.unpack_from("<H", body, 0)[0] == 0xFFFE:
                        mask = struct.unpack_from("<I", body, 20)[0]
                elif c.cid == b"bext" and bext is None:
                    f.seek(c.body_at)
                    bext = Bext.from_bytes(f.read(c.size))
                elif c.cid == b"LIST" and c.size >= 4:
                    f.seek(c.body_at)
                    body = f.read(c.size)
                    if body[:4] != b"INFO":
                        lists.append(body)
    except (OSError, struct.error):
        return WavMeta()
    if not kind:
        return WavMeta()
    return WavMeta(mask, bext, tuple(lists))


# ---------------------------------------------------------------------------
# finishing an output: channel mask, trailing chunks, RF64
# ---------------------------------------------------------------------------


def finish(
    path: Path,
    data_bytes: int,
    frames: int,
    *,
    channel_mask: int | None = None,
    trailing: bytes = b"",
) -> bool:
    """Finish a WAV file a writer has closed, holding ``data_bytes`` bytes of samples
    (``frames`` frames) in its ``data`` chunk, whatever its header says (libsndfile
    writes the sizes modulo 2**32 past 4 GiB): set the ``fmt `` chunk's channel mask
    (WAVE_FORMAT_EXTENSIBLE only), append the chunks ``trailing`` after the samples,
    and turn the file into RF64 if its RIFF size passes :data:`RIFF_MAX_BYTES`.
    Returns whether the file is RF64. Raises OSError."""
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        kind, chunks = _head_chunks(f, size)
        data = next((c for c in chunks if c.cid == b"data"), None)
        if not kind or data is None:
            raise OSError(f"not a WAV file written by fxcli: {path}")
        if channel_mask is not None:
            fmt = next((c for c in chunks if c.cid == b"fmt "), None)
            if fmt is not None and fmt.size >= 24:
                f.seek(fmt.body_at)
                if struct.unpack("<H", f.read(2))[0] == 0xFFFE:
                    f.seek(fmt.body_at + 20)
                    f.write(struct.pack("<I", channel_mask & 0xFFFFFFFF))
        end = data.body_at + data_bytes + (data_bytes & 1)
        if trailing:
            f.truncate(end)
            f.seek(end)
            f.write(trailing)
            end += len(trailing)
        else:
            end = max(end, size)
        if kind == b"RF64":
            _write_ds64(f, end, data_bytes, frames)
            return True
        if end - 8 <= RIFF_MAX_BYTES:
            if trailing:
                f.seek(4)
                f.write(struct.pack("<I", end - 8))
            return False
        first = chunks[0] if chunks else None
        if first is None or first.cid != b"JUNK" or first.size != 28:
            _shift_up(f, 12, end, len(JUNK_RESERVE))
            end += len(JUNK_RESERVE)
            data = replace(data, body_at=data.body_at + len(JUNK_RESERVE))
        f.seek(0)
        f.write(b"RF64" + struct.pack("<I", _RF64_SIZE))
        f.seek(12)
        f.write(JUNK_RESERVE)
        f.seek(12)
        f.write(b"ds64")
        _write_ds64(f, end, data_bytes, frames)
        f.seek(data.body_at - 4)
        f.write(struct.pack("<I", _RF64_SIZE))
    return True


def _head_chunks(f: BinaryIO, size: int) -> tuple[bytes, list[Chunk]]:
    """The chunks up to and including ``data`` (whose declared size may be wrong)."""
    kind, chunks = walk(f, size)
    for k, c in enumerate(chunks):
        if c.cid == b"data":
            return kind, chunks[: k + 1]
    return kind, chunks


def _write_ds64(f: BinaryIO, end: int, data_bytes: int, frames: int) -> None:
    """Fill the ``ds64`` chunk at offset 12: RIFF size, data size, sample count."""
    f.seek(16)
    f.write(struct.pack("<IQQQI", 28, end - 8, data_bytes, frames, 0))


def _shift_up(f: BinaryIO, start: int, end: int, by: int, block: int = 1 << 22) -> None:
    """Move bytes ``[start, end)`` up by ``by`` bytes, in place, from the end down."""
    pos = end
    while pos > start:
        n = min(block, pos - start)
        pos -= n
        f.seek(pos)
        buf = f.read(n)
        f.seek(pos + by)
        f.write(buf)


def chunks_of(meta: WavMeta, bext: Bext | None) -> bytes:
    """The ``bext`` and non-INFO ``LIST`` chunks of an output, in that order."""
    out = chunk(b"bext", bext.to_bytes()) if bext is not None else b""
    return out + b"".join(chunk(b"LIST", body) for body in meta.lists)
