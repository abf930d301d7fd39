"""``--shard K/N``: a deterministic share of the sorted input list.

The jobs are sorted by their output path relative to OUTPUT (the same on every
machine that runs the same command, whatever the mount point of the inputs) and
shard K takes the jobs whose index in that order is K modulo N. The N shards are
disjoint and together hold every job once; their sizes differ by at most one.
Every shard must see the same input list (same inputs, same OUTPUT); adding files
between shard launches moves later files between shards (run with a manifest to
make any such rerun cheap).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from fxcli.io.paths import UsageError

T = TypeVar("T")


def parse_shard(spec: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``0 <= K < N``; :class:`UsageError` otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not m:
        raise UsageError.for_option("shard", f"{spec!r}: expected K/N with 0 <= K < N, e.g. 0/4")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or k >= n:
        raise UsageError.for_option("shard", f"{spec!r}: expected K/N with 0 <= K < N and N >= 1")
    return k, n


def shard(items: Sequence[T], k: int, n: int, key: Callable[[T], str]) -> list[T]:
    """The items of shard ``k`` of ``n``: sorted by ``key``, every n-th from index k.

    Keys must be unique (they are output paths); ties would make the order depend
    on the input order."""
    if not 0 <= k < n:
        raise ValueError(f"shard: got k={k}, n={n}; allowed: 0 <= k < n")
    ordered = sorted(items, key=key)
    return ordered[k::n]
