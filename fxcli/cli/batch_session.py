"""A prepared :class:`fxcli.batch.run.Batch` run the CLI's way, written once for
``process`` and ``features``: the :class:`~fxcli.cli.report.Reporter` (lines,
``--json``, progress, counts, exit code) and :class:`~fxcli.cli.signals.Stop`
(SIGINT/SIGTERM and a closed stdout cancel the workers) wired to the batch's
callbacks, then the summary.

The command keeps its own hooks: ``on_file(result)`` after each file's line (an
index, a report page collecting results) and ``after(reporter)`` once the run has
ended, before the summary and the exit code (write what was collected; a failure
there can still :meth:`~fxcli.cli.report.Reporter.count` as ``failed``), and
``finish(reporter, code, signum, wall_s)`` after the summary, returning the final
exit code (a page written from the collected results).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fxcli.batch.run import Batch
from fxcli.cli.memory_policy import keep_freed_buffers
from fxcli.cli.report import Reporter, progress_shown
from fxcli.cli.signals import Stop


def run_reported(
    batch: Batch,
    *,
    json_mode: bool,
    quiet: bool,
    progress: str,
    reporter: type[Reporter] = Reporter,
    names: dict[str, str] | None = None,
    on_file: Callable[[Any], None] | None = None,
    after: Callable[[Reporter], None] | None = None,
    finish: Callable[[Reporter, int, int | None, float], int] | None = None,
) -> int:
    """Run ``batch`` with a reporter; returns the exit code. ``names`` maps paths to
    the names reports show (the temporary files of ``-``)."""
    total_frames = batch.total_frames() if progress_shown(progress, quiet) else 0
    rep = reporter(
        json_mode=json_mode,
        quiet=quiet,
        progress=progress,
        total_files=len(batch.tasks),
        total_frames=total_frames,
    )
    stop = Stop(batch.cancel)
    rep.on_stdout_closed = stop.stdout_closed

    def on_result(res: Any, rec: dict[str, Any] | None) -> None:
        if names:  # audio through pipes: "-", not the temporary files
            res.input = names.get(res.input, res.input)
            res.output = names.get(res.output, res.output)
        key = res.status
        if key == "skipped" and "finished in the manifest" in res.notes:
            key = "finished"
        rep.file_done(res, key)
        if on_file is not None:
            on_file(res)

    keep_freed_buffers()
    t0 = time.perf_counter()
    with stop.installed():
        try:
            batch.run(on_result, progress=rep.advance_frames, stopped=stop.is_set)
        finally:
            rep.close()
            if after is not None:
                after(rep)
    if stop.signum is None:
        man = batch.manifest
        if man is not None and not quiet:
            rep.message(
                f"manifest: {man.path}: {rep.counts.get('finished', 0)} files already "
                f"finished (skipped), {len(man)} files recorded"
            )
        rep.summary(batch.ignored, time.perf_counter() - t0, in_output=batch.in_output)
    code = rep.exit_code(stop.signum)
    if finish is not None:
        code = finish(rep, code, stop.signum, time.perf_counter() - t0)
    return code
