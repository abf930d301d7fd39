"""Time filter chains over a sweep of durations, channel counts and backends, check
every backend's output, and write CSV / a plot (``fxcli bench`` renders the table).

Method (see also ``bench/README.md``):

- Input: per case (duration x channels) a fresh ``(channels, frames)`` float32
  Gaussian noise, each channel normalized to [-1, 1] (``randn`` normalized per
  channel; drawn directly as float32 so no float64 copy is made), freed after
  the case.
- Chains: ``iir``, ``fir`` and ``api`` are the named benchmark chains (the bundled
  ``iir_chain``, ``fir_chain`` and ``api_chain`` presets); any preset path or
  bundled name works. Coefficients are designed once per sample rate, before
  any timing. A ``normalize`` step is resolved to its gain once per case from a
  measuring pass (not timed).
- Backends: ``cpu`` / ``cuda`` run fxcli's engine path (the fused chain, the
  engine's chunk size, state carried across chunks); ``scipy`` runs the same
  designs with ``scipy.signal.sosfilt`` per IIR step, ``scipy.signal.lfilter``
  per FIR step and a multiply per gain (the baseline, float64 inside);
  ``torchaudio`` (``lfilter`` per biquad, ``fftconvolve`` per FIR, float32 as a
  user would call it) and ``torchfx`` run when importable (optional peers, never
  required).
- Output check: before timing, each backend's output is compared with a float64
  SciPy reference computed once per case (``sosfilt`` / an exact FFT
  convolution, streamed in blocks with carried state). ``max_abs_error`` is the
  largest absolute difference; ``check`` is ``MISMATCH`` when it exceeds
  :data:`ERROR_THRESHOLD` (1e-4 on [-1, 1] input: ~1000x the float32 output
  rounding, so it flags wrong or unstable results, never rounding). A
  mismatching backend is still timed but its row always carries the flag.
- Timing: ``time.perf_counter`` around the kernel only. The output-check run
  doubles as the first warm-up; then ``warmup - 1`` more warm-ups and up to
  ``reps`` timed runs, stopping early once ``max_seconds`` (check run, warm-ups
  and reps of one backend in one case) is spent; at least one timed run, the
  actual count goes in ``reps``. Median, min and max are reported. On CUDA the
  device is synchronized before each clock read; the host-to-device upload and
  the download of the result are timed separately (``transfer_s``, median; 0
  on CPU).
- Memory: the reference (float64) lives only during the check phase; peak is
  about 5x the float32 input (the input, the reference and a float64 SciPy
  output) and fxcli's own runs need the input, the output and one chunk.
"""

from __future__ import annotations

import csv
import gc
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from fxcli._version import __version__ as FXCLI_VERSION
from fxcli.engine.chain import init_states, run_chain
from fxcli.engine.device import chunk_frames
from fxcli.errors import FxcliError
from fxcli.measure import effect_chains
from fxcli.measure.timing import timed_cpu, timed_cuda
from fxcli.preset.build import build_chain
from fxcli.preset.loader import PresetError, StepConfig, load_preset
from fxcli.steps import FIR, IIR, Gain, Normalize, Step, fuse

__all__ = [
    "ALL_BACKENDS",
    "COLUMNS",
    "DEFAULT_BACKENDS",
    "ERROR_THRESHOLD",
    "NAMED_CHAINS",
    "BenchError",
    "Chain",
    "CsvSink",
    "check_settings",
    "json_line",
    "markdown_table",
    "make_noise",
    "make_row",
    "max_abs_error",
    "reference",
    "time_runner",
    "parse_backends",
    "parse_channels",
    "parse_durations",
    "resolve_chain",
    "run_bench",
    "write_plot",
]

#: Max abs error (vs the float64 SciPy reference, on [-1, 1] noise) above which
#: a backend's output is flagged ``MISMATCH``.
ERROR_THRESHOLD = 1e-4

NAMED_CHAINS = {"iir": "iir_chain", "fir": "fir_chain", "api": "api_chain"}
ALL_BACKENDS = ("cpu", "cuda", "scipy", "torchaudio", "torchfx")
DEFAULT_BACKENDS = ("cpu", "cuda", "scipy")
OPTIONAL_BACKENDS = ("torchaudio", "torchfx")

