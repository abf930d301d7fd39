"""fxcli: exact, streaming, GPU-accelerated audio filter chains on PyTorch.

Library entry points (imported on first use, so ``import fxcli`` stays cheap and
the CLI's ``--help`` answers without loading torch):

- :class:`fxcli.Wave` (``fxcli.wave``): audio with its rate, the ``|`` pipe;
- :mod:`fxcli.filter`: ``HiButterworth``, ``LoChebyshev1``, ``Peaking``, ``DesignableFIR``...;
- :mod:`fxcli.effect`: ``Gain``, ``Normalize``, ``Compressor``, ``Limiter``, ``Loudness``...;
- :mod:`fxcli.dsp`: the functional kernels ``sosfilt``/``firfilt`` with explicit state.
"""

from __future__ import annotations

from typing import Any

from fxcli._version import __version__

__all__ = ["Wave", "__version__", "dsp", "effect", "features", "filter"]


def __getattr__(name: str) -> Any:
    if name == "Wave":
        from fxcli.wave import Wave

        return Wave
    if name == "filter":
        import fxcli.filter

        return fxcli.filter
    if name == "effect":
        import fxcli.effect

        return fxcli.effect
    if name == "dsp":
        import fxcli.dsp

        return fxcli.dsp
    if name == "features":
        import fxcli.features

        return fxcli.features
    raise AttributeError(f"module 'fxcli' has no attribute {name!r}")
