"""The environment the CLI gives the libraries it loads, set before any of them loads.

numpy's OpenBLAS starts its worker threads when numpy is imported, and an idle worker
spins (``sched_yield`` in a loop) for about 2**28 cycles, ~0.1 s, before it sleeps,
after the start and after every BLAS call. On a small or shared machine that spinning
takes a core from the command's own threads: ~0.1 s of CPU and 20-40 ms of wall time
of a one-file ``fxcli process`` on a 2-core machine, where no BLAS call is made at
all. ``OPENBLAS_THREAD_TIMEOUT=4`` (OpenBLAS's lowest: 2**4 cycles) makes idle
workers sleep at once. The number of BLAS threads and every result stay the same; a
value the user set is kept.
"""

from __future__ import annotations

import os

#: OpenBLAS's spin before an idle worker sleeps, as a power of two of CPU cycles
#: (OpenBLAS clamps it to 4..30; its default is 28)
OPENBLAS_THREAD_TIMEOUT = "4"


def quiet_idle_blas_threads() -> None:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` unless the user set it. Effective only before
    numpy is first imported (OpenBLAS reads it when it loads)."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_THREAD_TIMEOUT)
