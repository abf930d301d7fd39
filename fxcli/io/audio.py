"""Audio I/O: probing, streaming reads, and atomic writes that keep the input's format.

- Reads stream in blocks until the data ends (a header's frame count is never
  trusted for allocation).
- Writes go to a temporary file in the destination folder, are fsynced, then
  committed: renamed over the destination with ``replace=True`` (--overwrite),
  else linked to it only if the name is still free (no-replace: an output that
  appeared meanwhile, e.g. from another run, is never clobbered). On any failure
  (or interrupt) the temporary file is removed and an existing destination is
  left untouched. Temporary names carry the writer's PID; temporary files of
  dead processes are removed when a process first writes into their folder.
- Integer PCM is quantized here, not by libsndfile: samples are rounded,
  clipped at full scale and counted (SoX's "clipped N samples"), never wrapped.
  Optional TPDF dither is added before rounding.
- Plain PCM/float WAV files take a fast path (:mod:`fxcli.io.wavfast`: raw
  ``data`` chunk, compiled decode/encode) with the same samples and the same
  bytes as soundfile; anything it does not handle exactly, or any doubt about a
  header, goes through soundfile. ``FXCLI_WAVFAST=0`` turns it off.

Arrays at this layer are numpy ``(channels, frames)``; float32 or float64.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from fxcli.errors import AudioError
from fxcli.io.atomic import STALE_TEMP_AGE_S as STALE_TEMP_AGE_S
from fxcli.io.atomic import TEMP_MARK as TEMP_MARK
from fxcli.io.atomic import TEMP_NAME as TEMP_NAME
from fxcli.io.atomic import OutputExistsError as OutputExistsError
from fxcli.io.atomic import publish, sweep_dead_temps_once, temp_name, write_target
from fxcli.io.atomic import remove_dead_temps as remove_dead_temps
from fxcli.io.containers import OutputFormat as OutputFormat
from fxcli.io.formats import AUDIO_EXTENSIONS as AUDIO_EXTENSIONS
from fxcli.io.formats import FLOAT_SUBTYPES, PCM_BITS, WAV_FORMATS

if TYPE_CHECKING:
    from fxcli.io import wavfast, wavrecover
    from fxcli.io.carry import OutputMeta

#: files below this many samples (frames x channels) go through soundfile. 0: none
#: need to since the codec is in the compiled core (no numba load). Measured
#: (24-bit stereo, median of 15): the fast path is never slower, from 100 frames
#: (read 0.65 vs 0.73 ms, write 4.1 vs 8.1 ms) to 2**17 (read 1.6 vs 7.4 ms, write
#: 6.8 vs 30 ms); its first use in a process imports wavfast and the core, ~2-3 ms
#: once (the core alone ~0.7 ms, already loaded by any DSP kernel).
MIN_FAST_SAMPLES = 0


def fast_wav_enabled() -> bool:
    """Whether the WAV fast path may be used: not disabled by ``FXCLI_WAVFAST=0``
    (read at each call, so tests and benchmarks can switch it)."""
    if os.environ.get("FXCLI_WAVFAST", "1") == "0":
        return False
    from fxcli.io import wavfast

    return wavfast.available()


def sf_name(path: Path) -> str | bytes:
    """``path`` as soundfile should get it: its bytes on POSIX, so that names that are
    not UTF-8 (surrogate escapes) open the file they name (soundfile would encode a
    str strictly and fail)."""
    return str(path) if os.name == "nt" else os.fsencode(path)


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    text = msg[-1] if msg else type(exc).__name__
    # soundfile: "Error opening 'x.wav': Format not recognised." -> keep the reason
    if ": " in text and text.startswith("Error opening"):
        text = text.split(": ", 1)[1]
    return text.rstrip(".")


def _write_reason(exc: BaseException, folder: Path) -> str:
    """One line for a failed write: "no space left on device" when the disk is full
    (libsndfile reports only "System error"; OSError carries ENOSPC), else the error."""
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    free = None
    if not full:
        try:
            st = os.statvfs(folder)
            free = st.f_bavail * st.f_frsize
        except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
            free = None
        full = free is not None and free < _DISK_FULL_BYTES
    if full:
        left = "" if free is None else f", {free} bytes free"
        return f"No space left on device ({folder}{left})"
    return _one_line(exc)


# Below this many free bytes a failed write is reported as a full disk.
_DISK_FULL_BYTES = 1 << 20


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says. ``frames`` may be wrong for damaged files."""

    path: Path
    samplerate: int
    channels: int
    frames: int
    format: str
    subtype: str
    #: WAV family: the frames the ``data`` chunk declares when more than ``frames``
    #: are present (a truncated file, read to where its data ends); else None
    declared_frames: int | None = None
    #: WAV family: where the samples are when the header undercounts them (a crashed
    #: recorder's 0-byte ``data`` chunk; ``frames`` then counts to the end of the
    #: file), see :mod:`fxcli.io.wavrecover`; else None
    recovered: wavrecover.Recovered | None = None

    @property
    def compute_dtype(self) -> np.dtype:
        """float64 where float32 would lose bits (32-bit int, double), else float32."""
        return np.dtype(np.float64 if self.subtype in ("DOUBLE", "PCM_32") else np.float32)


