"""Level steps: a constant gain, polarity inversion, peak/RMS normalization.

Devices: any (CPU or CUDA tensors). Autograd: gradients flow to the input; the
gain factor itself is a plain float (not learnable).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from fxcli.errors import ParameterError
from fxcli.preset.spec import check
from fxcli.steps.base import Step

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["GAIN_TYPES", "Gain", "Normalize", "Polarity"]

GAIN_TYPES = ("amplitude", "db", "power")


def _finite(name: str, value: float, allowed: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v):
        raise ParameterError(name, f"got {value!r}", allowed)
    return v


class Gain(Step):
    """A constant gain (stateless); fuses into adjacent IIR cascades.

    ``Gain(0.5)`` is a linear amplitude factor, as in TorchFX (``gain_type``
    ``"amplitude"``, also ``"db"`` and ``"power"`` as in TorchFX's ``Gain``);
    ``Gain(gain_db=-6)`` states the unit by name (what a preset's ``gain_db``
    means). An amplitude factor below 0 is refused: ``Gain(-3)`` is most likely
    meant as dB (write ``Gain(gain_db=-3)``), and polarity inversion is
    :class:`Polarity`. Non-finite values are refused.

    >>> Gain(0.5).gain
    0.5
    >>> round(Gain(gain_db=-6).gain, 4)
    0.5012
    >>> Gain(-3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fxcli.errors.ParameterError: gain: got -3 as a linear amplitude factor; ...Gain(gain_db=-3)...

    Devices: any. Autograd: gradients flow to the input.
    """

    def __init__(
        self,
        gain: float | None = None,
        gain_type: str = "amplitude",
        *,
        gain_db: float | None = None,
        label: str = "gain",
        fs: float | None = None,
    ) -> None:
        super().__init__()
        if (gain is None) == (gain_db is None):
            raise ValueError("Gain: give gain (a factor, see gain_type) or gain_db, once")
        if gain_db is not None:
            factor = 10.0 ** (check("gain", "gain_db", gain_db) / 20.0)
        elif gain_type == "db":
            factor = 10.0 ** (_finite("gain", gain, "a finite number of dB") / 20.0)  # type: ignore[arg-type]
        elif gain_type in ("amplitude", "power"):
            v = _finite("gain", gain, "a finite factor >= 0")  # type: ignore[arg-type]
            if v < 0:
                raise ParameterError(
                    "gain",
                    f"got {v:g} as a linear {gain_type} factor",
                    f">= 0 (for dB write Gain(gain_db={v:g}); to invert polarity use Polarity())",
                )
            factor = v if gain_type == "amplitude" else math.sqrt(v)
        else:
            raise ValueError(f"gain_type: got {gain_type!r}; allowed: {', '.join(GAIN_TYPES)}")
        self.gain = factor
        self.label = label

    @classmethod
    def factor(cls, gain: float, label: str = "gain") -> Gain:
        """A gain of any finite linear ``gain`` (negative included): what fusion and
        measured normalizations produce."""
        step = cls(1.0, label=label)
        step.gain = _finite("gain", gain, "a finite factor")
        return step

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        if self.gain == 1.0:
            return x, state
        if isinstance(x, np.ndarray):
            return (x.astype(np.float64) * self.gain).astype(x.dtype), state
        import torch

        return (x.to(torch.float64) * self.gain).to(x.dtype), state

    def extra_repr(self) -> str:
        return f"gain={self.gain:g}"


class Polarity(Gain):
    """Invert the polarity of every channel (a gain of -1; fuses into IIR cascades).

    Devices: any. Autograd: gradients flow to the input.
    """

    def __init__(self, *, label: str = "polarity", fs: float | None = None) -> None:
        super().__init__(1.0, label=label)
        self.gain = -1.0


class Normalize(Step):
    """Peak or RMS normalization over the whole signal: needs a measuring pass.

    ``Normalize(0.9)`` or ``Normalize(peak=0.9)``: linear peak, as in TorchFX;
    ``Normalize(peak_db=-1)`` (dBFS, the default when nothing is given) or
    ``Normalize(rms_db=-20)`` (dBFS over all channels and frames).

    Called directly (``n(x)``, or inside ``nn.Sequential``) it measures ``x`` and
    applies the gain at once. In a streamed chain (the engine, a ``Wave`` pipe)
    :meth:`measure` folds chunks into a running peak or sum of squares and
    :meth:`resolve` returns the :class:`Gain` that brings the measurement to the
    target (unity for silence).

    Devices: any. Autograd: gradients flow to the input through the applied gain;
    the measured level is treated as a constant (detached).
    """

    needs_analysis = True

    def __init__(
        self,
        peak: float | None = None,
        *,
        peak_db: float | None = None,
        rms_db: float | None = None,
        label: str = "normalize",
        fs: float | None = None,
    ) -> None:
        super().__init__()
        if sum(v is not None for v in (peak, peak_db, rms_db)) > 1:
            raise ValueError("Normalize: give one of peak (linear), peak_db, rms_db")
        if peak is not None:
            p = _finite("peak", peak, "a linear peak > 0")
            if not p > 0:
                raise ValueError(f"peak: got {peak!r}; allowed: a linear peak > 0")
            peak_db = 20.0 * math.log10(p)
        self.rms_db = None if rms_db is None else check("normalize", "rms_db", rms_db)
        self.peak_db = -1.0 if peak_db is None else check("normalize", "peak_db", peak_db)
        self.label = label

    def measure(self, acc: tuple[float, int] | None, y: Tensor) -> tuple[float, int]:
        prev, count = acc if acc is not None else (0.0, 0)
        if isinstance(y, np.ndarray):
            if not y.size:
                return prev, count
            if self.rms_db is None:
                return max(prev, float(np.abs(y).max())), count + y.size
            return prev + float(np.sum(y.astype(np.float64) ** 2)), count + y.size
        import torch

        if not y.numel():
            return prev, count
        y = y.detach()
        if self.rms_db is None:
            return max(prev, float(y.abs().max())), count + y.numel()
        return prev + float(torch.sum(y.to(torch.float64) ** 2)), count + y.numel()

    def resolve(self, acc: tuple[float, int] | None) -> Step:
        value, count = acc if acc is not None else (0.0, 0)
        if self.rms_db is None:
            level, target = value, self.peak_db
        else:
            level, target = (value / count) ** 0.5 if count else 0.0, self.rms_db
        gain = 1.0 if level == 0.0 else 10.0 ** (target / 20.0) / level
        return Gain.factor(gain, label=self.label)

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise RuntimeError(
            f"{type(self).__name__} needs the whole signal before its first output: call it "
            "on the whole tensor (step(x)), pipe a Wave through it, or run the chain through "
            "fxcli.engine (streaming it chunk by chunk with a state is not possible)"
        )
