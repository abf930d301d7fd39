"""Filters as ``torch.nn.Module``s: the classes the preset steps build, by name.

The public facade of :mod:`fxcli.steps.filters` (where the classes are defined).

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

from fxcli.steps.filters import (
    FIR,
    IIR,
    AllPass,
    Bandpass,
    Bandstop,
    DCBlock,
    DesignableFIR,
    DesignedIIR,
    HiBessel,
    HiButterworth,
    HiChebyshev1,
    HiChebyshev2,
    HiElliptic,
    Highpass,
    HiLinkwitzRiley,
    HiShelving,
    LoBessel,
    LoButterworth,
    LoChebyshev1,
    LoChebyshev2,
    LoElliptic,
    LoLinkwitzRiley,
    LoShelving,
    Lowpass,
    Notch,
    Peaking,
)

__all__ = [
    "AllPass",
    "Bandpass",
    "Bandstop",
    "DCBlock",
    "DesignableFIR",
    "DesignedIIR",
    "FIR",
    "HiBessel",
    "HiButterworth",
    "HiChebyshev1",
    "HiChebyshev2",
    "HiElliptic",
    "HiLinkwitzRiley",
    "HiShelving",
    "Highpass",
    "IIR",
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
