"""How results reach the user: progress bars on terminals, one line per file,
JSON lines for pipelines, a summary. Human output goes to stderr; ``--json``
lines go to stdout so they can be piped (to stderr when stdout carries audio,
``OUTPUT -``). Names are escaped on the way out (:mod:`fxcli.io.display`).

A closed stdout (``fxcli process ... --json | head -1``) is no error: the reporter
stops writing to it (pointing the descriptor at /dev/null so the interpreter's
final flush stays quiet) and calls ``on_stdout_closed``, with which ``process``
stops the run as after a signal (exit 141, like a process killed by SIGPIPE).

The reporter owns the counts of a run (by status) and its exit code
(:meth:`Reporter.exit_code`, codes from :mod:`fxcli.cli.exit_codes`)."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from fxcli.cli import exit_codes
from fxcli.cli.progress_lines import LineProgress
from fxcli.io.display import json_safe, shown


def progress_shown(progress: str, quiet: bool) -> bool:
    """Whether progress is shown: never when quiet; ``auto`` only on a terminal (a
    bar); ``always`` also without one (``progress:`` lines, see
    :mod:`fxcli.cli.progress_lines`)."""
    return not quiet and (progress == "always" or (progress == "auto" and sys.stderr.isatty()))


class Reporter:
    """``progress``: auto (only when stderr is a terminal) | always | never.
    ``counts``: files by status (``ok``, ``failed``, ``skipped``, ...)."""

    def __init__(
        self,
        *,
        json_mode: bool,
        quiet: bool,
        progress: str = "never",
        total_files: int = 0,
        total_frames: int = 0,
    ) -> None:
        self.counts: dict[str, int] = {}
        self.json_mode = json_mode
        self.quiet = quiet
        self.stdout_closed = False
        self.on_stdout_closed: Callable[[], None] | None = None
        self._progress = None
        self._files_task = self._frames_task = None
        self._lines: LineProgress | None = None
        if progress_shown(progress, quiet) and not sys.stderr.isatty():
            self._lines = LineProgress(self.message, total_files, total_frames)
        elif progress_shown(progress, quiet):
            from rich.console import Console  # imported for the bar only (~30 ms)
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True, highlight=False, soft_wrap=True),
                transient=True,
            )
            self._files_task = self._progress.add_task("files", total=total_files)
            self._frames_task = self._progress.add_task("frames", total=max(total_frames, 1))
            self._progress.start()

    def advance_frames(self, n: int) -> None:
        if self._lines is not None and n:
            self._lines.advance_frames(n)
        if self._progress is not None and n:
            self._progress.advance(self._frames_task, n)  # type: ignore[arg-type]

    def count(self, key: str) -> None:
        """Count one file (or one failure, e.g. of a closing write) under ``key``."""
        self.counts[key] = self.counts.get(key, 0) + 1

    def file_done(self, result: Any, key: str | None = None) -> None:
        """Count ``result`` (under ``key``, default its status) and report it."""
        self.count(key or result.status)
        if result.status == "ok" and getattr(result, "warnings", None):
            self.count("warned")
        if self._progress is not None:
            self._progress.advance(self._files_task)  # type: ignore[arg-type]
        if self.json_mode:
            self.write_stdout(json.dumps(json_safe(result.to_json())) + "\n")
        if self.quiet:
            if result.status == "failed" and not self.json_mode:
                self._say(f"error: {result.input}: {result.error}")
            return
        if result.status == "ok":
            self._say(self.ok_line(result))
            for w in getattr(result, "warnings", None) or []:
                self._say(f"warning: {result.input}: {w}")
        elif result.status == "planned":
            self._say("plan    " + self.ok_line(result)[len("ok      ") :])
        elif result.status == "skipped":
            self._say(f"skipped {result.input}: {'; '.join(result.notes)}")
        else:
            self._say(f"error: {result.input}: {result.error}")
        if self._lines is not None:
            self._lines.file_done()

    def ok_line(self, result: Any) -> str:
        """The line of a file written (``process``: the input's and the output's rate,
        channels and subtype, each named; notes other than the warnings, which get
        lines of their own)."""
        warnings = set(getattr(result, "warnings", None) or [])
        out_rate = result.output_sample_rate or result.sample_rate
        out_ch = result.output_channels or result.channels
        shape = (
            f"in {result.sample_rate} Hz {result.channels} ch "
            f"{getattr(result, 'input_subtype', None) or '?'}, "
            f"out {out_rate} Hz {out_ch} ch {result.subtype}"
        )
        extra = "".join(f"; {n}" for n in result.notes if n not in warnings)
        levels = _output_levels(getattr(result, "levels", None))
        return (
            f"ok      {result.input} -> {result.output} "
            f"({result.seconds:.2f} s; {shape}{levels}{extra})"
        )

    def write_stdout(self, line: str) -> None:
        """Write and flush ``line`` on stdout; once stdout is closed, nothing."""
        if self.stdout_closed:
            return
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
            self.stdout_closed = True
            try:  # the interpreter's last flush would report the broken pipe again
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
            if self.on_stdout_closed is not None:
                self.on_stdout_closed()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def summary(self, ignored: int, elapsed: float, *, in_output: int = 0) -> None:
        """The closing line on stderr; ``in_output``: inputs (globs, lists, stdin) not
        taken because they lie under OUTPUT."""
        if self.quiet:
            return
        counts = self.counts
        parts = [f"{counts.get('ok', 0)} processed"]
        if counts.get("planned"):
            parts = [f"{counts['planned']} planned (dry run: nothing written)"]
        if counts.get("warned"):
            parts.append(f"{counts['warned']} with warnings (--strict fails them)")
        if counts.get("failed"):
            parts.append(f"{counts['failed']} failed")
        if counts.get("skipped"):
            parts.append(f"{counts['skipped']} skipped (output exists)")
        if ignored:
            parts.append(f"{ignored} non-audio files ignored")
        if in_output:
            parts.append(f"{in_output} inputs under OUTPUT not taken")
        self._say(", ".join(parts) + f" in {elapsed:.2f} s")

    def message(self, text: str) -> None:
        self._say(text)

    def _say(self, text: str) -> None:
        """One line on stderr, names escaped (:func:`fxcli.io.display.shown`): through
        the progress bar's console while a bar is drawn (the line goes above it), else
        written as is."""
        if self._progress is not None:
            self._progress.console.print(shown(text), markup=False)
            return
        try:
            sys.stderr.write(shown(text) + "\n")
            sys.stderr.flush()
        except (BrokenPipeError, OSError):
            pass

    def exit_code(self, stopped_by: int | None = None) -> int:
        """The run's exit code. ``stopped_by``: the signal that stopped it (SIGPIPE:
        stdout closed, quiet like any pipeline stage; SIGINT/SIGTERM: said on stderr)."""
        if stopped_by == signal.SIGPIPE:
            return exit_codes.STDOUT_CLOSED
        if stopped_by is not None:
            what = "interrupted" if stopped_by == signal.SIGINT else "terminated"
            self.message(f"{what}: files in progress were not written; finished files are complete")
            return exit_codes.for_signal(stopped_by)
        return exit_codes.SOME_FAILED if self.counts.get("failed") else exit_codes.OK


def _output_levels(levels: dict[str, Any] | None) -> str:
    """``, -14.0 LUFS, -1.04 dBTP`` (after the output's shape) where the run measured
    its output (a preset with a loudness target or a limiter), else nothing."""
    out = (levels or {}).get("output") or {}
    parts = []
    if out.get("lufs") is not None:
        parts.append(f"{out['lufs']:.1f} LUFS")
    if out.get("true_peak_dbtp") is not None:
        parts.append(f"{out['true_peak_dbtp']:.2f} dBTP")
    return "".join(", " + p for p in parts)
