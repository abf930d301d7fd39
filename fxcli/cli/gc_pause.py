"""The cyclic garbage collector paused while a CLI call starts (issue 15).

Start-up allocates ~30,000 objects that live until exit (modules, classes,
functions, the dataclasses' generated methods) and hardly any garbage. With the
collector on, every 700 of them start a pass that walks the young ones and promotes
them, ~80 passes for one file through ``fxcli process``, and the passes at exit walk
all of them again. :func:`pause` turns the automatic passes off for the start-up of a
command that ends the pause itself (:data:`PAUSING_COMMANDS`); its :func:`resume`,
once the run is prepared and before any file is read, moves what start-up allocated
to the permanent generation (``gc.freeze``: no later pass walks it, the ones at exit
included) and turns the collector back on, so a long batch collects its garbage as
before. Measured on a 5 s stereo WAV through a 6-biquad chain (``--device cpu``,
``python -m fxcli``): 815 M instructions -> 750 M (callgrind), of which the
interpreter's teardown 54 M -> 12 M; the collector's passes ~10 ms -> 0.5 ms of CPU.

Library callers and tests that build the app themselves never pause, and
:func:`resume` then does nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence

#: the commands that call :func:`resume` once their start-up is over; any other
#: command (a long ``bench``, ``match``) runs with the collector as Python sets it
PAUSING_COMMANDS = frozenset({"process", "analyze", "features"})

_paused = False


def pause(argv: Sequence[str]) -> None:
    """Turn the collector's automatic passes off if ``argv`` (``sys.argv``) runs one
    of :data:`PAUSING_COMMANDS` and the collector is on; idempotent."""
    global _paused
    if len(argv) > 1 and argv[1] in PAUSING_COMMANDS and gc.isenabled():
        gc.disable()
        _paused = True


def resume(freeze: bool = True) -> None:
    """End a :func:`pause`: freeze what exists (``gc.freeze``, unless ``freeze`` is
    False) and turn the collector back on. Does nothing if :func:`pause` did not turn
    it off."""
    global _paused
    if _paused:
        _paused = False
        if freeze:
            gc.freeze()
        gc.enable()


def paused() -> bool:
    """Whether a :func:`pause` is in effect (for tests)."""
    return _paused
