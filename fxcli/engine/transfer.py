"""Host <-> device copies of a file's chunks, overlapped with compute.

On CUDA the reader thread stages each decoded block in pinned (page-locked) host
memory and uploads it on a side stream, so the upload of chunk ``i + 1`` runs
while chunk ``i`` computes; results come back into pinned buffers with an event
that the writer thread waits on, so the main thread launches the next chunk
without waiting for the download. Pinned buffers come from torch's caching host
allocator (reused across chunks, not allocated per chunk). On the CPU both
directions are plain views (``torch.from_numpy`` / ``.numpy()``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

HostArray = Callable[[], np.ndarray]


class ChunkTransfer:
    """Uploads (reader thread) and downloads (main thread, waited on by the writer)
    for one device. One object may serve several files (``--jobs`` threads)."""

    def __init__(self, device: Any) -> None:
        from fxcli.engine.device import HostDevice

        self.device = device
        self.host = isinstance(device, HostDevice)  # torch-free: numpy arrays throughout
        self.cuda = device.type == "cuda"
        self._stream = None
        if self.cuda:
            import torch

            self._stream = torch.cuda.Stream(device)

    def upload(self, block: np.ndarray) -> torch.Tensor:
        """``block`` (channels, frames) numpy -> tensor on the device, copy finished.

        Call from the reader thread: on CUDA it blocks that thread (not the main one)
        until the side-stream copy is done, so the consumer may use the tensor on any
        stream; the consumer calls :meth:`adopt` on it."""
        if self.host:
            return block  # type: ignore[return-value]
        import torch

        t = torch.from_numpy(block)
        if not self.cuda:
            return t
        staged = t.pin_memory()
        assert self._stream is not None
        with torch.cuda.stream(self._stream):
            d = staged.to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self._stream)
        done.synchronize()
        return d

    def adopt(self, x: torch.Tensor) -> torch.Tensor:
        """Mark an uploaded tensor as used by the consumer's stream (so the caching
        allocator does not hand its memory to the side stream while kernels read it)."""
        if self.cuda and x.device.type == "cuda":
            x.record_stream(torch.cuda.current_stream(x.device))
        return x

    def download(self, y: torch.Tensor) -> HostArray:
        """Start copying ``y`` to the host; the returned callable waits for the copy
        and gives the numpy array (call it from the writer thread)."""
        if isinstance(y, np.ndarray):
            return lambda: y  # type: ignore[return-value]
        if y.device.type != "cuda":
            arr = y.detach().cpu().numpy()
            return lambda: arr
        import torch

        host = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)
        host.copy_(y.detach(), non_blocking=True)
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(y.device))

        def wait() -> np.ndarray:
            done.synchronize()
            return host.numpy()

        return wait
