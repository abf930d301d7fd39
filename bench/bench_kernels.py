#!/usr/bin/env python
"""Kernel comparison: fxcli's ``sosfilt`` / ``firfilt`` against SciPy on the seed chains.

Input: normalized float32 Gaussian noise (the seed's ``create_audio``), 8 channels x
60 s at 44.1 kHz by default. Chains (designed once, not timed):

- ``iir``: the seed IIR chain (Butterworth HP 1 kHz, LP 5 kHz, Chebyshev-I HP 1.5 kHz,
  LP 1.8 kHz, order 2 = 4 biquads).
- ``fir``: the seed FIR chain (5 windowed-sinc lowpasses, 101..105 taps).

Backends (one row each, same CSV columns as ``fxcli bench``):

- iir ``fxcli-sosfilt``: ``fxcli.dsp.sosfilt`` with all 4 sections in one call (numba)
- iir ``fxcli-sosfilt-torch``: the same with ``backend="torch"`` (the GPU algorithm,
  run on the CPU)
- iir ``scipy-sosfilt``: ``scipy.signal.sosfilt`` with the one combined (4, 6) sos
- iir ``scipy-lfilter-x4``: ``scipy.signal.lfilter(b, a)`` per filter (the seed's
  baseline)
- fir ``fxcli-firfilt``: ``fxcli.dsp.firfilt`` with the 5 filters' taps convolved
  (511 taps, one call, as the engine fuses them); a CPU tensor without autograd, so
  the compiled kernel behind a torch wrapper
- fir ``fxcli-firfilt-np``: ``fxcli.dsp.fir.cpu.firfilt_np``, the same fused taps on
  the numpy array (the CLI's torch-free path, the compiled kernel ``core.firfilt``)
- fir ``fxcli-firfilt-x5``: ``firfilt`` once per filter
- fir ``scipy-lfilter-x5``: ``scipy.signal.lfilter`` per filter, float64 taps (the
  seed's baseline)
- fir ``scipy-oaconvolve``: ``scipy.signal.oaconvolve`` with the combined taps
  (causal part)

plus, when installed, ``torchaudio-lfilter`` (per biquad, float32) and
``torchaudio-fftconvolve`` (per filter, float32). ``speedup_vs_scipy`` is relative
to the seed's baseline (``scipy-lfilter-x4`` / ``-x5``). Every output is checked
against the float64 reference of ``fxcli.measure.benchmark.reference`` first.

Usage::

    python bench/bench_kernels.py [--duration 60] [--channels 8] [--reps 5]
        [--max-seconds 20] [--output bench/results/kernels.csv] [--markdown]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import signal

from fxcli.cli.bench import finish
from fxcli.dsp.fir import firfilt
from fxcli.dsp.fir.cpu import firfilt_np
from fxcli.dsp.iir import sosfilt
from fxcli.measure import benchmark as B
from fxcli.steps import FIR, IIR

ROOT = Path(__file__).resolve().parent


def _timed(fn):
    def run(x):
        t0 = time.perf_counter()
        y = fn(x)
        return y, time.perf_counter() - t0, 0.0

    return run


def iir_backends(steps):
    sos_each = [s.sos.numpy() for s in steps if isinstance(s, IIR)]
    sos = np.concatenate(sos_each)
    sos_t = torch.from_numpy(sos)
    ba = [(sec[:3], sec[3:]) for s in sos_each for sec in s]  # order 2: one section each
    out = {
        "fxcli-sosfilt": lambda x: sosfilt(torch.from_numpy(x), sos_t, backend="cpu")[0],
        "fxcli-sosfilt-torch": lambda x: sosfilt(torch.from_numpy(x), sos_t, backend="torch")[0],
        "scipy-sosfilt": lambda x: signal.sosfilt(sos, x, axis=-1),
    }

    def lfilter_each(x):
        y = x
        for b, a in ba:
            y = signal.lfilter(b, a, y, axis=-1)
        return y

    out[f"scipy-lfilter-x{len(ba)}"] = lfilter_each
    try:
        import torchaudio.functional as AF

        coeffs = [
            (torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32))
            for b, a in ba
        ]

        def ta(x):
            y = torch.from_numpy(x)
            for a, b in coeffs:
                y = AF.lfilter(y, a, b, clamp=False)
            return y

        out["torchaudio-lfilter"] = ta
    except Exception as exc:  # noqa: BLE001
        print(f"note: torchaudio skipped ({type(exc).__name__})", file=sys.stderr)
    return out, f"scipy-lfilter-x{len(ba)}"


def fir_backends(steps):
    taps_each = [s.taps.numpy() for s in steps if isinstance(s, FIR)]
    taps = taps_each[0]
    for t in taps_each[1:]:
        taps = np.convolve(taps, t)
    taps_t = torch.from_numpy(taps)
    each_t = [torch.from_numpy(t) for t in taps_each]
    n_each = len(taps_each)

    def firfilt_each(x):
        y = torch.from_numpy(x)
        for t in each_t:
            y = firfilt(y, t)[0]
        return y

    def lfilter_each(x):
        y = x
        for t in taps_each:
            y = signal.lfilter(t, [1.0], y, axis=-1)
        return y

    def oaconv(x):
        return signal.oaconvolve(x, taps[None, :], mode="full", axes=-1)[:, : x.shape[1]]

    out = {
        "fxcli-firfilt": lambda x: firfilt(torch.from_numpy(x), taps_t)[0],
        "fxcli-firfilt-np": lambda x: firfilt_np(x, taps, None)[0],
        f"fxcli-firfilt-x{n_each}": firfilt_each,
        f"scipy-lfilter-x{n_each}": lfilter_each,
        "scipy-oaconvolve": oaconv,
    }
    try:
        import torchaudio.functional as AF

        each32 = [torch.tensor(t, dtype=torch.float32)[None, :] for t in taps_each]

        def ta(x):
            y = torch.from_numpy(x)
            n = y.shape[-1]
            for t in each32:
                y = AF.fftconvolve(y, t)[..., :n]
            return y

        out["torchaudio-fftconvolve"] = ta
    except Exception as exc:  # noqa: BLE001
        print(f"note: torchaudio skipped ({type(exc).__name__})", file=sys.stderr)
    return out, f"scipy-lfilter-x{n_each}"


def markdown(rows, extra=()):
    cols = [
        "chain",
        "backend",
        "duration_s",
        "channels",
        "reps",
        "median_s",
        "min_s",
        "max_s",
        "msamples_per_s",
        "realtime_factor",
        "speedup_vs_scipy",
        *extra,
        "max_abs_error",
        "check",
    ]
    return B.markdown_table(rows, cols)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=20.0)
    ap.add_argument("--chains", default="iir,fir")
    ap.add_argument("--output", default=str(ROOT / "results" / "kernels.csv"))
    ap.add_argument("--markdown", action="store_true", help="also print a markdown table")
    a = ap.parse_args(argv)
    fs, nch = a.sample_rate, a.channels
    frames = round(a.duration * fs)
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    sink = B.CsvSink(a.output)
    rows = []
    x = B.make_noise(nch, frames)
    for chain_name in a.chains.split(","):
        chain = B.resolve_chain(chain_name, fs)
        backends, baseline = (iir_backends if chain_name == "iir" else fir_backends)(chain.steps)
        ref = B.reference(chain.steps, x)
        errors, spent = {}, {}
        for name, fn in backends.items():
            t0 = time.perf_counter()
            y = fn(x)
            spent[name] = time.perf_counter() - t0
            errors[name] = B.max_abs_error(y, ref)
            del y
        del ref
        gc.collect()
        timings = {}
        for name, fn in backends.items():
            budget = max(0.0, a.max_seconds - spent[name])
            timings[name] = B.time_runner(_timed(fn), x, max(0, a.warmup - 1), a.reps, budget)
            print(
                f"{chain_name} {name}: median {statistics.median(timings[name].times):.4g} s "
                f"({len(timings[name].times)} reps), max abs error {errors[name]:.3g}",
                file=sys.stderr,
            )
        base = statistics.median(timings[baseline].times)
        for name, t in timings.items():
            row = B.make_row(
                chain_name,
                name,
                B.cpu_name(),
                a.duration,
                nch,
                fs,
                frames,
                t.times,
                t.transfers,
                errors[name],
                base,
            )
            rows.append(row)
            sink.write(row)
    status = finish(rows, sink, markdown(rows) if a.markdown else None)
    print(f"wrote {a.output}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
