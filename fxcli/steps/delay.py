"""Feedback echo as a chain step: :class:`Delay`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fxcli.dsp.delayline import delay_state, feedback_delay
from fxcli.errors import ParameterError
from fxcli.preset.spec import check
from fxcli.steps.base import Step, check_fs
from fxcli.steps.module import torch_free

if TYPE_CHECKING:
    import torch
    from torch import Tensor

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
        delay_samples: the delay in frames (an integer >= 1). This is TorchFX's first
            argument, so ``Delay(4410)`` means 4410 samples as it does there (TorchFX's
            multi-tap and BPM options are not offered). Give this or ``time_ms``.
        time_ms: the delay in milliseconds, > 0 and <= 10000, with
            ``round(time_ms * fs / 1000) >= 1`` (the preset key; default 250 when
            neither is given).
        feedback: echo feedback gain in [0, 0.99].
        mix: dry/wet balance in [0, 1] (0 = dry only, 1 = wet only).
        fs: input sample rate in Hz (may be left out: a ``Wave`` pipe binds it).

    Devices: any. Autograd: not supported: calling it on a tensor that requires grad
    raises (run it under torch.no_grad()).
    """

    differentiable = False

    late_binding = "fs"

    def __init__(
        self,
        delay_samples: int | None = None,
        *,
        time_ms: float | None = None,
        feedback: float = 0.3,
        mix: float = 0.5,
        fs: float,
        label: str = "delay",
    ) -> None:
        super().__init__()
        self.label = label
        self.fs = check_fs(fs)
        if delay_samples is not None and time_ms is not None:
            raise ParameterError(
                "delay_samples",
                f"got {delay_samples!r} with time_ms {time_ms!r}",
                "delay_samples or time_ms, not both",
            )
        if delay_samples is not None:
            if (
                isinstance(delay_samples, bool)
                or not isinstance(delay_samples, int)
                or delay_samples < 1
            ):
                raise ParameterError("delay_samples", f"got {delay_samples!r}", "an integer >= 1")
            d = delay_samples
            time_ms = d * 1000.0 / self.fs
        else:
            time_ms = check("delay", "time_ms", 250.0 if time_ms is None else time_ms)
            d = round(time_ms * self.fs / 1000.0)
            if d < 1:
                raise ParameterError(
                    "time_ms",
                    f"got {time_ms:g} (shorter than one frame at {self.fs:g} Hz)",
                    "a delay of at least one frame (round(time_ms * fs / 1000) >= 1)",
                )
        self.time_ms = float(time_ms)
        self.feedback = check("delay", "feedback", feedback)
        self.mix = check("delay", "mix", mix)
        self.delay_frames = int(d)

    def init_state(
        self, batch_shape: tuple[int, ...], device: torch.device | str
    ) -> tuple[Tensor, Tensor]:
        return delay_state(batch_shape, self.delay_frames, None if torch_free() else device)

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        wet, new_state = feedback_delay(x, self.delay_frames, self.feedback, state)
        if isinstance(x, np.ndarray):
            ya = (1.0 - self.mix) * x.astype(np.float64) + self.mix * wet
            return ya.astype(x.dtype), new_state  # type: ignore[return-value]
        import torch

        y = (1.0 - self.mix) * x.detach().to(torch.float64) + self.mix * wet
        return y.to(x.dtype), new_state
