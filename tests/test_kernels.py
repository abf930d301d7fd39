"""Tests of the filter kernels ``sosfilt`` and ``firfilt`` (fxcli.dsp).

References are SciPy (``scipy.signal.sosfilt`` / ``lfilter``) in float64.

Tolerances for the torch sosfilt backend: SciPy's own float64 result is only
as exact as the design is well conditioned (for e.g. an order-16 Chebyshev
band-stop at 20 Hz / 96 kHz, SciPy itself is ~1e-8 away from the exact result,
measured against an 80-bit long double reference). The torch backend computes
the same exact result by a different float64 algorithm, so its distance to
SciPy is bounded by a multiple of SciPy's own rounding error, which
:func:`_roundoff` estimates by re-running SciPy on a slightly rescaled input
(different rounding, same exact result). Measured on 285 random designs:
|torch - scipy| <= 17 x that estimate; the tests allow 100 x on top of the
fixed 1e-10 (float64) floor.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.signal as sig
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fxcli.dsp.fir import firfilt
from fxcli.dsp.fir.cpu import NATIVE_FFT_MIN_TAPS, fft_size, firfilt_np
from fxcli.dsp.iir import sosfilt
from fxcli.dsp.native import core, set_threads
from tests._fir_reference import firfilt_np_reference

BACKENDS = ["cpu", "torch"]
SHAPES = [(), (1,), (2,), (8,), (2, 3)]  # batch shapes; time is appended
FTYPES = ("butter", "cheby1", "cheby2", "ellip")
BTYPES = ("lowpass", "highpass", "bandpass", "bandstop")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _design(seed: int) -> np.ndarray:
    """A random stable IIR design (SciPy sos), reproducible from ``seed``.

    Order 1..16, any btype/ftype, cutoffs log-uniform from 20 Hz to 0.45 fs;
    every 4th seed is pinned to 20 Hz at 96 kHz (poles very close to z = 1).
    """
    rng = np.random.default_rng(seed)
    order = int(rng.integers(1, 17))
    ftype = FTYPES[int(rng.integers(4))]
    btype = BTYPES[int(rng.integers(4))]
    fs = float(rng.choice([44100.0, 48000.0, 96000.0]))
    f1 = float(np.exp(rng.uniform(np.log(20.0), np.log(0.45 * fs))))
    if seed % 4 == 0:
        f1, fs = 20.0, 96000.0
    if btype in ("bandpass", "bandstop"):
        f2 = min(f1 * float(np.exp(rng.uniform(0.1, 2.0))), 0.45 * fs)
        if f2 <= f1 * 1.05:
            f1 = f2 / 2.0
        wn: float | list[float] = [f1, f2]
    else:
        wn = f1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sos = sig.iirfilter(order, wn, rp=0.5, rs=60, btype=btype, ftype=ftype, fs=fs, output="sos")
        assert np.abs(sig.sos2zpk(sos)[1]).max() < 1.0, "design must be stable"
    return sos


# Fixed designs: typical audio ones and deliberately ill-conditioned ones.
FIXED = {
    "butter8_20Hz_96k": sig.butter(8, 20, fs=96000, output="sos"),
    "ellip8_hp_20Hz_96k": sig.ellip(8, 0.5, 60, 20, btype="highpass", fs=96000, output="sos"),
    "cheby1_16_30Hz_48k": sig.cheby1(16, 0.5, 30, fs=48000, output="sos"),
    "butter4_1k_44k": sig.butter(4, 1000, fs=44100, output="sos"),
    "cheby2_6_bp": sig.cheby2(6, 60, [300, 3000], btype="bandpass", fs=48000, output="sos"),
    "first_order": sig.butter(1, 500, fs=48000, output="sos"),
}


def _roundoff(sos: np.ndarray, x: np.ndarray, zi: np.ndarray | None = None) -> float:
    """Estimate SciPy's own float64 rounding error for this design and input."""
    c = 1.0 + 2.0**-20 + 2.0**-33
    if zi is None:
        y1 = sig.sosfilt(sos, x)
        y2 = sig.sosfilt(sos, x * c) / c
    else:
        y1 = sig.sosfilt(sos, x, zi=zi)[0]
        y2 = sig.sosfilt(sos, x * c, zi=zi * c)[0] / c
    return float(np.abs(y1 - y2).max())


def _signal(batch: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (*batch, n))


def _chunks(n: int, sizes: tuple[int, ...] = (1, 7, 4097, 1 << 20)) -> list[tuple[int, int]]:
    """Consecutive (start, stop) chunks of the awkward ``sizes``, cycled, covering 0..n."""
    out, t, i = [], 0, 0
    while t < n:
        s = sizes[i % len(sizes)]
        out.append((t, min(n, t + s)))
        t, i = t + s, i + 1
    return out


def _run_chunked_sos(x: torch.Tensor, sos: torch.Tensor, backend: str, zi=None):
    ys, z = [], zi
    for a, b in _chunks(x.shape[-1]):
        y, z = sosfilt(x[..., a:b], sos, z, backend=backend)
        ys.append(y)
    # an empty chunk in the middle of a stream must be a no-op
    y0, z0 = sosfilt(x[..., :0], sos, z, backend=backend)
    assert y0.shape == (*x.shape[:-1], 0)
    assert torch.equal(z0, z)
    return torch.cat(ys, dim=-1), z


