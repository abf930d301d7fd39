"""Loudness meter (fxcli.dsp.loudness) and the ``loudness`` step (fxcli.steps.loudness).

Guards: the K-weighting coefficients of BS.1770-4 at 48 kHz; the EBU Tech 3341
integrated-loudness cases and Tech 3342 LRA cases, generated from their
definitions; agreement with pyloudnorm; chunk invariance; the state never being
mutated; the step's gain (target, true-peak ceiling, silence) and its checks.
"""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
import torch

from fxcli.dsp import loudness as L

FS = 48000


def sine_db(db: float, seconds: float, fs: int = FS, freq: float = 1000.0) -> np.ndarray:
    """A sine with peak level ``db`` dBFS, ``(n,)`` float64."""
    t = np.arange(round(seconds * fs)) / fs
    return 10.0 ** (db / 20.0) * np.sin(2 * np.pi * freq * t)


def segments(*parts: tuple[float, float], fs: int = FS, channels: int = 2) -> np.ndarray:
    """Concatenated 1 kHz sine segments ``(level dBFS, seconds)`` on every channel."""
    s = np.concatenate([sine_db(db, sec, fs) for db, sec in parts])
    return np.stack([s] * channels)


def measure(x: np.ndarray, fs: float, chunk: int | None = None) -> L.MeterState:
    st = L.meter_init(x.shape[0], fs)
    t = torch.from_numpy(np.ascontiguousarray(x))
    if chunk is None:
        return L.meter_update(t, st)
    for i in range(0, t.shape[1], chunk):
        st = L.meter_update(t[:, i : i + chunk], st)
    return st


