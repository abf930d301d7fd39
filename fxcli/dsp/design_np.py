"""NumPy-only ports of the SciPy filter designs fxcli uses, equal to SciPy bit for bit.

``import scipy.signal`` costs about a second, more than processing a short file,
so the designs fxcli needs are computed here with the very operations SciPy
1.17.1 performs on NumPy arrays (same functions, same operand order, so the same
float64 rounding): :func:`iirfilter` (``output='sos'``, digital, ``ftype``
``butter``, ``cheby1`` or ``cheby2``) and :func:`firwin` with the windows of
:data:`WINDOWS`. ``tests/test_design_np.py`` checks ``np.array_equal`` against
the installed SciPy over a broad grid. Anything else (elliptic and Bessel
designs, other windows) is left to SciPy by the caller
(:mod:`fxcli.dsp.design`): :func:`covers_iir` and :func:`covers_window` say
what is covered.

Each design takes microseconds to a few milliseconds, so these need no cache.

The code follows SciPy's ``scipy/signal/_filter_design.py``,
``_fir_filter_design.py``, ``_polyutils.py`` and ``windows/_windows.py``
(SciPy 1.17.1), and the Cephes ``i0`` that ``scipy.special.i0`` uses (with the
Chebyshev coefficients as NumPy's ``np.i0`` lists them). SciPy is
Copyright (c) 2001-2002 Enthought, Inc. and 2003-2025 SciPy Developers, and
NumPy Copyright (c) 2005-2025 NumPy Developers, both under the BSD 3-Clause
license: redistribution and use with or without modification are permitted
provided the copyright notices, this condition and the disclaimer are retained;
the software is provided "as is" without warranty of any kind, and neither the
names of the copyright holders nor of the contributors may be used to endorse
or promote derived products without prior written permission.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "IIR_FTYPES",
    "WINDOWS",
    "covers_iir",
    "covers_window",
    "firwin",
    "get_window",
    "i0",
    "iirfilter",
    "zpk2sos",
]

#: ``ftype`` values :func:`iirfilter` designs (SciPy's names)
IIR_FTYPES = ("butter", "cheby1", "cheby2")
_BTYPES = ("lowpass", "highpass", "bandpass", "bandstop")

# --------------------------------------------------------------------------- IIR


def _buttap(n: int) -> tuple[np.ndarray, np.ndarray, float]:
    z = np.asarray([], dtype=np.float64)
    m = np.arange(-n + 1, n, 2, dtype=np.float64)
    p = -np.exp(1j * np.pi * m / (2 * n))
    return z, p, 1.0


def _cheb1ap(n: int, rp: float) -> tuple[np.ndarray, np.ndarray, Any]:
    z = np.asarray([], dtype=np.float64)
    eps = math.sqrt(10 ** (0.1 * rp) - 1.0)
    mu = 1.0 / n * math.asinh(1 / eps)
    m = np.arange(-n + 1, n, 2, dtype=np.float64)
    theta = np.pi * m / (2 * n)
    p = -np.sinh(mu + 1j * theta)
    k = np.real(np.prod(-p, axis=0))
    if n % 2 == 0:
        k = k / math.sqrt(1 + eps * eps)
    return z, p, k


def _cheb2ap(n: int, rs: float) -> tuple[np.ndarray, np.ndarray, Any]:
    de = 1.0 / math.sqrt(10 ** (0.1 * rs) - 1)
    mu = math.asinh(1.0 / de) / n
    if n % 2:
        m = np.concatenate(
            (np.arange(-n + 1, 0, 2, dtype=np.float64), np.arange(2, n, 2, dtype=np.float64))
        )
    else:
        m = np.arange(-n + 1, n, 2, dtype=np.float64)
    z = 1j / np.sin(m * np.pi / (2 * n))
    m1 = np.arange(-n + 1, n, 2, dtype=np.float64)
    theta1 = np.pi * m1 / (2 * n)
    p = -1 / np.sinh(mu + 1j * theta1)
    k = np.real(np.prod(-p, axis=0) / np.prod(-z, axis=0))
    return z, p, k


def _degree(z: np.ndarray, p: np.ndarray) -> int:
    degree = p.shape[0] - z.shape[0]
    if degree < 0:
        raise ValueError("Improper transfer function. Must have at least as many poles as zeros.")
    return degree


def _lp2lp_zpk(z: np.ndarray, p: np.ndarray, k: Any, wo: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    z, p = np.atleast_1d(np.asarray(z)), np.atleast_1d(np.asarray(p))
    wo = float(wo)
    degree = _degree(z, p)
    return wo * z, wo * p, k * wo**degree


def _lp2hp_zpk(z: np.ndarray, p: np.ndarray, k: Any, wo: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    z, p = np.atleast_1d(np.asarray(z)), np.atleast_1d(np.asarray(p))
    wo = float(wo)
    degree = _degree(z, p)
    z_hp = wo / z
    p_hp = wo / p
    z_hp = np.concatenate((z_hp, np.zeros(degree)))
    k_hp = k * np.real(np.prod(-z) / np.prod(-p))
    return z_hp, p_hp, k_hp


def _promote(z: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SciPy's ``xp_promote(z, p, force_floating=True)`` for float/complex arrays."""
    z, p = np.asarray(z), np.asarray(p)
    dtype = np.result_type(z, p, np.float64)
    return np.asarray(z, dtype=dtype), np.asarray(p, dtype=dtype)


