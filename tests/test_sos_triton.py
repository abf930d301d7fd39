"""Triton sosfilt kernel (fxcli.dsp.iir.triton) against scipy.signal.sosfilt.

The CPU checks run the kernel under Triton's interpreter (``TRITON_INTERPRET=1``)
in one subprocess, so the variable never reaches this process or other test
modules (triton reads it when kernels are decorated). Sizes are small: the
interpreter runs every program in Python. The whole module is skipped when triton
is not importable; the ``cuda`` test compares with the torch backend on a real GPU.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest
import torch

from tests.conftest import run_triton_checks

pytest.importorskip("triton")

# Runs in the subprocess: prints one JSON object {case: error message or ""}.
_CHECKS = textwrap.dedent(
    r"""
    import warnings
    import torch
    from scipy import signal as sig
    from fxcli.dsp.iir.triton import available, sosfilt_triton


    def design(order, seed):
        rng = np.random.default_rng(seed)
        ftype = ("butter", "cheby1", "cheby2", "ellip")[int(rng.integers(4))]
        btype = ("lowpass", "highpass", "bandpass", "bandstop")[int(rng.integers(4))]
        fs = 48000.0
        f1 = float(np.exp(rng.uniform(np.log(300.0), np.log(0.3 * fs))))
        wn = [f1, min(1.8 * f1, 0.45 * fs)] if btype in ("bandpass", "bandstop") else f1
        if btype in ("bandpass", "bandstop"):
            order = max(1, order // 2)  # band designs double the order
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sos = sig.iirfilter(order, wn, rp=0.5, rs=60, btype=btype, ftype=ftype,
                                fs=fs, output="sos")
        assert np.abs(sig.sos2zpk(sos)[1]).max() < 1.0
        return sos

    def is_available():
        assert available(), "not available"
    check("available", is_available)

    rng = np.random.default_rng(1234)
    shapes = [(), (2,), (3, 2)]
    for order in range(1, 9):
        sos = design(order, 100 + order)
        S = sos.shape[0]
        for si, batch in enumerate(shapes):
            T = int(rng.integers(40, 120))
            x = rng.standard_normal((*batch, T))
            zi = 0.1 * rng.standard_normal((S, *batch, 2))
            for dt, atol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
                def one(sos=sos, x=x, zi=zi, dt=dt, atol=atol):
                    xt = torch.from_numpy(x).to(dt)
                    ref, ref_zf = sig.sosfilt(sos, xt.double().numpy(), axis=-1, zi=zi)
                    y, zf = sosfilt_triton(xt, torch.from_numpy(sos), torch.from_numpy(zi))
                    assert y.dtype == dt and y.shape == xt.shape, (y.dtype, y.shape)
                    assert zf.dtype == torch.float64 and zf.shape == zi.shape
                    close(y.double().numpy(), ref, atol, "y")
                    close(zf.numpy(), ref_zf, 1e-10 if dt == torch.float64 else 1e-9, "zf")
                check(f"order{order}-shape{si}-{str(dt)[6:]}", one)

    def zi_none():
        sos = design(4, 7)
        x = rng.standard_normal((2, 70))
        ref, ref_zf = sig.sosfilt(sos, x, axis=-1, zi=np.zeros((sos.shape[0], 2, 2)))
        y, zf = sosfilt_triton(torch.from_numpy(x), torch.from_numpy(sos))
        close(y.numpy(), ref, 1e-10, "y"); close(zf.numpy(), ref_zf, 1e-10, "zf")
    check("zi-none", zi_none)

    def round_trip():
        for order, seed in ((3, 11), (8, 12)):
            sos = torch.from_numpy(design(order, seed))
            x = torch.from_numpy(rng.standard_normal((2, 3, 150)))
            zi = torch.from_numpy(0.1 * rng.standard_normal((sos.shape[0], 2, 3, 2)))
            y, zf = sosfilt_triton(x, sos, zi)
            parts, z = [], zi
            for a, b in ((0, 1), (1, 17), (17, 17), (17, 60), (60, 150)):
                yc, z = sosfilt_triton(x[..., a:b], sos, z)
                parts.append(yc)
            close(torch.cat(parts, -1).numpy(), y.numpy(), 1e-12, "chunked y")
            close(z.numpy(), zf.numpy(), 1e-12, "chunked zf")
    check("zi-round-trip", round_trip)

    def layouts():  # the one-word kernel alone gives the tiled default's results
        for order, seed, T in ((4, 31, 150), (8, 32, 97), (11, 33, 64)):
            sos = torch.from_numpy(design(order, seed))
            x = torch.from_numpy(rng.standard_normal((2, T)))
            zi = torch.from_numpy(0.1 * rng.standard_normal((sos.shape[0], 2, 2)))
            y, zf = sosfilt_triton(x, sos, zi)
            for seg in (8, 16, 256):
                yl, zfl = sosfilt_triton(x, sos, zi, seg=seg, layout="plain", num_warps=2)
                close(yl.numpy(), y.numpy(), 1e-12, f"plain y T={T} seg={seg}")
                close(zfl.numpy(), zf.numpy(), 1e-12, f"plain zf T={T} seg={seg}")
        yl32, _ = sosfilt_triton(x.float(), sos, zi, layout="plain")
        close(yl32.double().numpy(), y.numpy(), 1e-5, "plain y float32")
        try:
            sosfilt_triton(x, sos, zi, layout="lane")
        except ValueError:
            pass
        else:
            raise AssertionError("layout='lane' accepted")
        for T in (1, 15, 16, 17, 48):  # tile: no full segment before the last, or exact
            x = torch.from_numpy(rng.standard_normal((3, T)))
            z3 = zi[:, :1].expand(-1, 3, -1)
            ref, ref_zf = sig.sosfilt(sos.numpy(), x.numpy(), axis=-1, zi=z3.numpy())
            yl, zfl = sosfilt_triton(x, sos, z3, seg=16, layout="tile")
            close(yl.numpy(), ref, 1e-10, f"tile y T={T}")
            close(zfl.numpy(), ref_zf, 1e-10, f"tile zf T={T}")
    check("layouts", layouts)

    def empty():
        sos = torch.from_numpy(design(4, 5))
        for batch in ((), (3,), (2, 2)):
            x = torch.zeros((*batch, 0), dtype=torch.float32)
            zi = torch.randn((sos.shape[0], *batch, 2), dtype=torch.float64)
            y, zf = sosfilt_triton(x, sos, zi)
            assert y.shape == x.shape and y.dtype == x.dtype
            assert torch.equal(zf, zi)
            y, zf = sosfilt_triton(x, sos)
            assert zf.shape == zi.shape and not zf.any()
    check("time0", empty)

    def many_sections():  # > 8 sections: two kernel groups
        sos = np.concatenate([design(8, 21), design(6, 22)])
        x = rng.standard_normal((2, 90))
        zi = 0.1 * rng.standard_normal((sos.shape[0], 2, 2))
        ref, ref_zf = sig.sosfilt(sos, x, axis=-1, zi=zi)
        y, zf = sosfilt_triton(torch.from_numpy(x), torch.from_numpy(sos), torch.from_numpy(zi))
        close(y.numpy(), ref, 1e-10, "y"); close(zf.numpy(), ref_zf, 1e-10, "zf")
    check("many-sections", many_sections)

    def bad_device_ok_errors():
        sos = torch.from_numpy(design(2, 3))
        try:
            sosfilt_triton(torch.zeros(5, dtype=torch.int32), sos)
        except TypeError:
            pass
        else:
            raise AssertionError("int input accepted")
    check("errors", bad_device_ok_errors)

    report()
    """
)


@pytest.fixture(scope="module")
def interp_results() -> dict[str, str]:
    return run_triton_checks(_CHECKS, timeout=300)


def test_interpreter_cases(interp_results: dict[str, str]) -> None:
    assert len(interp_results) > 50
    failed = {k: v for k, v in interp_results.items() if v}
    assert not failed, failed


@pytest.mark.parametrize(
    "case", ["available", "zi-none", "zi-round-trip", "time0", "many-sections", "errors"]
)
def test_interpreter_named(interp_results: dict[str, str], case: str) -> None:
    assert interp_results.get(case) == "", interp_results.get(case, "missing")


def test_not_available_on_cpu_without_interpreter() -> None:
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        pytest.skip("TRITON_INTERPRET set in this process")
    from fxcli.dsp.iir import triton as sos_triton

    assert sos_triton.available() == torch.cuda.is_available()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            sos_triton.sosfilt_triton(torch.zeros(8), torch.tensor([[1.0, 0, 0, 1, 0, 0]]))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_torch_backend() -> None:
    from scipy import signal as sig

    from fxcli.dsp.iir import sosfilt
    from fxcli.dsp.iir.triton import available, sosfilt_triton

    assert available()
    sos = np.concatenate(
        [
            sig.butter(2, 1000, "highpass", fs=44100, output="sos"),
            sig.butter(2, 5000, fs=44100, output="sos"),
            sig.cheby1(2, 0.5, 1500, "highpass", fs=44100, output="sos"),
            sig.cheby1(2, 0.5, 1800, fs=44100, output="sos"),
        ]
    )
    sos_t = torch.from_numpy(sos)
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn((12, 1_000_000), device="cuda", dtype=torch.float64, generator=gen)
    zi = 0.1 * torch.randn((sos.shape[0], 12, 2), device="cuda", dtype=torch.float64, generator=gen)
    y, zf = sosfilt_triton(x, sos_t, zi)
    yt, zft = sosfilt(x, sos_t, zi, backend="torch")
    assert y.device.type == "cuda" and zf.shape == zft.shape
    torch.testing.assert_close(y, yt, rtol=0, atol=1e-9)
    torch.testing.assert_close(zf, zft, rtol=0, atol=1e-9)
    # float32 in/out
    y32, zf32 = sosfilt_triton(x.float(), sos_t, zi)
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), yt, rtol=0, atol=1e-4)
    # chunked == whole
    parts, z = [], zi
    for a, b in ((0, 333_333), (333_333, 1_000_000)):
        yc, z = sosfilt_triton(x[:, a:b], sos_t, z)
        parts.append(yc)
    torch.testing.assert_close(torch.cat(parts, -1), y, rtol=0, atol=1e-11)
    torch.testing.assert_close(z, zf, rtol=0, atol=1e-11)
    # against SciPy on a slice
    ref = sig.sosfilt(sos, x[:2, :20000].cpu().numpy(), axis=-1, zi=zi[:, :2].cpu().numpy())[0]
    np.testing.assert_allclose(y[:2, :20000].cpu().numpy(), ref, rtol=0, atol=1e-10)


@pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION")
def test_gpu_compile_without_gpu() -> None:
    """The compiled (non-interpreter) code path: lower the kernel to an sm_90 cubin
    ahead of time (needs no GPU, only triton's bundled ptxas), catching code the
    interpreter accepts but the compiler does not."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        pytest.skip("TRITON_INTERPRET set in this process")
    import triton

    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as exc:  # pragma: no cover - other triton versions
        pytest.skip(f"triton AOT API not available: {exc}")
    from fxcli.dsp.iir import triton as sos_triton

    for nsec, pass2, xdt in ((1, False, "fp32"), (4, True, "fp32"), (8, True, "fp64")):
        sig = {
            "x_ptr": "*" + xdt,
            "y_ptr": "*" + xdt,
            "c_ptr": "*fp64",
            "s_ptr": "*fp64",
            "zf_ptr": "*fp64",
            "T": "i32",
            "J": "i32",
            "RS": "i64",
            "L": "constexpr",
            "NSEC": "constexpr",
            "BLOCK": "constexpr",
            "PASS2": "constexpr",
        }
        src = ASTSource(
            fn=sos_triton._seg_kernel,
            signature=sig,
            constexprs={"L": 1024, "NSEC": nsec, "BLOCK": 128, "PASS2": pass2},
        )
        try:
            compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32))
        except RuntimeError as exc:  # e.g. ptxas missing from this triton build
            if "ptxas" in str(exc).lower():
                pytest.skip(f"no usable ptxas: {exc}")
            raise
        assert "cubin" in compiled.asm
        assert "fma.rn.f64" in compiled.asm["ptx"] or "mul.rn.f64" in compiled.asm["ptx"]
        tile_sig = {
            "x_ptr": "*" + xdt,
            "y_ptr": "*" + xdt,
            "c_ptr": "*fp64",
            "s_ptr": "*fp64",
            "J": "i32",
            "JS": "i32",
            "RS": "i64",
            "L": "constexpr",
            "NSEC": "constexpr",
            "BLOCK": "constexpr",
            "PASS2": "constexpr",
        }
        tile = triton.compile(
            ASTSource(
                fn=sos_triton._tile_kernel,
                signature=tile_sig,
                constexprs={"L": 1024, "NSEC": nsec, "BLOCK": 128, "PASS2": pass2},
            ),
            target=GPUTarget("cuda", 90, 32),
        )
        assert "cubin" in tile.asm and "fma.rn.f64" in tile.asm["ptx"]


def test_default_layout_and_segment_length() -> None:
    """The size rules measured on the H200 (2026-12-04): tiled from 2^24 samples,
    L = 4096 for 12 ch x 600 s, never below 32; the interpreter always tiles, L = 16."""
    from fxcli.dsp.iir.triton import _default_layout, _segment_length

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert _default_layout(12, 600 * 44100, cuda) == "tile"
    assert _default_layout(1, 5 * 44100, cuda) == "plain"
    assert _default_layout(64, 5 * 44100, cuda) == "plain"
    assert _default_layout(1, 5 * 44100, cpu) == "tile"
    assert _segment_length(12, 600 * 44100, cuda, "tile") == 4096
    assert _segment_length(1, 5 * 44100, cuda, "plain") == 32
    assert _segment_length(64, 60 * 44100, cuda, "plain") == 512
    assert _segment_length(3, 100, cpu) == 16
