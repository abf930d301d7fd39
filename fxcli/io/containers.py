"""Which container and codec an output file is written in, and how a lossy codec is set.

The output's **name decides the container**: its extension is looked up in
:data:`fxcli.io.formats.EXTENSION_CONTAINERS` (``.wav`` WAV, ``.flac`` FLAC,
``.aiff``/``.aif`` AIFF, ``.ogg`` OGG Vorbis, ``.opus`` OGG Opus, ``.mp3`` MPEG
layer III, ``.w64``, ``.rf64``, ``.caf``, ``.au``). A name whose extension is audio
that no writer here produces (``.m4a``, ``.aac``, ...), or a container the installed
libsndfile cannot write (MP3 needs libsndfile >= 1.1), is refused before any work
(:func:`check_output_name`). ``--format`` picks the container of folder runs and
must agree with an OUTPUT file's name.

The **subtype** (codec or sample format) of an output, first that applies
(:func:`choose_subtype`):

1. ``--subtype``: must be one the container holds; the error lists exactly those.
2. the preset's ``output.subtype``, where the container holds it (else the rules
   below apply, and the file gets a note saying so: the bundled ``dataset`` preset's
   PCM_16 over an MP3 input written as MP3 keeps MPEG layer III).
3. the input's own subtype, where the container is the input's own, or the input's
   is linear PCM/float that the container holds.
4. the codec the name implies (``.ogg`` Vorbis, ``.opus`` Opus, ``.mp3`` layer III).
5. a linear input the container cannot hold (FLOAT or PCM_32 into FLAC) is refused
   (the file fails, naming the subtypes allowed), never silently downgraded;
   decoded lossy or companded inputs become PCM_24 (MP3 into WAV or FLAC).

**Lossy outputs** (Vorbis, Opus, MPEG) are set through libsndfile's compression
level (0 best .. 1 smallest) and, for MPEG, its bitrate mode
(:func:`lossy_encoding`): ``--quality Q`` (0..1, 1 best) is level ``1 - Q``;
``--bitrate KBPS`` is turned into the level that gives that bitrate (MPEG: the
legal rate at or above it, constant bitrate unless ``--bitrate-mode`` says
otherwise). Without either, the target is the input's bitrate where the input is
lossy (estimated from its size and duration), else :data:`DEFAULT_KBPS` per
channel: never silently a low bitrate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

from fxcli.errors import AudioError, UsageError
from fxcli.io.formats import (
    CONTAINER_SUBTYPES,
    EXTENSION_CODECS,
    EXTENSION_CONTAINERS,
    FORMAT_EXTENSIONS,
    LINEAR_SUBTYPES,
    LOSSY_SUBTYPES,
    UNWRITABLE_EXTENSIONS,
)

#: bitrate modes ``--bitrate-mode`` accepts (libsndfile's, MPEG outputs only)
BITRATE_MODES = ("constant", "variable", "average")
#: default bitrate of lossy outputs of lossless inputs, kbps per channel (a stereo
#: MP3 at 320, Vorbis at 256, Opus at 192 kbps)
DEFAULT_KBPS = {"MPEG_LAYER_III": 160.0, "VORBIS": 128.0, "OPUS": 96.0}
#: sample rates the lossy encoders of libsndfile take
CODEC_RATES = {
    "OPUS": (8000, 12000, 16000, 24000, 48000),
    "MPEG_LAYER_III": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
}
#: channel limits of the lossy encoders
CODEC_MAX_CHANNELS = {"MPEG_LAYER_III": 2, "OPUS": 255, "VORBIS": 255}

# MPEG layer III: the legal bitrates (kbps) by the version a sample rate implies;
# libsndfile maps compression level L to max - L * (max - min), then LAME takes the
# nearest legal rate (measured with libsndfile 1.2.2)
_MPEG1 = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2 = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MPEG25 = (8, 16, 24, 32, 40, 48, 56, 64)
# libsndfile's Opus: per channel 256 kbps at level 0 down to 6 kbps at level 1
_OPUS_MAX, _OPUS_MIN = 256.0, 6.0
# Vorbis: quality q = 10 * (1 - level); nominal kbps of q = 0..10 (libvorbis, 44.1 kHz)
_VORBIS_STEREO = (64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 499)
_VORBIS_MONO = (48, 60, 70, 80, 86, 96, 110, 120, 140, 160, 239)


def writable_containers() -> dict[str, str]:
    """Extension -> container for the containers the installed libsndfile can write."""
    return dict(_writable())


@functools.cache
def _writable() -> tuple[tuple[str, str], ...]:
    import soundfile as sf

    have = sf.available_formats()
    out = []
    for ext, container in EXTENSION_CONTAINERS.items():
        codec = EXTENSION_CODECS.get(ext)
        if container in have and (codec is None or sf.check_format(container, codec)):
            out.append((ext, container))
    return tuple(out)


def writable_list() -> str:
    """The writable extensions, for error messages."""
    return ", ".join(writable_containers())


def container_for(path: Path | str) -> str | None:
    """The container a file of this name is written in (None: no audio extension
    this module knows). Raises :class:`UsageError` for an audio extension that cannot
    be written (``.m4a``; ``.mp3`` with a libsndfile older than 1.1)."""
    ext = Path(path).suffix.lower()
    if ext in UNWRITABLE_EXTENSIONS or (
        ext in EXTENSION_CONTAINERS and ext not in writable_containers()
    ):
        raise UsageError(
            f"OUTPUT {str(path)!r}: cannot write {ext} files; writable: {writable_list()}"
        )
    return EXTENSION_CONTAINERS.get(ext)


def is_audio_output_name(path: Path | str) -> bool:
    """Whether an OUTPUT of this name means a file (an audio extension, writable or
    not), not a folder."""
    ext = Path(path).suffix.lower()
    return ext in EXTENSION_CONTAINERS or ext in UNWRITABLE_EXTENSIONS


def check_output_name(path: Path | str, out_ext: str | None = None) -> None:
    """Usage checks of an OUTPUT file name: its container can be written and agrees
    with the extension ``--format`` gives (``out_ext``; None: no ``--format``).
    Raises :class:`UsageError`."""
    container = container_for(path)
    if out_ext is None or container is None:
        return
    wanted = EXTENSION_CONTAINERS[out_ext]
    if wanted != container:
        raise UsageError.for_option(
            "format",
            f"writes {wanted} ({out_ext}) but OUTPUT {str(path)!r} names a {container} "
            f"file; give an OUTPUT ending in {out_ext} or leave the option out",
        )


def format_container(fmt: str) -> tuple[str, str | None, str]:
    """``--format`` value -> (container, codec it implies or None, extension)."""
    ext = FORMAT_EXTENSIONS[fmt]
    return EXTENSION_CONTAINERS[ext], EXTENSION_CODECS.get(ext), ext


def container_subtypes(container: str) -> list[str]:
    """The subtypes the installed libsndfile can write into ``container``."""
    import soundfile as sf

    subs = list(CONTAINER_SUBTYPES.get(container, ()))
    subs += [s for s in sf.available_subtypes(container) if s not in subs]
    return [s for s in subs if sf.check_format(container, s)]


def eight_bit(container: str, subtype: str) -> str:
    """``PCM_U8``/``PCM_S8`` as ``container`` stores 8-bit PCM (unsigned in WAV, signed
    in FLAC/AIFF: the same samples); any other subtype unchanged."""
    import soundfile as sf

    if subtype in ("PCM_U8", "PCM_S8") and not sf.check_format(container, subtype):
        other = "PCM_S8" if subtype == "PCM_U8" else "PCM_U8"
        if sf.check_format(container, other):
            return other
    return subtype


def check_subtype(container: str, subtype: str, where: str = "") -> None:
    """Raise :class:`UsageError` naming ``--subtype`` unless ``container`` holds
    ``subtype``; the message lists exactly the subtypes it holds."""
    import soundfile as sf

    if subtype == "same" or sf.check_format(container, eight_bit(container, subtype)):
        return
    at = f" ({where})" if where else ""
    raise UsageError.for_option(
        "subtype",
        f"{subtype} cannot be written to {container}{at}; allowed for {container}: "
        f"{', '.join(container_subtypes(container))}",
    )


@dataclass(frozen=True)
class OutputFormat:
    """Container and subtype of an output file; for lossy subtypes libsndfile's
    ``compression_level`` (0 best .. 1 smallest) and ``bitrate_mode``
    (``CONSTANT``/``VARIABLE``/``AVERAGE``, MPEG only; None: libsndfile's default),
    ``target_kbps`` (the bitrate aimed at, None: a quality was asked) and ``note``
    (where the preset's subtype could not be kept)."""

    format: str
    subtype: str
    extension: str
    compression_level: float | None = None
    bitrate_mode: str | None = None
    target_kbps: float | None = None
    note: str | None = None


def choose_subtype(
    *,
    in_container: str,
    in_subtype: str,
    container: str,
    codec: str | None,
    subtype: str,
    preset_subtype: str,
) -> tuple[str, str | None]:
    """``(subtype, note)`` by the rules of the module docstring. ``codec``: the one
    the output's name or ``--format`` implies (None: none). Raises
    :class:`UsageError` for a ``--subtype`` the container cannot hold."""
    import soundfile as sf

    if subtype != "same":
        subtype = eight_bit(container, subtype)  # 8-bit: signed or unsigned, as stored
        check_subtype(container, subtype)
        return subtype, None
    note = None
    if preset_subtype != "same":
        if sf.check_format(container, preset_subtype):
            return preset_subtype, None
        note = f"the preset's output subtype {preset_subtype} cannot be written to {container}"
    same_container = in_container == container and (codec is None or codec == in_subtype)
    if sf.check_format(container, in_subtype) and (
        same_container or (in_subtype in LINEAR_SUBTYPES and codec is None)
    ):
        sub = in_subtype
    elif codec is not None:
        sub = codec
    elif in_subtype in LINEAR_SUBTYPES:  # FLOAT into FLAC: refused, never downgraded
        raise UsageError.about(
            "cannot write subtype {sub} to {container}; allowed for {container}: {allowed} "
            "(choose one with {subtype})",
            sub=in_subtype,
            container=container,
            allowed=", ".join(container_subtypes(container)),
        )
    elif sf.check_format(container, "PCM_24"):
        sub = "PCM_24"
    else:
        sub = container_subtypes(container)[0]
    if note is not None:
        note += f"; written as {sub}"
    return sub, note


def choose(
    *,
    in_container: str,
    in_subtype: str,
    dest: Path | str | None,
    fmt: str,
    subtype: str,
    preset_subtype: str,
    in_ext: str = "",
) -> OutputFormat:
    """The output's container, subtype and extension: from ``--format`` (``fmt``)
    when given, else from the name ``dest`` (else the input's own, ``in_ext``)."""
    if fmt != "same":
        container, codec, ext = format_container(fmt)
    else:
        name_ext = Path(dest).suffix.lower() if dest is not None else ""
        ext = name_ext or in_ext.lower()
        found = container_for("x" + ext) if ext else None
        if found is None:  # a name without an audio extension: the input's container
            container, codec, ext = in_container, None, ext
        else:
            container, codec = found, EXTENSION_CODECS.get(ext)
            if container == in_container and ext != ".opus":
                codec = None  # Opus in .ogg, MPEG layer II in .mp3: the input's codec kept
    sub, note = choose_subtype(
        in_container=in_container,
        in_subtype=in_subtype,
        container=container,
        codec=codec,
        subtype=subtype,
        preset_subtype=preset_subtype,
    )
    return OutputFormat(container, sub, ext, note=note)


def check_stream(
    subtype: str, samplerate: int, channels: int, *, library: bool = False
) -> AudioError | None:
    """Why a lossy encoder cannot take this stream (one line, with the way out for
    a run, or for a library caller with ``library``), or None."""
    rates = CODEC_RATES.get(subtype)
    if rates is not None and samplerate not in rates:
        name = "Opus" if subtype == "OPUS" else "MP3"
        fix = (
            "resample the wave first"
            if library
            else "add a resample step to the preset, or choose another container with {format}"
        )
        return AudioError.about(
            "{name} outputs take {rates} Hz; got {rate} Hz (" + fix + ")",
            name=name,
            rates=", ".join(str(r) for r in rates),
            rate=samplerate,
        )
    most = CODEC_MAX_CHANNELS.get(subtype)
    if most is not None and channels > most:
        fix = (
            "remix the wave first"
            if library
            else "add a remix step, or choose another container with {format}"
        )
        return AudioError.about(
            "{subtype} outputs take at most {most} channels; got {channels} (" + fix + ")",
            subtype=subtype,
            most=most,
            channels=channels,
        )
    return None


# ------------------------------------------------------------------ lossy settings


@dataclass(frozen=True)
class LossyOptions:
    """What the user asked of lossy outputs. ``quality`` 0..1 (1 best), ``bitrate``
    in kbps (whole stream), ``bitrate_mode`` one of :data:`BITRATE_MODES`; None:
    not given."""

    quality: float | None = None
    bitrate: float | None = None
    bitrate_mode: str | None = None


def input_kbps(subtype: str, size_bytes: int, frames: int, samplerate: int) -> float | None:
    """A lossy input's bitrate (kbps) from its file size and duration; None for
    lossless inputs or an unknown duration."""
    if subtype not in LOSSY_SUBTYPES or frames <= 0 or samplerate <= 0:
        return None
    return size_bytes * 8 / (frames / samplerate) / 1000


def _mpeg_table(samplerate: int) -> tuple[int, ...]:
    if samplerate >= 32000:
        return _MPEG1
    return _MPEG2 if samplerate >= 16000 else _MPEG25


def level_for_kbps(subtype: str, kbps: float, samplerate: int, channels: int) -> float:
    """The compression level at which libsndfile encodes ``subtype`` at ``kbps``
    (whole stream) or the nearest above it the codec allows (clamped to its range)."""
    if subtype.startswith("MPEG_LAYER"):
        table = _mpeg_table(samplerate)
        legal = next((r for r in table if r >= kbps - 1e-9), table[-1])
        hi, lo = table[-1], table[0]
        return min(max((hi - legal) / (hi - lo), 0.0), MAX_MPEG_LEVEL)
    per_channel = kbps / max(channels, 1)
    if subtype == "OPUS":
        level = (_OPUS_MAX - per_channel) / (_OPUS_MAX - _OPUS_MIN)
        return min(max(level, 0.0), 1.0)
    # Vorbis: the lowest quality whose nominal rate reaches the target
    table = _VORBIS_MONO if channels == 1 else _VORBIS_STEREO
    pairs = 1.0 if channels == 1 else channels / 2
    q = next((i for i, r in enumerate(table) if r * pairs >= kbps - 1e-9), len(table) - 1)
    return 1.0 - q / 10.0


#: libsndfile refuses level 1.0 for MPEG
MAX_MPEG_LEVEL = 0.99


def lossy_encoding(
    out: OutputFormat,
    opts: LossyOptions | None,
    samplerate: int,
    channels: int,
    source_kbps: float | None,
) -> OutputFormat:
    """``out`` with the settings of its lossy encoder (unchanged for other subtypes):
    see the module docstring."""
    subtype = out.subtype
    if subtype not in LOSSY_SUBTYPES:
        return out
    opts = opts or LossyOptions()
    mpeg = subtype.startswith("MPEG_LAYER")
    mode = (opts.bitrate_mode or "constant").upper() if mpeg else None
    if opts.quality is not None and opts.bitrate is None:
        level = 1.0 - opts.quality
        if mpeg:
            level = min(level, MAX_MPEG_LEVEL)
            mode = (opts.bitrate_mode or "variable").upper()
        return replace(out, compression_level=level, bitrate_mode=mode)
    if opts.bitrate is not None:
        kbps = opts.bitrate
    elif source_kbps is not None:
        kbps = source_kbps
    else:
        kbps = DEFAULT_KBPS.get(subtype, 128.0) * channels
    level = level_for_kbps(subtype, kbps, samplerate, channels)
    return replace(out, compression_level=level, bitrate_mode=mode, target_kbps=round(kbps, 1))


def check_run(
    dests: list[str],
    fmt: str,
    subtype: str,
    lossy: LossyOptions | None,
) -> None:
    """Usage checks of a run's outputs before any work (``dests``: the output names):
    ``--subtype`` must fit every output's container (the error lists exactly that
    container's subtypes), ``--quality`` lies in 0..1, ``--bitrate`` is positive,
    they exclude each other, and ``--bitrate-mode`` needs an MP3 output.
    Raises :class:`UsageError`."""
    import math

    lossy = lossy or LossyOptions()
    q, b = lossy.quality, lossy.bitrate
    if q is not None and not (math.isfinite(q) and 0.0 <= q <= 1.0):
        raise UsageError.for_option("quality", f"{q:g}: allowed: 0 (smallest) .. 1 (best)")
    if b is not None and not (math.isfinite(b) and 8.0 <= b <= 2000.0):
        raise UsageError.for_option("bitrate", f"{b:g}: allowed: 8 .. 2000 kbps")
    if q is not None and b is not None:
        raise UsageError.about("{quality} and {bitrate} exclude each other; give one")
    mode = lossy.bitrate_mode
    if mode is not None and mode not in BITRATE_MODES:
        raise UsageError.for_option("bitrate_mode", f"{mode}: allowed: {', '.join(BITRATE_MODES)}")
    containers: list[tuple[str, str]] = []
    for dest in dests:
        if fmt != "same":
            container = format_container(fmt)[0]
        else:
            found = container_for("x" + Path(dest).suffix.lower())
            if found is None:
                continue
            container = found
        containers.append((dest, container))
    if subtype != "same":
        for dest, container in containers:
            check_subtype(container, subtype, where=dest)
    if mode is not None and not any(c == "MP3" for _, c in containers):
        raise UsageError.for_option(
            "bitrate_mode", f"{mode}: applies to MP3 outputs only (libsndfile), none here"
        )
