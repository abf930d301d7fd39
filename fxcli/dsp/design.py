"""Filter design: SciPy semantics, float64 second-order sections, stability checked.

Every IIR design returns an ``(S, 6)`` float64 numpy array of second-order
sections ``[b0, b1, b2, 1, a1, a2]`` (SciPy's ``sos`` layout). Designs are
never converted to a single ``(b, a)`` polynomial: high orders and low cutoffs
lose precision or go unstable that way. FIR designs return ``(K,)`` float64
taps. All frequencies are in Hz, with ``fs`` the sample rate in Hz.

Butterworth, Chebyshev I/II and Linkwitz-Riley designs, and windowed-sinc FIRs
with the windows of :data:`fxcli.dsp.design_np.WINDOWS`, come from
:mod:`fxcli.dsp.design_np` (numpy only, equal to SciPy bit for bit, microseconds
to milliseconds: no cache needed). Elliptic and Bessel designs and other windows
import ``scipy.signal`` (about a second) and go through the on-disk
:mod:`fxcli.dsp.design_cache`.

Design errors raise :class:`DesignError` with a message that names the
parameter and what is allowed; the preset layer prefixes the step and file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fxcli.dsp import design_np
from fxcli.dsp.design_cache import cached_design
from fxcli.errors import DesignError

IIR_DESIGNS = (
    "butterworth",
    "chebyshev1",
    "chebyshev2",
    "elliptic",
    "bessel",
    "linkwitz_riley",
)
_FTYPE = {
    "butterworth": "butter",
    "chebyshev1": "cheby1",
    "chebyshev2": "cheby2",
    "elliptic": "ellip",
    "bessel": "bessel",
}
FIR_PASS = ("lowpass", "highpass", "bandpass", "bandstop")


def _check_freq(name: str, f: float, fs: float) -> None:
    nyq = fs / 2.0
    if not (0.0 < f < nyq):
        raise DesignError(
            f"{name} {f:g} Hz must be above 0 and below Nyquist ({nyq:g} Hz) "
            f"at sample rate {fs:g} Hz"
        )


def check_stable(sos: np.ndarray) -> np.ndarray:
    """Return ``sos`` normalized to ``a0 == 1``; raise unless every pole has |z| < 1."""
    sos = np.array(sos, dtype=np.float64, copy=True).reshape(-1, 6)
    if not np.all(np.isfinite(sos)):
        raise DesignError("the design produced non-finite coefficients")
    a0 = sos[:, 3:4]
    if np.any(a0 == 0):
        raise DesignError("a section has a0 == 0")
    sos /= a0
    for i, sec in enumerate(sos):
        poles = np.roots(sec[3:])
        if poles.size and np.max(np.abs(poles)) >= 1.0:
            raise DesignError(
                f"section {i} has a pole at |z| = {np.max(np.abs(poles)):.12g}, "
                "not strictly inside the unit circle (unstable design)"
            )
    return sos


def iir_pass(
    btype: str,
    cutoff: float | Sequence[float],
    fs: float,
    order: int = 2,
    design: str = "butterworth",
    ripple_db: float = 0.5,
    attenuation_db: float = 40.0,
) -> np.ndarray:
    """Design a highpass/lowpass/bandpass/bandstop IIR filter as float64 sos.

    Same as ``scipy.signal.iirfilter(order, cutoff, rp=ripple_db, rs=attenuation_db,
    btype=btype, ftype=..., fs=fs, output='sos')``. ``linkwitz_riley`` of even
    order N is a Butterworth of order N/2 applied twice (highpass/lowpass only).
    Band types take ``cutoff=[low_hz, high_hz]`` and order N gives 2N poles.
    """
    if design not in IIR_DESIGNS:
        raise DesignError(f"design {design!r} is not one of {', '.join(IIR_DESIGNS)}")
    band = btype in ("bandpass", "bandstop")
    if band:
        low, high = (float(c) for c in cutoff)  # type: ignore[union-attr]
        _check_freq("low_hz", low, fs)
        _check_freq("high_hz", high, fs)
        if not low < high:
            raise DesignError(f"low_hz ({low:g}) must be below high_hz ({high:g})")
        wn: float | list[float] = [low, high]
    else:
        wn = float(cutoff)  # type: ignore[arg-type]
        _check_freq("cutoff_hz", wn, fs)
    if design == "linkwitz_riley":
        if band:
            raise DesignError("design linkwitz_riley is only for highpass and lowpass")
        if order % 2:
            raise DesignError(f"linkwitz_riley needs an even order, got {order}")

    ftype = "butter" if design == "linkwitz_riley" else _FTYPE[design]
    if design_np.covers_iir(ftype):  # numpy only, no scipy import, no cache
        try:
            if design == "linkwitz_riley":
                half = design_np.iirfilter(order // 2, wn, btype=btype, ftype="butter", fs=fs)
                return check_stable(np.concatenate([half, half]))
            return check_stable(
                design_np.iirfilter(
                    order,
                    wn,
                    btype=btype,
                    ftype=ftype,
                    fs=fs,
                    rp=ripple_db if ftype == "cheby1" else None,
                    rs=attenuation_db if ftype == "cheby2" else None,
                )
            )
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise DesignError(str(exc)) from exc

    def run_scipy() -> np.ndarray:
        from scipy import signal  # imported lazily: ~1 s, skipped when the design is cached

        kwargs: dict[str, float] = {}
        if design in ("chebyshev1", "elliptic"):
            kwargs["rp"] = ripple_db
        if design in ("chebyshev2", "elliptic"):
            kwargs["rs"] = attenuation_db
        try:
            return np.asarray(
                signal.iirfilter(
                    order, wn, btype=btype, ftype=_FTYPE[design], fs=fs, output="sos", **kwargs
                )
            )
        except (ValueError, np.linalg.LinAlgError) as exc:  # pragma: no cover - scipy detail
            raise DesignError(str(exc)) from exc

    args = {
        "btype": btype,
        "wn": wn,
        "fs": fs,
        "order": order,
        "design": design,
        "rp": ripple_db,
        "rs": attenuation_db,
    }
    return check_stable(cached_design("iirfilter", args, run_scipy))


def _rbj_common(freq_hz: float, fs: float, q: float) -> tuple[float, float, float]:
    _check_freq("freq_hz", freq_hz, fs)
    w0 = 2.0 * math.pi * freq_hz / fs
    return w0, math.cos(w0), math.sin(w0) / (2.0 * q)


def _section(b: Sequence[float], a: Sequence[float]) -> np.ndarray:
    return check_stable(np.array([[*b, *a]], dtype=np.float64))


def shelf_alpha(w0: float, gain_db: float, q: float | None, slope: float | None) -> float:
    """RBJ cookbook alpha for shelves from either ``q`` or shelf ``slope``."""
    if slope is not None:
        a = 10.0 ** (gain_db / 40.0)
        arg = (a + 1.0 / a) * (1.0 / slope - 1.0) + 2.0
        if arg <= 0:
            raise DesignError(f"slope {slope:g} is too steep for gain_db {gain_db:g}")
        return math.sin(w0) / 2.0 * math.sqrt(arg)
    assert q is not None
    return math.sin(w0) / (2.0 * q)


def rbj(
    kind: str,
    freq_hz: float,
    fs: float,
    q: float = 0.7071,
    gain_db: float = 0.0,
    slope: float | None = None,
) -> np.ndarray:
    """One RBJ Audio EQ Cookbook biquad as a (1, 6) float64 sos.

    ``kind`` is ``peaking``, ``lowshelf``, ``highshelf``, ``notch`` or ``allpass``.
    Shelves accept ``slope`` (S = 1 is the steepest monotonic shelf) instead of ``q``.
    """
    if kind not in ("peaking", "lowshelf", "highshelf", "notch", "allpass"):
        raise DesignError(f"unknown RBJ biquad kind {kind!r}")
    w0, cw, alpha = _rbj_common(freq_hz, fs, q)
    a = 10.0 ** (gain_db / 40.0)
    s = 0.0  # shelves only
    if kind in ("lowshelf", "highshelf"):
        s = 2 * math.sqrt(a) * shelf_alpha(w0, gain_db, None if slope is not None else q, slope)
    return _section(*rbj_ba(kind, a, cw, alpha, s, 1))


def rbj_ba(kind: str, a: Any, cw: Any, alpha: Any, s: Any, one: Any) -> tuple[list[Any], list[Any]]:
    """The Audio EQ Cookbook's numerator and denominator of one biquad of ``kind``
    (``peaking``, ``lowshelf``, ``highshelf``, ``notch``, ``allpass``, ``lowpass``,
    ``highpass``) from ``A = 10^(gain/40)``, ``cos w0``, ``alpha`` and, for shelves,
    ``s = 2 sqrt(A) alpha``; ``one`` is 1 in the arguments' type. Plain arithmetic in
    one order: floats here, tensors in :mod:`fxcli.dsp.design_torch` (gradients)."""
    if kind == "peaking":
        return [1 + alpha * a, -2 * cw, 1 - alpha * a], [1 + alpha / a, -2 * cw, 1 - alpha / a]
    if kind == "notch":
        return [one, -2 * cw, one], [1 + alpha, -2 * cw, 1 - alpha]
    if kind == "allpass":
        return [1 - alpha, -2 * cw, 1 + alpha], [1 + alpha, -2 * cw, 1 - alpha]
    if kind == "lowpass":
        return [(1 - cw) / 2, 1 - cw, (1 - cw) / 2], [1 + alpha, -2 * cw, 1 - alpha]
    if kind == "highpass":
        return [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2], [1 + alpha, -2 * cw, 1 - alpha]
    if kind == "lowshelf":
        return [
            a * ((a + 1) - (a - 1) * cw + s),
            2 * a * ((a - 1) - (a + 1) * cw),
            a * ((a + 1) - (a - 1) * cw - s),
        ], [
            (a + 1) + (a - 1) * cw + s,
            -2 * ((a - 1) + (a + 1) * cw),
            (a + 1) + (a - 1) * cw - s,
        ]
    if kind == "highshelf":
        return [
            a * ((a + 1) + (a - 1) * cw + s),
            -2 * a * ((a - 1) + (a + 1) * cw),
            a * ((a + 1) + (a - 1) * cw - s),
        ], [
            (a + 1) - (a - 1) * cw + s,
            2 * ((a - 1) - (a + 1) * cw),
            (a + 1) - (a - 1) * cw - s,
        ]
    raise DesignError(f"unknown RBJ biquad kind {kind!r}")


def gain_sos(gain_db: float) -> np.ndarray:
    """A plain gain as a pass-through section, so gains fuse into IIR cascades."""
    return np.array([[10.0 ** (gain_db / 20.0), 0, 0, 1, 0, 0]], dtype=np.float64)


def fir_window(
    taps: int,
    cutoff: float | Sequence[float],
    fs: float,
    pass_type: str = "lowpass",
    window: str | Sequence[object] = "hamming",
) -> np.ndarray:
    """Windowed-sinc FIR taps, same as ``scipy.signal.firwin(taps, cutoff, window=window,
    pass_zero=pass_type, fs=fs)``. Band types take ``cutoff=[low_hz, high_hz]``."""
    if pass_type not in FIR_PASS:
        raise DesignError(f"pass {pass_type!r} is not one of {', '.join(FIR_PASS)}")
    band = pass_type in ("bandpass", "bandstop")
    if band:
        if isinstance(cutoff, (int, float)) or len(cutoff) != 2:
            raise DesignError(f"pass {pass_type} needs cutoff_hz: [low, high]")
        low, high = (float(c) for c in cutoff)
        _check_freq("cutoff_hz low", low, fs)
        _check_freq("cutoff_hz high", high, fs)
        if not low < high:
            raise DesignError(f"cutoff_hz low ({low:g}) must be below high ({high:g})")
        wn: float | list[float] = [low, high]
    else:
        if not isinstance(cutoff, (int, float)):
            raise DesignError(f"pass {pass_type} needs a single cutoff_hz number")
        wn = float(cutoff)
        _check_freq("cutoff_hz", wn, fs)
    if pass_type in ("highpass", "bandstop") and taps % 2 == 0:
        raise DesignError(
            f"a {pass_type} FIR needs an odd number of taps (a zero at Nyquist), got {taps}"
        )
    win = tuple(window) if not isinstance(window, str) else window
    if design_np.covers_window(win):  # numpy only, no scipy import, no cache
        try:
            with np.errstate(invalid="ignore", divide="ignore"):
                h = design_np.firwin(taps, wn, window=win, pass_zero=pass_type, fs=fs)
        except (ValueError, TypeError) as exc:
            raise DesignError(str(exc)) from exc
        return _finite_taps(h, taps, win)

    def run_scipy() -> np.ndarray:
        from scipy import signal  # imported lazily: ~1 s, skipped when the design is cached

        try:
            return np.asarray(signal.firwin(taps, wn, window=win, pass_zero=pass_type, fs=fs))
        except (ValueError, TypeError) as exc:
            raise DesignError(str(exc)) from exc

    args = {
        "taps": taps,
        "wn": wn,
        "fs": fs,
        "pass": pass_type,
        "window": list(win) if isinstance(win, tuple) else win,
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        return _finite_taps(cached_design("firwin", args, run_scipy), taps, win)


def _finite_taps(h: np.ndarray, taps: int, window: str | tuple[object, ...]) -> np.ndarray:
    """``h`` unless a degenerate window (e.g. hann of 2 taps is all zeros) made the
    normalized taps non-finite."""
    if not np.all(np.isfinite(h)):
        name = window if isinstance(window, str) else list(window)
        raise DesignError(
            f"window {name!r} with {taps} taps gives no usable filter (non-finite taps); "
            "use more taps or another window"
        )
    return h


def dc_block_sos(cutoff_hz: float, fs: float) -> np.ndarray:
    """One-pole DC blocker ``y[n] = x[n] - x[n-1] + R y[n-1]``, ``R = exp(-2 pi fc / fs)``,
    as one second-order section (so it fuses into IIR cascades)."""
    if not 0 < cutoff_hz < fs / 2:
        raise DesignError(f"cutoff_hz {cutoff_hz:g} must be below Nyquist ({fs / 2:g} Hz)")
    r = float(np.exp(-2.0 * np.pi * cutoff_hz / fs))
    return np.array([[1.0, -1.0, 0.0, 1.0, -r, 0.0]])