COLUMNS = [
    "chain",
    "backend",
    "device_name",
    "duration_s",
    "channels",
    "sample_rate",
    "samples",
    "reps",
    "median_s",
    "min_s",
    "max_s",
    "transfer_s",
    "msamples_per_s",
    "realtime_factor",
    "speedup_vs_scipy",
    "max_abs_error",
    "check",
    "torch_version",
    "fxcli_version",
]

# Frames per block when computing the reference and comparing outputs.
_REF_BLOCK = 1 << 17

Log = Callable[[str], None]


class BenchError(FxcliError, ValueError):
    """A usage problem (bad argument, unknown chain, missing plot extra): one line."""


class Unsupported(FxcliError):
    """A backend cannot run this chain (the message says why); it is skipped."""


# --------------------------------------------------------------------------- arguments


def _items(text: str, what: str) -> list[str]:
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(p == "" for p in parts):
        raise BenchError.for_option(what, f"{text!r}: give a comma-separated list, e.g. 5,60,600")
    return parts


def parse_durations(text: str) -> list[float]:
    """``"5,60,600"`` -> [5.0, 60.0, 600.0] (seconds, each > 0 and finite)."""
    out = []
    for p in _items(text, "durations"):
        try:
            v = float(p)
        except ValueError:
            raise BenchError.for_option(
                "durations", f": {p!r} is not a number of seconds"
            ) from None
        if not math.isfinite(v) or v <= 0:
            raise BenchError.for_option(
                "durations", f": {p!r} must be a positive number of seconds"
            )
        out.append(v)
    return out


def parse_channels(text: str) -> list[int]:
    """``"1,8"`` -> [1, 8] (each an integer from 1 to 1024)."""
    out = []
    for p in _items(text, "channels"):
        try:
            v = int(p)
        except ValueError:
            raise BenchError.for_option("channels", f": {p!r} is not a whole number") from None
        if not 1 <= v <= 1024:
            raise BenchError.for_option("channels", f": {p!r} must be between 1 and 1024")
        out.append(v)
    return out


def parse_backends(text: str) -> list[str]:
    """``"cpu,cuda,scipy"`` -> the list, duplicates dropped, order kept."""
    out: list[str] = []
    for p in _items(text, "backends"):
        name = p.lower()
        if name not in ALL_BACKENDS:
            raise BenchError.for_option(
                "backends", f": unknown backend {p!r}; allowed: {', '.join(ALL_BACKENDS)}"
            )
        if name not in out:
            out.append(name)
    return out


def check_settings(*, reps: int, warmup: int, max_seconds: float, sample_rate: int) -> None:
    """Raise :class:`BenchError` (one line, naming the option) unless ``reps >= 1``,
    ``warmup >= 0``, ``max_seconds`` is a positive finite number and
    ``sample_rate >= 1``."""
    if reps < 1:
        raise BenchError.for_option("reps", "must be at least 1")
    if warmup < 0:
        raise BenchError.for_option("warmup", "must be 0 or more")
    if not (max_seconds > 0 and math.isfinite(max_seconds)):
        raise BenchError.for_option("max_seconds", "must be a positive number")
    if sample_rate < 1:
        raise BenchError.for_option("sample_rate", "must be a positive integer")


# --------------------------------------------------------------------------- chains


@dataclass
class Chain:
    """A chain designed for one sample rate: its name, configs and (unfused) steps."""

    name: str
    source: str
    sample_rate: int
    configs: list[StepConfig]
    steps: list[Step]
    #: every step has a SciPy equivalent; else (effects) timed on cpu/cuda unchecked
    checked: bool = True


