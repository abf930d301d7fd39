"""Differentiable filter design in torch: RBJ biquads and Butterworth cascades.

The same designs as :func:`fxcli.dsp.design.rbj` and :func:`fxcli.dsp.design.iir_pass`
(Butterworth), computed with torch operations on float64 tensors so that
gradients flow from the coefficients back to ``freq_hz`` / ``cutoff_hz``,
``gain_db``, ``q`` and ``slope`` (any of them may be a tensor that requires
grad; plain floats work too). Every function returns second-order sections
``(S, 6)`` float64 ``[b0, b1, b2, 1, a1, a2]`` on the device of its tensor
arguments (CPU when all are floats), equal to the numpy designs within ~1e-15
(tested to 1e-12), ready for :func:`fxcli.dsp.sosfilt` (which is differentiable
w.r.t. ``sos``).

Unlike the numpy designs these do not check the arguments' ranges or the
stability of the result (that would need a host sync per call and would break
``torch.compile`` graphs): keep ``0 < freq < fs/2`` and ``q, slope > 0``, e.g. by
parametrizing (``freq = fs/2 * sigmoid(u)``, ``q = exp(v)``). ``fs`` (Hz) is a
plain number.
"""

from __future__ import annotations

import math

import torch

from fxcli.dsp.design import rbj_ba

__all__ = [
    "RBJ_KINDS",
    "butterworth",
    "butterworth_torch",
    "linkwitz_riley",
    "linkwitz_riley_torch",
    "rbj",
    "rbj_torch",
]

RBJ_KINDS = ("peaking", "lowshelf", "highshelf", "notch", "allpass", "lowpass", "highpass")

Num = float | torch.Tensor


def _device(*values: object) -> torch.device:
    for v in values:
        if isinstance(v, torch.Tensor):
            return v.device
    return torch.device("cpu")


def _t(v: Num, device: torch.device) -> torch.Tensor:
    """A float64 scalar tensor (differentiable when ``v`` is a tensor)."""
    if isinstance(v, torch.Tensor):
        return v.to(device=device, dtype=torch.float64).reshape(())
    return torch.tensor(float(v), dtype=torch.float64, device=device)


def _sec(b: list[torch.Tensor], a: list[torch.Tensor]) -> torch.Tensor:
    a0 = a[0]
    return torch.stack([b[0] / a0, b[1] / a0, b[2] / a0, a0 / a0, a[1] / a0, a[2] / a0])[None]


def rbj_torch(
    kind: str,
    freq_hz: Num,
    fs: float,
    q: Num | None = 0.7071,
    gain_db: Num = 0.0,
    slope: Num | None = None,
) -> torch.Tensor:
    """One RBJ Audio EQ Cookbook biquad as a ``(1, 6)`` float64 sos tensor.

    Same formulas and defaults as :func:`fxcli.dsp.design.rbj` for ``peaking``,
    ``lowshelf``, ``highshelf`` (``q``, or ``slope`` S when given: S = 1 is the
    steepest monotonic shelf), ``notch`` and ``allpass``; plus the cookbook's
    ``lowpass`` and ``highpass`` (``gain_db`` unused; with ``q = 1/sqrt(2)`` they
    are the 2nd-order Butterworth designs of :func:`butterworth_torch`).

    Args:
        kind: One of :data:`RBJ_KINDS`.
        freq_hz: Center / corner frequency in Hz (tensor or float).
        fs: Sample rate in Hz.
        q: Quality factor (tensor or float; ``None`` means 0.7071).
        gain_db: Gain in dB for peaking and shelves (tensor or float).
        slope: Shelf slope instead of ``q`` (shelves only), or ``None``.
    """
    if kind not in RBJ_KINDS:
        raise ValueError(f"kind must be one of {', '.join(RBJ_KINDS)}, got {kind!r}")
    if q is None:
        q = 0.7071
    dev = _device(freq_hz, q, gain_db, slope)
    f = _t(freq_hz, dev)
    w0 = 2.0 * math.pi * f / fs
    cw = torch.cos(w0)
    sw = torch.sin(w0)
    alpha = sw / (2.0 * _t(q, dev))
    g = _t(gain_db, dev)
    a = 10.0 ** (g / 40.0)
    one = torch.ones((), dtype=torch.float64, device=dev)
    s = torch.zeros((), dtype=torch.float64, device=dev)  # shelves only
    if kind in ("lowshelf", "highshelf"):
        if slope is not None:
            arg = (a + 1.0 / a) * (1.0 / _t(slope, dev) - 1.0) + 2.0
            alpha = sw / 2.0 * torch.sqrt(arg)
        s = 2 * torch.sqrt(a) * alpha
    return _sec(*rbj_ba(kind, a, cw, alpha, s, one))


