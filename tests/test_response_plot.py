"""``fxcli presets plot`` and fxcli.measure.response (issue 19: "magnitude response
(and group delay on request) of the filter steps, presets overlaid, log frequency
axis, labelled in Hz and dB; dynamics and loudness steps listed as text beside").

Guards: the curve is the exact response of the designed steps (against SciPy's
sosfreqz / freqz / group_delay), each filter at its own rate after a resample;
signal-dependent steps are listed, not drawn; the picture has the axes, labels and
one curve per preset; the command's usage errors are one line with exit 2.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from fxcli.measure.response import plot_responses, preset_response
from fxcli.preset.loader import load_preset

pytest.importorskip("matplotlib")
ROOT = Path(__file__).resolve().parents[1]


def _preset(tmp: Path, body: str) -> Path:
    p = tmp / "p.yaml"
    p.write_text("version: 1\nchain:\n" + body)
    return p


def test_iir_curve_and_group_delay_equal_scipy(tmp_path: Path) -> None:
    p = _preset(tmp_path, "  - {type: highpass, cutoff_hz: 80, order: 4}\n"
                          "  - {type: peaking, freq_hz: 3000, gain_db: 6, q: 2}\n"
                          "  - {type: gain, gain_db: -3}\n")  # fmt: skip
    r = preset_response(load_preset(str(p)), 48000)
    sos = np.vstack([signal.butter(4, 80, "highpass", fs=48000, output="sos")])
    _, h_hp = signal.sosfreqz(sos, worN=r.freqs, fs=48000)
    # peaking: RBJ cookbook, as fxcli designs it
    from fxcli.dsp.design import rbj

    pk = rbj("peaking", 3000.0, 48000.0, q=2.0, gain_db=6.0)
    _, h_pk = signal.sosfreqz(pk, worN=r.freqs, fs=48000)
    expect = 20 * np.log10(np.abs(h_hp * h_pk)) - 3.0
    np.testing.assert_allclose(r.magnitude_db, expect, atol=1e-6)
    # per section (the whole cascade as one polynomial ratio is too ill-conditioned at
    # low frequencies for scipy's group_delay: -3.5 samples at 17 Hz instead of 267)
    gd = sum(signal.group_delay((sec[:3], sec[3:]), w=r.freqs, fs=48000)[1]
             for sec in np.vstack([sos, pk]))  # fmt: skip
    np.testing.assert_allclose(r.group_delay_ms, gd / 48.0, rtol=1e-4, atol=1e-9)
    assert len(r.drawn) == 3 and r.listed == []


def test_fir_and_resample_use_each_steps_rate(tmp_path: Path) -> None:
    p = _preset(tmp_path, "  - {type: resample, rate_hz: 16000}\n"
                          "  - {type: fir, cutoff_hz: 3000, taps: 101}\n")  # fmt: skip
    r = preset_response(load_preset(str(p)), 48000)
    assert r.freqs.max() < 8000  # above the new Nyquist nothing is drawn
    taps = signal.firwin(101, 3000, fs=16000)
    _, h = signal.freqz(taps, worN=r.freqs, fs=16000)
    np.testing.assert_allclose(r.magnitude_db, np.maximum(20 * np.log10(np.abs(h)), -200),
                               atol=1e-6)  # fmt: skip
    assert r.listed == ["resample rate_hz=16000, quality=high"]


def test_signal_dependent_steps_are_listed_not_drawn() -> None:
    r = preset_response(load_preset("mastering"), 44100)
    kinds = [line.split()[0] for line in r.listed]
    assert kinds == ["loudness", "compressor", "loudness", "limiter"]
    assert [line.split()[0] for line in r.drawn] == [
        "highpass", "lowshelf", "peaking", "peaking", "highshelf",
    ]  # fmt: skip


def test_picture_content(tmp_path: Path) -> None:
    rs = [preset_response(load_preset(n), 48000, label=n) for n in ("voice", "podcast")]
    out = tmp_path / "r.png"
    fig = plot_responses(rs, out, group_delay=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mag, gd = fig.axes
    assert mag.get_xscale() == "log" and gd.get_xscale() == "log"
    assert mag.get_ylabel() == "Magnitude (dB)" and gd.get_ylabel() == "Group delay (ms)"
    assert gd.get_xlabel() == "Frequency (Hz)"
    assert len(mag.get_lines()) == 2 and len(gd.get_lines()) == 2
    assert [t.get_text() for t in mag.get_legend().get_texts()] == [
        "voice @ 48000 Hz", "podcast @ 48000 Hz",
    ]  # fmt: skip
    assert "1k" in [t.get_text() for t in gd.get_xticklabels()]
    text = "\n".join(t.get_text() for t in fig.texts)
    assert "voice, not drawn:" in text and "limiter ceiling_db=-1.5" in text
    fig2 = plot_responses(rs[:1], tmp_path / "one.png")
    assert len(fig2.axes) == 1


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fxcli", "presets", "plot", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip


def test_command_and_its_usage_errors(tmp_path: Path) -> None:
    r = _cli("voice", "mastering", "-o", "r.png", "--sample-rate", "44100", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    for args, text in (
        (["voice", "-o", "r.jpg"], "the picture is a PNG"),
        (["voice", "-o", "r.png", "--sample-rate", "10"], "allowed: 1000 to 768000 Hz"),
        (["nope", "-o", "r.png"], "nope"),
    ):
        r = _cli(*args, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and text in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
