"""``--manifest run.jsonl``: one JSON line per finished file; makes runs resumable.

Each line records the input and output (paths or URLs), their sizes in bytes, the
SHA-256 of the input's bytes, the SHA-256 of the preset's canonical content and of
the output options (:func:`config_digest`), timings and the status. A rerun with
the same manifest skips a file when the latest ``ok`` line for its (input,
output) pair has the same input hash and config hash and the output is still
there with the recorded size; a changed input or preset redoes the file (and
appends a new line: the manifest is an append-only audit log).

Appends are whole-line ``os.write`` calls on an ``O_APPEND`` descriptor followed
by ``fsync``, serialised by a lock. A crash can leave at most the last line
truncated: reading skips lines that are not complete JSON objects, and the next
append first ends such a fragment with a newline so it stays on its own line.
The manifest is a local file written by one process (the driver).

:func:`check_manifest_path` refuses (before any work) a path that is a symlink, a
directory or another non-regular file (``/dev/null``, a FIFO), or an existing
non-empty file whose first line is not a manifest record; reading and appending
never follow a symlink (``O_NOFOLLOW``). Records written by ``process`` carry
``fxcli_version``; a record written by another fxcli version does not count as
finished (the file is redone), since the output may differ.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import numpy as np

from fxcli._version import __version__
from fxcli.errors import FxcliError

MANIFEST_VERSION = 1
_HASH_BLOCK = 1 << 20
#: keys every manifest record has (see :func:`fxcli.batch.work.run_task`)
RECORD_KEYS = frozenset({"input", "output", "status"})
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class ManifestError(FxcliError, ValueError):
    """``--manifest`` names something that is not a manifest (a usage error)."""


def _is_record(value: Any) -> bool:
    return isinstance(value, dict) and RECORD_KEYS <= value.keys()


def check_manifest_path(path: str | os.PathLike[str]) -> None:
    """Raise :class:`ManifestError` unless ``path`` is absent, or a regular file
    (not a symlink) that is empty or starts with a manifest record (a lone first
    line cut short by a crash is accepted)."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ManifestError.for_option("manifest", f"{p}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise ManifestError.for_option("manifest", f"{p}: is a symlink; give the file it points to")
    if stat.S_ISDIR(st.st_mode):
        raise ManifestError.for_option("manifest", f"{p}: is a directory; give a .jsonl file")
    if not stat.S_ISREG(st.st_mode):
        raise ManifestError.for_option("manifest", f"{p}: not a regular file (a device or FIFO)")
    try:
        fd = os.open(p, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ManifestError.for_option("manifest", f"{p}: not a regular file")
            head = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ManifestError.for_option(
            "manifest", f"{p}: cannot read: {exc.strerror or exc}"
        ) from None
    if not head.strip():
        return
    first, newline, _ = head.lstrip().partition(b"\n")
    try:
        ok = _is_record(json.loads(first))
    except (ValueError, UnicodeDecodeError):
        ok = not newline and first.startswith(b"{")  # a first record cut by a crash
    if not ok:
        raise ManifestError.for_option(
            "manifest",
            f"{p}: exists and its first line is not a manifest record "
            "(a JSON object with input, output and status); give a new or manifest file",
        )


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a local file's bytes (read in 1 MiB blocks)."""
    import hashlib  # here: loading OpenSSL is ~3 ms of a run that hashes nothing

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def _canonical(value: Any) -> Any:
    """JSON-able form of preset values (arrays by their float64 bytes' hash)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        import hashlib

        arr = np.ascontiguousarray(value, dtype=np.float64)
        return {"ndarray": list(arr.shape), "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def config_digest(preset: Any, options: dict[str, Any]) -> str:
    """SHA-256 of the preset's canonical content (output subtype, dither, and each
    step's type and validated keys, defaults filled in) and the output options
    (``--format``, ``--subtype``, ``--nonfinite``). Comments, key order, file name
    and description do not count; any value that changes the output does."""
    content = {
        "subtype": preset.subtype,
        "dither": preset.dither,
        "steps": [{"type": s.type, "params": _canonical(s.params)} for s in preset.steps],
        "options": _canonical(options),
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=True)
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Manifest:
    """An append-only JSON-lines run log; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str], *, fxcli_version: str | None = None) -> None:
        """``fxcli_version``: stamped on every appended record that lacks one."""
        self.path = Path(path)
        self.fxcli_version = fxcli_version
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, str], dict[str, Any]] = {}
        self.bad_lines = 0
        self._needs_newline = False
        self._load()

    def _load(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        except FileNotFoundError:
            return
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ManifestError.for_option("manifest", f"{self.path}: not a regular file")
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read()
        finally:
            os.close(fd)
        self._needs_newline = bool(data) and not data.endswith(b"\n")
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                self.bad_lines += 1  # a line cut short by a crash
                continue
            if isinstance(rec, dict) and "input" in rec and "output" in rec:
                self._latest[(str(rec["input"]), str(rec["output"]))] = rec
            else:
                self.bad_lines += 1

    def __len__(self) -> int:
        return len(self._latest)

    def latest(self, input: str, output: str) -> dict[str, Any] | None:
        """The last record for this (input, output) pair, or None."""
        return self._latest.get((input, output))

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line: a single ``write`` of the whole line, then fsync."""
        if self.fxcli_version is not None and "fxcli_version" not in record:
            record = {**record, "fxcli_version": self.fxcli_version}
        line = json.dumps(record, separators=(",", ":"), allow_nan=True).encode("utf-8") + b"\n"
        with self._lock:
            if self._needs_newline:
                line = b"\n" + line
                self._needs_newline = False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
            try:
                view = memoryview(line)
                while view:  # one write in practice; loop only on a short write
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            self._latest[(str(record["input"]), str(record["output"]))] = record


def is_done(
    prior: dict[str, Any] | None,
    input_sha256: str,
    config_sha256: str,
    output_bytes: int | None,
    fxcli_version: str = __version__,
) -> bool:
    """Whether ``prior`` (a manifest record) covers this run of the file: status ok,
    same input and config hashes, the output present with the recorded size
    (``output_bytes`` None: the output is missing), and not written by another
    fxcli version (records from before versions were recorded count as this one)."""
    return (
        prior is not None
        and prior.get("status") == "ok"
        and prior.get("fxcli_version", fxcli_version) == fxcli_version
        and prior.get("input_sha256") == input_sha256
        and prior.get("config_sha256") == config_sha256
        and output_bytes is not None
        and prior.get("output_bytes") == output_bytes
    )
