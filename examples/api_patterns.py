"""The code patterns of the TorchFX performance guide (seed 000), with ``fxcli``.

Each section below is a snippet of the guide with ``torchfx`` replaced by
``fxcli`` (``import fxcli as fx``), run on the bundled example audio or on the
guide's noise signal, and checked against SciPy or against whole-file
processing:

1. API patterns: a custom ``nn.Module`` chain, ``nn.Sequential``, the pipe
   operator (``wave | F1(...) | F2(...)``, sample rate filled in), the SciPy
   baseline (``cheby1``/``butter`` + ``lfilter``) on the api_bench chain.
2. FIR chain: ``DesignableFIR`` x5 with ``compute_coefficients()``, against
   ``firwin`` + ``lfilter``.
3. IIR chain with ``compute_coefficients()`` and ``move_coeff(device)``.
4. Filter-chain optimization: coefficients computed once, the chain reused for
   several files (a file at another rate is refused with a clear error).
5. Device strategy: ``cuda`` if available else ``cpu``; ``Wave.from_file`` ->
   pipe -> ``.to("cpu").save(...)`` (the source subtype, PCM_24, is kept).
6. ``process_long_audio_chunked`` exactly as in the guide (every chunk filtered
   from rest, so chunk edges differ from whole-file processing) and the same
   loop carrying fxcli's explicit state, which equals whole-file processing.
7. A small timing table like the guide's api_bench (few repetitions, short
   signal): seconds per call and the ratio to SciPy. Ratios on a loaded machine
   are indicative only; ``bench/`` has the real benchmarks.
8. (not with ``--quick``) the PyTorch profiler pattern.

Usage::

    python examples/api_patterns.py [--out DIR] [--quick]

Writes the processed files into ``--out`` (default: a temporary directory,
removed at the end). Exits 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from scipy.signal import butter, cheby1, firwin, lfilter
from torch import nn

import fxcli as fx
from fxcli.filter import DesignableFIR, HiButterworth, HiChebyshev1, LoButterworth, LoChebyshev1

AUDIO = Path(__file__).resolve().parent / "audio"
MUSIC = AUDIO / "music_stereo.wav"  # 4 s, 44.1 kHz, stereo, PCM_24
VOICE = AUDIO / "voice" / "voice_mono.flac"  # 4 s, 48 kHz, mono, PCM_16
SAMPLE_RATE = 44100

_failures: list[str] = []


def check(ok: bool, what: str) -> None:
    """Print one check line; remember failures for the exit status."""
    print(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        _failures.append(what)


def maxdiff(a: Any, b: Any) -> float:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def create_audio(sample_rate: int, duration: float, num_channels: int) -> np.ndarray:
    """The guide's test signal: per-channel normalized Gaussian noise, float32
    ``(num_channels, samples)`` (seeded here so runs repeat)."""
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((num_channels, int(sample_rate * duration)))
    signal = signal.astype(np.float32)
    signal /= np.max(np.abs(signal), axis=1, keepdims=True)
    return signal


# ---------------------------------------------------------------- 1. API patterns


class FilterChain(nn.Module):
    """API pattern 1: a custom module for the api_bench chain (fs passed explicitly)."""

    def __init__(self, fs: float) -> None:
        super().__init__()
        self.f1 = HiChebyshev1(20, fs=fs)
        self.f2 = HiChebyshev1(60, fs=fs)
        self.f3 = HiChebyshev1(65, fs=fs)
        self.f4 = LoButterworth(5000, fs=fs)
        self.f5 = LoButterworth(4900, fs=fs)
        self.f6 = LoButterworth(4850, fs=fs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.f1(x)
        x = self.f2(x)
        x = self.f3(x)
        x = self.f4(x)
        x = self.f5(x)
        x = self.f6(x)
        return x


def sequential_chain(fs: float) -> nn.Sequential:
    """API pattern 2: ``nn.Sequential`` with fs passed to each filter."""
    return nn.Sequential(
        HiChebyshev1(20, fs=fs),
        HiChebyshev1(60, fs=fs),
        HiChebyshev1(65, fs=fs),
        LoButterworth(5000, fs=fs),
        LoButterworth(4900, fs=fs),
        LoButterworth(4850, fs=fs),
    )


def pipe_chain(signal: fx.Wave) -> fx.Wave:
    """API pattern 3: the pipe operator (sample rate taken from the Wave)."""
    return (
        signal
        | HiChebyshev1(20)
        | HiChebyshev1(60)
        | HiChebyshev1(65)
        | LoButterworth(5000)
        | LoButterworth(4900)
        | LoButterworth(4850)
    )


def scipy_chain(signal: np.ndarray, fs: float = SAMPLE_RATE) -> np.ndarray:
    """API pattern 4: the SciPy baseline (pre-computed b/a, sequential lfilter)."""
    b1, a1 = cheby1(2, 0.5, 20, btype="high", fs=fs)
    b2, a2 = cheby1(2, 0.5, 60, btype="high", fs=fs)
    b3, a3 = cheby1(2, 0.5, 65, btype="high", fs=fs)
    b4, a4 = butter(2, 5000, btype="low", fs=fs)
    b5, a5 = butter(2, 4900, btype="low", fs=fs)
    b6, a6 = butter(2, 4850, btype="low", fs=fs)
    filtered = lfilter(b1, a1, signal)
    filtered = lfilter(b2, a2, filtered)
    filtered = lfilter(b3, a3, filtered)
    filtered = lfilter(b4, a4, filtered)
    filtered = lfilter(b5, a5, filtered)
    filtered = lfilter(b6, a6, filtered)
    return filtered


def section_api_patterns(signal_data: np.ndarray) -> None:
    print("1. API patterns (api_bench chain: 3x HiChebyshev1 + 3x LoButterworth)")
    signal = fx.Wave(signal_data, SAMPLE_RATE)
    custom = FilterChain(signal.fs)(signal.ys)
    sequential = sequential_chain(signal.fs)(signal.ys)
    piped = pipe_chain(signal)
    reference = scipy_chain(signal_data.astype(np.float64))
    check(piped.fs == SAMPLE_RATE, f"pipe filled in fs = {piped.fs} Hz")
    check(torch.equal(custom, sequential), "custom nn.Module == nn.Sequential (bit for bit)")
    d = maxdiff(piped.ys, custom)
    check(d < 1e-6, f"pipe (engine's fused cascade) vs custom module: max |diff| {d:.1e}")
    d = maxdiff(piped.ys, reference)
    check(d < 2e-6, f"pipe vs SciPy lfilter chain (float64): max |diff| {d:.1e}")


# ---------------------------------------------------------------- 2. FIR chain


def section_fir(signal_data: np.ndarray) -> None:
    print("2. FIR chain: DesignableFIR x5, compute_coefficients()")
    wave = fx.Wave(signal_data, SAMPLE_RATE)
    fchain = nn.Sequential(
        DesignableFIR(num_taps=101, cutoff=1000, fs=SAMPLE_RATE),
        DesignableFIR(num_taps=102, cutoff=5000, fs=SAMPLE_RATE),
        DesignableFIR(num_taps=103, cutoff=1500, fs=SAMPLE_RATE),
        DesignableFIR(num_taps=104, cutoff=1800, fs=SAMPLE_RATE),
        DesignableFIR(num_taps=105, cutoff=1850, fs=SAMPLE_RATE),
    )
    for f in fchain:  # pre-compute coefficients before timing
        f.compute_coefficients()
    wave.to("cpu")
    fchain.to("cpu")
    y = (wave | fchain).ys
    # SciPy FIR baseline
    filtered = signal_data.astype(np.float64)
    for taps, cutoff in zip((101, 102, 103, 104, 105), (1000, 5000, 1500, 1800, 1850), strict=True):
        filtered = lfilter(firwin(taps, cutoff, fs=SAMPLE_RATE), [1.0], filtered)
    d = maxdiff(y, filtered)
    check(d < 1e-5, f"wave | fchain vs firwin + lfilter: max |diff| {d:.1e}")


# ---------------------------------------------------------------- 3. IIR chain


def section_iir(signal_data: np.ndarray, device: str) -> None:
    print(f"3. IIR chain: compute_coefficients() and move_coeff({device!r})")
    wave = fx.Wave(signal_data, SAMPLE_RATE)
    fchain = nn.Sequential(
        HiButterworth(cutoff=1000, order=2, fs=SAMPLE_RATE),
        LoButterworth(cutoff=5000, order=2, fs=SAMPLE_RATE),
        HiChebyshev1(cutoff=1500, order=2, fs=SAMPLE_RATE),
        LoChebyshev1(cutoff=1800, order=2, fs=SAMPLE_RATE),
    )
    wave.to(device)
    fchain.to(device)
    for f in fchain:
        f.compute_coefficients()
        f.move_coeff(device)
    y = fchain(wave.ys)
    check(y.device.type == device, f"output on {y.device}, dtype {y.dtype}")
    x = signal_data.astype(np.float64)
    for b, a in (
        butter(2, 1000, btype="high", fs=SAMPLE_RATE),
        butter(2, 5000, btype="low", fs=SAMPLE_RATE),
        cheby1(2, 0.5, 1500, btype="high", fs=SAMPLE_RATE),
        cheby1(2, 0.5, 1800, btype="low", fs=SAMPLE_RATE),
    ):
        x = lfilter(b, a, x)
    d = maxdiff(y, x)
    check(d < 2e-6, f"fchain(wave.ys) vs SciPy: max |diff| {d:.1e}")


# ---------------------------------------------------------------- 4. chain optimization


def section_chain_optimization(out: Path, device: str) -> None:
    print("4. Filter chain optimization: coefficients once, chain reused per file")
    fchain = nn.Sequential(
        DesignableFIR(num_taps=101, cutoff=1000, fs=SAMPLE_RATE),
        HiButterworth(cutoff=500, order=2, fs=SAMPLE_RATE),
    )
    for f in fchain:
        f.compute_coefficients()
    fchain.to(device)
    for f in fchain:
        if hasattr(f, "move_coeff"):
            f.move_coeff(device)
    for audio_file in (MUSIC, VOICE):
        wave = fx.Wave.from_file(audio_file).to(device)
        try:
            result = wave | fchain  # uses the cached coefficients
            path = result.to("cpu").save(out / f"processed_{audio_file.name}")
        except ValueError as err:  # the chain was designed for 44.1 kHz
            check(
                wave.fs != SAMPLE_RATE and "built for fs=44100 Hz" in str(err),
                f"{audio_file.name} ({wave.fs} Hz) refused: {err}",
            )
            continue
        check(path.exists(), f"{audio_file.name} -> {path.name} ({sf.info(str(path)).subtype})")


# ---------------------------------------------------------------- 5. device strategy


def section_device(out: Path, device: str) -> None:
    print(f"5. Device strategy: one device throughout ({device})")
    wave = fx.Wave.from_file(MUSIC).to(device)
    fchain = torch.nn.Sequential(
        fx.filter.HiButterworth(cutoff=80, order=2),
        fx.filter.LoButterworth(cutoff=12000, order=4),
    ).to(device)
    result = wave | fchain  # all operations on the same device
    path = result.to("cpu").save(out / "output.wav")  # CPU only for the final I/O
    info = sf.info(str(path))
    check(
        info.subtype == "PCM_24" and info.samplerate == SAMPLE_RATE,
        f"saved {path.name}: {info.subtype}, {info.samplerate} Hz, {info.channels} ch "
        "(source subtype kept)",
    )
    # the numbers of the file: SciPy's sosfilt of the source, rounded to 24 bits
    x, _ = sf.read(str(MUSIC), dtype="float64", always_2d=True)
    sos = np.concatenate(
        [
            butter(2, 80, "high", fs=SAMPLE_RATE, output="sos"),
            butter(4, 12000, "low", fs=SAMPLE_RATE, output="sos"),
        ]
    )
    from scipy.signal import sosfilt

    ref = sosfilt(sos, x.T)
    y, _ = sf.read(str(path), dtype="float64", always_2d=True)
    d = maxdiff(y.T, ref)
    check(d < 2 / 2**23, f"saved file vs SciPy sosfilt: max |diff| {d * 2**23:.2f} LSB (24-bit)")


# ---------------------------------------------------------------- 6. chunked processing


def process_long_audio_chunked(wave: fx.Wave, fchain: nn.Module, chunk_duration: float = 60):
    """The guide's helper, unchanged: each chunk is piped separately, so every
    chunk starts from rest (the filter state is not carried across chunks)."""
    chunk_samples = int(chunk_duration * wave.fs)
    num_chunks = (wave.ys.size(-1) + chunk_samples - 1) // chunk_samples
    device = "cuda" if torch.cuda.is_available() else "cpu"
    fchain.to(device)
    results = []
    for i in range(num_chunks):
        start = i * chunk_samples
        end = min((i + 1) * chunk_samples, wave.ys.size(-1))
        chunk = fx.Wave(wave.ys[..., start:end], wave.fs).to(device)
        processed_chunk = chunk | fchain
        results.append(processed_chunk.ys.cpu())
        if device == "cuda":
            torch.cuda.empty_cache()
    return fx.Wave(torch.cat(results, dim=-1), wave.fs)


def process_long_audio_chunked_exact(
    wave: fx.Wave, fchain: nn.Module, chunk_duration: float = 60
) -> fx.Wave:
    """The same loop with fxcli's explicit state: ``y, state = step(chunk, state)``
    carries every filter's state across chunks, and ``flush`` returns what a step
    still holds at the end (latency), so the result equals whole-file processing.

    ``fchain``: a step (``fxcli.filter``/``fxcli.effect`` class with its ``fs``) or
    an ``nn.Sequential`` of them. Chunks go to the GPU when there is one; the
    output is gathered on the CPU.
    """
    steps: list[Any] = list(fchain) if isinstance(fchain, nn.Sequential) else [fchain]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    fchain.to(device)
    ys = wave.ys
    states = [s.init_state(tuple(ys.shape[:-1]), device) for s in steps]
    chunk_samples = int(chunk_duration * wave.fs)
    results = []
    for start in range(0, ys.size(-1), chunk_samples):
        y = ys[..., start : start + chunk_samples].to(device)
        for i, step in enumerate(steps):
            y, states[i] = step(y, states[i])
        results.append(y.cpu())
    tail: torch.Tensor | None = None  # end of stream: flush each step in order
    for i, step in enumerate(steps):
        if tail is not None and tail.shape[-1]:
            tail, states[i] = step(tail, states[i])
        held, states[i] = step.flush(states[i])
        if held is not None:
            tail = held if tail is None else torch.cat([tail, held.to(tail.dtype)], dim=-1)
    if tail is not None:
        results.append(tail.cpu())
    return fx.Wave(torch.cat(results, dim=-1), wave.fs)


def section_chunked() -> None:
    print("6. Chunked processing of long audio (0.5 s chunks of the 4 s music file)")
    device = "cuda" if torch.cuda.is_available() else "cpu"  # where the helpers filter
    wave = fx.Wave.from_file(MUSIC)
    on_device = fx.Wave(wave.ys.to(device), wave.fs)
    whole = (on_device | fx.filter.LoButterworth(cutoff=1000, order=4)).ys.cpu()
    fchain = fx.filter.LoButterworth(cutoff=1000, order=4)
    seed_version = process_long_audio_chunked(wave, fchain, chunk_duration=0.5)
    d = maxdiff(seed_version.ys, whole)
    check(
        seed_version.ys.shape == whole.shape and d > 1e-3,
        f"guide's helper (each chunk from rest) vs whole file: max |diff| {d:.1e} "
        "(errors at the chunk edges)",
    )
    # numba on the CPU: chunked == whole bit for bit; the GPU kernel agrees to rounding
    tol, how = (0.0, "bit for bit") if device == "cpu" else (1e-6, "to float32 rounding")
    fchain = fx.filter.LoButterworth(cutoff=1000, order=4, fs=wave.fs)
    exact = process_long_audio_chunked_exact(wave, fchain, chunk_duration=0.5)
    d = maxdiff(exact.ys, whole)
    check(d <= tol, f"with explicit state vs whole file: max |diff| {d:.1e} ({device}, {how})")
    # a chain whose steps hold frames back (resampler latency) flushes them at the end
    chain = nn.Sequential(
        fx.filter.HiButterworth(cutoff=80, fs=wave.fs),
        fx.effect.Resample(22050, fs=wave.fs, backend="torch"),
        fx.filter.LoButterworth(cutoff=5000, fs=22050),
    )
    exact = process_long_audio_chunked_exact(wave, chain, chunk_duration=0.5)
    ref = chain[2](chain[1](chain[0](on_device.ys))).cpu()  # whole signal, step by step
    d = maxdiff(exact.ys, ref)
    check(
        exact.ys.shape == ref.shape and d < 1e-6,
        f"highpass | resample 22.05 kHz | lowpass, chunked with state vs whole: "
        f"{tuple(exact.ys.shape)}, max |diff| {d:.1e}",
    )


# ---------------------------------------------------------------- 7. timing


def section_timing(quick: bool, device: str) -> None:
    channels, duration, rep = (2, 1.0, 3) if quick else (8, 5.0, 5)
    print(f"7. Timing ({channels} ch x {duration:g} s noise at 44.1 kHz, {rep} repetitions)")
    signal_data = create_audio(SAMPLE_RATE, duration, channels)
    wave = fx.Wave(signal_data, SAMPLE_RATE)
    x64 = signal_data.astype(np.float64)

    def test_class() -> torch.Tensor:
        fchain = FilterChain(wave.fs)
        return fchain(wave.ys)

    def test_sequential() -> torch.Tensor:
        return sequential_chain(wave.fs)(wave.ys)

    def test_pipe() -> torch.Tensor:
        return pipe_chain(wave).ys  # .ys runs the lazy pipe

    def test_scipy() -> np.ndarray:
        return scipy_chain(x64)

    built = sequential_chain(wave.fs)

    def test_built_once() -> torch.Tensor:
        return built(wave.ys)

    # the guide's "basic benchmarking template" pipeline, coefficients pre-computed
    pipeline = torch.nn.Sequential(
        fx.filter.HiButterworth(cutoff=100, order=2),
        fx.filter.LoButterworth(cutoff=10000, order=4),
        fx.effect.Normalize(peak=0.9),
    )
    for module in pipeline:
        if hasattr(module, "compute_coefficients"):
            module.compute_coefficients()

    def test_template() -> torch.Tensor:
        return (wave | pipeline).ys

    peak = float(test_template().abs().max())
    check(abs(peak - 0.9) < 1e-6, f"template pipeline (Normalize(peak=0.9)): peak {peak:.6f}")

    # the guide's api_bench builds the chain inside the timed call (design included)
    rows: list[tuple[str, Callable[[], Any]]] = [
        ("custom nn.Module", test_class),
        ("nn.Sequential", test_sequential),
        ("pipe operator", test_pipe),
        ("SciPy lfilter", test_scipy),
        ("Sequential, built once", test_built_once),
        ("template pipeline", test_template),
    ]
    times = {}
    for name, fn in rows:
        fn()  # warm-up (numba kernels, design cache)
        times[name] = timeit.timeit(fn, number=rep) / rep
    base = times["SciPy lfilter"]
    print(f"  {'pattern':<24} {'s / call':>10} {'vs SciPy':>9}")
    for name, t in times.items():
        print(f"  {name:<24} {t:10.5f} {t / base:8.2f}x")
    if device == "cuda":
        wave_gpu = fx.Wave(signal_data, SAMPLE_RATE).to("cuda")
        fchain = sequential_chain(SAMPLE_RATE).to("cuda")  # coefficients are buffers

        def gpu() -> None:
            fchain(wave_gpu.ys)
            torch.cuda.synchronize()

        gpu()
        t = timeit.timeit(gpu, number=rep) / rep
        print(f"  {'built once, cuda':<24} {t:10.5f} {t / base:8.2f}x")


# ---------------------------------------------------------------- 8. profiler


def section_profiler(device: str) -> None:
    print("8. PyTorch profiler")
    wave = fx.Wave.from_file(MUSIC).to(device)
    pipeline = torch.nn.Sequential(
        fx.filter.LoButterworth(cutoff=1000, order=4),
        fx.filter.HiButterworth(cutoff=100, order=2),
    ).to(device)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities, record_shapes=True) as prof:
        result = wave | pipeline
        _ = result.ys  # the pipe is lazy: run it inside the profiled region
    sort = "cuda_time_total" if device == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=6))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: temp)")
    parser.add_argument("--quick", action="store_true", help="short signals, no profiler")
    args = parser.parse_args(argv)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"fxcli {fx.__version__}, torch {torch.__version__}, device {device}")
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="fxcli-api-patterns-")
        out = Path(tmp.name)
    else:
        out = args.out
        out.mkdir(parents=True, exist_ok=True)
    try:
        signal_data = create_audio(SAMPLE_RATE, 0.5 if args.quick else 2.0, 8)
        section_api_patterns(signal_data)
        section_fir(signal_data)
        section_iir(signal_data, device)
        section_chain_optimization(out, device)
        section_device(out, device)
        section_chunked()
        section_timing(args.quick, device)
        if not args.quick:
            section_profiler(device)
    finally:
        if tmp is not None:
            tmp.cleanup()
    where = "a temporary folder (removed)" if tmp is not None else str(out)
    if _failures:
        print(f"FAILED {len(_failures)} check(s); outputs in {where}")
        return 1
    print(f"all checks passed; outputs in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
