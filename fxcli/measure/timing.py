"""How ``fxcli bench`` times one run of a chain on a device: ``run(x) -> (y, kernel
seconds, transfer seconds)``, shared by the SciPy-checked chains
(:mod:`fxcli.measure.benchmark`) and the chains with effects
(:mod:`fxcli.measure.effect_chains`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["timed_cpu", "timed_cuda"]

Timed = Callable[[np.ndarray], tuple[Any, float, float]]


def timed_cpu(fn: Callable[[torch.Tensor], torch.Tensor]) -> Timed:
    """``fn`` on the CPU tensor of ``x`` (no transfer)."""

    def run(x: np.ndarray) -> tuple[Any, float, float]:
        xt = torch.from_numpy(x)
        t0 = time.perf_counter()
        y = fn(xt)
        return y, time.perf_counter() - t0, 0.0

    return run


def timed_cuda(fn: Callable[[torch.Tensor], torch.Tensor], dev: torch.device) -> Timed:
    """``fn`` on ``x`` copied to ``dev``; the kernel time excludes both copies, which
    are the transfer time (synchronized: without it only the launches are timed)."""

    def run(x: np.ndarray) -> tuple[Any, float, float]:
        torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        xd = torch.from_numpy(x).to(dev)
        torch.cuda.synchronize(dev)
        t1 = time.perf_counter()
        yd = fn(xd)
        torch.cuda.synchronize(dev)
        t2 = time.perf_counter()
        y = yd.cpu()
        t3 = time.perf_counter()
        del xd, yd
        return y, t2 - t1, (t1 - t0) + (t3 - t2)

    return run
