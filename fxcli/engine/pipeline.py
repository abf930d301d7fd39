"""Overlap decoding, compute and encoding with threads.

libsndfile releases the GIL while it decodes and encodes, and torch releases it
in its kernels, so a reader thread (decode ahead) and a writer thread (encode
behind) let the slowest stage set the pace instead of the sum of all three.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def prefetch(make_iter: Callable[[], Iterator[T]], depth: int = 2) -> Iterator[T]:
    """Run ``make_iter()`` in a background thread, keeping up to ``depth`` items ready.

    Exceptions from the source are re-raised in the consumer; closing the consumer
    early (break, exception, interrupt) stops the thread and closes the source.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def worker() -> None:
        it = make_iter()
        try:
            for item in it:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(("error", exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=worker, name="fxcli-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "item":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join(timeout=5)


class WriteBehind(Generic[T]):
    """Apply ``fn`` to submitted items in order on one background thread, with at most
    ``depth`` items pending. Errors surface at the next :meth:`submit` or at :meth:`finish`.
    Use as a context manager: leaving it waits for every pending item."""

    def __init__(self, fn: Callable[[T], None], depth: int = 2) -> None:
        self.fn = fn
        self.depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fxcli-writer")
        self._pending: deque[Future[None]] = deque()

    def submit(self, item: T) -> None:
        while len(self._pending) >= self.depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self.fn, item))

    def finish(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> WriteBehind[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._pending:
            f.cancel()
        self._pool.shutdown(wait=True)
        self._pending.clear()