def resolve_chain(spec: str, sample_rate: int) -> Chain:
    """``iir`` / ``fir`` / ``api`` (the named chains) or any preset path or bundled
    name, designed for ``sample_rate``. Raises :class:`BenchError` (one line)."""
    key = spec.strip()
    preset_name = NAMED_CHAINS.get(key.lower(), key)
    try:
        preset = load_preset(preset_name)
        steps = build_chain(preset.steps, sample_rate, 2)
    except PresetError as exc:
        raise BenchError.for_option("chain", f"{spec}: {exc}") from None
    if not steps:
        raise BenchError.for_option("chain", f"{spec}: the preset has no steps")
    name = key.lower() if key.lower() in NAMED_CHAINS else Path(key).stem
    checked = effect_chains.checkable(steps)
    return Chain(name, preset.source, sample_rate, list(preset.steps), steps, checked)


def _resolve_analysis(steps: list[Step], x: np.ndarray) -> list[Step]:
    """Replace each ``normalize`` step by its gain, measured on ``x`` through the
    chain up to it (fxcli on CPU, streamed in blocks; not timed)."""
    steps = list(steps)
    for k, step in enumerate(steps):
        if not isinstance(step, Normalize):
            continue
        head = fuse(steps[:k])
        xt = torch.from_numpy(x)
        states = init_states(head, (x.shape[0],), xt.device)
        acc = None
        for s in range(0, max(x.shape[1], 1), _REF_BLOCK * 8):
            y, states = run_chain(head, xt[:, s : s + _REF_BLOCK * 8], states)
            acc = step.measure(acc, y)
        steps[k] = step.resolve(acc)
    return steps


# --------------------------------------------------------------------------- input


def make_noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    """Gaussian noise ``(channels, frames)`` float32, each channel scaled to peak 1.

    ``randn`` normalized per channel, drawn directly in float32 and normalized in
    place so that no float64 copy is ever made.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((channels, frames), dtype=np.float32)
    for c in range(channels):
        peak = float(np.abs(x[c]).max()) if frames else 0.0
        if peak > 0:
            x[c] /= peak
    return x


# --------------------------------------------------------------------------- reference


def _ops(steps: list[Step]) -> list[tuple[str, Any]]:
    """The chain as plain NumPy operations: ("sos", (S, 6)), ("fir", (K,)), ("gain", g)."""
    ops: list[tuple[str, Any]] = []
    for s in steps:
        if isinstance(s, IIR):
            ops.append(("sos", s.sos.detach().cpu().numpy().astype(np.float64)))
        elif isinstance(s, FIR):
            ops.append(("fir", s.taps.detach().cpu().numpy().astype(np.float64)))
        elif isinstance(s, Gain):
            ops.append(("gain", float(s.gain)))
        else:  # pragma: no cover - normalize is resolved before this
            raise Unsupported(f"step {s.label} has no SciPy equivalent")
    return ops


def reference(steps: list[Step], x: np.ndarray) -> np.ndarray:
    """The float64 SciPy reference output of the chain on ``x``.

    IIR steps: ``scipy.signal.sosfilt`` (float64); FIR steps: exact float64 FFT
    convolution (``oaconvolve``, causal, history carried); gains: multiply.
    Streamed in blocks with state carried, so the only full-size array is the
    float64 result.
    """
    from scipy.signal import oaconvolve, sosfilt

    ops = _ops(steps)
    rows, n = x.shape
    ref = np.empty((rows, n), dtype=np.float64)
    states: list[Any] = []
    for kind, c in ops:
        if kind == "sos":
            states.append(np.zeros((c.shape[0], rows, 2)))
        elif kind == "fir":
            states.append(np.zeros((rows, c.shape[0] - 1)))
        else:
            states.append(None)
    for s in range(0, n, _REF_BLOCK):
        y = x[:, s : s + _REF_BLOCK].astype(np.float64)
        for i, (kind, c) in enumerate(ops):
            if kind == "sos":
                y, states[i] = sosfilt(c, y, axis=-1, zi=states[i])
            elif kind == "fir":
                k = c.shape[0]
                full = np.concatenate((states[i], y), axis=1)
                if k > 1:
                    states[i] = full[:, full.shape[1] - (k - 1) :].copy()
                    y = oaconvolve(full, c[None, :], mode="valid", axes=-1)
                else:
                    y = full * c[0]
            else:
                y = y * c
        ref[:, s : s + y.shape[1]] = y
    return ref


def max_abs_error(y: Any, ref: np.ndarray) -> float:
    """Largest |y - ref| (blockwise, no full-size temporaries); inf for a wrong
    shape or non-finite output."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != ref.shape:
        return math.inf
    err = 0.0
    for s in range(0, ref.shape[1], _REF_BLOCK):
        blk = y[:, s : s + _REF_BLOCK].astype(np.float64)
        d = float(np.max(np.abs(blk - ref[:, s : s + _REF_BLOCK]), initial=0.0))
        if not math.isfinite(d):
            return math.inf
        err = max(err, d)
    return err


