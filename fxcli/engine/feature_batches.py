"""Batches of short files for ``fxcli features``: short files (at most one chunk and
:data:`SHORT_SAMPLES_CPU` samples on CPU, :data:`SHORT_SAMPLES_CUDA` on CUDA) are read
and run through the chain whole, then grouped by rate, channels and dtype, sorted by
length, zero-padded to the longest of a batch (at most :data:`MAX_PAD_RATIO` times the
shortest) and cut back to each file's own frames. With ``pad_mode reflect`` only files
of equal length share a batch. Longer files stream chunk by chunk.
"""

from __future__ import annotations

from typing import Any

#: samples (frames x channels, padded) per batch of short files. On CPU small batches
#: keep each batch's STFT in cache (32 x 10 s at 16 kHz in one batch ran at half the
#: speed of 4 x 10 s); on CUDA large ones amortize the kernel launches.
BATCH_SAMPLES_CPU = 1 << 19
BATCH_SAMPLES_CUDA = 1 << 24
#: a file is batched ("short") when it fits one chunk and has at most this many samples
#: (a window of 64 short files is held at once); longer files stream
SHORT_SAMPLES_CPU = 1 << 19
SHORT_SAMPLES_CUDA = 1 << 22
#: files in flight at once (read, batched, written, reported in input order)
WINDOW_FILES = 64
#: a batch's longest file is at most this much longer than its shortest
MAX_PAD_RATIO = 1.25


def budgets(device_type: str) -> tuple[int, int]:
    """``(samples per batch, samples of a short file)`` on a device of this type."""
    if device_type == "cuda":
        return BATCH_SAMPLES_CUDA, SHORT_SAMPLES_CUDA
    return BATCH_SAMPLES_CPU, SHORT_SAMPLES_CPU


def batches(items: list[Any], budget: int, exact_length: bool) -> list[list[Any]]:
    """Group short files: same rate, channels and dtype (and length, for reflect
    padding), sorted by length, at most ``budget`` samples per batch (padded), the
    longest at most :data:`MAX_PAD_RATIO` times the shortest."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for p in items:
        n = p.audio.shape[-1]
        key = (p.rate, p.audio.shape[0], p.audio.dtype, n if exact_length else None)
        groups.setdefault(key, []).append(p)
    out: list[list[Any]] = []
    for members in groups.values():
        members.sort(key=lambda p: p.audio.shape[-1])
        cur: list[Any] = []
        for p in members:
            n, ch = p.audio.shape[-1], p.audio.shape[0]
            if cur:
                first = cur[0].audio.shape[-1]
                too_long = n > MAX_PAD_RATIO * max(first, 1)
                too_big = (len(cur) + 1) * n * ch > budget
                if too_long or too_big:
                    out.append(cur)
                    cur = []
            cur.append(p)
        if cur:
            out.append(cur)
    return out
