"""The ``process`` command's logic (the Typer function in :mod:`fxcli.cli.app` is thin)."""

from __future__ import annotations

import signal
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor
from pathlib import Path
from types import FrameType

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


def run_process(
    inputs: list[str],
    output: Path,
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
) -> int:
    """Returns the exit code. Usage and preset errors are raised as UsageError/PresetError
    by the caller's wrapper before any file is touched."""
    from fxcli.io.audio import AudioError, probe
    from fxcli.io.paths import collect, format_extension, read_input_list
    from fxcli.preset.loader import load_preset

    preset = load_preset(preset_name)
    from fxcli.io.paths import UsageError

    if chunk_seconds is not None and not chunk_seconds > 0:
        raise UsageError(f"--chunk-seconds must be > 0, got {chunk_seconds}")
    if jobs is not None and not 1 <= jobs <= 256:
        raise UsageError(f"--jobs must be between 1 and 256, got {jobs}")
    listed = read_input_list(input_list) if input_list else None
    if "-" in inputs:
        inputs = [i for i in inputs if i != "-"]
        listed = (listed or []) + read_input_list("-")
    collected = collect(inputs, output, listed, format_extension(fmt))

    from fxcli.engine.device import default_jobs, resolve_device  # imports torch

    dev = resolve_device(device)
    from fxcli.engine.runner import Cancelled, Engine

    engine = Engine(
        preset,
        dev,
        chunk_seconds=chunk_seconds,
        fmt=fmt,
        subtype=subtype,
        overwrite=overwrite,
        nonfinite=nonfinite,
    )
    from fxcli.cli.report import Reporter, progress_shown

    total_frames = 0
    if progress_shown(progress, quiet):  # header reads only for the bar's frame total
        for job in collected.jobs:
            try:
                total_frames += probe(job.src).frames
            except AudioError:
                pass

    rep = Reporter(
        json_mode=json_mode,
        quiet=quiet,
        progress=progress,
        total_files=len(collected.jobs),
        total_frames=total_frames,
    )
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    n_jobs = jobs if jobs is not None else default_jobs(dev, len(collected.jobs))
    caught: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Only flag it: running files stop at their next chunk (temp files removed),
        # finished files stay complete, and no exception lands mid-report.
        caught.append(signum)
        engine.cancel.set()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="fxcli-file") as pool:
            futures = [
                pool.submit(engine.process, job, rep.advance_frames) for job in collected.jobs
            ]
            for fut in futures:  # results in input order; files run n_jobs at a time
                if caught:
                    fut.cancel()
                try:
                    res = fut.result()
                except (Cancelled, CancelledError):
                    continue
                counts[res.status] = counts.get(res.status, 0) + 1
                rep.file_done(res)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        rep.close()
    if caught:
        what = "interrupted" if caught[0] == signal.SIGINT else "terminated"
        rep.message(f"{what}: files in progress were not written; finished files are complete")
        return EXIT_INTERRUPTED if caught[0] == signal.SIGINT else EXIT_TERMINATED
    rep.summary(counts, collected.ignored, time.perf_counter() - t0)
    return EXIT_SOME_FAILED if counts.get("failed") else EXIT_OK
