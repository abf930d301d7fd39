"""``fxcli match`` (issue 19): an INPUT made from a REFERENCE through a known 5-band EQ
gets a preset that restores the reference's long-term spectrum within 0.5 dB in every
1/3-octave band from 50 Hz to 16 kHz, measured on the processed output; noise,
music-like and speech-like signals at 48 and 44.1 kHz; the same preset twice for the
same files; silence, a short REFERENCE and bad options are one line, exit 2.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fxcli.measure import match as M

ROOT = Path(__file__).resolve().parents[1]
TRUE_EQ = (
    "version: 1\nchain:\n"
    "  - {type: lowshelf, freq_hz: 150, gain_db: 4, q: 0.7}\n"
    "  - {type: peaking, freq_hz: 600, gain_db: -5, q: 1.5}\n"
    "  - {type: peaking, freq_hz: 2500, gain_db: 3.5, q: 1}\n"
    "  - {type: peaking, freq_hz: 6000, gain_db: -4, q: 2}\n"
    "  - {type: highshelf, freq_hz: 9000, gain_db: 3, q: 0.7}\n"
)


def _fx(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fxcli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip


def _signal(kind: str, fs: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    if kind == "noise":  # pink-ish: white plus a first-order lowpassed part
        w = rng.standard_normal((fs * 8, 2)) * 0.05
        from scipy import signal

        b, a = signal.butter(1, 500, fs=fs)
        return signal.lfilter(b, a, w, axis=0) * 3 + w * 0.3
    from examples.make_examples import music, voice

    x = np.atleast_2d(music(fs, 4.0) if kind == "music" else voice(fs, 4.0))
    x = x.T if x.shape[0] < x.shape[1] else x  # (frames, channels)
    return np.concatenate([x, x * 0.9, x * 1.1])[: fs * 12] * 0.5


@pytest.mark.parametrize(("kind", "fs"), [("noise", 48000), ("music", 44100), ("speech", 48000)])
def test_restores_the_reference_spectrum(tmp_path: Path, kind: str, fs: int) -> None:
    sf.write(tmp_path / "ref.wav", _signal(kind, fs), fs, subtype="FLOAT")
    (tmp_path / "eq.yaml").write_text(TRUE_EQ)
    r = _fx("process", "ref.wav", "in.wav", "-p", "eq.yaml", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _fx("match", "ref.wav", "in.wav", "-o", "m.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "distance (RMS over bands)" in r.stderr
    r = _fx("process", "in.wav", "out.wav", "-p", "m.yaml", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ref = M.long_term_spectrum(tmp_path / "ref.wav")
    out = M.long_term_spectrum(tmp_path / "out.wav")
    before = M.long_term_spectrum(tmp_path / "in.wav")
    c = M.third_octave_bands(fs)
    err = M.band_levels_db(out, c) - M.band_levels_db(ref, c)
    was = M.band_levels_db(before, c) - M.band_levels_db(ref, c)
    assert np.abs(was).max() > 3.0  # the EQ moved the spectrum
    assert np.abs(err).max() <= 0.5, np.round(err, 2)
    if kind == "noise":  # deterministic: the same preset again
        r = _fx("match", "ref.wav", "in.wav", "-o", "m2.yaml", cwd=tmp_path)
        assert (tmp_path / "m.yaml").read_text() == (tmp_path / "m2.yaml").read_text()


def test_loudness_step_and_json(tmp_path: Path) -> None:
    fs = 48000
    sf.write(tmp_path / "ref.wav", _signal("noise", fs), fs, subtype="FLOAT")
    sf.write(tmp_path / "in.wav", _signal("noise", fs)[:, :1] * 0.3, fs, subtype="FLOAT")
    r = _fx("match", "ref.wav", "in.wav", "-o", "m.yaml", "--bands", "4", "--include",
            "loudness", "--json", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    import json

    res = json.loads(r.stdout)
    assert len(res["bands"]) == 4 and res["rms_after_db"] < res["rms_before_db"]
    text = (tmp_path / "m.yaml").read_text()
    assert "type: loudness" in text and "type: gain" not in text
    assert "channel counts differ" not in r.stderr  # --json: the table and notes are skipped


def test_failures_are_one_line(tmp_path: Path) -> None:
    fs = 48000
    sf.write(tmp_path / "ref.wav", _signal("noise", fs), fs, subtype="FLOAT")
    sf.write(tmp_path / "silent.wav", np.zeros((fs * 5, 2)), fs, subtype="PCM_16")
    sf.write(tmp_path / "short.wav", _signal("noise", fs)[: fs * 2], fs, subtype="FLOAT")
    for args, text in (
        (["silent.wav", "ref.wav"], "silent"),
        (["ref.wav", "silent.wav"], "silent"),
        (["short.wav", "ref.wav"], "at least 3 s"),
        (["ref.wav", "nope.wav"], "nope.wav"),
    ):
        r = _fx("match", *args, "-o", "m.yaml", cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and text in r.stderr, r.stderr
        assert not (tmp_path / "m.yaml").exists()
    for opts, text in ((["-o", "m.txt"], "*.yaml"), (["-o", "m.yaml", "--bands", "1"], "2 to 32"),
                       (["-o", "m.yaml", "--include", "x"], "allowed: loudness")):  # fmt: skip
        r = _fx("match", "ref.wav", "ref.wav", *opts, cwd=tmp_path)
        assert r.returncode == 2 and text in r.stderr, r.stderr