def butterworth_torch(btype: str, cutoff_hz: Num, fs: float, order: int = 2) -> torch.Tensor:
    """Butterworth highpass/lowpass of any order as ``(ceil(order/2), 6)`` float64 sos.

    Equal (to ~1e-15) to ``scipy.signal.butter(order, cutoff_hz, btype, fs=fs,
    output='sos')``, i.e. :func:`fxcli.dsp.design.iir_pass` with
    ``design="butterworth"``, including SciPy's section order and layout
    (sections by increasing pole Q, the real pole of odd orders first, the
    overall gain in the first section's ``b``; for odd orders one section has
    zeros ``{0, -1}`` (lowpass) / ``{0, +1}`` (highpass), chosen as SciPy's
    nearest-zero pairing does). Built from the analog prototype: poles at
    angles ``phi`` from the negative real axis, cutoff prewarped to
    ``W = 2 fs tan(pi cutoff / fs)``, bilinear transform ``s = 2 fs (z-1)/(z+1)``
    per section, in closed form (differentiable in ``cutoff_hz``).
    """
    if btype not in ("lowpass", "highpass"):
        raise ValueError(f"btype must be lowpass or highpass, got {btype!r}")
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    dev = _device(cutoff_hz)
    f = _t(cutoff_hz, dev)
    k2 = 2.0 * fs  # bilinear constant K = 2 fs
    w = k2 * torch.tan(math.pi * f / fs)  # prewarped analog cutoff (rad/s)
    one = torch.ones((), dtype=torch.float64, device=dev)
    zero = torch.zeros((), dtype=torch.float64, device=dev)
    lp = btype == "lowpass"
    zeta = -1.0 if lp else 1.0  # the zeros of the design: z = -1 (lowpass) or +1 (highpass)
    odd = order % 2 == 1
    n_pairs = order // 2
    # (a1, a2, A(z) at z = 1 for lowpass / z = -1 for highpass) per section, SciPy's
    # order: the real pole first, then by increasing Q. A(1) = 1 + a1 + a2 and
    # A(-1) = 1 - a1 + a2 in cancellation-free closed forms.
    poles: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    if odd:  # real pole s = -W: a = [K + W, W - K] / (K + W)
        d = k2 + w
        poles.append(((w - k2) / d, zero, (2 * w if lp else 2 * k2) / d))
    for j in range(n_pairs):
        phi = (2 * j + 1) * math.pi / (2 * order) if not odd else (j + 1) * math.pi / order
        c = math.cos(phi)
        d = k2 * k2 + 2 * c * w * k2 + w * w
        a1 = 2 * (w * w - k2 * k2) / d
        a2 = (k2 * k2 - 2 * c * w * k2 + w * w) / d
        poles.append((a1, a2, 4 * (w * w if lp else k2 * k2) / d))
    # For odd orders SciPy's zpk2sos adds a zero (and a pole) at the origin and
    # pairs the poles closest to the unit circle first (highest Q first, the real
    # pole last), each with its nearest zeros: the origin zero goes to the first
    # such section whose pole is nearer to 0 than to zeta, else to the real pole.
    # (A Python-side decision from the current cutoff: locally constant.)
    origin = -1
    if odd:
        origin = 0
        for i in range(len(poles) - 1, 0, -1):
            re = -0.5 * float(poles[i][0].detach())  # Re(pole) of a complex pair
            if abs(re) < abs(re - zeta):
                origin = i
                break
    secs: list[tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]] = []
    for i, (a1, a2, a_at) in enumerate(poles):
        if i == origin:  # zeros {0, zeta}: Z(z) = z^2 - zeta z
            zs, z_at = [one, -zeta * one, zero], 2.0
        else:  # zeros {zeta, zeta}: Z(z) = (z - zeta)^2
            zs, z_at = [one, -2 * zeta * one, one], 4.0
        secs.append((a1, a2, zs, a_at / z_at))
    gain = secs[0][3]
    for s in secs[1:]:
        gain = gain * s[3]
    rows = []
    for i, (a1, a2, zs, _) in enumerate(secs):
        kk = gain if i == 0 else one
        rows.append(torch.stack([kk * zs[0], kk * zs[1], kk * zs[2], one, a1, a2]))
    return torch.stack(rows)


def linkwitz_riley_torch(btype: str, cutoff_hz: Num, fs: float, order: int = 4) -> torch.Tensor:
    """Linkwitz-Riley (even ``order``): :func:`butterworth_torch` of order/2, twice."""
    if not isinstance(order, int) or order < 2 or order % 2:
        raise ValueError(f"order must be an even integer >= 2, got {order!r}")
    half = butterworth_torch(btype, cutoff_hz, fs, order // 2)
    return torch.cat([half, half])


# short names, as in fxcli.dsp.design
rbj = rbj_torch
butterworth = butterworth_torch
linkwitz_riley = linkwitz_riley_torch
