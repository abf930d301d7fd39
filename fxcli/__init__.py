"""fxcli: exact, streaming, GPU-accelerated audio filter chains on PyTorch.

Importing :mod:`fxcli` is cheap: torch is imported only by the submodules that
need it (:mod:`fxcli.dsp`, :mod:`fxcli.engine`), so the CLI's ``--help`` and
``--version`` answer without loading torch.
"""

from fxcli._version import __version__

__all__ = ["__version__"]
