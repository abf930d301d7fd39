"""Filters as ``torch.nn.Module``s: the classes the preset steps build, by name.

Every class here is a :class:`fxcli.steps.Step` (so the engine streams it with
explicit state and fuses consecutive IIR filters into one cascade) and a plain
``nn.Module``: ``f(x)`` filters a ``(..., time)`` tensor from zero state (calling
it twice gives the same output), ``f(x, state) -> (y, state)`` streams.

The sample rate ``fs`` (Hz) may be left out: piping a :class:`fxcli.Wave` through a
filter (``wave | HiButterworth(80)``) fills it in and designs the coefficients.
Coefficients are float64 buffers (``sos`` of shape (S, 6), or FIR ``taps``), so a
plain ``.to(device)`` moves them and ``state_dict()`` holds them;
:meth:`DesignedIIR.compute_coefficients` and :meth:`DesignedIIR.move_coeff` are
kept for TorchFX-style code. Designs follow ``scipy.signal`` exactly (see
:mod:`fxcli.dsp.design`); defaults equal the preset defaults (order 2, Chebyshev
ripple 0.5 dB, stopband attenuation 40 dB, Q 0.7071).

Learnable biquads (``Peaking``, shelves, ``Notch``, ``AllPass`` with
``learnable=True``) hold ``freq_hz``, ``gain_db`` and ``q`` as ``nn.Parameter`` and
design their section in torch on every call, so gradients reach them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fxcli.dsp import design as D
from fxcli.dsp.iir import sosfilt
from fxcli.steps import FIR, IIR

__all__ = [
    "FIR",
    "IIR",
    "AllPass",
    "Bandpass",
    "Bandstop",
    "DesignableFIR",
    "DesignedIIR",
    "HiBessel",
    "HiButterworth",
    "HiChebyshev1",
    "HiChebyshev2",
    "HiElliptic",
    "HiLinkwitzRiley",
    "HiShelving",
    "Highpass",
    "LoBessel",
    "LoButterworth",
    "LoChebyshev1",
    "LoChebyshev2",
    "LoElliptic",
    "LoLinkwitzRiley",
    "LoShelving",
    "Lowpass",
    "Notch",
    "Peaking",
]


def _fs(fs: float | None) -> float | None:
    if fs is None:
        return None
    fs = float(fs)
    if not (np.isfinite(fs) and fs > 0):
        raise ValueError(f"fs: got {fs!r}; allowed: a sample rate > 0 Hz (or None)")
    return fs


class DesignedIIR(IIR):
    """An IIR filter designed from parameters for a sample rate ``fs`` (Hz).

    Subclasses implement :meth:`design` (float64 sos for a rate). With ``fs=None``
    the coefficients are designed when the rate becomes known (:meth:`set_fs`,
    called by the ``Wave`` pipe); filtering before that raises a clear error.
    """

    def __init__(self, fs: float | None = None, label: str = "iir") -> None:
        super().__init__(np.zeros((0, 6)), label=label)
        self.fs = _fs(fs)

    def design(self, fs: float) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute_coefficients(self) -> None:
        """Design the sos for ``self.fs`` (no-op while ``fs`` is unknown)."""
        if self.fs is None:
            return
        sos = self.design(self.fs)  # DesignError (a ValueError) names the parameter
        self.sos = torch.as_tensor(sos, dtype=torch.float64, device=self.sos.device)

    def set_fs(self, fs: float) -> None:
        """Set the sample rate and design; a filter already designed for another
        rate raises (build one per rate)."""
        fs = float(fs)
        if self.fs is not None and self.fs != fs:
            raise ValueError(
                f"{type(self).__name__} was designed for {self.fs:g} Hz, the signal is {fs:g} Hz"
            )
        self.fs = fs
        if self.sos.shape[0] == 0:
            self.compute_coefficients()

    def move_coeff(self, device: torch.device | str) -> DesignedIIR:
        """Kept for TorchFX code: the same as ``.to(device)`` (coefficients are buffers)."""
        return self.to(device)

    def _ready(self) -> None:
        if self.sos.shape[0] == 0:
            if self.fs is None:
                raise ValueError(
                    f"{type(self).__name__} has no sample rate: pass fs=... or pipe a Wave "
                    "through it (wave | filter)"
                )
            self.compute_coefficients()

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        self._ready()
        return super().init_state(batch_shape, device)

    def extra_repr(self) -> str:
        return f"fs={self.fs}, sections={self.sos.shape[0]}"


# ------------------------------------------------------------------ highpass/lowpass/bands


class _Pass(DesignedIIR):
    btype = "highpass"
    fixed_design: str | None = None

    def __init__(
        self,
        cutoff: float | None = None,
        order: int = 2,
        design: str = "butterworth",
        ripple_db: float = 0.5,
        attenuation_db: float = 40.0,
        fs: float | None = None,
        *,
        cutoff_hz: float | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(fs, label or self.btype)
        if (cutoff is None) == (cutoff_hz is None):
            raise ValueError(f"{type(self).__name__}: give the cutoff (Hz) once")
        self.cutoff = float(cutoff if cutoff is not None else cutoff_hz)  # type: ignore[arg-type]
        if not (np.isfinite(self.cutoff) and self.cutoff > 0):
            raise ValueError(f"cutoff: got {self.cutoff!r}; allowed: a frequency > 0 Hz")
        if not (isinstance(order, int) and 1 <= order <= 32):
            raise ValueError(f"order: got {order!r}; allowed: an integer from 1 to 32")
        self.order = order
        self.design_name = self.fixed_design or design
        if self.design_name not in D.IIR_DESIGNS:
            raise ValueError(f"design: got {design!r}; allowed: {', '.join(D.IIR_DESIGNS)}")
        self.ripple_db = float(ripple_db)
        self.attenuation_db = float(attenuation_db)
        self.compute_coefficients()

    def design(self, fs: float) -> np.ndarray:
        return D.iir_pass(
            self.btype,
            self.cutoff,
            fs,
            self.order,
            self.design_name,
            self.ripple_db,
            self.attenuation_db,
        )

    def extra_repr(self) -> str:
        return (
            f"cutoff={self.cutoff:g}, order={self.order}, design={self.design_name}, fs={self.fs}"
        )


class Highpass(_Pass):
    """IIR highpass: ``scipy.signal.iirfilter(order, cutoff, btype='highpass', ftype=design,
    rp=ripple_db, rs=attenuation_db, fs=fs, output='sos')`` (``linkwitz_riley``: a
    Butterworth of order/2 applied twice)."""

    btype = "highpass"


class Lowpass(_Pass):
    """IIR lowpass (see :class:`Highpass` for the design semantics)."""

    btype = "lowpass"


class HiButterworth(Highpass):
    """Butterworth highpass: ``HiButterworth(cutoff, order=2, fs=None)``."""

    fixed_design = "butterworth"


class LoButterworth(Lowpass):
    """Butterworth lowpass: ``LoButterworth(cutoff, order=2, fs=None)``."""

    fixed_design = "butterworth"


class HiChebyshev1(Highpass):
    """Chebyshev type I highpass, ``ripple_db`` passband ripple (0.5 dB)."""

    fixed_design = "chebyshev1"


class LoChebyshev1(Lowpass):
    """Chebyshev type I lowpass, ``ripple_db`` passband ripple (0.5 dB)."""

    fixed_design = "chebyshev1"


class HiChebyshev2(Highpass):
    """Chebyshev type II highpass; ``cutoff`` is the stopband edge (SciPy); 40 dB stopband."""

    fixed_design = "chebyshev2"


class LoChebyshev2(Lowpass):
    """Chebyshev type II lowpass; ``cutoff`` is the stopband edge (SciPy), ``attenuation_db`` 40."""

    fixed_design = "chebyshev2"


class HiElliptic(Highpass):
    """Elliptic highpass (``ripple_db`` 0.5, ``attenuation_db`` 40)."""

    fixed_design = "elliptic"


class LoElliptic(Lowpass):
    """Elliptic lowpass (``ripple_db`` 0.5, ``attenuation_db`` 40)."""

    fixed_design = "elliptic"


class HiBessel(Highpass):
    """Bessel highpass (SciPy's default ``norm='phase'``)."""

    fixed_design = "bessel"


class LoBessel(Lowpass):
    """Bessel lowpass (SciPy's default ``norm='phase'``)."""

    fixed_design = "bessel"


class HiLinkwitzRiley(Highpass):
    """Linkwitz-Riley highpass: even ``order`` (default 4), Butterworth order/2 squared."""

    fixed_design = "linkwitz_riley"

    def __init__(self, cutoff: float | None = None, order: int = 4, **kwargs: Any) -> None:
        super().__init__(cutoff, order, **kwargs)


class LoLinkwitzRiley(Lowpass):
    """Linkwitz-Riley lowpass: even ``order`` (default 4), Butterworth order/2 squared."""

    fixed_design = "linkwitz_riley"

    def __init__(self, cutoff: float | None = None, order: int = 4, **kwargs: Any) -> None:
        super().__init__(cutoff, order, **kwargs)


class _Band(DesignedIIR):
    btype = "bandpass"

    def __init__(
        self,
        low_hz: float,
        high_hz: float,
        order: int = 2,
        design: str = "butterworth",
        ripple_db: float = 0.5,
        attenuation_db: float = 40.0,
        fs: float | None = None,
        *,
        label: str | None = None,
    ) -> None:
        super().__init__(fs, label or self.btype)
        self.low_hz, self.high_hz = float(low_hz), float(high_hz)
        if not 0 < self.low_hz < self.high_hz:
            raise ValueError(f"low_hz/high_hz: need 0 < low_hz < high_hz, got {low_hz}, {high_hz}")
        self.order, self.design_name = order, design
        self.ripple_db, self.attenuation_db = float(ripple_db), float(attenuation_db)
        self.compute_coefficients()

    def design(self, fs: float) -> np.ndarray:
        return D.iir_pass(
            self.btype,
            [self.low_hz, self.high_hz],
            fs,
            self.order,
            self.design_name,
            self.ripple_db,
            self.attenuation_db,
        )


class Bandpass(_Band):
    """IIR bandpass between ``low_hz`` and ``high_hz`` (order N gives 2N poles)."""

    btype = "bandpass"


class Bandstop(_Band):
    """IIR bandstop between ``low_hz`` and ``high_hz`` (order N gives 2N poles)."""

    btype = "bandstop"


# ------------------------------------------------------------------ RBJ biquads


class _Biquad(DesignedIIR):
    """An RBJ cookbook biquad; with ``learnable=True`` its parameters are trained."""

    kind = "peaking"
    has_gain = True

    def __init__(
        self,
        freq_hz: float,
        gain_db: float = 0.0,
        q: float | None = 0.7071,
        fs: float | None = None,
        *,
        slope: float | None = None,
        learnable: bool = False,
        label: str | None = None,
    ) -> None:
        super().__init__(fs, label or self.kind)
        if not (np.isfinite(freq_hz) and freq_hz > 0):
            raise ValueError(f"freq_hz: got {freq_hz!r}; allowed: a frequency > 0 Hz")
        if q is not None and not (np.isfinite(q) and q > 0):
            raise ValueError(f"q: got {q!r}; allowed: a number > 0")
        if q is None and slope is None:
            q = 0.7071
        self.slope = None if slope is None else float(slope)
        self.learnable = bool(learnable)
        values = {"freq_hz": float(freq_hz), "gain_db": float(gain_db), "q": q}
        for name, value in values.items():
            if self.learnable and value is not None and (name != "gain_db" or self.has_gain):
                setattr(self, name, nn.Parameter(torch.tensor(value, dtype=torch.float64)))
            else:
                setattr(self, name, value)
        self.compute_coefficients()

    def _value(self, name: str) -> Any:
        v = getattr(self, name)
        return float(v.detach()) if isinstance(v, Tensor) else v

    def design(self, fs: float) -> np.ndarray:
        return D.rbj(
            self.kind,
            self._value("freq_hz"),
            fs,
            q=self._value("q") or 0.7071,
            gain_db=self._value("gain_db"),
            slope=self.slope,
        )

    def torch_sos(self) -> Tensor:
        """The section as a differentiable (1, 6) float64 tensor of the parameters."""
        from fxcli.dsp import design_torch

        assert self.fs is not None
        freq: Any = self.freq_hz
        q: Any = self.q
        gain: Any = self.gain_db
        return design_torch.rbj(self.kind, freq, self.fs, q=q, gain_db=gain, slope=self.slope)

    def process(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        if not self.learnable:
            return super().process(x, state)
        self._ready()
        return sosfilt(x, self.torch_sos().to(x.device), state)

    def extra_repr(self) -> str:
        parts = [f"freq_hz={self._value('freq_hz'):g}"]
        if self.has_gain:
            parts.append(f"gain_db={self._value('gain_db'):g}")
        if self._value("q") is not None:
            parts.append(f"q={self._value('q'):g}")
        if self.slope is not None:
            parts.append(f"slope={self.slope:g}")
        return ", ".join(parts) + f", fs={self.fs}, learnable={self.learnable}"


class Peaking(_Biquad):
    """RBJ peaking EQ: ``Peaking(freq_hz, gain_db, q=0.7071, fs=None, learnable=False)``."""

    kind = "peaking"


class LoShelving(_Biquad):
    """RBJ low shelf: ``LoShelving(freq_hz, gain_db, q=0.7071, fs=None, slope=None)``
    (give ``q`` or ``slope``)."""

    kind = "lowshelf"

    def __init__(
        self,
        freq_hz: float,
        gain_db: float = 0.0,
        q: float | None = None,
        fs: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(freq_hz, gain_db, q, fs, **kw)


class HiShelving(_Biquad):
    """RBJ high shelf: ``HiShelving(freq_hz, gain_db, q=0.7071, fs=None, slope=None)``."""

    kind = "highshelf"

    def __init__(
        self,
        freq_hz: float,
        gain_db: float = 0.0,
        q: float | None = None,
        fs: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(freq_hz, gain_db, q, fs, **kw)


class Notch(_Biquad):
    """RBJ notch: ``Notch(freq_hz, q=0.7071, fs=None)``."""

    kind = "notch"
    has_gain = False

    def __init__(
        self, freq_hz: float, q: float = 0.7071, fs: float | None = None, **kw: Any
    ) -> None:
        super().__init__(freq_hz, 0.0, q, fs, **kw)


class AllPass(_Biquad):
    """RBJ allpass: ``AllPass(freq_hz, q=0.7071, fs=None)``."""

    kind = "allpass"
    has_gain = False

    def __init__(
        self, freq_hz: float, q: float = 0.7071, fs: float | None = None, **kw: Any
    ) -> None:
        super().__init__(freq_hz, 0.0, q, fs, **kw)


# ------------------------------------------------------------------ FIR


class DesignableFIR(FIR):
    """Windowed-sinc FIR: ``DesignableFIR(num_taps, cutoff, fs=None, window="hamming",
    pass_type="lowpass")``, the same taps as ``scipy.signal.firwin(num_taps, cutoff,
    window=window, pass_zero=pass_type, fs=fs)``; designed when ``fs`` is known."""

    def __init__(
        self,
        num_taps: int,
        cutoff: float | Sequence[float],
        fs: float | None = None,
        window: str | Sequence[object] = "hamming",
        pass_type: str = "lowpass",
        *,
        label: str = "fir",
    ) -> None:
        super().__init__(np.zeros(1), label=label)
        if not (isinstance(num_taps, int) and num_taps >= 1):
            raise ValueError(f"num_taps: got {num_taps!r}; allowed: an integer >= 1")
        self.num_taps, self.cutoff, self.window, self.pass_type = (
            num_taps,
            cutoff,
            window,
            pass_type,
        )
        self.fs = _fs(fs)
        self._designed = False
        self.compute_coefficients()

    def compute_coefficients(self) -> None:
        """Design the taps for ``self.fs`` (no-op while ``fs`` is unknown)."""
        if self.fs is None:
            return
        taps = D.fir_window(self.num_taps, self.cutoff, self.fs, self.pass_type, self.window)
        self.taps = torch.as_tensor(taps, dtype=torch.float64, device=self.taps.device)
        self._designed = True

    def set_fs(self, fs: float) -> None:
        fs = float(fs)
        if self.fs is not None and self.fs != fs:
            raise ValueError(
                f"DesignableFIR was designed for {self.fs:g} Hz, the signal is {fs:g} Hz"
            )
        self.fs = fs
        if not self._designed:
            self.compute_coefficients()

    def move_coeff(self, device: torch.device | str) -> DesignableFIR:
        """Kept for TorchFX code: the same as ``.to(device)``."""
        return self.to(device)

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        if not self._designed:
            if self.fs is None:
                raise ValueError(
                    "DesignableFIR has no sample rate: pass fs=... or pipe a Wave through it"
                )
            self.compute_coefficients()
        return super().init_state(batch_shape, device)
