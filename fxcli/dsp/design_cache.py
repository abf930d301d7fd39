"""A small on-disk cache of filter designs, so warm runs skip importing scipy.signal.

``import scipy.signal`` costs about a second (SciPy 1.17 parses docstrings at
import), more than a short file's processing. Designs are pure functions of
their arguments and the SciPy version, so they are cached as exact float64
values (JSON floats round-trip exactly) in ``$FXCLI_CACHE_DIR`` or
``$XDG_CACHE_HOME/fxcli`` (default ``~/.cache/fxcli``), at most
:data:`MAX_ENTRIES` designs. ``FXCLI_CACHE_DIR=off`` disables it. Only designs
that still need SciPy go through it (elliptic, Bessel, uncommon FIR windows):
:mod:`fxcli.dsp.design_np` computes the others in microseconds to milliseconds
without SciPy, so even a first run with an empty cache skips the import.

It is only a cache: no problem with it ever fails a design.

- An entry that does not validate (key, shape, float values, all finite, as many
  as the shape holds) is ignored: the design is recomputed and the entry replaced.
- A cache file that cannot be read or parsed, or that is not a regular file (a
  symlink is never followed, a FIFO never blocks: ``O_NOFOLLOW | O_NONBLOCK`` and
  ``fstat``), is set aside (renamed ``designs.json.corrupt-<time>``, else deleted)
  and rebuilt.
- Writes go to a temporary file (``O_CREAT | O_EXCL | O_NOFOLLOW``) renamed over
  the cache, so concurrent writers never leave a mixed file (the last one wins).
- A cache folder that cannot be created or written (read-only install, unwritable
  HOME) turns caching off for the process, with one log line (logger ``fxcli``,
  level info); designing then simply runs every time.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fxcli.cache_files import cache_dir, read_cache_file, write_cache_file

MAX_ENTRIES = 2000
#: a cache file larger than this is not ours (2000 designs are about 1 MB)
MAX_BYTES = 64 << 20
_FORMAT = 1
_lock = threading.Lock()
_memory: dict[str, list[Any]] | None = None
_disabled: Path | None = None  # a cache path that could not be written
_log = logging.getLogger("fxcli")


def cache_path() -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / "designs.json"


def _valid_entry(key: Any, entry: Any) -> bool:
    """``key`` a JSON ``[kind, args, scipy]`` string; ``entry`` ``[shape, values]``
    with as many finite floats as the shape holds."""
    if not isinstance(key, str) or not key.startswith("["):
        return False
    if not (isinstance(entry, list) and len(entry) == 2):
        return False
    shape, values = entry
    if not (isinstance(shape, list) and 1 <= len(shape) <= 4 and isinstance(values, list)):
        return False
    if not all(type(n) is int and 0 <= n for n in shape):
        return False
    if math.prod(shape) != len(values):
        return False
    return all(type(v) in (float, int) and math.isfinite(v) for v in values)


def _set_aside(path: Path, why: str) -> None:
    """Move a broken cache file out of the way (or delete it)."""
    try:
        os.replace(path, path.with_name(f"{path.name}.corrupt-{int(time.time())}"))
    except OSError:
        try:
            os.unlink(path)
        except OSError:
            pass
    _log.info("fxcli design cache %s: %s; set aside, rebuilding", path, why)


def _read(path: Path) -> bytes | None:
    """The cache file's bytes; None when there is none. Raises ValueError for a
    path that is not a regular file, OSError when it cannot be read."""
    return read_cache_file(path, MAX_BYTES)


def _load(path: Path | None) -> dict[str, list[Any]]:
    """The valid entries of the cache file (invalid ones dropped); a broken file is
    set aside. Never raises."""
    if path is None:
        return {}
    try:
        data = _read(path)
        if data is None:
            return {}
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or "format" not in doc:
            raise ValueError("not a design cache")
    except (OSError, ValueError, RecursionError) as exc:
        _set_aside(path, f"{type(exc).__name__}: {exc}")
        return {}
    except Exception as exc:  # noqa: BLE001 - a cache never fails a design
        _log.info("fxcli design cache %s: %s; ignored", path, exc)
        return {}
    designs = doc.get("designs")
    if doc.get("format") != _FORMAT or not isinstance(designs, dict):
        return {}  # another format: rebuilt on the next store
    return {k: v for k, v in designs.items() if _valid_entry(k, v)}


def _store(path: Path | None, designs: dict[str, list[Any]]) -> None:
    """Write the cache: a fresh temporary file renamed over it. A folder that cannot
    be written turns caching off for this process."""
    global _disabled
    if path is None or path == _disabled:
        return
    text = json.dumps({"format": _FORMAT, "designs": designs}, allow_nan=False).encode()
    try:
        write_cache_file(path, text)
    except OSError as exc:
        _disabled = path
        _log.info("fxcli design cache off: cannot write %s (%s)", path, exc)


@functools.lru_cache(maxsize=1)
def _scipy_version() -> str:
    """SciPy's version, read from its ``version.py`` without importing SciPy (its
    ``__init__`` is what the cache avoids) or ``importlib.metadata`` (~30 ms with its
    import, most of a cached design); ``importlib.metadata`` only as a fallback."""
    import importlib.util
    import re

    try:
        spec = importlib.util.find_spec("scipy")
        if spec is not None and spec.origin:
            text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
            m = re.search(r"^version\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
            if m:
                return m.group(1)
    except (OSError, ValueError, ImportError):  # pragma: no cover - unusual installs
        pass
    from importlib import metadata

    try:
        return metadata.version("scipy")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "?"


def _lookup(key: str, path: Path | None) -> np.ndarray | None:
    global _memory
    with _lock:
        if _memory is None:
            _memory = _load(path)
        hit = _memory.get(key)
        if hit is None:
            return None
        if not _valid_entry(key, hit):  # changed since loading: drop it
            del _memory[key]
            return None
    return np.array(hit[1], dtype=np.float64).reshape(hit[0])


def _remember(key: str, value: np.ndarray, path: Path | None) -> None:
    global _memory
    entry = [list(value.shape), value.ravel().tolist()]
    if not _valid_entry(key, entry):  # e.g. a non-finite design: not cached
        return
    with _lock:
        on_disk = _load(path) if path != _disabled else dict(_memory or {})
        on_disk[key] = entry  # merged with other processes' entries
        while len(on_disk) > MAX_ENTRIES:
            on_disk.pop(next(iter(on_disk)))
        _memory = on_disk
        _store(path, on_disk)


def cached_design(kind: str, args: dict[str, Any], design: Callable[[], np.ndarray]) -> np.ndarray:
    """Return ``design()`` (a float64 array), from the cache when it holds this
    ``kind`` with these JSON-serializable ``args`` for the installed SciPy. Only
    ``design()`` itself can raise."""
    key: str | None = None
    path: Path | None = None
    try:
        key = json.dumps([kind, args, _scipy_version()], sort_keys=True, allow_nan=False)
        path = cache_path()
        hit = _lookup(key, path)
    except Exception as exc:  # noqa: BLE001 - a cache never fails a design
        _log.info("fxcli design cache: lookup failed (%s); designing", exc)
        hit = None
    if hit is not None:
        return hit
    value = np.asarray(design(), dtype=np.float64)
    if key is not None:
        try:
            _remember(key, value, path)
        except Exception as exc:  # noqa: BLE001
            _log.info("fxcli design cache: not stored (%s)", exc)
    return value
