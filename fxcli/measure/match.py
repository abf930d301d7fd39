"""Learn a parametric EQ that gives INPUT files the long-term spectrum of a REFERENCE
(``fxcli match``), by gradient descent through the differentiable biquads.

1. **Long-term spectra** (:func:`long_term_spectrum`): each file is streamed, its
   channels mixed (the mean of their power spectra: files with other channel counts
   than the reference are compared by that mix), cut into Hann frames of ``n_fft``
   (the power of two at or above a third of a second) with half overlap. Frames
   are gated like loudness blocks: each frame's power spectrum is added to the
   accumulator of its level class (1 dB classes), and at the end only the classes
   at or above -70 dBFS and at most 20 dB below the power-weighted mean level are
   kept, so silence and quiet passages do not pull the average (louder frames weigh
   more, as in an energy average). Several INPUT files are averaged by duration.
2. **Bands**: 1/3-octave bands (centres ``1000 * 2 ** (k / 3)`` Hz) from 50 Hz to
   16 kHz (the fit range, clipped below Nyquist); a band's level is the mean
   power of the spectrum's bins inside its edges, in dB.
3. **Model**: a low shelf, ``bands - 2`` peaking filters and a high shelf (RBJ
   cookbook, :func:`fxcli.dsp.design_torch.rbj_torch`, float64 torch), plus one
   broadband gain. The predicted output spectrum is ``|H(f)|^2`` times the input's
   at every bin, summed into the same bands: the long-term spectrum the filtered
   input will have. Frequencies and q are optimized in log space within bounds,
   gains through ``max_gain_db * tanh``: every preset written stays inside the
   preset spec's limits.
4. **Fit**: Adam, then L-BFGS, on the mean squared band error in dB; started from
   log-spaced centre frequencies, deterministic (no random draw; CPU float64).

:func:`match` returns the bands, the broadband gain and the per-band distances
before and after; :func:`preset_yaml` writes an ordinary preset (optionally with a
``loudness`` step to the reference's integrated loudness instead of the gain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fxcli.errors import FxcliError

__all__ = [
    "Spectrum",
    "MatchResult",
    "long_term_spectrum",
    "third_octave_bands",
    "band_levels_db",
    "match",
    "preset_yaml",
    "MIN_REFERENCE_SECONDS",
]

#: a REFERENCE shorter than this (after gating) gives no stable long-term spectrum
MIN_REFERENCE_SECONDS = 3.0
#: the fit range, Hz
FIT_LOW_HZ, FIT_HIGH_HZ = 50.0, 16000.0
_ABS_GATE_DB = -70.0
_REL_GATE_DB = -20.0


class MatchError(FxcliError, ValueError):
    """A file cannot be matched (silence, too short, unreadable rate): one line."""


@dataclass
class Spectrum:
    """A gated long-term power spectrum (mean power per bin, full scale = 1)."""

    fs: float
    n_fft: int
    power: np.ndarray  # (n_fft // 2 + 1,)
    seconds: float  # audio kept by the gate
    channels: int
    integrated_lufs: float = -math.inf

    @property
    def freqs(self) -> np.ndarray:
        return np.arange(self.power.shape[0]) * self.fs / self.n_fft


def fft_size(fs: float) -> int:
    """The power of two at or above ``fs / 3`` (3 Hz bins at 48 kHz: 4 bins in the
    50 Hz band)."""
    return 1 << math.ceil(math.log2(max(fs / 3.0, 256.0)))


def long_term_spectrum(path: Path, n_fft: int | None = None) -> Spectrum:
    """Stream ``path`` and return its gated long-term spectrum (module docstring).
    Raises :class:`fxcli.io.audio.AudioError` for unreadable files and
    :class:`MatchError` for silence."""
    from fxcli.dsp import loudness as L
    from fxcli.io.audio import probe, read_blocks

    info = probe(path)
    fs = float(info.samplerate)
    n = n_fft or fft_size(fs)
    hop = n // 2
    win = np.hanning(n + 1)[:-1]  # periodic Hann
    norm = 1.0 / (np.sum(win**2) * info.channels)
    classes: dict[int, list[Any]] = {}  # level class -> [sum of spectra, frames]
    meter = L.meter_init(info.channels, fs, None) if fs >= L.MIN_RATE_HZ else None
    buf = np.zeros((info.channels, 0))
    for block in read_blocks(info, max(hop * 16, 1 << 16)):
        if meter is not None:
            meter = L.meter_update(block, meter)
        buf = np.concatenate([buf, block.astype(np.float64)], axis=1)
        starts = range(0, buf.shape[1] - n + 1, hop)
        for s in starts:
            frame = buf[:, s : s + n] * win
            p = (np.abs(np.fft.rfft(frame, axis=-1)) ** 2).sum(axis=0) * norm
            level = 10.0 * math.log10(max(float(np.mean(p)) * 2.0, 1e-30))
            key = int(math.floor(level))
            acc = classes.setdefault(key, [np.zeros_like(p), 0])
            acc[0] += p
            acc[1] += 1
        if len(starts):
            buf = buf[:, starts[-1] + hop :]
    kept = {k: v for k, v in classes.items() if k >= _ABS_GATE_DB}
    if not kept:
        raise MatchError(f"{path}: silent (no frame above {_ABS_GATE_DB:g} dBFS)")
    total = sum(v[1] for v in kept.values())
    mean_power = sum(float(np.mean(v[0])) for v in kept.values()) / total
    rel = 10.0 * math.log10(mean_power * 2.0) + _REL_GATE_DB
    kept = {k: v for k, v in kept.items() if k + 1 >= rel}
    frames = sum(v[1] for v in kept.values())
    power = sum(v[0] for v in kept.values()) / frames
    return Spectrum(
        fs=fs,
        n_fft=n,
        power=power,
        seconds=frames * hop / fs,
        channels=info.channels,
        integrated_lufs=L.integrated_lufs(meter) if meter is not None else -math.inf,
    )


def third_octave_bands(fs: float, low: float = FIT_LOW_HZ, high: float = FIT_HIGH_HZ) -> np.ndarray:
    """Centres (Hz) of the 1/3-octave bands from ``low`` to ``high`` whose upper edge
    lies below Nyquist."""
    k = np.arange(-30, 15)
    c = 1000.0 * 2.0 ** (k / 3.0)
    top = min(high * 1.01, fs / 2.0 / 2 ** (1 / 6))
    return c[(c >= low * 0.99) & (c <= top)]


def _band_index(freqs: np.ndarray, centres: np.ndarray) -> list[np.ndarray]:
    edge = 2.0 ** (1.0 / 6.0)
    return [np.flatnonzero((freqs >= c / edge) & (freqs < c * edge)) for c in centres]


def band_levels_db(spec: Spectrum, centres: np.ndarray) -> np.ndarray:
    """Mean power of the bins in each band, dB (``-inf`` for an empty band)."""
    out = []
    for idx in _band_index(spec.freqs, centres):
        p = float(np.mean(spec.power[idx])) if idx.size else 0.0
        out.append(10.0 * math.log10(p) if p > 0 else -math.inf)
    return np.array(out)


@dataclass
class Band:
    kind: str  # lowshelf | peaking | highshelf
    freq_hz: float
    gain_db: float
    q: float


@dataclass
class MatchResult:
    bands: list[Band]
    gain_db: float
    centres: np.ndarray
    before_db: np.ndarray  # input band level - reference band level, per band
    after_db: np.ndarray  # predicted matched level - reference level, per band
    reference: Spectrum
    inputs: list[Spectrum] = field(default_factory=list)

    @property
    def rms_before(self) -> float:
        return float(np.sqrt(np.mean(self.before_db**2)))

    @property
    def rms_after(self) -> float:
        return float(np.sqrt(np.mean(self.after_db**2)))


def _mix(inputs: list[Spectrum]) -> Spectrum:
    """Several inputs' spectra averaged by kept duration (same rate required)."""
    if len(inputs) == 1:
        return inputs[0]
    fs = {s.fs for s in inputs}
    if len(fs) != 1:
        rates = ", ".join(f"{r:g}" for r in sorted(fs))
        raise MatchError(f"INPUT files have different sample rates ({rates} Hz); match one rate")
    w = np.array([s.seconds for s in inputs])
    power = sum(s.power * wi for s, wi in zip(inputs, w, strict=True)) / w.sum()
    return Spectrum(inputs[0].fs, inputs[0].n_fft, power, float(w.sum()), inputs[0].channels)