def music_like(channels: int, seconds: float, fs: int, seed: int) -> np.ndarray:
    """Pink-ish noise plus decaying harmonic notes with a loudness envelope (varied spectrum)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    white = rng.standard_normal((channels, n))
    spec = np.fft.rfft(white, axis=-1)
    f = np.fft.rfftfreq(n, 1 / fs)
    spec[:, 1:] /= np.sqrt(f[1:])
    spec[:, 0] = 0
    pink = np.fft.irfft(spec, n, axis=-1)
    pink /= np.abs(pink).max()
    t = np.arange(n) / fs
    notes = np.zeros(n)
    for i, f0 in enumerate(rng.uniform(80, 900, 12)):
        start = i * n // 12
        env = np.exp(-3 * np.clip(t - t[start], 0, None)) * (t >= t[start])
        notes += env * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
    envelope = 0.3 + 0.7 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * t))
    x = 0.2 * pink + 0.1 * notes[None, :] * rng.uniform(0.5, 1.0, (channels, 1))
    return x * envelope


# -- K-weighting ---------------------------------------------------------------------------


def test_k_weighting_48k_matches_bs1770_table() -> None:
    # BS.1770-4 Tables 1 and 2 (48 kHz).
    ref = np.array(
        [
            [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241,
             0.73248077421585],
            [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
        ]
    )  # fmt: skip
    np.testing.assert_allclose(L.k_weighting_sos(48000), ref, rtol=0, atol=1e-8)


def test_k_weighting_response_at_other_rates() -> None:
    # The same analog prototype at every rate: the response stays within 0.1 dB of the
    # 48 kHz (BS.1770) one up to 8 kHz (bilinear-transform warping grows at low rates),
    # including the +0.691 dB at 1 kHz that makes a stereo 1 kHz sine read its own level.
    from scipy.signal import sosfreqz

    freqs = [20.0, 100.0, 1000.0, 3000.0, 8000.0]
    _, h48 = sosfreqz(L.k_weighting_sos(48000), worN=freqs, fs=48000)
    ref = 20 * np.log10(np.abs(h48))
    assert abs(ref[2] - 0.691) < 0.01 and abs(ref[4] - 4.04) < 0.01 and ref[0] < -13
    for fs in (22050, 44100, 96000, 192000):
        _, h = sosfreqz(L.k_weighting_sos(fs), worN=freqs, fs=fs)
        db = 20 * np.log10(np.abs(h))
        np.testing.assert_allclose(db, ref, rtol=0, atol=0.1, err_msg=str(fs))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="fs"):
        L.meter_init(2, 3000)
    with pytest.raises(ValueError, match="channels"):
        L.meter_init(0, FS)
    with pytest.raises(ValueError, match="weights"):
        L.meter_init(2, FS, weights=[1.0])
    with pytest.raises(ValueError, match="shape"):
        L.meter_update(torch.zeros(3, 10), L.meter_init(2, FS))


def test_channel_weights_table() -> None:
    assert L.channel_weights(2) == (1.0, 1.0)
    assert L.channel_weights(5) == (1.0, 1.0, 1.0, 1.41, 1.41)
    assert L.channel_weights(6) == (1.0, 1.0, 1.0, 0.0, 1.41, 1.41)  # LFE excluded
    assert L.channel_weights(12) == (1.0,) * 12


# -- EBU Tech 3341 (integrated loudness), cases 1-6 -------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([(-23, 20)], -23.0),  # case 1
        ([(-33, 20)], -33.0),  # case 2
        ([(-36, 10), (-23, 60), (-36, 10)], -23.0),  # case 3: relative gate
        ([(-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)], -23.0),  # case 4: both gates
        ([(-26, 20), (-20, 20.1), (-26, 20)], -23.0),  # case 5
    ],
    ids=["3341-1", "3341-2", "3341-3", "3341-4", "3341-5"],
)
def test_tech3341_integrated(parts: list[tuple[float, float]], expected: float) -> None:
    st = measure(segments(*parts).astype(np.float32), FS, chunk=FS * 7 + 3)
    assert abs(L.integrated_lufs(st) - expected) <= 0.1


def test_tech3341_case6_five_channels() -> None:
    # L, R, C, Ls, Rs at -28, -28, -24, -30, -30 dBFS, 20 s -> -23.0 LUFS (surround weight 1.41).
    x = np.stack([sine_db(db, 20) for db in (-28, -28, -24, -30, -30)])
    assert abs(L.integrated_lufs(measure(x, FS)) - (-23.0)) <= 0.1
    # 5.1 order with an LFE channel carrying a loud signal: LFE is not measured.
    x6 = np.stack([x[0], x[1], x[2], sine_db(-6, 20, freq=50), x[3], x[4]])
    assert abs(L.integrated_lufs(measure(x6, FS)) - (-23.0)) <= 0.1


def test_tech3341_short_term_and_momentary_of_constant_sine() -> None:
    st = measure(segments((-23, 10)), FS)
    assert abs(L.max_momentary_lufs(st) - (-23.0)) <= 0.1
    assert abs(L.max_short_term_lufs(st) - (-23.0)) <= 0.1


def test_tech3341_case9_short_term_of_alternating_bursts() -> None:
    # Case 9 style: 1.66 s at -20 then 1.34 s at -30 dBFS, repeated. Every 3 s window holds
    # one period, so short-term loudness is constant: the level of the period's mean power
    # (a stereo 1 kHz sine at peak level d dBFS reads d LUFS).
    x = segments(*([(-20, 1.66), (-30, 1.34)] * 5))
    st = measure(x, FS)
    expected = 10 * math.log10((1.66 * 10 ** (-20 / 10) + 1.34 * 10 ** (-30 / 10)) / 3.0)
    assert abs(L.max_short_term_lufs(st) - expected) <= 0.1


def test_silence_and_too_short() -> None:
    st = measure(np.zeros((2, FS * 2)), FS)
    assert L.integrated_lufs(st) == -math.inf
    assert L.loudness_range_lu(st) == 0.0
    assert L.max_momentary_lufs(st) == -math.inf
    short = measure(segments((-20, 0.39)), FS)
    assert L.integrated_lufs(short) == -math.inf
    assert L.max_short_term_lufs(short) == -math.inf
    # below -70 LUFS everywhere: gated out
    assert L.integrated_lufs(measure(segments((-75, 2)), FS)) == -math.inf


# -- EBU Tech 3342 (loudness range), cases 1-4 --------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([(-20, 20), (-30, 20)], 10.0),
        ([(-20, 20), (-15, 20)], 5.0),
        ([(-40, 20), (-20, 20)], 20.0),
        ([(-50, 20), (-35, 20), (-20, 20), (-35, 20), (-50, 20)], 15.0),
    ],
    ids=["3342-1", "3342-2", "3342-3", "3342-4"],
)
def test_tech3342_lra(parts: list[tuple[float, float]], expected: float) -> None:
    fs = 16000  # LRA depends only on the levels; a lower rate keeps the test fast
    st = measure(segments(*parts, fs=fs).astype(np.float32), fs, chunk=fs * 5 + 1)
    assert abs(L.loudness_range_lu(st) - expected) <= 1.0


# -- agreement with pyloudnorm ----------------------------------------------------------------


@pytest.mark.parametrize("fs", [22050, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2, 5])
def test_agrees_with_pyloudnorm(fs: int, channels: int) -> None:
    seconds = 4.0 if fs == 96000 else 6.0
    x = music_like(channels, seconds, fs, seed=fs + channels)
    x[:, : fs // 2] *= 1e-3  # a quiet start exercises the gates
    st = measure(x, fs, chunk=fs + 17)
    ours = L.integrated_lufs(st)
    # pyloudnorm's default K-weighting uses rounded RBJ constants (shelf at 1500 Hz):
    # within 0.1 LU as BS.1770 compliance allows.
    assert abs(ours - pyloudnorm.Meter(fs).integrated_loudness(x.T)) < 0.1
    # With the same analog prototype as libebur128 ("DeMan") the gating and sums agree
    # to rounding: this pins down the block/gate arithmetic.
    deman = pyloudnorm.Meter(fs, filter_class="DeMan").integrated_loudness(x.T)
    assert abs(ours - deman) < 1e-6


def test_white_noise_vs_pyloudnorm() -> None:
    rng = np.random.default_rng(3)
    for fs in (22050, 48000):
        x = 0.1 * rng.standard_normal((2, fs * 3))
        ours = L.integrated_lufs(measure(x, fs))
        assert abs(ours - pyloudnorm.Meter(fs).integrated_loudness(x.T)) < 0.1


def test_per_channel_integrated() -> None:
    x = np.stack([sine_db(-20, 5), sine_db(-30, 5)])
    a, b = L.channel_integrated_lufs(measure(x, FS))
    # a mono 1 kHz sine at d dBFS reads d - 3.01 LUFS
    assert abs(a - (-23.01)) < 0.05 and abs(b - (-33.01)) < 0.05
    for c in range(2):
        ref = pyloudnorm.Meter(FS, filter_class="DeMan").integrated_loudness(x[c])
        assert abs((a, b)[c] - ref) < 1e-6


# -- streaming ---------------------------------------------------------------------------------


def test_chunk_invariance_of_meter() -> None:
    fs = 44100
    x = music_like(2, 5.0, fs, seed=1).astype(np.float32)
    whole = measure(x, fs)
    for chunk in (1000, 4097, 44100 * 10):
        st = measure(x, fs, chunk=chunk)
        assert st.n_sub == whole.n_sub == 50
        for f in (
            L.integrated_lufs,
            L.loudness_range_lu,
            L.max_momentary_lufs,
            L.max_short_term_lufs,
        ):
            assert abs(f(st) - f(whole)) < 1e-9, (chunk, f.__name__)


def test_chunks_of_one_frame() -> None:
    fs = 8000
    x = music_like(2, 0.9, fs, seed=2)
    whole = measure(x, fs)
    st = measure(x, fs, chunk=1)
    np.testing.assert_allclose(st.sub_energies(), whole.sub_energies(), rtol=1e-12)
    assert abs(L.integrated_lufs(st) - L.integrated_lufs(whole)) < 1e-9


def test_rate_not_multiple_of_ten_sub_block_boundaries() -> None:
    # 11025 Hz: sub-blocks of 1102 or 1103 frames at floor(k * fs / 10).
    fs = 11025
    x = music_like(1, 2.0, fs, seed=4)
    st = measure(x, fs, chunk=999)
    lengths = st.sub_lengths()
    assert set(lengths.tolist()) == {1102.0, 1103.0}
    assert lengths.sum() == math.floor(st.n_sub * fs / 10)
    ref = pyloudnorm.Meter(fs, filter_class="DeMan").integrated_loudness(x.T)
    assert abs(L.integrated_lufs(st) - ref) < 0.01


def test_state_is_not_mutated() -> None:
    fs = 8000
    x = torch.from_numpy(music_like(2, 2.0, fs, seed=5))
    s0 = L.meter_init(2, fs)
    s1 = L.meter_update(x[:, :6000], s0)
    snapshot = (s1.zi.clone(), s1.partial.clone(), s1.frames, s1.sub_energies().copy())
    s2 = L.meter_update(x[:, 6000:], s1)
    # s1 unchanged by the update, and updating s1 again (a retry) forks, not overwrites
    s2b = L.meter_update(x[:, 6000:12000] * 0.5, s1)
    assert torch.equal(s1.zi, snapshot[0]) and torch.equal(s1.partial, snapshot[1])
    assert s1.frames == snapshot[2]
    np.testing.assert_array_equal(s1.sub_energies(), snapshot[3])
    assert s0.frames == 0 and s0.n_sub == 0 and not s0.zi.any()
    assert L.integrated_lufs(s2) == L.integrated_lufs(L.meter_update(x[:, 6000:], s1))
    assert s2b.n_sub == 15 and s2.n_sub == 20


@pytest.mark.cuda
def test_cuda_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    fs = 48000
    x = music_like(2, 5.0, fs, seed=6)
    cpu = measure(x, fs, chunk=10000)
    st = L.meter_init(2, fs, "cuda")
    t = torch.from_numpy(x).cuda()
    for i in range(0, t.shape[1], 10000):
        st = L.meter_update(t[:, i : i + 10000], st)
    assert st.zi.device.type == "cuda"
    assert abs(L.integrated_lufs(st) - L.integrated_lufs(cpu)) < 1e-6
    assert abs(L.loudness_range_lu(st) - L.loudness_range_lu(cpu)) < 1e-6


# -- the loudness step --------------------------------------------------------------------------


def _measure_step(step: object, x: torch.Tensor, chunk: int) -> object:
    acc = None
    for i in range(0, x.shape[-1], chunk):
        acc = step.measure(acc, x[..., i : i + chunk])  # type: ignore[attr-defined]
    return acc


def test_loudness_step_reaches_target() -> None:
    from fxcli.steps import Gain
    from fxcli.steps.loudness import Loudness

    fs = 44100
    x = torch.from_numpy(music_like(2, 4.0, fs, seed=7))
    step = Loudness(-16.0, fs=fs)
    out = step.resolve(step.measure(None, x))
    assert isinstance(out, Gain) and out.label == "loudness"
    y = out(x).numpy()
    ref = pyloudnorm.Meter(fs, filter_class="DeMan").integrated_loudness(y.T)
    assert abs(ref - (-16.0)) < 1e-6
    assert abs(pyloudnorm.Meter(fs).integrated_loudness(y.T) - (-16.0)) < 0.1


def test_loudness_step_true_peak_ceiling() -> None:
    from fxcli.dsp.truepeak import interpolator, true_peak
    from fxcli.steps.loudness import Loudness

    fs = 48000
    # A loud transient on a quiet bed: reaching -10 LUFS would put peaks far above 0 dBTP.
    x = music_like(2, 3.0, fs, seed=8) * 0.1
    x[:, fs] = 0.9
    t = torch.from_numpy(x)
    free = Loudness(-10.0, fs=fs)
    capped = Loudness(-10.0, -1.0, fs=fs)
    g_free = free.gain_for(free.measure(None, t))
    acc = capped.measure(None, t)
    g = capped.gain_for(acc)
    interp = interpolator(fs)  # issue 17: the step meters with the default interpolator
    tail = torch.zeros(2, interp.history, dtype=t.dtype)  # its ringing after the end
    peak_out = float(true_peak(torch.cat([t, tail], dim=-1) * g, None, interp)[0].max())
    assert g < g_free
    assert abs(20 * math.log10(peak_out) - (-1.0)) < 1e-9  # exactly at the ceiling
    assert "dBTP" in capped.describe(acc)
    # a ceiling that is not reached leaves the loudness gain alone
    quiet = Loudness(-60.0, -1.0, fs=fs)
    loose = Loudness(-60.0, fs=fs)
    assert quiet.gain_for(quiet.measure(None, t)) == loose.gain_for(loose.measure(None, t))


def test_loudness_step_silence_is_unity() -> None:
    from fxcli.steps.loudness import Loudness

    step = Loudness(-23.0, -1.0, fs=FS)
    z = torch.zeros(2, FS)
    assert step.resolve(step.measure(None, z)).gain == 1.0  # type: ignore[attr-defined]
    assert step.resolve(None).gain == 1.0  # type: ignore[attr-defined]


def test_loudness_step_chunk_invariance() -> None:
    # The measured gain does not depend on how the chain's output is chunked
    # (chunks of 3, 7, 4097 and one longer than the signal), float32 and float64.
    from fxcli.steps.loudness import Loudness

    fs = 8000
    for dtype in (np.float32, np.float64):
        x = torch.from_numpy(music_like(2, 0.5, fs, seed=9).astype(dtype))
        step = Loudness(-20.0, -2.0, fs=fs)
        whole = step.gain_for(step.measure(None, x))  # type: ignore[arg-type]
        for chunk in (3, 7, 4097, 10**6):
            g = step.gain_for(_measure_step(step, x, chunk))  # type: ignore[arg-type]
            assert abs(g / whole - 1.0) < 1e-9, (dtype, chunk)


def test_loudness_step_in_chain_via_engine_helper() -> None:
    # Resolved inside a chain by the engine's analysis pass; chunked output == whole output.
    from fxcli.dsp.design import rbj
    from fxcli.engine.runner import process_array
    from fxcli.steps import IIR
    from fxcli.steps.loudness import Loudness

    fs = 22050
    x = torch.from_numpy(music_like(2, 2.0, fs, seed=10).astype(np.float32))
    steps = [IIR(rbj("peaking", 1000.0, fs, q=1.0, gain_db=6.0)), Loudness(-18.0, fs=fs)]
    whole = process_array(steps, x)
    for chunk in (257, 4097):
        torch.testing.assert_close(process_array(steps, x, chunk=chunk), whole, rtol=0, atol=1e-6)
    y = whole.double().numpy()
    assert abs(pyloudnorm.Meter(fs, filter_class="DeMan").integrated_loudness(y.T) + 18.0) < 1e-3


def test_loudness_step_checks_arguments() -> None:
    from fxcli.steps.loudness import Loudness

    with pytest.raises(ValueError, match=r"target_lufs: got 3; allowed: a number >= -70 and <= 0"):
        Loudness(3.0, fs=FS)
    with pytest.raises(ValueError, match=r"max_true_peak_db: got 1; allowed: a number >= -30"):
        Loudness(-23.0, 1.0, fs=FS)
    with pytest.raises(ValueError, match="fs must be >= 4000"):
        Loudness(-23.0, fs=2000)
    with pytest.raises(RuntimeError, match="measuring pass"):
        Loudness(fs=FS).process(torch.zeros(1, 10), None)
