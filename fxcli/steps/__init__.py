"""Chain steps: one module per idea, each step class defined once.

Every step is a ``torch.nn.Module`` with explicit streaming state (the protocol is
in :mod:`fxcli.steps.base`), or in a process that chose the torch-free CPU path a
stand-in that runs on numpy arrays (:mod:`fxcli.steps.module`). Where a new effect
goes: its kernel in :mod:`fxcli.dsp`, its class in a module here, its keys and
limits in :mod:`fxcli.preset.spec`, one line in :mod:`fxcli.preset.build`.

- :mod:`~fxcli.steps.base`: ``Step``, ``IIR`` (sos cascade), ``FIR`` (taps);
- :mod:`~fxcli.steps.filters`: designed filters (TorchFX names), ``DCBlock``;
- :mod:`~fxcli.steps.gain`: ``Gain``, ``Polarity``, ``Normalize``;
- :mod:`~fxcli.steps.dynamics`: ``Compressor``, ``Limiter``, ``Gate``, ``Expander``;
- :mod:`~fxcli.steps.loudness`: ``Loudness`` (BS.1770 integrated loudness target);
- :mod:`~fxcli.steps.edit`: ``Fade``, ``Trim``, ``Pad``, ``Remix``;
- :mod:`~fxcli.steps.delay`, :mod:`~fxcli.steps.resample`, :mod:`~fxcli.steps.space`
  (``Convolve``, ``Reverb``);
- :mod:`~fxcli.steps.fusion`: merging of IIR/gain and FIR runs;
- :mod:`~fxcli.steps.module`: the base class (``nn.Module`` or the torch-free one).

The names below load on first use, so that importing :mod:`fxcli.steps.module`
(to choose the base class) defines no step yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fxcli.steps.base import FIR, IIR, Step, chain_output
    from fxcli.steps.fusion import fuse
    from fxcli.steps.gain import Gain, Normalize, Polarity

__all__ = ["FIR", "IIR", "Gain", "Normalize", "Polarity", "Step", "chain_output", "fuse"]


def __getattr__(name: str) -> Any:
    if name in ("FIR", "IIR", "Step", "chain_output"):
        from fxcli.steps import base

        return getattr(base, name)
    if name == "fuse":
        from fxcli.steps.fusion import fuse

        return fuse
    if name in ("Gain", "Normalize", "Polarity"):
        from fxcli.steps import gain

        return getattr(gain, name)
    raise AttributeError(f"module 'fxcli.steps' has no attribute {name!r}")
