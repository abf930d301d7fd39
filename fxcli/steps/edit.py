"""Time and channel edits: fade, trim, pad, remix.

All are streaming steps with explicit state (see :mod:`fxcli.steps`). Steps that
act on the end of the signal (``fade`` out, ``trim`` of the end) hold the last
frames back until :meth:`~fxcli.steps.Step.flush`, so their output is exact for
any chunking without knowing the length in advance (memory: ``out_s``/``end_s``
seconds of audio). Gains are computed in float64 and applied in the input dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from fxcli.preset.spec import FADE_SHAPES, REMIX_SHORTHANDS, check
from fxcli.steps.base import Step, check_fs, coefficients, concat, is_tensor, zeros
from fxcli.steps.module import torch_free

if TYPE_CHECKING:
    import torch
    from torch import Tensor


def fade_curve(t: Tensor, shape: str) -> Tensor:
    """Fade-in gain for positions ``t`` in [0, 1] (0: start of the fade, gain 0): a
    float64 numpy array or tensor.

    ``linear``: ``t``; ``exp``: ``(1000**t - 1) / 999`` (60 dB of exponential rise,
    exactly 0 at the start and 1 at the end); ``cosine``: ``(1 - cos(pi t)) / 2``
    (an S-curve with zero slope at both ends).
    """
    if isinstance(t, np.ndarray):
        if shape == "linear":
            return t  # type: ignore[return-value]
        if shape == "exp":
            return (np.power(1000.0, t) - 1.0) / 999.0  # type: ignore[return-value]
        if shape == "cosine":
            return 0.5 - 0.5 * np.cos(math.pi * t)  # type: ignore[return-value]
    import torch

    if shape == "linear":
        return t
    if shape == "exp":
        return (torch.pow(1000.0, t) - 1.0) / 999.0
    if shape == "cosine":
        return 0.5 - 0.5 * torch.cos(math.pi * t)
    raise ValueError(f"shape: got {shape!r}; allowed: {', '.join(FADE_SHAPES)}")


def _frames(step_type: str, key: str, seconds: float, fs: float) -> int:
    """Frames for ``seconds`` checked against the spec's limits for ``key``."""
    return int(round(check(step_type, key, seconds) * check_fs(fs)))


@dataclass(frozen=True)
class EditState:
    """``pos``: input frames consumed so far; ``held``: frames held back (``(*batch, k)``)."""

    pos: int
    held: Tensor


def _empty(batch_shape: tuple[int, ...], device: torch.device | str) -> Tensor:
    return zeros((*batch_shape, 0), device)  # type: ignore[no-any-return]


def _hold(held: Tensor, y: Tensor, keep: int) -> tuple[Tensor, Tensor]:
    """Append ``y`` to ``held``; return (frames released, last ``keep`` frames held)."""
    if keep == 0:
        return y, held
    both = concat([held.to(y.dtype) if is_tensor(held) else held.astype(y.dtype), y])  # type: ignore[attr-defined]
    cut = max(both.shape[-1] - keep, 0)
    return both[..., :cut], both[..., cut:]


def _gain(x: Tensor, g: np.ndarray) -> Tensor:
    """``x`` times the float64 gain curve ``g`` (computed with numpy on both paths, so
    numpy arrays and tensors get the same bits), in ``x``'s dtype."""
    if isinstance(x, np.ndarray):
        return (x.astype(np.float64) * g).astype(x.dtype)  # type: ignore[return-value]
    import torch

    gt = torch.from_numpy(g).to(x.device)
    return (x.to(torch.float64) * gt).to(x.dtype)


