"""The compiled CPU core (the extension module ``fxcli._core``, C++ built from
``csrc/`` at install time) and the one thread policy of its kernels.

Every CPU kernel of fxcli (biquad cascades and their adjoint, the FIR filter,
dynamics envelopes and the lookahead limiter, true-peak oversampling, the reverb, the
WAV codec) is a function of :data:`core` taking numpy arrays; it releases the GIL and
spreads independent rows (channels; the FIR also frames of a row) over at most
:func:`threads` threads, started per call and joined before it returns (nothing
spins or waits between calls).

Threads, first match wins: :func:`set_threads` (the CLI's ``--threads``), the
environment variable ``FXCLI_THREADS``, torch's intra-op setting when torch is
loaded (the library inside a torch program), else the CPUs this process may run on.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

__all__ = ["ENV_THREADS", "core", "set_threads", "threads"]

ENV_THREADS = "FXCLI_THREADS"


def _load() -> ModuleType:
    try:
        import fxcli._core as _core  # the extension, not the package's __init__
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ImportError(
            "fxcli's compiled core (fxcli._core) is missing or cannot be loaded "
            f"({exc}); reinstall fxcli from source with a C++17 compiler "
            "(pip install --force-reinstall .) or from a wheel"
        ) from exc
    return _core


core = _load()

_threads: int | None = None


def set_threads(n: int | None) -> None:
    """Use at most ``n`` threads in the CPU kernels (``None``: back to the default)."""
    global _threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"threads must be an integer >= 1, got {n!r}")
    _threads = n


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def threads() -> int:
    """Threads the CPU kernels may use now (see the module docstring)."""
    if _threads is not None:
        return _threads
    env = os.environ.get(ENV_THREADS, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{ENV_THREADS} must be an integer >= 1, got {env!r}")
        return n
    torch_mod = sys.modules.get("torch")
    if torch_mod is not None:
        return max(1, int(torch_mod.get_num_threads()))
    return max(1, _cpus())
