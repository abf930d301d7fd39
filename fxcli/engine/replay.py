"""Keep a measuring pass's output to run it again: :class:`Replay`.

A ``loudness`` step followed by a peak limiter aims its gain through the limiter
(:meth:`fxcli.steps.loudness.Loudness.aim`): each try measures the limiter's output
at one gain. Without a replay every try ran the whole chain up to the limiter
again from the file (1-6 extra passes through the EQ, compressor, resampler...);
with it the chunks entering the loudness step are kept from the measuring pass and
each try runs only ``gain -> limiter -> meter`` over them. When that loudness step
is the chain's last analysis step, the writing pass starts from the kept chunks too
(:class:`fxcli.engine.runner.Tail`): the file is not read a further time, and when
the limiter ends the chain and the aim settled on its last try, that try's output,
kept as well, is what gets written.

The chunks stay where they are (host arrays, or tensors on their device) up to
``budget_bytes`` in all; beyond that they are written to one anonymous temporary
file (``tempfile.TemporaryFile``: unlinked at once, so nothing is left behind even
when the process is killed) and read back, as the same dtype, on the same device,
when replayed. Replayed chunks are bit-identical to the ones added.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from fxcli.steps.base import is_tensor

__all__ = ["Replay", "DEFAULT_BUDGET_BYTES", "budget_from_env"]

#: bytes of chunks kept in memory per replay (per file being processed), by default
DEFAULT_BUDGET_BYTES = 256 << 20
#: environment variable: the in-memory budget in MiB (0: always spill to disk)
ENV_BUDGET = "FXCLI_REPLAY_MIB"


def budget_from_env() -> int:
    """The in-memory budget: ``$FXCLI_REPLAY_MIB`` MiB when it is a non-negative
    number, else :data:`DEFAULT_BUDGET_BYTES`."""
    raw = os.environ.get(ENV_BUDGET, "").strip()
    try:
        mib = float(raw)
    except ValueError:
        return DEFAULT_BUDGET_BYTES
    return int(mib * 2**20) if mib >= 0 and np.isfinite(mib) else DEFAULT_BUDGET_BYTES


def _nbytes(y: Any) -> int:
    if isinstance(y, np.ndarray):
        return int(y.nbytes)
    return int(y.element_size() * y.numel())


class Replay:
    """Chunks ``(channels, n)`` added in order, iterated again as often as needed.

    Use as a context manager (or call :meth:`close`) to release the spill file.
    Chunks are not copied: callers must not modify a chunk after adding it (the
    engine's chunks are fresh outputs of the chain).
    """

    def __init__(self, budget_bytes: int | None = None) -> None:
        self.budget = budget_from_env() if budget_bytes is None else int(budget_bytes)
        self._items: list[tuple[str, Any]] = []  # ("mem", chunk) | ("disk", meta)
        self._held = 0
        self._file: Any = None  # the spill file (an unlinked io.BufferedRandom)
        #: bytes written to the spill file (0 when everything stayed in memory)
        self.spilled = 0

    def add(self, y: Any) -> None:
        """Keep one chunk (numpy array or torch tensor)."""
        n = _nbytes(y)
        if self._file is None and self._held + n <= self.budget:
            self._items.append(("mem", y))
            self._held += n
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="fxcli-replay-")
        host = y.detach().cpu().numpy() if is_tensor(y) else np.asarray(y)
        host = np.ascontiguousarray(host)
        offset = self._file.seek(0, os.SEEK_END)
        self._file.write(host.tobytes())
        device = y.device if is_tensor(y) else None
        self._items.append(("disk", (offset, host.shape, host.dtype, device)))
        self.spilled += host.nbytes

    def __iter__(self) -> Iterator[Any]:
        """The chunks in the order added, bit-identical, each on its own device."""
        for kind, item in self._items:
            if kind == "mem":
                yield item
                continue
            offset, shape, dtype, device = item
            assert self._file is not None
            self._file.seek(offset)
            buf = bytearray(int(np.prod(shape)) * np.dtype(dtype).itemsize)
            if self._file.readinto(buf) != len(buf):
                raise OSError("the replay's temporary file was cut short")
            data = np.frombuffer(buf, dtype=dtype).reshape(shape)
            if device is None:
                yield data
            else:
                import torch

                yield torch.from_numpy(data).to(device)

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        """Drop the chunks and the spill file."""
        self._items.clear()
        self._held = 0
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
