"""Triton FIR kernel (fxcli.dsp.fir.triton) against scipy.signal.lfilter.

The CPU checks run the kernel under Triton's interpreter (``TRITON_INTERPRET=1``)
in one subprocess, so the variable never reaches this process or other test
modules (triton reads it when kernels are decorated). Sizes are small: the
interpreter runs every program in Python. The interpreter ignores ``tl.dot``'s
``input_precision`` (it multiplies in float32 with NumPy), so it checks the
indexing (windows, history, padding, masks, zf); the TF32 arithmetic is checked
by compiling to sm_90 PTX here and numerically by the ``cuda`` test on a GPU. The
whole module is skipped when triton is not importable.
"""

from __future__ import annotations

import os
import re
import textwrap

import numpy as np
import pytest
import torch

from tests.conftest import run_triton_checks

pytest.importorskip("triton")

# Runs in the subprocess: prints one JSON object {case: error message or ""}.
_CHECKS = textwrap.dedent(
    r"""
    import torch
    from scipy import signal as sig
    from fxcli.dsp.fir.triton import available, firfilt_triton
    from fxcli.dsp.fir import firfilt


    def taps(k, seed):
        if k == 1:
            return np.array([0.75])
        if k % 2:
            return sig.firwin(k, 0.3)
        return np.random.default_rng(seed).standard_normal(k) * (2.0 / k)  # sum|h| ~ 1.6

    def ref(h, x, zi):
        full = np.concatenate([zi, x.astype(np.float64)], axis=-1)
        k = len(h)
        return sig.lfilter(h, [1.0], full, axis=-1)[..., k - 1 :], full[..., x.shape[-1] :]

    def is_available():
        assert available(), "not available"
    check("available", is_available)

    rng = np.random.default_rng(1234)
    tiles = {"default": {}, "16-16-16": dict(m=16, n=16, bk=16)}
    for k in (1, 2, 31, 100, 105, 300):
        h = taps(k, k)
        for bi, batch in enumerate(((), (2, 3))):
            for tname, kw in tiles.items():
                def one(k=k, h=h, batch=batch, kw=kw):
                    t = int(rng.integers(300, 700)) | 1  # odd: never a multiple of a block
                    x = rng.uniform(-1, 1, (*batch, t)).astype(np.float32)
                    zi = rng.uniform(-1, 1, (*batch, k - 1))
                    r, rzf = ref(h, x, zi)
                    y, zf = firfilt_triton(torch.from_numpy(x), torch.from_numpy(h),
                                           torch.from_numpy(zi), **kw)
                    assert y.dtype == torch.float32 and y.shape == x.shape, (y.dtype, y.shape)
                    assert zf.dtype == torch.float64 and zf.shape == (*batch, k - 1)
                    close(y.double().numpy(), r, 1e-5, "y")
                    assert np.array_equal(zf.numpy(), rzf), "zf not the exact history"
                    # zi=None: zero history, lfilter's default
                    y0, zf0 = firfilt_triton(torch.from_numpy(x), torch.from_numpy(h), **kw)
                    close(y0.double().numpy(), sig.lfilter(h, [1.0], x.astype(np.float64),
                                                           axis=-1), 1e-5, "y (zi=None)")
                check(f"K{k}-batch{bi}-{tname}", one)

    def tile_sweep():
        h = taps(105, 0)
        x = rng.uniform(-1, 1, (2, 1001)).astype(np.float32)
        zi = rng.uniform(-1, 1, (2, 104))
        r, _ = ref(h, x, zi)
        for m, n, bk in ((16, 16, 16), (32, 64, 16), (64, 16, 64), (16, 128, 32),
                         (64, 64, 32)):
            for prec in ("tf32x3", "ieee", "tf32"):
                y, _ = firfilt_triton(torch.from_numpy(x), torch.from_numpy(h),
                                      torch.from_numpy(zi), m=m, n=n, bk=bk, precision=prec,
                                      num_warps=8, num_stages=2)
                close(y.double().numpy(), r, 1e-5, f"m={m} n={n} bk={bk} {prec}")
    check("tile-sweep", tile_sweep)

    def long_history():  # history spans several blocks of M * N outputs
        h = taps(300, 1)
        x = rng.uniform(-1, 1, (3, 700)).astype(np.float32)
        zi = rng.uniform(-1, 1, (3, 299))
        r, _ = ref(h, x, zi)
        y, _ = firfilt_triton(torch.from_numpy(x), torch.from_numpy(h), torch.from_numpy(zi),
                              m=16, n=16, bk=32)
        close(y.double().numpy(), r, 1e-5, "y")
    check("long-history", long_history)

    def round_trip():
        for k in (2, 105):
            h = torch.from_numpy(taps(k, 5))
            x = torch.from_numpy(rng.uniform(-1, 1, (2, 3, 1500)).astype(np.float32))
            zi = torch.from_numpy(rng.uniform(-1, 1, (2, 3, k - 1)))
            y, zf = firfilt_triton(x, h, zi, m=16, n=32, bk=16)
            parts, z = [], zi
            for a, b in ((0, 1), (1, 17), (17, 17), (17, 60), (60, 611), (611, 1500)):
                yc, z = firfilt_triton(x[..., a:b], h, z, m=16, n=32, bk=16)
                parts.append(yc)
            close(torch.cat(parts, -1).numpy(), y.numpy(), 1e-6, f"chunked y K={k}")
            assert torch.equal(z, zf), f"chunked zf K={k}"
    check("zi-round-trip", round_trip)

    def noncontiguous():
        h = torch.from_numpy(taps(31, 2))
        big = torch.from_numpy(rng.uniform(-1, 1, (3, 2, 600)).astype(np.float32))
        x = big.transpose(0, 1)[..., 3:]  # (2, 3, 597), strided, offset storage
        y, zf = firfilt_triton(x, h, m=16, n=16, bk=16)
        r, rzf = ref(h.numpy(), x.numpy(), np.zeros((2, 3, 30)))
        close(y.double().numpy(), r, 1e-5, "y")
        assert np.array_equal(zf.numpy(), rzf)
    check("noncontiguous", noncontiguous)

    def empty():
        h = torch.from_numpy(taps(31, 3))
        for batch in ((), (3,), (2, 2)):
            x = torch.zeros((*batch, 0), dtype=torch.float32)
            zi = torch.randn((*batch, 30), dtype=torch.float64)
            y, zf = firfilt_triton(x, h, zi)
            assert y.shape == x.shape and y.dtype == x.dtype
            assert torch.equal(zf, zi)
            y, zf = firfilt_triton(x, h)
            assert zf.shape == zi.shape and zf.dtype == torch.float64 and not zf.any()
        x = torch.zeros((0, 50), dtype=torch.float32)
        y, zf = firfilt_triton(x, h)
        assert y.shape == (0, 50) and zf.shape == (0, 30)
    check("time0", empty)

    def short_chunk():  # fewer samples than the history: zf keeps part of zi
        h = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
        zi = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
        y, zf = firfilt_triton(torch.tensor([[3.0]]), h, zi)
        assert torch.equal(zf, torch.tensor([[2.0, 3.0]], dtype=torch.float64))
        assert abs(y.item() - (0.5 * 3 + 0.25 * 2 + 0.25 * 1)) < 1e-6
    check("short-chunk", short_chunk)

    def errors():
        h = torch.tensor([0.5, 0.5])
        for bad, exc in (
            (lambda: firfilt_triton(torch.zeros(8, dtype=torch.float64), h), TypeError),
            (lambda: firfilt_triton(torch.zeros(8, dtype=torch.int32), h), TypeError),
            (lambda: firfilt_triton(torch.zeros(8), h, m=24), ValueError),
            (lambda: firfilt_triton(torch.zeros(8), h, bk=8), ValueError),
            (lambda: firfilt_triton(torch.zeros(8), h, precision="bf16"), ValueError),
            (lambda: firfilt_triton(torch.zeros(2, 8), h, torch.zeros(2)), ValueError),
            (lambda: firfilt_triton(torch.zeros(8), torch.tensor([1.0, float("inf")])),
             ValueError),
            (lambda: firfilt_triton(torch.zeros(8), torch.zeros(0)), ValueError),
        ):
            try:
                bad()
            except exc:
                pass
            else:
                raise AssertionError(f"no {exc.__name__}")
    check("errors", errors)

    def firfilt_wiring():
        h = torch.from_numpy(taps(105, 4))
        x = torch.from_numpy(rng.uniform(-1, 1, (2, 800)).astype(np.float32))
        zi = torch.from_numpy(rng.uniform(-1, 1, (2, 104)))
        yt, zft = firfilt_triton(x, h, zi)
        y, zf = firfilt(x, h, zi, method="triton")
        assert torch.equal(y, yt) and torch.equal(zf, zft)
        # "auto" on CPU tensors keeps the float64 paths (bit for bit)
        ya, zfa = firfilt(x, h, zi)
        yf, zff = firfilt(x, h, zi, method="fft")
        assert torch.equal(ya, yf) and torch.equal(zfa, zff)
        # float64 input: "triton" refuses it
        try:
            firfilt(x.double(), h, method="triton")
        except TypeError:
            pass
        else:
            raise AssertionError("float64 accepted by method='triton'")
    check("firfilt-wiring", firfilt_wiring)

    def gradients():  # method="triton" with gradients runs as "auto"
        h = torch.from_numpy(taps(31, 6))
        x = torch.from_numpy(rng.uniform(-1, 1, (2, 300)).astype(np.float32))
        w = torch.from_numpy(rng.standard_normal((2, 300)))
        grads = []
        for method in ("triton", "auto"):
            xg, hg = x.clone().requires_grad_(), h.clone().requires_grad_()
            y, _ = firfilt(xg, hg, method=method)
            (y.double() * w).sum().backward()
            grads.append((xg.grad, hg.grad))
        assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])
    check("gradients", gradients)

    report()
    """
)


