"""``fxcli features``: spectrograms, mel/log-mel spectrograms or MFCCs, one array per file.

For every input file: optionally run a preset's chain (the same engine as ``process``:
designed once per rate, analysis passes, state carried across chunks), then compute
features with :mod:`fxcli.features` and write one array per file, atomically.

- Arrays are ``(channels, bins, frames)``: bins are ``n_fft // 2 + 1`` frequencies
  (``spectrogram``), ``n_mels`` mel bands (``mel``: power, ``logmel``: dB) or ``n_mfcc``
  coefficients (``mfcc``); channels are those of the chain's output (1 after the
  ``dataset`` preset). dtype ``--dtype`` (float32 by default, for every input: the
  audio runs through the chain and the transform in that dtype).
- Short files (at most one chunk and 2**19 samples on CPU, 2**22 on CUDA) are read
  and run through the chain whole, then batched on the device: grouped by rate,
  channels and dtype, sorted by length, zero-padded to the longest of a batch (at most
  25 % longer than the shortest) and cut back to each file's own frames. Longer files
  stream chunk by chunk through
  :meth:`fxcli.features.Spectrogram.process`. Either way each file's array equals the
  library's ``forward`` on the whole (chain-processed) signal, bit for bit on CPU (the
  frame grid and the mel matmul's blocks are anchored at the file start; with
  ``pad_mode reflect`` only files of equal length share a batch).
- dB (``logmel``, ``mfcc``): ``ref max`` and ``top_db`` are relative to the maximum over
  the whole file (all channels), as ``librosa.power_to_db`` on the file's array.
- ``index.jsonl`` in OUTPUT lists every array written (merged with an existing index:
  entries of outputs rewritten now are replaced): input, output and image (relative to
  the index), shape, axes, dtype, sample rate of the features' input, hop in seconds,
  duration, kind and every parameter, so a training pipeline can load the set
  without reading audio. Each finished file's line is appended (and flushed) as it is
  reported, so arrays finished before a kill are indexed; the index is rewritten
  merged (one line per output) at the end. A ``--skip-existing`` rerun indexes arrays
  that exist but are missing from the index (their header and the input's are read).
  An index that is not UTF-8 JSON lines text is a usage error (exit 2), before any work.
- Outputs (arrays, PNGs, the index) are written to a temporary file in the
  destination folder, fsynced and renamed.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fxcli.cli.options import (
    MAX_CHUNK_SECONDS,
    InputListOpt,
    JsonOpt,
    NonFinite,
    OverwriteOpt,
    ProgressMode,
    ProgressOpt,
    QuietOpt,
    SkipExistingOpt,
    ThreadsOpt,
    apply_threads,
    check_inputs_and_output,
    check_number,
    cli_text,
    fail,
)
from fxcli.cli.report import Reporter
from fxcli.errors import UsageError
from fxcli.io.atomic import atomic_path

KINDS = ("spectrogram", "mel", "logmel", "mfcc")
FEATURE_FORMATS = {"npy": ".npy", "npz": ".npz", "pt": ".pt"}
INDEX_NAME = "index.jsonl"
#: samples (frames x channels, padded) per batch of short files. On CPU small batches
#: keep each batch's STFT in cache (32 x 10 s at 16 kHz in one batch ran at half the
#: speed of 4 x 10 s); on CUDA large ones amortize the kernel launches.
BATCH_SAMPLES_CPU = 1 << 19
BATCH_SAMPLES_CUDA = 1 << 24
#: a file is batched ("short") when it fits one chunk and has at most this many samples
#: (a window of 64 short files is held at once); longer files stream
SHORT_SAMPLES_CPU = 1 << 19
SHORT_SAMPLES_CUDA = 1 << 22
#: files in flight at once (read, batched, written, reported in input order)
WINDOW_FILES = 64
#: a batch's longest file is at most this much longer than its shortest
MAX_PAD_RATIO = 1.25
MATPLOTLIB_HINT = "pip install 'fxcli[plot]' (or pip install matplotlib)"


# ---------------------------------------------------------------------------- command
class FeatureDtype(str, Enum):
    float32 = "float32"
    float64 = "float64"


class FeatureKind(str, Enum):
    spectrogram = "spectrogram"
    mel = "mel"
    logmel = "logmel"
    mfcc = "mfcc"


if TYPE_CHECKING:  # the members are built below from FEATURE_FORMATS

    class FeatureFormat(str, Enum):
        npy = "npy"

else:
    FeatureFormat = Enum("FeatureFormat", {name: name for name in FEATURE_FORMATS}, type=str)


class PadMode(str, Enum):
    constant = "constant"
    reflect = "reflect"


class MelScale(str, Enum):
    slaney = "slaney"
    htk = "htk"


class MelNorm(str, Enum):
    slaney = "slaney"
    none = "none"


def features(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="INPUT... OUTPUT: files, folders (mirrored under OUTPUT), quoted globs, or - "
            "(paths on stdin); the last path is the OUTPUT folder (or an .npy/.npz/.pt file "
            "for one input)."
        ),
    ],
    kind: Annotated[FeatureKind, typer.Option(help="What to compute.")] = FeatureKind.logmel,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset", "-p", help="Run this preset's chain first (file or bundled name)."
        ),
    ] = None,
    n_fft: Annotated[int, typer.Option(help="FFT size in samples.")] = 2048,
    hop_length: Annotated[
        int | None, typer.Option(help="Samples between frames [default: win-length // 4].")
    ] = None,
    win_length: Annotated[
        int | None, typer.Option(help="Window length in samples [default: n-fft].")
    ] = None,
    window: Annotated[
        str, typer.Option(help="Window name for scipy.signal.get_window (periodic).")
    ] = "hann",
    center: Annotated[
        bool, typer.Option(help="Centre frames on their time (pad n-fft // 2 each side).")
    ] = True,
    pad_mode: Annotated[PadMode, typer.Option(help="Padding with --center.")] = PadMode.constant,
    power: Annotated[
        float, typer.Option(help="Exponent of the magnitude (2 power, 1 magnitude).")
    ] = 2.0,
    n_mels: Annotated[int, typer.Option(help="Mel bands.")] = 128,
    f_min: Annotated[float, typer.Option(help="Lowest mel edge in Hz.")] = 0.0,
    f_max: Annotated[
        float | None, typer.Option(help="Highest mel edge in Hz [default: half the rate].")
    ] = None,
    mel_scale: Annotated[MelScale, typer.Option(help="Mel scale formula.")] = MelScale.slaney,
    norm: Annotated[
        MelNorm, typer.Option(help="Mel filter normalization (slaney: equal area).")
    ] = MelNorm.slaney,
    ref: Annotated[
        str | None,
        typer.Option(help="dB reference: max, or a power value [default: max; mfcc: 1.0]."),
    ] = None,
    amin: Annotated[float, typer.Option(help="Floor of the power before the log.")] = 1e-10,
    top_db: Annotated[
        str, typer.Option(help="Clip dB values this far below the file's maximum (or none).")
    ] = "80",
    n_mfcc: Annotated[int, typer.Option(help="MFCC coefficients.")] = 20,
    lifter: Annotated[float, typer.Option(help="MFCC liftering (0: none).")] = 0.0,
    fmt: Annotated[
        FeatureFormat, typer.Option("--format", help="Array file format.")
    ] = FeatureFormat.npy,
    image: Annotated[
        bool, typer.Option("--image", help="Also write a PNG per file (needs matplotlib).")
    ] = False,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    chunk_seconds: Annotated[
        float | None,
        typer.Option(help="Seconds per chunk; longer files stream, shorter ones are batched."),
    ] = None,
    overwrite: OverwriteOpt = False,
    skip_existing: SkipExistingOpt = False,
    json_mode: JsonOpt = False,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.auto,
    input_list: InputListOpt = None,
    jobs: Annotated[
        int | None, typer.Option(help="Files read and run through the chain at once.")
    ] = None,
    nonfinite: Annotated[
        NonFinite, typer.Option(help="NaN/Inf input samples: error or zero.")
    ] = NonFinite.error,
    shard: Annotated[
        str | None,
        typer.Option(help="K/N: compute only shard K (0..N-1) of the sorted input list."),
    ] = None,
    threads: ThreadsOpt = None,
    dtype: Annotated[
        FeatureDtype,
        typer.Option(
            "--dtype",
            help="Array dtype, for every input (the audio is computed in it too): float32 "
            "or float64.",
        ),
    ] = FeatureDtype.float32,
) -> None:
    """Compute spectrograms, mel/log-mel spectrograms or MFCCs; one array per file.

    Arrays are (channels, bins, frames); index.jsonl in OUTPUT lists them with their
    shape, rate and parameters. Defaults are librosa's (hann, centred with zero
    padding, power 2, slaney mel scale and norm, ref max, amin 1e-10, top_db 80).

    \b
    Examples:
      fxcli features corpus/ feats/ --preset dataset --kind logmel --image
      fxcli features take.wav feats/ --kind mfcc --n-mfcc 13 --format npz
      fxcli features 'in/**/*.flac' feats/ --n-fft 1024 --hop-length 512 --n-mels 64

    Exit codes: 0 all done, 1 some files failed, 2 usage or preset error, 130 interrupted.
    """
    from fxcli.io.paths import UsageError

    apply_threads(threads)
    from fxcli.preset.loader import PresetError

    policy = check_inputs_and_output(paths, input_list, overwrite, skip_existing)
    check_number("--chunk-seconds", chunk_seconds, above=0, at_most=MAX_CHUNK_SECONDS)
    check_number("--power", power, above=0)
    check_number("--f-min", f_min, at_least=0)
    check_number("--f-max", f_max, above=0)
    check_number("--amin", amin, above=0)
    check_number("--lifter", lifter, at_least=0)
    ref_value: str | float | None = ref
    if ref is not None and ref != "max":
        try:
            ref_value = float(ref)
        except ValueError:
            fail(f"--ref {ref!r}: allowed: max or a positive number")
        if not (math.isfinite(ref_value) and ref_value > 0):
            fail(f"--ref {ref!r}: allowed: max or a positive number")
    try:
        top = None if top_db.strip().lower() == "none" else float(top_db)
    except ValueError:
        fail(f"--top-db {top_db!r}: allowed: a number >= 0 or none")
    if top is not None and not (math.isfinite(top) and top >= 0):
        fail(f"--top-db {top_db!r}: allowed: a number >= 0 or none")
    params = FeatureParams(
        kind=kind.value,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode.value,
        power=power,
        n_mels=n_mels,
        f_min=f_min,
        f_max=f_max,
        mel_scale=mel_scale.value,
        norm=None if norm is MelNorm.none else norm.value,
        ref=ref_value,
        amin=amin,
        top_db=top,
        n_mfcc=n_mfcc,
        lifter=lifter,
    )
    try:
        opts = FeatureOptions(
            params=params,
            preset_name=preset,
            out_fmt=fmt.value,
            image=image,
            device=device,
            chunk_seconds=chunk_seconds,
            overwrite=policy,
            json_mode=json_mode,
            quiet=quiet,
            progress=progress.value,
            input_list=input_list,
            jobs=jobs,
            nonfinite=nonfinite.value,
            shard=shard,
            dtype=dtype.value,
        )
        code = run_features(paths[:-1], Path(paths[-1]), opts)
    except (UsageError, PresetError, FeatureUsageError) as exc:
        fail(exc)
    raise typer.Exit(code)


class FeatureUsageError(UsageError):
    """An option value is not allowed (exit 2, before any file is touched)."""


# ---------------------------------------------------------------------------- parameters
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
        raise FeatureUsageError(cli_text(exc)) from None


# ---------------------------------------------------------------------------- results
@dataclass
class FeatureResult:
    """What happened to one file; ``to_json()`` is the ``--json`` line."""

    input: str
    output: str
    status: str  # ok | failed | skipped
    frames: int = 0  # input frames read
    seconds: float = 0.0
    sample_rate: int | None = None
    channels: int | None = None
    feature_sample_rate: float | None = None  # rate of the signal the features are of
    shape: list[int] | None = None
    dtype: str | None = None
    image: str | None = None
    batched: bool = False
    nonfinite_replaced: int = 0
    elapsed_s: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FeatureReporter(Reporter):
    """:class:`Reporter` with a features line for finished files."""

    def ok_line(self, result: Any) -> str:
        shape = "x".join(str(s) for s in result.shape or [])
        img = f" + {result.image}" if result.image else ""
        return (
            f"ok      {result.input} -> {result.output}{img} ({result.seconds:.2f} s, "
            f"{result.sample_rate} Hz, {result.channels} ch; {shape} {result.dtype})"
        )


# ---------------------------------------------------------------------------- atomic writes
def save_array(arr: Any, dest: Path, fmt: str, *, replace: bool = True) -> None:
    """Write a CPU tensor as ``.npy`` / ``.npz`` (key ``features``) / ``.pt`` atomically
    (``replace=False``: never over a file that appeared meanwhile)."""
    import numpy as np
    import torch

    with atomic_path(dest, replace=replace) as tmp, open(tmp, "wb") as f:
        if fmt == "pt":
            torch.save(arr.contiguous().clone(), f)
        elif fmt == "npz":
            np.savez(f, features=arr.numpy())
        else:
            np.save(f, arr.numpy())


# ---------------------------------------------------------------------------- images
_PLOT_LOCK = threading.Lock()


def check_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise FeatureUsageError(f"--image needs matplotlib: {MATPLOTLIB_HINT}")


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


def save_image(
    feats: Any, dest: Path, module: Any, params: FeatureParams, fs: float, title: str
) -> None:
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


# ---------------------------------------------------------------------------- engine
@dataclass
class _Prepared:
    job: Any
    res: FeatureResult
    info: Any
    steps: list[Any]
    frames: int  # chunk frames
    run: Any
    rate: float
    channels: int
    dtype: Any
    t0: float
    audio: Any = None  # short files: the chain's whole output (channels, n) on the device


def _engine_class() -> type:
    from fxcli.engine.chain import flush_chain, init_states
    from fxcli.engine.device import chunk_frames
    from fxcli.engine.pipeline import prefetch
    from fxcli.engine.runner import Engine, FileRun
    from fxcli.io.audio import OutputExistsError, probe
    from fxcli.io.paths import skip_existing_output
    from fxcli.steps import chain_output

    class FeatureEngine(Engine):
        """:class:`fxcli.engine.runner.Engine` (chain design, analysis passes, chunk runs
        with OOM retry and finiteness checks) feeding :mod:`fxcli.features`."""

        def __init__(
            self,
            preset: Any,
            device: Any,
            params: FeatureParams,
            *,
            out_fmt: str,
            image: bool,
            chunk_seconds: float | None,
            overwrite: str,
            nonfinite: str,
            dtype: str = "float32",
        ) -> None:
            super().__init__(
                preset, device, chunk_seconds=chunk_seconds, overwrite=overwrite,
                nonfinite=nonfinite, words=cli_text,
            )  # fmt: skip
            import torch

            #: the dtype of the audio through the chain and of the arrays (--dtype)
            self.dtype = torch.float64 if dtype == "float64" else torch.float32
            self.params = params
            self.out_fmt = out_fmt
            self.image = image
            self._modules: dict[float, Any] = {}
            self.writer: ThreadPoolExecutor | None = None  # set by run_features

        def module_for(self, fs: float) -> Any:
            with self._lock:
                if fs not in self._modules:
                    self._modules[fs] = self.params.build(fs).to(self.device)
                return self._modules[fs]

        def image_path(self, dest: Path) -> Path:
            return dest.with_suffix(".png")

        def describe_existing(self, res: FeatureResult) -> FeatureResult:
            """An ``ok`` result for an output that exists (skipped): read from the
            array's header and the input's (for its index entry)."""
            info = probe(Path(res.input))
            steps = self.chain_for(info.samplerate, info.channels)
            rate, _ = chain_output(steps, info.samplerate, info.channels)
            shape, dtype = array_meta(Path(res.output), self.out_fmt)
            img = self.image_path(Path(res.output))
            return FeatureResult(
                res.input, res.output, "ok", frames=info.frames,
                seconds=round(info.frames / info.samplerate, 6), sample_rate=info.samplerate,
                channels=info.channels, feature_sample_rate=rate, shape=shape, dtype=dtype,
                image=str(img) if self.image and img.is_file() else None,
            )  # fmt: skip

        def prepare(self, job: Any) -> _Prepared | FeatureResult:
            t0 = time.perf_counter()
            res = FeatureResult(str(job.src), str(job.dest), "ok")
            try:
                targets = [job.dest] + ([self.image_path(job.dest)] if self.image else [])
                if skip_existing_output(targets, self.overwrite):
                    res.status = "skipped"
                    res.notes.append("output exists")
                    return res
                info = probe(job.src)
                res.sample_rate, res.channels = info.samplerate, info.channels
                steps = self.chain_for(info.samplerate, info.channels)
                frames = chunk_frames(
                    self.device, info.samplerate, info.channels, self.chunk_seconds
                )
                run = FileRun(res, frames)  # type: ignore[arg-type]
                steps = self._resolve_analysis(steps, info, frames, run)
                rate, channels = chain_output(steps, info.samplerate, info.channels)
                self.module_for(rate)  # a parameter the rate does not allow fails here
            except Exception as exc:  # noqa: BLE001 - per-file failure
                return self.failed(res, exc, t0)
            return _Prepared(job, res, info, steps, frames, run, rate, channels, self.dtype, t0)

        def failed(self, res: FeatureResult, exc: BaseException, t0: float) -> FeatureResult:
            from fxcli.engine.runner import Cancelled

            if isinstance(exc, Cancelled):
                raise exc
            import torch

            if isinstance(exc, torch.OutOfMemoryError):
                msg = "out of device memory"
            elif isinstance(exc, OSError):
                msg = f"cannot write: {exc.strerror or exc}"
            else:
                text = self.words(exc).strip()
                msg = text.splitlines()[0] if text else repr(exc)
            res.status, res.error = "failed", msg
            res.elapsed_s = round(time.perf_counter() - t0, 6)
            return res

        def chain_chunks(
            self, p: _Prepared, progress: Callable[[int], None] | None
        ) -> Iterator[Any]:
            """The chain's output for the whole file, chunk by chunk (on the device)."""
            import torch

            states = init_states(p.steps, (p.info.channels,), self.device)
            offset = 0
            for block in prefetch(lambda: self.read_chunks(p.info, p.frames, p.res)):  # type: ignore[arg-type]
                x = torch.from_numpy(block).to(self.device, self.dtype, non_blocking=True)
                y, states = self.run_chunk(p.steps, x, states, offset, p.run)
                offset += block.shape[1]
                if progress:
                    progress(block.shape[1])
                yield y
            tail, _ = flush_chain(p.steps, states, p.dtype)
            if tail is not None:
                yield tail
            p.res.frames = offset
            p.res.seconds = round(offset / p.info.samplerate, 6)

        def load_whole(self, p: _Prepared, progress: Callable[[int], None] | None) -> None:
            import torch

            parts = list(self.chain_chunks(p, progress))
            p.audio = (
                torch.cat(parts, -1)
                if parts
                else torch.zeros((p.channels, 0), dtype=p.dtype, device=self.device)
            )

        def stream(self, p: _Prepared, progress: Callable[[int], None] | None) -> Any:
            """Linear-stage features (spectrogram or mel power) of a long file, streamed."""
            import torch

            module = self.module_for(p.rate)
            spec = module.mel if hasattr(module, "from_power") else module
            state = spec.init_state((p.channels,), self.device)
            outs = []
            for y in self.chain_chunks(p, progress):
                out, state = spec.process(y, state)
                outs.append(out.cpu())
            out, _ = spec.flush(state)
            outs.append(out.cpu())
            return torch.cat(outs, -1)

        def finish(
            self, p: _Prepared, linear: Any, *, batched: bool = False
        ) -> FeatureResult | Future[FeatureResult]:
            """dB/DCT on the whole file's linear features here; the array (and PNG) are
            written on the writer thread (fsync and rename overlap the next files'
            compute). Returns the result, or its future while the write is pending."""
            res = p.res
            try:
                module = self.module_for(p.rate)
                feats = module.from_power(linear) if hasattr(module, "from_power") else linear
                feats = feats.detach().cpu().to(self.dtype).contiguous()
            except Exception as exc:  # noqa: BLE001 - per-file failure
                return self.failed(res, exc, p.t0)
            res.batched = batched
            if self.writer is None:
                return self.write(p, feats, module)
            return self.writer.submit(self.write, p, feats, module)

        def write(self, p: _Prepared, feats: Any, module: Any) -> FeatureResult:
            res = p.res
            try:
                save_array(feats, p.job.dest, self.out_fmt, replace=self.overwrite == "overwrite")
                if self.image:
                    img = self.image_path(p.job.dest)
                    title = f"{p.job.src.name}: {self.params.kind}, {p.rate:g} Hz"
                    save_image(feats, img, module, self.params, p.rate, title)
                    res.image = str(img)
                res.shape = list(feats.shape)
                res.dtype = str(feats.dtype).replace("torch.", "")
                res.feature_sample_rate = p.rate
                if res.nonfinite_replaced:
                    res.notes.append(
                        f"replaced {res.nonfinite_replaced} non-finite input samples with 0"
                    )
            except OutputExistsError as exc:  # another run wrote it meanwhile
                if self.overwrite != "skip":
                    return self.failed(res, exc, p.t0)
                res.status = "skipped"
                res.notes.append("output appeared during processing (another run?)")
            except Exception as exc:  # noqa: BLE001 - per-file failure
                return self.failed(res, exc, p.t0)
            res.elapsed_s = round(time.perf_counter() - p.t0, 6)
            return res

        def batch_features(self, group: list[_Prepared]) -> list[Any]:
            """Linear-stage features of equal-rate/channel/dtype short files in one batch:
            zero-padded to the longest, each cut back to its own frame count."""
            import torch
            import torch.nn.functional as F

            module = self.module_for(group[0].rate)
            spec = module.mel if hasattr(module, "from_power") else module
            longest = max(p.audio.shape[-1] for p in group)
            x = torch.stack([F.pad(p.audio, (0, longest - p.audio.shape[-1])) for p in group])
            out = spec(x)  # (files, channels, bins, frames)
            return [
                out[i, ..., : spec.n_frames(p.audio.shape[-1])].contiguous()
                for i, p in enumerate(group)
            ]

    return FeatureEngine


