"""Effects as ``torch.nn.Module``s: the classes the preset steps build, by name.

The public facade of :mod:`fxcli.steps` (where each class is defined, once):
``Gain``, ``Polarity``, ``Normalize``, ``Loudness``, ``Compressor``, ``Limiter``,
``Gate``, ``Expander``, ``Fade``, ``Trim``, ``Pad``, ``Delay``, ``Remix``,
``DCBlock``, ``Resample``, ``Convolve`` and ``Reverb``. Keyword arguments are the
preset's keys, with their units in the name (``Compressor(threshold_db=-20,
ratio=4, fs=48000)``).

The sample rate may be left out: ``Compressor(threshold_db=-20)`` is then bound to
the signal's rate (and channel count, for ``Remix``) by a :class:`fxcli.Wave` pipe
(``wave | ...``, see :meth:`fxcli.steps.Step.bind`). Calling an unbound step
directly raises a clear error.
"""

from __future__ import annotations

from fxcli.steps.delay import Delay
from fxcli.steps.dynamics import Compressor, Expander, Gate, Limiter
from fxcli.steps.edit import Fade, Pad, Remix, Trim
from fxcli.steps.filters import DCBlock
from fxcli.steps.gain import Gain, Normalize, Polarity
from fxcli.steps.loudness import Loudness
from fxcli.steps.resample import Resample
from fxcli.steps.space import Convolve, Reverb

__all__ = [
    "Compressor",
    "Convolve",
    "DCBlock",
    "Delay",
    "Expander",
    "Fade",
    "Gain",
    "Gate",
    "Limiter",
    "Loudness",
    "Normalize",
    "Pad",
    "Polarity",
    "Remix",
    "Resample",
    "Reverb",
    "Trim",
]
