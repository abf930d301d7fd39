"""Convolve (impulse-response files) and Reverb (Freeverb): references, properties,
chunk invariance, validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
import torch
from scipy.signal import fftconvolve

import fxcli.steps.space as space
from fxcli.dsp import native
from fxcli.dsp import reverb as RV
from fxcli.steps.space import Convolve, Reverb
from tests.conftest import noise, run_chunked, write_audio


def decaying_ir(channels: int, frames: int, fs: float, seed: int = 0) -> np.ndarray:
    """A room-like IR: noise under an exponential decay (RT60 ~ frames / fs)."""
    t = np.arange(frames) / fs
    env = 10 ** (-3 * t / (frames / fs))
    return 0.5 * noise(channels, frames, seed, np.float64) * env


def conv_ref(x: np.ndarray, ir: np.ndarray, mix: float = 1.0) -> np.ndarray:
    """scipy fftconvolve per channel (IR row broadcast), truncated to the input length."""
    irs = np.broadcast_to(ir, (x.shape[0], ir.shape[1]))
    wet = np.stack([fftconvolve(x[c], irs[c])[: x.shape[1]] for c in range(x.shape[0])])
    return (1 - mix) * x + mix * wet


# ---------------------------------------------------------------------------
# Convolve
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ir_channels", [1, 2])
def test_convolve_vs_fftconvolve(tmp_path: Path, dtype, ir_channels):
    # guards: overlap-save result and per-channel/mono IR routing against SciPy
    fs = 16000
    ir = decaying_ir(ir_channels, 3000, fs)
    path = write_audio(tmp_path / "ir.wav", ir, fs, "DOUBLE")
    x = noise(2, 8000, seed=1, dtype=dtype)
    step = Convolve(str(path), mix=0.7, normalize_ir=False, fs=fs)
    y = step(torch.from_numpy(x))
    assert y.dtype == torch.from_numpy(x).dtype and y.shape == x.shape
    ref = conv_ref(x.astype(np.float64), ir, 0.7)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.numpy(), ref, atol=tol, rtol=0)


def test_convolve_per_channel_really_differs(tmp_path: Path):
    # guards: channel c uses IR row c (swapping the rows changes the output)
    fs = 8000
    ir = np.zeros((2, 50))
    ir[0, 3] = 1.0
    ir[1, 17] = 0.5
    path = write_audio(tmp_path / "ir.wav", ir, fs, "DOUBLE")
    x = torch.from_numpy(noise(2, 400, seed=3, dtype=np.float64))
    y = Convolve(str(path), normalize_ir=False, fs=fs)(x)
    torch.testing.assert_close(y[0, 3:], x[0, :-3], rtol=0, atol=1e-14)
    torch.testing.assert_close(y[1, 17:], 0.5 * x[1, :-17], rtol=0, atol=1e-14)


def test_convolve_normalize_unit_energy(tmp_path: Path):
    # guards: normalize_ir scales by one factor to mean per-channel energy 1
    fs = 8000
    ir = decaying_ir(2, 500, fs, seed=4) * np.array([[1.0], [0.25]])
    path = write_audio(tmp_path / "ir.wav", ir, fs, "DOUBLE")
    step = Convolve(str(path), fs=fs)
    got = step.ir.numpy()
    assert np.sum(got**2) / 2 == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(got * np.sqrt(np.sum(ir**2) / 2), ir, rtol=1e-12)


def test_convolve_resamples_ir(tmp_path: Path):
    # guards: an IR at another rate is resampled (soxr VHQ) to the input rate
    ir = decaying_ir(1, 2400, 48000, seed=5)
    path = write_audio(tmp_path / "ir48.wav", ir, 48000, "DOUBLE")
    step = Convolve(str(path), normalize_ir=False, fs=16000)
    ir16 = soxr.resample(ir.T, 48000, 16000, "VHQ").T
    assert step.ir.shape == (1, 800)
    np.testing.assert_allclose(step.ir.numpy(), ir16, rtol=0, atol=1e-15)
    x = noise(1, 3000, seed=6, dtype=np.float64)
    y = step(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, conv_ref(x, ir16), atol=1e-12, rtol=0)


def test_convolve_long_ir_chunked(tmp_path: Path):
    # guards: a 3 s IR at 48 kHz (144k taps) in chunks shorter and longer than the IR
    fs = 48000
    ir = decaying_ir(1, 3 * fs, fs, seed=7).astype(np.float32)
    path = write_audio(tmp_path / "hall.wav", ir, fs, "FLOAT")
    x = noise(2, 20000, seed=8)
    step = Convolve(str(path), normalize_ir=False, fs=fs)
    ref = conv_ref(x.astype(np.float64), ir.astype(np.float64))
    for chunk in (4097, 20000):
        y = run_chunked(step, torch.from_numpy(x), chunk).numpy()
        np.testing.assert_allclose(y, ref, atol=3e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_convolve_chunk_invariance(tmp_path: Path, dtype):
    # guards: the input-history state makes chunking irrelevant (to float64 rounding)
    fs = 8000
    path = write_audio(tmp_path / "ir.wav", decaying_ir(2, 700, fs), fs, "DOUBLE")
    x = torch.from_numpy(noise(2, 9000, seed=2)).to(dtype)
    step = Convolve(str(path), mix=0.5, fs=fs)
    whole = step(x)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    for chunk in (1, 7, 4097, 10000):
        xc = x[:, :1200] if chunk == 1 else x
        ref = step(xc) if chunk == 1 else whole
        torch.testing.assert_close(run_chunked(step, xc, chunk), ref, rtol=0, atol=tol)


def test_convolve_mono_input_1d(tmp_path: Path):
    fs = 8000
    ir = decaying_ir(1, 100, fs)
    path = write_audio(tmp_path / "ir.wav", ir, fs, "DOUBLE")
    x = noise(1, 500, dtype=np.float64)
    y = Convolve(str(path), normalize_ir=False, fs=fs)(torch.from_numpy(x[0]))
    np.testing.assert_allclose(y.numpy(), conv_ref(x, ir)[0], atol=1e-12, rtol=0)


def test_convolve_validation(tmp_path: Path, monkeypatch):
    # guards: one-line ValueErrors naming the file / key
    fs = 8000
    two = write_audio(tmp_path / "two.wav", decaying_ir(2, 100, fs), fs, "DOUBLE")
    step = Convolve(str(two), fs=fs)
    with pytest.raises(ValueError, match=r"two\.wav has 2 channels but the input has 3"):
        step.init_state((3,), "cpu")
    with pytest.raises(ValueError, match="has 2 channels but the input has 3"):
        step.process(torch.zeros(3, 10), torch.zeros(3, 99, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"cannot read impulse response .*missing\.wav"):
        Convolve(str(tmp_path / "missing.wav"), fs=fs)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(ValueError, match=r"cannot read impulse response .*bad\.wav"):
        Convolve(str(bad), fs=fs)
    long_ir = write_audio(tmp_path / "long.wav", np.zeros((1, 61 * 100)), 100, "PCM_16")
    with pytest.raises(ValueError, match=r"long\.wav is 61\.0 s long \(limit 60 s\)"):
        Convolve(str(long_ir), fs=fs)
    monkeypatch.setattr(space, "MAX_IR_BYTES", 1000)
    with pytest.raises(ValueError, match=r"two\.wav is .* MiB on disk \(limit 64 MiB\)"):
        Convolve(str(two), fs=fs)
    monkeypatch.undo()
    silent = write_audio(tmp_path / "silent.wav", np.zeros((1, 10)), fs, "DOUBLE")
    with pytest.raises(ValueError, match=r"silent\.wav is silent"):
        Convolve(str(silent), fs=fs)
    with pytest.raises(ValueError, match=r"mix: got 1.2; allowed: a number >= 0 and <= 1"):
        Convolve(str(two), mix=1.2, fs=fs)


# ---------------------------------------------------------------------------
# Reverb
# ---------------------------------------------------------------------------


def impulse_response(fs: float, seconds: float, **params) -> np.ndarray:
    x = torch.zeros(1, int(fs * seconds), dtype=torch.float64)
    x[0, 0] = 1.0
    return Reverb(**params, wet=1.0, dry=0.0, fs=fs)(x)[0].numpy()


def decay_time(h: np.ndarray, fs: float, drop_db: float = 20.0) -> float:
    """Seconds until the Schroeder backward-integrated energy falls by ``drop_db``."""
    edc = np.cumsum(h[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-300)
    return float(np.argmax(edc_db < -drop_db)) / fs


def test_reverb_decay_grows_with_room_size():
    # guards: room_size -> comb feedback 0.7 + 0.28 * room_size (longer tails)
    fs = 16000
    times = [decay_time(impulse_response(fs, 3.0, room_size=r), fs) for r in (0.1, 0.5, 0.9)]
    assert times[0] < times[1] < times[2], times
    assert times[2] > 2 * times[0], times


def test_reverb_damping_darkens_tail():
    # guards: damping -> comb lowpass: the tail's high band loses energy
    fs = 16000

    def high_fraction(damping: float) -> float:
        h = impulse_response(fs, 1.0, room_size=0.8, damping=damping)[int(0.1 * fs) :]
        spec = np.abs(np.fft.rfft(h)) ** 2
        f = np.fft.rfftfreq(len(h), 1 / fs)
        return float(spec[f > 3000].sum() / spec.sum())

    fractions = [high_fraction(d) for d in (0.0, 0.5, 1.0)]
    assert fractions[0] > 2 * fractions[1] > 0, fractions
    assert fractions[1] > 2 * fractions[2] > 0, fractions


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_reverb_dry_only_is_scaled_identity(channels):
    # guards: JUCE/pedalboard dry gain is 2 * dry: wet=0, dry=0.5 passes the input unchanged
    x = torch.from_numpy(noise(channels, 2000, seed=channels, dtype=np.float64))
    y = Reverb(wet=0.0, dry=0.5, fs=44100)(x)
    torch.testing.assert_close(y, x, rtol=0, atol=0)


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_reverb_linear(channels):
    # guards: the network is linear time-invariant: y(a x1 + b x2) = a y(x1) + b y(x2)
    step = Reverb(room_size=0.7, damping=0.3, width=0.6, fs=22050)
    x1 = torch.from_numpy(noise(channels, 4000, seed=1, dtype=np.float64))
    x2 = torch.from_numpy(noise(channels, 4000, seed=2, dtype=np.float64))
    lhs = step(0.3 * x1 - 1.7 * x2)
    rhs = 0.3 * step(x1) - 1.7 * step(x2)
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-12)


def test_reverb_stereo_structure():
    # guards: both sides hear L+R; width=1 keeps L's wet out of R; right lines are longer
    x = torch.zeros(2, 3000, dtype=torch.float64)
    x[0, 0] = 1.0
    y_l = Reverb(wet=1.0, dry=0.0, width=1.0, fs=44100)(x)
    x2 = torch.zeros(2, 3000, dtype=torch.float64)
    x2[1, 0] = 1.0
    y_r = Reverb(wet=1.0, dry=0.0, width=1.0, fs=44100)(x2)
    torch.testing.assert_close(y_l, y_r, rtol=0, atol=0)  # input is summed
    first = [int(np.argmax(np.abs(y_l[c].numpy()) > 0)) for c in range(2)]
    assert first == [1116, 1139]  # shortest comb, + 23 spread on the right


def test_reverb_three_channels_are_independent_mono():
    # guards: other channel counts run one mono Freeverb per channel
    x = torch.from_numpy(noise(3, 3000, seed=5, dtype=np.float64))
    y = Reverb(fs=22050)(x)
    for c in range(3):
        torch.testing.assert_close(y[c], Reverb(fs=22050)(x[c : c + 1])[0], rtol=0, atol=0)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reverb_chunk_invariance(channels, dtype):
    # guards: buffers/positions/lowpass states in the state: chunking is bit-identical
    x = torch.from_numpy(noise(channels, 8000, seed=7)).to(dtype)
    step = Reverb(room_size=0.8, fs=16000)
    whole = step(x)
    for chunk in (3, 7, 4097, 9000):
        xc = x[:, :1500] if chunk == 3 else x
        ref = step(xc) if chunk == 3 else whole
        assert torch.equal(run_chunked(step, xc, chunk), ref), chunk


def test_reverb_state_not_mutated():
    step = Reverb(fs=16000)
    x = torch.from_numpy(noise(2, 3000, seed=1))
    st = step.init_state((2,), "cpu")
    _, st1 = step.process(x, st)
    a, _ = step.process(x, st1)
    b, _ = step.process(x, st1)
    assert torch.equal(a, b)
    assert all(not bool(v.any()) for k, v in st.items() if not k.endswith("_len"))


def freeverb_reference(x: np.ndarray, st: dict, feedback: float, damp: float) -> np.ndarray:
    """The Freeverb recurrence in plain Python (numpy state arrays updated in place)."""
    cb, cl, cp, cs = st["comb_buf"], st["comb_len"], st["comb_pos"], st["comb_last"]
    ab, al, ap = st["ap_buf"], st["ap_len"], st["ap_pos"]
    wet = np.empty_like(x)
    damp1 = 1.0 - damp
    for r in range(x.shape[0]):
        for i in range(x.shape[1]):
            xi, out = float(x[r, i]), 0.0
            for j in range(cb.shape[1]):
                p = cp[r, j]
                o = float(cb[r, j, p])
                cs[r, j] = o * damp1 + float(cs[r, j]) * damp
                cb[r, j, p] = xi + float(cs[r, j]) * feedback
                cp[r, j] = 0 if p + 1 >= cl[r, j] else p + 1
                out += o
            for j in range(ab.shape[1]):
                p = ap[r, j]
                b = float(ab[r, j, p])
                ab[r, j, p] = out + b * 0.5
                out = b - out
                ap[r, j] = 0 if p + 1 >= al[r, j] else p + 1
            wet[r, i] = out
    return wet


@pytest.mark.parametrize("threads", [1, 2])
def test_freeverb_core_equals_python_reference(threads: int) -> None:
    """Guards the compiled recurrence (stretches between wraps, rows on threads): the
    wet signal and every state array equal a plain-Python run bit for bit, over
    several wraps of every delay line and across two calls."""
    fs, rows = 8000, 3
    x = noise(rows, 1500, seed=3, dtype=np.float64) * 0.05
    state = RV.freeverb_state(fs, (rows,), stereo=False)
    ref = {k: v.numpy().copy() for k, v in state.items()}
    native.set_threads(threads)
    try:
        for part in (x[:, :700], x[:, 700:]):
            wet, state = RV.freeverb(torch.from_numpy(part), state, 0.91, 0.3)
            assert np.array_equal(wet.numpy(), freeverb_reference(part, ref, 0.91, 0.3))
    finally:
        native.set_threads(None)
    for k, v in state.items():
        assert np.array_equal(v.numpy(), ref[k]), k


PB_PARAMS = [
    {},
    {"room_size": 0.9, "damping": 0.1, "wet": 0.6, "dry": 0.2, "width": 0.5},
    {"room_size": 0.2, "damping": 0.9, "wet": 1.0, "dry": 0.0, "width": 0.0},
]


@pytest.mark.parametrize("params", PB_PARAMS)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("fs", [44100, 48000])
def test_reverb_matches_pedalboard(params, channels, fs):
    # guards: the Freeverb/JUCE mapping against pedalboard.Reverb (JUCE, float32).
    # Measured: max |diff| <= 7.6e-7 (float32 rounding), relative RMS <= 6e-7.
    pedalboard = pytest.importorskip("pedalboard")
    names = {"wet": "wet_level", "dry": "dry_level"}
    pb = pedalboard.Reverb(**{names.get(k, k): v for k, v in params.items()})
    x = (0.3 * noise(channels, 12000, seed=11)).astype(np.float32)
    ref = pb(x, fs)
    y = Reverb(**params, fs=fs)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, ref, atol=2e-6, rtol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"room_size": 1.5}, r"room_size: got 1.5; allowed: a number >= 0 and <= 1"),
        ({"damping": -0.1}, r"damping: got -0.1; allowed"),
        ({"wet": 2.0}, r"wet: got 2; allowed"),
        ({"dry": -1.0}, r"dry: got -1; allowed"),
        ({"width": 1.1}, r"width: got 1.1; allowed"),
    ],
)
def test_reverb_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Reverb(**kwargs, fs=44100)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_space(tmp_path: Path):
    fs = 8000
    path = write_audio(tmp_path / "ir.wav", decaying_ir(2, 700, fs), fs, "DOUBLE")
    x = torch.from_numpy(noise(2, 5000, seed=2))
    for step in (Convolve(str(path), fs=fs), Reverb(fs=fs)):
        y = run_chunked(step, x.cuda(), 777)
        assert y.device.type == "cuda"
        torch.testing.assert_close(y.cpu(), step(x), rtol=0, atol=1e-6)
