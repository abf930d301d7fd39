"""Issue 17: the true-peak limiter keeps its ceiling by other meters too, at 16-96 kHz.

Near Nyquist (clicks, clipped noise, tone bursts at 0.4-0.5 fs) meters disagree:
with only fxcli's own sinc interpolator checked, the limited output read up to
+0.12 dB over a -1 dBTP ceiling by scipy's ``resample_poly(y, 8, 1)`` and up to
+0.05 dB over by FFmpeg's ``ebur128=peak=true``. The limiter now also checks those
meters' interpolators (fxcli.dsp.peak_meters). Checked here by independent
readers: scipy's resample_poly, this file's own numpy emulation of FFmpeg's meter
(libswresample's default filter, written from its source and checked against the
real ``ffmpeg`` where installed) and the real ``ffmpeg``.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fxcli.dsp import peak_meters
from fxcli.dsp.dynamics import LimiterState, limit, limiter_latency
from fxcli.dsp.truepeak import Interpolator, interpolator, true_peak_array

RATES = (16000, 22050, 44100, 48000, 96000)
CEILING_DB = -1.0
HAVE_FFMPEG = shutil.which("ffmpeg") is not None


# ------------------------------------------------ FFmpeg's meter, emulated
def _swr_bank(fs: int) -> tuple[int, np.ndarray]:
    """libswresample's default filter bank for fs -> 192 kHz (resample.c build_filter:
    32 taps, center 15, Kaiser beta 9, cutoff at the input's Nyquist when
    upsampling, each phase divided by phase 0's sum; exact_rational: 192000/gcd
    phases when <= 1024, else 1024)."""
    num = 192000 // math.gcd(192000, fs)
    pc = num if num <= 1024 else 1024
    i = np.arange(32)
    ph = np.arange(pc)[:, None]
    x = np.pi * ((i - 15) - ph / pc)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(x == 0, 1.0, np.sin(x) / x)
    w = 2 * x / (32 * np.pi)
    y = y * np.i0(9.0 * np.sqrt(np.clip(1 - w * w, 0, None)))
    return pc, y / y[0].sum()


def ffmpeg_peak_emulated(y: np.ndarray, fs: int) -> float:
    """ebur128's true peak (linear) of ``y`` (C, n): the max of |the 192 kHz output|.
    Output m sits at input time m fs / 192000 (phase = its fraction, truncated to
    1/1024 where the ratio is not exact); the first call mirrors the stream's start
    (x[-k] = x[k], k = 1..32); the end is not flushed."""
    pc, bank = _swr_bank(fs)
    n = y.shape[-1]
    m = np.arange(n * 192000 // fs, dtype=np.int64)
    num = 192000 // math.gcd(192000, fs)
    pos = m * (fs // math.gcd(192000, fs)) if num <= 1024 else (m * fs * pc) // 192000
    s, ph = pos // pc, pos % pc
    peak = 0.0
    for row in np.atleast_2d(y):
        head = row[1:33][::-1] if n > 32 else np.zeros(32)
        xp = np.concatenate([head, row, np.zeros(32)])
        idx = s[:, None] + 17 + np.arange(32)[None, :]  # x[s - 15 + i] at offset 32
        v = np.einsum("ij,ij->i", bank[ph], xp[idx])
        peak = max(peak, float(np.abs(v).max()))
    return peak


def ffmpeg_peak(y: np.ndarray, fs: int, tmp: Path) -> float:
    """The real ``ffmpeg``'s ebur128 true peak (linear) of ``y`` (C, n): the
    per-block metadata (printed with 3 decimals, so the file holds y x 1000)."""
    wav, meta = tmp / f"y{fs}.wav", tmp / f"m{fs}.txt"
    sf.write(wav, np.atleast_2d(y).T * 1000.0, fs, subtype="DOUBLE")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(wav), "-af",
         f"ebur128=peak=true:metadata=1,ametadata=print:file={meta}", "-f", "null", "-"],
        check=True, capture_output=True,
    )  # fmt: skip
    found = re.findall(r"true_peaks_ch\d+=([-0-9.]+)", meta.read_text())
    assert found, "ffmpeg printed no true-peak metadata"
    return max(map(float, found)) / 1000.0


def resample_poly8_peak(y: np.ndarray) -> float:
    from scipy.signal import resample_poly

    return float(np.abs(resample_poly(y, 8, 1, axis=-1)).max())


def db(v: float) -> float:
    return 20.0 * math.log10(v)


# ------------------------------------------------ adversarial signals
def _bursts(fs: int, seed: int, n: int) -> np.ndarray:
    """Bursts of 1-7 samples (alternating or random signs), near-Nyquist tone bursts
    (0.4-0.5 fs, 4-200 samples, Hann) or clipped noise, -6..+20 dB, 3-600 samples
    apart; the kind and all draws from ``seed``."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    kind = rng.integers(0, 4)
    pos = 200
    while pos < n - 300:
        m = int(rng.integers(1, 8))
        amp = 10 ** (rng.uniform(-6, 20) / 20)
        if kind == 0:
            x[pos : pos + m] = amp * rng.choice([-1, 1]) * (-1.0) ** np.arange(m)
        elif kind == 1:
            x[pos : pos + m] = amp * rng.uniform(-1, 1, m)
        elif kind == 2:
            length, f = int(rng.integers(4, 200)), rng.uniform(0.4, 0.5)
            t = np.arange(min(length, n - 300 - pos))
            x[pos : pos + t.size] = (
                amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) * np.hanning(t.size + 2)[1:-1]
            )
        else:
            w = min(int(rng.integers(4, 400)), n - 300 - pos)
            x[pos : pos + w] = np.clip(rng.standard_normal(w) * amp * 3, -amp, amp)
        pos += int(rng.integers(3, 600))
    return x