# ---------------------------------------------------------------------------
# sosfilt vs scipy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(24))
def test_sosfilt_random_designs_float64(seed: int, backend: str) -> None:
    sos = _design(seed)
    batch = SHAPES[seed % len(SHAPES)]
    x = _signal(batch, 3001 + 37 * seed, seed)
    # a realistic non-zero initial state: the state after a prefix of the signal
    zi = sig.sosfilt(sos, _signal(batch, 500, seed + 1000), zi=np.zeros((len(sos), *batch, 2)))[1]
    ref, ref_zf = sig.sosfilt(sos, x, zi=zi)
    y, zf = sosfilt(
        torch.from_numpy(x), torch.from_numpy(sos), torch.from_numpy(zi), backend=backend
    )
    assert y.dtype == torch.float64 and y.shape == x.shape
    assert zf.dtype == torch.float64 and zf.shape == (len(sos), *batch, 2)
    tol = 1e-10 + 100 * _roundoff(sos, x, zi)
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=tol)
    np.testing.assert_allclose(zf.numpy(), ref_zf, rtol=0, atol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(FIXED))
@pytest.mark.parametrize("batch", SHAPES, ids=str)
def test_sosfilt_fixed_designs_float32_and_float64(name: str, batch, backend: str) -> None:
    sos = FIXED[name]
    x64 = _signal(batch, 2500, 7)
    x32 = x64.astype(np.float32)
    sos_t = torch.from_numpy(sos)
    # float64 in/out
    ref = sig.sosfilt(sos, x64)
    y, zf = sosfilt(torch.from_numpy(x64), sos_t, backend=backend)
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=1e-10 + 100 * _roundoff(sos, x64))
    # float32 in/out, float64 inside: only the final rounding to float32 differs
    ref32 = sig.sosfilt(sos, x32.astype(np.float64))
    y32, zf32 = sosfilt(torch.from_numpy(x32), sos_t, backend=backend)
    assert y32.dtype == torch.float32 and zf32.dtype == torch.float64
    assert y32.shape == x32.shape and zf32.shape == (len(sos), *batch, 2)
    np.testing.assert_allclose(
        y32.numpy(), ref32, rtol=0, atol=1e-5 * max(1.0, np.abs(ref32).max())
    )


@pytest.mark.parametrize("seed", range(0, 24, 3))
def test_sosfilt_cpu_matches_scipy_closely(seed: int) -> None:
    # Same operation order as SciPy: on x86-64 this is bit-identical, in general
    # it is within SciPy's own rounding.
    sos = _design(seed)
    x = _signal((2,), 4000, seed)
    y, _ = sosfilt(torch.from_numpy(x), torch.from_numpy(sos), backend="cpu")
    np.testing.assert_allclose(
        y.numpy(), sig.sosfilt(sos, x), rtol=0, atol=1e-13 + _roundoff(sos, x)
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["butter4_1k_44k", "ellip8_hp_20Hz_96k", "cheby2_6_bp"])
def test_sosfilt_zi_from_sosfilt_zi(name: str, backend: str) -> None:
    sos = FIXED[name]
    x = _signal((3,), 2000, 3) + 0.5  # DC offset: sosfilt_zi is a step-response state
    zi = sig.sosfilt_zi(sos)[:, None, :] * x[None, :, :1]  # (S, 3, 2)
    ref, ref_zf = sig.sosfilt(sos, x, zi=zi)
    y, zf = sosfilt(
        torch.from_numpy(x), torch.from_numpy(sos), torch.from_numpy(zi), backend=backend
    )
    tol = 1e-10 + 100 * _roundoff(sos, x, zi)
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=tol)
    np.testing.assert_allclose(zf.numpy(), ref_zf, rtol=0, atol=tol)
    # 1-D signal: zi is (S, 2), exactly scipy.signal.sosfilt_zi's shape
    zi1 = sig.sosfilt_zi(sos) * x[0, 0]
    ref1, ref1_zf = sig.sosfilt(sos, x[0], zi=zi1)
    y1, zf1 = sosfilt(
        torch.from_numpy(x[0]), torch.from_numpy(sos), torch.from_numpy(zi1), backend=backend
    )
    assert zf1.shape == (len(sos), 2)
    np.testing.assert_allclose(y1.numpy(), ref1, rtol=0, atol=tol)
    np.testing.assert_allclose(zf1.numpy(), ref1_zf, rtol=0, atol=tol)


# ---------------------------------------------------------------------------
# sosfilt streaming (chunk invariance)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXED))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sosfilt_cpu_chunked_is_bit_identical(name: str, dtype: torch.dtype) -> None:
    sos = torch.from_numpy(FIXED[name])
    x = torch.from_numpy(_signal((2, 3), 12000, 11)).to(dtype)
    zi = torch.from_numpy(np.random.default_rng(5).normal(size=(len(sos), 2, 3, 2)) * 1e-3)
    y, zf = sosfilt(x, sos, zi, backend="cpu")
    yc, zfc = _run_chunked_sos(x, sos, "cpu", zi)
    assert torch.equal(y, yc)
    assert torch.equal(zf, zfc)