class Fade(Step):
    """Fade in over the first ``in_s`` seconds and out over the last ``out_s``.

    The fade-in gain of frame ``k`` is ``curve(k / N_in)``; the fade-out gain of the
    frame ``d`` frames before the last is ``curve(d / N_out)`` (the last frame is 0).
    A signal shorter than a fade gets the part of the curve that fits.
    State: :class:`EditState`; the last ``N_out`` frames are held until ``flush``.

    Devices: any. Autograd: gradients flow to the input.
    """

    late_binding = "fs"

    def __init__(
        self,
        in_s: float = 0.0,
        out_s: float = 0.0,
        shape: str = "linear",
        *,
        fs: float,
        label: str = "fade",
    ) -> None:
        super().__init__()
        self.shape = check("fade", "shape", shape)
        self.n_in = _frames("fade", "in_s", in_s, fs)
        self.n_out = _frames("fade", "out_s", out_s, fs)
        self.label = label

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> EditState:
        return EditState(0, _empty(batch_shape, device))

    def process(self, x: Tensor, state: EditState) -> tuple[Tensor, EditState]:
        n = x.shape[-1]
        if self.n_in and state.pos < self.n_in and n:
            k = np.arange(state.pos, state.pos + n, dtype=np.float64)
            x = _gain(x, fade_curve(np.minimum(k / self.n_in, 1.0), self.shape))  # type: ignore[arg-type]
        out, held = _hold(state.held, x, self.n_out)
        return out, EditState(state.pos + n, held)

    def flush(self, state: EditState) -> tuple[Tensor | None, EditState]:
        held = state.held
        if not self.n_out:
            return None, state
        m = held.shape[-1]
        d = np.arange(m - 1, -1, -1, dtype=np.float64)
        tail = _gain(held, fade_curve(np.minimum(d / self.n_out, 1.0), self.shape))  # type: ignore[arg-type]
        return tail, replace(state, held=held[..., :0])


class Trim(Step):
    """Remove ``start_s`` seconds at the start and ``end_s`` seconds at the end.

    A signal shorter than ``start_s + end_s`` becomes empty. State: :class:`EditState`
    (the last ``end_s`` seconds are held and dropped at ``flush``).

    Devices: any. Autograd: gradients flow to the input.
    """

    late_binding = "fs"

    def __init__(
        self, start_s: float = 0.0, end_s: float = 0.0, *, fs: float, label: str = "trim"
    ) -> None:
        super().__init__()
        self.n_start = _frames("trim", "start_s", start_s, fs)
        self.n_end = _frames("trim", "end_s", end_s, fs)
        self.label = label

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> EditState:
        return EditState(0, _empty(batch_shape, device))

    def process(self, x: Tensor, state: EditState) -> tuple[Tensor, EditState]:
        n = x.shape[-1]
        skip = min(max(self.n_start - state.pos, 0), n)
        out, held = _hold(state.held, x[..., skip:], self.n_end)
        return out, EditState(state.pos + n, held)

    def flush(self, state: EditState) -> tuple[Tensor | None, EditState]:
        return None, replace(state, held=state.held[..., :0])


@dataclass(frozen=True)
class PadState:
    started: bool
    batch_shape: tuple[int, ...]
    device: Any
    dtype: Any = None  # the first chunk's dtype (float32 before any chunk)


class Pad(Step):
    """Add ``start_s`` seconds of silence before the signal and ``end_s`` after.

    A zero-length input becomes ``start_s + end_s`` of silence.

    Devices: any. Autograd: gradients flow to the input.
    """

    late_binding = "fs"

    def __init__(
        self, start_s: float = 0.0, end_s: float = 0.0, *, fs: float, label: str = "pad"
    ) -> None:
        super().__init__()
        self.n_start = _frames("pad", "start_s", start_s, fs)
        self.n_end = _frames("pad", "end_s", end_s, fs)
        self.label = label

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> PadState:
        return PadState(False, tuple(batch_shape), device)

    def _zeros(self, n: int, state: PadState) -> Tensor:
        if torch_free():
            return np.zeros((*state.batch_shape, n), dtype=state.dtype or np.float32)  # type: ignore[return-value]
        import torch

        dtype = state.dtype if state.dtype is not None else torch.float32
        return torch.zeros((*state.batch_shape, n), dtype=dtype, device=state.device)

    def process(self, x: Tensor, state: PadState) -> tuple[Tensor, PadState]:
        if state.started or x.shape[-1] == 0:
            return x, state
        st = replace(state, started=True, dtype=x.dtype)
        if self.n_start:
            x = concat([self._zeros(self.n_start, st), x])
        return x, st

    def flush(self, state: PadState) -> tuple[Tensor | None, PadState]:
        n = self.n_end + (0 if state.started else self.n_start)
        return (self._zeros(n, state) if n else None), replace(state, started=True)


_BS775 = [  # ITU-R BS.775 downmix of 5.1 (L R C LFE Ls Rs) to stereo; LFE dropped
    [1.0, 0.0, math.sqrt(0.5), 0.0, math.sqrt(0.5), 0.0],
    [0.0, 1.0, math.sqrt(0.5), 0.0, 0.0, math.sqrt(0.5)],
]