def _batches(items: list[_Prepared], budget: int, exact_length: bool) -> list[list[_Prepared]]:
    """Group short files: same rate, channels and dtype (and length, for reflect
    padding), sorted by length, at most ``budget`` samples per batch (padded), the
    longest at most :data:`MAX_PAD_RATIO` times the shortest."""
    groups: dict[tuple[Any, ...], list[_Prepared]] = {}
    for p in items:
        n = p.audio.shape[-1]
        key = (p.rate, p.audio.shape[0], p.audio.dtype, n if exact_length else None)
        groups.setdefault(key, []).append(p)
    out: list[list[_Prepared]] = []
    for members in groups.values():
        members.sort(key=lambda p: p.audio.shape[-1])
        cur: list[_Prepared] = []
        for p in members:
            n, ch = p.audio.shape[-1], p.audio.shape[0]
            if cur:
                first = cur[0].audio.shape[-1]
                too_long = n > MAX_PAD_RATIO * max(first, 1)
                too_big = (len(cur) + 1) * n * ch > budget
                if too_long or too_big:
                    out.append(cur)
                    cur = []
            cur.append(p)
        if cur:
            out.append(cur)
    return out


# ---------------------------------------------------------------------------- index
def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def array_meta(path: Path, fmt: str) -> tuple[list[int], str]:
    """Shape and dtype name of a written feature array."""
    import numpy as np

    if fmt == "pt":
        import torch

        t = torch.load(path, map_location="cpu", weights_only=True)
        return list(t.shape), str(t.dtype).replace("torch.", "")
    if fmt == "npz":
        with np.load(path) as z:
            a = z["features"]
            return list(a.shape), str(a.dtype)
    a = np.load(path, mmap_mode="r")
    return list(a.shape), str(a.dtype)