def _lp2bp_zpk(
    z: np.ndarray, p: np.ndarray, k: Any, wo: Any, bw: Any
) -> tuple[np.ndarray, np.ndarray, Any]:
    z, p = _promote(z, p)
    z, p = np.atleast_1d(z), np.atleast_1d(p)
    wo = float(wo)
    bw = float(bw)
    degree = _degree(z, p)
    z_lp = z * bw / 2
    p_lp = p * bw / 2
    z_lp = z_lp.astype(np.complex128)
    p_lp = p_lp.astype(np.complex128)
    z_bp = np.concatenate((z_lp + np.sqrt(z_lp**2 - wo**2), z_lp - np.sqrt(z_lp**2 - wo**2)))
    p_bp = np.concatenate((p_lp + np.sqrt(p_lp**2 - wo**2), p_lp - np.sqrt(p_lp**2 - wo**2)))
    z_bp = np.concatenate((z_bp, np.zeros(degree)))
    return z_bp, p_bp, k * bw**degree


def _lp2bs_zpk(
    z: np.ndarray, p: np.ndarray, k: Any, wo: Any, bw: Any
) -> tuple[np.ndarray, np.ndarray, Any]:
    z, p = _promote(z, p)
    z, p = np.atleast_1d(z), np.atleast_1d(p)
    wo = float(wo)
    bw = float(bw)
    degree = _degree(z, p)
    z_hp = (bw / 2) / z
    p_hp = (bw / 2) / p
    z_hp = z_hp.astype(np.complex128)
    p_hp = p_hp.astype(np.complex128)
    z_bs = np.concatenate((z_hp + np.sqrt(z_hp**2 - wo**2), z_hp - np.sqrt(z_hp**2 - wo**2)))
    p_bs = np.concatenate((p_hp + np.sqrt(p_hp**2 - wo**2), p_hp - np.sqrt(p_hp**2 - wo**2)))
    z_bs = np.concatenate((z_bs, np.full(degree, +1j * wo)))
    z_bs = np.concatenate((z_bs, np.full(degree, -1j * wo)))
    k_bs = k * np.real(np.prod(-z) / np.prod(-p))
    return z_bs, p_bs, k_bs


