#!/usr/bin/env python
"""GPU IIR kernel benchmark: the Triton ``sosfilt`` against the torch backend and torchaudio.

Input: float32 Gaussian noise (``fxcli.measure.benchmark.make_noise``), 12 channels x 10 min
at 44.1 kHz by default, already on the GPU (host transfers are not timed). Chain: the
seed IIR chain (``presets/iir_chain.yaml``: Butterworth HP 1 kHz, LP 5 kHz,
Chebyshev-I HP 1.5 kHz, LP 1.8 kHz, order 2), designed with
``fxcli.preset.loader.load_preset`` + ``fxcli.preset.build.build_step`` and fused with
``fxcli.steps.fusion`` into one 4-section cascade.

Backends (one row each, the CSV columns of ``bench/bench_kernels.py`` / ``fxcli bench``):

- ``fxcli-sosfilt-triton``: ``fxcli.dsp.iir.triton.sosfilt_triton`` (float32 in/out,
  float64 inside)
- ``fxcli-sosfilt-torch``: ``fxcli.dsp.sosfilt(..., backend="torch")``
- ``torchaudio-lfilter``: ``torchaudio.functional.lfilter`` once per biquad
  (float32, ``clamp=False``), when torchaudio is installed

Every timing is bracketed by ``torch.cuda.synchronize()``. ``max_abs_error`` is
against the torch backend run on the float64 signal (on the GPU); the
``speedup_vs_scipy`` column holds the speedup over torchaudio's ``lfilter`` when it
ran, else over the torch backend (the column name is shared with the other
benches). ``msamples_per_s`` / 1000 = Gsamples/s (also printed).

Without CUDA (or triton) it prints a message and exits 0.

Usage::

    python bench/bench_triton.py [--duration 600] [--channels 12] [--reps 10]
        [--max-seconds 30] [--output bench/results/triton.csv] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _time_gpu(fn, x, warmup: int, reps: int, budget_s: float) -> list[float]:
    for _ in range(warmup):
        fn(x)
    _sync(x.device)
    times: list[float] = []
    t_start = time.perf_counter()
    while len(times) < reps:
        _sync(x.device)
        t0 = time.perf_counter()
        y = fn(x)
        _sync(x.device)
        times.append(time.perf_counter() - t0)
        del y
        if time.perf_counter() - t_start > budget_s:
            break
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--channels", type=int, default=12)
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=30.0, help="time budget per backend")
    ap.add_argument("--preset", default="iir_chain")
    ap.add_argument("--output", default=str(ROOT / "results" / "triton.csv"))
    ap.add_argument("--markdown", action="store_true", help="also print a markdown table")
    ap.add_argument("--no-torchaudio", action="store_true")
    ap.add_argument(
        "--device",
        default="cuda",
        help="cuda (default); cpu only for a smoke test with TRITON_INTERPRET=1 and tiny sizes",
    )
    a = ap.parse_args(argv)

    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("bench_triton: no CUDA device, skipped", file=sys.stderr)
        return 0
    from fxcli.dsp.iir import triton as sos_triton

    if not sos_triton.available():
        print("bench_triton: triton not importable, skipped", file=sys.stderr)
        return 0

    from fxcli.cli.bench import finish
    from fxcli.dsp.iir import sosfilt
    from fxcli.measure import benchmark as B
    from fxcli.preset.build import build_step
    from fxcli.preset.loader import load_preset
    from fxcli.steps import IIR, fuse

    fs, nch = a.sample_rate, a.channels
    frames = round(a.duration * fs)
    steps = fuse([build_step(c, fs) for c in load_preset(a.preset).steps])
    iirs = [s for s in steps if isinstance(s, IIR)]
    if len(iirs) != 1 or len(steps) != 1:
        print(
            f"bench_triton: preset {a.preset!r} is not one IIR cascade after fuse", file=sys.stderr
        )
        return 2
    sos = iirs[0].sos.detach().cpu().to(torch.float64)
    x = torch.from_numpy(B.make_noise(nch, frames)).to(dev)
    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else B.cpu_name()

    backends = {
        "fxcli-sosfilt-triton": lambda v: sos_triton.sosfilt_triton(v, sos)[0],
        "fxcli-sosfilt-torch": lambda v: sosfilt(v, sos, backend="torch")[0],
    }
    if not a.no_torchaudio:
        try:
            import torchaudio.functional as AF

            coeffs = [
                (sec[3:].to(dev, torch.float32), sec[:3].to(dev, torch.float32)) for sec in sos
            ]

            def ta(v):
                for aa, bb in coeffs:
                    v = AF.lfilter(v, aa, bb, clamp=False)
                return v

            backends["torchaudio-lfilter"] = ta
        except Exception as exc:  # noqa: BLE001
            print(f"note: torchaudio skipped ({type(exc).__name__}: {exc})", file=sys.stderr)

    ref = sosfilt(x.double(), sos, backend="torch")[0]
    errors = {}
    for name, fn in backends.items():
        y = fn(x)
        _sync(dev)
        errors[name] = float((y.double() - ref).abs().max())
        del y
    del ref
    if dev.type == "cuda":
        torch.cuda.empty_cache()

    timings = {}
    for name, fn in backends.items():
        slow = name == "torchaudio-lfilter"
        timings[name] = _time_gpu(
            fn, x, 0 if slow else a.warmup, 1 if slow else a.reps, a.max_seconds
        )
        med = statistics.median(timings[name])
        print(
            f"{name}: median {med:.4g} s ({len(timings[name])} reps), "
            f"{nch * frames / med / 1e9:.3f} Gsamples/s, max abs error {errors[name]:.3g}",
            file=sys.stderr,
        )
    baseline = "torchaudio-lfilter" if "torchaudio-lfilter" in timings else "fxcli-sosfilt-torch"
    base = statistics.median(timings[baseline])

    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    sink = B.CsvSink(a.output)
    rows = []
    for name, t in timings.items():
        row = B.make_row(
            "iir", name, dev_name, a.duration, nch, fs, frames, t, [], errors[name], base
        )
        rows.append(row)
        sink.write(row)
    md = None
    if a.markdown:
        from bench_kernels import markdown  # noqa: PLC0415 - sibling script

        md = markdown(rows)
    status = finish(rows, sink, md)
    print(f"speedup column: vs {baseline}; wrote {a.output}", file=sys.stderr)
    return status


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
