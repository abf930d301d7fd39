"""The per-file unit of work shared by every executor: manifest check, spooling of
remote inputs, the worker, atomic upload of remote outputs, the manifest record.

The worker is pluggable (:class:`FileWorker`): ``process`` runs an
:class:`~fxcli.engine.runner.Engine` (a preset's chain, audio out), ``features`` a
:class:`~fxcli.engine.feature_engine.FeatureEngine` (arrays out). Runs the same in a
local worker thread and in a Ray worker process; it never raises for per-file
problems (the result says ``failed``), like :meth:`fxcli.engine.runner.Engine.process`.
Local files that a worker runs in windows (:func:`before_local`, :func:`after_local`)
get the same checks and records as :func:`run_task`.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from fxcli.batch import remote
from fxcli.batch.manifest import MANIFEST_VERSION, is_done, sha256_file
from fxcli.engine.runner import FileResult, ProgressFn
from fxcli.errors import AudioError
from fxcli.io.paths import Job


class FileWorker(Protocol):
    """What runs one file: ``process(job, progress)`` returns a result with
    ``input``, ``output``, ``status`` (``ok`` | ``failed`` | ``skipped``), ``error``,
    ``notes``, ``frames``, ``seconds`` and ``elapsed_s``, and never raises for a
    per-file problem; setting ``cancel`` stops it at its next chunk
    (:class:`~fxcli.engine.runner.Cancelled`). An optional ``result_type`` is the
    result class built for files it does not run (default
    :class:`~fxcli.engine.runner.FileResult`)."""

    cancel: Any

    def process(self, job: Job, progress: ProgressFn | None = None, /) -> Any: ...


#: bytes reserved in the spool per byte of a remote input (the input, plus room for
#: the output: WAV out of FLAC in is about twice the size)
SPOOL_FACTOR = 3


@dataclass(frozen=True)
class WorkOptions:
    """What every file of a run shares (picklable: sent to Ray workers)."""

    config_sha256: str
    overwrite: str = "refuse"  # refuse | overwrite | skip
    hash_inputs: bool = False  # with a manifest
    words: Callable[[BaseException], str] = str  # an error's message in a result


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _result(
    task: remote.Task,
    status: str,
    note: str | None = None,
    err: str | None = None,
    *,
    kind: type = FileResult,
) -> Any:
    res = kind(task.src, task.dest, status, error=err)
    if note:
        res.notes.append(note)
    return res


@dataclass
class Pending:
    """A local file that passed the checks of :func:`before_local` and waits for its
    worker; :func:`after_local` turns the worker's result into the record."""

    started: str
    t0: float
    in_bytes: int | None
    in_sha: str | None
    timings: dict[str, float]


def before_local(
    task: remote.Task,
    opts: WorkOptions,
    *,
    prior: dict[str, Any] | None = None,
    attempt: int = 0,
    kind: type = FileResult,
) -> tuple[Any, dict[str, Any] | None] | Pending:
    """The checks before a local file runs (a retry's leftovers, the manifest):
    returns ``(result, record)`` when the file is done without running it, else a
    :class:`Pending`. Never raises for a per-file problem."""
    t0 = time.perf_counter()
    started = _now()
    timings: dict[str, float] = {}
    in_sha: str | None = None
    in_bytes: int | None = None
    try:
        in_bytes = remote.size_of(task.src)
        out_bytes = remote.size_of(task.dest)
        if attempt > 0:
            early = _committed_before(task, opts, in_bytes, out_bytes, started, t0, kind)
            if early is not None:
                return early
        if opts.hash_inputs and in_bytes is not None:
            t = time.perf_counter()
            in_sha = sha256_file(task.src)
            timings["hash_s"] = time.perf_counter() - t
            if prior is not None and is_done(prior, in_sha, opts.config_sha256, out_bytes):
                return _result(task, "skipped", note="finished in the manifest", kind=kind), None
    except Exception as exc:  # noqa: BLE001 - this file fails, the run goes on
        res = _result(task, "failed", err=f"{type(exc).__name__}: {exc}", kind=kind)
        return res, _record(task, res, opts, in_bytes, in_sha, None, None, started, t0, timings)
    return Pending(started, t0, in_bytes, in_sha, timings)


