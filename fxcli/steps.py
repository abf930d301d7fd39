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

:func:`build_step` turns a validated preset step into one of these for a
sample rate; :func:`fuse` merges consecutive IIR steps and gains into one
cascade and consecutive FIR steps into one kernel (the engine runs the fused
chain; outputs equal the unfused chain within float rounding).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fxcli.dsp import design as D
from fxcli.dsp.firfilt import firfilt
from fxcli.dsp.sosfilt import sosfilt
from fxcli.preset.loader import PresetError, StepConfig


class Step(nn.Module):
    """Base class of chain steps (see the module docstring for the protocol)."""

    needs_analysis = False
    label = "step"

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
        if state is None:
            y, st = self.process(x, self.init_state(tuple(x.shape[:-1]), x.device))
            tail, _ = self.flush(st)
            return y if tail is None else torch.cat([y, tail.to(y.dtype)], dim=-1)
        return self.process(x, state)


class IIR(Step):
    """A cascade of second-order sections, ``sos`` of shape (S, 6), float64.

    State: ``(S, *batch, 2)`` float64 transposed-direct-form-II states (SciPy layout).
    """

    sos: Tensor

    def __init__(self, sos: np.ndarray | Tensor, label: str = "iir") -> None:
        super().__init__()
        self.register_buffer("sos", torch.as_tensor(np.asarray(sos), dtype=torch.float64))
        self.label = label

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        return torch.zeros((self.sos.shape[0], *batch_shape, 2), dtype=torch.float64, device=device)

    def process(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        return sosfilt(x, self.sos, state)


class FIR(Step):
    """An FIR filter with ``taps`` of shape (K,), float64.

    State: the last K-1 input samples, ``(*batch, K-1)`` float64.
    """

    taps: Tensor

    def __init__(self, taps: np.ndarray | Tensor, label: str = "fir") -> None:
        super().__init__()
        self.register_buffer("taps", torch.as_tensor(np.asarray(taps), dtype=torch.float64))
        self.label = label

    def init_state(self, batch_shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        k = self.taps.shape[0]
        return torch.zeros((*batch_shape, k - 1), dtype=torch.float64, device=device)

    def process(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        return firfilt(x, self.taps, state)


class Gain(Step):
    """A constant linear gain (stateless); fuses into adjacent IIR cascades."""

    def __init__(self, gain: float, label: str = "gain") -> None:
        super().__init__()
        self.gain = float(gain)
        self.label = label

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        if self.gain == 1.0:
            return x, state
        return (x.to(torch.float64) * self.gain).to(x.dtype), state


class Normalize(Step):
    """Peak normalization: needs a measuring pass over the chain's output up to here.

    :meth:`measure` folds chunks into a running peak; :meth:`resolve` returns the
    :class:`Gain` that brings that peak to ``peak_db`` dBFS (unity for silence).
    """

    needs_analysis = True

    def __init__(self, peak_db: float = -1.0, label: str = "normalize") -> None:
        super().__init__()
        self.peak_db = float(peak_db)
        self.label = label

    def measure(self, acc: float | None, y: Tensor) -> float:
        peak = float(y.abs().max()) if y.numel() else 0.0
        return peak if acc is None else max(acc, peak)

    def resolve(self, acc: float | None) -> Step:
        peak = acc or 0.0
        gain = 1.0 if peak == 0.0 else 10.0 ** (self.peak_db / 20.0) / peak
        return Gain(gain, label=self.label)

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise RuntimeError(
            "normalize needs a measuring pass: run the chain through fxcli.engine, "
            "or call measure()/resolve() and use the returned Gain"
        )


def _iir_sos(cfg: StepConfig, fs: float) -> np.ndarray:
    p = cfg.params
    t = cfg.type
    if t in ("highpass", "lowpass"):
        return D.iir_pass(
            t, p["cutoff_hz"], fs, p["order"], p["design"], p["ripple_db"], p["attenuation_db"]
        )
    if t in ("bandpass", "bandstop"):
        return D.iir_pass(
            t,
            [p["low_hz"], p["high_hz"]],
            fs,
            p["order"],
            p["design"],
            p["ripple_db"],
            p["attenuation_db"],
        )
    if t == "peaking":
        return D.rbj("peaking", p["freq_hz"], fs, q=p["q"], gain_db=p["gain_db"])
    if t in ("lowshelf", "highshelf"):
        return D.rbj(
            t, p["freq_hz"], fs, q=p["q"] or 0.7071, gain_db=p["gain_db"], slope=p["slope"]
        )
    if t in ("notch", "allpass"):
        return D.rbj(t, p["freq_hz"], fs, q=p["q"])
    raise AssertionError(t)  # pragma: no cover


def build_step(cfg: StepConfig, fs: float) -> Step:
    """Design one validated preset step for sample rate ``fs`` (Hz).

    Raises :class:`PresetError` naming the step (file, line, index, type) when the
    design is impossible at this rate (e.g. a cutoff at or above Nyquist).
    """
    label = f"step {cfg.index} ({cfg.type})"
    p = cfg.params
    try:
        if cfg.type == "gain":
            return Gain(10.0 ** (p["gain_db"] / 20.0), label=label)
        if cfg.type == "normalize":
            return Normalize(p["peak_db"], label=label)
        if cfg.type == "fir":
            if p["coefficients"] is not None:
                return FIR(np.asarray(p["coefficients"], dtype=np.float64), label=label)
            window = p["window"]
            return FIR(D.fir_window(p["taps"], p["cutoff_hz"], fs, p["pass"], window), label)
        return IIR(_iir_sos(cfg, fs), label=label)
    except D.DesignError as exc:
        raise PresetError(f"{cfg.where}: {exc}") from None


def fuse(steps: list[Step]) -> list[Step]:
    """Merge runs of IIR steps and gains into one IIR cascade (a gain scales the
    numerator of an adjacent section, costing nothing per sample), and runs of FIR
    steps into one FIR (taps convolved). Analysis steps (normalize) are barriers."""
    out: list[Step] = []
    for step in steps:
        prev = out[-1] if out else None
        label = f"{prev.label} + {step.label}" if prev is not None else step.label
        if isinstance(step, Gain) and isinstance(prev, Gain):
            out[-1] = Gain(prev.gain * step.gain, label=label)
        elif isinstance(step, (IIR, Gain)) and isinstance(prev, (IIR, Gain)):
            if isinstance(prev, IIR) and isinstance(step, IIR):
                sos = np.concatenate([prev.sos.cpu().numpy(), step.sos.cpu().numpy()])
            elif isinstance(prev, IIR) and isinstance(step, Gain):
                sos = prev.sos.cpu().numpy().copy()
                sos[-1, :3] *= step.gain
            else:
                assert isinstance(prev, Gain) and isinstance(step, IIR)
                sos = step.sos.cpu().numpy().copy()
                sos[0, :3] *= prev.gain
            out[-1] = IIR(sos, label=label)
        elif isinstance(step, FIR) and isinstance(prev, FIR):
            taps = np.convolve(prev.taps.cpu().numpy(), step.taps.cpu().numpy())
            out[-1] = FIR(taps, label=label)
        else:
            out.append(step)
    return out
