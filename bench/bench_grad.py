#!/usr/bin/env python
"""Gradient cost: forward vs forward + backward through ``fxcli.dsp.sosfilt``.

The seed IIR chain (``presets/iir_chain.yaml``: Butterworth HP 1 kHz, LP 5 kHz,
Chebyshev-I HP 1.5 kHz, LP 1.8 kHz, order 2), designed with
``fxcli.preset.build.build_chain`` and fused with ``fxcli.steps.fusion`` into one (4, 6)
cascade, on normalized float32 noise (8 channels x 60 s at 44.1 kHz by default).
Loss = sum of squares of the output. Rows (median of ``--reps`` timed runs after a
warm-up; the kernels are compiled/loaded by the warm-up):

- ``forward``: ``sosfilt(x, sos)`` without autograd (the engine's path)
- ``forward-recording``: the same call with ``x`` and ``sos`` requiring grad
  (the autograd Function's forward: the same kernels, plus block states)
- ``backward``: ``y.backward(2 y)`` alone, i.e. the filter's backward for the loss
  sum(y^2) (gradients w.r.t. ``x`` and ``sos``; the compiled fused adjoint on the CPU)
- ``forward+loss+backward``: one whole training step of that loss (includes torch's
  own elementwise ops for the loss and its gradient)
- ``backward-composed``: the differentiable backward (the CUDA / double-backward
  path of :mod:`fxcli.dsp.iir.autograd`) run on the CPU, for reference
- on CUDA (when available): ``cuda-forward`` / ``cuda-backward`` likewise

``ratio`` is the row's time over ``forward``. torchaudio (``lfilter`` with
autograd) is compared when importable, else skipped with a note.

Usage::

    python bench/bench_grad.py [--duration 60] [--channels 8] [--reps 5]
        [--output bench/results/grad.csv] [--no-composed]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
sys.path.insert(0, str(REPO))

from fxcli.dsp.iir import autograd as ag  # noqa: E402
from fxcli.dsp.iir import sosfilt  # noqa: E402
from fxcli.measure import benchmark as B  # noqa: E402
from fxcli.preset.build import build_chain  # noqa: E402
from fxcli.preset.loader import load_preset  # noqa: E402
from fxcli.steps import IIR, fuse  # noqa: E402

COLUMNS = ["device", "case", "median_s", "min_s", "ratio", "msamples_per_s", "note"]


def _time(fn, reps: int, sync=lambda: None) -> list[float]:
    fn()  # warm-up (compiles / loads the kernels)
    sync()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t0)
    return out


def _seed_sos(preset: Path, fs: int, channels: int) -> torch.Tensor:
    steps = fuse(build_chain(load_preset(str(preset)).steps, fs, channels))
    if len(steps) != 1 or not isinstance(steps[0], IIR):
        raise SystemExit(f"bench_grad: {preset} is not one IIR cascade after fuse")
    return steps[0].sos.detach().cpu().to(torch.float64)


def run_device(
    dev: torch.device, x: torch.Tensor, sos: torch.Tensor, reps: int, composed: bool = True
) -> list[dict]:
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    prefix = "cuda-" if dev.type == "cuda" else ""
    x = x.to(dev)
    sos = sos.to(dev)
    samples = x.numel()
    rows = []

    def row(case, ts, base, note=""):
        med = statistics.median(ts)
        rows.append(
            {
                "device": B.cpu_name() if dev.type == "cpu" else torch.cuda.get_device_name(dev),
                "case": prefix + case,
                "median_s": round(med, 5),
                "min_s": round(min(ts), 5),
                "ratio": round(med / base, 2) if base else 1.0,
                "msamples_per_s": round(samples / med / 1e6, 1),
                "note": note,
            }
        )
        return med

    t_fwd = row("forward", _time(lambda: sosfilt(x, sos), reps, sync), None, "no autograd")
    xg = x.clone().requires_grad_(True)
    sg = sos.clone().requires_grad_(True)
    gy = 2 * sosfilt(x, sos)[0]  # d(sum of squares)/dy

    def clear():
        xg.grad = None
        sg.grad = None

    ts_f, ts_b = [], []
    for i in range(reps + 1):  # the first is a warm-up
        clear()
        sync()
        t0 = time.perf_counter()
        y, _ = sosfilt(xg, sg)
        sync()
        t1 = time.perf_counter()
        y.backward(gy)
        sync()
        t2 = time.perf_counter()
        if i:
            ts_f.append(t1 - t0)
            ts_b.append(t2 - t1)
        del y
    row("forward-recording", ts_f, t_fwd, "x, sos require grad")
    row("backward", ts_b, t_fwd, "y.backward(2 y): grads of x and sos")

    def step():
        clear()
        y, _ = sosfilt(xg, sg)
        y.square().sum().backward()

    row("forward+loss+backward", _time(step, reps, sync), t_fwd, "loss = sum(y^2), all included")
    if dev.type == "cpu" and composed:
        rows_ = x.reshape(-1, x.shape[-1])
        gy = 2 * sosfilt(rows_, sos)[0]
        gzf = torch.zeros((sos.shape[0], rows_.shape[0], 2), dtype=torch.float64)
        with torch.no_grad():
            ts = _time(
                lambda: ag._sos_backward_composed(rows_, sos, None, gy, gzf, "auto"),
                max(1, reps // 2),
            )
        row("backward-composed", ts, t_fwd, "differentiable backward (CUDA/double-bwd path)")
    try:
        import torchaudio.functional as AF  # noqa: F401
    except Exception:  # noqa: BLE001
        print("note: torchaudio not installed: autograd through lfilter skipped", file=sys.stderr)
    else:  # pragma: no cover - not installed on the dev VM
        xa = x.clone().requires_grad_(True)
        coeffs = [(s[3:].to(x.dtype), s[:3].to(x.dtype)) for s in sos]

        def ta():
            y = xa
            for a, b in coeffs:
                y = AF.lfilter(y, a, b, clamp=False)
            y.square().sum().backward()

        row("torchaudio-lfilter-fwd+bwd", _time(ta, reps, sync), t_fwd, "per biquad")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--preset", default=str(REPO / "presets" / "iir_chain.yaml"))
    ap.add_argument("--output", default=str(ROOT / "results" / "grad.csv"))
    ap.add_argument(
        "--no-composed", action="store_true", help="skip the (slow) composed-backward row"
    )
    a = ap.parse_args(argv)
    fs = a.sample_rate
    sos = _seed_sos(Path(a.preset), fs, a.channels)
    x = torch.from_numpy(B.make_noise(a.channels, round(a.duration * fs)))
    rows = run_device(torch.device("cpu"), x, sos, a.reps, not a.no_composed)
    if torch.cuda.is_available():
        rows += run_device(torch.device("cuda"), x, sos, a.reps)
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    with open(a.output, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    print(
        f"{a.channels} ch x {a.duration:g} s float32 at {fs} Hz, {sos.shape[0]} sections, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(B.markdown_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
