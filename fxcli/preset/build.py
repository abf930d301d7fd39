"""From a validated preset to designed steps: one class per step type.

:func:`build_step` designs one preset step for the rate and channel count it will
run at; :func:`build_chain` designs a whole chain (a filter after ``resample`` is
designed at the new rate).

The filter and gain steps are imported here; the other step modules (which import
torch) only when a preset uses them, so a filter chain on the torch-free CPU path
never loads torch (:mod:`fxcli.steps.module`).
"""

from __future__ import annotations

import numpy as np

from fxcli.dsp import design as D
from fxcli.preset.loader import PresetError, StepConfig
from fxcli.steps import filters as F
from fxcli.steps.base import FIR, Step
from fxcli.steps.gain import Gain, Normalize, Polarity

__all__ = ["build_chain", "build_step"]


def _filter_step(cfg: StepConfig, fs: float, label: str) -> Step:
    """The :mod:`fxcli.filter` class for a filter step (the same objects the library
    exports: a ``highpass`` with ``design: butterworth`` is a ``HiButterworth``)."""
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
        if p["design"] == "linkwitz_riley":  # no ripple or stopband to set
            return cls(p["cutoff_hz"], p["order"], fs=fs, label=label)
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
            order=p["order"],
            design=p["design"],
            ripple_db=p["ripple_db"],
            attenuation_db=p["attenuation_db"],
            fs=fs,
            label=label,
        )
    if t == "peaking":
        return F.Peaking(p["freq_hz"], gain_db=p["gain_db"], q=p["q"], fs=fs, label=label)
    if t in ("lowshelf", "highshelf"):
        shelf = F.LoShelving if t == "lowshelf" else F.HiShelving
        return shelf(
            p["freq_hz"], gain_db=p["gain_db"], q=p["q"], fs=fs, slope=p["slope"], label=label
        )
    if t in ("notch", "allpass"):
        biquad = F.Notch if t == "notch" else F.AllPass
        return biquad(p["freq_hz"], p["q"], fs=fs, label=label)
    if t == "fir":
        if p["coefficients"] is not None:
            return FIR(np.asarray(p["coefficients"], dtype=np.float64), label=label)
        return F.DesignableFIR(
            p["cutoff_hz"], p["taps"], fs, window=p["window"], pass_type=p["pass"], label=label
        )
    raise AssertionError(t)  # pragma: no cover


def _effect_class(t: str) -> type[Step] | None:
    """The class of an effect step type (its module imported on first use), or None."""
    if t in ("compressor", "limiter", "gate", "expander"):
        from fxcli.steps import dynamics

        return {
            "compressor": dynamics.Compressor,
            "limiter": dynamics.Limiter,
            "gate": dynamics.Gate,
            "expander": dynamics.Expander,
        }[t]
    if t == "loudness":
        from fxcli.steps.loudness import Loudness

        return Loudness
    if t in ("fade", "trim", "pad"):
        from fxcli.steps import edit

        return {"fade": edit.Fade, "trim": edit.Trim, "pad": edit.Pad}[t]
    if t == "delay":
        from fxcli.steps.delay import Delay

        return Delay
    if t == "resample":
        from fxcli.steps.resample import Resample

        return Resample
    if t in ("convolve", "reverb"):
        from fxcli.steps import space

        return space.Convolve if t == "convolve" else space.Reverb
    return None


def build_step(cfg: StepConfig, fs: float, channels: int | None = None) -> Step:
    """Design one validated preset step for input at ``fs`` Hz with ``channels`` channels.

    Raises :class:`PresetError` naming the step (file, line, index, type) when the
    step is impossible for this input (a cutoff at or above Nyquist, a remix matrix
    whose columns do not match the channels, an unreadable impulse response).
    """
    label = f"step {cfg.index} ({cfg.type})"
    p = cfg.params
    try:
        if cfg.type == "gain":
            return Gain(gain_db=p["gain_db"], label=label)
        if cfg.type == "polarity":
            return Polarity(label=label)
        if cfg.type == "normalize":
            return Normalize(peak_db=p["peak_db"], rms_db=p["rms_db"], label=label)
        if cfg.type == "dc_block":
            return F.DCBlock(p["cutoff_hz"], fs, label=label)
        if cfg.type == "remix":
            from fxcli.steps.edit import Remix

            if channels is None:
                raise ValueError("remix needs the input channel count")
            return Remix(
                p["matrix"],
                p["to"],
                channels=channels,
                to_channels=p.get("to_channels"),
                label=label,
            )
        effect = _effect_class(cfg.type)
        if effect is not None:
            step: Step = effect(**p, fs=fs, label=label)
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