def probe(path: Path) -> AudioInfo:
    """Read a file's header; raise :class:`AudioError` with the reason if unreadable."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AudioError("no such file") from None
    except OSError as exc:  # symlink loop, permission, name too long
        raise AudioError(f"cannot open: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise AudioError("is a directory, not an audio file")
    if not stat.S_ISREG(mode):
        # FIFOs, sockets, devices: opening a FIFO blocks until a writer comes
        raise AudioError("not a regular file (FIFO, socket or device); skipped")
    if path.stat().st_size == 0:
        raise AudioError("empty file (0 bytes)")
    try:
        with sf.SoundFile(sf_name(path)) as f:
            info = AudioInfo(
                path, int(f.samplerate), int(f.channels), int(f.frames), f.format, f.subtype
            )
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(f"cannot read audio: {_one_line(exc)}") from None
    if info.channels < 1 or info.samplerate < 1:
        raise AudioError(f"invalid header: {info.channels} channels at {info.samplerate} Hz")
    if info.format == "FLAC" and info.frames >= 2**62 and _flac_metadata_only(path):
        # a FLAC stream of zero samples (STREAMINFO's total 0 means "unknown" and
        # libsndfile reports 2**63-1 frames, then fails to seek): it is empty
        info = dataclasses.replace(info, frames=0)
    if info.format in WAV_FORMATS and info.subtype in _SAMPLE_BYTES:
        from fxcli.io.wavrecover import recover

        rec = recover(path, _SAMPLE_BYTES[info.subtype] * info.channels, info.frames)
        if rec is not None:
            return dataclasses.replace(info, frames=rec.frames, recovered=rec)
    if info.format in WAV_FORMATS:
        declared = _declared_data_bytes(path)
        if declared and info.frames == 0:
            raise AudioError(
                f"truncated: the header declares {declared} bytes of audio data "
                "but the file ends before the first frame"
            )
        width = _SAMPLE_BYTES.get(info.subtype)
        if declared and width and declared // (width * info.channels) > info.frames:
            info = dataclasses.replace(info, declared_frames=declared // (width * info.channels))
    return info


_SAMPLE_BYTES = {
    "PCM_U8": 1,
    "PCM_S8": 1,
    "ULAW": 1,
    "ALAW": 1,
    "PCM_16": 2,
    "PCM_24": 3,
    "PCM_32": 4,
    "FLOAT": 4,
    "DOUBLE": 8,
}


def _flac_metadata_only(path: Path) -> bool:
    """Whether a FLAC file ends right after its metadata blocks (no audio frame)."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
            if f.read(1):
                return False
    except OSError:
        return False
    if data[:4] != b"fLaC":
        return False
    pos = 4
    while pos + 4 <= len(data):
        last = data[pos] & 0x80
        pos += 4 + int.from_bytes(data[pos + 1 : pos + 4], "big")
        if last:
            return pos == len(data)
    return False


