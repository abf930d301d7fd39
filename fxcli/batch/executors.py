"""Executors: who runs :func:`fxcli.batch.work.run_task` for each file, whatever the
worker (:class:`~fxcli.batch.work.FileWorker`: an :class:`~fxcli.engine.runner.Engine`
for ``process``, a :class:`~fxcli.engine.feature_engine.FeatureEngine` for
``features``), built from a picklable :class:`WorkerConfig`.

- :func:`run_local`: a thread pool in this process with one worker (pipeline,
  designed chains) per device; each worker thread is bound to one device,
  round-robin, so files spread evenly across ``--device`` lists. Kernels,
  libsndfile and hashing release the GIL, so threads are the CPU workers that
  decode/encode for the devices. A worker with ``process_window`` (features: short
  files batched on the device) gets the local files a window at a time
  (:func:`run_windows`); the checks and records are the same.
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

import functools
import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fxcli.batch.manifest import Manifest
from fxcli.batch.remote import Spool, Task, is_url
from fxcli.batch.work import FileWorker, Pending, WorkOptions, after_local, before_local, run_task
from fxcli.engine.runner import Cancelled, Engine, FileResult, ProgressFn
from fxcli.io.containers import LossyOptions
from fxcli.io.paths import UsageError
from fxcli.preset.loader import Preset

#: ``on_result(result, record)``: a file finished (its manifest record, or None)
ResultFn = Callable[[Any, "dict[str, Any] | None"], None]
#: files a windowed worker gets at once (read, batched, written, reported in order)
WINDOW_FILES = 64


class WorkerConfig(Protocol):
    """How to build a run's worker on a device (picklable: Ray workers build their
    own): :class:`EngineConfig` for ``process``,
    :class:`~fxcli.batch.feature_run.FeatureConfig` for ``features``."""

    def build(self, device: Any, overwrite: str) -> FileWorker: ...


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
    engines: list[Any],
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
    if len(engines) == 1 and hasattr(engines[0], "process_window"):
        run_windows(
            tasks, engines[0], opts, workers=workers, on_result=on_result, manifest=manifest,
            spool=spool, progress=progress, stopped=stopped,
        )  # fmt: skip
        return
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


def run_windows(
    tasks: list[Task],
    worker: Any,
    opts: WorkOptions,
    *,
    workers: int,
    on_result: ResultFn,
    manifest: Manifest | None = None,
    spool: Spool | None = None,
    progress: ProgressFn | None = None,
    stopped: Callable[[], bool] = lambda: False,
    window: int = WINDOW_FILES,
) -> None:
    """:func:`run_local` for a worker that runs local files a window at a time
    (``worker.process_window(jobs, pool, done, progress)``). Each window's files get
    :func:`~fxcli.batch.work.before_local`'s checks on the pool first; URL tasks run
    one by one (:func:`~fxcli.batch.work.run_task`). Manifest records are appended as
    files finish; ``on_result`` is called in input order on this thread, as soon as
    every earlier file of the window is done. After a stop, the files that finished
    completely are still reported (``ok`` only)."""
    try:
        with ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="fxcli-file"
        ) as pool:
            for start in range(0, len(tasks), window):
                if stopped():
                    break
                win = _Window(tasks[start : start + window], manifest, on_result)
                if not win.run(worker, pool, opts, spool, progress):
                    break
    finally:
        close = getattr(worker, "close", None)
        if close is not None:
            close()


class _Window:
    """The results of one window, finished on any thread, reported in input order on
    the caller's."""

    def __init__(self, tasks: list[Task], manifest: Manifest | None, on_result: ResultFn) -> None:
        self.tasks = tasks
        self.manifest = manifest
        self.on_result = on_result
        self.results: dict[int, tuple[Any, dict[str, Any] | None]] = {}
        self.reported = 0
        self.started = 0
        self.cond = threading.Condition()

    def run(
        self,
        worker: Any,
        pool: ThreadPoolExecutor,
        opts: WorkOptions,
        spool: Spool | None,
        progress: ProgressFn | None,
    ) -> bool:
        """Run and report the window's files; False when stopped (Cancelled)."""
        from fxcli.io.paths import Job

        kind: type = getattr(worker, "result_type", FileResult)
        manifest = self.manifest

        def check(task: Task) -> Any:
            if is_url(task.src) or is_url(task.dest):
                return None
            prior = manifest.latest(task.src, task.dest) if manifest else None
            return before_local(task, opts, prior=prior, kind=kind)

        local: list[tuple[int, Pending]] = []
        for i, (task, before) in enumerate(
            zip(self.tasks, pool.map(check, self.tasks), strict=True)
        ):
            if isinstance(before, Pending):
                local.append((i, before))
                continue
            self.expect()
            if before is None:  # a URL: spooled, one file at a time
                prior = manifest.latest(task.src, task.dest) if manifest else None
                fut = pool.submit(
                    run_task, task, worker, opts, prior=prior, spool=spool, progress=progress
                )
                fut.add_done_callback(functools.partial(self.finish, i))
            else:
                self.finish(i, before)

        def local_done(j: int, res: Any) -> None:
            i, pending = local[j]
            self.expect()
            if isinstance(res, Future):
                res.add_done_callback(lambda f: self.finish_local(i, pending, f, opts))
            else:
                self.finish_local(i, pending, res, opts)
            self.report_ready()

        jobs = [Job(Path(self.tasks[i].src), Path(self.tasks[i].dest)) for i, _ in local]
        try:
            if jobs:
                worker.process_window(jobs, pool, local_done, progress)
        except Cancelled:
            self.wait()
            self.report_finished()
            return False
        self.wait()
        self.report_ready()
        return True

    def finish(self, i: int, item: Any) -> None:
        """``item``: ``(result, record)`` or its future."""
        if isinstance(item, Future):
            try:
                item = item.result()
            except (Cancelled, CancelledError):
                item = None
            except Exception as exc:  # noqa: BLE001 - fails this file only
                t = self.tasks[i]
                item = (FileResult(t.src, t.dest, "failed", error=str(exc)), None)
        if item is not None and item[1] is not None and self.manifest is not None:
            self.manifest.append(item[1])  # as each file finishes, not in input order
        with self.cond:
            self.results[i] = item
            self.cond.notify_all()

    def finish_local(self, i: int, pending: Pending, res: Any, opts: WorkOptions) -> None:
        if isinstance(res, Future):
            try:
                res = res.result()
            except BaseException:  # noqa: BLE001 - a cancelled write: nothing finished
                with self.cond:
                    self.results[i] = None  # type: ignore[assignment]
                    self.cond.notify_all()
                return
        self.finish(i, after_local(self.tasks[i], pending, res, opts))

    def expect(self) -> None:
        """One more file was started (its result will come through :meth:`finish`)."""
        with self.cond:
            self.started += 1

    def wait(self) -> None:
        """Until every started file has finished (pending writes and URL tasks
        included)."""
        with self.cond:
            self.cond.wait_for(lambda: len(self.results) >= self.started)

    def report_ready(self) -> None:
        while True:
            with self.cond:
                if self.reported not in self.results:
                    return
                item = self.results[self.reported]
                self.reported += 1
            if item is not None:
                self.on_result(*item)

    def report_finished(self) -> None:
        """After a stop: the completed files not reported yet (``ok`` only)."""
        with self.cond:
            left = sorted(i for i in self.results if i >= self.reported)
            items = [self.results[i] for i in left]
        for item in items:
            if item is not None and item[0].status == "ok":
                self.on_result(*item)


# --------------------------------------------------------------------------- Ray

_WORKER_ENGINES: dict[str, Any] = {}
_WORKER_SPOOL: list[Spool] = []


def _worker_engine(cfg: WorkerConfig, device: str, overwrite: str) -> Any:
    import hashlib  # here, not at the top: a local run needs no OpenSSL (~3 ms)
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
    cfg: WorkerConfig,
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
    import hashlib

    return Path(fault_dir) / hashlib.sha256(task.dest.encode()).hexdigest()


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError.for_option("executor", "ray needs Ray: pip install 'fxcli[ray]'") from None
    return ray


def run_ray(
    tasks: list[Task],
    cfg: WorkerConfig,
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
