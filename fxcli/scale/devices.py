"""``--device`` lists: ``cuda:all``, ``cuda:0,cuda:1`` (one pipeline per device)."""

from __future__ import annotations

import torch

from fxcli.engine.device import resolve_device
from fxcli.io.paths import UsageError


def parse_devices(spec: str) -> list[torch.device]:
    """Devices for one run: ``cuda:all`` (every visible GPU), a comma-separated list
    (each item as for :func:`~fxcli.engine.device.resolve_device`; an item may repeat,
    e.g. ``cpu,cpu`` runs two CPU pipelines, which is mainly useful to test the
    multi-device scheduling without a GPU), or a single device spec.

    Raises :class:`UsageError` (exit 2) for unknown or missing devices."""
    spec = spec.strip().lower()
    if spec == "cuda:all":
        if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
            raise UsageError("--device cuda:all: no CUDA device is visible; use --device cpu")
        return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    items = [s.strip() for s in spec.split(",")]
    if any(not s for s in items):
        raise UsageError(f"--device {spec!r}: empty item in the list")
    if len(items) > 1 and "auto" in items:
        raise UsageError(f"--device {spec!r}: 'auto' cannot be part of a list")
    return [resolve_device(s) for s in items]