def match(
    reference: Spectrum,
    inputs: list[Spectrum],
    *,
    bands: int = 8,
    max_gain_db: float = 12.0,
    steps: int = 400,
) -> MatchResult:
    """Fit the EQ (module docstring). ``bands`` >= 2 (two shelves and ``bands - 2``
    peaks), gains within ``max_gain_db``."""
    import torch

    from fxcli.dsp.design_torch import rbj_torch

    if reference.seconds < MIN_REFERENCE_SECONDS:
        raise MatchError(
            f"REFERENCE holds {reference.seconds:.1f} s of audio above the gate; at least "
            f"{MIN_REFERENCE_SECONDS:g} s are needed for a long-term spectrum"
        )
    if not 2 <= bands <= 32:
        raise MatchError(f"bands: {bands}; allowed: 2 to 32")
    src = _mix(inputs)
    fs = src.fs
    centres = third_octave_bands(min(fs, reference.fs))
    ref_db = band_levels_db(reference, centres)
    in_db = band_levels_db(src, centres)
    usable = np.isfinite(ref_db) & np.isfinite(in_db)
    if usable.sum() < 6:
        raise MatchError("too few 1/3-octave bands hold energy in both REFERENCE and INPUT")
    centres, ref_db, in_db = centres[usable], ref_db[usable], in_db[usable]
    idx = _band_index(src.freqs, centres)
    all_bins = np.concatenate(idx)
    f_bins = torch.from_numpy(src.freqs[all_bins])
    p_bins = torch.from_numpy(src.power[all_bins])
    seg = torch.from_numpy(np.repeat(np.arange(len(idx)), [len(i) for i in idx]))
    counts = torch.from_numpy(np.array([len(i) for i in idx], dtype=np.float64))
    target = torch.from_numpy(ref_db)
    z1 = torch.exp(-2j * math.pi * f_bins / fs)
    nyq = fs / 2.0
    lo_f, hi_f = math.log(20.0), math.log(min(0.45 * fs, 20000.0))
    kinds = ["lowshelf", *(["peaking"] * (bands - 2)), "highshelf"]
    init_f = np.geomspace(max(FIT_LOW_HZ * 2, 80.0), min(FIT_HIGH_HZ / 2, 0.4 * nyq), bands)

    def inv_sig(v: float) -> float:
        v = min(max(v, 1e-6), 1 - 1e-6)
        return math.log(v / (1 - v))

    u_f = torch.tensor([inv_sig((math.log(f) - lo_f) / (hi_f - lo_f)) for f in init_f],
                       dtype=torch.float64, requires_grad=True)  # fmt: skip
    u_g = torch.zeros(bands, dtype=torch.float64, requires_grad=True)
    q_lo, q_hi = math.log(0.3), math.log(8.0)
    u_q = torch.full((bands,), inv_sig((math.log(1.0) - q_lo) / (q_hi - q_lo)),
                     dtype=torch.float64, requires_grad=True)  # fmt: skip
    u_b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    params = [u_f, u_g, u_q, u_b]

    def decode() -> tuple[Any, Any, Any, Any]:
        f = torch.exp(lo_f + (hi_f - lo_f) * torch.sigmoid(u_f))
        g = max_gain_db * torch.tanh(u_g / max(max_gain_db, 1e-9) * 4.0)
        q = torch.exp(q_lo + (q_hi - q_lo) * torch.sigmoid(u_q))
        b = 24.0 * torch.tanh(u_b / 24.0)
        return f, g, q, b

    def predicted_db() -> Any:
        f, g, q, b = decode()
        h2 = torch.ones_like(f_bins)
        for i, kind in enumerate(kinds):
            s = rbj_torch(kind, f[i], fs, q=q[i], gain_db=g[i])[0]
            num = s[0] + s[1] * z1 + s[2] * z1 * z1
            den = s[3] + s[4] * z1 + s[5] * z1 * z1
            h2 = h2 * (num.abs() ** 2 / den.abs() ** 2)
        bandp = torch.zeros(len(idx), dtype=torch.float64).index_add(0, seg, p_bins * h2) / counts
        return 10.0 * torch.log10(bandp) + b

    def loss_fn() -> Any:
        return torch.mean((predicted_db() - target) ** 2)

    opt = torch.optim.Adam(params, lr=0.05)
    for i in range(steps):
        for group in opt.param_groups:
            group["lr"] = 0.05 * (0.5 * (1 + math.cos(math.pi * i / steps)) * 0.9 + 0.1)
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    lbfgs = torch.optim.LBFGS(params, lr=1.0, max_iter=120, line_search_fn="strong_wolfe")

    def closure() -> Any:
        lbfgs.zero_grad()
        v = loss_fn()
        v.backward()
        return v

    lbfgs.step(closure)
    with torch.no_grad():
        f, g, q, b = decode()
        after = (predicted_db() - target).numpy()
    fitted = [Band(k, float(f[i]), float(g[i]), float(q[i])) for i, k in enumerate(kinds)]
    return MatchResult(
        bands=fitted,
        gain_db=float(b),
        centres=centres,
        before_db=in_db - ref_db,
        after_db=after,
        reference=reference,
        inputs=inputs,
    )


def preset_yaml(result: MatchResult, *, reference_name: str, loudness: bool = False) -> str:
    """An ordinary preset of the fitted bands (gain, or a ``loudness`` step to the
    reference's integrated loudness with ``loudness``)."""
    lines = [
        "version: 1",
        "description: >-",
        f"  EQ matched to {reference_name} by fxcli match ({len(result.bands)} bands); "
        f"1/3-octave distance {result.rms_before:.2f} dB RMS before, "
        f"{result.rms_after:.2f} dB after ({FIT_LOW_HZ:g} Hz-{FIT_HIGH_HZ / 1000:g} kHz)",
        "chain:",
    ]
    for b in result.bands:
        lines.append(
            f"  - {{type: {b.kind}, freq_hz: {b.freq_hz:.6g}, gain_db: {b.gain_db:.4f}, "
            f"q: {b.q:.6g}}}"
        )
    ref_lufs = result.reference.integrated_lufs
    if loudness and math.isfinite(ref_lufs):
        lines.append(f"  - {{type: loudness, target_lufs: {max(ref_lufs, -70.0):.2f}}}")
    else:
        lines.append(f"  - {{type: gain, gain_db: {result.gain_db:.4f}}}")
    return "\n".join(lines) + "\n"
