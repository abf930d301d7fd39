"""Tags: the text metadata libsndfile reads and writes (title, artist, album, ...).

An output gets its input's tags by default (``fxcli process --no-tags`` drops
them), in every container that can hold them; each container holds a different
set (:data:`CONTAINER_TAGS`, what libsndfile 1.2 writes and reads back: WAV's
``LIST``/``INFO`` has no license, AIFF only title, copyright, artist, comment,
MP3's ID3 no copyright or license, W64 none). Tags an output cannot hold are named
in a note on the file's result.

``software`` is not copied: it names the program that wrote the file, which the
output's no longer is (ffmpeg likewise replaces it with its own encoder tag).
"""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

__all__ = ["CONTAINER_TAGS", "COPIED_TAGS", "apply_tags", "read_tags", "split_tags"]

#: the tags an output gets from its input, in the order they are written
COPIED_TAGS = (
    "title",
    "copyright",
    "artist",
    "comment",
    "date",
    "album",
    "license",
    "tracknumber",
    "genre",
)
_ALL = frozenset(COPIED_TAGS)
_WAV = _ALL - {"license"}
#: libsndfile container -> the copied tags it writes and reads back (absent: none)
CONTAINER_TAGS: dict[str, frozenset[str]] = {
    "WAV": _WAV,
    "WAVEX": _WAV,
    "RF64": _WAV,
    "FLAC": _ALL,
    "OGG": _ALL,
    "CAF": _ALL,
    "AIFF": frozenset({"title", "copyright", "artist", "comment"}),
    "MP3": _ALL - {"copyright", "license"},
}


def read_tags(path: Path | str) -> dict[str, str]:
    """The copied tags of an audio file that are set (name -> text); ``{}`` when
    libsndfile cannot read them (tags never fail a run)."""
    try:
        with sf.SoundFile(str(path)) as f:
            meta = f.copy_metadata()
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError, UnicodeDecodeError):
        return {}
    return {k: v for k in COPIED_TAGS if (v := meta.get(k))}


def split_tags(tags: dict[str, str], container: str) -> tuple[dict[str, str], list[str]]:
    """``(kept, dropped)``: the tags ``container`` can hold, and the names of those
    it cannot."""
    can = CONTAINER_TAGS.get(container.upper(), frozenset())
    kept = {k: v for k, v in tags.items() if k in can}
    return kept, [k for k in tags if k not in can]


def apply_tags(f: sf.SoundFile, tags: dict[str, str]) -> list[str]:
    """Set ``tags`` on a file opened for writing, before its first sample (FLAC and
    OGG write their comments with the stream header). Returns the names libsndfile
    refused (a tag never fails a file; the caller notes them)."""
    refused = []
    for name in COPIED_TAGS:
        if name in tags:
            try:
                setattr(f, name, tags[name])
            except (sf.LibsndfileError, RuntimeError, ValueError, UnicodeEncodeError):
                refused.append(name)
    return refused
