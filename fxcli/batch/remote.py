"""Inputs and outputs as fsspec URLs (``s3://``, ``gs://``, ``memory://``, ...).

- Inputs are listed remotely: a URL to a folder (prefix) is walked, a URL with
  ``*``/``?``/``[`` is globbed, other URLs are single files; non-audio objects are
  ignored and counted. Each input is spooled to a local temporary folder before
  decoding; :class:`Spool` bounds the bytes in it (input size plus an output
  estimate per file in flight), so a run never holds more than ``--spool-bytes``
  locally (a single file bigger than the bound runs alone).
- Outputs go to a local spool file first; when it is complete it is uploaded to a
  temporary key next to the destination (``.<name>.<token>.fxcli-tmp``) and then
  committed by a move (on object stores a server-side copy then delete; the final
  key appears only once the copy is complete). The final key is never
  half-written; a crash can leave a temporary key behind, which a retry of the
  same file removes.

fsspec is imported only when a URL is used (``pip install 'fxcli[remote]'`` plus
the store's package: ``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``).
"""

from __future__ import annotations

import glob as _glob
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, NamedTuple

from fxcli.io.atomic import temp_stem
from fxcli.io.audio import TEMP_MARK, TEMP_NAME
from fxcli.io.containers import check_output_name, is_audio_output_name
from fxcli.io.formats import AUDIO_EXTENSIONS
from fxcli.io.paths import UsageError, collect, collision, no_inputs, output_rel

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
#: default bound on the local spool (bytes)
DEFAULT_SPOOL_BYTES = 4 << 30


def is_url(s: str) -> bool:
    """Whether ``s`` is a URL with a scheme (``memory://x``), not a local path."""
    return bool(_URL.match(s))


def url_fs(url: str) -> tuple[Any, str]:
    """``(filesystem, path)`` for a URL; :class:`UsageError` when fsspec or the
    store's package is missing."""
    try:
        import fsspec
    except ImportError:
        raise UsageError(f"{url}: URLs need fsspec (pip install 'fxcli[remote]')") from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise UsageError(f"{url}: {str(exc).splitlines()[0]}") from None


def _join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel


@dataclass(frozen=True)
class Task:
    """One file to process: ``src`` and ``dest`` are local paths or URLs; ``rel`` is
    the output's path relative to OUTPUT (the shard key)."""

    src: str
    dest: str
    rel: str


