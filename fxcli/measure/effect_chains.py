"""``fxcli bench`` for chains with effects: dynamics, loudness, resampling,
remixing, edits, reverb... have no SciPy equivalent to check their output against,
so they are timed on fxcli's own backends (``cpu``, ``cuda``) without the check
(the ``check`` column says ``unchecked``).

The timed loop is the engine's general one: chunks through the fused chain with
state carried, outputs of any length and channel count collected, then the steps'
held frames flushed (lookahead limiters and resamplers return fewer frames at
first). Analysis steps (``loudness``, ``normalize``) are resolved once per case by
the engine's measuring passes (not timed). Steps are designed per channel count
(a ``remix`` matrix depends on it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fxcli.engine.chain import flush_chain, init_states, run_chain
from fxcli.engine.device import chunk_frames
from fxcli.engine.runner import resolve_analysis
from fxcli.measure.timing import timed_cpu, timed_cuda
from fxcli.preset.build import build_chain
from fxcli.preset.loader import StepConfig
from fxcli.steps import FIR, IIR, Gain, Normalize, Step, fuse

__all__ = ["UNCHECKED", "checkable", "design", "runner"]

#: the ``check`` column of a row timed without the SciPy check
UNCHECKED = "unchecked"

Runner = Callable[[np.ndarray], tuple[Any, float, float]]


def checkable(steps: list[Step]) -> bool:
    """Whether every step has a SciPy equivalent (IIR, FIR, gain; normalize resolves
    to a gain): then the output is checked against the float64 reference."""
    return all(isinstance(s, (IIR, FIR, Gain, Normalize)) for s in steps)


def design(configs: list[StepConfig], sample_rate: int, channels: int, x: np.ndarray) -> list[Step]:
    """The chain designed for ``channels`` channels with its analysis steps resolved
    on ``x`` ``(channels, frames)`` float32 (fused). Raises ``PresetError`` for a chain
    impossible at this channel count (e.g. ``remix to: stereo`` from 8 channels)."""
    steps = build_chain(configs, sample_rate, channels)
    xt = torch.from_numpy(x)

    def measure_pass(head: list[Step]) -> Any:
        y, states = run_chain(head, xt, init_states(head, (x.shape[0],), xt.device))
        tail, _ = flush_chain(head, states, xt.dtype)
        yield y if tail is None else torch.cat([y, tail], dim=-1)

    return resolve_analysis(steps, measure_pass, "cpu")


def _run(steps: list[Step], xt: torch.Tensor, chunk: int) -> torch.Tensor:
    states = init_states(steps, (xt.shape[0],), xt.device)
    outs = []
    for s in range(0, max(xt.shape[-1], 1), chunk):
        y, states = run_chain(steps, xt[:, s : s + chunk], states)
        outs.append(y)
    tail, _ = flush_chain(steps, states, xt.dtype)
    if tail is not None:
        outs.append(tail)
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)


def runner(backend: str, steps: list[Step], sample_rate: int, channels: int) -> Runner:
    """The timed run of ``backend`` (``cpu`` or ``cuda``) for a designed chain:
    ``run(x) -> (y, kernel seconds, transfer seconds)``."""
    dev = torch.device(backend)
    fused = [s.to(dev) for s in fuse(steps)]
    if backend == "cpu":
        chunk = chunk_frames(dev, sample_rate, channels, None)
        return timed_cpu(lambda xt: _run(fused, xt, chunk))
    chunk = chunk_frames(dev, sample_rate, channels, None, streaming=False)
    return timed_cuda(lambda xd: _run(fused, xd, chunk), dev)
