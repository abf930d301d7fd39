"""Chain steps as ``torch.nn.Module``s with explicit state.

Every step follows one protocol:

- ``init_state(batch_shape, device)`` returns the zero state for inputs of shape
  ``(*batch_shape, time)`` (``None`` for stateless steps);
- ``process(x, state) -> (y, new_state)`` never mutates ``state`` (a failed chunk
  can be retried from it). ``y`` may be shorter or longer than ``x`` (a step with
  latency, such as a lookahead limiter or a resampler, returns fewer frames at
  first) and may have another channel count (``remix``);
- ``flush(state) -> (tail, new_state)`` at the end of the stream returns the frames
  still held (``(channels, k)``, possibly ``k == 0``), so that the concatenation of
  every chunk's ``y`` and the tail equals whole-signal processing;
- ``output_rate(fs)`` / ``output_channels(ch)``: what the step produces for input
  at ``fs`` Hz with ``ch`` channels (later steps are designed at the new rate);
- ``forward(x, state=None)``: with ``state=None`` the step starts from the zero
  state and returns the whole output ``y`` (``process`` plus ``flush``: calling
  twice gives the same output); with a state it returns ``(y, new_state)``.

``x`` is ``(..., time)`` float32 or float64 on any device; ``y`` has the same
shape, dtype and device. Coefficients are float64 buffers, so ``.to(device)``
moves them and ``state_dict()`` holds them.

:func:`fxcli.preset.build.build_step` turns a validated preset step into one of
these for a sample rate; :func:`fxcli.steps.fusion.fuse` merges consecutive IIR steps
and gains into one cascade.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fxcli.errors import ParameterError
from fxcli.steps import module

if TYPE_CHECKING:
    import torch
    from torch import Tensor
    from torch.nn import Module as _Base
else:
    _Base = module.base()

__all__ = [
    "FIR",
    "IIR",
    "Step",
    "as_numpy",
    "chain_output",
    "check_fs",
    "coefficients",
    "concat",
    "is_tensor",
    "zeros",
]


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (answered without importing torch)."""
    torch_mod = sys.modules.get("torch")
    return torch_mod is not None and isinstance(x, torch_mod.Tensor)


def zeros(shape: tuple[int, ...], device: Any) -> Any:
    """A float64 zero state: a numpy array for the torch-free steps, else a tensor on
    ``device``."""
    if module.torch_free():
        return np.zeros(shape)
    import torch

    return torch.zeros(shape, dtype=torch.float64, device=device)


def coefficients(values: Any, like: Any = None) -> Any:
    """Coefficients as float64: a numpy array for the torch-free steps, else a tensor
    (on ``like``'s device when given)."""
    if module.torch_free():
        return np.asarray(values, dtype=np.float64)
    import torch

    device = like.device if like is not None else None
    return torch.as_tensor(
        np.asarray(values) if not is_tensor(values) else values, dtype=torch.float64, device=device
    )


def concat(parts: list[Any]) -> Any:
    """Frames joined along the last axis (numpy arrays or tensors, not mixed)."""
    if len(parts) == 1:
        return parts[0]
    if is_tensor(parts[0]):
        import torch

        return torch.cat(parts, dim=-1)
    return np.concatenate(parts, axis=-1)


def as_numpy(t: Any) -> np.ndarray:
    """A coefficient buffer (tensor or array) as a float64 numpy array (a copy for
    tensors on another device)."""
    if is_tensor(t):
        return np.asarray(t.detach().cpu().numpy(), dtype=np.float64)
    return np.asarray(t, dtype=np.float64)


def check_fs(fs: Any) -> float:
    """A sample rate in Hz (finite, > 0), as float; else ``ParameterError``."""
    try:
        v = float(fs)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise ParameterError("fs", f"got {fs!r}", "a sample rate > 0 Hz")
    return v