# --------------------------------------------------------------------------- backends

#: A runner takes the float32 input and returns (output, kernel_s, transfer_s).
Runner = Callable[[np.ndarray], tuple[Any, float, float]]


def cpu_name() -> str:
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    name = name or platform.processor() or platform.machine() or "CPU"
    return f"{name} ({os.cpu_count() or 1} threads)"


def _run_engine(steps: list[Step], xt: torch.Tensor, chunk: int) -> torch.Tensor:
    """fxcli's engine loop on an in-memory tensor: the fused steps over chunks of
    ``chunk`` frames with state carried, written into one preallocated output."""
    rows, n = xt.shape
    states = init_states(steps, (rows,), xt.device)
    if n <= chunk:  # one chunk: the chain's output is the result (no extra copy)
        y, _ = run_chain(steps, xt, states)
        return y.clone() if y is xt else y
    y = torch.empty_like(xt)
    if xt.device.type != "cpu":
        for s in range(0, n, chunk):
            yc, states = run_chain(steps, xt[:, s : s + chunk], states)
            y[:, s : s + chunk] = yc
        return y
    # On CPU, chunks go in C-contiguous as the engine's read_blocks() yields them,
    # and come out through NumPy: torch's strided CPU copies cost ~10x NumPy's here.
    x_np, y_np = xt.numpy(), y.numpy()
    for s in range(0, n, chunk):
        xc = torch.from_numpy(np.ascontiguousarray(x_np[:, s : s + chunk]))
        yc, states = run_chain(steps, xc, states)
        y_np[:, s : s + chunk] = yc.numpy()
    return y


def _cpu_runner(
    steps: list[Step], configs: list[StepConfig], sample_rate: int, channels: int
) -> tuple[Runner, str]:
    dev = torch.device("cpu")
    fused = [s.to(dev) for s in fuse(steps)]
    chunk = chunk_frames(dev, sample_rate, channels, None)

    return timed_cpu(lambda xt: _run_engine(fused, xt, chunk)), cpu_name()


def _cuda_runner(
    steps: list[Step], configs: list[StepConfig], sample_rate: int, channels: int
) -> tuple[Runner, str]:
    if not torch.cuda.is_available():
        why = "this torch build has no CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise Unsupported(f"CUDA is not available ({why})")
    dev = torch.device("cuda")
    fused = [s.to(dev) for s in fuse(steps)]
    chunk = chunk_frames(dev, sample_rate, channels, None, streaming=False)
    return timed_cuda(lambda xd: _run_engine(fused, xd, chunk), dev), torch.cuda.get_device_name(
        dev
    )


def _scipy_chain(ops: list[tuple[str, Any]], x: np.ndarray) -> np.ndarray:
    from scipy.signal import lfilter, sosfilt

    y = x
    for kind, c in ops:
        if kind == "sos":
            y = sosfilt(c, y, axis=-1)
        elif kind == "fir":
            y = lfilter(c, [1.0], y, axis=-1)
        elif y is x:
            y = y * c
        else:
            np.multiply(y, c, out=y)
    return x.copy() if y is x else y


def _scipy_runner(
    steps: list[Step], configs: list[StepConfig], sample_rate: int, channels: int
) -> tuple[Runner, str]:
    ops = _ops(steps)

    def run(x: np.ndarray) -> tuple[Any, float, float]:
        t0 = time.perf_counter()
        y = _scipy_chain(ops, x)
        return y, time.perf_counter() - t0, 0.0

    return run, cpu_name()


