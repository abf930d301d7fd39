"""The ``process`` command's logic (the Typer function in :mod:`fxcli.cli.app` is thin)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
#: stdout closed by its reader (``--json | head -1``): 128 + SIGPIPE, as if killed by it
EXIT_STDOUT_CLOSED = 141


def run_process(
    inputs: list[str],
    output: str | Path,
    *,
    preset_name: str,
    device: str,
    chunk_seconds: float | None,
    overwrite: str,
    fmt: str,
    subtype: str,
    json_mode: bool,
    quiet: bool,
    progress: str,
    input_list: str | None,
    jobs: int | None = None,
    nonfinite: str = "error",
    shard: str | None = None,
    manifest: str | None = None,
    executor: str = "local",
    address: str | None = None,
    spool_gb: float = 4.0,
    allow_preset_paths: bool = False,
) -> int:
    """Returns the exit code. Usage and preset errors are raised as UsageError/PresetError
    by the caller's wrapper before any file is touched.

    Scale-out (:mod:`fxcli.scale`): ``shard`` ``"K/N"`` keeps every N-th file of the
    sorted list; ``manifest`` a JSON-lines file that records finished files and
    makes reruns skip them; inputs and ``output`` may be fsspec URLs (spooled
    locally, at most ``spool_gb`` GB); ``device`` may be a list (``cuda:all``,
    ``cuda:0,cuda:1``: one pipeline per device); ``executor`` ``"ray"`` runs the
    files as Ray tasks on the cluster at ``address``. ``allow_preset_paths``: the
    preset may name files outside its own folder (trusted presets; see
    :mod:`fxcli.preset.files`)."""
    from fxcli.io.audio import AudioError, probe
    from fxcli.io.paths import UsageError, format_extension, read_input_list
    from fxcli.preset.loader import load_preset
    from fxcli.scale.remote import collect_tasks, is_url
    from fxcli.scale.shard import parse_shard
    from fxcli.scale.shard import shard as take_shard

    output = str(output)
    preset = load_preset(preset_name, allow_outside=allow_preset_paths)

    if chunk_seconds is not None and not 0 < chunk_seconds < float("inf"):
        raise UsageError(f"--chunk-seconds must be a finite number > 0, got {chunk_seconds}")
    if jobs is not None and not 1 <= jobs <= 256:
        raise UsageError(f"--jobs must be between 1 and 256, got {jobs}")
    if executor not in ("local", "ray"):
        raise UsageError(f"--executor {executor!r}: allowed: local, ray")
    if address is not None and executor != "ray":
        raise UsageError("--address needs --executor ray")
    if not 0 < spool_gb < float("inf"):
        raise UsageError(f"--spool-gb must be a finite number > 0, got {spool_gb}")
    if manifest is not None:
        from fxcli.scale.manifest import ManifestError, check_manifest_path

        try:
            check_manifest_path(manifest)
        except ManifestError as exc:
            raise UsageError(str(exc)) from None
    shard_kn = parse_shard(shard) if shard is not None else None
    listed = read_input_list(input_list) if input_list else None
    if "-" in inputs:
        inputs = [i for i in inputs if i != "-"]
        listed = (listed or []) + read_input_list("-")
    found = collect_tasks(inputs, output, listed, format_extension(fmt))
    tasks, ignored = found.tasks, found.ignored
    if shard_kn is not None:
        tasks = take_shard(tasks, *shard_kn, key=lambda t: t.rel)

    from fxcli.scale.devices import files_per_device, parse_devices  # imports torch

    if executor == "ray":
        # the driver needs no GPU: Ray places the tasks on the cluster's devices
        if device.strip().lower() not in ("auto", "cpu", "cuda"):
            raise UsageError(
                f"--device {device!r} with --executor ray: allowed: auto, cpu, cuda "
                "(Ray places tasks on GPUs)"
            )
        import torch

        devices = [torch.device("cpu")]
        from fxcli.scale.executors import import_ray

        import_ray()  # a missing Ray is a usage error before any file is touched
    else:
        devices = parse_devices(device)

    from fxcli.scale.executors import EngineConfig, run_local, run_ray
    from fxcli.scale.manifest import Manifest, config_digest
    from fxcli.scale.remote import Spool
    from fxcli.scale.work import WorkOptions

    cfg = EngineConfig(
        preset, chunk_seconds=chunk_seconds, fmt=fmt, subtype=subtype, nonfinite=nonfinite
    )
    options = {"format": fmt, "subtype": subtype, "nonfinite": nonfinite}
    opts = WorkOptions(
        config_sha256=config_digest(preset, options),
        overwrite=overwrite,
        hash_inputs=manifest is not None,
    )
    from fxcli._version import __version__

    man = Manifest(manifest, fxcli_version=__version__) if manifest is not None else None
    engines = [cfg.build(d, overwrite) for d in devices] if executor == "local" else []
    from fxcli.cli.report import Reporter, progress_shown

    total_frames = 0
    if progress_shown(progress, quiet):  # header reads only for the bar's frame total
        for t in tasks:
            if is_url(t.src):
                continue
            try:
                total_frames += probe(Path(t.src)).frames
            except AudioError:
                pass

    rep = Reporter(
        json_mode=json_mode,
        quiet=quiet,
        progress=progress,
        total_files=len(tasks),
        total_frames=total_frames,
    )
    rep.on_stdout_closed = lambda: on_signal(signal.SIGPIPE, None)  # stop as on a signal
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    if executor == "ray":
        per_device = jobs if jobs is not None else 2  # files per GPU (or 1 CPU each)
    else:
        per_device = jobs if jobs is not None else files_per_device(devices, len(tasks))
    # --jobs counts files in flight per device: each device gets its own CPU workers
    n_workers = max(1, min(per_device * len(devices), max(1, len(tasks)) * len(devices)))
    caught: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Only flag it: running files stop at their next chunk (temp files removed),
        # finished files stay complete, and no exception lands mid-report.
        caught.append(signum)
        for e in engines:
            e.cancel.set()

    def on_result(res: Any, rec: Any) -> None:
        key = res.status
        if key == "skipped" and "finished in the manifest" in res.notes:
            key = "finished"
        counts[key] = counts.get(key, 0) + 1
        if executor == "ray" and res.frames:
            rep.advance_frames(res.frames)
        rep.file_done(res)

    spool = (
        Spool(int(spool_gb * 1e9)) if any(is_url(t.src) or is_url(t.dest) for t in tasks) else None
    )
    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if executor == "local":
            run_local(
                tasks,
                engines,
                opts,
                workers=n_workers,
                on_result=on_result,
                manifest=man,
                spool=spool,
                progress=rep.advance_frames,
                stopped=lambda: bool(caught),
            )
        else:
            run_ray(
                tasks,
                cfg,
                opts,
                device=device.strip().lower(),
                on_result=on_result,
                address=address,
                manifest=man,
                files_per_gpu=per_device,
                spool_bytes=int(spool_gb * 1e9),
                stopped=lambda: bool(caught),
            )
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        rep.close()
        if spool is not None:
            spool.close()
    if caught and caught[0] == signal.SIGPIPE:  # quiet, like any pipeline stage
        return EXIT_STDOUT_CLOSED
    if caught:
        what = "interrupted" if caught[0] == signal.SIGINT else "terminated"
        rep.message(f"{what}: files in progress were not written; finished files are complete")
        return EXIT_INTERRUPTED if caught[0] == signal.SIGINT else EXIT_TERMINATED
    if man is not None and not quiet:
        rep.message(
            f"manifest: {man.path}: {counts.get('finished', 0)} files already finished "
            f"(skipped), {len(man)} files recorded"
        )
    rep.summary(counts, ignored, time.perf_counter() - t0, in_output=found.in_output)
    return EXIT_SOME_FAILED if counts.get("failed") else EXIT_OK