@pytest.mark.parametrize("name", sorted(FIXED))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sosfilt_torch_chunked_matches_whole(name: str, dtype: torch.dtype) -> None:
    sos_np = FIXED[name]
    sos = torch.from_numpy(sos_np)
    x = torch.from_numpy(_signal((2,), 12000, 12)).to(dtype)
    y, zf = sosfilt(x, sos, backend="torch")
    yc, zfc = _run_chunked_sos(x, sos, "torch")
    x64 = x.double().numpy()
    tol = 1e-12 + 100 * _roundoff(sos_np, x64)
    if dtype == torch.float64:
        np.testing.assert_allclose(yc.numpy(), y.numpy(), rtol=0, atol=tol)
    else:  # float32 outputs may round differently by one float32 ulp
        np.testing.assert_allclose(
            yc.numpy(), y.numpy(), rtol=0, atol=1e-6 * max(1.0, y.abs().max().item())
        )
    np.testing.assert_allclose(zfc.numpy(), zf.numpy(), rtol=0, atol=tol)


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 3000), min_size=0, max_size=6), seed=st.integers(0, 23))
def test_sosfilt_cpu_any_split_is_bit_identical(cuts: list[int], seed: int) -> None:
    sos = torch.from_numpy(_design(seed))
    x = torch.from_numpy(_signal((2,), 3000, seed)).float()
    y, zf = sosfilt(x, sos, backend="cpu")
    bounds = [0, *sorted(cuts), 3000]
    ys, z = [], None
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        yy, z = sosfilt(x[:, a:b], sos, z, backend="cpu")
        ys.append(yy)
    assert torch.equal(torch.cat(ys, dim=-1), y)
    assert torch.equal(z, zf)


# ---------------------------------------------------------------------------
# sosfilt: the skewed-section schedule of fewer than 4 rows (mono, stereo, 3 ch)
# ---------------------------------------------------------------------------
# issue 15: inputs of 1-3 rows put one row's sections, skewed by one sample each,
# in the SIMD lanes (csrc/iir_skew.hpp). Every value must stay the scalar kernel's
# (core.sosfilt(..., tiles=False), unchanged) and SciPy's, bit for bit: 1..9
# sections (one vector group, several, a partly filled last vector), 17 (balanced
# groups through the block buffer), lengths shorter than the pipeline's fill.
# Inputs of 4 or more rows are split into 4-row tiles, skewed pairs and a skewed
# single by cost and spread over the threads (csrc/iir.cpp vector_rows; before,
# a 4-row input on 2 threads and the rows after the last tile ran scalar code):
# 4-9 rows, with 1-3 threads and inputs long enough for threads (9001 samples).


def _skew_sos(n_sec: int, seed: int) -> np.ndarray:
    """``n_sec`` sections taken from random designs (lowpass, highpass, bandpass)."""
    rng = np.random.default_rng(seed)
    parts = []
    while sum(len(p) for p in parts) < n_sec:
        f = float(rng.uniform(0.002, 0.45))
        kind = int(rng.integers(3))
        if kind == 0:
            parts.append(sig.butter(2, f, output="sos"))
        elif kind == 1:
            parts.append(sig.cheby1(2, 0.5, f, btype="highpass", output="sos"))
        else:
            parts.append(sig.butter(2, [f / 2, f], btype="bandpass", output="sos"))
    return np.ascontiguousarray(np.concatenate(parts)[:n_sec])


def _core_run(x: np.ndarray, sos: np.ndarray, z0: np.ndarray, tiles: bool, threads: int = 1):
    """core.sosfilt on a (rows, n) array; returns (y, final state)."""
    from fxcli.dsp.native import core

    z = z0.copy()
    y = np.empty_like(x)
    core.sosfilt(x, y, sos, z, threads, tiles)
    return y, z


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 6, 8, 9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_sec", [*range(1, 10), 17])
def test_sosfilt_rows_in_lanes_are_bit_identical(rows: int, dtype, n_sec: int) -> None:
    sos = _skew_sos(n_sec, 100 * rows + n_sec)
    rng = np.random.default_rng(n_sec)
    for n in (0, 1, 3, 4097) if rows < 4 else (0, 3, 9001):
        x = rng.uniform(-1.0, 1.0, (rows, n)).astype(dtype)
        if n > 10:
            x[:, 5] = 0.0
            x[0, 6] = -0.0  # signed zeros pass through unchanged
        for z0 in (np.zeros((n_sec, rows, 2)), rng.uniform(-0.3, 0.3, (n_sec, rows, 2))):
            ref_y, ref_z = _core_run(x, sos, z0, tiles=False)  # scalar rows
            y, z = _core_run(x, sos, z0, tiles=True)  # skewed lanes
            assert np.array_equal(y, ref_y) and np.array_equal(z, ref_z), (rows, n, n_sec)
            for threads in (2, 3):
                y2, z2 = _core_run(x, sos, z0, tiles=True, threads=threads)
                assert np.array_equal(y2, ref_y) and np.array_equal(z2, ref_z), threads
            if n:  # SciPy (float64 arithmetic; float32 output is its result rounded)
                sy, sz = sig.sosfilt(sos, x.astype(np.float64), zi=z0)
                assert np.array_equal(y, sy.astype(dtype)) and np.array_equal(z, sz)
            # chunked calls with the state carried: one call's bits
            cuts = sorted({0, min(1, n), min(2, n), n // 3, n})
            zc, parts = z0.copy(), []
            for a, b in zip(cuts[:-1], cuts[1:], strict=True):
                ya, zc = _core_run(np.ascontiguousarray(x[:, a:b]), sos, zc, tiles=True)
                parts.append(ya)
            if parts:
                assert np.array_equal(np.concatenate(parts, axis=1), y)
            assert np.array_equal(zc, z)


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 6])
def test_sosfilt_few_rows_skewed_long_and_non_finite(rows: int) -> None:
    # issue 15: 1e6 samples in one call (no block buffer up to 8-16 sections), and
    # inf/nan inputs propagate exactly as in the scalar kernel
    sos = _skew_sos(6, rows)
    rng = np.random.default_rng(rows)
    x = rng.uniform(-1.0, 1.0, (rows, 1_000_000)).astype(np.float32)
    z0 = rng.uniform(-0.1, 0.1, (6, rows, 2))
    ref_y, ref_z = _core_run(x, sos, z0, tiles=False)
    y, z = _core_run(x, sos, z0, tiles=True)
    assert np.array_equal(y, ref_y) and np.array_equal(z, ref_z)
    xf = rng.uniform(-1.0, 1.0, (rows, 500))
    xf[0, 100], xf[-1, 300] = np.inf, np.nan
    for n_sec in (1, 5, 9):
        s = _skew_sos(n_sec, 7)
        z0 = np.zeros((n_sec, rows, 2))
        ref_y, ref_z = _core_run(xf, s, z0, tiles=False)
        y, z = _core_run(xf, s, z0, tiles=True)
        assert np.array_equal(y, ref_y, equal_nan=True)
        assert np.array_equal(z, ref_z, equal_nan=True)