@pytest.fixture(scope="module")
def interp_results() -> dict[str, str]:
    return run_triton_checks(_CHECKS, timeout=600)


def test_interpreter_cases(interp_results: dict[str, str]) -> None:
    assert len(interp_results) >= 30
    failed = {k: v for k, v in interp_results.items() if v}
    assert not failed, failed


@pytest.mark.parametrize(
    "case",
    [
        "available",
        "tile-sweep",
        "long-history",
        "zi-round-trip",
        "noncontiguous",
        "time0",
        "short-chunk",
        "errors",
        "firfilt-wiring",
        "gradients",
    ],
)
def test_interpreter_named(interp_results: dict[str, str], case: str) -> None:
    assert interp_results.get(case) == "", interp_results.get(case, "missing")


def test_not_available_on_cpu_without_interpreter() -> None:
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        pytest.skip("TRITON_INTERPRET set in this process")
    from fxcli.dsp.fir import firfilt
    from fxcli.dsp.fir import triton as fir_triton

    assert fir_triton.available() == torch.cuda.is_available()
    x = torch.zeros(8)
    h = torch.tensor([0.5, 0.5])
    with pytest.raises(ValueError, match="CUDA"):
        fir_triton.firfilt_triton(x, h)
    with pytest.raises(ValueError, match="CUDA"):
        firfilt(x, h, method="triton")
    y, _ = firfilt(x, h)  # "auto" on the CPU: the float64 paths, no triton
    assert y.shape == x.shape


@pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION")
def test_gpu_compile_without_gpu() -> None:
    """The compiled (non-interpreter) code path: lower the kernel to an sm_90 cubin
    ahead of time (needs no GPU, only triton's bundled ptxas). Checks that
    ``tf32x3`` becomes three TF32 tensor-core products per ``tf32`` one (big/small
    split by ``cvt.rna.tf32``), that ``ieee`` uses float32 FMAs and no tensor cores,
    and that with 16-divisible pointers/lengths the signal loads are 16-byte
    ``cp.async`` and the stores 16-byte vectors."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        pytest.skip("TRITON_INTERPRET set in this process")
    import triton

    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as exc:  # pragma: no cover - other triton versions
        pytest.skip(f"triton AOT API not available: {exc}")
    from fxcli.dsp.fir import triton as fir_triton

    kern = fir_triton._fir_kernel
    sig = {
        "x_ptr": "*fp32",
        "z_ptr": "*fp32",
        "t_ptr": "*fp32",
        "y_ptr": "*fp32",
        "T": "i32",
        "HL": "i32",
        "KP": "i32",
        "WPAD": "i32",
        "NB": "i32",
        "M": "constexpr",
        "N": "constexpr",
        "BK": "constexpr",
        "PRECISION": "constexpr",
    }
    div16 = ("x_ptr", "z_ptr", "t_ptr", "y_ptr", "T", "KP", "WPAD")
    attrs = {(kern.arg_names.index(a),): [["tt.divisibility", 16]] for a in div16}
    ptx = {}
    for prec in ("tf32x3", "tf32", "ieee"):
        src = ASTSource(
            fn=kern,
            signature=sig,
            constexprs={"M": 64, "N": 64, "BK": 32, "PRECISION": prec},
            attrs=attrs,
        )
        try:
            compiled = triton.compile(
                src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4, "num_stages": 3}
            )
        except RuntimeError as exc:  # e.g. ptxas missing from this triton build
            if "ptxas" in str(exc).lower():
                pytest.skip(f"no usable ptxas: {exc}")
            raise
        assert "cubin" in compiled.asm
        ptx[prec] = compiled.asm["ptx"]

    def tc(p: str) -> int:  # tensor-core TF32 instructions (wgmma on sm_90, else mma)
        return sum(
            1
            for ln in p.splitlines()
            if ("wgmma.mma_async" in ln or "mma.sync" in ln) and ".tf32" in ln
        )

    assert tc(ptx["tf32"]) > 0
    assert tc(ptx["tf32x3"]) == 3 * tc(ptx["tf32"])
    assert "cvt.rna.tf32" in ptx["tf32x3"]
    assert tc(ptx["ieee"]) == 0 and "fma.rn.f32" in ptx["ieee"]
    p = ptx["tf32x3"]
    # 16-byte signal loads: async copies to shared memory (or plain vector loads)
    assert re.search(r"cp\.async\.cg\.shared\.global \[[^]]*\], \[[^]]*\], 0x10\b", p) or (
        "ld.global.v4" in p
    )
    assert "st.global.v4" in p


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_float64_firfilt() -> None:
    from scipy import signal as sig

    from fxcli.dsp.fir import firfilt
    from fxcli.dsp.fir.triton import available, firfilt_triton

    assert available()
    gen = torch.Generator(device="cuda").manual_seed(0)
    for k, n_t in ((105, 2_000_000), (31, 1_000_003), (300, 500_001)):
        h = torch.from_numpy(sig.firwin(k, 0.2) if k % 2 else sig.firwin(k + 1, 0.2)[:k])
        x = 2 * torch.rand((12, n_t), device="cuda", generator=gen) - 1  # float32, |x| <= 1
        zi = 2 * torch.rand((12, k - 1), device="cuda", dtype=torch.float64, generator=gen) - 1
        _, ref_zf = firfilt(x, h, zi, method="fft")
        ref64, _ = firfilt(x.double(), h, zi, method="fft")  # float64 arithmetic
        y, zf = firfilt_triton(x, h, zi)
        assert y.dtype == torch.float32 and y.device.type == "cuda"
        assert torch.equal(zf, ref_zf)
        err = (y.double() - ref64).abs().max().item()
        assert err <= 1e-5, (k, n_t, err)
        # "auto" on a float32 CUDA tensor is the triton path
        ya, zfa = firfilt(x, h, zi)
        assert torch.equal(ya, y) and torch.equal(zfa, zf)
        # float64 keeps the float64 paths
        yd, _ = firfilt(x.double(), h, zi)
        assert yd.dtype == torch.float64
        torch.testing.assert_close(yd, ref64, rtol=0, atol=1e-12)
        # chunked == whole
        parts, z = [], zi
        for a, b in ((0, 7), (7, n_t // 3), (n_t // 3, n_t)):
            yc, z = firfilt_triton(x[:, a:b], h, z)
            parts.append(yc)
        # (other tile alignment: other float32 summation order, hence a tolerance)
        torch.testing.assert_close(torch.cat(parts, -1), y, rtol=0, atol=2e-6)
        assert torch.equal(z, zf)
        # other tiles and precisions
        for kw in (dict(m=128, n=32, bk=32), dict(m=32, n=128, bk=64), dict(precision="ieee")):
            yk, _ = firfilt_triton(x, h, zi, **kw)
            errk = (yk.double() - ref64).abs().max().item()
            assert errk <= 1e-5, (k, kw, errk)
    # against SciPy on a slice
    x = 2 * torch.rand((2, 50_000), device="cuda", generator=gen) - 1
    h = torch.from_numpy(sig.firwin(101, 0.1))
    y, _ = firfilt_triton(x, h)
    r = sig.lfilter(h.numpy(), [1.0], x.double().cpu().numpy(), axis=-1)
    np.testing.assert_allclose(y.double().cpu().numpy(), r, rtol=0, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gradients_through_triton_forward() -> None:
    """float32 CUDA input with gradients: the forward takes the triton path (auto),
    the gradients equal the float64 CPU ones within float32 rounding."""
    from fxcli.dsp.fir import firfilt

    x = 2 * torch.rand((2, 5000), dtype=torch.float64) - 1
    h = torch.randn(33, dtype=torch.float64) / 33
    w = torch.randn((2, 5000), dtype=torch.float64)
    res = {}
    for dev, dt in (("cpu", torch.float64), ("cuda", torch.float32)):
        # detach() first: x.to("cpu", float64) is x itself, so the CPU pass would make
        # x require grad and the CUDA copy a non-leaf without .grad (failed on the H200)
        xs = x.detach().to(dev, dt).requires_grad_()
        hs = h.detach().to(dev).requires_grad_()
        y, _ = firfilt(xs, hs, method="triton" if dev == "cuda" else "auto")
        (y.double() * w.to(dev)).sum().backward()
        res[dev] = (y.detach().double().cpu(), xs.grad.double().cpu(), hs.grad.cpu())
    for a, b in zip(res["cpu"], res["cuda"], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_auto_keeps_fft_for_long_filters() -> None:
    """Above AUTO_TRITON_MAX_TAPS taps "auto" is the float64 FFT path (bit for bit)."""
    from fxcli.dsp.fir import AUTO_TRITON_MAX_TAPS, firfilt

    x = torch.randn((2, 50_000), device="cuda")
    h = torch.randn(AUTO_TRITON_MAX_TAPS + 1, dtype=torch.float64) / 100
    torch.testing.assert_close(
        firfilt(x, h, method="auto")[0], firfilt(x, h, method="fft")[0], rtol=0, atol=0
    )
