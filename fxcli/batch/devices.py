"""``--device`` lists: ``cuda:all``, ``cuda:0,cuda:1`` (one pipeline per device)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from fxcli.engine.device import default_jobs, resolve_device

if TYPE_CHECKING:
    import torch
from fxcli.io.paths import UsageError


def parse_devices(spec: str) -> list[torch.device]:
    """Devices for one run: ``cuda:all`` (every visible GPU), a comma-separated list
    (each item as for :func:`~fxcli.engine.device.resolve_device`; an item may repeat,
    e.g. ``cpu,cpu`` runs two CPU pipelines, which is mainly useful to test the
    multi-device scheduling without a GPU), or a single device spec.

    Raises :class:`UsageError` (exit 2) for unknown or missing devices."""
    spec = spec.strip().lower()
    if spec == "cuda:all":
        import torch

        if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
            raise UsageError.for_option("device", "cuda:all: no CUDA device is visible; use cpu")
        return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    items = [s.strip() for s in spec.split(",")]
    if any(not s for s in items):
        raise UsageError.for_option("device", f"{spec!r}: empty item in the list")
    if len(items) > 1 and "auto" in items:
        raise UsageError.for_option("device", f"{spec!r}: 'auto' cannot be part of a list")
    return [resolve_device(s) for s in items]


#: CPU cores one file in flight keeps busy (a decoding and an encoding thread)
CORES_PER_FILE = 2
MAX_FILES_PER_GPU = 8


def files_per_device(devices: list[torch.device], n_files: int, cpus: int | None = None) -> int:
    """Files in flight per device when ``--jobs`` is not given.

    One device: :func:`~fxcli.engine.device.default_jobs` (unchanged). Several GPUs:
    the CPU cores are shared out so the GPUs are fed (docs/scaling.md: a GPU filters
    far faster than one core decodes and encodes): ``cpus / (CORES_PER_FILE x GPUs)``
    files per GPU, at least the single-GPU default and at most
    :data:`MAX_FILES_PER_GPU` (each file holds its own device chunks)."""
    base = default_jobs(devices[0], n_files)
    if len(devices) == 1 or devices[0].type != "cuda":
        return base
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    share = cpus // (CORES_PER_FILE * len(devices))
    per_device_files = -(-n_files // len(devices))
    return max(1, min(max(base, share), MAX_FILES_PER_GPU, per_device_files))