# ---------------------------------------------------------------------------
# sosfilt backends agree, edge cases, errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 5, 8, 13, 21])
def test_sosfilt_cpu_and_torch_agree(seed: int) -> None:
    sos = _design(seed)
    x = _signal((2, 2), 5000, seed)
    zi = np.random.default_rng(seed).normal(size=(len(sos), 2, 2, 2)) * 1e-3
    args = (torch.from_numpy(x), torch.from_numpy(sos), torch.from_numpy(zi))
    yn, zn = sosfilt(*args, backend="cpu")
    yt, zt = sosfilt(*args, backend="torch")
    tol = 1e-10 + 100 * _roundoff(sos, x, zi)
    np.testing.assert_allclose(yt.numpy(), yn.numpy(), rtol=0, atol=tol)
    np.testing.assert_allclose(zt.numpy(), zn.numpy(), rtol=0, atol=tol)
    # float32 in/out
    yn32, _ = sosfilt(args[0].float(), *args[1:], backend="cpu")
    yt32, _ = sosfilt(args[0].float(), *args[1:], backend="torch")
    np.testing.assert_allclose(
        yt32.numpy(), yn32.numpy(), rtol=0, atol=1e-5 * max(1.0, yn.abs().max().item())
    )


def test_sosfilt_torch_long_signal_16_sections() -> None:
    # 10^7 samples, 16 sections: many slabs, deep scans; compare to the
    # bit-exact-to-scipy compiled CPU backend.
    sos = sig.butter(32, 3000, fs=48000, output="sos")
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, 10_000_000).astype(np.float32))
    y, zf = sosfilt(x, torch.from_numpy(sos), backend="torch")
    ref, ref_zf = (t.numpy() for t in sosfilt(x, torch.from_numpy(sos), backend="cpu"))
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=1e-5)
    np.testing.assert_allclose(zf.numpy(), ref_zf, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sosfilt_empty_and_tiny(backend: str) -> None:
    sos = torch.from_numpy(FIXED["butter4_1k_44k"])
    zi = torch.randn(len(sos), 2, 3, 2, dtype=torch.float64)
    y, zf = sosfilt(torch.zeros(2, 3, 0), sos, zi, backend=backend)
    assert y.shape == (2, 3, 0) and y.dtype == torch.float32
    assert torch.equal(zf, zi) and zf is not zi
    y, zf = sosfilt(torch.zeros(0), sos, backend=backend)
    assert y.shape == (0,) and zf.shape == (len(sos), 2) and not zf.any()
    # a single sample and a batch with no rows
    x = torch.tensor([0.25], dtype=torch.float64)
    y, zf = sosfilt(x, sos, backend=backend)
    ref, ref_zf = sig.sosfilt(sos.numpy(), x.numpy(), zi=np.zeros((len(sos), 2)))
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-15)
    np.testing.assert_allclose(zf.numpy(), ref_zf, atol=1e-15)
    y, zf = sosfilt(torch.zeros(0, 5), sos, backend=backend)
    assert y.shape == (0, 5) and zf.shape == (len(sos), 0, 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sosfilt_does_not_modify_inputs_and_normalizes_a0(backend: str) -> None:
    sos = FIXED["cheby2_6_bp"]
    scaled = sos * np.linspace(0.5, 3.0, len(sos))[:, None]  # a0 != 1
    x = torch.from_numpy(_signal((2,), 1000, 4))
    zi = torch.full((len(sos), 2, 2), 1e-3, dtype=torch.float64)
    x0, zi0 = x.clone(), zi.clone()
    y1, z1 = sosfilt(x, torch.from_numpy(sos), zi, backend=backend)
    y2, z2 = sosfilt(x, torch.from_numpy(scaled), zi, backend=backend)
    assert torch.equal(x, x0) and torch.equal(zi, zi0)
    np.testing.assert_allclose(y2.numpy(), y1.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(z2.numpy(), z1.numpy(), rtol=0, atol=1e-12)


def test_sosfilt_errors() -> None:
    x = torch.zeros(2, 100)
    good = torch.from_numpy(FIXED["butter4_1k_44k"])
    with pytest.raises(ValueError, match=r"shape \(n_sections, 6\).*\(2, 5\)"):
        sosfilt(x, torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"shape \(n_sections, 6\)"):
        sosfilt(x, torch.zeros(6))
    with pytest.raises(ValueError, match=r"shape \(n_sections, 6\)"):
        sosfilt(x, torch.zeros(0, 6))
    bad = good.clone()
    bad[1, 4] = float("nan")
    with pytest.raises(ValueError, match="non-finite.*section"):
        sosfilt(x, bad)
    bad = good.clone()
    bad[0, 3] = 0.0
    with pytest.raises(ValueError, match="a0"):
        sosfilt(x, bad)
    with pytest.raises(ValueError, match="zi must have shape"):
        sosfilt(x, good, torch.zeros(len(good), 2))
    with pytest.raises(ValueError, match="backend"):
        sosfilt(x, good, backend="cuda")
    with pytest.raises(TypeError, match="float32 or float64"):
        sosfilt(torch.zeros(2, 10, dtype=torch.int32), good)


# ---------------------------------------------------------------------------
# firfilt
# ---------------------------------------------------------------------------

KS = [1, 2, 31, 101, 257]
METHODS = ["direct", "fft", "auto"]


def _taps(k: int) -> np.ndarray:
    if k == 1:
        return np.array([0.75])
    return sig.firwin(k, 0.3) if k % 2 else np.random.default_rng(k).normal(size=k) / k


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("batch", [(), (1,), (2, 3)], ids=str)
def test_firfilt_matches_lfilter(k: int, method: str, batch) -> None:
    h = _taps(k)
    x = _signal(batch, 3000, k)
    hist = np.random.default_rng(1).uniform(-1, 1, (*batch, k - 1))
    # reference with history: filter concat(history, x) and drop the history outputs
    ref = sig.lfilter(h, [1.0], np.concatenate([hist, x], axis=-1), axis=-1)[..., k - 1 :]
    y, zf = firfilt(torch.from_numpy(x), torch.from_numpy(h), torch.from_numpy(hist), method=method)
    assert y.shape == x.shape and y.dtype == torch.float64
    assert zf.shape == (*batch, k - 1) and zf.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(
        zf.numpy(), np.concatenate([hist, x], axis=-1)[..., x.shape[-1] :]
    )
    # zi=None means zero history, exactly lfilter's default
    y0, _ = firfilt(torch.from_numpy(x), torch.from_numpy(h), method=method)
    np.testing.assert_allclose(y0.numpy(), sig.lfilter(h, [1.0], x, axis=-1), rtol=0, atol=1e-12)
    # float32 in/out
    x32 = x.astype(np.float32)
    y32, zf32 = firfilt(torch.from_numpy(x32), torch.from_numpy(h), method=method)
    assert y32.dtype == torch.float32 and zf32.dtype == torch.float64
    ref32 = sig.lfilter(h, [1.0], x32.astype(np.float64), axis=-1)
    np.testing.assert_allclose(
        y32.numpy(), ref32, rtol=0, atol=1e-6 * max(1.0, np.abs(ref32).max())
    )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_firfilt_chunked_matches_whole(k: int, method: str, dtype: torch.dtype) -> None:
    h = torch.from_numpy(_taps(k))
    x = torch.from_numpy(_signal((2,), 9000, 3)).to(dtype)
    y, zf = firfilt(x, h, method=method)
    ys, z = [], None
    for a, b in _chunks(x.shape[-1]):
        yy, z = firfilt(x[..., a:b], h, z, method=method)
        ys.append(yy)
    y_empty, z_empty = firfilt(x[..., :0], h, z, method=method)
    assert y_empty.shape == (2, 0) and torch.equal(z_empty, z)
    yc = torch.cat(ys, dim=-1)
    atol = 1e-12 if dtype == torch.float64 else 1e-6
    np.testing.assert_allclose(yc.numpy(), y.numpy(), rtol=0, atol=atol)
    assert torch.equal(z, zf)  # the history is copied, never computed


def test_firfilt_edge_cases_and_errors() -> None:
    h = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    zi = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    y, zf = firfilt(torch.zeros(1, 0), h, zi)
    assert y.shape == (1, 0) and torch.equal(zf, zi)
    # a chunk shorter than the history keeps the right samples
    y, zf = firfilt(torch.tensor([[3.0]], dtype=torch.float64), h, zi)
    assert torch.equal(zf, torch.tensor([[2.0, 3.0]], dtype=torch.float64))
    assert y.item() == pytest.approx(0.5 * 3 + 0.25 * 2 + 0.25 * 1)
    with pytest.raises(ValueError, match="taps must have shape"):
        firfilt(torch.zeros(10), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="taps must have shape"):
        firfilt(torch.zeros(10), torch.zeros(0))
    with pytest.raises(ValueError, match="zi must have shape"):
        firfilt(torch.zeros(2, 10), h, torch.zeros(2))
    with pytest.raises(ValueError, match="method"):
        firfilt(torch.zeros(10), h, method="winograd")
    with pytest.raises(ValueError, match="non-finite"):
        firfilt(torch.zeros(10), torch.tensor([1.0, math.inf]))


# ---------------------------------------------------------------------------
# issue 15: the compiled FIR kernel (core.firfilt behind firfilt_np and CPU tensors)
# ---------------------------------------------------------------------------

NP_KS = [1, 2, 7, 8, 31, 101, 511]


def _lfilter_hist(h: np.ndarray, x: np.ndarray, hist: np.ndarray) -> np.ndarray:
    """Independent float64 reference: lfilter over concat(history, x), history outputs dropped."""
    full = np.concatenate([hist, x.astype(np.float64)], axis=-1)
    if x.shape[-1] == 0:  # lfilter refuses empty input
        return np.zeros(x.shape)
    return sig.lfilter(h, [1.0], full, axis=-1)[..., hist.shape[-1] :]


@pytest.mark.parametrize("method", ["direct", "fft", "auto"])
@pytest.mark.parametrize("k", NP_KS)
@pytest.mark.parametrize("batch", [(), (3,), (2, 2)], ids=str)
@pytest.mark.parametrize("n", [0, 5, 3000, 9001])
def test_firfilt_np_compiled_vs_lfilter_and_old_path(method: str, k: int, batch, n: int) -> None:
    # issue 15: the compiled kernel equals scipy's lfilter (float64) and the old numpy
    # overlap-save / GEMM path to float64 rounding, incl. zi, K = 1, K > n and n = 0
    h = _taps(k)
    x = _signal(batch, n, k + n)
    hist = np.random.default_rng(k).uniform(-1, 1, (*batch, k - 1))
    ref = _lfilter_hist(h, x, hist)
    old_method = method if method != "auto" else ("direct" if k < NATIVE_FFT_MIN_TAPS else "fft")
    old, old_zf = firfilt_np_reference(x, h, hist, old_method)
    for zi in (hist, None):
        y, zf = firfilt_np(x, h, zi, method)
        assert y.shape == x.shape and y.dtype == np.float64
        assert zf.shape == (*batch, k - 1) and zf.dtype == np.float64
        want = ref if zi is not None else _lfilter_hist(h, x, np.zeros_like(hist))
        np.testing.assert_allclose(y, want, rtol=0, atol=1e-13)
        zi_full = hist if zi is not None else np.zeros_like(hist)
        np.testing.assert_array_equal(zf, np.concatenate([zi_full, x], axis=-1)[..., n:])
    y, zf = firfilt_np(x, h, hist, method)
    np.testing.assert_allclose(y, old, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(zf, old_zf)
    # float32 in and out, float64 inside: rounded once, so within one float32 ulp
    x32 = x.astype(np.float32)
    y32, zf32 = firfilt_np(x32, h, hist, method)
    assert y32.dtype == np.float32 and zf32.dtype == np.float64
    ref32 = _lfilter_hist(h, x32, hist)
    atol32 = 2e-7 * max(1.0, np.abs(ref32).max(initial=0.0))
    np.testing.assert_allclose(y32, ref32, rtol=0, atol=atol32)
    old32, _ = firfilt_np_reference(x32, h, hist, old_method)
    np.testing.assert_allclose(y32, old32, rtol=0, atol=atol32)


@pytest.mark.parametrize("method", ["direct", "fft"])
@pytest.mark.parametrize("k", [3, 101, 511])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_firfilt_np_compiled_chunked_and_threads(method: str, k: int, dtype) -> None:
    # issue 15: the state is the K-1 input history, so chunked runs (chunks shorter
    # and longer than K and than an FFT frame) equal one run to float64 rounding;
    # the threads split rows and frames, never the arithmetic: identical bits
    h = _taps(k)
    x = _signal((3,), 20_000, k).astype(dtype)
    y, zf = firfilt_np(x, h, None, method)
    ys, z = [], None
    for a, b in _chunks(x.shape[-1], (1, 7, k + 3, 4097, 300)):
        yy, z = firfilt_np(x[..., a:b], h, z, method)
        ys.append(yy)
    atol = 1e-13 if dtype == np.float64 else 2e-7
    np.testing.assert_allclose(np.concatenate(ys, axis=-1), y, rtol=0, atol=atol)
    np.testing.assert_array_equal(z, zf)
    np.testing.assert_allclose(y, sig.lfilter(h, [1.0], x.astype(np.float64)), rtol=0, atol=atol)
    try:
        for n_threads in (1, 2, 3):
            set_threads(n_threads)
            y_t, zf_t = firfilt_np(x, h, None, method)
            np.testing.assert_array_equal(y_t, y)
            np.testing.assert_array_equal(zf_t, zf)
    finally:
        set_threads(None)
    if method == "fft":  # the 4-frame AVX2 loop (where it runs) and the 2-frame one
        x2 = np.ascontiguousarray(x)
        y_wide, y_narrow = np.empty_like(x2), np.empty_like(x2)
        zeros = np.zeros((3, k - 1))
        core.firfilt(x2, y_wide, h, zeros, fft_size(k), 2)
        core.firfilt(x2, y_narrow, h, zeros, fft_size(k), 2, wide=False)
        np.testing.assert_array_equal(y_wide, y)
        np.testing.assert_array_equal(y_narrow, y)
    # a mono signal (one row: frames split over threads) against np.convolve
    y1, _ = firfilt_np(x[0].astype(np.float64), h, None, method)
    np.testing.assert_allclose(
        y1, np.convolve(x[0].astype(np.float64), h)[: x.shape[-1]], rtol=0, atol=1e-13
    )


@pytest.mark.parametrize("k", [5, 101])
def test_firfilt_np_compiled_nonfinite(k: int) -> None:
    # issue 15: nan/inf spoil the outputs whose sums read them, and nothing else:
    # "fft" exactly the frames the old numpy path spoiled (same frames), "direct"
    # exactly lfilter's K outputs per bad sample; the history carries them on
    h = _taps(k)
    x = _signal((2,), 12_000, 4)
    x[0, 5000], x[1, 100], x[1, 11_999] = np.nan, np.inf, -np.inf
    y, zf = firfilt_np(x, h, None, "fft")
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's FFT of nan
        old, old_zf = firfilt_np_reference(x, h, None, "fft")
    np.testing.assert_array_equal(np.isnan(y), np.isnan(old))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(old))
    good = np.isfinite(old)
    assert not good.all() and good.sum() > x.size // 2
    np.testing.assert_allclose(y[good], old[good], rtol=0, atol=1e-13)
    np.testing.assert_array_equal(zf, old_zf)
    y_d, _ = firfilt_np(x, h, None, "direct")
    with np.errstate(invalid="ignore"):
        ref = sig.lfilter(h, [1.0], x, axis=-1)
    np.testing.assert_array_equal(np.isnan(y_d), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(y_d), np.isinf(ref))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(y_d[fin], ref[fin], rtol=0, atol=1e-13)


def test_firfilt_cpu_tensor_uses_compiled_kernel() -> None:
    # issue 15: CPU tensors without autograd take the compiled kernel (same bits as
    # firfilt_np); errors in the arguments are the numpy path's
    h = _taps(101)
    x = _signal((2, 3), 5000, 9)
    hist = np.random.default_rng(2).uniform(-1, 1, (2, 3, 100))
    for method in ("direct", "fft", "auto"):
        y, zf = firfilt(
            torch.from_numpy(x), torch.from_numpy(h), torch.from_numpy(hist), method=method
        )
        y_np, zf_np = firfilt_np(x, h, hist, method)
        np.testing.assert_array_equal(y.numpy(), y_np)
        np.testing.assert_array_equal(zf.numpy(), zf_np)
    xt = torch.from_numpy(x).transpose(0, 1)  # not contiguous
    y, _ = firfilt(xt, torch.from_numpy(h))
    np.testing.assert_array_equal(
        y.numpy(), firfilt_np(np.ascontiguousarray(xt.numpy()), h, None)[0]
    )
    with pytest.raises(ValueError, match="zi must have shape"):
        firfilt_np(x, h, np.zeros((2, 100)))
    with pytest.raises(ValueError, match="finite"):
        firfilt_np(x, np.array([1.0, np.nan]), None)
    with pytest.raises(TypeError, match="float32 or float64"):
        firfilt_np(x.astype(np.float16), h, None)


# ---------------------------------------------------------------------------
# CUDA (skipped without a GPU)
# ---------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype: torch.dtype) -> None:
    sos = torch.from_numpy(FIXED["ellip8_hp_20Hz_96k"])
    x = torch.from_numpy(_signal((2, 3), 100_003, 9)).to(dtype)
    zi = torch.randn(len(sos), 2, 3, 2, dtype=torch.float64) * 1e-3
    y_cpu, zf_cpu = sosfilt(x, sos, zi, backend="torch")
    y_gpu, zf_gpu = sosfilt(x.cuda(), sos, zi.cuda())  # auto -> torch on CUDA
    assert y_gpu.device.type == "cuda" and zf_gpu.device.type == "cuda" and y_gpu.dtype == dtype
    np.testing.assert_allclose(y_gpu.cpu().numpy(), y_cpu.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(zf_gpu.cpu().numpy(), zf_cpu.numpy(), rtol=0, atol=1e-9)
    h = torch.from_numpy(_taps(101))
    for method in ("direct", "fft"):
        yf_cpu, _ = firfilt(x, h, method=method)
        yf_gpu, _ = firfilt(x.cuda(), h, method=method)
        np.testing.assert_allclose(yf_gpu.cpu().numpy(), yf_cpu.numpy(), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="CPU tensor"):
        sosfilt(x.cuda(), sos, backend="cpu")


# ---------------------------------------------------------------------------
# property-based tests (hypothesis): random designs, dtypes, batch shapes, splits
# ---------------------------------------------------------------------------

BATCHES = st.sampled_from([(), (1,), (3,), (2, 2), (5,), (8,), (3, 3)])


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    batch=BATCHES,
    n=st.integers(1, 2500),
    split=st.floats(0.0, 1.0),
    f32=st.booleans(),
)
def test_sosfilt_cpu_property_vs_scipy(seed: int, batch, n: int, split: float, f32: bool) -> None:
    """Random stable designs (orders 1-16): SciPy's result, zi round trip, any split."""
    sos = _design(seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (*batch, n))
    if f32:
        x = x.astype(np.float32)
    zi = rng.uniform(-0.5, 0.5, (sos.shape[0], *batch, 2))
    ref, ref_zf = sig.sosfilt(sos, x.astype(np.float64), axis=-1, zi=zi)
    xt = torch.from_numpy(x)
    y, zf = sosfilt(xt, torch.from_numpy(sos), torch.from_numpy(zi), backend="cpu")
    assert y.dtype == xt.dtype and y.shape == xt.shape and zf.shape == zi.shape
    if f32:
        assert np.array_equal(y.numpy(), ref.astype(np.float32))
    else:
        assert np.array_equal(y.numpy(), ref)  # SciPy's arithmetic, bit for bit
    assert np.array_equal(zf.numpy(), ref_zf)
    # chunked with the state carried: bit-identical to one call
    cut = int(round(split * n))
    y1, z1 = sosfilt(xt[..., :cut], torch.from_numpy(sos), torch.from_numpy(zi), backend="cpu")
    y2, z2 = sosfilt(xt[..., cut:], torch.from_numpy(sos), z1, backend="cpu")
    assert torch.equal(torch.cat((y1, y2), dim=-1), y)
    assert torch.equal(z2, zf)


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 700),
    batch=BATCHES,
    n=st.integers(0, 6000),
    split=st.floats(0.0, 1.0),
    f32=st.booleans(),
    method=st.sampled_from(METHODS),
)
def test_firfilt_property_vs_lfilter(k: int, batch, n: int, split: float, f32: bool, method):
    rng = np.random.default_rng(k * 7919 + n)
    h = rng.normal(size=k) / np.sqrt(k)
    x = rng.uniform(-1.0, 1.0, (*batch, n))
    if f32:
        x = x.astype(np.float32)
    hist = rng.uniform(-1.0, 1.0, (*batch, k - 1))
    full = np.concatenate([hist, x.astype(np.float64)], axis=-1)
    if full.shape[-1]:
        ref = sig.lfilter(h, [1.0], full, axis=-1)[..., k - 1 :]
    else:  # lfilter rejects empty input
        ref = np.zeros((*batch, 0))
    xt, ht = torch.from_numpy(x), torch.from_numpy(h)
    y, zf = firfilt(xt, ht, torch.from_numpy(hist), method=method)
    atol = 1e-6 * max(1.0, float(np.abs(ref).max(initial=0.0))) if f32 else 1e-12
    assert y.dtype == xt.dtype and y.shape == xt.shape
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=atol)
    np.testing.assert_array_equal(zf.numpy(), full[..., full.shape[-1] - (k - 1) :])
    cut = int(round(split * n))
    y1, z1 = firfilt(xt[..., :cut], ht, torch.from_numpy(hist), method=method)
    y2, z2 = firfilt(xt[..., cut:], ht, z1, method=method)
    np.testing.assert_allclose(torch.cat((y1, y2), dim=-1).numpy(), y.numpy(), rtol=0, atol=atol)
    assert torch.equal(z2, zf)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [65, 511, 2000])