def remix_matrix(to: str, channels: int) -> list[list[float]]:
    """The matrix (rows: outputs) of a shorthand for ``channels`` inputs.

    ``mono``: the mean of all channels; ``stereo``: mono duplicated, stereo kept,
    5.1 downmixed per ITU-R BS.775; ``swap``: left and right exchanged (stereo only).
    """
    if to == "mono":
        return [[1.0 / channels] * channels]
    if to == "stereo":
        if channels == 1:
            return [[1.0], [1.0]]
        if channels == 2:
            return [[1.0, 0.0], [0.0, 1.0]]
        if channels == 6:
            return _BS775
        raise ValueError(f"to: stereo needs 1, 2 or 6 (5.1) input channels, got {channels}")
    if to == "swap":
        if channels != 2:
            raise ValueError(f"to: swap needs 2 input channels, got {channels}")
        return [[0.0, 1.0], [1.0, 0.0]]
    raise ValueError(f"to: got {to!r}; allowed: {', '.join(REMIX_SHORTHANDS)}")


def channels_matrix(outputs: int, inputs: int) -> list[list[float]]:
    """The matrix that takes ``inputs`` channels to ``outputs`` as SoX's ``-c`` does:
    fewer outputs average inputs ``k, k+N, k+2N, ...`` into output ``k`` (one output:
    the mean of all); more outputs repeat input ``k mod inputs`` (mono: duplicated);
    as many: unchanged.

    >>> channels_matrix(1, 2)
    [[0.5, 0.5]]
    >>> channels_matrix(2, 1)
    [[1.0], [1.0]]
    """
    rows = []
    for k in range(outputs):
        cols = [j for j in range(inputs) if j % outputs == k] if outputs < inputs else [k % inputs]
        rows.append([1.0 / len(cols) if j in cols else 0.0 for j in range(inputs)])
    return rows


class Remix(Step):
    """Mix channels with a matrix ``(out_channels, in_channels)``: ``y = M @ x``.

    Give ``matrix``, a shorthand ``to`` (see :func:`remix_matrix`) or an output
    channel count ``to_channels`` (see :func:`channels_matrix`); the input channel
    count must match the matrix's columns. Stateless; float64 arithmetic.

    Devices: any. Autograd: gradients flow to the input.
    """

    late_binding = "channels"

    matrix: Tensor

    def __init__(
        self,
        matrix: list[list[float]] | None = None,
        to: str | None = None,
        *,
        channels: int,
        to_channels: int | None = None,
        fs: float | None = None,
        label: str = "remix",
    ) -> None:
        super().__init__()
        if sum(v is not None for v in (matrix, to, to_channels)) != 1:
            raise ValueError("give exactly one of matrix, to, to_channels")
        m: list[list[float]] | None
        if to_channels is not None:
            m = channels_matrix(check("remix", "to_channels", to_channels), channels)
        else:
            m = remix_matrix(to, channels) if to is not None else matrix
        assert m is not None
        mat = np.asarray(m, dtype=np.float64)
        if mat.ndim != 2 or mat.shape[1] != channels:
            raise ValueError(
                f"matrix: has {mat.shape[-1]} columns but the input has {channels} channels"
            )
        self.register_buffer("matrix", coefficients(mat))
        self.label = label

    def output_channels(self, channels: int) -> int:
        return int(self.matrix.shape[0])

    def process(self, x: Tensor, state: None) -> tuple[Tensor, None]:
        if x.shape[-2] != self.matrix.shape[1]:
            raise ValueError(
                f"{self.label}: input has {x.shape[-2]} channels, "
                f"the matrix expects {self.matrix.shape[1]}"
            )
        # y[..., o, :] = sum over c, in order, of m[o, c] * x[..., c, :] (float64): the
        # same operations on numpy arrays and tensors, so both give the same bits
        if isinstance(x, np.ndarray):
            m, x64 = self.matrix, x.astype(np.float64)
        else:
            import torch

            m, x64 = self.matrix.to(x.device), x.to(torch.float64)
        y = m[:, 0:1] * x64[..., 0:1, :]
        for c in range(1, m.shape[1]):
            y = y + m[:, c : c + 1] * x64[..., c : c + 1, :]
        return (y.astype(x.dtype) if isinstance(y, np.ndarray) else y.to(x.dtype)), state
