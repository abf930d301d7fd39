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
from fxcli.dsp.fir import firfilt
from fxcli.dsp.iir import sosfilt
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
    """Peak or RMS normalization: needs a measuring pass over the chain's output up to here.

    :meth:`measure` folds chunks into a running peak (``peak_db``) or sum of squares
    (``rms_db``, over all channels and frames); :meth:`resolve` returns the
    :class:`Gain` that brings the measurement to the target (unity for silence).
    """

    needs_analysis = True

    def __init__(
        self,
        peak_db: float | None = None,
        rms_db: float | None = None,
        *,
        label: str = "normalize",
        fs: float | None = None,
    ) -> None:
        """``peak_db`` (dBFS, default -1 when neither is given) or ``rms_db`` (dBFS)."""
        super().__init__()
        if rms_db is not None and peak_db is not None:
            raise ValueError("peak_db and rms_db exclude each other; give one")
        self.rms_db = None if rms_db is None else float(rms_db)
        self.peak_db = float(-1.0 if peak_db is None else peak_db)
        self.label = label

    def measure(self, acc: tuple[float, int] | None, y: Tensor) -> tuple[float, int]:
        prev, count = acc if acc is not None else (0.0, 0)
        if not y.numel():
            return prev, count
        if self.rms_db is None:
            return max(prev, float(y.abs().max())), count + y.numel()
        return prev + float(torch.sum(y.to(torch.float64) ** 2)), count + y.numel()

    def resolve(self, acc: tuple[float, int] | None) -> Step:
        value, count = acc if acc is not None else (0.0, 0)
        if self.rms_db is None:
            level, target = value, self.peak_db
        else:
            level, target = (value / count) ** 0.5 if count else 0.0, self.rms_db
        gain = 1.0 if level == 0.0 else 10.0 ** (target / 20.0) / level
        return Gain(gain, label=self.label)

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise RuntimeError(
            "normalize needs a measuring pass: run the chain through fxcli.engine, "
            "or call measure()/resolve() and use the returned Gain"
        )


def _filter_step(cfg: StepConfig, fs: float, label: str) -> Step:
    """The :mod:`fxcli.filter` class for a filter step (the same objects the library
    exports: a ``highpass`` with ``design: butterworth`` is a ``HiButterworth``)."""
    from fxcli import filter as F

    p = cfg.params
    t = cfg.type
    if t in ("highpass", "lowpass"):
        named = {
            ("highpass", "butterworth"): F.HiButterworth,
            ("lowpass", "butterworth"): F.LoButterworth,
            ("highpass", "chebyshev1"): F.HiChebyshev1,
            ("lowpass", "chebyshev1"): F.LoChebyshev1,
            ("highpass", "chebyshev2"): F.HiChebyshev2,
            ("lowpass", "chebyshev2"): F.LoChebyshev2,
            ("highpass", "elliptic"): F.HiElliptic,
            ("lowpass", "elliptic"): F.LoElliptic,
            ("highpass", "bessel"): F.HiBessel,
            ("lowpass", "bessel"): F.LoBessel,
            ("highpass", "linkwitz_riley"): F.HiLinkwitzRiley,
            ("lowpass", "linkwitz_riley"): F.LoLinkwitzRiley,
        }
        cls = named[(t, p["design"])]
        return cls(
            p["cutoff_hz"],
            order=p["order"],
            ripple_db=p["ripple_db"],
            attenuation_db=p["attenuation_db"],
            fs=fs,
            label=label,
        )
    if t in ("bandpass", "bandstop"):
        band = F.Bandpass if t == "bandpass" else F.Bandstop
        return band(
            p["low_hz"],
            p["high_hz"],
            p["order"],
            p["design"],
            p["ripple_db"],
            p["attenuation_db"],
            fs=fs,
            label=label,
        )
    if t == "peaking":
        return F.Peaking(p["freq_hz"], p["gain_db"], p["q"], fs=fs, label=label)
    if t in ("lowshelf", "highshelf"):
        shelf = F.LoShelving if t == "lowshelf" else F.HiShelving
        return shelf(p["freq_hz"], p["gain_db"], p["q"], fs=fs, slope=p["slope"], label=label)
    if t in ("notch", "allpass"):
        biquad = F.Notch if t == "notch" else F.AllPass
        return biquad(p["freq_hz"], p["q"], fs=fs, label=label)
    if t == "fir":
        if p["coefficients"] is not None:
            return FIR(np.asarray(p["coefficients"], dtype=np.float64), label=label)
        return F.DesignableFIR(
            p["taps"], p["cutoff_hz"], fs, window=p["window"], pass_type=p["pass"], label=label
        )
    raise AssertionError(t)  # pragma: no cover