def after_local(
    task: remote.Task, pending: Pending, res: Any, opts: WorkOptions
) -> tuple[Any, dict[str, Any] | None]:
    """The result of a local file its worker ran, and its manifest record (None for a
    skipped file)."""
    res.input, res.output = task.src, task.dest
    return _finished(task, res, opts, pending, None)


def _committed_before(
    task: remote.Task,
    opts: WorkOptions,
    in_bytes: int | None,
    out_bytes: int | None,
    started: str,
    t0: float,
    kind: type,
) -> tuple[Any, dict[str, Any] | None] | None:
    """A retry after a lost worker: temporary files of the lost attempt are removed;
    an output that exists now was committed by it (the refuse/skip policies were
    checked before the first attempt), completely (atomic commit), and is kept."""
    remote.remove_stale_temps(task.dest)
    if out_bytes is None or opts.overwrite == "overwrite":
        return None
    res = _result(task, "ok", note="output committed by an earlier attempt", kind=kind)
    in_sha = None
    if opts.hash_inputs and not remote.is_url(task.src) and in_bytes is not None:
        in_sha = sha256_file(task.src)
    return res, _record(task, res, opts, in_bytes, in_sha, None, out_bytes, started, t0, {})


def _finished(
    task: remote.Task,
    res: Any,
    opts: WorkOptions,
    pending: Pending,
    in_fp: dict[str, Any] | None,
) -> tuple[Any, dict[str, Any] | None]:
    if res.status == "skipped":
        return res, None
    out_now = remote.size_of(task.dest) if res.status == "ok" else None
    pending.timings["engine_s"] = res.elapsed_s
    res.elapsed_s = round(time.perf_counter() - pending.t0, 6)
    rec = _record(
        task, res, opts, pending.in_bytes, pending.in_sha, in_fp, out_now, pending.started,
        pending.t0, pending.timings,
    )  # fmt: skip
    return res, rec


