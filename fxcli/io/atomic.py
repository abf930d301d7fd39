"""Atomic file publication, written once for every writer (audio, feature arrays).

A file is written under a temporary name next to its destination
(``.<name>.<pid>.<8 hex>.fxcli-tmp``), fsynced, then published: renamed over the
destination, or with ``replace=False`` given the name only if nothing holds it
(:func:`commit_no_replace`). Temporary files of dead runs are removed by the next
run that writes into the folder (:func:`sweep_dead_temps_once`).

Replacing a file in place is safe as ``sed -i`` does it: a destination
that is a symlink is written through (:func:`write_target`: the temporary file is
made next to the link's target and renamed over the target, so the link stays a
link), and the replaced file's permission bits and, where permitted, owner and
group are given to the new file before the rename (:func:`keep_mode_and_owner`).
The input of a run that is also its output is never damaged: it is read from its
own inode until the rename, and the rename happens only once the new file is
complete. A hard link to the destination keeps the old content (the rename gives
the name a new inode, as ``sed -i`` does).

Temporary names never exceed the folder's name limit (``NAME_MAX``, 255 bytes):
the ``<name>`` part is shortened (on a character boundary) where a long output
name would overflow it (:func:`temp_name`).
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
    "keep_mode_and_owner",
    "publish",
    "remove_dead_temps",
    "sweep_dead_temps_once",
    "temp_name",
    "temp_stem",
    "write_target",
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


#: the name limit where the filesystem does not say (Linux, macOS: 255 bytes)
DEFAULT_NAME_MAX = 255


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # missing folder, no pathconf
        return DEFAULT_NAME_MAX


def temp_stem(dest: Path) -> str:
    """The ``<name>`` part of ``dest``'s temporary names: ``dest.name``, cut on a
    character boundary so that ``.<name>`` plus the longest
    ``.<pid>.<8 hex>.fxcli-tmp`` (PIDs up to 2**22) fits the folder's name limit.
    Names that are not UTF-8 (surrogate escapes) count the bytes they stand for."""
    tail_bytes = len(f".{2**22}.{'0' * 8}{TEMP_MARK}")
    budget = max(1, min(_name_max(dest.parent), DEFAULT_NAME_MAX) - 1 - tail_bytes)
    name = dest.name
    if len(os.fsencode(name)) <= budget:
        return name
    out, used = [], 0
    for ch in name:
        n = len(os.fsencode(ch))
        if used + n > budget:
            break
        out.append(ch)
        used += n
    return "".join(out)


def temp_name(dest: Path) -> Path:
    """A fresh temporary path next to ``dest``, named
    ``.<name>.<pid>.<8 hex>.fxcli-tmp``; ``<name>`` is shortened
    (:func:`temp_stem`) where the whole would exceed the folder's name limit."""
    tail = f".{os.getpid()}.{os.urandom(4).hex()}{TEMP_MARK}"
    return dest.parent / f".{temp_stem(dest)}{tail}"  # one stem per dest, whatever the PID


def write_target(dest: Path) -> Path:
    """The file a replacing write of ``dest`` lands in: ``dest`` itself, or where a
    symlink ``dest`` points (followed to the end of a chain, relative targets
    resolved against the link's folder), so that the link stays a link."""
    if not dest.is_symlink():
        return dest
    return Path(os.path.realpath(dest))


def keep_mode_and_owner(tmp: Path, dest: Path) -> None:
    """Give ``tmp`` the permission bits of the file ``dest`` it is about to replace,
    and its owner and group where this process may (root; or the group alone when
    it is one of ours): ``sed -i``'s rule. Nothing when ``dest`` does not exist."""
    try:
        st = os.stat(dest)
    except OSError:
        return
    if not stat.S_ISREG(st.st_mode):
        return
    mine = os.stat(tmp)
    if (mine.st_uid, mine.st_gid) != (st.st_uid, st.st_gid) and hasattr(os, "chown"):
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except OSError:
            with contextlib.suppress(OSError):
                os.chown(tmp, -1, st.st_gid)
    os.chmod(tmp, stat.S_IMODE(st.st_mode))  # after chown, which may clear set-id bits


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
    return OutputExistsError.about(
        "output appeared during processing: {dest} (another run?); not replaced (use {overwrite})",
        dest=dest,
    )


def publish(tmp: Path, dest: Path, *, replace: bool = True) -> None:
    """fsync the finished ``tmp``, then give it the name ``dest``: over whatever holds
    it (``replace=True``; the replaced file's mode and owner are kept,
    :func:`keep_mode_and_owner`) or only if nothing does (:func:`commit_no_replace`).
    ``dest`` is the final file, not a symlink to it (see :func:`write_target`)."""
    if replace:
        keep_mode_and_owner(tmp, dest)
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
    (:class:`OutputExistsError`). A symlink ``dest`` is written through when
    replacing (:func:`write_target`)."""
    if replace:
        dest = write_target(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temps_once(dest.parent)
    tmp = temp_name(dest)
    try:
        yield tmp
        publish(tmp, dest, replace=replace)
    finally:
        with contextlib.suppress(FileNotFoundError, OSError):
            tmp.unlink()