def _torchaudio_runner(
    steps: list[Step], configs: list[StepConfig], sample_rate: int, channels: int
) -> tuple[Runner, str]:
    try:
        import torchaudio.functional as AF
    except Exception as exc:  # noqa: BLE001 - any import failure means "absent"
        raise Unsupported(f"torchaudio is not installed ({type(exc).__name__})") from None
    ops: list[tuple[str, Any]] = []
    for kind, c in _ops(steps):
        if kind == "sos":
            for sec in c:  # one lfilter call per biquad, a and b as float32 like the input
                b = torch.tensor(sec[:3] / sec[3], dtype=torch.float32)
                a = torch.tensor(sec[3:] / sec[3], dtype=torch.float32)
                ops.append(("biquad", (a, b)))
        elif kind == "fir":
            ops.append(("fir", torch.tensor(c, dtype=torch.float32)[None, :]))
        else:
            ops.append(("gain", c))

    def run(x: np.ndarray) -> tuple[Any, float, float]:
        xt = torch.from_numpy(x)
        n = xt.shape[-1]
        t0 = time.perf_counter()
        y = xt
        with torch.no_grad():
            for kind, c in ops:
                if kind == "biquad":
                    y = AF.lfilter(y, c[0], c[1], clamp=False)
                elif kind == "fir":
                    y = AF.fftconvolve(y, c)[..., :n]
                else:
                    y = y * c
        return y, time.perf_counter() - t0, 0.0

    return run, cpu_name()


def _torchfx_runner(
    steps: list[Step], configs: list[StepConfig], sample_rate: int, channels: int
) -> tuple[Runner, str]:
    """torchfx's filter classes for the step types it has (Butterworth and
    Chebyshev-I high/lowpass, FIR taps); other step types skip the backend."""
    try:
        from torchfx.filter import FIR as TfxFIR
        from torchfx.filter import Butterworth, Chebyshev1
    except Exception as exc:  # noqa: BLE001 - any import failure means "absent"
        raise Unsupported(f"torchfx is not installed ({type(exc).__name__})") from None
    mods: list[Any] = []
    for cfg, step in zip(configs, steps, strict=True):
        if isinstance(step, Gain):
            mods.append(float(step.gain))
        elif isinstance(step, FIR):
            mods.append(TfxFIR(b=step.taps.cpu().numpy()))
        elif isinstance(step, IIR):
            p = cfg.params
            if cfg.type not in ("highpass", "lowpass") or p.get("design") not in (
                "butterworth",
                "chebyshev1",
            ):
                raise Unsupported(f"torchfx has no equivalent of {cfg.type} ({p.get('design')})")
            try:
                if p["design"] == "butterworth":
                    mods.append(
                        Butterworth(
                            btype=cfg.type, cutoff=p["cutoff_hz"], order=p["order"], fs=sample_rate
                        )
                    )
                else:
                    mods.append(
                        Chebyshev1(
                            btype=cfg.type,
                            cutoff=p["cutoff_hz"],
                            order=p["order"],
                            ripple=p["ripple_db"],
                            fs=sample_rate,
                        )
                    )
            except TypeError as exc:
                raise Unsupported(f"this torchfx version's API differs ({exc})") from None
        else:
            raise Unsupported(f"torchfx has no equivalent of {step.label}")

    def run(x: np.ndarray) -> tuple[Any, float, float]:
        for m in mods:  # fresh state, coefficients designed before the clock starts
            if hasattr(m, "reset_state"):
                m.reset_state()
            if hasattr(m, "compute_coefficients"):
                m.compute_coefficients()
        xt = torch.from_numpy(x)
        t0 = time.perf_counter()
        y = xt
        with torch.no_grad():
            for m in mods:
                y = y * m if isinstance(m, float) else m(y)
        return y, time.perf_counter() - t0, 0.0

    return run, cpu_name()