def run_task(
    task: remote.Task,
    engine: FileWorker,
    opts: WorkOptions,
    *,
    prior: dict[str, Any] | None = None,
    spool: remote.Spool | None = None,
    progress: ProgressFn | None = None,
    attempt: int = 0,
) -> tuple[Any, dict[str, Any] | None]:
    """Run one task on ``engine`` (any :class:`FileWorker`); returns the result and
    the manifest record to append (None when the manifest already covers the file).

    ``prior``: the manifest's latest record for this (input, output), if any.
    ``attempt`` > 0 marks a retry after a lost worker: temporary files of the lost
    attempt are removed first, and an output that exists now (the refuse/skip
    policies were checked before the first attempt) was committed by the lost
    attempt, so it is kept and not written twice.
    """
    kind: type = getattr(engine, "result_type", FileResult)
    src_remote, dest_remote = remote.is_url(task.src), remote.is_url(task.dest)
    if not (src_remote or dest_remote):
        before = before_local(task, opts, prior=prior, attempt=attempt, kind=kind)
        if not isinstance(before, Pending):
            return before
        try:
            res = engine.process(Job(Path(task.src), Path(task.dest)), progress)
        except Exception as exc:  # noqa: BLE001 - a worker's bug fails this file only
            res = _result(task, "failed", err=f"{type(exc).__name__}: {exc}", kind=kind)
        return after_local(task, before, res, opts)
    t0 = time.perf_counter()
    started = _now()
    timings: dict[str, float] = {}
    in_sha: str | None = None
    in_fp: dict[str, Any] | None = None
    in_bytes: int | None = None
    try:
        in_bytes = remote.size_of(task.src)
        if in_bytes is None and src_remote:
            err = f"cannot read {task.src}: no such object"
            res = _result(task, "failed", err=err, kind=kind)
            return res, _record(task, res, opts, None, None, None, None, started, t0, timings)
        out_bytes = remote.size_of(task.dest)
        if attempt > 0:
            early = _committed_before(task, opts, in_bytes, out_bytes, started, t0, kind)
            if early is not None:
                return early
        if opts.hash_inputs and prior is not None:
            if src_remote:
                in_fp = remote.fingerprint(task.src)
                if len(in_fp) > 1 and prior.get("input_fingerprint") == in_fp:
                    in_sha = prior.get("input_sha256")
            if in_sha is None and not src_remote and in_bytes is not None:
                t = time.perf_counter()
                in_sha = sha256_file(task.src)
                timings["hash_s"] = time.perf_counter() - t
            if in_sha is not None and is_done(prior, in_sha, opts.config_sha256, out_bytes):
                return _result(task, "skipped", note="finished in the manifest", kind=kind), None
        if dest_remote and out_bytes is not None:
            if opts.overwrite == "skip":
                return _result(task, "skipped", note="output exists", kind=kind), None
            if opts.overwrite != "overwrite":
                err = opts.words(
                    AudioError.about(
                        "output {dest} exists (use {overwrite} or {skip_existing})",
                        dest=task.dest,
                    )
                )
                res = _result(task, "failed", err=err, kind=kind)
                return res, _record(
                    task, res, opts, in_bytes, in_sha, in_fp, out_bytes, started, t0, timings
                )
        if spool is None:
            raise RuntimeError("run_task: remote input or output without a spool")
        with spool.reserve(max(1, in_bytes or 0) * SPOOL_FACTOR) as tmp:
            src = Path(task.src)
            if src_remote:
                if in_fp is None and opts.hash_inputs:
                    in_fp = remote.fingerprint(task.src)
                src = tmp / ("in" + PurePosixPath(task.src).suffix)
                t = time.perf_counter()
                remote.fetch(task.src, src)
                timings["fetch_s"] = time.perf_counter() - t
            if opts.hash_inputs and in_sha is None:
                t = time.perf_counter()
                in_sha = sha256_file(src)
                timings["hash_s"] = time.perf_counter() - t
                if src_remote and is_done(prior, in_sha, opts.config_sha256, out_bytes):
                    res = _result(task, "skipped", note="finished in the manifest", kind=kind)
                    return res, None
            dest = (
                tmp / ("out" + PurePosixPath(task.dest).suffix) if dest_remote else Path(task.dest)
            )
            res = engine.process(Job(src, dest), progress)
            if res.status == "ok" and dest_remote:
                t = time.perf_counter()
                try:
                    remote.upload_atomic(dest, task.dest)
                except Exception as exc:  # noqa: BLE001 - any store error fails the file
                    res.status, res.error = "failed", f"upload to {task.dest}: {exc}"
                timings["upload_s"] = time.perf_counter() - t
        res.input, res.output = task.src, task.dest
    except Exception as exc:  # noqa: BLE001 - store/network errors fail this file only
        res = _result(task, "failed", err=f"{type(exc).__name__}: {exc}", kind=kind)
    return _finished(task, res, opts, Pending(started, t0, in_bytes, in_sha, timings), in_fp)


def _record(
    task: remote.Task,
    res: Any,
    opts: WorkOptions,
    in_bytes: int | None,
    in_sha: str | None,
    in_fp: dict[str, Any] | None,
    out_bytes: int | None,
    started: str,
    t0: float,
    timings: dict[str, float],
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "v": MANIFEST_VERSION,
        "input": task.src,
        "output": task.dest,
        "status": res.status,
        "input_bytes": in_bytes,
        "input_sha256": in_sha,
        "output_bytes": out_bytes,
        "config_sha256": opts.config_sha256,
        "frames": res.frames,
        "output_frames": getattr(res, "output_frames", None),
        "seconds": res.seconds,
        "started": started,
        "finished": _now(),
        "elapsed_s": round(time.perf_counter() - t0, 6),
        "timings_s": {k: round(v, 6) for k, v in timings.items()},
    }
    if in_fp is not None:
        rec["input_fingerprint"] = in_fp
    if res.error:
        rec["error"] = res.error
    if res.notes:
        rec["notes"] = list(res.notes)
    return rec
