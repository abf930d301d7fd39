"""The one place numba is imported: ``njit`` compiles with the on-disk cache and
without the GIL, or returns the plain Python function where numba is missing
(the kernels are written so that both give the same results).

numba's on-disk cache is a cache: it never fails a call or an import.

- No writable cache location (``NUMBA_CACHE_DIR``, ``__pycache__`` next to the
  sources, the user cache folder; numba tries them in that order): the kernel is
  compiled without the cache (numba itself would raise at import).
- A cache file that cannot be loaded (a corrupt ``.nbi`` index or ``.nbc`` data
  file raises ``UnpicklingError: invalid load key`` inside numba, naming no path):
  the index is set aside (renamed ``*.corrupt-<time>``, else deleted) and the
  kernel is recompiled; a cache that cannot be written is skipped. One log line
  (logger ``fxcli``, warning) names the cache folder, once per process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

try:  # numba is a dependency, but keep the package importable without it
    import numba
except Exception:  # pragma: no cover - depends on the environment
    numba = None  # type: ignore[assignment]

_log = logging.getLogger("fxcli")
_noted = threading.Event()


def available() -> bool:
    """Whether numba could be imported."""
    return numba is not None


def _note(message: str) -> None:
    if not _noted.is_set():
        _noted.set()
        _log.warning("%s", message)


class _SafeCache:
    """A numba ``FunctionCache`` whose failures fall back to compiling: loading
    errors set the index aside (the next save writes a fresh one), saving errors
    are skipped. Everything else is delegated."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _index_path(self) -> str | None:
        path = getattr(getattr(self._inner, "_cache_file", None), "_index_path", None)
        return path if isinstance(path, str) else None

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        try:
            return self._inner.load_overload(sig, target_context)
        except Exception as exc:  # noqa: BLE001 - any cache problem: recompile
            index = self._index_path()
            if index is not None:
                try:
                    os.replace(index, f"{index}.corrupt-{int(time.time())}")
                except OSError:
                    try:
                        os.unlink(index)
                    except OSError:
                        pass
            where = os.path.dirname(index) if index else "numba's cache"
            _note(
                f"numba cache {where}: cannot load a cached kernel "
                f"({type(exc).__name__}: {exc}); set aside, recompiling"
            )
            return None

    def save_overload(self, sig: Any, data: Any) -> None:
        try:
            self._inner.save_overload(sig, data)
        except Exception as exc:  # noqa: BLE001 - an unwritable cache is no error
            _note(f"numba cache: cannot save a compiled kernel ({type(exc).__name__}: {exc})")


@overload
def njit(f: F, /) -> F: ...
@overload
def njit(f: None = None, /, **options: Any) -> Callable[[F], F]: ...


def njit(f: F | None = None, /, **options: Any) -> F | Callable[[F], F]:
    """``numba.njit(cache=True, nogil=True, **options)`` (``@njit`` or
    ``@njit(parallel=True)``), or ``f`` itself without numba; the cache never fails
    (see the module docstring)."""
    if f is None:
        return lambda g: _compile(g, options)
    return _compile(f, options)


def _compile(f: F, options: dict[str, Any]) -> F:
    if numba is None:  # pragma: no cover - depends on the environment
        return f
    disp: Any = numba.njit(**{"nogil": True, **options})(f)
    try:
        disp.enable_caching()  # what cache=True does; raises without a writable location
    except Exception as exc:  # noqa: BLE001 - no usable cache folder: compile every run
        _note(f"numba cache off ({type(exc).__name__}: {exc})")
        return disp  # type: ignore[no-any-return]
    inner = getattr(disp, "_cache", None)
    if inner is not None and hasattr(inner, "load_overload"):
        disp._cache = _SafeCache(inner)
    return disp  # type: ignore[no-any-return]
