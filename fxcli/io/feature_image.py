"""PNG pictures of feature arrays (``--image``): time in s, frequency in Hz (on the
mel-spaced axis for mel kinds), colour in dB (MFCC: coefficient values). Needs
matplotlib (imported only when a picture is drawn); written atomically."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fxcli.errors import UsageError
from fxcli.io.atomic import atomic_path

MATPLOTLIB_HINT = "pip install 'fxcli[plot]' (or pip install matplotlib)"
_PLOT_LOCK = threading.Lock()


def check_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError.for_option("image", f"needs matplotlib: {MATPLOTLIB_HINT}")


def _hz_ticks(lo: float, hi: float) -> list[float]:
    cands = [0, 50, 100, 200, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000]
    return [float(f) for f in cands if lo <= f <= hi]


def _set_hz_ticks(ax: Any, pos: list[float], hz: list[float], bins: int) -> None:
    """Frequency ticks at bin positions ``pos``, at least ``bins / 20`` apart."""
    keep: list[tuple[float, float]] = []
    for p, f in zip(pos, hz, strict=True):
        if -0.5 <= p <= bins and f <= 64000 and (not keep or p - keep[-1][0] >= bins / 20):
            keep.append((float(p), f))
    ax.set_yticks([p for p, _ in keep])
    ax.set_yticklabels([f"{f:g}" for _, f in keep])


def save_image(feats: Any, dest: Path, module: Any, params: Any, fs: float, title: str) -> None:
    """A PNG of ``(channels, bins, frames)`` features: time in s, frequency in Hz (on the
    mel-spaced axis for mel kinds), colour in dB (MFCC: coefficient values)."""
    import torch
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from fxcli.features import hz_to_mel, power_to_db

    spec = module.mel if hasattr(module, "from_power") else module
    x = feats
    if params.kind in ("spectrogram", "mel"):  # power (or magnitude) -> dB for display
        x = power_to_db(x.to(torch.float64) ** (2.0 / params.power), "max", 1e-10, 80.0)
    data = x.to(torch.float64).numpy()
    channels, bins, frames = data.shape
    hop_s = spec.hop_length / fs
    t0 = 0.0 if params.center else spec.n_fft / 2 / fs
    extent = (t0 - hop_s / 2, t0 + (frames - 0.5) * hop_s, -0.5, bins - 0.5)
    shown = min(channels, 8)
    with _PLOT_LOCK:
        fig = Figure(figsize=(10, 2.2 + 2.6 * shown), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(shown, 1, squeeze=False)[:, 0]
        for c, ax in enumerate(axes):
            im = ax.imshow(
                data[c], origin="lower", aspect="auto", extent=extent, cmap="magma",
                interpolation="nearest",
            )  # fmt: skip
            ax.set_xlabel("time (s)")
            if params.kind == "mfcc":
                ax.set_ylabel("MFCC coefficient")
            elif params.kind == "spectrogram":
                ticks = _hz_ticks(0.0, fs / 2) + [1000.0 * k for k in (3, 5, 6, 10, 12, 20, 24)]
                _set_hz_ticks(ax, [f * spec.n_fft / fs for f in sorted(ticks)], sorted(ticks), bins)
                ax.set_ylabel("frequency (Hz)")
            else:  # band i is centred at mel lo + (i + 1) * step
                lo, hi = hz_to_mel([spec.f_min, spec.f_max], spec.mel_scale)
                step = (hi - lo) / (spec.n_mels + 1)
                ticks = _hz_ticks(spec.f_min, spec.f_max)
                pos = (hz_to_mel(ticks, spec.mel_scale) - lo) / step - 1.0
                _set_hz_ticks(ax, list(pos), ticks, bins)
                ax.set_ylabel("frequency (Hz, mel scale)")
            label = "dB" if params.kind != "mfcc" else "coefficient"
            fig.colorbar(im, ax=ax, label=label, format="%+.0f" if label == "dB" else None)
            ch = f", channel {c}" if channels > 1 else ""
            ax.set_title(f"{title}{ch}", fontsize=9)
        with atomic_path(dest) as tmp:
            fig.savefig(str(tmp), format="png")
