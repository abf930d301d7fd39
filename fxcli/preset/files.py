"""The one rule for files that a preset names (``coefficients_file``, ``ir_file``).

Presets travel between users, so a preset is untrusted input: it may read only

- **regular files** (never a FIFO, device, socket or folder; a FIFO is opened with
  ``O_NONBLOCK``, so it cannot hang, and refused by ``fstat``),
- **inside its own folder**: ``Path.resolve(strict=True)`` of the target (symlinks
  followed) must lie under the preset folder's resolved path; ``allow_outside``
  (``fxcli process --allow-preset-paths``, for trusted presets) lifts only this rule,
- **not on a kernel pseudo-filesystem** (``/proc``, ``/sys``, ``/dev``: procfs
  reports ``/proc/self/environ`` as a regular file of size 0),
- **of bounded size**, checked with ``os.fstat`` on the opened descriptor and by
  reading at most ``limit + 1`` bytes.

Errors are :class:`PresetFileError` (a ``ValueError``) whose one-line ``reason`` names
the rule and never quotes the file's content; the preset loader prefixes them with
``FILE:LINE: step N (TYPE): key 'KEY':`` and raises a ``PresetError``.
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

from fxcli.errors import FxcliError
from fxcli.preset.spec import MAX_COEFFICIENTS_FILE_BYTES, MAX_IR_FILE_BYTES

__all__ = [
    "FILE_KEYS",
    "FileTooLargeError",
    "PresetFileError",
    "read_preset_file",
    "read_regular_file",
    "resolve_preset_file",
]

#: every preset key that names a file, and the size limit of that file in bytes
FILE_KEYS = {
    "coefficients_file": MAX_COEFFICIENTS_FILE_BYTES,
    "ir_file": MAX_IR_FILE_BYTES,
}

#: top-level folders whose files are never read (kernel pseudo-filesystems, devices)
PSEUDO_ROOTS = ("/proc", "/sys", "/dev")


class PresetFileError(FxcliError, ValueError):
    """A file a preset names may not be read; ``reason`` never quotes the file's content."""

    @property
    def reason(self) -> str:
        return str(self)


class FileTooLargeError(PresetFileError):
    """The file is over the size limit (``size`` is what fstat reported or what was read)."""

    def __init__(self, reason: str, size: int, limit: int) -> None:
        super().__init__(reason)
        self.size = size
        self.limit = limit


def _mib(n: int) -> str:
    return f"{n // 2**20} MiB" if n % 2**20 == 0 else f"{n} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


@functools.lru_cache(maxsize=1)
def _pseudo_devices() -> frozenset[int]:
    """st_dev of the pseudo-filesystems mounted at PSEUDO_ROOTS (those that are
    separate mounts), so that a bind mount of procfs elsewhere is refused too."""
    try:
        root_dev = os.stat("/").st_dev
    except OSError:  # pragma: no cover
        return frozenset()
    devs = set()
    for root in PSEUDO_ROOTS:
        try:
            dev = os.stat(root).st_dev
        except OSError:
            continue
        if dev != root_dev:
            devs.add(dev)
    return frozenset(devs)


def _on_pseudo_root(path: Path) -> bool:
    p = path.as_posix()
    return any(p == root or p.startswith(root + "/") for root in PSEUDO_ROOTS)


def _check_stat(st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise PresetFileError(f"is {_kind(st.st_mode)}, not a regular file")
    if st.st_dev in _pseudo_devices():
        raise PresetFileError(
            "is on a kernel pseudo-filesystem (/proc, /sys, /dev); presets may not read it"
        )
    if st.st_size > limit:
        raise FileTooLargeError(f"is larger than {_mib(limit)}", st.st_size, limit)


def _check_path(path: Path, limit: int) -> None:
    """Checks that need no open(): the resolved path and its (symlink-followed) stat,
    so that a device is never even opened."""
    if _on_pseudo_root(path):
        raise PresetFileError(
            "is on a kernel pseudo-filesystem (/proc, /sys, /dev); presets may not read it"
        )
    try:
        st = os.stat(path)
    except OSError as exc:
        raise PresetFileError(f"is not a readable file ({exc.strerror})") from None
    _check_stat(st, limit)


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit`` bytes).

    Refuses (:class:`PresetFileError`, no content in the message) paths under
    /proc, /sys or /dev, anything not a regular file (checked with ``stat`` before
    opening and with ``fstat`` on the descriptor opened with ``O_NONBLOCK``, so a
    FIFO cannot block), and files over ``limit`` bytes (:class:`FileTooLargeError`;
    fstat's size, then a read of at most ``limit + 1`` bytes, since some files
    report a size of 0)."""
    p = Path(os.path.realpath(os.fspath(path)))
    _check_path(p, limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except OSError as exc:
        raise PresetFileError(f"is not a readable file ({exc.strerror})") from None
    try:
        _check_stat(os.fstat(fd), limit)
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            try:
                chunk = os.read(fd, min(limit + 1 - got, 1 << 20))
            except OSError as exc:
                raise PresetFileError(f"cannot be read ({exc.strerror})") from None
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:
            raise FileTooLargeError(f"is larger than {_mib(limit)}", got, limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


def resolve_preset_file(
    preset_dir: Path | None, value: str, key: str, *, allow_outside: bool = False
) -> Path:
    """The resolved path of the file a preset names in ``key`` (one of
    :data:`FILE_KEYS`, which sets the size limit), checked by the rules of this
    module (see the module docstring); :class:`PresetFileError` otherwise.

    ``value`` is relative to ``preset_dir`` (the working folder when None, e.g. a
    preset parsed from text). ``allow_outside`` lifts only the folder rule."""
    limit = FILE_KEYS[key]
    folder = Path.cwd() if preset_dir is None else Path(preset_dir)
    raw = Path(value).expanduser()
    path = raw if raw.is_absolute() else folder / raw

    def outside(target: Path) -> None:
        try:
            root: Path | None = folder.resolve(strict=True)
        except (OSError, RuntimeError):
            root = None
        if root is None or not target.is_relative_to(root):
            raise PresetFileError.about(
                "{value!r} is outside the preset's folder {root}; presets may only read "
                "files in their own folder (use {allow_preset_paths} for trusted presets)",
                value=value,
                root=root or folder,
            )

    if not allow_outside:
        # the folder rule first, on the path as far as it exists (links followed), so
        # a preset cannot learn whether a file outside its folder exists
        try:
            outside(path.resolve(strict=False))
        except (OSError, RuntimeError):
            pass  # a symlink loop: the strict resolve below says so
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # missing, symlink loop, permission
        why = getattr(exc, "strerror", None) or "cannot be resolved"
        raise PresetFileError(f"{value!r} is not a readable file ({why})") from None
    if not allow_outside:
        outside(resolved)
    try:
        _check_path(resolved, limit)
    except FileTooLargeError as exc:
        raise FileTooLargeError(f"{value!r} {exc.reason}", exc.size, exc.limit) from None
    except PresetFileError as exc:
        raise PresetFileError(f"{value!r} {exc.reason}") from None
    return resolved


def read_preset_file(path: Path, key: str, value: str) -> bytes:
    """The bytes of ``path``, resolved by :func:`resolve_preset_file` from the preset's
    ``value`` for ``key``, read with the checks of :func:`read_regular_file` (again:
    the file may have changed since)."""
    try:
        return read_regular_file(path, FILE_KEYS[key])
    except FileTooLargeError as exc:
        raise FileTooLargeError(f"{value!r} {exc.reason}", exc.size, exc.limit) from None
    except PresetFileError as exc:
        raise PresetFileError(f"{value!r} {exc.reason}") from None