def test_firfilt_fft_long_signal_many_slabs(k: int, dtype) -> None:
    """Long enough for many slabs (first, interior and last ones take different paths)."""
    rng = np.random.default_rng(k)
    h = rng.normal(size=k) / np.sqrt(k)
    x = rng.uniform(-1.0, 1.0, (3, 400_003)).astype(dtype)
    hist = rng.uniform(-1.0, 1.0, (3, k - 1))
    full = np.concatenate([hist, x.astype(np.float64)], axis=-1)
    ref = sig.oaconvolve(full, h[None, :], axes=-1)[:, k - 1 : k - 1 + x.shape[1]]
    xt, ht = torch.from_numpy(x), torch.from_numpy(h)
    y, zf = firfilt(xt, ht, torch.from_numpy(hist), method="fft")
    atol = 1e-6 * max(1.0, float(np.abs(ref).max())) if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=atol)
    np.testing.assert_array_equal(zf.numpy(), full[:, -(k - 1) :])
    ys, z = [], torch.from_numpy(hist)
    for a, b in _chunks(x.shape[1], (123_457, 1, 65_536, 7)):
        yy, z = firfilt(xt[:, a:b], ht, z, method="fft")
        ys.append(yy)
    np.testing.assert_allclose(torch.cat(ys, dim=-1).numpy(), y.numpy(), rtol=0, atol=atol)
    assert torch.equal(z, zf)


def test_numba_backend_name_is_a_deprecated_alias_of_cpu() -> None:
    """Guards: code written for the numba kernel (backend="numba") keeps working, with
    the same bits, and says the name changed."""
    sos = torch.from_numpy(sig.butter(4, 1000, fs=48000, output="sos"))
    x = torch.randn(2, 3000, dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match='backend="cpu"'):
        y, zf = sosfilt(x, sos, backend="numba")
    y2, zf2 = sosfilt(x, sos, backend="cpu")
    assert torch.equal(y, y2) and torch.equal(zf, zf2)
    with pytest.raises(ValueError, match="backend must be one of"):
        sosfilt(x, sos, backend="nope")
