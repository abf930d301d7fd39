"""The per-file unit of work shared by every executor: manifest check, spooling of
remote inputs, the engine, atomic upload of remote outputs, the manifest record.

Runs the same in a local worker thread and in a Ray worker process; it never
raises for per-file problems (the result says ``failed``), like
:meth:`fxcli.engine.runner.Engine.process`.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from fxcli.batch import remote
from fxcli.batch.manifest import MANIFEST_VERSION, is_done, sha256_file
from fxcli.engine.runner import Engine, FileResult, ProgressFn
from fxcli.errors import AudioError
from fxcli.io.paths import Job

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


def _result(task: remote.Task, status: str, note: str | None = None, err: str | None = None):
    res = FileResult(task.src, task.dest, status, error=err)
    if note:
        res.notes.append(note)
    return res


def run_task(
    task: remote.Task,
    engine: Engine,
    opts: WorkOptions,
    *,
    prior: dict[str, Any] | None = None,
    spool: remote.Spool | None = None,
    progress: ProgressFn | None = None,
    attempt: int = 0,
) -> tuple[FileResult, dict[str, Any] | None]:
    """Process one task; returns the result and the manifest record to append
    (None when the manifest already covers the file).

    ``prior``: the manifest's latest record for this (input, output), if any.
    ``attempt`` > 0 marks a retry after a lost worker: temporary files of the lost
    attempt are removed first, and an output that exists now (the refuse/skip
    policies were checked before the first attempt) was committed by the lost
    attempt, so it is kept and not written twice.
    """
    t0 = time.perf_counter()
    started = _now()
    src_remote, dest_remote = remote.is_url(task.src), remote.is_url(task.dest)
    timings: dict[str, float] = {}
    in_sha: str | None = None
    in_fp: dict[str, Any] | None = None
    in_bytes: int | None = None
    try:
        in_bytes = remote.size_of(task.src)
        if in_bytes is None and src_remote:
            err = f"cannot read {task.src}: no such object"
            res = _result(task, "failed", err=err)
            return res, _record(task, res, opts, None, None, None, None, started, t0, timings)
        out_bytes = remote.size_of(task.dest)
        if attempt > 0:
            remote.remove_stale_temps(task.dest)
            if out_bytes is not None and opts.overwrite != "overwrite":
                # absent (or skip/refuse would have ended attempt 0) before the lost
                # attempt began: that attempt committed it, completely (atomic commit)
                res = _result(task, "ok", note="output committed by an earlier attempt")
                if opts.hash_inputs and not src_remote and in_bytes is not None:
                    in_sha = sha256_file(task.src)
                return res, _record(
                    task, res, opts, in_bytes, in_sha, None, out_bytes, started, t0, timings
                )
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
                return _result(task, "skipped", note="finished in the manifest"), None
        if dest_remote and out_bytes is not None:
            if opts.overwrite == "skip":
                return _result(task, "skipped", note="output exists"), None
            if opts.overwrite != "overwrite":
                err = opts.words(
                    AudioError.about(
                        "output {dest} exists (use {overwrite} or {skip_existing})",
                        dest=task.dest,
                    )
                )
                res = _result(task, "failed", err=err)
                return res, _record(
                    task, res, opts, in_bytes, in_sha, in_fp, out_bytes, started, t0, timings
                )
        if not (src_remote or dest_remote):
            if opts.hash_inputs and in_sha is None and in_bytes is not None:
                t = time.perf_counter()
                in_sha = sha256_file(task.src)
                timings["hash_s"] = time.perf_counter() - t
            res = engine.process(Job(Path(task.src), Path(task.dest)), progress)
        else:
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
                        return _result(task, "skipped", note="finished in the manifest"), None
                dest = (
                    tmp / ("out" + PurePosixPath(task.dest).suffix)
                    if dest_remote
                    else Path(task.dest)
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
        res = _result(task, "failed", err=f"{type(exc).__name__}: {exc}")
    if res.status == "skipped":
        return res, None
    out_now = remote.size_of(task.dest) if res.status == "ok" else None
    timings["engine_s"] = res.elapsed_s
    res.elapsed_s = round(time.perf_counter() - t0, 6)
    return res, _record(task, res, opts, in_bytes, in_sha, in_fp, out_now, started, t0, timings)


def _record(
    task: remote.Task,
    res: FileResult,
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
        "output_frames": res.output_frames,
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
