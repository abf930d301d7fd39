"""Feature array files: ``.npy``, ``.npz`` (key ``features``) or ``.pt`` (a torch
tensor), written atomically (:mod:`fxcli.io.atomic`), and their shape and dtype read
back from the header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fxcli.io.atomic import atomic_path


def save_array(arr: Any, dest: Path, fmt: str, *, replace: bool = True) -> None:
    """Write a CPU tensor as ``.npy`` / ``.npz`` (key ``features``) / ``.pt`` atomically
    (``replace=False``: never over a file that appeared meanwhile)."""
    import numpy as np
    import torch

    with atomic_path(dest, replace=replace) as tmp, open(tmp, "wb") as f:
        if fmt == "pt":
            torch.save(arr.contiguous().clone(), f)
        elif fmt == "npz":
            np.savez(f, features=arr.numpy())
        else:
            np.save(f, arr.numpy())


def array_meta(path: Path, fmt: str) -> tuple[list[int], str]:
    """Shape and dtype name of a written feature array."""
    import numpy as np

    if fmt == "pt":
        import torch

        t = torch.load(path, map_location="cpu", weights_only=True)
        return list(t.shape), str(t.dtype).replace("torch.", "")
    if fmt == "npz":
        with np.load(path) as z:
            a = z["features"]
            return list(a.shape), str(a.dtype)
    a = np.load(path, mmap_mode="r")
    return list(a.shape), str(a.dtype)
