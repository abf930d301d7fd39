"""The ``process`` command's logic (the Typer function in :mod:`fxcli.cli.app` is thin)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so the current file is cleaned up."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


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
) -> int:
    """Returns the exit code. Usage and preset errors are raised as UsageError/PresetError
    by the caller's wrapper before any file is touched."""
    from fxcli.io.audio import AudioError, probe
    from fxcli.io.paths import collect, format_extension, read_input_list
    from fxcli.preset.loader import load_preset

    preset = load_preset(preset_name)
    if chunk_seconds is not None and not chunk_seconds > 0:
        from fxcli.io.paths import UsageError

        raise UsageError(f"--chunk-seconds must be > 0, got {chunk_seconds}")
    listed = read_input_list(input_list) if input_list else None
    if "-" in inputs:
        inputs = [i for i in inputs if i != "-"]
        listed = (listed or []) + read_input_list("-")
    collected = collect(inputs, output, listed, format_extension(fmt))

    from fxcli.engine.device import resolve_device  # imports torch

    dev = resolve_device(device)
    from fxcli.engine.runner import Engine

    engine = Engine(
        preset, dev, chunk_seconds=chunk_seconds, fmt=fmt, subtype=subtype, overwrite=overwrite
    )
    total_frames = 0
    for job in collected.jobs:
        try:
            total_frames += probe(job.src).frames
        except AudioError:
            pass
    from fxcli.cli.report import Reporter

    rep = Reporter(
        json_mode=json_mode,
        quiet=quiet,
        progress=progress,
        total_files=len(collected.jobs),
        total_frames=total_frames,
    )
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        for job in collected.jobs:
            res = engine.process(job, rep.advance_frames)
            counts[res.status] = counts.get(res.status, 0) + 1
            rep.file_done(res)
    except KeyboardInterrupt:
        rep.close()
        rep.message("interrupted: the file in progress was not written")
        return EXIT_INTERRUPTED
    except Terminated:
        rep.close()
        rep.message("terminated: the file in progress was not written")
        return EXIT_TERMINATED
    finally:
        signal.signal(signal.SIGTERM, old)
        rep.close()
    rep.summary(counts, collected.ignored, time.perf_counter() - t0)
    return EXIT_SOME_FAILED if counts.get("failed") else EXIT_OK
