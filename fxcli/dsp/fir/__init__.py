"""Causal FIR filtering with exact streaming state.

:func:`firfilt` (torch tensors, any device; :mod:`~fxcli.dsp.fir.api`) computes
``scipy.signal.lfilter(taps, [1.0], x, axis=-1)`` in float64 by direct convolution or
overlap-save FFT, with the input history as state; :func:`~fxcli.dsp.fir.cpu.firfilt_np`
is the same on numpy arrays without torch (the torch-free CPU path). Modules:
:mod:`~fxcli.dsp.fir.api` (the public function), :mod:`~fxcli.dsp.fir.dispatch`
(methods on tensors), :mod:`~fxcli.dsp.fir.cpu` (numpy), :mod:`~fxcli.dsp.fir.triton`,
:mod:`~fxcli.dsp.fir.autograd` and :mod:`~fxcli.dsp.fir.args`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AUTO_FFT_MIN_TAPS",
    "AUTO_TRITON_MAX_TAPS",
    "FirfiltFunction",
    "firfilt",
    "firfilt_autograd",
]


def __getattr__(name: str) -> Any:
    # loaded on first use: the torch API is not imported for the numpy path
    if name in __all__:
        from fxcli.dsp.fir import api

        return getattr(api, name)
    raise AttributeError(f"module 'fxcli.dsp.fir' has no attribute {name!r}")
