"""Atomic file publication, written once for every writer (audio, feature arrays).

A file is written under a temporary name next to its destination
(``.<name>.<pid>.<8 hex>.fxcli-tmp``), fsynced, then published: renamed over the
destination, or with ``replace=False`` given the name only if nothing holds it
(:func:`commit_no_replace`). Temporary files of dead runs are removed by the next
run that writes into the folder (:func:`sweep_dead_temps_once`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from fxcli.errors import AudioError

__all__ = [
    "OutputExistsError",
    "STALE_TEMP_AGE_S",
    "TEMP_MARK",
    "TEMP_NAME",
    "atomic_path",
    "commit_no_replace",
    "publish",
    "remove_dead_temps",
    "sweep_dead_temps_once",
    "temp_name",
]

TEMP_MARK = ".fxcli-tmp"
#: ``.<name>.<pid>.<8 hex>.fxcli-tmp``: the temporary names of AtomicWriter (and of
#: ``fxcli features``' writer); :func:`fxcli.batch.remote.remove_stale_temps` relies on it
TEMP_NAME = re.compile(rf"\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{{8}}{re.escape(TEMP_MARK)}")
#: temporary files younger than this are left alone even when their PID is gone
STALE_TEMP_AGE_S = 60.0
#: link(2) errors that mean "no hard links here" (not "the name is taken")
_NO_LINK_ERRNOS = frozenset(
    getattr(errno, n)
    for n in ("EPERM", "ENOTSUP", "EOPNOTSUPP", "EXDEV", "EMLINK", "ENOSYS", "EACCES")
    if hasattr(errno, n)
)
_swept: set[str] = set()
_swept_lock = threading.Lock()


class OutputExistsError(AudioError):
    """A no-replace commit found the destination taken (another run wrote it meanwhile)."""


def temp_name(dest: Path) -> Path:
    """A fresh temporary path next to ``dest``, named ``.<name>.<pid>.<8 hex>.fxcli-tmp``."""
    return dest.parent / f".{dest.name}.{os.getpid()}.{os.urandom(4).hex()}{TEMP_MARK}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a PID a writer could have had: leave the file alone
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: alive, another user's process
        return True
    return True


def remove_dead_temps(folder: Path, min_age_s: float | None = None) -> int:
    """Remove fxcli temporary files in ``folder`` whose writer's PID is no longer alive
    and that were last modified more than ``min_age_s`` (default
    :data:`STALE_TEMP_AGE_S`) seconds ago: leftovers of killed runs (SIGKILL, power
    loss). Returns how many were removed. PIDs are those of this host: temporary
    files written into a shared folder by another host younger than the age limit
    are kept."""
    age = STALE_TEMP_AGE_S if min_age_s is None else min_age_s
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for e in entries:
        if not e.name.endswith(TEMP_MARK):
            continue
        m = TEMP_NAME.fullmatch(e.name)
        if m is None or _pid_alive(int(m.group("pid"))):
            continue
        try:
            st = e.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < age:
                continue
            os.unlink(e.path)
            removed += 1
        except OSError:
            continue
    return removed


def sweep_dead_temps_once(folder: Path) -> int:
    """:func:`remove_dead_temps` for ``folder`` the first time this process writes
    into it (later calls return 0: a folder is listed once per process)."""
    key = os.path.abspath(folder)
    with _swept_lock:
        if key in _swept:
            return 0
        _swept.add(key)
    return remove_dead_temps(folder)


def commit_no_replace(tmp: Path, dest: Path) -> None:
    """Give the finished ``tmp`` the name ``dest`` only if no file (or symlink) has
    it; raise :class:`OutputExistsError` otherwise. A hard link, then the
    temporary name is removed; where the filesystem has no hard links, ``dest`` is
    reserved with ``O_CREAT | O_EXCL`` and the file renamed over the reservation."""
    try:
        os.link(tmp, dest)  # tmp is a regular file: no symlink to follow
    except FileExistsError:
        raise _exists(dest) from None
    except OSError as exc:
        if exc.errno not in _NO_LINK_ERRNOS:
            raise
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        return
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _exists(dest) from None
    os.close(fd)
    try:
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            if os.stat(dest).st_size == 0:  # still our empty reservation
                os.unlink(dest)
        raise


def _exists(dest: Path) -> OutputExistsError:
    return OutputExistsError(
        f"output appeared during processing: {dest} (another run?); not replaced (use --overwrite)"
    )


def publish(tmp: Path, dest: Path, *, replace: bool = True) -> None:
    """fsync the finished ``tmp``, then give it the name ``dest``: over whatever holds
    it (``replace=True``) or only if nothing does (:func:`commit_no_replace`)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if replace:
        os.replace(tmp, dest)
    else:
        commit_no_replace(tmp, dest)


@contextlib.contextmanager
def atomic_path(dest: Path, *, replace: bool = True) -> Iterator[Path]:
    """A temporary path next to ``dest`` to write; published (:func:`publish`) when
    the block ends normally, removed on any error or interrupt. ``replace=False``:
    the final step never replaces a file that appeared meanwhile
    (:class:`OutputExistsError`)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temps_once(dest.parent)
    tmp = temp_name(dest)
    try:
        yield tmp
        publish(tmp, dest, replace=replace)
    finally:
        with contextlib.suppress(FileNotFoundError, OSError):
            tmp.unlink()
