"""One batch run, shared by ``process`` and ``features``: the run's options checked,
the input list resolved (files, folders, globs, ``--input-list``, URLs) and sharded,
the devices chosen, the manifest opened, then the files run by the local executor
or by Ray (:mod:`fxcli.batch.executors`) on the command's worker
(:class:`~fxcli.batch.executors.WorkerConfig`).

A command builds a :class:`Batch` with :func:`prepare` (every usage error is raised
before any file is touched), shows its progress and handles signals around
:meth:`Batch.run` (the callbacks ``on_result``, ``progress`` and ``stopped``), and acts
on the results afterwards. Nothing here prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fxcli.batch.executors import ResultFn, WorkerConfig, import_ray, run_local, run_ray
from fxcli.batch.manifest import Manifest, ManifestError, check_manifest_path
from fxcli.batch.remote import Collection, Spool, Task, collect_tasks, is_url
from fxcli.batch.shard import parse_shard, shard
from fxcli.batch.work import WorkOptions
from fxcli.engine.runner import ProgressFn
from fxcli.errors import UsageError
from fxcli.io.paths import inputs_and_list

#: ``default_jobs(devices, n_files)``: files in flight per device when not given
JobsFn = Callable[[Sequence[Any], int], int]


@dataclass(frozen=True)
class BatchOptions:
    """How a run's files are found and run, whatever the command.

    ``overwrite``: ``refuse`` | ``overwrite`` | ``skip``; ``input_list`` a file (or
    ``-``: stdin) of more inputs, NUL-separated with ``null``; ``shard`` ``"K/N"``
    keeps every N-th task of the list sorted by output path, from K; ``manifest`` a
    JSON-lines file that records finished files and makes reruns skip them; inputs
    and OUTPUT may be fsspec URLs (spooled locally, at most ``spool_gb`` GB);
    ``executor`` ``local`` | ``ray`` (a Ray cluster at ``address``, None: a local
    one); ``jobs``: files in flight per device (1 to 256)."""

    device: str = "auto"
    jobs: int | None = None
    overwrite: str = "refuse"
    input_list: str | None = None
    null: bool = False
    shard: str | None = None
    manifest: str | None = None
    executor: str = "local"
    address: str | None = None
    spool_gb: float = 4.0


def check_options(opts: BatchOptions) -> None:
    """Usage errors of the run's options (:class:`UsageError`, naming the option)."""
    if opts.jobs is not None and not 1 <= opts.jobs <= 256:
        raise UsageError.for_option("jobs", f"must be between 1 and 256, got {opts.jobs}")
    if opts.executor not in ("local", "ray"):
        raise UsageError.for_option("executor", f"{opts.executor!r}: allowed: local, ray")
    if opts.address is not None and opts.executor != "ray":
        raise UsageError.about("{address} needs {executor} ray")
    if not (math.isfinite(opts.spool_gb) and opts.spool_gb > 0):
        detail = f"must be a finite number > 0, got {opts.spool_gb}"
        raise UsageError.for_option("spool_gb", detail)
    if opts.manifest is not None:
        try:
            check_manifest_path(opts.manifest)
        except ManifestError as exc:
            raise UsageError.wrapping(exc) from None
    if opts.shard is not None:
        parse_shard(opts.shard)
    if opts.null and not opts.input_list:
        raise UsageError.about("{null} describes {input_list} (NUL-separated names); give one")


def find_tasks(
    inputs: list[str],
    output: str,
    opts: BatchOptions,
    out_ext: str | None,
    *,
    keep_extension: bool = False,
) -> Collection:
    """Every task of the run: ``inputs`` (files, folders, globs, URLs) and the
    ``input_list``'s, mapped under ``output`` (:func:`fxcli.batch.remote.collect_tasks`).
    Not sharded yet: see :func:`take_shard`."""
    inputs, listed = inputs_and_list(inputs, opts.input_list, null=opts.null)
    return collect_tasks(inputs, output, listed, out_ext, keep_extension=keep_extension)


def take_shard(tasks: list[Task], opts: BatchOptions) -> list[Task]:
    """The run's share of ``tasks`` (all of them without ``shard``)."""
    if opts.shard is None:
        return tasks
    return shard(tasks, *parse_shard(opts.shard), key=lambda t: t.rel)


