"""A cache of parsed preset texts, so a warm ``fxcli process`` skips PyYAML.

Importing PyYAML and composing a preset costs ~15-20 ms of a one-file
``fxcli process`` on CPU (~0.25 s in all). The parse of a text is a pure function of
the text, so :func:`load_yaml` keeps what :func:`fxcli.preset.yaml_text.load_yaml`
returned (the data and each mapping's and list's line) in ``presets.json`` in the
cache folder (:mod:`fxcli.cache_files`), keyed by the text itself: an entry is used
only for a text equal to the one it was made from, so an edited preset is parsed
again. The validation (:mod:`fxcli.preset.loader`) runs on every load, hit or not.

Only plain documents are cached: dicts, lists and str, int, float, bool and None
scalars (a date or bytes value is not), no container reached twice (the parser copies
what an alias names), texts up to :data:`MAX_TEXT_CHARS`. A text that is not valid
YAML is never cached: it is parsed, and reported, every time. It is only a cache: a
missing, unreadable, foreign or broken cache file, or one that cannot be written,
means parsing as without it, never an error. ``FXCLI_CACHE_DIR=off`` turns it off
with the design cache.

The bundled presets' parses ship with the package (``fxcli/presets/parsed.json``, in
the same form; a test keeps it equal to a fresh parse of each), so their first use
after an install does not import PyYAML either.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from fxcli.cache_files import cache_dir, read_cache_file, write_cache_file

FILE_NAME = "presets.json"
#: presets kept (the oldest is dropped first)
MAX_ENTRIES = 64
#: longer texts are parsed every time (real presets are a few hundred characters)
MAX_TEXT_CHARS = 16 * 1024
#: a cache file larger than this is not ours
MAX_BYTES = 8 << 20
_FORMAT = 1
_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any, seen: set[int]) -> bool:
    """Only plain dicts, lists and scalars, no container reached twice."""
    if type(value) in _SCALARS:
        return True
    if type(value) not in (dict, list) or id(value) in seen:
        return False
    seen.add(id(value))
    if type(value) is dict:
        return all(type(k) in _SCALARS and _plain(v, seen) for k, v in value.items())
    return all(_plain(v, seen) for v in value)


def _encode(value: Any, lines: dict[int, int]) -> Any:
    """JSON form of a :func:`_plain` value: ``{"m": [[key, value], ...], "l": line}``
    for a mapping, ``{"s": [...], "l": line}`` for a list, scalars as themselves."""
    if type(value) is dict:
        items = [[k, _encode(v, lines)] for k, v in value.items()]
        return {"m": items, "l": lines.get(id(value))}
    if type(value) is list:
        return {"s": [_encode(v, lines) for v in value], "l": lines.get(id(value))}
    return value


def _decode(enc: Any, lines: dict[int, int]) -> Any:
    """Inverse of :func:`_encode`; raises ValueError (or TypeError) for anything else."""
    if type(enc) in _SCALARS:
        return enc
    if type(enc) is not dict or set(enc) not in ({"m", "l"}, {"s", "l"}):
        raise ValueError("not an encoded value")
    line = enc["l"]
    out: dict[Any, Any] | list[Any]
    if "m" in enc:
        out = {}
        for k, v in enc["m"]:
            if type(k) not in _SCALARS or k in out:
                raise ValueError("not an encoded key")
            out[k] = _decode(v, lines)
    else:
        out = [_decode(v, lines) for v in enc["s"]]
    if line is not None:
        if type(line) is not int:
            raise ValueError("not a line")
        lines[id(out)] = line
    return out


def _key(text: str) -> str:
    raw = text.encode("utf-8", "surrogatepass")
    return f"{len(raw)}-{zlib.crc32(raw):08x}"


def _path() -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / FILE_NAME


def _entries(path: Path) -> dict[str, Any]:
    """The cache file's entries; {} for a missing, unreadable or foreign file."""
    try:
        data = read_cache_file(path, MAX_BYTES)
        if data is None:
            return {}
        doc = json.loads(data.decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        return {}
    entries = doc.get("presets")
    return entries if isinstance(entries, dict) else {}


def _lookup(text: str, path: Path) -> tuple[Any, dict[int, int]] | None:
    entry = _entries(path).get(_key(text))
    if not (isinstance(entry, list) and len(entry) == 2 and entry[0] == text):
        return None
    lines: dict[int, int] = {}
    try:
        return _decode(entry[1], lines), lines
    except (ValueError, TypeError, RecursionError):
        return None


def _remember(text: str, data: Any, lines: dict[int, int], path: Path) -> None:
    try:
        if not _plain(data, set()):
            return
        enc = _encode(data, lines)
    except RecursionError:
        return
    entries = _entries(path)
    entries.pop(_key(text), None)
    entries[_key(text)] = [text, enc]  # newest last
    while len(entries) > MAX_ENTRIES:
        entries.pop(next(iter(entries)))
    try:
        blob = json.dumps({"format": _FORMAT, "presets": entries}).encode("utf-8")
        write_cache_file(path, blob)
    except (OSError, ValueError, UnicodeError):
        pass


#: the bundled presets' parses, shipped with the package
BUNDLED_FILE = Path(__file__).resolve().parent.parent / "presets" / "parsed.json"


def bundled_parses(texts: list[str]) -> bytes:
    """The content of :data:`BUNDLED_FILE` for the bundled presets' ``texts``."""
    from fxcli.preset.yaml_text import load_yaml as parse

    entries = {}
    for text in texts:
        data, lines = parse(text, "bundled")
        entries[_key(text)] = [text, _encode(data, lines)]
    return (json.dumps({"format": _FORMAT, "presets": entries}, indent=0) + "\n").encode()


def load_yaml(text: str, source: str) -> tuple[Any, dict[int, int]]:
    """:func:`fxcli.preset.yaml_text.load_yaml` (the data and a map ``id(container) ->
    line``), from the bundled parses or the cache when they hold ``text``. Raises what
    that function raises (:class:`fxcli.errors.PresetError`), never a cache problem."""
    if len(text) <= MAX_TEXT_CHARS:
        hit = _lookup(text, BUNDLED_FILE)
        if hit is not None:
            return hit
    path = _path() if len(text) <= MAX_TEXT_CHARS else None
    if path is not None:
        hit = _lookup(text, path)
        if hit is not None:
            return hit
    from fxcli.preset.yaml_text import load_yaml as parse

    data, lines = parse(text, source)
    if path is not None:
        _remember(text, data, lines, path)
    return data, lines
