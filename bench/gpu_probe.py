"""Where the GPU time goes: kernel breakdowns and variants for one device lease.

Run on a CUDA machine from the project root (``python bench/gpu_probe.py iir fir grad``);
each section prints JSON lines and appends them to ``$OUT/probe.jsonl``. Sections:

- ``iir``: ``sosfilt_triton`` on the seed chain (4 sections), 12 ch x SEC s float32:
  the whole call, then pass 1, the scan and pass 2 timed apart, then a sweep of
  segment length, lanes per program, warps and the lane-major layout.
- ``fir``: ``firfilt`` on CUDA, the float64 paths against the Triton block-Toeplitz
  kernel (tf32x3 and ieee dots) and a sweep of its tile sizes.
- ``grad``: forward vs forward+backward of ``sosfilt`` (8 ch x 60 s) and the
  profiler's top CUDA kernels of one backward.

A dry run on the CPU: ``DEV=cpu SEC=2 TRITON_INTERPRET=1 python bench/gpu_probe.py iir``
(tiny sizes; checks that the script runs, times mean nothing).

Every timing: CUDA events around the call, after a warm-up, median of the repeats.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.signal as sig
import torch

OUT = os.environ.get("OUT", "/tmp")
DEV = os.environ.get("DEV", "cuda")
SEC = float(os.environ.get("SEC", "600"))
FS = 44100


def emit(**row: Any) -> None:
    print(json.dumps(row), flush=True)
    with open(os.path.join(OUT, "probe.jsonl"), "a") as fh:
        fh.write(json.dumps(row) + "\n")


def timeit(fn: Callable[[], Any], reps: int = 5, budget: float = 10.0) -> float:
    """Median seconds of ``fn`` after one warm-up call (CUDA events on CUDA)."""
    fn()
    if DEV == "cuda":
        torch.cuda.synchronize()
    ts: list[float] = []
    t_start = time.perf_counter()
    for _ in range(reps):
        if DEV == "cuda":
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            ts.append(a.elapsed_time(b) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        if time.perf_counter() - t_start > budget:
            break
    return statistics.median(ts)


def seed_sos() -> np.ndarray:
    return np.concatenate(
        [
            sig.butter(2, 1000, "highpass", fs=FS, output="sos"),
            sig.butter(2, 5000, fs=FS, output="sos"),
            sig.cheby1(2, 0.5, 1500, "highpass", fs=FS, output="sos"),
            sig.cheby1(2, 0.5, 1800, fs=FS, output="sos"),
        ]
    )


def noise(ch: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator(device=DEV).manual_seed(seed)
    x = torch.randn((ch, n), device=DEV, generator=g, dtype=torch.float32)
    return x / x.abs().amax(dim=1, keepdim=True)


def sweep(
    name: str,
    what: str,
    fn: Callable[..., tuple[torch.Tensor, Any]],
    variants: list[dict[str, Any]],
    err: Callable[[torch.Tensor], float],
    samples: int,
    budget_s: float,
) -> None:
    """Time ``fn(**v)`` for each variant (its error first), within ``budget_s`` seconds."""
    t_end = time.perf_counter() + budget_s
    for v in variants:
        if time.perf_counter() > t_end:
            emit(section=name, what="sweep stopped (time budget)")
            break
        try:
            y, _ = fn(**v)
            e = err(y)
            del y
            t = timeit(lambda v=v: fn(**v), reps=3)
            emit(section=name, what=what, **v, seconds=t, gsps=round(samples / t / 1e9, 2), err=e)
        except Exception as exc:  # noqa: BLE001
            emit(section=name, what=what, **v, error=f"{type(exc).__name__}: {exc}"[:300])


def section(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def deco(f: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            t0 = time.perf_counter()
            try:
                f()
            except Exception as e:  # report and go on
                emit(section=name, error=f"{type(e).__name__}: {e}"[:400])
                traceback.print_exc()
            print(f"-- {name}: {time.perf_counter() - t0:.1f} s", flush=True)

        return run

    return deco


@section("iir")
def iir() -> None:
    import triton

    from fxcli.dsp.iir import triton as st
    from fxcli.dsp.iir.scan import block_mats as _block_mats

    sos = seed_sos()
    ch, n = 12, int(SEC * FS)
    x = noise(ch, n)
    samples = ch * n
    ref = torch.from_numpy(sig.sosfilt(sos, x[:1, : 20 * FS].double().cpu().numpy(), axis=-1))

    def err(y: torch.Tensor) -> float:
        return float((y[:1, : 20 * FS].double().cpu() - ref).abs().max())

    y_def, _ = st.sosfilt_triton(x, sos)
    t = timeit(lambda: st.sosfilt_triton(x, sos))
    emit(
        section="iir",
        what="sosfilt_triton default",
        seconds=t,
        gsps=round(samples / t / 1e9, 2),
        err=err(y_def),
    )

    # breakdown of the default (tiled) path: pass 1, scan, pass 2, the sequential tail
    seg = st._segment_length(ch, n, x.device)
    block, warps = 64, 2
    nsec = sos.shape[0]
    mats = _block_mats(np.ascontiguousarray(sos), seg, x.device)
    coef = np.zeros((st._MAX_SEC, 5))
    coef[:nsec] = sos[:, [0, 1, 2, 4, 5]]
    coef_t = torch.from_numpy(coef).to(x.device)
    j_main = (n - 1) // seg
    f = torch.zeros((ch, j_main + 1, 2 * nsec), dtype=torch.float64, device=x.device)
    zf = torch.empty((ch, 2 * nsec), dtype=torch.float64, device=x.device)
    y = torch.empty_like(x)
    state = torch.zeros((ch, 2 * nsec), dtype=torch.float64, device=x.device)
    grid = (ch * triton.cdiv(j_main, block),)
    kw = dict(L=seg, NSEC=nsec, BLOCK=block, num_warps=warps)

    def p1() -> None:
        st._tile_kernel[grid](x, y, coef_t, f, j_main, j_main + 1, n, PASS2=False, **kw)

    p1()
    f_saved = f.clone()
    s_in = st._scan(f, state, mats.PT)
    s_tail = s_in[:, j_main:].contiguous()
    a0 = j_main * seg

    def scan() -> None:
        f.copy_(f_saved)
        st._scan(f, state, mats.PT)

    def copy_only() -> None:
        f.copy_(f_saved)

    def p2() -> None:
        st._tile_kernel[grid](x, y, coef_t, s_in, j_main, j_main + 1, n, PASS2=True, **kw)

    def tail() -> None:
        st._seg_kernel[(ch,)](
            x[:, a0:],
            y[:, a0:],
            coef_t,
            s_tail,
            zf,
            n - a0,
            1,
            n,
            L=seg,
            NSEC=nsec,
            BLOCK=16,
            PASS2=True,
            num_warps=1,
        )

    t_p1, t_scan, t_copy, t_p2, t_tail = (
        timeit(p1),
        timeit(scan),
        timeit(copy_only),
        timeit(p2),
        timeit(tail),
    )
    t_mats = timeit(lambda: _block_mats(np.ascontiguousarray(sos), seg, x.device))
    emit(
        section="iir",
        what="breakdown (tile)",
        seg=seg,
        block=block,
        n_segs=j_main + 1,
        pass1_s=t_p1,
        scan_s=t_scan - t_copy,
        pass2_s=t_p2,
        tail_s=t_tail,
        block_mats_cached_s=t_mats,
        pass1_gsps=round(samples / t_p1 / 1e9, 1),
        pass2_gsps=round(samples / t_p2 / 1e9, 1),
    )

    variants: list[dict[str, Any]] = [
        dict(seg=4096, block=128, num_warps=4),
        dict(seg=2048, block=64, num_warps=2),
        dict(seg=8192, block=64, num_warps=2),
        dict(seg=4096, block=32, num_warps=1),
        dict(seg=4096, block=64, num_warps=2, layout="plain"),
    ]
    sweep("iir", "variant", lambda **kw: st.sosfilt_triton(x, sos, **kw), variants, err,
          samples, float(os.environ.get("IIR_SWEEP_S", "60")))  # fmt: skip


@section("fir")
def fir() -> None:
    from fxcli.dsp.fir import firfilt

    try:
        from fxcli.dsp.fir import triton as fir_triton
    except Exception as exc:  # noqa: BLE001
        fir_triton = None
        emit(section="fir", what="fir_triton import", error=str(exc)[:300])
    ch, n = 12, int(SEC * FS)
    x = noise(ch, n, seed=5)
    samples = ch * n
    h = sig.firwin(101, 1000, fs=FS, pass_zero=False)
    ht = torch.from_numpy(h).to(DEV)
    ref = torch.from_numpy(sig.lfilter(h, [1.0], x[:1, : 20 * FS].double().cpu().numpy()))

    def err(y: torch.Tensor) -> float:
        return float((y[:1, : 20 * FS].double().cpu() - ref).abs().max())

    budget = float(os.environ.get("FIR_SWEEP_S", "40"))
    methods = [dict(method=m) for m in ("fft", "direct", "auto")]
    sweep("fir", "firfilt K=101", lambda **kw: firfilt(x, ht, **kw), methods, err, samples, budget)
    chain = [
        torch.from_numpy(sig.firwin(k, fc, fs=FS, pass_zero=pz)).to(DEV)
        for k, fc, pz in (
            (101, 1000, False),
            (102, 5000, True),
            (103, 1500, False),
            (104, 1800, True),
            (105, 1850, True),
        )
    ]

    def five() -> None:
        y = x
        for hh in chain:
            y, _ = firfilt(y, hh)

    t = timeit(five, reps=3)
    emit(
        section="fir",
        what="firfilt auto, the seed chain of 5 FIRs",
        seconds=t,
        gsps=round(samples / t / 1e9, 2),
    )

    def fft_os_f32(xx: torch.Tensor, hh: torch.Tensor, nfft: int) -> torch.Tensor:
        """float32 overlap-save (a candidate, not fxcli's path): frames of nfft, hop nfft-K+1."""
        k = hh.shape[0]
        step = nfft - (k - 1)
        nf = -(-xx.shape[-1] // step)
        xp = torch.nn.functional.pad(xx, (k - 1, nf * step + nfft - (k - 1) - xx.shape[-1]))
        fr = xp.unfold(-1, nfft, step)[:, :nf]
        hf = torch.fft.rfft(hh.float(), n=nfft)
        out = torch.fft.irfft(torch.fft.rfft(fr, dim=-1) * hf, n=nfft, dim=-1)[..., k - 1 :]
        return out.reshape(xx.shape[0], nf * step)[:, : xx.shape[-1]]

    sweep("fir", "candidate: float32 FFT overlap-save",
          lambda nfft: (fft_os_f32(x, ht, nfft), None),
          [dict(nfft=n) for n in (2048, 8192, 32768)], err, samples, budget)  # fmt: skip
    if fir_triton is None:
        return
    combos: list[dict[str, Any]] = [dict(precision=p) for p in ("tf32x3", "tf32", "ieee")]
    for m, nn, bk in (
        (64, 32, 32),
        (128, 32, 32),
        (128, 64, 32),
        (64, 64, 16),
        (64, 64, 64),
        (64, 16, 16),
        (128, 16, 16),
        (64, 128, 32),
    ):
        combos.append(dict(m=m, n=nn, bk=bk))
    for nw, ns in ((8, 3), (4, 2), (4, 4)):
        combos.append(dict(num_warps=nw, num_stages=ns))
    sweep("fir", "firfilt_triton", lambda **kw: fir_triton.firfilt_triton(x, ht, **kw),
          combos, err, samples, budget)  # fmt: skip


@section("grad")
def grad() -> None:
    from fxcli.dsp.iir import sosfilt

    sos = torch.from_numpy(seed_sos()).to(DEV)
    x = noise(8, int(SEC / 10 * FS), seed=9)
    t_f = timeit(lambda: sosfilt(x, sos))
    xg = x.clone().requires_grad_(True)
    sg = sos.clone().requires_grad_(True)

    def fb() -> None:
        y, _ = sosfilt(xg, sg)
        y.square().sum().backward()

    t_fb = timeit(fb, reps=3)
    emit(
        section="grad",
        what="fwd vs fwd+bwd (8 ch x SEC/10 s, x and sos)",
        fwd_s=t_f,
        fwd_bwd_s=t_fb,
        ratio=round(t_fb / t_f, 2),
    )
    if DEV != "cuda":
        return
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        fb()
        torch.cuda.synchronize()
    table = prof.key_averages().table(
        sort_by="cuda_time_total", row_limit=18, max_name_column_width=60
    )
    print(table, flush=True)
    with open(os.path.join(OUT, "grad_profile.txt"), "w") as fh:
        fh.write(table)


def main() -> None:
    print(torch.__version__, torch.cuda.get_device_name() if DEV == "cuda" else DEV, flush=True)
    which = sys.argv[1:] or ["iir", "fir", "grad"]
    table = {"iir": iir, "fir": fir, "grad": grad}
    for w in which:
        table[w]()
        if DEV == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
