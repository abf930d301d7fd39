"""fxcli's cache folder and the safe reading and writing of one small cache file in it
(numpy-free: the preset cache is read before anything heavy is imported).

The folder: ``$FXCLI_CACHE_DIR`` or ``$XDG_CACHE_HOME/fxcli`` (default
``~/.cache/fxcli``); ``FXCLI_CACHE_DIR=off`` turns every cache off. A cache file is
read without following a symlink or blocking on a FIFO (``O_NOFOLLOW | O_NONBLOCK``
and ``fstat``), size-bounded, and written to a fresh temporary file
(``O_CREAT | O_EXCL | O_NOFOLLOW``) renamed over it, so concurrent writers never
leave a mixed file (the last one wins). Users: :mod:`fxcli.dsp.design_cache`,
:mod:`fxcli.preset.parse_cache`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def cache_dir() -> Path | None:
    """The cache folder (it may not exist yet); None when caching is off or there is
    no home folder to put it in."""
    env = os.environ.get("FXCLI_CACHE_DIR")
    if env == "off":
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry
            return None
    return Path(base) / "fxcli"


def read_cache_file(path: Path, max_bytes: int) -> bytes | None:
    """The cache file's bytes; None when there is none. Raises ValueError for a
    path that is not a regular file (a symlink, a FIFO) or holds more than
    ``max_bytes``, OSError when it cannot be read."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(path):
            raise ValueError("a symlink") from None
        raise exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > max_bytes:
            raise ValueError(f"{st.st_size} bytes, more than {max_bytes}")
        chunks = []
        while block := os.read(fd, 1 << 20):
            chunks.append(block)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_cache_file(path: Path, data: bytes) -> None:
    """Replace the cache file with ``data``: a fresh temporary file beside it, renamed
    over it (its folder is created). Raises OSError; no temporary file is left."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
