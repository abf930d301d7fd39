"""The numpy-only designs equal SciPy's bit for bit, and a cold run never imports scipy.

Issue 15 ("first run after install = second run"): designing with ``scipy.signal``
cost ~1 s of import on every run whose designs were not cached yet (the first run
after an install, a new preset, a new sample rate). ``fxcli.dsp.design_np`` ports the
SciPy 1.17.1 code paths fxcli uses; every comparison here is ``np.array_equal`` (and
the same shape) against the installed SciPy, not a tolerance.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal, special

from fxcli.dsp import design, design_cache, design_np
from fxcli.errors import DesignError
from tests.conftest import ROOT
from tests.test_torch_free import RUN

FS = (8000, 16000, 22050, 44100, 48000, 96000, 192000)
ORDERS = range(1, 11)
RIPPLES = (0.01, 0.1, 0.5, 1.0, 3.0)  # dB, cycled over the grid
ATTENUATIONS = (20.0, 40.0, 60.0, 80.0, 120.0)  # dB
# windows fxcli computes without SciPy (with SciPy's aliases and suffixes)
NP_WINDOWS: list[str | tuple[str, float]] = [
    "hamming",
    "hann",
    "blackman",
    "blackmanharris",
    "nuttall",
    "flattop",
    "boxcar",
    "ham",
    "hann_periodic",
    ("kaiser", 8.0),
    ("kaiser", 0.5),
    ("kaiser", 14),
    ("general_hamming", 0.6),
]


def _same(got: np.ndarray, ref: np.ndarray, what: object) -> None:
    ref = np.asarray(ref)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    assert got.dtype == np.float64, what
    # equal_nan only for the degenerate firwin cases where SciPy itself divides 0 by 0
    assert np.array_equal(got, ref, equal_nan=True), (what, np.max(np.abs(got - ref)))


def _cutoffs(fs: int) -> list[float]:
    """From 1 Hz to 0.49 fs, the edges included."""
    return [1.0, 20.0, 997.0, 0.25 * fs, 0.49 * fs]


def _bands(fs: int) -> list[list[float]]:
    return [
        [1.0, 2.0],
        [20.0, 0.45 * fs],
        [0.1 * fs, 0.1001 * fs],
        [300.0, 3400.0],
        [0.3 * fs, 0.49 * fs],
    ]


@pytest.mark.parametrize("ftype", design_np.IIR_FTYPES)
@pytest.mark.parametrize("btype", ["lowpass", "highpass", "bandpass", "bandstop"])
def test_iirfilter_equals_scipy_bit_for_bit(ftype: str, btype: str) -> None:
    band = btype in ("bandpass", "bandstop")
    for i, (n, fs) in enumerate(itertools.product(ORDERS, FS)):
        kw: dict[str, float] = {}
        if ftype == "cheby1":
            kw["rp"] = RIPPLES[i % len(RIPPLES)]
        if ftype == "cheby2":
            kw["rs"] = ATTENUATIONS[i % len(ATTENUATIONS)]
        for wn in _bands(fs) if band else _cutoffs(fs):
            if band and not wn[1] < fs / 2:
                continue
            ref = signal.iirfilter(n, wn, btype=btype, ftype=ftype, fs=fs, output="sos", **kw)
            got = design_np.iirfilter(n, wn, btype=btype, ftype=ftype, fs=fs, **kw)
            _same(got, ref, (ftype, btype, n, fs, wn, kw))


def test_butter_and_design_iir_pass_equal_scipy() -> None:
    """design.iir_pass (now numpy) still returns exactly SciPy's designs, incl.
    Linkwitz-Riley (two Butterworths of half the order) and odd ripple values."""
    for fs, n in itertools.product((22050, 48000), (1, 2, 5, 8)):
        _same(
            design.iir_pass("lowpass", 0.2 * fs, fs, n),
            signal.butter(n, 0.2 * fs, btype="lowpass", fs=fs, output="sos"),
            ("butter", fs, n),
        )
        _same(
            design.iir_pass("highpass", 33.3, fs, n, "chebyshev1", ripple_db=0.37),
            signal.cheby1(n, 0.37, 33.3, btype="highpass", fs=fs, output="sos"),
            ("cheby1", fs, n),
        )
        _same(
            design.iir_pass("bandstop", [900, 1100], fs, n, "chebyshev2", attenuation_db=55.5),
            signal.cheby2(n, 55.5, [900, 1100], btype="bandstop", fs=fs, output="sos"),
            ("cheby2", fs, n),
        )
        half = signal.butter(n, 2000, btype="highpass", fs=fs, output="sos")
        _same(
            design.iir_pass("highpass", 2000, fs, 2 * n, "linkwitz_riley"),
            np.concatenate([half, half]),
            ("linkwitz_riley", fs, n),
        )


def _taps() -> list[int]:
    return [1, 2, 3, 4, 5, 16, 31, 64, 101, 102, 255, 256, 1024, 1025]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # 2-tap hann
@pytest.mark.parametrize("window", NP_WINDOWS, ids=str)
def test_firwin_equals_scipy_bit_for_bit(window: str | tuple[str, float]) -> None:
    for taps, fs, pass_type in itertools.product(
        _taps(), (8000, 44100, 192000), ("lowpass", "highpass", "bandpass", "bandstop")
    ):
        if pass_type in ("highpass", "bandstop") and taps % 2 == 0:
            continue  # SciPy refuses these (a zero at Nyquist)
        cutoffs: list[float | list[float]] = (
            [1.0, 0.1 * fs, 0.49 * fs]
            if pass_type in ("lowpass", "highpass")
            else [[1.0, 2.0], [300.0, 0.49 * fs]]
        )
        for cut in cutoffs:
            ref = signal.firwin(taps, cut, window=window, pass_zero=pass_type, fs=fs)
            got = design_np.firwin(taps, cut, window=window, pass_zero=pass_type, fs=fs)
            _same(got, ref, (window, taps, fs, pass_type, cut))


def test_fir_window_routes_and_errors() -> None:
    """design.fir_window: covered windows from numpy, others (bartlett, tukey) from
    SciPy; both exactly SciPy's. A bad window is still one DesignError line."""
    for win in ["hamming", ["kaiser", 8.0], "bartlett", ["tukey", 0.3]]:
        w = tuple(win) if isinstance(win, list) else win
        assert design_np.covers_window(w) == (win in ("hamming", ["kaiser", 8.0]))
        _same(
            design.fir_window(101, 1500, 44100, "lowpass", win),
            signal.firwin(101, 1500, window=w, pass_zero="lowpass", fs=44100),
            win,
        )
    for bad in ["nosuchwindow", ["kaiser"], ["hamming", 3.0], ["kaiser", "x"]]:
        assert not design_np.covers_window(tuple(bad) if isinstance(bad, list) else bad)
        with pytest.raises(DesignError):
            design.fir_window(31, 1000, 44100, "lowpass", bad)


