"""Run a list of steps over one chunk with explicit per-step state.

``run_chain(steps, x, states) -> (y, new_states)``: ``x`` is ``(channels, n)``
on the steps' device; ``states`` comes from :func:`init_states`. The input
states are not modified, so a failed chunk can be retried from them. ``y`` may
differ from ``x`` in length (steps with latency, trim, pad, resample) and in
channel count (remix). At the end of the stream :func:`flush_chain` returns the
frames the steps still hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fxcli.errors import NonFiniteError
from fxcli.steps import Step
from fxcli.steps.base import concat, is_tensor

if TYPE_CHECKING:
    import torch
    from torch import Tensor


def init_states(
    steps: list[Step], batch_shape: tuple[int, ...], device: torch.device | str
) -> list[Any]:
    """Zero states for input of shape ``(*batch_shape, n)``; the last batch axis is the
    channels, and each step gets the channel count the steps before it produce."""
    states = []
    for step in steps:
        states.append(step.init_state(batch_shape, device))
        if batch_shape:
            batch_shape = (*batch_shape[:-1], step.output_channels(batch_shape[-1]))
    return states


def run_chain(steps: list[Step], x: Tensor, states: list[Any]) -> tuple[Tensor, list[Any]]:
    new_states = []
    for step, st in zip(steps, states, strict=True):
        x, st = step.process(x, st)
        new_states.append(st)
    return x, new_states


def all_finite(x: Tensor) -> bool:
    """Whether every sample is finite, by one min/max reduction (NaN propagates
    through aminmax, +-Inf is its own extreme): ~1 ms per 10 s x 8 ch chunk on the
    2-core VM where ``isfinite(x).all()`` took 24-80 ms."""
    if isinstance(x, np.ndarray):
        if x.size == 0:
            return True
        return bool(np.isfinite(x.min()) and np.isfinite(x.max()))
    import torch

    if x.numel() == 0:
        return True
    lo, hi = torch.aminmax(x)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


def _finite(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return np.isfinite(x)
    import torch

    return torch.isfinite(x)


def flush_chain(
    steps: list[Step], states: list[Any], dtype: Any
) -> tuple[Tensor | None, list[Any]]:
    """End of stream: flush each step in order, running what an earlier step releases
    through the steps after it. Returns the final frames (``None`` if there are none)."""
    tail: Tensor | None = None
    new_states = []
    for step, st in zip(steps, states, strict=True):
        if tail is not None and tail.shape[-1] > 0:
            tail, st = step.process(tail, st)
        more, st = step.flush(st)
        if more is not None:
            more = more.to(dtype) if is_tensor(more) else more.astype(dtype)  # type: ignore[attr-defined]
            tail = more if tail is None else concat([tail, more])
        new_states.append(st)
    if tail is not None and not all_finite(tail):
        raise NonFiniteError("the chain produced non-finite output at the end of the signal")
    return tail, new_states


def _first_bad(x: Tensor) -> tuple[int, int]:
    """(frame, channel) of the first non-finite sample in a (channels, n) tensor."""
    bad = ~_finite(x)
    if isinstance(bad, np.ndarray):
        frame = int(np.flatnonzero(bad.any(axis=0))[0])
        return frame, int(np.flatnonzero(bad[:, frame])[0])
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
    if all_finite(y):
        return y, new_states
    if not bool(_finite(x).all()):
        frame, ch = _first_bad(x)
        raise NonFiniteError(
            f"non-finite input sample (NaN or Inf) at frame {offset + frame}, channel {ch}"
        )
    z = x
    for step, st in zip(steps, states, strict=True):
        z, _ = step.process(z, st)
        if not bool(_finite(z).all()):
            frame, ch = _first_bad(z)
            raise NonFiniteError(
                f"{step.label} produced non-finite output at frame {offset + frame}, channel {ch}"
            )
    raise NonFiniteError("the chain produced non-finite output")  # pragma: no cover
