"""Fast path for plain PCM / IEEE-float WAV files: locate, decode, encode.

libsndfile (through soundfile) reads 24-bit WAV at about a third of the speed of
the disk cache, and converting its ``(frames, channels)`` output to the engine's
``(channels, frames)`` layout costs another pass. For the plain formats this
module reads the raw ``data`` chunk with ``readinto`` into one reusable buffer
and decodes it straight into ``(channels, n)`` with the compiled core
(``wav_decode``, ``csrc/wav.cpp``); writing quantizes and packs PCM in one call
(``wav_encode_pcm``) and writes a canonical RIFF header.

What is handled (anything else returns ``None`` / is refused, and the caller
uses soundfile):

- reading: ``RIFF``/``RF64`` ``WAVE`` files whose ``fmt `` chunk is
  WAVE_FORMAT_PCM (16, 24, 32 bit), WAVE_FORMAT_IEEE_FLOAT (32, 64 bit) or
  WAVE_FORMAT_EXTENSIBLE with one of those sub-formats (valid bits equal to the
  container), ``block_align == channels * bytes``. The chunk walk is
  bounds-checked; a chunk running past the end of the file before ``fmt `` and
  ``data`` are both found, a duplicate ``fmt ``, an odd header, anything
  unexpected: ``None``. The frame count is ``min(data size, bytes to the end of
  the file) // block_align``, which is what libsndfile reports; the caller
  compares it with the probe's and falls back to soundfile on any mismatch.
- writing: PCM_16, PCM_24 and PCM_32 to a WAV container (the 44-byte header
  libsndfile writes for ``format="WAV"``: WAVE_FORMAT_PCM whatever the channel
  count, a pad byte after an odd-sized ``data`` chunk). FLOAT/DOUBLE outputs
  go through soundfile (libsndfile adds a ``PEAK`` chunk with a time stamp).
  Metadata kept from the input (:mod:`fxcli.io.wavmeta`) goes into the header:
  a WAVE_FORMAT_EXTENSIBLE ``fmt `` with the channel mask, then the chunks given
  (``LIST``/``INFO`` tags as libsndfile writes them, ``bext``, other ``LIST``)
  before ``data``; a ``JUNK`` chunk reserved for ``ds64`` when the file may pass
  4 GiB. The caller turns a file past the RIFF limit into RF64
  (:func:`fxcli.io.wavmeta.finish`).

Decoded values are exactly libsndfile's (``sf_read_float``/``sf_read_double``
with its default normalization): integer ``q`` becomes ``q / 2**(bits-1)``,
computed exactly in float64 and rounded once to the output dtype (exact for 16
and 24 bit in float32; for 32 bit in float32 it is the round-to-nearest of
``(float) q * 2**-31`` that libsndfile computes). Floats are copied (double to
float rounds to nearest, like a C cast).

Encoding equals :class:`fxcli.io.audio.Quantizer` followed by libsndfile's
packing: ``v = float64(y) * 2**(bits-1) [+ dither]``, ``q = rint(v)`` (half to
even), clipped to ``[-2**(bits-1), 2**(bits-1) - 1]`` and counted, stored as
little-endian two's complement of ``bits`` bits. NaN (which the engine never
hands over: it refuses non-finite output) is stored as 0.

Kernels run on the CPU with numpy arrays (this is the file layer; tensors on a
GPU are copied to the host before they get here), on the calling thread, and
release the GIL, so the engine's reader and writer threads overlap with compute.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fxcli.dsp.native import core
from fxcli.io.wavmeta import JUNK_RESERVE
from fxcli.io.writeback import EarlyWriteback

__all__ = [
    "WavLayout",
    "available",
    "locate",
    "read_blocks",
    "PcmWavWriter",
    "WRITE_SUBTYPES",
    "decode",
    "encode_pcm",
]

# (format tag after resolving EXTENSIBLE, bits) -> soundfile subtype
_READ_SUBTYPES = {
    (1, 16): "PCM_16",
    (1, 24): "PCM_24",
    (1, 32): "PCM_32",
    (3, 32): "FLOAT",
    (3, 64): "DOUBLE",
}
#: subtypes :class:`PcmWavWriter` writes, and their bytes per sample
WRITE_SUBTYPES = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4}
_KSDATAFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_MAX_FMT_BYTES = 1 << 16
_MAX_CHUNKS = 10_000


def available() -> bool:
    """Whether the fast path can run: always (its kernels are in the compiled core,
    which fxcli cannot import without). ``FXCLI_WAVFAST=0`` turns the path off, see
    :func:`fxcli.io.audio.fast_wav_enabled`."""
    return True


@dataclass(frozen=True)
class WavLayout:
    """Where a WAV file's samples are and how they are stored.

    ``frames``: whole frames present (``min(data size, file size - data_offset)
    // block_align``), the count libsndfile reports for the same file.
    """

    path: Path
    data_offset: int
    frames: int
    channels: int
    samplerate: int
    subtype: str
    bits: int
    is_float: bool

    @property
    def block_align(self) -> int:
        return self.channels * self.bits // 8


def _parse_fmt(body: bytes) -> tuple[int, int, int, int] | None:
    """``(tag, channels, samplerate, bits)`` for the supported encodings, else None."""
    if len(body) < 16:
        return None
    tag, channels, rate, _avg, align, bits = struct.unpack_from("<HHIIHH", body, 0)
    if tag == 0xFFFE:
        if len(body) < 40:
            return None
        cb_size, valid_bits, _mask = struct.unpack_from("<HHI", body, 16)
        guid = body[24:40]
        if cb_size < 22 or guid[2:] != _KSDATAFORMAT_TAIL:
            return None
        if valid_bits not in (0, bits):
            return None
        tag = struct.unpack_from("<H", guid, 0)[0]
    elif tag not in (1, 3):
        return None
    if (tag, bits) not in _READ_SUBTYPES or channels < 1 or rate < 1:
        return None
    if align != channels * bits // 8:
        return None
    return tag, channels, rate, bits


def locate(path: Path | str) -> WavLayout | None:
    """Walk a WAV file's chunks and return where its samples are, or ``None`` if the
    file is not a plain PCM/float RIFF or RF64 WAVE this module reads exactly."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            return _walk(f, size, path)
    except (OSError, struct.error):
        return None


def _walk(f: BinaryIO, size: int, path: Path) -> WavLayout | None:
    head = f.read(12)
    if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64"):
        return None
    rf64 = head[:4] == b"RF64"
    ds64_data: int | None = None
    fmt: tuple[int, int, int, int] | None = None
    data: tuple[int, int] | None = None  # (offset, size)
    pos = 12
    for n_chunk in range(_MAX_CHUNKS):
        if fmt is not None and data is not None:
            break
        if pos + 8 > size:
            return None
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8:
            return None
        cid, csize = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        body_at = pos + 8
        if rf64 and n_chunk == 0:
            if cid != b"ds64" or csize < 24 or body_at + csize > size:
                return None
            ds64_data = struct.unpack("<QQQ", f.read(24))[1]
        elif cid == b"fmt ":
            if fmt is not None or csize > _MAX_FMT_BYTES or body_at + csize > size:
                return None
            fmt = _parse_fmt(f.read(csize))
            if fmt is None:
                return None
        elif cid == b"data":
            if data is not None:
                return None
            if rf64 and csize == 0xFFFFFFFF:
                if ds64_data is None:
                    return None
                csize = ds64_data
            data = (body_at, csize)
            if fmt is not None:
                break
            if body_at + csize > size:  # cannot walk past a data chunk that runs off
                return None
        elif body_at + csize > size:
            return None
        pos = body_at + csize + (csize & 1)
    else:
        return None
    if fmt is None or data is None:
        return None
    tag, channels, rate, bits = fmt
    offset, nbytes = data
    align = channels * bits // 8
    frames = min(nbytes, max(size - offset, 0)) // align
    return WavLayout(
        path=path,
        data_offset=offset,
        frames=frames,
        channels=channels,
        samplerate=rate,
        subtype=_READ_SUBTYPES[(tag, bits)],
        bits=bits,
        is_float=tag == 3,
    )


# ---------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------


#: ``core.wav_decode``'s ``kind`` of each subtype, and its bytes per sample
_KIND = {"PCM_16": 0, "PCM_24": 1, "PCM_32": 2, "FLOAT": 3, "DOUBLE": 4}
_WIDTH = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def decode(raw: np.ndarray, subtype: str, channels: int, dtype: np.dtype | str) -> np.ndarray:
    """Decode interleaved little-endian samples (``raw``: uint8, whole frames) into a new
    ``(channels, frames)`` C-contiguous array of ``dtype`` (float32 or float64), with
    libsndfile's values (see the module docstring)."""
    width = _WIDTH[subtype]
    frames = raw.shape[0] // (width * channels)
    out = np.empty((channels, frames), dtype=dtype)
    if out.dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {out.dtype}")
    raw = np.ascontiguousarray(raw[: frames * width * channels], dtype=np.uint8)
    core.wav_decode(raw, _KIND[subtype], out)
    return out


def encode_pcm(
    y: np.ndarray, nbytes: int, out: np.ndarray, dither: np.ndarray | None = None
) -> int:
    """Quantize ``y`` ``(channels, n)`` float to ``nbytes``-byte little-endian PCM into
    ``out`` (uint8, at least ``n * channels * nbytes``), frame-interleaved.
    ``dither``: ``(n, channels)`` float64 added after scaling, or None.
    Returns the number of clipped samples."""
    if y.ndim != 2 or nbytes not in (2, 3, 4):
        raise ValueError(f"y must be (channels, n) and nbytes 2, 3 or 4; got {y.shape}, {nbytes}")
    if out.shape[0] < y.size * nbytes:
        raise ValueError("output buffer too small")
    y = np.ascontiguousarray(y)
    if y.dtype not in (np.float32, np.float64):
        y = y.astype(np.float64)
    if out.dtype != np.uint8 or out.ndim != 1 or not out.flags.c_contiguous:
        raise ValueError("out must be a contiguous 1-D uint8 array")
    if dither is not None:
        dither = np.ascontiguousarray(dither, dtype=np.float64)
        if dither.ndim != 2 or dither.shape[0] < y.shape[1] or dither.shape[1] < y.shape[0]:
            raise ValueError(f"dither must be (n, channels) = {y.shape[::-1]}, got {dither.shape}")
    return int(core.wav_encode_pcm(y, dither, nbytes, out))


# ---------------------------------------------------------------------------
# streaming read
# ---------------------------------------------------------------------------


def read_blocks(
    layout: WavLayout, block_frames: int, dtype: np.dtype | str
) -> Iterator[np.ndarray]:
    """Yield new ``(channels, n)`` C-contiguous ``dtype`` arrays of up to ``block_frames``
    frames until ``layout.frames`` are read or the file ends (a file cut short since
    :func:`locate` ends the stream at its last whole frame). Raises OSError."""
    if block_frames < 1:
        raise ValueError(f"block_frames must be >= 1, got {block_frames}")
    align = layout.block_align
    left = layout.frames
    buf = np.empty(min(block_frames, max(left, 1)) * align, dtype=np.uint8)
    with open(layout.path, "rb", buffering=0) as f:
        f.seek(layout.data_offset)
        while left > 0:
            want = min(block_frames, left) * align
            view = memoryview(buf)[:want]  # type: ignore[arg-type]
            got = 0
            while got < want:
                r = f.readinto(view[got:])
                if not r:
                    break
                got += r
            frames = got // align
            if frames == 0:
                return
            yield decode(buf[: frames * align], layout.subtype, layout.channels, dtype)
            left -= frames
            if got < want:
                return


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def riff_header(
    samplerate: int,
    channels: int,
    nbytes: int,
    data_bytes: int,
    *,
    channel_mask: int | None = None,
    chunks: bytes = b"",
    reserve_ds64: bool = False,
) -> bytes:
    """The header libsndfile writes for a ``format="WAV"`` PCM file (44 bytes), or
    with ``channel_mask`` the WAVE_FORMAT_EXTENSIBLE one of ``format="WAVEX"``
    (68 bytes); ``chunks`` (whole chunks) go between ``fmt `` and ``data``;
    ``reserve_ds64``: a ``JUNK`` chunk first, where RF64 puts ``ds64``. Sizes
    past 32 bits are written as 0xFFFFFFFF (the file is then made RF64)."""
    align = channels * nbytes
    pad = data_bytes & 1
    if channel_mask is None:
        fmt = struct.pack("<HHIIHH", 1, channels, samplerate, samplerate * align, align, 8 * nbytes)
    else:
        fmt = (
            struct.pack(
                "<HHIIHHHHI",
                0xFFFE,
                channels,
                samplerate,
                samplerate * align,
                align,
                8 * nbytes,
                22,
                8 * nbytes,
                channel_mask & 0xFFFFFFFF,
            )
            + struct.pack("<H", 1)
            + _KSDATAFORMAT_TAIL
        )
    junk = JUNK_RESERVE if reserve_ds64 else b""
    body = b"WAVE" + junk + b"fmt " + struct.pack("<I", len(fmt)) + fmt + chunks
    riff = min(len(body) + 8 + data_bytes + pad, 0xFFFFFFFF)
    data = min(data_bytes, 0xFFFFFFFF)
    return b"RIFF" + struct.pack("<I", riff) + body + b"data" + struct.pack("<I", data)


class PcmWavWriter:
    """Write a PCM_16/24/32 RIFF WAV file the way libsndfile does, faster.

    ``write(y, dither)`` quantizes and packs one ``(channels, n)`` float block and
    returns the number of clipped samples; :meth:`close` pads the ``data`` chunk to
    an even size and fills in the header sizes. The caller (``AtomicWriter``) owns
    the temporary name, fsync and rename, and makes a file past 4 GiB RF64
    (:func:`fxcli.io.wavmeta.finish`). ``channel_mask``: write a
    WAVE_FORMAT_EXTENSIBLE header with it; ``chunks``: whole chunks to put before
    ``data``; ``reserve_ds64``: reserve room for ``ds64`` (a file expected near 4 GiB
    then becomes RF64 without moving its samples).
    """

    def __init__(
        self,
        path: Path,
        samplerate: int,
        channels: int,
        subtype: str,
        *,
        channel_mask: int | None = None,
        chunks: bytes = b"",
        reserve_ds64: bool = False,
    ) -> None:
        if subtype not in WRITE_SUBTYPES:
            raise ValueError(f"subtype must be one of {sorted(WRITE_SUBTYPES)}, got {subtype!r}")
        if not (1 <= channels <= 0xFFFF) or not (1 <= samplerate * channels * 4 <= 0xFFFFFFFF):
            raise ValueError(f"unsupported WAV shape: {channels} channels at {samplerate} Hz")
        self.path = path
        self.samplerate = samplerate
        self.channels = channels
        self.nbytes = WRITE_SUBTYPES[subtype]
        self.channel_mask = channel_mask
        self.chunks = chunks
        self.reserve_ds64 = reserve_ds64
        self.data_bytes = 0
        self._buf = np.empty(0, dtype=np.uint8)
        self._f: BinaryIO | None = open(path, "xb", buffering=0)  # noqa: SIM115
        self._f.write(self._header())
        self._writeback = EarlyWriteback(self._f.fileno())

    def _header(self) -> bytes:
        return riff_header(
            self.samplerate,
            self.channels,
            self.nbytes,
            self.data_bytes,
            channel_mask=self.channel_mask,
            chunks=self.chunks,
            reserve_ds64=self.reserve_ds64,
        )

    def write(self, y: np.ndarray, dither: np.ndarray | None = None) -> int:
        assert self._f is not None
        if y.ndim != 2 or y.shape[0] != self.channels:
            raise ValueError(f"expected ({self.channels}, n) samples, got {y.shape}")
        need = y.shape[1] * self.channels * self.nbytes
        if self._buf.shape[0] < need:
            self._buf = np.empty(need, dtype=np.uint8)
        clipped = encode_pcm(y, self.nbytes, self._buf, dither)
        view = memoryview(self._buf)[:need]  # type: ignore[arg-type]
        done = 0
        while done < need:
            done += self._f.write(view[done:]) or 0
        self.data_bytes += need
        self._writeback.wrote(need)
        return clipped

    def close(self) -> None:
        """Finish the file (pad byte, header sizes) and close it."""
        if self._f is None:
            return
        f, self._f = self._f, None
        try:
            if self.data_bytes & 1:
                f.write(b"\x00")
            f.seek(0)
            f.write(self._header())
        finally:
            f.close()

    def abort(self) -> None:
        """Close without finishing (the caller removes the file)."""
        if self._f is not None:
            f, self._f = self._f, None
            f.close()
