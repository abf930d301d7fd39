"""Executors: who runs :func:`fxcli.batch.work.run_task` for each file.

- :func:`run_local`: a thread pool in this process with one
  :class:`~fxcli.engine.runner.Engine` (pipeline, designed chains) per device;
  each worker thread is bound to one device, round-robin, so files spread evenly
  across ``--device`` lists. Kernels, libsndfile and hashing release the GIL, so
  threads are the CPU workers that decode/encode for the devices.
- :func:`run_ray`: one Ray task per file on a Ray cluster (``--executor ray``),
  each asking for ``1 / files_per_gpu`` GPU (or one CPU); a worker process keeps
  one Engine per configuration for all the files it runs. Results stream back to
  the driver as they finish (``ray.wait``). A lost worker (process killed, node
  gone) makes the driver resubmit that file, up to ``max_retries`` times; outputs
  are committed atomically, a retry first removes the lost attempt's temporary
  files, and an output that the lost attempt had already committed is kept (not
  written twice). Ray is imported only here, only when this executor runs.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fxcli.batch.manifest import Manifest
from fxcli.batch.remote import Spool, Task
from fxcli.batch.work import WorkOptions, run_task
from fxcli.engine.runner import Cancelled, Engine, FileResult, ProgressFn
from fxcli.io.containers import LossyOptions
from fxcli.io.paths import UsageError
from fxcli.preset.loader import Preset

ResultFn = Callable[[FileResult, "dict[str, Any] | None"], None]


@dataclass(frozen=True)
class EngineConfig:
    """How to build an Engine (picklable: Ray workers build their own)."""

    preset: Preset
    chunk_seconds: float | None = None
    fmt: str = "same"
    subtype: str = "same"
    nonfinite: str = "error"
    lossy: LossyOptions | None = None
    tags: bool = True
    strict: bool = False  # missed promises fail the file
    words: Callable[[BaseException], str] = str  # an error's message in a result

    def build(self, device: Any, overwrite: str) -> Engine:
        return Engine(
            self.preset,
            device,
            chunk_seconds=self.chunk_seconds,
            fmt=self.fmt,
            subtype=self.subtype,
            overwrite=overwrite,
            nonfinite=self.nonfinite,
            lossy=self.lossy,
            tags=self.tags,
            strict=self.strict,
            words=self.words,
        )


def run_local(
    tasks: list[Task],
    engines: list[Engine],
    opts: WorkOptions,
    *,
    workers: int,
    on_result: ResultFn,
    manifest: Manifest | None = None,
    spool: Spool | None = None,
    progress: ProgressFn | None = None,
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """Run the tasks on ``workers`` threads, thread ``i`` feeding ``engines[i % n]``.

    ``on_result(result, record)`` is called in input order on this thread; the
    manifest ``record`` is appended (and fsync'd) by the worker as soon as its file
    finishes, so a killed run keeps every finished file's record. Returns early,
    without raising, once ``stopped()`` is true (engines' ``cancel`` set by the
    caller)."""
    if not engines:
        raise ValueError("run_local: engines: got none; allowed: one or more")
    counter = itertools.count()
    bound = threading.local()

    def init() -> None:
        bound.engine = engines[next(counter) % len(engines)]

    def one(task: Task) -> tuple[FileResult, dict[str, Any] | None]:
        prior = manifest.latest(task.src, task.dest) if manifest is not None else None
        res, rec = run_task(task, bound.engine, opts, prior=prior, spool=spool, progress=progress)
        if rec is not None and manifest is not None:
            manifest.append(rec)  # as each file finishes, not in input order
        return res, rec

    with ThreadPoolExecutor(
        max_workers=max(1, workers), thread_name_prefix="fxcli-file", initializer=init
    ) as pool:
        futures = [pool.submit(one, t) for t in tasks]
        for fut in futures:  # results in input order
            if stopped():
                fut.cancel()
            try:
                res, rec = fut.result()
            except (Cancelled, CancelledError):
                continue
            on_result(res, rec)


# --------------------------------------------------------------------------- Ray

_WORKER_ENGINES: dict[str, Engine] = {}
_WORKER_SPOOL: list[Spool] = []


def _worker_engine(cfg: EngineConfig, device: str, overwrite: str) -> Engine:
    import pickle

    from fxcli.engine.device import resolve_device

    key = hashlib.sha256(pickle.dumps((cfg, device, overwrite))).hexdigest()
    eng = _WORKER_ENGINES.get(key)
    if eng is None:
        eng = cfg.build(resolve_device(device), overwrite)
        _WORKER_ENGINES[key] = eng
    return eng


def _ray_entry(
    task: Task,
    cfg: EngineConfig,
    device: str,
    opts: WorkOptions,
    prior: dict[str, Any] | None,
    attempt: int,
    spool_bytes: int,
    fault_dir: str | None,
) -> tuple[FileResult, dict[str, Any] | None]:
    """Body of one Ray task (runs in a worker process)."""
    engine = _worker_engine(cfg, device, opts.overwrite)
    if not _WORKER_SPOOL:
        _WORKER_SPOOL.append(Spool(spool_bytes))
    progress: ProgressFn | None = None
    if fault_dir is not None:
        # test hook: lose this worker in the middle of the file, once, for the files
        # that have a marker (fault_marker) in fault_dir
        marker = fault_marker(fault_dir, task)
        if marker.exists():
            marker.unlink()

            def progress(n: int) -> None:
                os._exit(1)

    return run_task(
        task, engine, opts, prior=prior, spool=_WORKER_SPOOL[0], progress=progress, attempt=attempt
    )


def fault_marker(fault_dir: str, task: Task) -> Path:
    """Test hook of :func:`run_ray`: a file here makes the worker running ``task``
    die (``os._exit``) after its first chunk, once."""
    return Path(fault_dir) / hashlib.sha256(task.dest.encode()).hexdigest()


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError.for_option("executor", "ray needs Ray: pip install 'fxcli[ray]'") from None
    return ray


def run_ray(
    tasks: list[Task],
    cfg: EngineConfig,
    opts: WorkOptions,
    *,
    device: str,
    on_result: ResultFn,
    address: str | None = None,
    manifest: Manifest | None = None,
    files_per_gpu: int = 2,
    max_retries: int = 3,
    spool_bytes: int = 4 << 30,
    num_cpus: int | None = None,
    max_in_flight: int = 256,
    stopped: Callable[[], bool] = lambda: False,
    _fault_dir: str | None = None,
) -> None:
    """Run the tasks as Ray tasks; results reach ``on_result`` as they finish.

    ``address``: a Ray cluster (``auto``, ``ray://host:10001``, ``host:6379``); None
    starts a local one (with ``num_cpus``) unless Ray is already initialised in this
    process or ``RAY_ADDRESS`` is set. ``device``: ``cpu``, ``cuda`` (each task gets
    ``1/files_per_gpu`` of a GPU and sees it as ``cuda``) or ``auto`` (``cuda`` when
    the cluster has GPUs)."""
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING"}
        if address is None and not os.environ.get("RAY_ADDRESS"):
            kwargs["num_cpus"] = num_cpus
        ray.init(address=address, **kwargs)
        started_here = True
    try:
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device: got {device!r}; allowed: auto, cpu, cuda")
        if device == "auto":
            device = "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"
        gpu = device == "cuda"
        fn = ray.remote(_ray_entry).options(
            num_cpus=1,
            num_gpus=(1.0 / max(1, files_per_gpu)) if gpu else 0,
            max_retries=0,  # the driver retries: it knows the attempt number
        )
        dev = "cuda" if gpu else "cpu"
        cfg_ref = ray.put(cfg)
        queue = list(enumerate(tasks))
        queue.reverse()
        pending: dict[Any, tuple[int, Task, int]] = {}

        def submit(i: int, task: Task, attempt: int) -> None:
            prior = manifest.latest(task.src, task.dest) if manifest is not None else None
            ref = fn.remote(task, cfg_ref, dev, opts, prior, attempt, spool_bytes, _fault_dir)
            pending[ref] = (i, task, attempt)

        while queue or pending:
            while queue and len(pending) < max_in_flight and not stopped():
                i, task = queue.pop()
                submit(i, task, 0)
            if stopped():
                for ref in pending:
                    ray.cancel(ref, force=True)
                return
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                i, task, attempt = pending.pop(ref)
                try:
                    res, rec = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # a bug in the task: no retry
                    res = FileResult(task.src, task.dest, "failed", error=str(exc).splitlines()[0])
                    rec = None
                except ray.exceptions.RayError as exc:  # worker or node lost
                    if attempt < max_retries:
                        submit(i, task, attempt + 1)
                        continue
                    res = FileResult(
                        task.src,
                        task.dest,
                        "failed",
                        error=f"worker lost {attempt + 1} times: {type(exc).__name__}",
                    )
                    rec = None
                if attempt:
                    res.notes.append(f"retried {attempt} time(s) after a lost worker")
                if rec is not None and manifest is not None:
                    manifest.append(rec)
                on_result(res, rec)
    finally:
        if started_here:
            ray.shutdown()