def _bilinear_zpk(
    z: np.ndarray, p: np.ndarray, k: Any, fs: float
) -> tuple[np.ndarray, np.ndarray, Any]:
    z, p = np.atleast_1d(np.asarray(z)), np.atleast_1d(np.asarray(p))
    fs = float(fs)
    degree = _degree(z, p)
    fs2 = 2.0 * fs
    z_z = (fs2 + z) / (fs2 - z)
    p_z = (fs2 + p) / (fs2 - p)
    z_z = np.concatenate((z_z, -np.ones(degree)))
    k_z = k * np.real(np.prod(fs2 - z) / np.prod(fs2 - p))
    return z_z, p_z, k_z


def _poly(seq_of_zeros: Any) -> np.ndarray:
    """SciPy's ``_polyutils.poly`` (the 1-D ``np.poly`` by repeated convolution)."""
    seq = np.atleast_1d(np.asarray(seq_of_zeros))
    if seq.shape[0] == 0:
        return np.asarray(1.0, dtype=np.real(seq).dtype)
    a = np.ones((1,), dtype=seq.dtype)
    one = np.ones_like(seq[0])
    for zero in seq:
        a = np.convolve(a, np.stack((one, -zero)), mode="full")
    if np.iscomplexobj(a):
        roots = np.asarray(seq, dtype=np.complex128)
        if np.all(np.sort(np.imag(roots)) == np.sort(np.imag(np.conj(roots)))):
            a = np.asarray(np.real(a), copy=True)
    return a


def _zpk2tf(z: Any, p: Any, k: Any) -> tuple[np.ndarray, np.ndarray]:
    """SciPy's ``zpk2tf`` for 1-D ``z`` (as ``_single_zpksos`` calls it)."""
    z, p = np.asarray(z), np.asarray(p)
    k = np.asarray(k, dtype=np.result_type(np.real(z), np.real(p), k))
    if np.issubdtype(k.dtype, np.integer):
        k = k.astype(np.float64)
    z = np.atleast_1d(z)
    k = np.atleast_1d(k)
    b = np.multiply(k, _poly(z))
    a = np.atleast_1d(np.asarray(_poly(p)))
    return b, a


def _single_zpksos(z: Any, p: Any, k: Any) -> np.ndarray:
    sos = np.zeros(6)
    b, a = _zpk2tf(z, p, k)
    # SciPy assigns possibly complex b, a into the float array (keeping the real part)
    sos[3 - len(b) : 3] = np.real(b)
    sos[6 - len(a) : 6] = np.real(a)
    return sos


