"""Sample-rate conversion as a chain step: :class:`Resample`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fxcli.dsp import resample as R
from fxcli.preset.spec import check
from fxcli.steps.base import Step, check_fs
from fxcli.steps.module import torch_free

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["Resample"]

_BACKENDS = ("auto", "soxr", "torch")


class Resample(Step):
    """Resample from ``fs`` to ``rate_hz`` (the following steps run at ``rate_hz``).

    A whole signal of ``n`` frames gives ``int(n / (fs / rate_hz) + 0.5)`` frames
    (float64; the length ``soxr.resample`` returns), time-aligned (frame 0 out =
    frame 0 in): the resampler's delay is compensated by holding frames back, and
    :meth:`flush` returns the rest.

    Backends (see :mod:`fxcli.dsp.resample`): ``"soxr"`` (libsoxr, CPU; chunked
    output equals ``soxr.resample`` of the whole signal bit for bit; its state is
    consumed by each call, so a chunk cannot be retried from an old state: that
    raises ``RuntimeError``), ``"torch"`` (Kaiser polyphase, any device, integer
    rates; chunk-invariant to float64 rounding; needs integer rates) or ``"auto"``
    (soxr for states made on the CPU, torch elsewhere). ``backend`` is a constructor
    argument only, not a preset key.

    Args:
        rate_hz: output sample rate in Hz, > 0.
        quality: ``quick | low | medium | high | very_high`` (soxr QQ/LQ/MQ/HQ/VHQ;
            the torch designs for each are in :data:`fxcli.dsp.resample.QUALITIES`).
        fs: input sample rate in Hz.

    Devices: any (soxr on CPU; a polyphase torch kernel on CUDA). Autograd: not
    supported: calling it on a tensor that requires grad raises (run it under
    torch.no_grad()).
    """

    differentiable = False

    late_binding = "fs"

    def __init__(
        self,
        rate_hz: float,
        quality: str = "high",
        *,
        fs: float,
        label: str = "resample",
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.label = label
        rate_hz = check("resample", "rate_hz", rate_hz)
        fs = check_fs(fs)
        quality = check("resample", "quality", quality)
        if backend not in _BACKENDS:
            raise ValueError(f"{label}: backend must be one of {_BACKENDS}, got {backend!r}")
        self.rate_hz = float(rate_hz)
        self.fs = float(fs)
        self.quality = quality
        self.backend = backend
        self._bank: R.PolyphaseBank | None = None
        if backend == "torch":
            self._get_bank()  # integer-rate and size errors at construction

    def _get_bank(self) -> R.PolyphaseBank:
        if self._bank is None:
            _, passband, atten = R.QUALITIES[self.quality]
            try:
                self._bank = R.design_polyphase(self.fs, self.rate_hz, passband, atten)
            except ValueError as exc:
                raise ValueError(f"{self.label}: {exc}") from None
        return self._bank

    def output_rate(self, fs: float) -> float:
        return self.rate_hz

    def _use_soxr(self, device: torch.device | str) -> bool:
        if self.backend == "auto":
            return str(getattr(device, "type", device)).split(":")[0] == "cpu"
        return self.backend == "soxr"

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Any:
        if self.fs == self.rate_hz:
            return None
        if self._use_soxr(device):
            recipe = R.QUALITIES[self.quality][0]
            return R.soxr_state(
                batch_shape, self.fs, self.rate_hz, recipe, tensors=not torch_free()
            )
        return R.poly_state(batch_shape, self._get_bank(), device)

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        if self.fs == self.rate_hz:
            return x, state
        if isinstance(state, R.SoxrState):
            if not isinstance(x, np.ndarray) and x.device.type != "cpu":
                raise ValueError(
                    f"{self.label}: this state was made for the soxr (CPU) backend, x is on "
                    f"{x.device}"
                )
            return R.soxr_resample(x, state)
        return R.poly_resample(x, self._get_bank(), state)

    def flush(self, state: Any) -> tuple[Tensor | None, Any]:
        if state is None:
            return None, state
        if isinstance(state, R.SoxrState):
            return R.soxr_flush(state)
        return R.poly_flush(self._get_bank(), state)
