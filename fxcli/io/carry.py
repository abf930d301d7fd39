"""What an output keeps of its input besides samples: tags (:mod:`fxcli.io.tags`)
and, WAV to WAV, the channel mask, ``bext`` and ``LIST`` chunks
(:mod:`fxcli.io.wavmeta`). :func:`plan_output_meta` decides it once per file;
:class:`fxcli.io.audio.AtomicWriter` writes it (:func:`fast_header` for the fast
WAV writer, :func:`sf_container` for libsndfile); what the output's container cannot
hold is said in :attr:`OutputMeta.notes` (the runner puts them on the result).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fxcli.io import tags as tagmod
from fxcli.io import wavmeta
from fxcli.io.formats import WAV_FORMATS

__all__ = ["OutputMeta", "fast_header", "plan_output_meta", "sf_container"]


@dataclass(frozen=True)
class OutputMeta:
    """Metadata to write into one output.

    ``tags``: name -> text, only those the container holds; ``channel_mask``: the
    WAVE_FORMAT_EXTENSIBLE mask to write (None: the writer's default header);
    ``chunks``: whole ``bext``/``LIST`` chunks for a WAV output; ``notes``: what was
    not kept and why."""

    tags: dict[str, str] = field(default_factory=dict)
    channel_mask: int | None = None
    chunks: bytes = b""
    notes: tuple[str, ...] = ()


def plan_output_meta(
    src: Path,
    in_format: str,
    in_rate: int,
    in_channels: int,
    out_format: str,
    out_rate: int,
    out_channels: int,
    *,
    keep_tags: bool = True,
) -> OutputMeta:
    """Read ``src``'s metadata and decide what an output in ``out_format`` (a
    libsndfile container) at ``out_rate`` Hz with ``out_channels`` gets of it."""
    notes: list[str] = []
    kept: dict[str, str] = {}
    if keep_tags:
        kept, dropped = tagmod.split_tags(tagmod.read_tags(src), out_format)
        if dropped:
            notes.append(f"tags not kept: {', '.join(dropped)} ({out_format} cannot hold them)")
    if in_format.upper() not in WAV_FORMATS:
        return OutputMeta(kept, notes=tuple(notes))
    meta = wavmeta.read_wav_meta(src)
    if not meta:
        return OutputMeta(kept, notes=tuple(notes))
    if out_format.upper() not in WAV_FORMATS:
        lost = [
            what
            for what, there in (
                ("channel mask", meta.channel_mask is not None),
                ("bext chunk", meta.bext is not None),
                (f"{len(meta.lists)} LIST chunks", bool(meta.lists)),
            )
            if there
        ]
        notes.append(f"WAV header data not kept: {', '.join(lost)} ({out_format} output)")
        return OutputMeta(kept, notes=tuple(notes))
    mask = meta.channel_mask if out_channels == in_channels else None
    bext = meta.bext.for_output(in_rate, out_rate) if meta.bext is not None else None
    return OutputMeta(kept, mask, wavmeta.chunks_of(meta, bext), tuple(notes))


def fast_header(
    meta: OutputMeta | None, expected_bytes: int | None
) -> tuple[int | None, bytes, bool]:
    """:class:`fxcli.io.wavfast.PcmWavWriter`'s header for ``meta``: ``(channel mask,
    chunks before data: the tags as LIST/INFO then the kept chunks, whether to
    reserve room for ds64: the output is expected past half the RIFF limit)``."""
    near = expected_bytes is not None and expected_bytes > wavmeta.RIFF_MAX_BYTES // 2
    if meta is None:
        return None, b"", near
    return meta.channel_mask, wavmeta.info_list(meta.tags) + meta.chunks, near


def sf_container(fmt: str, meta: OutputMeta | None, expected_bytes: int | None) -> str:
    """The libsndfile container to open an output in: a WAV expected past the RIFF
    limit is written as RF64, one keeping a channel mask as WAVEX (its
    WAVE_FORMAT_EXTENSIBLE mask is set when finished), anything else as asked."""
    if fmt not in ("WAV", "WAVEX"):
        return fmt
    if expected_bytes is not None and expected_bytes > wavmeta.RIFF_MAX_BYTES:
        return "RF64"
    return "WAVEX" if meta is not None and meta.channel_mask is not None else fmt