# step type -> (module, class) of the effects, imported when first used
_EFFECTS = {
    "compressor": ("fxcli.effects.dynamics", "Compressor"),
    "limiter": ("fxcli.effects.dynamics", "Limiter"),
    "gate": ("fxcli.effects.dynamics", "Gate"),
    "expander": ("fxcli.effects.dynamics", "Expander"),
    "loudness": ("fxcli.effects.loudness", "Loudness"),
    "fade": ("fxcli.effects.edit", "Fade"),
    "trim": ("fxcli.effects.edit", "Trim"),
    "pad": ("fxcli.effects.edit", "Pad"),
    "delay": ("fxcli.effects.delay", "Delay"),
    "resample": ("fxcli.effects.resample", "Resample"),
    "convolve": ("fxcli.effects.space", "Convolve"),
    "reverb": ("fxcli.effects.space", "Reverb"),
}


def dc_block_sos(cutoff_hz: float, fs: float) -> np.ndarray:
    """One-pole DC blocker ``y[n] = x[n] - x[n-1] + R y[n-1]``, ``R = exp(-2 pi fc / fs)``,
    as one second-order section (so it fuses into IIR cascades)."""
    if not 0 < cutoff_hz < fs / 2:
        raise D.DesignError(f"cutoff_hz {cutoff_hz:g} must be below Nyquist ({fs / 2:g} Hz)")
    r = float(np.exp(-2.0 * np.pi * cutoff_hz / fs))
    return np.array([[1.0, -1.0, 0.0, 1.0, -r, 0.0]])


def build_step(cfg: StepConfig, fs: float, channels: int | None = None) -> Step:
    """Design one validated preset step for input at ``fs`` Hz with ``channels`` channels.

    Raises :class:`PresetError` naming the step (file, line, index, type) when the
    step is impossible for this input (a cutoff at or above Nyquist, a remix matrix
    whose columns do not match the channels, an unreadable impulse response).
    """
    import importlib

    label = f"step {cfg.index} ({cfg.type})"
    p = cfg.params
    try:
        if cfg.type == "gain":
            return Gain(10.0 ** (p["gain_db"] / 20.0), label=label)
        if cfg.type == "polarity":
            return Gain(-1.0, label=label)
        if cfg.type == "normalize":
            return Normalize(p["peak_db"], p["rms_db"], label=label)
        if cfg.type == "dc_block":
            return IIR(dc_block_sos(p["cutoff_hz"], fs), label=label)
        if cfg.type == "remix":
            from fxcli.effects.edit import Remix

            if channels is None:
                raise ValueError("remix needs the input channel count")
            return Remix(p["matrix"], p["to"], channels=channels, label=label)
        if cfg.type in _EFFECTS:
            module, name = _EFFECTS[cfg.type]
            cls = getattr(importlib.import_module(module), name)
            step: Step = cls(**p, fs=fs, label=label)
            return step
        return _filter_step(cfg, fs, label)
    except (D.DesignError, ValueError) as exc:
        if isinstance(exc, PresetError):
            raise
        raise PresetError(f"{cfg.where}: {str(exc).splitlines()[0]}") from None


def build_chain(cfgs: list[StepConfig], fs: float, channels: int) -> list[Step]:
    """Design every step in order; each is designed for the rate and channel count
    produced by the steps before it (a filter after ``resample`` uses the new rate)."""
    steps = []
    for cfg in cfgs:
        step = build_step(cfg, fs, channels)
        steps.append(step)
        fs, channels = step.output_rate(fs), step.output_channels(channels)
    return steps


def chain_output(steps: list[Step], fs: float, channels: int) -> tuple[float, int]:
    """(rate, channels) at the end of a designed chain for the given input."""
    for step in steps:
        fs, channels = step.output_rate(fs), step.output_channels(channels)
    return fs, channels


def _fusable(step: Step) -> bool:
    """Steps whose coefficients carry gradients (learnable filters) are not fused:
    fusing goes through float64 numpy copies of the coefficients."""
    if any(p.requires_grad for p in step.parameters()):
        return False
    return not any(b.requires_grad for b in step.buffers())


def fuse(steps: list[Step]) -> list[Step]:
    """Merge runs of IIR steps and gains into one IIR cascade (a gain scales the
    numerator of an adjacent section, costing nothing per sample), and runs of FIR
    steps into one FIR (taps convolved). Analysis steps (normalize) are barriers."""
    out: list[Step] = []
    for step in steps:
        prev = out[-1] if out else None
        if not (_fusable(step) and (prev is None or _fusable(prev))):
            out.append(step)
            continue
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
