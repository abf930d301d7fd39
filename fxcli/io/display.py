"""File names as the user sees them: no control character, escape
sequence or undecodable byte of a name reaches a terminal or a log raw.

- :func:`shown` makes a line safe to print: control characters (C0 but tab, DEL,
  C1) become ``\\xNN``/``\\uNNNN``, and each byte of a name that is not UTF-8 (Python
  holds it as a surrogate escape, U+DC80-U+DCFF) becomes ``\\xNN``, as ``ls -b``
  shows them. Everything else (accents, CJK, emoji) is kept.
- :func:`json_safe` makes a ``--json`` record encodable by every JSON parser:
  strings holding undecodable bytes get the :func:`shown` form, and the exact
  bytes are kept next to them as hex under ``<key>_bytes_hex`` (so a consumer can
  still open the file). Control characters are escaped by JSON itself.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["json_safe", "shown"]

# C0 controls but tab and newline, DEL, C1 controls, the surrogate escapes of bytes
# that are not UTF-8, and the other lone surrogates (never printable)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDCFF:  # surrogateescape: the byte c - 0xDC00
        return f"\\x{c - 0xDC00:02x}"
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def shown(text: str) -> str:
    """``text`` with every control character and undecodable byte escaped
    (``\\x1b``, ``\\xff``); newlines and tabs kept (a message may span lines)."""
    return _UNSAFE.sub(_escape, text)


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (one ``--json`` line) with every string that holds undecodable
    bytes replaced by its :func:`shown` form plus ``<key>_bytes_hex`` (the name's
    bytes); lists of strings (notes) are shown-escaped. Other values unchanged."""
    import os

    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, str) and _has_surrogate(value):
            out[key] = shown(value)
            try:
                out[f"{key}_bytes_hex"] = os.fsencode(value).hex()
            except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
                pass
        elif isinstance(value, list):
            out[key] = [shown(v) if isinstance(v, str) and _has_surrogate(v) else v for v in value]
        else:
            out[key] = value
    return out
