"""``index.jsonl``: the list of feature arrays in an OUTPUT folder, one JSON object a
line (input, output and image relative to the index, shape, axes, dtype, rates,
parameters), so a training pipeline can load the set without reading audio.

Each finished file's line is appended (and flushed) as it is reported, so arrays
finished before a kill are indexed; at the end the index is rewritten merged (one
line per output, entries of outputs rewritten now replace the old ones), atomically.
An index that is not UTF-8 text is refused before any work.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from fxcli.errors import UsageError
from fxcli.io.atomic import atomic_path

INDEX_NAME = "index.jsonl"


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX separators), else absolute."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def read_index(root: Path) -> tuple[set[str], bool]:
    """The outputs listed in ``root/index.jsonl`` and whether it ends without a
    newline; raises :class:`UsageError` for an index that cannot be read or
    is not UTF-8 text."""
    index = root / INDEX_NAME
    try:
        data = index.read_bytes()
    except FileNotFoundError:
        return set(), False
    except OSError as exc:
        raise UsageError(f"{index}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{index}: not UTF-8 text (byte {exc.start}); move it away or delete it"
        ) from None
    outputs: set[str] = set()
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict) and isinstance(item.get("output"), str):
                outputs.add(item["output"])
    return outputs, bool(data) and not data.endswith(b"\n")


def append_index(root: Path, entry: dict[str, Any], newline_first: bool = False) -> None:
    """Append one entry line to ``root/index.jsonl`` and flush it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / INDEX_NAME, "a", encoding="utf-8") as f:
        f.write(("\n" if newline_first else "") + json.dumps(entry) + "\n")
        f.flush()


def write_index(root: Path, entries: list[dict[str, Any]]) -> Path:
    """Merge ``entries`` into ``root/index.jsonl`` (same ``output`` replaced) atomically."""
    index = root / INDEX_NAME
    old: list[dict[str, Any]] = []
    if index.is_file():
        for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    old.append(item)
    new_outputs = {e["output"] for e in entries}
    merged = [e for e in old if e.get("output") not in new_outputs] + entries
    with atomic_path(index) as tmp:
        tmp.write_text("".join(json.dumps(e) + "\n" for e in merged), encoding="utf-8")
    return index
