"""The exit codes of every command, defined once.

0 all done; 1 some files failed (or, for ``bench``, some output was flagged
MISMATCH); 2 usage or preset error, before any file is touched; 128 + the
signal's number when a run was stopped by it: 130 SIGINT, 143 SIGTERM, and 141
(SIGPIPE) when stdout was closed by its reader (``--json | head -1``)."""

from __future__ import annotations

import signal

OK = 0
SOME_FAILED = 1
USAGE = 2
INTERRUPTED = 128 + signal.SIGINT  # 130
TERMINATED = 128 + signal.SIGTERM  # 143
STDOUT_CLOSED = 128 + signal.SIGPIPE  # 141


def for_signal(signum: int) -> int:
    """The exit code of a run stopped by signal ``signum`` (as if killed by it)."""
    return 128 + signum
