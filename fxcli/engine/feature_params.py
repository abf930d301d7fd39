"""What ``fxcli features`` computes: :class:`FeatureParams` (the library parameters of
:mod:`fxcli.features`, librosa's defaults), the kinds and the array file formats.

Arrays are ``(channels, bins, frames)``: bins are ``n_fft // 2 + 1`` frequencies
(``spectrogram``), ``n_mels`` mel bands (``mel``: power, ``logmel``: dB) or ``n_mfcc``
coefficients (``mfcc``). Nothing here imports torch until a module is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fxcli.errors import UsageError

KINDS = ("spectrogram", "mel", "logmel", "mfcc")
#: array file formats and their extensions
FEATURE_FORMATS = {"npy": ".npy", "npz": ".npz", "pt": ".pt"}


class FeatureUsageError(UsageError):
    """A feature parameter is not allowed (exit 2, before any file is touched)."""


@dataclass(frozen=True)
class FeatureParams:
    """What to compute; the library parameters (librosa's defaults)."""

    kind: str = "logmel"
    n_fft: int = 2048
    hop_length: int | None = None
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    power: float = 2.0
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    mel_scale: str = "slaney"
    norm: str | None = "slaney"
    ref: str | float | None = None  # None: "max" for logmel, 1.0 for mfcc (librosa's mfcc)
    amin: float = 1e-10
    top_db: float | None = 80.0
    n_mfcc: int = 20
    lifter: float = 0.0

    @property
    def ref_value(self) -> str | float:
        if self.ref is not None:
            return self.ref
        return 1.0 if self.kind == "mfcc" else "max"

    def build(self, fs: float) -> Any:
        """The :mod:`fxcli.features` module for input at ``fs`` Hz (raises ValueError)."""
        from fxcli import features as FT

        stft = dict(
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=self.center,
            pad_mode=self.pad_mode,
            power=self.power,
        )
        if self.kind not in KINDS:
            raise ValueError(f"kind: got {self.kind!r}; allowed: {', '.join(KINDS)}")
        if self.kind == "spectrogram":
            return FT.Spectrogram(**stft)  # type: ignore[arg-type]
        mel = dict(
            n_mels=self.n_mels,
            f_min=self.f_min,
            f_max=self.f_max,
            mel_scale=self.mel_scale,
            norm=self.norm,
        )
        if self.kind == "mel":
            return FT.MelSpectrogram(**stft, **mel, fs=fs)  # type: ignore[arg-type]
        db = dict(ref=self.ref_value, amin=self.amin, top_db=self.top_db, db_dims=None)
        if self.kind == "logmel":
            return FT.LogMelSpectrogram(**stft, **mel, **db, fs=fs)  # type: ignore[arg-type]
        return FT.MFCC(**stft, **mel, **db, n_mfcc=self.n_mfcc, lifter=self.lifter, fs=fs)  # type: ignore[arg-type]

    def to_json(self, module: Any, fs: float) -> dict[str, Any]:
        """Every parameter as used at ``fs`` (defaults resolved)."""
        spec = module.mel if hasattr(module, "from_power") else module
        out: dict[str, Any] = {
            "kind": self.kind,
            "n_fft": spec.n_fft,
            "hop_length": spec.hop_length,
            "win_length": spec.win_length,
            "window": self.window,
            "center": self.center,
            "pad_mode": self.pad_mode,
            "power": self.power,
        }
        if self.kind != "spectrogram":
            out.update(
                n_mels=self.n_mels,
                f_min=self.f_min,
                f_max=spec.f_max,
                mel_scale=self.mel_scale,
                norm=self.norm,
            )
        if self.kind in ("logmel", "mfcc"):
            out.update(ref=self.ref_value, amin=self.amin, top_db=self.top_db)
        if self.kind == "mfcc":
            out.update(n_mfcc=self.n_mfcc, lifter=self.lifter)
        return out

    def axes(self) -> list[str]:
        bins = {"spectrogram": "frequency", "mel": "mel", "logmel": "mel", "mfcc": "mfcc"}
        return ["channel", bins[self.kind], "frame"]


def check_params(params: FeatureParams) -> None:
    """Build the module once at a rate high enough for ``f_max``: option errors surface
    as :class:`FeatureUsageError` (exit 2) before any file is read."""
    fs = max(48000.0, 2.0 * (params.f_max or 0.0))
    try:
        params.build(fs)
    except ValueError as exc:
        raise FeatureUsageError.wrapping(exc) from None  # still naming its options