class Step(_Base):
    """Base class of chain steps (see the module docstring for the protocol).

    Late binding (one mechanism for every step): a class that sets
    :attr:`late_binding` to ``"fs"`` (or ``"channels"``) may be built without that
    constructor argument; the object then holds its arguments and :meth:`bind`
    builds the real step when the signal is known (the ``Wave`` pipe calls it).
    Running an unbound step raises a clear error.
    """

    needs_analysis = False
    label = "step"
    differentiable: ClassVar[bool] = True
    late_binding: ClassVar[str | None] = None
    _late: tuple[tuple[Any, ...], dict[str, Any]] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        need = cls.late_binding
        if init is None or need is None:
            return
        sig = inspect.signature(init)
        if need not in sig.parameters:
            return

        @functools.wraps(init)
        def __init__(self: Step, *args: Any, **kw: Any) -> None:
            if type(self) is cls:
                bound = sig.bind_partial(self, *args, **kw).arguments
                if bound.get(need) is None:
                    _Base.__init__(self)
                    kw.pop(need, None)
                    self._late = (args, kw)
                    self.label = kw.get("label", cls.__name__.lower())
                    return
            init(self, *args, **kw)

        setattr(cls, "__init__", __init__)  # noqa: B010

    @property
    def bound(self) -> bool:
        """Whether the step can run (not waiting for a sample rate or channel count)."""
        return self._late is None

    def bind(self, fs: float, channels: int) -> Step:
        """The step to run on a signal at ``fs`` Hz with ``channels`` channels: itself,
        or for a step built without its ``fs``/``channels``, the step built with them."""
        if self._late is None:
            return self
        args, kw = self._late
        value: Any = fs if self.late_binding == "fs" else channels
        extra: dict[str, Any] = {str(self.late_binding): value}
        if self.late_binding == "channels" and "fs" in inspect.signature(type(self)).parameters:
            extra["fs"] = fs
        step: Step = type(self)(*args, **{**kw, **extra})
        return step

    def __repr__(self) -> str:
        if self._late is None:
            return super().__repr__()
        args, kw = self._late
        shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kw.items()]
        return f"{type(self).__name__}({', '.join(shown)}) waiting for {self.late_binding}"

    def check_gradients(self, x: Tensor) -> None:
        """Raise when ``x`` needs gradients that this step cannot pass on (its output
        would be silently detached from ``x``)."""
        if not is_tensor(x):
            return
        import torch

        if not self.differentiable and torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError(
                f"{type(self).__name__} does not propagate gradients (its output would be "
                "detached from the input): run it under torch.no_grad() or give it a "
                "detached tensor"
            )

    def _check_bound(self) -> None:
        if self._late is not None:
            what = "sample rate" if self.late_binding == "fs" else "channel count"
            raise ValueError(
                f"{type(self).__name__} has no {what}: pass {self.late_binding}=... "
                "or pipe a Wave through it (wave | step)"
            )

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Any:
        return None

    def flush(self, state: Any) -> tuple[Tensor | None, Any]:
        """End of stream: the frames still held, or ``None`` when the step holds none."""
        return None, state

    def output_rate(self, fs: float) -> float:
        return fs

    def output_channels(self, channels: int) -> int:
        return channels

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:  # pragma: no cover
        raise NotImplementedError

    def measure(self, acc: Any, y: Tensor) -> Any:  # pragma: no cover
        """Analysis steps: fold one chunk of the chain's output (up to here) into ``acc``."""
        raise NotImplementedError

    def resolve(self, acc: Any) -> Step:  # pragma: no cover
        """Analysis steps: the step to run in the writing pass, from the measurement."""
        raise NotImplementedError

    def forward(self, x: Tensor, state: Any = None) -> Any:
        """``step(x)``: the whole output for ``x`` from the zero state (every call starts
        afresh, so calling it chunk by chunk restarts the filter at each chunk: errors
        at the joins). To stream, carry the state::

            state = step.init_state(x.shape[:-1], x.device)
            for chunk in chunks:
                y, state = step(chunk, state)
            tail, state = step.flush(state)  # steps with latency hold frames back

        ``step(x, state)`` returns ``(y, new_state)`` and never modifies ``state``.
        Analysis steps (``Normalize``, ``Loudness``) measure ``x`` and apply the result
        when called without a state; they cannot stream with one.
        """
        self._check_bound()
        self.check_gradients(x)
        if state is None and self.needs_analysis:
            # the whole signal is here: measure it, then apply what the measurement gives
            return self.resolve(self.measure(None, x))(x)
        if state is None:
            y, st = self.process(x, self.init_state(tuple(x.shape[:-1]), _device(x)))
            tail, _ = self.flush(st)
            return (
                y
                if tail is None
                else concat(
                    [y, tail.astype(y.dtype) if isinstance(tail, np.ndarray) else tail.to(y.dtype)]
                )
            )
        return self.process(x, state)


class IIR(Step):
    """A cascade of second-order sections, ``sos`` of shape (S, 6), float64.

    State: ``(S, *batch, 2)`` float64 transposed-direct-form-II states (SciPy layout).
    """

    sos: Tensor

    def __init__(self, sos: np.ndarray | Tensor, label: str = "iir") -> None:
        super().__init__()
        self.register_buffer("sos", coefficients(sos))
        self.label = label

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        return zeros((self.sos.shape[0], *batch_shape, 2), device)

    def process(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        return self.filter(x, self.sos, state)

    @staticmethod
    def filter(x: Any, sos: Any, state: Any) -> Any:
        """``sosfilt(x, sos, state) -> (y, new_state)`` for numpy arrays (the compiled
        kernel, no torch) or tensors (:func:`fxcli.dsp.sosfilt`)."""
        if isinstance(x, np.ndarray):
            from fxcli.dsp.iir.args import sos_to_numpy
            from fxcli.dsp.iir.cpu import sosfilt_np

            return sosfilt_np(x, sos_to_numpy(sos), state)
        from fxcli.dsp.iir.api import sosfilt

        return sosfilt(x, sos, state)


class FIR(Step):
    """An FIR filter with ``taps`` of shape (K,), float64.

    State: the last K-1 input samples, ``(*batch, K-1)`` float64.
    """

    taps: Tensor

    def __init__(self, taps: np.ndarray | Tensor, label: str = "fir") -> None:
        super().__init__()
        self.register_buffer("taps", coefficients(taps))
        self.label = label

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        k = self.taps.shape[0]
        return zeros((*batch_shape, k - 1), device)

    def process(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        if isinstance(x, np.ndarray):
            from fxcli.dsp.fir.cpu import firfilt_np

            return firfilt_np(x, as_numpy(self.taps), state)  # type: ignore[return-value]
        from fxcli.dsp.fir.api import firfilt

        return firfilt(x, self.taps, state)


def _device(x: Any) -> Any:
    return x.device if is_tensor(x) else "cpu"


def chain_output(steps: list[Step], fs: float, channels: int) -> tuple[float, int]:
    """(rate, channels) at the end of a designed chain for the given input."""
    for step in steps:
        fs, channels = step.output_rate(fs), step.output_channels(channels)
    return fs, channels