def read_index(root: Path) -> tuple[set[str], bool]:
    """The outputs listed in ``root/index.jsonl`` and whether it ends without a
    newline; raises :class:`FeatureUsageError` for an index that cannot be read or
    is not UTF-8 text."""
    index = root / INDEX_NAME
    try:
        data = index.read_bytes()
    except FileNotFoundError:
        return set(), False
    except OSError as exc:
        raise FeatureUsageError(f"{index}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FeatureUsageError(
            f"{index}: not UTF-8 text (byte {exc.start}); move it away or delete it"
        ) from None
    outputs: set[str] = set()
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict) and isinstance(item.get("output"), str):
                outputs.add(item["output"])
    return outputs, bool(data) and not data.endswith(b"\n")


def append_index(root: Path, entry: dict[str, Any], newline_first: bool = False) -> None:
    """Append one entry line to ``root/index.jsonl`` and flush it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / INDEX_NAME, "a", encoding="utf-8") as f:
        f.write(("\n" if newline_first else "") + json.dumps(entry) + "\n")
        f.flush()


def write_index(root: Path, entries: list[dict[str, Any]]) -> Path:
    """Merge ``entries`` into ``root/index.jsonl`` (same ``output`` replaced) atomically."""
    index = root / INDEX_NAME
    old: list[dict[str, Any]] = []
    if index.is_file():
        for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    old.append(item)
    new_outputs = {e["output"] for e in entries}
    merged = [e for e in old if e.get("output") not in new_outputs] + entries
    with atomic_path(index) as tmp:
        tmp.write_text("".join(json.dumps(e) + "\n" for e in merged), encoding="utf-8")
    return index


def index_entry(res: FeatureResult, params: FeatureParams, module: Any, root: Path) -> dict:
    spec = module.mel if hasattr(module, "from_power") else module
    fs = res.feature_sample_rate or 0.0
    return {
        "input": res.input,
        "output": _rel(Path(res.output), root),
        "image": _rel(Path(res.image), root) if res.image else None,
        "shape": res.shape,
        "axes": params.axes(),
        "dtype": res.dtype,
        "sample_rate": fs,
        "hop_seconds": spec.hop_length / fs if fs else None,
        "seconds": res.seconds,
        "input_sample_rate": res.sample_rate,
        "input_channels": res.channels,
        "params": params.to_json(module, fs),
    }


# ---------------------------------------------------------------------------- run
@dataclass(frozen=True)
class FeatureOptions:
    """Everything a ``features`` run is asked for besides its inputs and OUTPUT.

    ``params``: what to compute (:class:`FeatureParams`); ``preset_name``: a chain to
    run first (or None); ``out_fmt``: ``npy`` | ``npz`` | ``pt``; ``image``: also a
    PNG per file; ``overwrite``: ``refuse`` | ``overwrite`` | ``skip``; ``shard``
    ``"K/N"``: only every N-th file of the list sorted by output path, from K."""

    params: FeatureParams = field(default_factory=lambda: FeatureParams())
    preset_name: str | None = None
    out_fmt: str = "npy"
    image: bool = False
    device: str = "auto"
    chunk_seconds: float | None = None
    overwrite: str = "refuse"
    json_mode: bool = False
    quiet: bool = False
    progress: str = "auto"
    input_list: str | None = None
    jobs: int | None = None
    nonfinite: str = "error"
    shard: str | None = None
    #: ``float32`` | ``float64``: the arrays' dtype and the dtype the audio is computed in
    dtype: str = "float32"


def run_features(inputs: list[str], output: Path, opts: FeatureOptions) -> int:
    """Returns the exit code; raises UsageError/PresetError/FeatureUsageError (exit 2)
    before any file is touched."""
    from fxcli.batch.shard import parse_shard
    from fxcli.batch.shard import shard as take_shard

    params, preset_name, out_fmt, image = opts.params, opts.preset_name, opts.out_fmt, opts.image
    device, chunk_seconds, overwrite = opts.device, opts.chunk_seconds, opts.overwrite
    json_mode, quiet, progress = opts.json_mode, opts.quiet, opts.progress
    input_list, jobs, nonfinite = opts.input_list, opts.jobs, opts.nonfinite
    shard_kn = parse_shard(opts.shard) if opts.shard is not None else None
    from fxcli.io.paths import Job, UsageError, collect, inputs_and_list
    from fxcli.preset.loader import Preset, load_preset

    if out_fmt not in FEATURE_FORMATS:
        raise UsageError(f"--format {out_fmt!r}: allowed: {', '.join(FEATURE_FORMATS)}")
    if chunk_seconds is not None and not chunk_seconds > 0:
        raise UsageError(f"--chunk-seconds must be > 0, got {chunk_seconds}")
    if jobs is not None and not 1 <= jobs <= 256:
        raise UsageError(f"--jobs must be between 1 and 256, got {jobs}")
    if image:
        check_matplotlib()
    check_params(params)
    preset = load_preset(preset_name) if preset_name else Preset(source="(no preset)")
    inputs, listed = inputs_and_list(inputs, input_list)
    ext = FEATURE_FORMATS[out_fmt]
    single = len(inputs) == 1 and not listed and Path(inputs[0]).is_file()
    if single and output.suffix and output.suffix.lower() != ext and not output.is_dir():
        # issue 16: "features in.wav one.png" made a folder one.png
        other = [f for f, e in FEATURE_FORMATS.items() if e == output.suffix.lower()]
        hint = f" (or --format {other[0]})" if other else ""
        raise UsageError(
            f"OUTPUT {str(output)!r}: one input writes one {ext} array: name it "
            f"{output.with_suffix(ext).name}{hint}, or give a folder (an existing one, or a "
            "name without an extension)"
        )
    if single and output.suffix.lower() == ext and not output.is_dir():
        job_list, ignored, root = [Job(Path(inputs[0]), output)], 0, output.parent
    else:
        collected = collect(inputs, output, listed, ext)
        job_list, ignored, root = collected.jobs, collected.ignored, output
    if shard_kn is not None:  # the same rule as process: sorted by output, every N-th
        job_list = take_shard(job_list, *shard_kn, key=lambda j: str(j.dest))
    indexed, index_unterminated = read_index(root)

    from fxcli.engine.device import default_jobs, resolve_device  # imports torch

    dev = resolve_device(device)
    from fxcli.engine.runner import Cancelled

    engine = _engine_class()(
        preset, dev, params, out_fmt=out_fmt, image=image, chunk_seconds=chunk_seconds,
        overwrite=overwrite, nonfinite=nonfinite, dtype=opts.dtype,
    )  # fmt: skip
    from fxcli.cli.report import progress_shown
    from fxcli.cli.signals import Stop
    from fxcli.io.audio import AudioError, probe

    total_frames = 0
    if progress_shown(progress, quiet):
        for job in job_list:
            with contextlib.suppress(AudioError):
                total_frames += probe(job.src).frames
    rep = FeatureReporter(
        json_mode=json_mode, quiet=quiet, progress=progress, total_files=len(job_list),
        total_frames=total_frames,
    )  # fmt: skip
    n_jobs = jobs if jobs is not None else default_jobs(dev, len(job_list))
    budget = BATCH_SAMPLES_CUDA if dev.type == "cuda" else BATCH_SAMPLES_CPU
    short_max = SHORT_SAMPLES_CUDA if dev.type == "cuda" else SHORT_SAMPLES_CPU
    entries: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    stop = Stop(engine.cancel.set)
    rep.on_stdout_closed = stop.stdout_closed
    unterminated = [index_unterminated]  # the next append starts a new line first

    def index(res: FeatureResult) -> None:
        entry = index_entry(res, params, engine.module_for(res.feature_sample_rate), root)
        entries.append(entry)
        try:
            append_index(root, entry, unterminated[0])
            unterminated[0] = False
        except OSError:
            pass  # the index is rewritten at the end (and its failure reported there)

    def report(res: FeatureResult) -> None:
        rep.file_done(res)
        if res.status == "ok":
            index(res)
        elif res.status == "skipped" and _rel(Path(res.output), root) not in indexed:
            with contextlib.suppress(Exception):  # an unreadable array stays unindexed
                index(engine.describe_existing(res))

    class Window:
        """Files of one window: short ones batched, long ones streamed. Results are
        reported in input order as soon as every earlier file of the window is done."""

        def __init__(self, jobs: list[Any]) -> None:
            self.jobs = jobs
            self.results: dict[int, FeatureResult | Future[FeatureResult]] = {}
            self.reported = 0

        def done(self, i: int, res: FeatureResult | Future[FeatureResult]) -> None:
            self.results[i] = res
            self.report_ready()

        def report_ready(self, wait: bool = False) -> None:
            """Report results in order while they are complete (``wait``: all of them)."""
            while self.reported in self.results:
                item = self.results[self.reported]
                if isinstance(item, Future):
                    if not (wait or item.done()):
                        return
                    item = item.result()
                report(item)
                self.reported += 1

        def report_finished(self) -> None:
            """After an interrupt: report the files that were completed (pending
            writes of finished files complete first)."""
            for i in sorted(self.results):
                if i < self.reported:
                    continue
                item = self.results[i]
                res = item.result() if isinstance(item, Future) else item
                if res.status == "ok":
                    report(res)

        def run(self, pool: ThreadPoolExecutor) -> None:
            prepared = list(pool.map(engine.prepare, self.jobs))
            short: list[tuple[int, _Prepared]] = []
            for i, p in enumerate(prepared):
                if isinstance(p, FeatureResult):
                    self.done(i, p)
                elif p.info.frames <= p.frames and p.info.frames * p.info.channels <= short_max:
                    short.append((i, p))

            def load(item: tuple[int, _Prepared]) -> FeatureResult | None:
                try:
                    engine.load_whole(item[1], rep.advance_frames)
                except Exception as exc:  # noqa: BLE001 - per-file failure
                    return engine.failed(item[1].res, exc, item[1].t0)
                return None

            for (i, _p), bad in zip(short, pool.map(load, short), strict=True):
                if bad is not None:
                    self.done(i, bad)
            order = {id(p): i for i, p in short}
            loaded = [p for i, p in short if i not in self.results]
            for group in _batches(loaded, budget, params.pad_mode == "reflect"):
                if engine.cancel.is_set():
                    raise Cancelled()
                linear: list[Any]
                try:
                    linear = engine.batch_features(group)
                except Exception:  # noqa: BLE001 - retried one by one, failures per file
                    linear = []
                    for p in group:
                        try:
                            linear.append(engine.batch_features([p])[0])
                        except Exception as exc1:  # noqa: BLE001
                            linear.append(exc1)
                for p, lin in zip(group, linear, strict=True):
                    p.audio = None
                    if isinstance(lin, BaseException):
                        self.done(order[id(p)], engine.failed(p.res, lin, p.t0))
                    else:
                        self.done(order[id(p)], engine.finish(p, lin, batched=len(group) > 1))
            for i, p in enumerate(prepared):
                if i in self.results or isinstance(p, FeatureResult):
                    continue
                try:
                    lin = engine.stream(p, rep.advance_frames)
                except Exception as exc:  # noqa: BLE001 - per-file failure
                    self.done(i, engine.failed(p.res, exc, p.t0))
                    continue
                self.done(i, engine.finish(p, lin))
            self.report_ready(wait=True)

    with stop.installed():
        try:
            with (
                ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="fxcli-file") as pool,
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="fxcli-writer") as writer,
            ):
                engine.writer = writer
                for start in range(0, len(job_list), WINDOW_FILES):
                    if stop.is_set():
                        break
                    win = Window(job_list[start : start + WINDOW_FILES])
                    try:
                        win.run(pool)
                    except Cancelled:
                        win.report_finished()
                        break
        finally:
            rep.close()
            if entries:
                try:
                    write_index(root, entries)
                except OSError as exc:
                    rep.message(f"error: cannot write {root / INDEX_NAME}: {exc}")
                    rep.count("failed")
    if stop.signum is None:
        rep.summary(ignored, time.perf_counter() - t_start)
    return rep.exit_code(stop.signum)