def empty_flac(samplerate: int, channels: int, bits: int) -> bytes:
    """A FLAC stream of zero samples: ``fLaC`` and one STREAMINFO block (total samples
    0, MD5 unset). libsndfile writes nothing at all (a 0-byte file) for an empty FLAC."""
    v = (samplerate << 44) | ((channels - 1) << 41) | ((bits - 1) << 36)
    info = (4096).to_bytes(2, "big") * 2 + bytes(6) + v.to_bytes(8, "big") + bytes(16)
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info


def _declared_data_bytes(path: Path) -> int | None:
    """The size a WAV/RF64 file's ``data`` chunk declares (None: not found, or the
    0xFFFFFFFF placeholder of a writer that could not seek back)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64"):
        return None
    pos = 12
    ds64: int | None = None
    while pos + 8 <= len(head):
        cid = head[pos : pos + 4]
        size = int.from_bytes(head[pos + 4 : pos + 8], "little")
        if cid == b"ds64" and pos + 24 <= len(head) - 8:
            ds64 = int.from_bytes(head[pos + 16 : pos + 24], "little")
        if cid == b"data":
            if size == 0xFFFFFFFF:
                return ds64 if head[:4] == b"RF64" else None
            return size
        pos += 8 + size + (size & 1)
    return None


def fast_layout(info: AudioInfo) -> wavfast.WavLayout | None:
    """The fast-path layout of ``info``'s file, or None where soundfile must read it:
    not a WAV, not a plain PCM/float encoding, or any disagreement with what
    libsndfile reported (subtype, channels, rate, frame count)."""
    if info.format not in WAV_FORMATS or info.frames * info.channels < MIN_FAST_SAMPLES:
        return None
    if not fast_wav_enabled():
        return None
    from fxcli.io import wavfast

    lay = wavfast.locate(info.path)
    if lay is None or (lay.subtype, lay.channels, lay.samplerate, lay.frames) != (
        info.subtype,
        info.channels,
        info.samplerate,
        info.frames,
    ):
        return None
    return lay


def read_blocks(info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    """Yield ``(channels, n)`` C-contiguous arrays in ``info.compute_dtype`` until the data ends."""
    dtype = "float64" if info.compute_dtype == np.float64 else "float32"
    if info.frames == 0:  # nothing to read (and an empty FLAC cannot even be seeked)
        return
    if info.recovered is not None:
        from fxcli.io import wavrecover

        try:
            yield from wavrecover.read_blocks(
                info.path,
                info.recovered,
                info.samplerate,
                info.channels,
                info.subtype,
                block_frames,
                dtype,
            )
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(f"read failed: {_one_line(exc)}") from None
        return
    lay = fast_layout(info)
    if lay is not None:
        from fxcli.io import wavfast

        try:
            yield from wavfast.read_blocks(lay, block_frames, dtype)
        except OSError as exc:
            raise AudioError(f"read failed: {_one_line(exc)}") from None
        return
    try:
        with sf.SoundFile(sf_name(info.path)) as f:
            while True:
                block = f.read(block_frames, dtype=dtype, always_2d=True)
                if block.shape[0] == 0:
                    return
                yield np.ascontiguousarray(block.T)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"read failed: {_one_line(exc)}") from None


def output_format(
    info: AudioInfo,
    fmt: str,
    subtype: str,
    preset_subtype: str,
    dest: Path | None = None,
) -> OutputFormat:
    """Resolve the output container/subtype (rules: :mod:`fxcli.io.containers`):
    ``--format`` (``fmt``) or else the name ``dest`` decides the container;
    ``--subtype`` beats the preset's ``output.subtype``, which beats the input's own
    subtype. Never silently 16-bit. Raises :class:`AudioError` (one line)."""
    from fxcli.errors import UsageError
    from fxcli.io.containers import choose

    try:
        return choose(
            in_container=info.format,
            in_subtype=info.subtype,
            dest=dest,
            fmt=fmt,
            subtype=subtype,
            preset_subtype=preset_subtype,
            in_ext=info.path.suffix,
        )
    except UsageError as exc:
        raise AudioError.wrapping(exc) from None


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
        self.seed = seed  # the generator is made at the first draw (numpy.random: ~5 ms)
        self.clipped = 0
        self._rng: np.random.Generator | None = None
        self._pending = np.empty((0, 0))  # drawn, not yet used dither (frames, channels)

    def noise(self, frames: int, channels: int) -> np.ndarray | None:
        """The TPDF dither for the next ``frames`` (``(frames, channels)`` float64, in
        LSBs), or None without dither.

        The generator is drawn in fixed blocks of :attr:`DITHER_BLOCK` frames, so the
        dither of a frame depends on its position in the file only, not on how the
        output was split into blocks: chunked output equals whole-file output with
        dither too (the first GPU run, 2026-12-04, found CUDA's one-chunk output 2 LSB
        away from the CPU's 10 s chunks at 16 bits because the draws followed the
        block sizes)."""
        if self.dither != "tpdf":
            return None
        parts = []
        need = frames
        while need > 0:
            if self._pending.shape[0] == 0 or self._pending.shape[1] != channels:
                if self._rng is None:
                    self._rng = np.random.default_rng(self.seed)
                shape = (self.DITHER_BLOCK, channels)
                self._pending = self._rng.random(shape) - self._rng.random(shape)
            take = self._pending[:need]
            self._pending = self._pending[need:]
            parts.append(take)
            need -= take.shape[0]
        if not parts:
            return np.zeros((0, channels))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    DITHER_BLOCK = 1 << 16

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
        d = self.noise(*v.shape)
        if d is not None:
            v += d
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
    ``replace=False``: :meth:`commit` raises :class:`OutputExistsError` (and publishes
    nothing) when ``dest`` exists by then (see :func:`commit_no_replace`).

    PCM_16/24/32 WAV outputs are written by :class:`fxcli.io.wavfast.PcmWavWriter`
    (same bytes as soundfile). A WAV output whose RIFF size passes 4 GiB becomes
    RF64 (:func:`fxcli.io.wavmeta.finish`; :attr:`rf64` says so). ``frames_hint``:
    the expected length; below :data:`MIN_FAST_SAMPLES` samples soundfile writes the
    file. ``meta``: tags and WAV chunks kept from the input (:mod:`fxcli.io.carry`).
    With ``replace`` a symlink ``dest`` is written through to its target
    (:attr:`target`), and the replaced file's mode and owner are kept
    (:func:`fxcli.io.atomic.publish`).
    """

    def __init__(
        self,
        dest: Path,
        samplerate: int,
        channels: int,
        out: OutputFormat,
        dither: str = "none",
        *,
        frames_hint: int | None = None,
        replace: bool = True,
        meta: OutputMeta | None = None,
    ) -> None:
        self.dest = dest
        #: the file written: ``dest``, or a symlink's target when replacing (in place)
        self.target = write_target(dest) if replace else dest
        self.tmp = temp_name(self.target)
        self.replace = replace
        #: temporary files of dead runs removed from the folder on entering (see
        #: :func:`sweep_dead_temps_once`)
        self.stale_removed = 0
        self.quantizer = Quantizer(out.subtype, dither)
        self._file: sf.SoundFile | None = None
        self._fast: wavfast.PcmWavWriter | None = None
        self._args = (samplerate, channels, out.subtype, out.format)
        self._codec = {"compression_level": out.compression_level, "bitrate_mode": out.bitrate_mode}
        self._frames_hint = frames_hint
        self.frames = 0
        self.meta = meta
        #: whether the published file is RF64 (a WAV past the RIFF limit)
        self.rf64 = False
        #: what the writer could not keep (tags libsndfile refused)
        self.notes: list[str] = []

    def _use_fast(self) -> bool:
        sr, ch, subtype, fmt = self._args
        if fmt != "WAV":
            return False
        if self._frames_hint is not None and self._frames_hint * ch < MIN_FAST_SAMPLES:
            return False
        if not fast_wav_enabled():
            return False
        from fxcli.io import wavfast

        return subtype in wavfast.WRITE_SUBTYPES and ch <= 0xFFFF and sr * ch * 4 <= 0xFFFFFFFF

    def __enter__(self) -> AtomicWriter:
        sr, ch, subtype, fmt = self._args
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.stale_removed = sweep_dead_temps_once(self.target.parent)
            if self._use_fast():
                from fxcli.io import wavfast
                from fxcli.io.carry import fast_header

                mask, chunks, reserve = fast_header(self.meta, self._expected_bytes())
                self._fast = wavfast.PcmWavWriter(
                    self.tmp,
                    sr,
                    ch,
                    subtype,
                    channel_mask=mask,
                    chunks=chunks,
                    reserve_ds64=reserve,
                )
            else:
                from fxcli.io.carry import sf_container

                self._file = sf.SoundFile(
                    sf_name(self.tmp),
                    "w",
                    samplerate=sr,
                    channels=ch,
                    subtype=subtype,
                    format=sf_container(fmt, self.meta, self._expected_bytes()),
                    **{k: v for k, v in self._codec.items() if v is not None},
                )
                if self.meta is not None and self.meta.tags:
                    from fxcli.io.tags import apply_tags

                    refused = apply_tags(self._file, self.meta.tags)
                    if refused:
                        self.notes.append(f"tags not kept: {', '.join(refused)} (refused)")
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            self._cleanup()
            raise AudioError(f"cannot write {self.dest}: {_one_line(exc)}") from None
        return self

    @property
    def clipped(self) -> int:
        return self.quantizer.clipped

    def _expected_bytes(self) -> int | None:
        """The sample bytes ``frames_hint`` frames take (None: unknown length)."""
        width = _SAMPLE_BYTES.get(self._args[2])
        if self._frames_hint is None or width is None:
            return None
        return self._frames_hint * self._args[1] * width

    def write(self, y: np.ndarray) -> None:
        """Append a ``(channels, n)`` float block."""
        try:
            if self._fast is not None:
                noise = self.quantizer.noise(y.shape[-1], y.shape[0])
                self.quantizer.clipped += self._fast.write(y, noise)
            else:
                assert self._file is not None
                self._file.write(self.quantizer(y))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            reason = _write_reason(exc, self.dest.parent)
            raise AudioError(f"write failed for {self.dest}: {reason}") from None
        self.frames += y.shape[-1]

    def commit(self) -> None:
        assert self._file is not None or self._fast is not None
        try:
            sr, ch, subtype, fmt = self._args
            fast = self._fast is not None
            if self._fast is not None:
                self._fast.close()
                self._fast = None
            else:
                assert self._file is not None
                self._file.close()
                self._file = None
                if fmt == "FLAC" and self.frames == 0 and self.tmp.stat().st_size == 0:
                    self.tmp.write_bytes(empty_flac(sr, ch, PCM_BITS.get(subtype, 16)))
            width = _SAMPLE_BYTES.get(subtype)
            if fmt in WAV_FORMATS and width is not None:
                from fxcli.io import wavmeta

                meta = None if fast else self.meta
                self.rf64 = wavmeta.finish(
                    self.tmp,
                    self.frames * ch * width,
                    self.frames,
                    channel_mask=meta.channel_mask if meta is not None else None,
                    trailing=meta.chunks if meta is not None else b"",
                )
            publish(self.tmp, self.target, replace=self.replace)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            reason = _write_reason(exc, self.dest.parent)
            raise AudioError(f"cannot finish {self.dest}: {reason}") from None

    def _cleanup(self) -> None:
        if self._fast is not None:
            with contextlib.suppress(Exception):
                self._fast.abort()
            self._fast = None
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError, OSError):
            self.tmp.unlink()

    def __exit__(self, *exc: object) -> None:
        self._cleanup()
