"""Device choice and chunk planning."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from fxcli.io.paths import UsageError

if TYPE_CHECKING:
    import torch

DEFAULT_CPU_CHUNK_SECONDS = 10.0
# Device bytes per (frame x channel) while a chunk is in flight: the float32
# input and output, float64 working copies inside the kernels, and slack.
_CUDA_BYTES_PER_SAMPLE = 96
_CUDA_MAX_CHUNK_FRAMES = 1 << 24
# Samples (frames x channels) per CUDA chunk by default: 16 MiB of float32, ~12 s of
# 8 ch at 44.1 kHz. Far above what fills the kernels, and small enough that decoding,
# compute and encoding overlap: the first H200 run (2026-12-04) sized chunks from free
# memory alone, so a 300 s 8 ch file was one chunk, read, filtered and written one
# after the other, and `process --device cuda` took 7.6 s where the CPU took 5.0 s.
_CUDA_CHUNK_SAMPLES = 1 << 22


def cuda_may_exist() -> bool:
    """Whether a CUDA device could be present, answered without importing torch: on
    Linux a GPU shows up as ``/dev/nvidia*`` (or ``/dev/dxg`` under WSL2), macOS has no
    CUDA, elsewhere the answer is yes (ask torch). False means ``auto`` is the CPU."""
    import sys

    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return any(
            os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")
        ) or any(name.startswith("nvidia") for name in _listdir("/dev"))
    return True


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


class HostDevice:
    """The CPU as the torch-free engine's device (what it uses of ``torch.device``)."""

    type = "cpu"
    index = None

    def __str__(self) -> str:
        return "cpu"

    def __repr__(self) -> str:
        return "HostDevice()"


#: the device of the torch-free CPU path (steps on numpy arrays, no torch loaded)
HOST = HostDevice()


def resolve_device(spec: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises :class:`UsageError` (exit 2) for an unknown spec or a missing GPU.
    """
    import torch

    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if not m:
        raise UsageError.for_option("device", f"{spec!r}: allowed: auto, cpu, cuda, cuda:N")
    if not torch.cuda.is_available():
        why = "this torch build has no CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise UsageError.for_option(
            "device", f"{spec}: CUDA is not available ({why}); use cpu or auto"
        )
    index = int(m.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise UsageError.for_option(
            "device", f"{spec}: only {count} CUDA device(s) (0..{count - 1})"
        )
    return torch.device("cuda", index)


def chunk_frames(
    device: torch.device | str,
    samplerate: int,
    channels: int,
    chunk_seconds: float | None,
    *,
    streaming: bool = True,
) -> int:
    """Frames per chunk: ``chunk_seconds`` when given; on CUDA 2^22 samples across
    the channels (so reading, compute and writing overlap), fewer when free device
    memory (with a 2x safety margin) is short; on CPU a fixed 10 s.

    ``streaming=False`` (a signal already in device memory, as in ``fxcli bench``):
    on CUDA as large as free memory allows, without the 2^22-sample cap (the third
    H200 call cut a 12 ch x 60 s in-memory run into 91 chunks with it: 4.6x slower)."""
    if chunk_seconds is not None:
        return max(1, round(chunk_seconds * samplerate))
    if (device if isinstance(device, str) else device.type) == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        frames = int(free // 2 // (_CUDA_BYTES_PER_SAMPLE * max(1, channels)))
        if streaming:
            frames = min(frames, _CUDA_CHUNK_SAMPLES // max(1, channels))
        frames = min(frames, _CUDA_MAX_CHUNK_FRAMES)
        return max(4096, frames)
    return max(1, round(DEFAULT_CPU_CHUNK_SECONDS * samplerate))


def default_jobs(device: torch.device, n_files: int) -> int:
    """Files processed at once: on CPU up to the core count (kernels and libsndfile
    release the GIL; at most 4), on CUDA 2 (one decoding while one computes)."""
    limit = 2 if device.type == "cuda" else min(4, os.cpu_count() or 1)
    return max(1, min(limit, n_files))
