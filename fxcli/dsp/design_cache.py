"""A small on-disk cache of filter designs, so warm runs skip importing scipy.signal.

``import scipy.signal`` costs about a second (SciPy 1.17 parses docstrings at
import), more than a short file's processing. Designs are pure functions of
their arguments and the SciPy version, so they are cached as exact float64
values (JSON floats round-trip exactly) in ``$FXCLI_CACHE_DIR`` or
``$XDG_CACHE_HOME/fxcli`` (default ``~/.cache/fxcli``), at most
:data:`MAX_ENTRIES` designs. An unreadable or unwritable cache is ignored:
designing then simply runs every time. ``FXCLI_CACHE_DIR=off`` disables it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

MAX_ENTRIES = 2000
_FORMAT = 1
_lock = threading.Lock()
_memory: dict[str, list[Any]] | None = None


def cache_path() -> Path | None:
    env = os.environ.get("FXCLI_CACHE_DIR")
    if env == "off":
        return None
    if env:
        return Path(env) / "designs.json"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fxcli" / "designs.json"


def _load(path: Path | None) -> dict[str, list[Any]]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("format") == _FORMAT:
            return dict(data["designs"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return {}


def _store(path: Path | None, designs: dict[str, list[Any]]) -> None:
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": _FORMAT, "designs": designs}))
        os.replace(tmp, path)


@functools.lru_cache(maxsize=1)
def _scipy_version() -> str:
    """Looked up once: ``metadata.version`` costs ~8 ms, most of a cached design."""
    try:
        return metadata.version("scipy")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "?"


def cached_design(kind: str, args: dict[str, Any], design: Callable[[], np.ndarray]) -> np.ndarray:
    """Return ``design()`` (a float64 array), from the cache when it holds this
    ``kind`` with these JSON-serializable ``args`` for the installed SciPy."""
    global _memory
    key = json.dumps([kind, args, _scipy_version()], sort_keys=True)
    path = cache_path()
    with _lock:
        if _memory is None:
            _memory = _load(path)
        hit = _memory.get(key)
    if hit is not None:
        return np.array(hit[1], dtype=np.float64).reshape(hit[0])
    value = np.asarray(design(), dtype=np.float64)
    with _lock:
        on_disk = _load(path)  # merge with other processes' entries
        on_disk[key] = [list(value.shape), value.ravel().tolist()]
        while len(on_disk) > MAX_ENTRIES:
            on_disk.pop(next(iter(on_disk)))
        _memory = on_disk
        _store(path, on_disk)
    return value