#: backend name -> factory(steps, configs, sample_rate, channels) -> (runner, device name)
#: (``steps`` designed, normalize resolved; ``configs`` the preset steps they came from);
#: a factory raises :class:`Unsupported` to skip its backend with a note.
RUNNER_FACTORIES: dict[
    str, Callable[[list[Step], list[StepConfig], int, int], tuple[Runner, str]]
] = {
    "cpu": _cpu_runner,
    "cuda": _cuda_runner,
    "scipy": _scipy_runner,
    "torchaudio": _torchaudio_runner,
    "torchfx": _torchfx_runner,
}


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Per-run kernel seconds and transfer seconds of the timed runs."""

    times: list[float]
    transfers: list[float]


def time_runner(run: Runner, x: np.ndarray, warmup: int, reps: int, budget_s: float) -> Timing:
    """Warm-ups then timed runs until ``reps`` or the budget is spent (>= 1 run)."""
    start = time.perf_counter()
    for _ in range(warmup):
        if time.perf_counter() - start >= budget_s:
            break
        y = run(x)[0]
        del y
    times: list[float] = []
    transfers: list[float] = []
    while True:
        y, kernel_s, transfer_s = run(x)
        del y
        times.append(kernel_s)
        transfers.append(transfer_s)
        if len(times) >= reps or time.perf_counter() - start >= budget_s:
            return Timing(times, transfers)


def _sig(v: float | None, digits: int = 6) -> float | None:
    if v is None:
        return None
    if not math.isfinite(v):
        return v
    return float(f"{v:.{digits}g}")


def make_row(
    chain: str,
    backend: str,
    device_name: str,
    duration_s: float,
    channels: int,
    sample_rate: int,
    frames: int,
    times: Sequence[float],
    transfers: Sequence[float],
    error: float | None,
    scipy_median: float | None,
) -> dict[str, Any]:
    """One result row (:data:`COLUMNS`) from the timed runs of one backend on one case
    (``error`` None: a chain with effects, timed without the check: ``unchecked``)."""
    med = statistics.median(times)
    samples = channels * frames
    return {
        "chain": chain,
        "backend": backend,
        "device_name": device_name,
        "duration_s": duration_s,
        "channels": channels,
        "sample_rate": sample_rate,
        "samples": samples,
        "reps": len(times),
        "median_s": _sig(med),
        "min_s": _sig(min(times)),
        "max_s": _sig(max(times)),
        "transfer_s": _sig(statistics.median(transfers) if transfers else 0.0),
        "msamples_per_s": _sig(samples / med / 1e6 if med > 0 else math.inf, 4),
        "realtime_factor": _sig(frames / sample_rate / med if med > 0 else math.inf, 4),
        "speedup_vs_scipy": (
            _sig(scipy_median / med, 4) if scipy_median is not None and med > 0 else None
        ),
        "max_abs_error": _sig(error, 3),
        "check": (
            effect_chains.UNCHECKED
            if error is None
            else "ok"
            if error <= ERROR_THRESHOLD
            else "MISMATCH"
        ),
        "torch_version": torch.__version__,
        "fxcli_version": FXCLI_VERSION,
    }


# --------------------------------------------------------------------------- sweep


def run_bench(
    chain: str | Chain,
    durations: Sequence[float],
    channels: Sequence[int],
    backends: Sequence[str] = DEFAULT_BACKENDS,
    *,
    reps: int = 5,
    warmup: int = 1,
    max_seconds: float = 30.0,
    sample_rate: int = 44100,
    seed: int = 0,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    log: Log | None = None,
) -> list[dict[str, Any]]:
    """Run the sweep (``chain``: a spec for :func:`resolve_chain` or its result);
    return one row (dict with :data:`COLUMNS`) per
    (backend, duration, channels) that ran. ``on_row`` gets each row as soon as
    its case is done; ``log`` gets progress and skip notes (one line each)."""
    say = log or (lambda _msg: None)
    check_settings(reps=reps, warmup=warmup, max_seconds=max_seconds, sample_rate=sample_rate)
    for b in backends:
        if b not in RUNNER_FACTORIES:
            raise BenchError.for_option(
                "backends", f": unknown backend {b!r}; allowed: {', '.join(ALL_BACKENDS)}"
            )
    if isinstance(chain, Chain) and chain.sample_rate == sample_rate:
        ch_obj = chain
    else:
        ch_obj = resolve_chain(chain if isinstance(chain, str) else chain.source, sample_rate)
    rows: list[dict[str, Any]] = []
    skipped: set[str] = set()
    n_cases = len(durations) * len(channels)
    case = 0
    for duration in durations:
        for nch in channels:
            case += 1
            frames = max(1, round(duration * sample_rate))
            x = make_noise(nch, frames, seed)
            if not ch_obj.checked:
                say(
                    f"[{case}/{n_cases}] {ch_obj.name}: {duration:g} s x {nch} ch "
                    f"({nch * frames / 1e6:.3g} M samples; effects: timed without the check)"
                )
                for row in _effects_case(
                    ch_obj, x, duration, backends, (reps, warmup, max_seconds), skipped, say
                ):
                    rows.append(row)
                    if on_row:
                        on_row(row)
                del x
                gc.collect()
                continue
            steps = _resolve_analysis(ch_obj.steps, x)
            say(
                f"[{case}/{n_cases}] {ch_obj.name}: {duration:g} s x {nch} ch "
                f"({nch * frames / 1e6:.3g} M samples)"
            )
            # -- check phase: the reference lives only here
            runners: dict[str, tuple[Runner, str]] = {}
            for b in backends:
                if b in skipped:
                    continue
                try:
                    runners[b] = RUNNER_FACTORIES[b](steps, ch_obj.configs, sample_rate, nch)
                except Unsupported as exc:
                    skipped.add(b)
                    say(f"note: {b} skipped: {exc}")
            errors: dict[str, float] = {}
            spent: dict[str, float] = {}
            ref: np.ndarray | None = None
            # scipy first: its float64 output then coexists only with the input and
            # the reference being built (~5x the float32 input at peak)
            order = sorted(runners, key=lambda b: b != "scipy")
            for b in order:
                t0 = time.perf_counter()
                try:
                    y = runners[b][0](x)[0]
                except Exception as exc:  # noqa: BLE001 - a peer library failing is a note
                    if b in ("cpu", "cuda", "scipy"):
                        raise
                    say(f"note: {b} skipped: it failed on this chain: {type(exc).__name__}: {exc}")
                    skipped.add(b)
                    continue
                spent[b] = time.perf_counter() - t0
                if ref is None:
                    ref = reference(steps, x)
                errors[b] = max_abs_error(y, ref)
                del y
            del ref
            gc.collect()
            # -- timing phase
            timings: dict[str, Timing] = {}
            for b in order:
                if b not in errors:
                    continue
                budget = max(0.0, max_seconds - spent[b])
                timings[b] = time_runner(runners[b][0], x, max(0, warmup - 1), reps, budget)
            scipy_median = statistics.median(timings["scipy"].times) if "scipy" in timings else None
            for b in backends:
                if b not in timings:
                    continue
                t = timings[b]
                med = statistics.median(t.times)
                err = errors[b]
                ok = err <= ERROR_THRESHOLD
                row = make_row(
                    ch_obj.name,
                    b,
                    runners[b][1],
                    duration,
                    nch,
                    sample_rate,
                    frames,
                    t.times,
                    t.transfers,
                    err,
                    scipy_median,
                )
                rows.append(row)
                flag = "" if ok else f"  MISMATCH (error {err:.3g} > {ERROR_THRESHOLD:g})"
                say(
                    f"    {b:<10} median {med:.4g} s over {len(t.times)} reps, "
                    f"{row['msamples_per_s']} Msamples/s{flag}"
                )
                if on_row:
                    on_row(row)
            del x, steps, runners, timings
            gc.collect()
    return rows


def _effects_case(
    chain: Chain,
    x: np.ndarray,
    duration: float,
    backends: Sequence[str],
    timing: tuple[int, int, float],
    skipped: set[str],
    say: Log,
) -> list[dict[str, Any]]:
    """One case of a chain with effects (:mod:`fxcli.measure.effect_chains`): fxcli's
    backends timed, rows marked ``unchecked``; the others skipped with a note."""
    reps, warmup, max_seconds = timing
    nch, frames = x.shape
    try:
        steps = effect_chains.design(chain.configs, chain.sample_rate, nch, x)
    except PresetError as exc:
        say(f"note: {nch} ch skipped: {exc}")
        return []
    rows = []
    for b in backends:
        if b in skipped:
            continue
        if b not in ("cpu", "cuda"):
            skipped.add(b)
            say(f"note: {b} skipped: the chain has effects without a {b} equivalent")
            continue
        if b == "cuda" and not torch.cuda.is_available():
            skipped.add(b)
            say("note: cuda skipped: CUDA is not available")
            continue
        run = effect_chains.runner(b, steps, chain.sample_rate, nch)
        t = time_runner(run, x, warmup, reps, max_seconds)
        name = cpu_name() if b == "cpu" else torch.cuda.get_device_name()
        row = make_row(
            chain.name, b, name, duration, nch, chain.sample_rate, frames,
            t.times, t.transfers, None, None,
        )  # fmt: skip
        say(
            f"    {b:<10} median {row['median_s']:.4g} s over {len(t.times)} reps, "
            f"{row['msamples_per_s']} Msamples/s (unchecked)"
        )
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- output


class CsvSink:
    """Writes rows to a CSV file as they arrive (header first), flushing each."""

    def __init__(self, path: str | Path, columns: Sequence[str] = COLUMNS) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        try:
            self._fh: TextIO = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise BenchError.for_option(
                "output", f"{path}: cannot write ({exc.strerror})"
            ) from None
        self._w = csv.DictWriter(self._fh, fieldnames=self.columns, extrasaction="ignore")
        self._w.writeheader()
        self._fh.flush()

    def write(self, row: dict[str, Any]) -> None:
        self._w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in self.columns})
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def write_csv(
    rows: Iterable[dict[str, Any]], path: str | Path, columns: Sequence[str] = COLUMNS
) -> None:
    sink = CsvSink(path, columns)
    try:
        for r in rows:
            sink.write(r)
    finally:
        sink.close()


def json_line(row: dict[str, Any]) -> str:
    return json.dumps({k: row.get(k) for k in COLUMNS})


def check_plot_available() -> None:
    """Raise :class:`BenchError` (one line) when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BenchError.for_option("plot", "needs matplotlib: pip install 'fxcli[plot]'") from None


