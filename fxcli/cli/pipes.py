"""``fxcli process`` with ``-`` (issue 16): audio on stdin as INPUT, audio on stdout
as OUTPUT, as sox users expect (``... | fxcli process - - -p voice --format wav |
sox -t wav - out.flac``).

:class:`Pipes` turns the command line into one that names files: stdin is spooled
to a private temporary folder (:func:`fxcli.io.stdio.spool_stdin`), an OUTPUT of
``-`` (or ``/dev/stdout``) becomes a file in that folder, and once the run has
finished it is copied to stdout. While stdout carries audio, descriptor 1 points
at stderr, so every human line and ``--json`` line (and any stray print of a
library) goes to stderr and the audio stream stays clean. Reports name ``-``
instead of the temporary files (:attr:`Pipes.names`).

Rules: ``-`` may be given once; OUTPUT ``-`` takes exactly one input (a file or
``-``) and needs ``--format`` unless that input's container is known (from its
name, or from the data on stdin); stdout must not be a terminal. A failed run
writes no audio to stdout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from fxcli.cli import exit_codes
from fxcli.errors import UsageError
from fxcli.io.formats import AUDIO_EXTENSIONS, FORMAT_EXTENSIONS
from fxcli.io.stdio import RAW_SUBTYPES, RawInput, copy_to_fd, is_stdin, is_stdout, spool_stdin

__all__ = ["Pipes", "raw_input"]


def raw_input(rate: int | None, channels: int | None, subtype: str | None) -> RawInput | None:
    """``--input-rate/--input-channels/--input-subtype`` checked: all three or none."""
    given = [v is not None for v in (rate, channels, subtype)]
    if not any(given):
        return None
    if not all(given):
        raise UsageError(
            "raw PCM on stdin needs all of --input-rate, --input-channels and --input-subtype"
        )
    assert rate is not None and channels is not None and subtype is not None
    if not 1 <= rate <= 10_000_000:
        raise UsageError(f"--input-rate {rate}: allowed: 1 to 10000000 Hz")
    if not 1 <= channels <= 1024:
        raise UsageError(f"--input-channels {channels}: allowed: 1 to 1024")
    if subtype.upper() not in RAW_SUBTYPES:
        raise UsageError(f"--input-subtype {subtype}: allowed: {', '.join(RAW_SUBTYPES)}")
    return RawInput(rate, channels, subtype.upper())


class Pipes:
    """The stdin/stdout side of one ``process`` run; a context manager.

    After entering, :attr:`inputs` and :attr:`output` name files only, and
    :attr:`names` maps the temporary paths to ``-`` for the report. Call
    :meth:`finish` with the run's exit code to copy the output to stdout."""

    def __init__(
        self,
        inputs: list[str],
        output: str,
        *,
        fmt: str = "same",
        input_list: str | None = None,
        raw: RawInput | None = None,
    ) -> None:
        self.inputs = list(inputs)
        self.output = output
        self.names: dict[str, str] = {}
        self._fmt = fmt
        self._input_list = input_list
        self._raw = raw
        self._folder: Path | None = None
        self._audio_fd: int | None = None
        self._out_file: Path | None = None

    @property
    def active(self) -> bool:
        """Whether stdin or stdout carries audio in this run."""
        return self._folder is not None

    def __enter__(self) -> Pipes:
        stdin_items = [i for i in self.inputs if is_stdin(i)]
        to_stdout = is_stdout(self.output)
        if len(stdin_items) > 1:
            raise UsageError("INPUT - (audio on stdin) may be given once")
        if stdin_items and self._input_list == "-":
            raise UsageError(
                "INPUT - (audio on stdin) and --input-list - both read stdin; give one"
            )
        if self._raw is not None and not stdin_items:
            raise UsageError("--input-rate/--input-channels/--input-subtype describe INPUT -")
        if to_stdout:
            self._check_stdout_run(stdin_items)
        if not (stdin_items or to_stdout):
            return self
        self._folder = Path(tempfile.mkdtemp(prefix="fxcli-pipe-"))
        try:
            if stdin_items:
                spooled = spool_stdin(self._folder, self._raw)
                self.inputs = [str(spooled) if is_stdin(i) else i for i in self.inputs]
                self.names[str(spooled)] = "-"
            if to_stdout:
                self._out_file = self._folder / "out" / ("stdout" + self._out_ext())
                self.output = str(self._out_file)
                self.names[self.output] = "-"
                self._redirect_stdout()
        except BaseException:
            self._cleanup()
            raise
        return self

    def _check_stdout_run(self, stdin_items: list[str]) -> None:
        if len(self.inputs) != 1 or self._input_list:
            raise UsageError(
                "OUTPUT - (audio on stdout) takes exactly one INPUT (a file or -); "
                "for several files give an OUTPUT folder"
            )
        if not stdin_items and not Path(self.inputs[0]).is_file():
            raise UsageError(
                f"OUTPUT - (audio on stdout) takes one file; INPUT {self.inputs[0]!r} is not one"
            )
        with contextlib.suppress(OSError, ValueError):
            if os.isatty(1):
                raise UsageError(
                    "OUTPUT -: stdout is a terminal; redirect it (> out.wav) or pipe it"
                )

    def _out_ext(self) -> str:
        """The extension of the stdout file: ``--format``'s, else the input's."""
        if self._fmt != "same":
            return FORMAT_EXTENSIONS[self._fmt]
        suffix = Path(self.inputs[0]).suffix.lower()
        if self._raw is None and suffix in AUDIO_EXTENSIONS:
            return suffix
        raise UsageError(
            "OUTPUT - (audio on stdout): the container is not known; choose one with "
            f"--format ({', '.join(FORMAT_EXTENSIONS)})"
        )

    def _redirect_stdout(self) -> None:
        """Keep the real stdout for the audio; point descriptor 1 at stderr."""
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        try:
            self._audio_fd = os.dup(1)
        except OSError:
            raise UsageError("OUTPUT -: stdout is closed") from None
        os.dup2(2, 1)

    def finish(self, code: int) -> int:
        """Copy the finished output to stdout when the run succeeded; returns the exit
        code (141 when the reader of stdout went away, as after SIGPIPE)."""
        if self._audio_fd is None or self._out_file is None:
            return code
        if code != exit_codes.OK or not self._out_file.is_file():
            return code
        try:
            copy_to_fd(self._out_file, self._audio_fd)
        except BrokenPipeError:
            return exit_codes.STDOUT_CLOSED
        except OSError as exc:
            sys.stderr.write(f"error: OUTPUT -: cannot write stdout: {exc.strerror or exc}\n")
            return exit_codes.SOME_FAILED
        return code

    def _cleanup(self) -> None:
        if self._audio_fd is not None:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
            with contextlib.suppress(OSError):
                os.dup2(self._audio_fd, 1)
            with contextlib.suppress(OSError):
                os.close(self._audio_fd)
            self._audio_fd = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()