@pytest.mark.parametrize("window", NP_WINDOWS, ids=str)
@pytest.mark.parametrize("fftbins", [True, False])
def test_get_window_equals_scipy(window: str | tuple[str, float], fftbins: bool) -> None:
    """Also what `fxcli features` uses (periodic windows)."""
    for n in (1, 2, 3, 256, 400, 1023, 2048):
        _same(
            design_np.get_window(window, n, fftbins),
            signal.get_window(window, n, fftbins=fftbins),
            (window, n),
        )


def test_i0_equals_scipy_special() -> None:
    """kaiser needs scipy.special.i0 (Cephes); numpy's own exp may round differently,
    so design_np.i0 uses the C library's exp like Cephes does."""
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [rng.uniform(0, 8, 20000), rng.uniform(8, 700, 20000), [0.0, 8.0, 8.0000001, 1e-300]]
    )
    assert np.array_equal(design_np.i0(x), special.i0(x))
    assert design_np.i0(np.asarray(7.5)).shape == ()


def test_numpy_designs_skip_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Designs numpy computes in microseconds are not written to the design cache."""
    monkeypatch.setenv("FXCLI_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(design_cache, "_memory", None)
    design.iir_pass("highpass", 120, 44100, 4, "chebyshev1")
    design.fir_window(101, 1000, 44100)
    assert not (tmp_path / "designs.json").exists()
    design.iir_pass("highpass", 120, 44100, 4, "elliptic")  # still SciPy, cached
    assert (tmp_path / "designs.json").is_file()


CHAIN = """version: 1
chain:
  - {type: highpass, cutoff_hz: 80, order: 4}
  - {type: lowpass, cutoff_hz: 9000, order: 3, design: chebyshev1, ripple_db: 0.5}
  - {type: bandstop, low_hz: 900, high_hz: 1100, order: 2, design: chebyshev2}
  - {type: highpass, cutoff_hz: 30, order: 4, design: linkwitz_riley}
  - {type: fir, cutoff_hz: 5000, taps: 101}
  - {type: fir, cutoff_hz: 8000, taps: 63, window: [kaiser, 6.0]}
