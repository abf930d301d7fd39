"""Every step type against an independent SciPy (float64) reference.

Rates 22.05/44.1/48/96 kHz, mono/stereo/8 channels, float32 and float64 audio.
float32 processing stays within 1e-5 of the float64 reference, float64 within 1e-10.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import signal

from fxcli.engine.runner import process_array
from fxcli.preset.build import build_step
from fxcli.preset.loader import validate_step
from tests.conftest import noise

RATES = [22050, 44100, 48000, 96000]


def cookbook(
    kind: str,
    f0: float,
    fs: float,
    q: float = 0.7071,
    gain_db: float = 0.0,
    slope: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """RBJ Audio EQ Cookbook (b, a), written out independently of fxcli.dsp.design."""
    A = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * f0 / fs
    c, s = math.cos(w0), math.sin(w0)
    alpha = s / (2 * q)
    if slope is not None:
        alpha = s / 2 * math.sqrt((A + 1 / A) * (1 / slope - 1) + 2)
    sq = 2 * math.sqrt(A) * alpha
    if kind == "peaking":
        b, a = [1 + alpha * A, -2 * c, 1 - alpha * A], [1 + alpha / A, -2 * c, 1 - alpha / A]
    elif kind == "notch":
        b, a = [1, -2 * c, 1], [1 + alpha, -2 * c, 1 - alpha]
    elif kind == "allpass":
        b, a = [1 - alpha, -2 * c, 1 + alpha], [1 + alpha, -2 * c, 1 - alpha]
    elif kind == "lowshelf":
        b = [
            A * ((A + 1) - (A - 1) * c + sq),
            2 * A * ((A - 1) - (A + 1) * c),
            A * ((A + 1) - (A - 1) * c - sq),
        ]
        a = [(A + 1) + (A - 1) * c + sq, -2 * ((A - 1) + (A + 1) * c), (A + 1) + (A - 1) * c - sq]
    else:
        b = [
            A * ((A + 1) + (A - 1) * c + sq),
            -2 * A * ((A - 1) + (A + 1) * c),
            A * ((A + 1) + (A - 1) * c - sq),
        ]
        a = [(A + 1) - (A - 1) * c + sq, 2 * ((A - 1) - (A + 1) * c), (A + 1) - (A - 1) * c - sq]
    return np.array(b) / a[0], np.array(a) / a[0]


def reference(step: dict, x: np.ndarray, fs: float) -> np.ndarray:
    """float64 SciPy reference for one step dict on (channels, frames) x."""
    x = x.astype(np.float64)
    t = step["type"]
    ftype = {
        "butterworth": "butter",
        "chebyshev1": "cheby1",
        "chebyshev2": "cheby2",
        "elliptic": "ellip",
        "bessel": "bessel",
    }
    if t in ("highpass", "lowpass", "bandpass", "bandstop"):
        design = step.get("design", "butterworth")
        order = step.get("order", 2)
        wn = step["cutoff_hz"] if "cutoff_hz" in step else [step["low_hz"], step["high_hz"]]
        if design == "linkwitz_riley":
            sos = signal.butter(order // 2, wn, btype=t, fs=fs, output="sos")
            return signal.sosfilt(sos, signal.sosfilt(sos, x))
        sos = signal.iirfilter(
            order,
            wn,
            rp=step.get("ripple_db", 0.5),
            rs=step.get("attenuation_db", 40),
            btype=t,
            ftype=ftype[design],
            fs=fs,
            output="sos",
        )
        return signal.sosfilt(sos, x)
    if t in ("peaking", "lowshelf", "highshelf", "notch", "allpass"):
        slope = step.get("slope")
        q = step.get("q", 0.7071)
        b, a = cookbook(t, step["freq_hz"], fs, q=q, gain_db=step.get("gain_db", 0.0), slope=slope)
        return signal.lfilter(b, a, x)
    if t == "fir":
        if "coefficients" in step:
            h = np.array(step["coefficients"])
        else:
            win = step.get("window", "hamming")
            win = tuple(win) if isinstance(win, list) else win
            h = signal.firwin(
                step["taps"],
                step["cutoff_hz"],
                window=win,
                pass_zero=step.get("pass", "lowpass"),
                fs=fs,
            )
        return signal.lfilter(h, [1.0], x)
    if t == "gain":
        return x * 10 ** (step["gain_db"] / 20)
    if t == "normalize":
        return x * 10 ** (step.get("peak_db", -1.0) / 20) / np.max(np.abs(x))
    raise AssertionError(t)


# Each step type with a few parameter sets (cutoffs scale with the rate where needed).
CASES = [
    {"type": "highpass", "cutoff_hz": 30, "order": 4},
    {"type": "highpass", "cutoff_hz": 20, "order": 8},
    {"type": "lowpass", "cutoff_hz": 8000, "order": 2, "design": "chebyshev1", "ripple_db": 0.5},
    {
        "type": "lowpass",
        "cutoff_hz": 5000,
        "order": 5,
        "design": "chebyshev2",
        "attenuation_db": 60,
    },
    {
        "type": "highpass",
        "cutoff_hz": 200,
        "order": 6,
        "design": "elliptic",
        "ripple_db": 1,
        "attenuation_db": 50,
    },
    {"type": "lowpass", "cutoff_hz": 3000, "order": 4, "design": "bessel"},
    {"type": "highpass", "cutoff_hz": 120, "order": 4, "design": "linkwitz_riley"},
    {"type": "bandpass", "low_hz": 300, "high_hz": 3400, "order": 3},
    {"type": "bandstop", "low_hz": 45, "high_hz": 55, "order": 2, "design": "butterworth"},
    {"type": "peaking", "freq_hz": 250, "gain_db": -2.0, "q": 1.0},
    {"type": "lowshelf", "freq_hz": 100, "gain_db": 4.0, "slope": 0.8},
    {"type": "highshelf", "freq_hz": 8000, "gain_db": -3.0, "q": 0.9},
    {"type": "notch", "freq_hz": 60, "q": 8},
    {"type": "allpass", "freq_hz": 1000, "q": 0.5},
    {"type": "fir", "taps": 101, "cutoff_hz": 1000},
    {
        "type": "fir",
        "taps": 257,
        "cutoff_hz": [500, 2000],
        "pass": "bandpass",
        "window": "blackman",
    },
    {"type": "fir", "taps": 31, "cutoff_hz": 3000, "pass": "highpass", "window": ["kaiser", 8.0]},
    {"type": "fir", "coefficients": [0.25, 0.5, 0.25]},
    {"type": "gain", "gain_db": -6.0},
    {"type": "normalize", "peak_db": -1.0},
]


def case_id(c: dict) -> str:
    return "-".join(str(v) for v in c.values())


def build(step: dict, fs: float):
    cfg = validate_step(dict(step), 0, None, "test", None)
    return build_step(cfg, fs)


@pytest.mark.parametrize("step", CASES, ids=case_id)
@pytest.mark.parametrize("fs", RATES)
def test_step_matches_scipy_float64(step: dict, fs: int) -> None:
    x = noise(2, 3000, seed=fs, dtype=np.float64)
    y = process_array([build(step, fs)], torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, reference(step, x, fs), rtol=0, atol=1e-10)


@pytest.mark.parametrize("step", CASES, ids=case_id)
@pytest.mark.parametrize("channels", [1, 2, 8])
def test_step_matches_scipy_float32(step: dict, channels: int) -> None:
    fs = 44100
    x = noise(channels, 4000, seed=channels)
    y = process_array([build(step, fs)], torch.from_numpy(x))
    assert y.dtype == torch.float32 and y.shape == x.shape
    np.testing.assert_allclose(y.numpy(), reference(step, x, fs), rtol=0, atol=1e-5)


def test_low_cutoff_high_rate_order8_float32_against_scipy() -> None:
    """The case float32 coefficients get wrong (20 Hz highpass, order 8, 96 kHz)."""
    step = {"type": "highpass", "cutoff_hz": 20, "order": 8}
    x = noise(2, 96000, seed=7)
    y = process_array([build(step, 96000)], torch.from_numpy(x)).numpy()
    ref = reference(step, x, 96000)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5)
    # and the float32-coefficient shortcut would really have been worse:
    sos32 = signal.butter(8, 20, "highpass", fs=96000, output="sos").astype(np.float32)
    y32 = signal.sosfilt(sos32.astype(np.float64), x.astype(np.float64))
    assert np.max(np.abs(y32 - ref)) > 10 * np.max(np.abs(y - ref))


def test_rbj_responses_hit_their_definitions() -> None:
    fs = 48000
    w, h = signal.sosfreqz(
        build({"type": "peaking", "freq_hz": 1000, "gain_db": 6, "q": 2}, fs).sos.numpy(),
        worN=[1000, 10],
        fs=fs,
    )
    assert abs(20 * np.log10(abs(h[0])) - 6) < 1e-9 and abs(20 * np.log10(abs(h[1]))) < 0.01
    _, h = signal.sosfreqz(
        build({"type": "notch", "freq_hz": 50, "q": 10}, fs).sos.numpy(), worN=[50], fs=fs
    )
    assert abs(h[0]) < 1e-9
    _, h = signal.sosfreqz(
        build({"type": "allpass", "freq_hz": 500}, fs).sos.numpy(), worN=[20, 500, 5000], fs=fs
    )
    np.testing.assert_allclose(np.abs(h), 1, atol=1e-12)
    _, h = signal.sosfreqz(
        build({"type": "lowshelf", "freq_hz": 200, "gain_db": 5}, fs).sos.numpy(),
        worN=[1e-3, 20000],
        fs=fs,
    )
    np.testing.assert_allclose(20 * np.log10(np.abs(h)), [5, 0], atol=0.01)


def test_high_order_is_stable_as_sos() -> None:
    """Order 16 at a low cutoff: fine as sos, unstable as one (b, a) polynomial."""
    fs = 96000
    step = {"type": "lowpass", "cutoff_hz": 30, "order": 16}
    x = noise(1, 20000, seed=3, dtype=np.float64)
    y = process_array([build(step, fs)], torch.from_numpy(x)).numpy()
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, reference(step, x, fs), atol=1e-10)
