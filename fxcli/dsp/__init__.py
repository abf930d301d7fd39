"""Pure DSP functions on tensors with explicit state: ``y, state = f(x, state)``.

Nothing here imports anything above :mod:`fxcli.dsp` (steps, presets, engine, CLI).

- :func:`sosfilt` (:mod:`fxcli.dsp.iir`): cascaded second-order sections (float64
  coefficients and state); differentiable in ``x``, ``sos`` and ``zi``; per-sample
  coefficients ``(..., time, S, 6)`` run the time-varying filter (:func:`tvsosfilt`).
  CPU kernel, time-parallel torch algorithm, Triton kernels and gradients live in
  the modules of :mod:`fxcli.dsp.iir`.
- :func:`firfilt` (:mod:`fxcli.dsp.fir`): FIR filtering with input-history state
  (direct or FFT; a Triton block-Toeplitz kernel for float32 CUDA), differentiable.
- :mod:`fxcli.dsp.design`: SciPy-semantics filter design to float64 sos / taps;
  :mod:`fxcli.dsp.design_torch`: the same designs in torch, differentiable in their
  parameters (RBJ biquads, Butterworth, Linkwitz-Riley).
- :mod:`fxcli.dsp.loudness`, :mod:`fxcli.dsp.truepeak`: BS.1770-4 meters;
  :mod:`fxcli.dsp.dynamics`, :mod:`fxcli.dsp.resample`, :mod:`fxcli.dsp.reverb`,
  :mod:`fxcli.dsp.delayline`: the kernels behind the effects.

GPU kernels (Triton) keep a pure-torch path of every algorithm, so all of them
are testable on CPU. The functions are loaded on first use, so the numpy-facing
CPU kernels (e.g. :mod:`fxcli.dsp.iir.cpu`) import without torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["firfilt", "sosfilt", "tvsosfilt"]


def __getattr__(name: str) -> Any:
    if name == "firfilt":
        from fxcli.dsp.fir.api import firfilt

        return firfilt
    if name in ("sosfilt", "tvsosfilt"):
        from fxcli.dsp import iir

        return getattr(iir, name)
    raise AttributeError(f"module 'fxcli.dsp' has no attribute {name!r}")
