"""The one place numba is imported: ``njit`` compiles with the on-disk cache and
without the GIL, or returns the plain Python function where numba is missing
(the kernels are written so that both give the same results)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

try:  # numba is a dependency, but keep the package importable without it
    import numba
except Exception:  # pragma: no cover - depends on the environment
    numba = None  # type: ignore[assignment]


def available() -> bool:
    """Whether numba could be imported."""
    return numba is not None


def njit(f: F) -> F:
    """``numba.njit(cache=True, nogil=True)``, or ``f`` itself without numba."""
    if numba is None:  # pragma: no cover - depends on the environment
        return f
    return numba.njit(cache=True, nogil=True)(f)  # type: ignore[return-value]
