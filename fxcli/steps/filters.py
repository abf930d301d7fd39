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
from typing import TYPE_CHECKING, Any

import numpy as np

from fxcli.dsp import design as D
from fxcli.errors import ParameterError
from fxcli.preset.spec import check
from fxcli.steps.base import FIR, IIR, coefficients, is_tensor

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = [
    "DCBlock",
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

    Subclasses implement :meth:`design` (float64 sos for a rate) and list the
    attributes it reads in ``design_keys``. With ``fs=None`` the coefficients are
    designed when the rate becomes known (:meth:`bind`, called by the ``Wave``
    pipe; a later signal at another rate redesigns, as in TorchFX); a filter built
    with an explicit ``fs`` refuses a signal at another rate. Changing a design
    parameter after construction (``f.cutoff = 200``) redesigns before the next
    call. Filtering with no rate raises a clear error.

    Devices: any (coefficients are float64 buffers: ``.to(device)`` moves them).
    Autograd: gradients flow to the input (and, for learnable biquads, to their
    parameters).
    """

    design_keys: tuple[str, ...] = ()

    def __init__(self, fs: float | None = None, label: str = "iir") -> None:
        super().__init__(np.zeros((0, 6)), label=label)
        self.fs = _fs(fs)
        self._fs_fixed = self.fs is not None
        self._designed_for: tuple[Any, ...] | None = None

    def design(self, fs: float) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _design_params(self) -> tuple[Any, ...]:
        values = []
        for k in self.design_keys:
            v = getattr(self, k)
            values.append(float(v.detach()) if is_tensor(v) else v)
        return (self.fs, *values)

    def compute_coefficients(self) -> None:
        """Design the sos for ``self.fs`` (no-op while ``fs`` is unknown)."""
        if self.fs is None:
            return
        sos = self.design(self.fs)  # DesignError (a ValueError) names the parameter
        self.sos = coefficients(sos, like=self.sos)
        self._designed_for = self._design_params()

    def set_fs(self, fs: float) -> None:
        """Set the sample rate and design (kept for TorchFX code; :meth:`bind` calls it).
        A filter built with an explicit ``fs`` refuses another rate."""
        fs = float(fs)
        if self._fs_fixed and self.fs != fs:
            raise ValueError(
                f"{type(self).__name__} was built for fs={self.fs:g} Hz, the signal is "
                f"{fs:g} Hz (build it without fs to follow the signal's rate)"
            )
        self.fs = fs
        self._ready()

    def bind(self, fs: float, channels: int) -> DesignedIIR:
        self.set_fs(fs)
        return self

    def move_coeff(self, device: torch.device | str) -> DesignedIIR:
        """Kept for TorchFX code: the same as ``.to(device)`` (coefficients are buffers)."""
        return self.to(device)

    def _ready(self) -> None:
        if self.fs is None:
            raise ValueError(
                f"{type(self).__name__} has no sample rate: pass fs=... or pipe a Wave "
                "through it (wave | filter)"
            )
        if self.sos.shape[0] == 0:
            self.compute_coefficients()
        elif not getattr(self, "learnable", False) and self._designed_for != self._design_params():
            self.compute_coefficients()

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        self._ready()
        return super().init_state(batch_shape, device)

    def process(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        self._ready()
        return super().process(x, state)

    def extra_repr(self) -> str:
        return f"fs={self.fs}, sections={self.sos.shape[0]}"


# ------------------------------------------------------------------ highpass/lowpass/bands


class _Pass(DesignedIIR):
    btype = "highpass"
    fixed_design: str | None = None
    design_keys = ("cutoff", "order", "design_name", "ripple_db", "attenuation_db")

    def __init__(
        self,
        cutoff: float | None = None,
        order: int = 2,
        *,
        design: str = "butterworth",
        ripple_db: float = 0.5,
        attenuation_db: float = 40.0,
        fs: float | None = None,
        cutoff_hz: float | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(fs, label or self.btype)
        if self.fixed_design is not None and design not in ("butterworth", self.fixed_design):
            raise ValueError(
                f"design: {type(self).__name__} is always {self.fixed_design}; got {design!r}"
            )
        if (cutoff is None) == (cutoff_hz is None):
            raise ValueError(f"{type(self).__name__}: give the cutoff (Hz) once")
        self.cutoff = check(self.btype, "cutoff_hz", cutoff if cutoff is not None else cutoff_hz)
        self.order = check(self.btype, "order", order)
        self.design_name = self.fixed_design or check(self.btype, "design", design)
        self.ripple_db = check(self.btype, "ripple_db", ripple_db)
        self.attenuation_db = check(self.btype, "attenuation_db", attenuation_db)
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
    """Butterworth highpass: ``HiButterworth(cutoff, order=2, *, fs=None)``.

    The default order is 2 (the preset default; TorchFX's is 5). Arguments after
    ``order`` are keyword-only (TorchFX's third is ``order_scale``).

    >>> import numpy as np, torch
    >>> from scipy import signal
    >>> f = HiButterworth(80, 4, fs=48000)
    >>> np.allclose(f.sos.numpy(), signal.butter(4, 80, "highpass", fs=48000, output="sos"))
    True
    >>> x = torch.randn(2, 48000, dtype=torch.float64)
    >>> f(x).shape
    torch.Size([2, 48000])
    >>> unbound = HiButterworth(80)  # no fs: a Wave pipe (wave | f) designs it
    >>> unbound(x)
    Traceback (most recent call last):
    ...
    ValueError: HiButterworth has no sample rate: pass fs=... or pipe a Wave through it ...
    """

    fixed_design = "butterworth"


class LoButterworth(Lowpass):
    """Butterworth lowpass: ``LoButterworth(cutoff, order=2, *, fs=None)`` (default order
    2, TorchFX's is 5; keyword-only after ``order``)."""

    fixed_design = "butterworth"


class HiChebyshev1(Highpass):
    """Chebyshev type I highpass: ``HiChebyshev1(cutoff, order=2, *, ripple_db=0.5, fs=None)``.

    Defaults are the preset's (order 2, 0.5 dB ripple; TorchFX: order 4, ripple 0.1):
    write them out when porting. ``HiChebyshev1(1000, 4, 0.1)`` fails loudly (the
    ripple is keyword-only) instead of being dropped.
    """

    fixed_design = "chebyshev1"


class LoChebyshev1(Lowpass):
    """Chebyshev type I lowpass: ``LoChebyshev1(cutoff, order=2, *, ripple_db=0.5, fs=None)``
    (defaults differ from TorchFX's order 4 and ripple 0.1; see :class:`HiChebyshev1`)."""

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


class _LinkwitzRiley(_Pass):
    """The Linkwitz-Riley signature: even ``order`` (default 4), no ripple or stopband."""

    fixed_design = "linkwitz_riley"

    def __init__(
        self,
        cutoff: float | None = None,
        order: int = 4,
        *,
        fs: float | None = None,
        cutoff_hz: float | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(cutoff, order, fs=fs, cutoff_hz=cutoff_hz, label=label)


class HiLinkwitzRiley(_LinkwitzRiley, Highpass):
    """Linkwitz-Riley highpass: even ``order`` (default 4), Butterworth order/2 squared."""


class LoLinkwitzRiley(_LinkwitzRiley, Lowpass):
    """Linkwitz-Riley lowpass: even ``order`` (default 4), Butterworth order/2 squared."""


class _Band(DesignedIIR):
    btype = "bandpass"
    design_keys = ("low_hz", "high_hz", "order", "design_name", "ripple_db", "attenuation_db")

    def __init__(
        self,
        low_hz: float,
        high_hz: float,
        *,
        order: int = 2,
        design: str = "butterworth",
        ripple_db: float = 0.5,
        attenuation_db: float = 40.0,
        fs: float | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(fs, label or self.btype)
        self.low_hz = check(self.btype, "low_hz", low_hz)
        self.high_hz = check(self.btype, "high_hz", high_hz)
        if not self.low_hz < self.high_hz:
            raise ParameterError(
                "high_hz", f"got {self.high_hz:g}", f"a frequency above low_hz ({self.low_hz:g} Hz)"
            )
        self.order = check(self.btype, "order", order)
        self.design_name = check(self.btype, "design", design)
        self.ripple_db = check(self.btype, "ripple_db", ripple_db)
        self.attenuation_db = check(self.btype, "attenuation_db", attenuation_db)
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
    design_keys = ("freq_hz", "gain_db", "q", "slope")

    def __init__(
        self,
        freq_hz: float,
        *,
        gain_db: float = 0.0,
        q: float | None = 0.7071,
        fs: float | None = None,
        slope: float | None = None,
        learnable: bool = False,
        label: str | None = None,
    ) -> None:
        super().__init__(fs, label or self.kind)
        freq_hz = check(self.kind, "freq_hz", freq_hz)
        if self.has_gain:
            gain_db = check(self.kind, "gain_db", gain_db)
        if q is not None:
            q = check(self.kind, "q", q)
        if q is not None and slope is not None:
            raise ParameterError("slope", f"got {slope!r} with q {q!r}", "q or slope, not both")
        if q is None and slope is None:
            q = 0.7071
        self.slope = None if slope is None else check(self.kind, "slope", slope)
        self.learnable = bool(learnable)
        values = {"freq_hz": float(freq_hz), "gain_db": float(gain_db), "q": q}
        for name, value in values.items():
            if self.learnable and value is not None and (name != "gain_db" or self.has_gain):
                import torch

                setattr(self, name, torch.nn.Parameter(torch.tensor(value, dtype=torch.float64)))
            else:
                setattr(self, name, value)
        self.compute_coefficients()

    def _value(self, name: str) -> Any:
        v = getattr(self, name)
        return float(v.detach()) if is_tensor(v) else v

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
        from fxcli.dsp.iir.api import sosfilt

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
    """RBJ peaking EQ: ``Peaking(freq_hz, *, gain_db=0, q=0.7071, fs=None, learnable=False)``.

    Arguments after the frequency are keyword-only: TorchFX's ``Peaking(cutoff, Q,
    gain)`` takes Q second and a linear gain, so a positional call fails loudly here
    instead of meaning something else.
    """

    kind = "peaking"


class LoShelving(_Biquad):
    """RBJ low shelf: ``LoShelving(freq_hz, *, gain_db=0, q=0.7071, fs=None, slope=None)``
    (keyword-only after the frequency: TorchFX's order is ``(cutoff, q, gain)`` with a
    linear gain)
    (give ``q`` or ``slope``)."""

    kind = "lowshelf"

    def __init__(
        self,
        freq_hz: float,
        *,
        gain_db: float = 0.0,
        q: float | None = None,
        fs: float | None = None,
        slope: float | None = None,
        learnable: bool = False,
        label: str | None = None,
    ) -> None:
        super().__init__(
            freq_hz, gain_db=gain_db, q=q, fs=fs, slope=slope, learnable=learnable, label=label
        )


class HiShelving(_Biquad):
    """RBJ high shelf: ``HiShelving(freq_hz, *, gain_db=0, q=0.7071, fs=None, slope=None)``
    (keyword-only after the frequency: TorchFX's ``HiShelving(1000, 0.707, 2.0)`` means
    q 0.707 and a linear gain of 2, and fails loudly here)."""

    kind = "highshelf"

    def __init__(
        self,
        freq_hz: float,
        *,
        gain_db: float = 0.0,
        q: float | None = None,
        fs: float | None = None,
        slope: float | None = None,
        learnable: bool = False,
        label: str | None = None,
    ) -> None:
        super().__init__(
            freq_hz, gain_db=gain_db, q=q, fs=fs, slope=slope, learnable=learnable, label=label
        )


class Notch(_Biquad):
    """RBJ notch: ``Notch(freq_hz, q=0.7071, fs=None)``."""

    kind = "notch"
    has_gain = False

    def __init__(
        self,
        freq_hz: float,
        q: float = 0.7071,
        fs: float | None = None,
        *,
        learnable: bool = False,
        label: str | None = None,
    ) -> None:
        super().__init__(freq_hz, gain_db=0.0, q=q, fs=fs, learnable=learnable, label=label)


class AllPass(_Biquad):
    """RBJ allpass: ``AllPass(freq_hz, q=0.7071, fs=None)``."""

    kind = "allpass"
    has_gain = False

    def __init__(
        self,
        freq_hz: float,
        q: float = 0.7071,
        fs: float | None = None,
        *,
        learnable: bool = False,
        label: str | None = None,
    ) -> None:
        super().__init__(freq_hz, gain_db=0.0, q=q, fs=fs, learnable=learnable, label=label)


# ------------------------------------------------------------------ FIR


class DesignableFIR(FIR):
    """Windowed-sinc FIR in TorchFX's argument order: ``DesignableFIR(cutoff, num_taps,
    fs=None, pass_zero=True, window="hamming")``, the same taps as
    ``scipy.signal.firwin(num_taps, cutoff, window=window, pass_zero=pass_zero, fs=fs)``;
    designed when ``fs`` is known. ``pass_type="highpass"`` etc. names the response
    instead of ``pass_zero`` (as a preset's ``pass`` key does).

    Devices: any (taps are a float64 buffer). Autograd: gradients flow to the input.
    """

    def __init__(
        self,
        cutoff: float | Sequence[float],
        num_taps: int,
        fs: float | None = None,
        pass_zero: bool | str = True,
        window: str | Sequence[object] = "hamming",
        *,
        pass_type: str | None = None,
        label: str = "fir",
    ) -> None:
        super().__init__(np.zeros(1), label=label)
        try:
            num_taps = check("fir", "taps", num_taps)
        except ParameterError as exc:  # the preset key is "taps"
            raise ParameterError("num_taps", exc.got, exc.allowed) from None
        band = np.ndim(cutoff) > 0
        if pass_type is None:
            if isinstance(pass_zero, str):
                pass_type = pass_zero
            elif band:
                pass_type = "bandstop" if pass_zero else "bandpass"
            else:
                pass_type = "lowpass" if pass_zero else "highpass"
        if pass_type not in D.FIR_PASS:
            raise ValueError(f"pass_type: got {pass_type!r}; allowed: {', '.join(D.FIR_PASS)}")
        self.num_taps, self.cutoff, self.window, self.pass_type = (
            num_taps,
            cutoff,
            window,
            pass_type,
        )
        self.fs = _fs(fs)
        self._fs_fixed = self.fs is not None
        self._designed_for: tuple[Any, ...] | None = None
        self.compute_coefficients()

    def _design_params(self) -> tuple[Any, ...]:
        cutoff = self.cutoff if np.ndim(self.cutoff) == 0 else tuple(self.cutoff)  # type: ignore[arg-type]
        window = self.window if isinstance(self.window, str) else tuple(self.window)
        return (self.fs, self.num_taps, cutoff, window, self.pass_type)

    def compute_coefficients(self) -> None:
        """Design the taps for ``self.fs`` (no-op while ``fs`` is unknown)."""
        if self.fs is None:
            return
        taps = D.fir_window(self.num_taps, self.cutoff, self.fs, self.pass_type, self.window)
        self.taps = coefficients(taps, like=self.taps)
        self._designed_for = self._design_params()

    def set_fs(self, fs: float) -> None:
        """Set the sample rate and design (as :meth:`DesignedIIR.set_fs`)."""
        fs = float(fs)
        if self._fs_fixed and self.fs != fs:
            raise ValueError(
                f"DesignableFIR was built for fs={self.fs:g} Hz, the signal is {fs:g} Hz "
                "(build it without fs to follow the signal's rate)"
            )
        self.fs = fs
        self._ready()

    def bind(self, fs: float, channels: int) -> DesignableFIR:
        self.set_fs(fs)
        return self

    def _ready(self) -> None:
        if self.fs is None:
            raise ValueError(
                "DesignableFIR has no sample rate: pass fs=... or pipe a Wave through it"
            )
        if self._designed_for != self._design_params():
            self.compute_coefficients()

    def process(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        self._ready()
        return super().process(x, state)

    def move_coeff(self, device: torch.device | str) -> DesignableFIR:
        """Kept for TorchFX code: the same as ``.to(device)``."""
        return self.to(device)

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        self._ready()
        return super().init_state(batch_shape, device)


class DCBlock(DesignedIIR):
    """One-pole DC blocker ``y[n] = x[n] - x[n-1] + R y[n-1]``, ``R = exp(-2 pi cutoff_hz / fs)``,
    as one second-order section (so it fuses into IIR cascades).

    Devices: any (coefficients are float64 buffers). Autograd: gradients flow to the input.
    """

    design_keys = ("cutoff_hz",)

    def __init__(
        self, cutoff_hz: float = 10.0, fs: float | None = None, *, label: str = "dc_block"
    ) -> None:
        super().__init__(fs, label)
        self.cutoff_hz = check("dc_block", "cutoff_hz", cutoff_hz)
        self.compute_coefficients()

    def design(self, fs: float) -> np.ndarray:
        return D.dc_block_sos(self.cutoff_hz, fs)

    def extra_repr(self) -> str:
        return f"cutoff_hz={self.cutoff_hz:g}, fs={self.fs}"


# every filter's docstring states its devices and gradient support (written once here)
_DEVICES_DOC = """

    Devices: any (coefficients are float64 buffers; on CPU a compiled cascade, on CUDA
    Triton kernels or the time-parallel torch algorithm). Autograd: gradients flow to
    the input{extra}."""
for _cls in (
    IIR,
    FIR,
    DesignedIIR,
    Highpass,
    Lowpass,
    HiButterworth,
    LoButterworth,
    HiChebyshev1,
    LoChebyshev1,
    HiChebyshev2,
    LoChebyshev2,
    HiElliptic,
    LoElliptic,
    HiBessel,
    LoBessel,
    HiLinkwitzRiley,
    LoLinkwitzRiley,
    Bandpass,
    Bandstop,
    Peaking,
    LoShelving,
    HiShelving,
    Notch,
    AllPass,
    DesignableFIR,
):
    if "Devices:" not in (_cls.__doc__ or ""):
        _learn = _cls in (Peaking, LoShelving, HiShelving, Notch, AllPass)
        _cls.__doc__ = (_cls.__doc__ or "").rstrip() + _DEVICES_DOC.format(
            extra=" and, with ``learnable=True``, to ``freq_hz``, ``gain_db`` and ``q``"
            if _learn
            else " (and through :func:`fxcli.dsp.sosfilt` / :func:`fxcli.dsp.firfilt` to "
            "the coefficients and state)"
        )
