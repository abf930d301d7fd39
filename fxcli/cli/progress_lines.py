"""Progress as plain lines, for stderr that is not a terminal (CI logs, ``2> log``).

A terminal gets rich's redrawn bar; a log cannot redraw, so ``--progress always``
without a terminal prints ``progress:`` lines instead: one when a file
finishes (``3/10 files``) and one each time the frames done cross another
:data:`STEP_PERCENT` percent or :data:`EVERY_SECONDS` seconds have passed since the
last line, whichever comes first. Thread-safe: frames are counted from worker
threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["EVERY_SECONDS", "STEP_PERCENT", "LineProgress"]

#: a percentage line each time the frames done cross another multiple of this
STEP_PERCENT = 10
#: ... or after this many seconds without a progress line
EVERY_SECONDS = 10.0


class LineProgress:
    """``print_line(text)`` writes one line; ``total_files`` / ``total_frames``: the
    run's size (``total_frames`` 0: unknown, only file counts are printed)."""

    def __init__(
        self,
        print_line: Callable[[str], None],
        total_files: int,
        total_frames: int,
        *,
        step_percent: int = STEP_PERCENT,
        every_seconds: float = EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._print = print_line
        self.total_files = total_files
        self.total_frames = total_frames
        self.files = 0
        self.frames = 0
        self._step = max(1, step_percent)
        self._every = every_seconds
        self._clock = clock
        self._t0 = self._last = clock()
        self._last_step = 0
        self._lock = threading.Lock()

    def _percent(self) -> int | None:
        if self.total_frames <= 0:
            return None
        return min(100, int(100 * self.frames / self.total_frames))

    def _line(self) -> str:
        pct = self._percent()
        elapsed = self._clock() - self._t0
        text = f"progress: {self.files}/{self.total_files} files"
        if pct is not None:
            text += f", {pct} %"
            if 0 < pct < 100:
                text += f", about {elapsed * (100 - pct) / pct:.0f} s left"
        return text + f" ({elapsed:.1f} s)"

    def advance_frames(self, n: int) -> None:
        """Count ``n`` frames done; print a line on crossing a step or after a while."""
        with self._lock:
            self.frames += n
            pct = self._percent()
            now = self._clock()
            crossed = pct is not None and pct // self._step > self._last_step
            if crossed or now - self._last >= self._every:
                if pct is not None:
                    self._last_step = pct // self._step
                self._last = now
                self._print(self._line())

    def file_done(self) -> None:
        """Count one file finished (done, skipped or failed) and print a line."""
        with self._lock:
            self.files += 1
            self._last = self._clock()
            self._print(self._line())