"""


def test_cold_cache_process_never_imports_scipy(tmp_path: Path) -> None:
    """issue 15: `fxcli process` with an EMPTY design cache through Butterworth,
    Chebyshev I/II, Linkwitz-Riley and FIR steps loads neither scipy nor torch, caches
    no design (the preset's parsed text may be cached: presets.json), and the output
    (read back with soundfile) is the SciPy reference."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((44100, 2)) * 0.1
    src, out, preset = tmp_path / "in.wav", tmp_path / "out.wav", tmp_path / "p.yaml"
    sf.write(src, x, 44100, subtype="FLOAT")
    preset.write_text(CHAIN)
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "FXCLI_CPU_ENGINE"}
    env.update(PYTHONPATH=str(ROOT), FXCLI_CACHE_DIR=str(cache))
    args = ["process", str(src), str(out), "-p", str(preset), "--device", "cpu", "--quiet"]
    args.append("--allow-preset-paths")
    r = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr
    loaded = [ln for ln in r.stderr.splitlines() if ln.startswith("LOADED ")]
    assert loaded and loaded[-1] == "LOADED -", r.stderr
    assert [p.name for p in cache.iterdir() if p.name != "presets.json"] == []
    y, fs = sf.read(out, dtype="float64")
    assert fs == 44100 and y.shape == x.shape
    xin = sf.read(src, dtype="float64")[0]
    sos = np.concatenate(
        [
            signal.butter(4, 80, "highpass", fs=fs, output="sos"),
            signal.cheby1(3, 0.5, 9000, "lowpass", fs=fs, output="sos"),
            signal.cheby2(2, 40, [900, 1100], "bandstop", fs=fs, output="sos"),
            signal.butter(2, 30, "highpass", fs=fs, output="sos"),
            signal.butter(2, 30, "highpass", fs=fs, output="sos"),
        ]
    )
    ref = signal.sosfilt(sos, xin, axis=0)
    ref = signal.lfilter(signal.firwin(101, 5000, fs=fs), [1.0], ref, axis=0)
    ref = signal.lfilter(signal.firwin(63, 8000, window=("kaiser", 6.0), fs=fs), [1.0], ref, axis=0)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5)


def test_features_windows_equal_scipy() -> None:
    """`fxcli features` windows: numpy for the covered names, SciPy for the rest."""
    from fxcli.features import window_tensor

    for name in ("hann", "hamming", "blackman", "bartlett", "triang"):
        ref = signal.get_window(name, 400, fftbins=True)
        _same(window_tensor(name, 400, 512)[56:456], ref, name)
    with pytest.raises(ValueError, match="window"):
        window_tensor("nosuchwindow", 400, 512)


@pytest.mark.parametrize("window", ["hann", "bartlett"])
def test_degenerate_window_is_a_design_error(window: str) -> None:
    """A 2-tap hann (numpy path) or bartlett (SciPy path) window is all zeros: SciPy
    divides 0 by 0 (NaN taps, a RuntimeWarning on stderr, then a vague 'taps must be
    finite'); now one DesignError naming the window and the taps."""
    with pytest.raises(DesignError, match=f"window '{window}' with 2 taps"):
        design.fir_window(2, 1000, 44100, "lowpass", window)
