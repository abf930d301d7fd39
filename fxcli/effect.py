"""Effects as ``torch.nn.Module``s: the classes the preset steps build, by name.

``Gain``, ``Normalize``, ``Loudness``, ``Compressor``, ``Limiter``, ``Gate``,
``Expander``, ``Fade``, ``Trim``, ``Pad``, ``Delay``, ``Remix``, ``Polarity``,
``DCBlock``, ``Resample``, ``Convolve`` and ``Reverb``. Each is the
:class:`fxcli.steps.Step` subclass the engine runs for the preset step of that
type, with the preset's keys as keyword arguments (``Compressor(threshold_db=-20,
ratio=4, fs=48000)``).

The sample rate may be left out: ``Compressor(threshold_db=-20)`` then returns a
:class:`Deferred` placeholder that a :class:`fxcli.Wave` pipe (``wave | ...``)
binds to the signal's rate (and channel count, for ``Remix``). Calling a
placeholder directly raises a clear error.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from fxcli.effects import delay as _delay
from fxcli.effects import dynamics as _dynamics
from fxcli.effects import edit as _edit
from fxcli.effects import loudness as _loudness
from fxcli.effects import resample as _resample
from fxcli.effects import space as _space
from fxcli.steps import IIR, Step, dc_block_sos
from fxcli.steps import Gain as _Gain
from fxcli.steps import Normalize as _Normalize

__all__ = [
    "Compressor",
    "Convolve",
    "DCBlock",
    "Deferred",
    "Delay",
    "Expander",
    "Fade",
    "Gain",
    "Gate",
    "Limiter",
    "Loudness",
    "Normalize",
    "Pad",
    "Polarity",
    "Remix",
    "Resample",
    "Reverb",
    "Trim",
]


class Deferred(Step):
    """A step whose class needs the sample rate (or channel count) it will run at.

    :meth:`bind` builds the real step; the ``Wave`` pipe calls it. ``process``
    raises, naming the class, because there is nothing to run yet.
    """

    def __init__(
        self, cls: type, args: tuple[Any, ...], kwargs: dict[str, Any], needs: str = "fs"
    ) -> None:
        super().__init__()
        self.cls, self.args, self.kwargs, self.needs = cls, args, dict(kwargs), needs
        self.label = kwargs.get("label", cls.__name__.lower())

    def bind(self, fs: float, channels: int) -> Step:
        extra: dict[str, Any] = {"fs": fs}
        if self.needs == "channels":
            extra["channels"] = channels
        step: Step = self.cls(*self.args, **{**self.kwargs, **extra})
        return step

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise ValueError(
            f"{self.cls.__name__} has no sample rate: pass fs=... or pipe a Wave through it"
        )

    def extra_repr(self) -> str:
        return f"{self.cls.__name__}(args={self.args}, kwargs={self.kwargs}) waiting for fs"


def _deferrable(base: type[Step], needs: str = "fs") -> type[Step]:
    """A public subclass of ``base`` whose constructor returns a :class:`Deferred`
    when ``fs`` (or, for ``needs="channels"``, ``channels``) is not given."""

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get(needs) is None:
            kwargs.pop(needs, None)
            return Deferred(cls, args, kwargs, needs)
        return base.__new__(cls)

    doc = (base.__doc__ or "") + (
        f"\n\n    Without ``{needs}=...`` this returns a :class:`fxcli.effect.Deferred` "
        "that a Wave pipe binds."
    )
    return type(
        base.__name__, (base,), {"__new__": __new__, "__doc__": doc, "__module__": __name__}
    )


Compressor = _deferrable(_dynamics.Compressor)
Limiter = _deferrable(_dynamics.Limiter)
Gate = _deferrable(_dynamics.Gate)
Expander = _deferrable(_dynamics.Expander)
Loudness = _deferrable(_loudness.Loudness)
Fade = _deferrable(_edit.Fade)
Trim = _deferrable(_edit.Trim)
Pad = _deferrable(_edit.Pad)
Remix = _deferrable(_edit.Remix, needs="channels")
Delay = _deferrable(_delay.Delay)
Resample = _deferrable(_resample.Resample)
Convolve = _deferrable(_space.Convolve)
Reverb = _deferrable(_space.Reverb)


class Gain(_Gain):
    """A constant gain: ``Gain(gain)`` (linear amplitude) or ``Gain(gain_db=...)``."""

    def __init__(
        self, gain: float | None = None, *, gain_db: float | None = None, label: str = "gain"
    ) -> None:
        if (gain is None) == (gain_db is None):
            raise ValueError("Gain: give gain (linear) or gain_db, once")
        super().__init__(gain if gain is not None else 10.0 ** (gain_db / 20.0), label=label)  # type: ignore[operator]


class Normalize(_Normalize):
    """Peak or RMS normalization over the whole signal (a measuring pass).

    ``Normalize(peak=0.9)`` (linear peak, TorchFX style), ``Normalize(peak_db=-1)``
    or ``Normalize(rms_db=-20)``; default peak -1 dBFS.
    """

    def __init__(
        self,
        peak: float | None = None,
        *,
        peak_db: float | None = None,
        rms_db: float | None = None,
        label: str = "normalize",
        fs: float | None = None,
    ) -> None:
        if peak is not None:
            if peak_db is not None or rms_db is not None:
                raise ValueError("Normalize: give one of peak, peak_db, rms_db")
            if not peak > 0:
                raise ValueError(f"Normalize: peak must be > 0 (linear), got {peak!r}")
            import math

            peak_db = 20.0 * math.log10(peak)
        super().__init__(peak_db, rms_db, label=label)


class Polarity(_Gain):
    """Invert the polarity of every channel (a gain of -1; fuses into IIR cascades)."""

    def __init__(self, *, label: str = "polarity", fs: float | None = None) -> None:
        super().__init__(-1.0, label=label)


class _DCBlock(IIR):
    """One-pole DC blocker ``y[n] = x[n] - x[n-1] + R y[n-1]``, ``R = exp(-2 pi cutoff/fs)``."""

    def __init__(self, cutoff_hz: float = 10.0, *, fs: float, label: str = "dc_block") -> None:
        super().__init__(dc_block_sos(cutoff_hz, fs), label=label)
        self.cutoff_hz, self.fs = cutoff_hz, fs


DCBlock = _deferrable(_DCBlock)
