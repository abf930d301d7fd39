"""``fxcli analyze FILE --plot loudness.png`` (issue 19: "momentary and short-term
loudness over time, integrated loudness and true-peak lines, the LRA band").

Guards: the curves are the meter's own windows (their maxima are the reported max
momentary / short-term loudness, their times the windows' ends); the picture holds
the two curves, the two lines and the band with their values in the legend; one
file only, a PNG name, exit 2 otherwise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fxcli.dsp import loudness as L
from fxcli.measure.loudness_plot import loudness_over_time, plot_loudness

pytest.importorskip("matplotlib")
ROOT = Path(__file__).resolve().parents[1]


def _programme(path: Path, fs: int = 48000) -> Path:
    t = np.arange(int(fs * 12)) / fs
    level = np.where(t < 4, 0.05, np.where(t < 8, 0.5, 0.15))  # quiet, loud, medium
    x = np.sin(2 * np.pi * 997 * t) * level
    sf.write(path, np.stack([x, 0.8 * x], 1), fs, subtype="PCM_24")
    return path


def test_curves_are_the_meters_windows(tmp_path: Path) -> None:
    src = _programme(tmp_path / "p.wav")
    c = loudness_over_time(src)
    x, fs = sf.read(src, always_2d=True)
    meter = L.meter_update(x.T, L.meter_init(2, fs, None))
    assert c.momentary.max() == L.max_momentary_lufs(meter)
    assert c.short_term.max() == L.max_short_term_lufs(meter)
    assert c.momentary_t[0] == pytest.approx(0.4) and c.short_term_t[0] == pytest.approx(3.0)
    assert c.momentary_t[-1] == pytest.approx(12.0) and c.duration_s == pytest.approx(12.0)
    assert np.all(np.diff(c.momentary_t) == pytest.approx(0.1))
    lo, hi = c.lra  # type: ignore[misc]
    assert hi - lo == pytest.approx(L.loudness_range_lu(meter))
    # the loud middle part reads 20 dB above the quiet start (amplitude x10)
    quiet = c.momentary[(c.momentary_t > 1) & (c.momentary_t < 3.5)]
    loud = c.momentary[(c.momentary_t > 5) & (c.momentary_t < 7.5)]
    assert np.allclose(loud - quiet.mean(), 20.0, atol=0.05)


def test_picture_content(tmp_path: Path) -> None:
    c = loudness_over_time(_programme(tmp_path / "p.wav"))
    fig = plot_loudness(c, tmp_path / "l.png", integrated_lufs=-18.2, true_peak_dbtp=-6.1)
    assert (tmp_path / "l.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (ax,) = fig.axes
    assert ax.get_xlabel() == "Time (s)" and "LUFS" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("LRA ") and labels[0].endswith(" LU")
    assert labels[1:] == [
        "momentary (400 ms)", "short-term (3 s)", "integrated -18.2 LUFS", "true peak -6.1 dBTP",
    ]  # fmt: skip
    assert len(ax.get_lines()) == 4 and len(ax.patches) == 1  # 2 curves + 2 lines, 1 band
    assert ax.get_xlim() == (0.0, pytest.approx(12.0))


def _cli(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "fxcli", "analyze", *args], input=stdin,
                          capture_output=True, cwd=cwd, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip


def test_command(tmp_path: Path) -> None:
    src = _programme(tmp_path / "p.wav")
    r = _cli("p.wav", "--plot", "l.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "l.png").read_bytes()[:4] == b"\x89PNG"
    r = _cli("-", "--plot", "s.png", cwd=tmp_path, stdin=src.read_bytes())  # audio on stdin
    assert r.returncode == 0, r.stderr and (tmp_path / "s.png").is_file()
    for args, text in (
        (["p.wav", "p.wav", "--plot", "x.png"], b"--plot draws one file"),
        (["p.wav", "--plot", "x.svg"], b"the picture is a PNG"),
        ([str(tmp_path), "--plot", "x.png"], b"--plot draws one file"),
    ):
        r = _cli(*args, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and text in r.stderr, r.stderr
