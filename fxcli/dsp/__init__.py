"""Pure DSP functions on tensors with explicit state: ``y, state = f(x, state)``.

- :func:`sosfilt`: cascaded second-order sections (float64 coefficients and state).
- :func:`firfilt`: FIR filtering with input-history state (direct or FFT).
- :mod:`fxcli.dsp.design`: SciPy-semantics filter design to float64 sos / taps.
"""

from fxcli.dsp.firfilt import firfilt
from fxcli.dsp.sosfilt import sosfilt

__all__ = ["firfilt", "sosfilt"]