def _is_audio(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in AUDIO_EXTENSIONS


def _list_remote(url: str) -> tuple[list[tuple[str, str]], int]:
    """(src URL, rel) pairs for one input URL, and the number of ignored objects.

    A store that cannot be listed (no credentials, access denied, network down: the
    store's own exceptions) is a :class:`UsageError` naming the URL and the reason in
    one line (issue 16: ``s3://`` without credentials printed a 70-line traceback)."""
    fs, path = url_fs(url)
    try:
        return _list_fs(url, fs, path)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - any store error: one line, no traceback
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise UsageError(
            f"INPUT {url}: cannot list it: {type(exc).__name__}" + (f": {reason}" if reason else "")
        ) from None


def _list_fs(url: str, fs: Any, path: str) -> tuple[list[tuple[str, str]], int]:
    proto = url[: url.index("://") + 3]

    def full(p: str) -> str:
        return fs.unstrip_protocol(p) if hasattr(fs, "unstrip_protocol") else proto + p

    pairs: list[tuple[str, str]] = []
    ignored = 0
    if _glob.has_magic(path):
        fixed = []
        for part in path.split("/"):
            if _glob.has_magic(part):
                break
            fixed.append(part)
        root = "/".join(fixed).rstrip("/")
        matches = sorted(fs.glob(path))
        if not matches:
            raise UsageError(f"INPUT {url!r}: no objects match this pattern")
        for m in matches:
            if fs.isdir(m):
                continue
            if _is_audio(m):
                rel = m[len(root) :].lstrip("/") if m.startswith(root) else m.rpartition("/")[2]
                pairs.append((full(m), rel))
            else:
                ignored += 1
        return pairs, ignored
    if fs.isdir(path):
        root = path.rstrip("/")
        for m in sorted(fs.find(root)):
            if _is_audio(m):
                rel = m[len(root) :].lstrip("/")
                pairs.append((full(m), rel))
            else:
                ignored += 1
        return pairs, ignored
    if fs.exists(path):
        return [(url, PurePosixPath(path).name)], 0
    raise UsageError(f"INPUT {url!r}: no such object or prefix")


class Collection(NamedTuple):
    """What :func:`collect_tasks` found: the tasks, the count of ignored non-audio
    files, and the count of inputs dropped for lying under OUTPUT."""

    tasks: list[Task]
    ignored: int
    in_output: int = 0


def collect_tasks(
    inputs: list[str],
    output: str,
    listed: list[str] | None,
    out_ext: str | None,
    *,
    keep_extension: bool = False,
) -> Collection:
    """Like :func:`fxcli.io.paths.collect` (same mapping rules), for inputs and OUTPUT
    that may be URLs."""
    out_remote = is_url(output)
    url_inputs = [i for i in inputs if is_url(i)] + [i for i in listed or [] if is_url(i)]
    local_inputs = [i for i in inputs if not is_url(i)]
    local_listed = [i for i in listed or [] if not is_url(i)]
    if not url_inputs and not out_remote:
        c = collect(inputs, Path(output), listed, out_ext, keep_extension=keep_extension)
        root = Path(output)
        tasks: list[Task] = []
        for j in c.jobs:
            try:
                rel = j.dest.relative_to(root).as_posix()
            except ValueError:
                rel = j.dest.name
            tasks.append(Task(str(j.src), str(j.dest), j.dest.name if rel == "." else rel))
        return Collection(tasks, c.ignored, c.in_output)

    out_suffix = PurePosixPath(output.rstrip("/")).suffix.lower() if out_remote else ""
    pairs: list[tuple[str, str]] = []
    ignored = in_output = 0
    if local_inputs or local_listed:
        fake = Path(tempfile.gettempdir()) / f"fxcli-remote-output-{os.urandom(6).hex()}"
        root = fake if out_remote else Path(output)
        c = collect(local_inputs, root, local_listed or None, None)
        ignored += c.ignored
        in_output += c.in_output
        pairs += [(str(j.src), j.dest.relative_to(root).as_posix()) for j in c.jobs]
    for url in url_inputs:
        got, ign = _list_remote(url)
        pairs += got
        ignored += ign
    if not pairs:
        raise no_inputs()
    single = len(pairs) == 1 and len(inputs) == 1 and not listed
    single_file = single and (
        is_audio_output_name("x" + out_suffix)
        if out_remote
        else (is_audio_output_name(output) and not Path(output).is_dir())
    )
    if single_file and is_url(inputs[0]) and url_fs(inputs[0])[0].isdir(url_fs(inputs[0])[1]):
        single_file = False
    if single_file:
        check_output_name(output, out_ext)
    tasks = []
    seen: dict[str, str] = {}
    for src, rel in pairs:
        rel_p = PurePosixPath(rel)
        if out_ext is not None and not single_file:
            rel_p = PurePosixPath(output_rel(rel_p, out_ext, keep_extension).as_posix())
        if single_file:
            dest = output
        elif out_remote:
            dest = _join(output, rel_p.as_posix())
        else:
            dest = str(Path(output) / PurePath(rel_p.as_posix()))
        if dest in seen:
            raise collision(seen[dest], src, dest, out_ext, keep_extension)
        seen[dest] = src
        tasks.append(Task(src, dest, rel_p.as_posix() if not single_file else rel_p.name))
    return Collection(tasks, ignored, in_output)


# --------------------------------------------------------------------------- object ops


def size_of(target: str) -> int | None:
    """Size in bytes of a local file or object, None when it does not exist."""
    if not is_url(target):
        try:
            return os.path.getsize(target)
        except OSError:
            return None
    fs, path = url_fs(target)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return None
    if info.get("type") == "directory":
        return None
    return int(info.get("size") or 0)


def fingerprint(url: str) -> dict[str, Any]:
    """Cheap identity of an object from its listing: size and, where the store
    gives them, ETag / version / modification time. Used to skip re-downloading
    finished inputs on resume (the SHA-256 is computed on the spooled copy)."""
    fs, path = url_fs(url)
    info = fs.info(path)
    fp: dict[str, Any] = {"size": int(info.get("size") or 0)}
    for key in ("ETag", "etag", "VersionId", "generation", "LastModified", "mtime", "created"):
        if info.get(key) is not None:
            fp[key] = str(info[key])
    return fp


def fetch(url: str, local: Path) -> None:
    """Copy an object to a local file."""
    fs, path = url_fs(url)
    local.parent.mkdir(parents=True, exist_ok=True)
    fs.get_file(path, str(local))


def temp_key(dest: str) -> str:
    """A temporary name next to ``dest``: hidden, unique, marked like AtomicWriter's."""
    parent, _, name = dest.rstrip("/").rpartition("/")
    return f"{parent}/.{name}.{os.urandom(6).hex()}{TEMP_MARK}"


def upload_atomic(local: Path, dest_url: str) -> None:
    """Upload ``local`` to a temporary key, then commit it to ``dest_url`` by a move.
    On any failure the temporary key is removed (best effort) and the error raised."""
    fs, path = url_fs(dest_url)
    tmp = temp_key(path)
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if "file" in protocols:  # a local folder (file://) must exist; object stores have none
        fs.makedirs(path.rstrip("/").rpartition("/")[0] or "/", exist_ok=True)
    try:
        fs.put_file(str(local), tmp)
        fs.mv(tmp, path)
    except BaseException:
        try:
            fs.rm(tmp)
        except Exception:  # noqa: BLE001 - cleanup only
            pass
        raise
    fs.invalidate_cache()


def remove_stale_temps(dest: str) -> int:
    """Remove temporary files/keys of an earlier, interrupted attempt at ``dest``
    (``.<name>.*.fxcli-tmp`` next to it). Only call this while no other attempt at
    the same output runs. Returns how many were removed."""
    removed = 0
    if is_url(dest):
        fs, path = url_fs(dest)
        parent, _, name = path.rstrip("/").rpartition("/")
        try:
            entries = fs.ls(parent, detail=False)
        except FileNotFoundError:
            return 0
        ours = re.compile(rf"\.{re.escape(name)}\.[0-9a-f]{{12}}{re.escape(TEMP_MARK)}")
        for e in entries:
            if ours.fullmatch(e.rstrip("/").rpartition("/")[2]):
                fs.rm(e)
                removed += 1
        return removed
    d = Path(dest)
    if d.parent.is_dir():
        stem = temp_stem(d)  # the name as temporary names hold it (long names cut)
        for e in d.parent.glob(f".{_glob.escape(stem)}.*{TEMP_MARK}"):
            m = TEMP_NAME.fullmatch(e.name)  # AtomicWriter's temporary names
            if m is None or m.group("name") != stem:
                continue
            try:
                e.unlink()
                removed += 1
            except OSError:
                pass
    return removed


class Spool:
    """A local temporary folder with a bound on the bytes reserved in it.

    :meth:`reserve` blocks until the reservation fits (or nothing else is
    reserved, so a file larger than the bound still runs, alone)."""

    def __init__(self, max_bytes: int = DEFAULT_SPOOL_BYTES, root: str | None = None) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes: got {max_bytes}; allowed: >= 1")
        self.max_bytes = max_bytes
        self.dir = Path(tempfile.mkdtemp(prefix="fxcli-spool-", dir=root))
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[Path]:
        """Reserve ``nbytes`` and yield a fresh private subfolder (removed after)."""
        with self._cond:
            self._cond.wait_for(lambda: self.used == 0 or self.used + nbytes <= self.max_bytes)
            self.used += nbytes
            self.peak = max(self.peak, self.used)
        sub = Path(tempfile.mkdtemp(dir=self.dir))
        try:
            yield sub
        finally:
            shutil.rmtree(sub, ignore_errors=True)
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