def ray_devices(opts: BatchOptions) -> list[Any]:
    """The driver's device list for ``executor ray`` (the driver needs no GPU: Ray
    places the tasks); a device list and a missing Ray are usage errors."""
    if opts.device.strip().lower() not in ("auto", "cpu", "cuda"):
        raise UsageError.about(
            "{device} {spec!r} with {executor} ray: allowed: auto, cpu, cuda "
            "(Ray places tasks on GPUs)",
            spec=opts.device,
        )
    import_ray()  # a missing Ray is a usage error before any file is touched
    from fxcli.engine.device import HOST

    return [HOST]


@dataclass
class Batch:
    """A run ready to start: its tasks, the worker configuration and built workers
    (local executor), the work options shared by every file and the manifest."""

    tasks: list[Task]
    cfg: WorkerConfig
    work: WorkOptions
    opts: BatchOptions
    devices: list[Any]
    per_device: int
    ignored: int = 0
    in_output: int = 0
    manifest: Manifest | None = None
    workers: list[Any] = field(default_factory=list)

    def total_frames(self) -> int:
        """Frames of the local inputs (headers only): the progress bar's total."""
        from fxcli.io.audio import AudioError, probe

        total = 0
        for t in self.tasks:
            if is_url(t.src):
                continue
            try:
                total += probe(Path(t.src)).frames
            except AudioError:
                pass
        return total

    def cancel(self) -> None:
        """Stop the workers at their next chunk (from a signal handler)."""
        for w in self.workers:
            w.cancel.set()

    def run(
        self,
        on_result: ResultFn,
        *,
        progress: ProgressFn | None = None,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        """Run every task; ``on_result(result, record)`` for each finished file,
        ``progress(frames)`` as audio is read, and an early, quiet return once
        ``stopped()`` is true (after :meth:`cancel`)."""
        opts = self.opts
        n = len(self.tasks)
        spool_bytes = int(opts.spool_gb * 1e9)
        if opts.executor == "ray":

            def counted(res: Any, rec: dict[str, Any] | None) -> None:
                if progress is not None and res.frames:
                    progress(res.frames)  # Ray tasks report whole files
                on_result(res, rec)

            run_ray(
                self.tasks,
                self.cfg,
                self.work,
                device=opts.device.strip().lower(),
                on_result=counted,
                address=opts.address,
                manifest=self.manifest,
                files_per_gpu=self.per_device,
                spool_bytes=spool_bytes,
                stopped=stopped,
            )
            return
        # per_device counts files in flight per device: each gets its own CPU workers
        n_workers = max(1, min(self.per_device * len(self.devices), max(1, n) * len(self.devices)))
        remote = any(is_url(t.src) or is_url(t.dest) for t in self.tasks)
        spool = Spool(spool_bytes) if remote else None
        try:
            run_local(
                self.tasks,
                self.workers,
                self.work,
                workers=n_workers,
                on_result=on_result,
                manifest=self.manifest,
                spool=spool,
                progress=progress,
                stopped=stopped,
            )
        finally:
            if spool is not None:
                spool.close()


def prepare(
    tasks: list[Task],
    cfg: WorkerConfig,
    opts: BatchOptions,
    *,
    config_sha256: str,
    devices: list[Any],
    default_jobs: JobsFn,
    ignored: int = 0,
    in_output: int = 0,
    words: Callable[[BaseException], str] = str,
) -> Batch:
    """A :class:`Batch` of ``tasks`` (already sharded) on ``devices`` (one worker
    each, built here for the local executor). ``config_sha256``: the digest of
    everything that changes an output (:func:`fxcli.batch.manifest.config_digest`),
    so a manifest rerun redoes files whose configuration changed. ``default_jobs``
    sizes the files in flight per device when ``opts.jobs`` is None (Ray: 2 per GPU);
    ``words`` turns an error into a result's message (the CLI: flags, not keys)."""
    from fxcli._version import __version__

    if opts.jobs is not None:
        per_device = opts.jobs
    elif opts.executor == "ray":
        per_device = 2  # files per GPU (or 1 CPU each)
    else:
        per_device = default_jobs(devices, len(tasks))
    work = WorkOptions(
        config_sha256=config_sha256,
        overwrite=opts.overwrite,
        hash_inputs=opts.manifest is not None,
        words=words,
    )
    man = Manifest(opts.manifest, fxcli_version=__version__) if opts.manifest else None
    workers = [cfg.build(d, opts.overwrite) for d in devices] if opts.executor == "local" else []
    return Batch(
        tasks, cfg, work, opts, devices, per_device, ignored, in_output, man, workers
    )  # fmt: skip
