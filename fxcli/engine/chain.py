"""Run a list of steps over one chunk with explicit per-step state.

``run_chain(steps, x, states) -> (y, new_states)``: ``x`` is ``(channels, n)``
on the steps' device; ``states`` comes from :func:`init_states`. The input
states are not modified, so a failed chunk can be retried from them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from fxcli.steps import Step


class NonFiniteError(Exception):
    """Non-finite samples appeared; the message names where (one line)."""


def init_states(steps: list[Step], batch_shape: tuple[int, ...], device: torch.device) -> list[Any]:
    return [s.init_state(batch_shape, device) for s in steps]


def run_chain(steps: list[Step], x: Tensor, states: list[Any]) -> tuple[Tensor, list[Any]]:
    new_states = []
    for step, st in zip(steps, states, strict=True):
        x, st = step.process(x, st)
        new_states.append(st)
    return x, new_states


def _first_bad(x: Tensor) -> tuple[int, int]:
    """(frame, channel) of the first non-finite sample in a (channels, n) tensor."""
    bad = ~torch.isfinite(x)
    frames = bad.any(dim=0).nonzero()
    frame = int(frames[0])
    channel = int(bad[:, frame].nonzero()[0])
    return frame, channel


def run_chain_checked(
    steps: list[Step], x: Tensor, states: list[Any], offset: int
) -> tuple[Tensor, list[Any]]:
    """:func:`run_chain`, then if the output is not all finite, find and name the
    cause: the input sample (frame and channel, counted from the file start) or
    the first step whose output went non-finite. ``offset`` is the chunk's first frame."""
    y, new_states = run_chain(steps, x, states)
    if bool(torch.isfinite(y).all()):
        return y, new_states
    if not bool(torch.isfinite(x).all()):
        frame, ch = _first_bad(x)
        raise NonFiniteError(
            f"non-finite input sample (NaN or Inf) at frame {offset + frame}, channel {ch}"
        )
    z = x
    for step, st in zip(steps, states, strict=True):
        z, _ = step.process(z, st)
        if not bool(torch.isfinite(z).all()):
            frame, ch = _first_bad(z)
            raise NonFiniteError(
                f"{step.label} produced non-finite output at frame {offset + frame}, channel {ch}"
            )
    raise NonFiniteError("the chain produced non-finite output")  # pragma: no cover