def adversarial(fs: int) -> np.ndarray:
    """(1, n): +1/-1 click doublets, then three burst sequences (seeds found to read
    over the ceiling through the old limiter), then clipped full-band noise; silence
    first (FFmpeg mirrors a stream's first samples, which no limiter of the signal
    can see) and last."""
    clicks = np.zeros(fs // 10)
    clicks[200 : -200 : fs // 200 + 7] = 1.0
    clicks[201 : -199 : fs // 200 + 7] = -1.0
    rng = np.random.default_rng(7)
    noise = np.clip(rng.standard_normal(fs // 20) * 4, -1, 1)
    parts = [clicks] + [_bursts(fs, s, fs // 8) for s in (4, 13, 26)] + [noise, np.zeros(400)]
    return np.concatenate(parts)[None, :]


def limited(x: np.ndarray, fs: int, interp: Interpolator | None = None) -> np.ndarray:
    """The limiter step's settings (-1 dBTP less 2^-13, 5 ms, 50 ms), flushed."""
    look = round(5e-3 * fs)
    ceiling = 10 ** (CEILING_DB / 20) - 2.0**-13

    def run(v: np.ndarray, st: LimiterState | None) -> tuple[np.ndarray, LimiterState]:
        return limit(  # type: ignore[return-value]
            v,  # type: ignore[arg-type]
            st,
            ceiling=ceiling,
            true_peak=True,
            lookahead=look,
            release_ms=50.0,
            fs=fs,
            interp=interp,
        )

    y, st = run(x, None)
    tail, _ = run(np.zeros((x.shape[0], limiter_latency(look, True, fs, interp))), st)
    return np.concatenate([y, tail], axis=-1)


# ------------------------------------------------ tests
def test_branches_equal_scipy_and_the_ffmpeg_emulation() -> None:
    """The limiter's extra branches are scipy's resample_poly(8) phases and FFmpeg's
    filter at the positions its grid visits (issue 17)."""
    from scipy.signal import resample_poly

    rng = np.random.default_rng(0)
    x = rng.standard_normal(300)
    ref = resample_poly(x, 8, 1)
    ph = peak_meters.resample_poly8_phases()
    n = np.arange(60, 240)
    for p in range(8):
        got = np.array([ph[p] @ x[k - np.arange(48)] for k in n])
        np.testing.assert_allclose(got, ref[8 * (n - 24) + p], atol=1e-12)
    for fs in RATES:
        pc, bank = _swr_bank(fs)
        rows = peak_meters.ffmpeg_phases(fs)
        positions = range(1, pc) if pc <= 16 else [j * pc // 16 for j in range(1, 16)]
        assert rows.shape == (len(positions), 48)
        for row, p in zip(rows, positions, strict=True):
            np.testing.assert_allclose(row[39 - np.arange(32)], bank[p], atol=1e-14)
            assert not row[:8].any() and not row[40:].any()


@pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg not installed: emulation not compared")
def test_ffmpeg_emulation_reads_as_ffmpeg(tmp_path: Path) -> None:
    """This file's emulation of ebur128's true peak equals the real ffmpeg's within
    0.002 dB on clicks, a click at the very start (mirrored by FFmpeg) and noise."""
    rng = np.random.default_rng(1)
    for fs in RATES:
        x = np.zeros(fs // 5)
        x[1], x[2] = 1.0, -1.0  # at the start: FFmpeg reads its mirror image too
        x[500:700] = np.clip(rng.standard_normal(200) * 2, -1, 1)
        x[1000:3000:97] = 0.8
        x[1001:3001:97] = -0.9
        got, ref = db(ffmpeg_peak_emulated(x[None], fs)), db(ffmpeg_peak(x[None], fs, tmp_path))
        assert abs(got - ref) < 0.002, (fs, got, ref)


@pytest.mark.parametrize("fs", RATES)
def test_limiter_keeps_ceiling_by_other_meters(fs: int, tmp_path: Path) -> None:
    """Issue 17: clicks, near-Nyquist bursts and clipped noise limited at -1 dBTP read
    at or under -1 dBTP by fxcli's meter, by scipy's resample_poly(8) and by FFmpeg's
    ebur128 (emulated, and the real ffmpeg where installed)."""
    x = adversarial(fs)
    y = limited(x, fs)
    assert y.shape == x.shape
    readings = {
        "fxcli": db(float(true_peak_array(y, None, interpolator(fs))[0].max())),
        "resample_poly8": db(resample_poly8_peak(y)),
        "ffmpeg (emulated)": db(ffmpeg_peak_emulated(y, fs)),
    }
    if HAVE_FFMPEG:
        readings["ffmpeg"] = db(ffmpeg_peak(y, fs, tmp_path))
    over = {k: v for k, v in readings.items() if v > CEILING_DB}
    assert not over, (fs, readings)
    # the limiter had work to do: the input reads far over the ceiling
    assert db(resample_poly8_peak(x)) > CEILING_DB + 10


def test_the_signals_defeat_a_sinc_only_limiter() -> None:
    """Guards the test above against passing vacuously: the same signals limited with
    only the sinc interpolator (fxcli's meter, the limiter before issue 17) read over
    the ceiling by resample_poly(8) or FFmpeg's meter at some rate."""
    worst = max(
        max(db(resample_poly8_peak(y)), db(ffmpeg_peak_emulated(y, fs)))
        for fs in (22050, 48000)
        for y in [limited(adversarial(fs), fs, interpolator(fs))]
    )
    assert worst > CEILING_DB + 0.03, worst
