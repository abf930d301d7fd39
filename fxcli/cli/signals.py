"""Signal handling of the commands, written once.

- :func:`exit_at_once` (installed at start-up, before the commands are imported):
  SIGINT and SIGTERM end the process at once with 128 + the signal. Nothing is
  written yet, and an exception raised from a handler could surface inside a C
  extension's import (torch's pybind11 code) and abort the interpreter.
- :class:`Stop` (installed by a command while it writes files): a signal only
  sets a flag and calls ``on_stop`` (which cancels the engines); running files
  stop at their next chunk (temporary files removed), finished files stay
  complete, and no exception lands in the middle of a report. A closed stdout
  (:meth:`Stop.stdout_closed`) stops a run the same way, as SIGPIPE.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from fxcli.cli import exit_codes

#: the signals that stop a run
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    os._exit(exit_codes.for_signal(signum))


def exit_at_once() -> None:
    """Until a command installs its own handlers: exit at once on SIGINT/SIGTERM."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _exit_now)


class Stop:
    """The signals caught during a run; ``on_stop`` is called at each."""

    def __init__(self, on_stop: Callable[[], None] | None = None) -> None:
        self.caught: list[int] = []
        self.on_stop = on_stop

    def __call__(self, signum: int, frame: FrameType | None = None) -> None:
        self.caught.append(signum)
        if self.on_stop is not None:
            self.on_stop()

    def stdout_closed(self) -> None:
        """Stop as on a signal, SIGPIPE (stdout closed by its reader)."""
        self(signal.SIGPIPE)

    def is_set(self) -> bool:
        return bool(self.caught)

    @property
    def signum(self) -> int | None:
        """The first signal caught, None when none was."""
        return self.caught[0] if self.caught else None

    @contextmanager
    def installed(self) -> Iterator[Stop]:
        """This object as the SIGINT/SIGTERM handler for the block; the previous
        handlers are restored after it."""
        old = {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
