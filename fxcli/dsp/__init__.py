"""Pure DSP functions on tensors with explicit state: ``y, state = f(x, state)``.

- :func:`sosfilt`: cascaded second-order sections (float64 coefficients and state);
  differentiable in ``x``, ``sos`` and ``zi`` (:mod:`fxcli.dsp.autograd`); per-sample
  coefficients ``(..., time, S, 6)`` run the time-varying filter (:func:`tvsosfilt`).
- :func:`firfilt`: FIR filtering with input-history state (direct or FFT), differentiable.
- GPU kernels (Triton; pure-torch fallbacks keep every algorithm testable on CPU):
  :mod:`fxcli.dsp.sos_triton` (time-parallel ``sosfilt``), :mod:`fxcli.dsp.fir_triton`
  (block-Toeplitz ``firfilt`` for float32, 3xTF32 tensor-core products).
- :mod:`fxcli.dsp.design`: SciPy-semantics filter design to float64 sos / taps;
  :mod:`fxcli.dsp.design_torch`: the same designs in torch, differentiable in their
  parameters (RBJ biquads, Butterworth, Linkwitz-Riley).
- :mod:`fxcli.dsp.loudness`, :mod:`fxcli.dsp.truepeak`: BS.1770-4 meters;
  :mod:`fxcli.dsp.dynamics`, :mod:`fxcli.dsp.resample`, :mod:`fxcli.dsp.reverb`,
  :mod:`fxcli.dsp.delayline`: the kernels behind the effects.
"""

from fxcli.dsp.firfilt import firfilt
from fxcli.dsp.sosfilt import sosfilt
from fxcli.dsp.tvsosfilt import tvsosfilt

__all__ = ["firfilt", "sosfilt", "tvsosfilt"]