def write_plot(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Throughput (Msamples/s) against duration, log x axis, one line per backend
    and channel count; mismatching points are marked with a red x."""
    check_plot_available()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    keys = sorted(
        {(r["backend"], r["channels"]) for r in rows},
        key=lambda k: (ALL_BACKENDS.index(k[0]) if k[0] in ALL_BACKENDS else 99, k[1]),
    )
    for backend, nch in keys:
        pts = sorted(
            (r for r in rows if r["backend"] == backend and r["channels"] == nch),
            key=lambda r: r["duration_s"],
        )
        xs = [r["duration_s"] for r in pts]
        ys = [r["msamples_per_s"] for r in pts]
        ax.plot(xs, ys, marker="o", label=f"{backend}, {nch} ch")
        bad = [(r["duration_s"], r["msamples_per_s"]) for r in pts if r["check"] == "MISMATCH"]
        if bad:
            ax.scatter(
                [b[0] for b in bad], [b[1] for b in bad], marker="x", s=120, color="red", zorder=5
            )
    ax.set_xscale("log")
    durations = sorted({r["duration_s"] for r in rows})
    if durations:
        from matplotlib.ticker import NullFormatter

        ax.set_xticks(durations, [f"{d:g}" for d in durations])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("signal duration (s)")
    ax.set_ylabel("throughput (M samples/s, median)")
    if rows:
        r0 = rows[0]
        note = " (red x: output MISMATCH)" if any(r["check"] == "MISMATCH" for r in rows) else ""
        ax.set_title(f"fxcli bench: chain {r0['chain']} at {r0['sample_rate']} Hz{note}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    try:
        fig.savefig(str(path), dpi=110)
    except OSError as exc:
        raise BenchError.for_option("plot", f"{path}: cannot write ({exc.strerror})") from None
    finally:
        plt.close(fig)


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as a Markdown table with the given columns (missing values left blank)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append(
            "| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in columns) + " |"
        )
    return "\n".join(lines)
