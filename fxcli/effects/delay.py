"""Feedback echo as a chain step: :class:`Delay`."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from fxcli.dsp.delayline import delay_state, feedback_delay
from fxcli.steps import Step

__all__ = ["Delay"]


class Delay(Step):
    """Feedback echo (pure torch, any device).

    With ``D = round(time_ms * fs / 1000)`` frames (``>= 1``), ``g = feedback``::

        wet[n] = x[n - D] + g * wet[n - D]      (zero before the stream starts)
        y[n]   = (1 - mix) * x[n] + mix * wet[n]

    computed in float64 and returned in ``x``'s dtype. Output length equals input
    length: the echoes after the input's last frame are not emitted (pad the input
    with silence to keep them).

    State: ``(x_hist, wet_hist)``, each ``(*batch, D)`` float64 (the last ``D`` input
    and wet frames). Chunked processing equals whole-signal processing bit for bit.

    Args:
        time_ms: delay time in milliseconds, > 0, with ``round(time_ms * fs / 1000) >= 1``.
        feedback: echo feedback gain in [0, 0.99].
        mix: dry/wet balance in [0, 1] (0 = dry only, 1 = wet only).
        fs: input sample rate in Hz.
    """

    def __init__(
        self,
        time_ms: float = 250.0,
        feedback: float = 0.3,
        mix: float = 0.5,
        *,
        fs: float,
        label: str = "delay",
    ) -> None:
        super().__init__()
        self.label = label
        if not (math.isfinite(fs) and fs > 0):
            raise ValueError(f"{label}: fs must be a positive sample rate in Hz, got {fs}")
        if not (math.isfinite(time_ms) and time_ms > 0):
            raise ValueError(f"{label}: time_ms must be > 0, got {time_ms}")
        d = round(time_ms * fs / 1000.0)
        if d < 1:
            raise ValueError(
                f"{label}: time_ms={time_ms} is shorter than one frame at {fs} Hz "
                f"(round(time_ms * fs / 1000) must be >= 1)"
            )
        if not (0.0 <= feedback <= 0.99):
            raise ValueError(f"{label}: feedback must be in [0, 0.99], got {feedback}")
        if not (0.0 <= mix <= 1.0):
            raise ValueError(f"{label}: mix must be in [0, 1], got {mix}")
        self.time_ms = float(time_ms)
        self.feedback = float(feedback)
        self.mix = float(mix)
        self.fs = float(fs)
        self.delay_frames = int(d)

    def init_state(
        self, batch_shape: tuple[int, ...], device: torch.device | str
    ) -> tuple[Tensor, Tensor]:
        return delay_state(batch_shape, self.delay_frames, device)

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        wet, new_state = feedback_delay(x, self.delay_frames, self.feedback, state)
        y = (1.0 - self.mix) * x.detach().to(torch.float64) + self.mix * wet
        return y.to(x.dtype), new_state