def _cplxreal(z: Any, tol: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    z = np.atleast_1d(z)
    if z.size == 0:
        return z, z
    if z.ndim != 1:
        raise ValueError("_cplxreal only accepts 1-D input")
    if tol is None:
        tol = 100 * np.finfo((1.0 * z).dtype).eps
    z = z[np.lexsort((abs(z.imag), z.real))]
    real_indices = abs(z.imag) <= tol * abs(z)
    zr = z[real_indices].real
    if len(zr) == len(z):
        return np.array([]), zr
    z = z[~real_indices]
    zp = z[z.imag > 0]
    zn = z[z.imag < 0]
    if len(zp) != len(zn):
        raise ValueError("Array contains complex value with no matching conjugate.")
    same_real = np.diff(zp.real) <= tol * abs(zp[:-1])
    diffs = np.diff(np.concatenate(([0], same_real, [0])))
    run_starts = np.nonzero(diffs > 0)[0]
    run_stops = np.nonzero(diffs < 0)[0]
    for i in range(len(run_starts)):
        start = run_starts[i]
        stop = run_stops[i] + 1
        for chunk in (zp[start:stop], zn[start:stop]):
            chunk[...] = chunk[np.lexsort([abs(chunk.imag)])]
    if any(abs(zp - zn.conj()) > tol * abs(zn)):
        raise ValueError("Array contains complex value with no matching conjugate.")
    zc = (zp + zn.conj()) / 2
    return zc, zr


def _nearest_real_complex_idx(fro: np.ndarray, to: Any, which: str) -> Any:
    order = np.argsort(np.abs(fro - to))
    if which == "any":
        return order[0]
    mask = np.isreal(fro[order])
    if which == "complex":
        mask = ~mask
    return order[np.nonzero(mask)[0][0]]


def _idx_worst(p: np.ndarray) -> Any:
    """Digital: the pole closest to the unit circle."""
    return np.argmin(np.abs(1 - np.abs(p)))


def zpk2sos(z: Any, p: Any, k: Any) -> np.ndarray:
    """SciPy's digital ``zpk2sos(z, p, k)`` (``pairing='nearest'``): ``(S, 6)`` float64."""
    z, p = np.asarray(z), np.asarray(p)
    k = np.asarray(k)
    if len(z) == len(p) == 0:
        return np.asarray([[k, 0.0, 0.0, 1.0, 0.0, 0.0]])
    p = np.concatenate((p, np.zeros(max(len(z) - len(p), 0))))
    z = np.concatenate((z, np.zeros(max(len(p) - len(z), 0))))
    n_sections = (max(len(p), len(z)) + 1) // 2
    if len(p) % 2 == 1:
        p = np.concatenate((p, [0.0]))
        z = np.concatenate((z, [0.0]))
    z = np.concatenate(_cplxreal(z))
    p = np.concatenate(_cplxreal(p))
    if not np.isreal(k):
        raise ValueError("k must be real")
    k = k.real
    sos = np.zeros((n_sections, 6))
    for si in range(n_sections - 1, -1, -1):
        p1_idx = _idx_worst(p)
        p1 = p[p1_idx]
        p = np.delete(p, p1_idx)
        if np.isreal(p1) and np.isreal(p).sum() == 0:
            z1_idx = _nearest_real_complex_idx(z, p1, "real")
            z1 = z[z1_idx]
            z = np.delete(z, z1_idx)
            sos[si] = _single_zpksos([z1, 0], [p1, 0], 1)
        elif (
            len(p) + 1 == len(z)
            and not np.isreal(p1)
            and np.isreal(p).sum() == 1
            and np.isreal(z).sum() == 1
        ):
            z1_idx = _nearest_real_complex_idx(z, p1, "complex")
            z1 = z[z1_idx]
            z = np.delete(z, z1_idx)
            sos[si] = _single_zpksos([z1, z1.conj()], [p1, p1.conj()], 1)
        else:
            if np.isreal(p1):
                prealidx = np.flatnonzero(np.isreal(p))
                p2_idx = prealidx[_idx_worst(p[prealidx])]
                p2 = p[p2_idx]
                p = np.delete(p, p2_idx)
            else:
                p2 = p1.conj()
            if len(z) > 0:
                z1_idx = _nearest_real_complex_idx(z, p1, "any")
                z1 = z[z1_idx]
                z = np.delete(z, z1_idx)
                if not np.isreal(z1):
                    sos[si] = _single_zpksos([z1, z1.conj()], [p1, p2], 1)
                elif len(z) > 0:
                    z2_idx = _nearest_real_complex_idx(z, p1, "real")
                    z2 = z[z2_idx]
                    z = np.delete(z, z2_idx)
                    sos[si] = _single_zpksos([z1, z2], [p1, p2], 1)
                else:
                    sos[si] = _single_zpksos([z1], [p1, p2], 1)
            else:
                sos[si] = _single_zpksos([], [p1, p2], 1)
    if not len(p) == len(z) == 0:  # pragma: no cover - SciPy asserts this too
        raise ValueError("zpk2sos left poles or zeros unpaired")
    sos[0][:3] *= k
    return sos


def covers_iir(ftype: str) -> bool:
    """Whether :func:`iirfilter` designs this SciPy ``ftype``."""
    return ftype in IIR_FTYPES


def iirfilter(
    n: int,
    wn: float | Sequence[float],
    *,
    btype: str,
    ftype: str,
    fs: float,
    rp: float | None = None,
    rs: float | None = None,
) -> np.ndarray:
    """``scipy.signal.iirfilter(n, wn, rp, rs, btype, ftype=ftype, fs=fs, output='sos')``.

    ``wn`` in Hz (a number, or ``[low, high]`` for ``bandpass``/``bandstop``),
    ``fs`` the sample rate in Hz; ``ftype`` one of :data:`IIR_FTYPES`. Returns
    ``(S, 6)`` float64 second-order sections, bit for bit SciPy's. Raises
    ``ValueError`` for what SciPy rejects (with SciPy's message).
    """
    if ftype not in IIR_FTYPES:
        raise ValueError(f"'{ftype}' is not designed here (only {', '.join(IIR_FTYPES)})")
    if btype not in _BTYPES:
        raise ValueError(f"'{btype}' is an invalid bandtype for filter.")
    if abs(int(n)) != n:
        raise ValueError("Filter order must be a nonnegative integer")
    w = np.asarray(wn, dtype=np.float64)
    fs = float(fs)
    w = w / (fs / 2)
    if np.any(w <= 0):
        raise ValueError("filter critical frequencies must be greater than 0")
    if w.size > 1 and not w[0] < w[1]:
        raise ValueError("Wn[0] must be less than Wn[1]")
    if rp is not None and rp < 0:
        raise ValueError("passband ripple (rp) must be positive")
    if rs is not None and rs < 0:
        raise ValueError("stopband attenuation (rs) must be positive")
    if ftype == "butter":
        z, p, k = _buttap(n)
    elif ftype == "cheby1":
        if rp is None:
            raise ValueError(
                "passband ripple (rp) must be provided to design a Chebyshev I filter."
            )
        if n == 0:
            z, p, k = np.asarray([]), np.asarray([], dtype=np.complex128), 10 ** (-rp / 20)
        else:
            z, p, k = _cheb1ap(n, rp)
    else:
        if rs is None:
            raise ValueError(
                "stopband attenuation (rs) must be provided to design an Chebyshev II filter."
            )
        if n == 0:
            z = np.asarray([], dtype=np.complex128)
            p, k = np.asarray([], dtype=np.complex128), 1.0
        else:
            z, p, k = _cheb2ap(n, rs)
    if np.any(w <= 0) or np.any(w >= 1):
        raise ValueError(
            f"Digital filter critical frequencies must be 0 < Wn < fs/2 (fs={fs} -> fs/2={fs / 2})"
        )
    fs_d = 2.0
    warped = 2 * fs_d * np.tan(np.pi * w / fs_d)
    if btype in ("lowpass", "highpass"):
        if w.size != 1:
            raise ValueError(
                "Must specify a single critical frequency Wn for lowpass or highpass filter"
            )
        if btype == "lowpass":
            z, p, k = _lp2lp_zpk(z, p, k, wo=warped)
        else:
            z, p, k = _lp2hp_zpk(z, p, k, wo=warped)
    else:
        if w.ndim == 0 or w.shape[0] < 2:
            raise ValueError(
                "Wn must specify start and stop frequencies for bandpass or bandstop filter"
            )
        bw = warped[1] - warped[0]
        wo = np.sqrt(warped[0] * warped[1])
        if btype == "bandpass":
            z, p, k = _lp2bp_zpk(z, p, k, wo=wo, bw=bw)
        else:
            z, p, k = _lp2bs_zpk(z, p, k, wo=wo, bw=bw)
    z, p, k = _bilinear_zpk(z, p, k, fs=fs_d)
    return zpk2sos(z, p, k)


# ------------------------------------------------------------------------ windows

# Cephes' Chebyshev coefficients for exp(-x) I0(x) on [0, 8] and exp(-x) sqrt(x) I0(x)
# on (8, inf), as scipy.special.i0 and numpy.i0 use them.
_I0A = (
    -4.41534164647933937950e-18,
    3.33079451882223809783e-17,
    -2.43127984654795469359e-16,
    1.71539128555513303061e-15,
    -1.16853328779934516808e-14,
    7.67618549860493561688e-14,
    -4.85644678311192946090e-13,
    2.95505266312963983461e-12,
    -1.72682629144155570723e-11,
    9.67580903537323691224e-11,
    -5.18979560163526290666e-10,
    2.65982372468238665035e-9,
    -1.30002500998624804212e-8,
    6.04699502254191894932e-8,
    -2.67079385394061173391e-7,
    1.11738753912010371815e-6,
    -4.41673835845875056359e-6,
    1.64484480707288970893e-5,
    -5.75419501008210370398e-5,
    1.88502885095841655729e-4,
    -5.76375574538582365885e-4,
    1.63947561694133579842e-3,
    -4.32430999505057594430e-3,
    1.05464603945949983183e-2,
    -2.37374148058994688156e-2,
    4.93052842396707084878e-2,
    -9.49010970480476444210e-2,
    1.71620901522208775349e-1,
    -3.04682672343198398683e-1,
    6.76795274409476084995e-1,
)
_I0B = (
    -7.23318048787475395456e-18,
    -4.83050448594418207126e-18,
    4.46562142029675999901e-17,
    3.46122286769746109310e-17,
    -2.82762398051658348494e-16,
    -3.42548561967721913462e-16,
    1.77256013305652638360e-15,
    3.81168066935262242075e-15,
    -9.55484669882830764870e-15,
    -4.15056934728722208663e-14,
    1.54008621752140982691e-14,
    3.85277838274214270114e-13,
    7.18012445138366623367e-13,
    -1.79417853150680611778e-12,
    -1.32158118404477131188e-11,
    -3.14991652796324136454e-11,
    1.18891471078464383424e-11,
    4.94060238822496958910e-10,
    3.39623202570838634515e-9,
    2.26666899049817806459e-8,
    2.04891858946906374183e-7,
    2.89137052083475648297e-6,
    6.88975834691682398426e-5,
    3.36911647825569408990e-3,
    8.04490411014108831608e-1,
)


def _chbevl(x: np.ndarray, coef: tuple[float, ...]) -> np.ndarray:
    b0 = np.full_like(x, coef[0])
    b1 = np.zeros_like(x)
    b2 = b1
    for c in coef[1:]:
        b2 = b1
        b1 = b0
        b0 = x * b1 - b2 + c
    return 0.5 * (b0 - b2)


def _exp(x: np.ndarray) -> np.ndarray:
    """The C library's ``exp`` elementwise (what Cephes calls; NumPy's SIMD ``exp``
    may round differently on some CPUs)."""
    return np.fromiter(map(math.exp, x.ravel().tolist()), np.float64, x.size).reshape(x.shape)


def i0(x: Any) -> np.ndarray:
    """Modified Bessel function of order 0, float64, as ``scipy.special.i0`` (Cephes)."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    out = np.empty_like(x)
    small = x <= 8.0
    xs = x[small]
    out[small] = _exp(xs) * _chbevl(xs / 2.0 - 2.0, _I0A)
    xl = x[~small]
    out[~small] = _exp(xl) * _chbevl(32.0 / xl - 2.0, _I0B) / np.sqrt(xl)
    return out


def _len_guards(m: int) -> bool:
    if int(m) != m or m < 0:
        raise ValueError("Window length M must be a non-negative integer")
    return m <= 1


def _general_cosine(m: int, a: np.ndarray, sym: bool) -> np.ndarray:
    if _len_guards(m):
        return np.ones(m, dtype=np.float64)
    trunc = not sym
    if trunc:
        m = m + 1
    fac = np.linspace(-np.pi, np.pi, m, dtype=np.float64)
    w = np.zeros(m, dtype=np.float64)
    for k in range(a.shape[0]):
        w += a[k] * np.cos(k * fac)
    return w[:-1] if trunc else w


def _cosine_family(coefs: Sequence[float]) -> Any:
    a = np.asarray(coefs, dtype=np.float64)
    return lambda m, sym: _general_cosine(m, a, sym)


def _general_hamming(m: int, sym: bool, alpha: float) -> np.ndarray:
    return _general_cosine(m, np.asarray([alpha, 1.0 - alpha], dtype=np.float64), sym)


def _kaiser(m: int, sym: bool, beta: float) -> np.ndarray:
    if _len_guards(m):
        return np.ones(m, dtype=np.float64)
    trunc = not sym
    if trunc:
        m = m + 1
    n = np.arange(0, m, dtype=np.float64)
    alpha = (m - 1) / 2.0
    w = i0(beta * np.sqrt(1 - ((n - alpha) / alpha) ** 2.0)) / i0(
        np.asarray(beta, dtype=np.float64)
    )
    return w[:-1] if trunc else w


def _boxcar(m: int, sym: bool) -> np.ndarray:
    if _len_guards(m):
        return np.ones(m, dtype=np.float64)
    return np.ones(m + (0 if sym else 1), dtype=np.float64)[:m]


# name -> (function(M, sym, *args), number of parameters); SciPy's aliases included
_WINDOWS: dict[str, tuple[Any, int]] = {}
for _names, _entry in (
    (("hamming", "hamm", "ham"), (_cosine_family([0.54, 1.0 - 0.54]), 0)),
    (("hann", "han"), (_cosine_family([0.5, 1.0 - 0.5]), 0)),
    (("blackman", "black", "blk"), (_cosine_family([0.42, 0.50, 0.08]), 0)),
    (
        ("blackmanharris", "blackharr", "bkh"),
        (_cosine_family([0.35875, 0.48829, 0.14128, 0.01168]), 0),
    ),
    (("nuttall", "nutl", "nut"), (_cosine_family([0.3635819, 0.4891775, 0.1365995, 0.0106411]), 0)),
    (
        ("flattop", "flat", "flt"),
        (_cosine_family([0.21557895, 0.41663158, 0.277263158, 0.083578947, 0.006947368]), 0),
    ),
    (("boxcar", "box", "ones", "rect", "rectangular"), (_boxcar, 0)),
    (("general hamming", "general_hamming"), (_general_hamming, 1)),
    (("kaiser", "ksr"), (_kaiser, 1)),
):
    for _name in _names:
        _WINDOWS[_name] = _entry
#: window names :func:`get_window` computes (others are left to SciPy)
WINDOWS = tuple(_WINDOWS)


def _parse_window(window: str | Sequence[object]) -> tuple[str, bool | None, tuple[Any, ...]]:
    name = window if isinstance(window, str) else window[0]
    args = () if isinstance(window, str) else tuple(window[1:])
    if not isinstance(name, str):
        raise ValueError(f"First tuple entry of parameter {window=} is not a str!")
    sym: bool | None = None
    if name.endswith("_symmetric"):
        sym, name = True, name[:-10]
    elif name.endswith("_periodic"):
        sym, name = False, name[:-9]
    return name, sym, args


def covers_window(window: str | Sequence[object]) -> bool:
    """Whether :func:`get_window` computes ``window`` (a name, or a name and its
    parameters as SciPy takes them) rather than leaving it to SciPy."""
    if not isinstance(window, (str, tuple, list)) or not window:
        return False
    try:
        name, _, args = _parse_window(window)
    except ValueError:
        return False
    entry = _WINDOWS.get(name)
    return (
        entry is not None
        and len(args) == entry[1]
        and all(
            isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)
            for a in args
        )
    )


def get_window(window: str | Sequence[object], nx: int, fftbins: bool = True) -> np.ndarray:
    """``scipy.signal.get_window(window, nx, fftbins)`` for the windows of :data:`WINDOWS`:
    ``(nx,)`` float64. Raises ``ValueError`` for a window not covered
    (see :func:`covers_window`)."""
    if not covers_window(window):
        raise ValueError(f"window {window!r} is not computed here")
    if not (nx > 0 and isinstance(nx, int)):
        raise ValueError(f"Parameter Nx={nx} is not a positive integer")
    name, sym, args = _parse_window(window)
    if sym is None:
        sym = not fftbins
    func, _ = _WINDOWS[name]
    return np.asarray(func(nx, sym, *args))


# --------------------------------------------------------------------------- FIR


def firwin(
    numtaps: int,
    cutoff: float | Sequence[float],
    *,
    window: str | Sequence[object] = "hamming",
    pass_zero: bool | str = True,
    fs: float,
) -> np.ndarray:
    """``scipy.signal.firwin(numtaps, cutoff, window=window, pass_zero=pass_zero, fs=fs)``
    (``scale=True``, no ``width``): ``(numtaps,)`` float64 taps, bit for bit SciPy's.

    ``cutoff`` in Hz, ``fs`` in Hz; ``window`` one that :func:`covers_window`
    accepts. Raises ``ValueError`` for what SciPy rejects.
    """
    fs = float(fs)
    nyq = 0.5 * fs
    c = np.atleast_1d(np.asarray(cutoff, dtype=np.float64)) / float(nyq)
    if c.ndim > 1:
        raise ValueError("The cutoff argument must be at most one-dimensional.")
    if c.size == 0:
        raise ValueError("At least one cutoff frequency must be given.")
    if np.min(c) <= 0 or np.max(c) >= 1:
        raise ValueError(
            "Invalid cutoff frequency: frequencies must be greater than 0 and less than fs/2."
        )
    if np.any(c[1:] - c[:-1] <= 0):
        raise ValueError("Invalid cutoff frequencies: the frequencies must be strictly increasing.")
    if pass_zero in ("bandstop", "lowpass"):
        if pass_zero == "lowpass" and c.size != 1:
            raise ValueError(f'cutoff must have one element if pass_zero=="lowpass", got {c.shape}')
        if pass_zero == "bandstop" and c.size <= 1:
            raise ValueError(
                f'cutoff must have at least two elements if pass_zero=="bandstop", got {c.shape}'
            )
        pz = True
    elif pass_zero in ("bandpass", "highpass"):
        if pass_zero == "highpass" and c.size != 1:
            raise ValueError(
                f'cutoff must have one element if pass_zero=="highpass", got {c.shape}'
            )
        if pass_zero == "bandpass" and c.size <= 1:
            raise ValueError(
                f'cutoff must have at least two elements if pass_zero=="bandpass", got {c.shape}'
            )
        pz = False
    elif pass_zero is True or pass_zero is False:
        pz = bool(pass_zero)
    else:
        raise ValueError(
            f"Parameter {pass_zero=} not in (True, False, 'bandpass', 'lowpass', "
            "'highpass', 'bandstop')"
        )
    pass_nyquist = (c.size % 2 == 0) == pz
    if pass_nyquist and numtaps % 2 == 0:
        raise ValueError(
            "A filter with an even number of coefficients must have zero response at the "
            "Nyquist frequency."
        )
    c = np.concatenate((np.zeros(int(pz)), c, np.ones(int(pass_nyquist))))
    bands = np.reshape(c, (-1, 2))
    alpha = 0.5 * (numtaps - 1)
    m = np.arange(0, numtaps, dtype=c.dtype) - alpha
    h: Any = 0
    for j in range(bands.shape[0]):
        left, right = bands[j, 0], bands[j, 1]
        h += right * np.sinc(right * m)
        h -= left * np.sinc(left * m)
    win = get_window(tuple(window) if not isinstance(window, str) else window, numtaps, False)
    h *= win
    left, right = bands[0, ...]
    if left == 0:
        scale_frequency = 0.0
    elif right == 1:
        scale_frequency = 1.0
    else:
        scale_frequency = 0.5 * (left + right)
    cs = np.cos(np.pi * m * scale_frequency)
    s = np.sum(h * cs)
    h /= s
    return np.asarray(h)
