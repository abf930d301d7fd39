"""The base class of every step: ``torch.nn.Module``, or, in a process that asked for
the torch-free CPU path before importing any step, a stand-in with the same surface.

The library's steps are ``nn.Module``s (``.to(device)``, ``state_dict()``,
parameters, autograd). ``fxcli process`` on the CPU needs none of that: it filters
numpy arrays with the compiled core, and importing torch would cost about a second
and 150 MiB per call. So the CLI calls :func:`use_arrays` first (only when every
step of the preset has a numpy implementation, see ``StepSpec.numpy`` in
:mod:`fxcli.preset.spec`); the step classes then derive from :class:`ArrayModule`
and hold their coefficients as numpy arrays. Each step class is still defined once:
its ``process`` works on numpy arrays and on torch tensors alike (through
:mod:`fxcli.dsp.arrays`), and the two paths are tested equal.

The choice is made once per process, when this module is first imported: after
that :func:`use_arrays` can no longer change it (it raises).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["ArrayModule", "base", "torch_free", "use_arrays"]

_requested = False
_chosen: type | None = None


def use_arrays() -> None:
    """Ask for the torch-free step base. Must run before :mod:`fxcli.steps` is first
    imported (the CLI does it); afterwards it raises ``RuntimeError`` unless the
    choice already is the array base."""
    global _requested
    if _chosen is not None and _chosen is not ArrayModule:
        raise RuntimeError("fxcli.steps was already imported with torch before use_arrays()")
    _requested = True


class ArrayModule:
    """What steps use of ``nn.Module``, for numpy arrays on the CPU: buffers are plain
    attributes, ``to()`` accepts only the CPU, there are no parameters, and calling the
    object calls ``forward``."""

    training = False

    def __init__(self) -> None:
        self._buffer_names: list[str] = []

    def register_buffer(self, name: str, value: Any, persistent: bool = True) -> None:
        if name not in self.__dict__.get("_buffer_names", []):
            self.__dict__.setdefault("_buffer_names", []).append(name)
        setattr(self, name, value)

    def buffers(self) -> Iterator[Any]:
        return iter([getattr(self, n) for n in self.__dict__.get("_buffer_names", [])])

    def parameters(self) -> Iterator[Any]:
        return iter(())

    def to(self, *args: Any, **kwargs: Any) -> Any:
        where = kwargs.get("device", args[0] if args else "cpu")
        if str(getattr(where, "type", where)).split(":")[0] != "cpu":
            raise RuntimeError(f"torch-free steps run on the CPU only, not on {where}")
        return self

    def eval(self) -> Any:
        return self

    def extra_repr(self) -> str:
        return ""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def base() -> type:
    """The class steps derive from (chosen on the first call, then fixed)."""
    global _chosen
    if _chosen is None:
        if _requested and "torch" not in sys.modules:
            _chosen = ArrayModule
        else:
            from torch import nn

            _chosen = nn.Module
    return _chosen


def torch_free() -> bool:
    """Whether the steps of this process are the torch-free ones."""
    return base() is ArrayModule
