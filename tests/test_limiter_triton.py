"""The lookahead limiter on the device (fxcli.dsp.limiter_triton) against the compiled
CPU kernel (issue 17: "Dynamics on CUDA without a CPU hop": the limiter copied every
CUDA chunk to the host and back).

The CPU checks run the Triton programs under Triton's interpreter in a subprocess
(``TRITON_INTERPRET=1``, see tests/conftest.py) on small signals (the interpreter is
slow): sample-peak and true-peak modes; mono, stereo, three channels and linked rows;
lookaheads of 1 to 40 frames (windows of several planner blocks); fast and slow
releases; the BS.1770 interpolator (4 x 12), an 8 x 16 one and the default (8 x 48);
the requirement stage in small blocks; level jumps, fs/4 squares, gated clipped noise
and sparse impulses 12 dB over the ceiling; chunked calls (the initial skip of the
latency frames inside and across chunks, one-frame chunks) and the flush with zero
frames that ``Limiter.flush`` does; float32 and float64; NaN and inf. With the
true-peak margin set to 0 or -0.5 dB the planner overshoots, so the exact check
corrects often, down to its least-excess fallback. Every output, gain and state field
must equal the CPU kernel's bit for bit (under the interpreter the device programs do
the same operations in the same order; on a GPU libdevice's ``pow`` and the prefix
sum's association may differ in the last bit, hence the tolerances of the ``cuda``
tests), and chunked device calls must equal one call. Deliberately broken programs
(the planner's window one short, the least-excess search without its second
candidates, the state's ring read one column off, the second fit aimed at the
target) failed these checks.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest
import torch

from tests.conftest import run_triton_checks

pytest.importorskip("triton")

_CHECKS = textwrap.dedent(
    r"""
    import torch
    from fxcli.dsp import dynamics as D
    from fxcli.dsp import limiter_triton as LT
    from fxcli.dsp.truepeak import BS1770, Interpolator, kaiser_sinc_phases

    IT8 = Interpolator("test", 8, kaiser_sinc_phases(8, 16), 15, 8.0)
    FS = 8000.0

    def same(a, b, what):
        a = np.asarray(a); b = np.asarray(b)
        assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
        assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
        if not np.array_equal(a, b, equal_nan=True):
            bad = ~((a == b) | (np.isnan(a) & np.isnan(b)))
            err = np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))
            idx = np.argwhere(bad)[0].tolist()
            raise AssertionError(f"{what}: {int(bad.sum())} differ, first at {idx}, max {err:.3g}")

    def run(fn, t, cuts, kw):
        # the Limiter step's protocol: chunks carrying the state, then the flush
        st, ys = None, []
        for a, b in cuts:
            y, st = fn(t[..., a:b], st, **kw)
            ys.append(y)
        lat = D.limiter_latency(kw["lookahead"], kw["true_peak"], kw["fs"], kw["interp"])
        y, st = fn(torch.zeros((*t.shape[:-1], lat), dtype=t.dtype), st, **kw)
        ys.append(y)
        return torch.cat(ys, -1), st

    def compare(x, cuts, margin=None, dtype=torch.float64, one=False, **kw):
        kw.setdefault("fs", FS)
        kw.setdefault("interp", BS1770)
        t = torch.from_numpy(x).to(dtype)
        old = D.TRUE_PEAK_MARGIN_DB
        if margin is not None:  # the planner overshoots: the exact check corrects
            D.TRUE_PEAK_MARGIN_DB = margin
        try:
            ref, rst = run(D.limit, t, cuts, kw)
            got, gst = run(D._limit_device, t, cuts, kw)
            if one:  # chunked device calls equal one call
                whole, wst = run(D._limit_device, t, [(0, t.shape[-1])], kw)
        finally:
            D.TRUE_PEAK_MARGIN_DB = old
        assert ref.shape == t.shape, (ref.shape, t.shape)
        same(got.numpy(), ref.numpy(), "output")
        for name, a, b in zip(rst._fields, gst, rst):
            same(a.numpy(), b.numpy(), f"state.{name}")
        if one:
            same(whole.numpy(), got.numpy(), "one call vs chunks")
            for name, a, b in zip(rst._fields, wst, gst):
                same(a.numpy(), b.numpy(), f"state.{name} one call vs chunks")
        nz = np.abs(t.numpy()) > 1e-3
        if dtype == torch.float64 and nz.any():  # the gain itself: y / x
            same((got.numpy()[nz] / t.numpy()[nz]), (ref.numpy()[nz] / t.numpy()[nz]), "gain")
        return float(np.nanmax(np.abs(ref.numpy() - t.numpy())))

    def sig(kind, shape, seed=0):
        rng = np.random.default_rng(seed)
        n = shape[-1]
        t = np.arange(n)
        if kind == "jumps":  # noise with level jumps up and down
            x = rng.standard_normal(shape) * 0.2
            x[..., n // 3 : n // 2] *= 6
            x[..., 2 * n // 3 :] *= 3
        elif kind == "squares":  # fs/4 squares: the largest inter-sample peaks
            x = np.broadcast_to(0.2 * np.sign(np.sin(np.pi / 2 * t + 0.3)), shape).copy()
            x[..., n // 4 :] *= 5
        elif kind == "impulses":  # sparse clicks 12 dB over a 0.5 ceiling
            x = rng.standard_normal(shape) * 0.02
            flat = x.reshape(-1, n)
            for s in rng.integers(10, n - 10, 12):
                flat[rng.integers(0, flat.shape[0]), s] = rng.choice([-1, 1]) * 2.0
        else:  # gated clipped noise
            x = np.clip(rng.standard_normal(shape) * 3, -2, 2)
            x = x * (rng.uniform(0, 1, (*shape[:-2], 1, n)) > 0.7)
        return x

    def case(name, fn):
        check(name, fn)

    def small(name, value, fn):  # a smaller block size of the device path
        old = getattr(LT, name)
        setattr(LT, name, value)
        try:
            fn()
        finally:
            setattr(LT, name, old)

    # sample-peak mode: the planner alone (lookahead 40: three blocks of 16 requirements)
    for la, rel in ((1, 0.05), (7, 2.0), (40, 20.0)):
        case(f"sp-stereo-jumps-la{la}", lambda la=la, rel=rel: small("_RAMP_BLOCK", 16,
            lambda: compare(
                sig("jumps", (2, 160), 1), [(0, 60), (60, 61), (61, 160)], one=la == 7,
                ceiling=0.5, true_peak=False, lookahead=la, release_ms=rel)))
    case("sp-linked-rows-f32", lambda: compare(
        sig("impulses", (2, 2, 150), 2), [(0, 3), (3, 150)], dtype=torch.float32,
        ceiling=0.5, true_peak=False, lookahead=5, release_ms=1.0))
    case("sp-mono-rows-nan-inf", lambda: compare(
        np.where(np.arange(150) == 90, np.nan, np.where(np.arange(150) == 120, -np.inf,
                 sig("jumps", (3, 1, 150), 3))),
        [(0, 100), (100, 150)], ceiling=0.5, true_peak=False, lookahead=4, release_ms=1.0))

    # true-peak mode, the planner's margin as shipped
    case("tp-stereo-jumps", lambda: compare(
        sig("jumps", (1, 2, 110), 4), [(0, 10), (10, 11), (11, 110)], one=True,
        ceiling=0.5, true_peak=True, lookahead=3, release_ms=1.0))
    case("tp-mono-impulses-f32", lambda: compare(
        sig("impulses", (1, 150), 5), [(0, 150)], dtype=torch.float32,
        ceiling=0.5, true_peak=True, lookahead=1, release_ms=0.05))
    # the requirement stage in blocks of a few frames
    case("tp-3ch-squares-it8-blocks", lambda: small("_TP_BLOCK_VALUES", 100, lambda: compare(
        sig("squares", (3, 120), 6), [(0, 70), (70, 120)],
        ceiling=0.5, true_peak=True, lookahead=2, release_ms=0.5, interp=IT8)))
    case("tp-default-interp", lambda: compare(
        sig("jumps", (1, 70), 7), [(0, 40), (40, 70)], fs=48000.0, interp=None,
        ceiling=0.5, true_peak=True, lookahead=2, release_ms=0.2))
    # no margin / a negative one: corrections, the fit to the ceiling, the least excess
    case("tp-squares-margin0-corrections", lambda: compare(
        sig("squares", (1, 2, 160), 8), [(0, 90), (90, 160)], margin=0.0,
        ceiling=0.5, true_peak=True, lookahead=1, release_ms=0.05))
    case("tp-gated-margin-neg-rows", lambda: compare(
        sig("gated", (2, 2, 90), 9), [(0, 50), (50, 90)], margin=-0.5,
        ceiling=0.5, true_peak=True, lookahead=4, release_ms=2.0))
    case("tp-impulses-margin-neg-nan", lambda: compare(
        np.where(np.arange(150) == 120, np.nan, sig("impulses", (1, 2, 150), 10)),
        [(0, 100), (100, 150)], margin=-0.5,
        ceiling=0.5, true_peak=True, lookahead=1, release_ms=0.05))

    def empty_and_state_device():
        t = torch.from_numpy(sig("jumps", (2, 40), 11))
        kw = dict(ceiling=0.5, true_peak=True, lookahead=2, release_ms=1.0, fs=FS, interp=BS1770)
        y, st = D._limit_device(t[..., :0], None, **kw)
        assert y.shape == (2, 0) and int(st.skip) == D.limiter_latency(2, True, FS, BS1770)
        y, st = D._limit_device(t[..., :10], st, **kw)  # inside the 24 frames of latency
        assert y.shape == (2, 0) and int(st.skip) == D.limiter_latency(2, True, FS, BS1770) - 10
        y, st = D._limit_device(t[..., 10:], st, **kw)
        assert y.shape == (2, 16) and int(st.skip) == 0
        assert all(v.dtype == torch.float64 for v in st[:-1]) and st.skip.dtype == torch.int64
    case("empty-and-skip", empty_and_state_device)
    report()
    """
)


@pytest.fixture(scope="module")
def results() -> dict[str, str]:
    return run_triton_checks(_CHECKS, timeout=900)


def test_device_limiter_equals_cpu_kernel_under_interpreter(results: dict[str, str]) -> None:
    """issue 17: the device limiter's output, gain and state equal the CPU kernel's."""
    assert len(results) >= 13, results
    bad = {k: v for k, v in results.items() if v}
    assert not bad, bad


def test_cpu_tensors_and_arrays_keep_the_compiled_core() -> None:
    """The device path is for CUDA tensors; CPU tensors and numpy arrays never take it."""
    from fxcli.dsp import limiter_triton as LT

    assert not LT.usable(torch.zeros(3))
    assert not LT.usable(np.zeros(3))


@pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION")
def test_gpu_compile_without_gpu() -> None:
    """The compiled (non-interpreter) code path: lower both programs to sm_90 cubins
    ahead of time (no GPU needed, only triton's bundled ptxas), catching code the
    interpreter accepts but the compiler does not (scalar ``if``/``while`` types,
    libdevice's ``pow``, the barriers); fused multiply-adds are off (the CPU's
    arithmetic), so the only ``fma`` left is inside libdevice's ``pow``."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        pytest.skip("TRITON_INTERPRET set in this process")
    import triton

    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as exc:  # pragma: no cover - other triton versions
        pytest.skip(f"triton AOT API not available: {exc}")
    from fxcli.dsp import limiter_triton as LT

    target = GPUTarget("cuda", 90, 32)
    sp_sig = {"rr_ptr": "*fp64", "gp_ptr": "*fp64", "out_ptr": "*fp64", "n": "i32",
              "rlen": "i32", "ramp": "i32", "p_ptr": "*fp64", "BR": "constexpr"}  # fmt: skip
    tp_sig = {
        **{k: "*fp64" for k in ("xx_ptr", "rr_ptr", "h_ptr", "gp_ptr", "plan_ptr", "fin_ptr",
                                "unf_ptr", "out_ptr", "scr_ptr", "p_ptr")},
        **{k: "i32" for k in ("n", "nx", "rlen", "ramp", "C", "L", "T")},
        **{k: "constexpr" for k in ("BR", "LP", "CLP", "TP")},
    }  # fmt: skip
    opts = {"num_warps": 4, "enable_fp_fusion": False}
    try:
        sp = triton.compile(
            ASTSource(fn=LT._sp_kernel, signature=sp_sig, constexprs={"BR": 256}),
            target=target, options=opts,
        )  # fmt: skip
    except RuntimeError as exc:  # e.g. ptxas missing from this triton build
        if "ptxas" in str(exc).lower():
            pytest.skip(f"no usable ptxas: {exc}")
        raise
    tp = triton.compile(
        ASTSource(fn=LT._tp_kernel, signature=tp_sig,
                  constexprs={"BR": 256, "LP": 8, "CLP": 16, "TP": 64}),
        target=target, options=opts,
    )  # fmt: skip
    for c in (sp, tp):
        assert "cubin" in c.asm and "div.rn.f64" in c.asm["ptx"]
    assert "bar.sync" in tp.asm["ptx"] or "barrier.sync" in tp.asm["ptx"]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_limiter_step_equals_cpu_and_stays_on_device() -> None:
    """issue 17: the Limiter step on CUDA (no CPU hop: the state lives on the device)
    equals the CPU, chunked and flushed, in both modes."""
    from fxcli.steps.dynamics import Limiter
    from tests.conftest import noise, run_chunked

    x = torch.from_numpy(noise(2, 150_000, seed=4)) * 3.0
    x[:, 50_000:50_010] = torch.tensor([4.0, -4.0] * 5)  # fs/4-like burst
    for true_peak in (True, False):
        lim = Limiter(ceiling_db=-1.0, true_peak=true_peak, release_ms=30.0, fs=48000)
        ref = run_chunked(lim, x, 40_000)
        st = lim.init_state((2,), "cuda")
        _, st = lim.process(x[:, :1000].cuda(), st)
        assert st[0].pending.device.type == "cuda" and st[0].fin.device.type == "cuda"
        got = run_chunked(lim, x.cuda(), 40_000).cpu()
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_mastering_chain_equals_cpu() -> None:
    """issue 17: the mastering preset (its true-peak limiter now on the device) on
    CUDA equals the CPU."""
    from fxcli.engine.runner import process_array
    from fxcli.preset.build import build_step
    from fxcli.preset.loader import load_preset
    from tests.conftest import noise

    fs = 48000
    x = torch.from_numpy(noise(2, 200_000, seed=5))
    cpu = process_array([build_step(c, fs) for c in load_preset("mastering").steps], x,
                        chunk=65_536)  # fmt: skip
    gpu = process_array(
        [build_step(c, fs) for c in load_preset("mastering").steps], x, chunk=65_536,
        device="cuda",
    ).cpu()  # fmt: skip
    torch.testing.assert_close(gpu, cpu, rtol=0, atol=1e-6)
