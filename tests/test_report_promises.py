"""issue 16: a report that never says ``ok`` to a result that missed its promise.

Missed loudness targets, undefined loudness (too short, digital silence), clipped
outputs and peaks over a ceiling each get a warning with numbers (JSON
``warnings``/``notes`` and a ``warning:`` line), the JSON carries the measured
levels, ``--strict`` fails such files (exit 1, no output written); input and
output formats are reported separately; ``--progress always`` without a terminal
prints ``progress:`` lines. Outputs are checked with soundfile and pyloudnorm.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from typer.testing import CliRunner

from fxcli.cli.app import app
from fxcli.cli.progress_lines import LineProgress
from fxcli.dsp.truepeak import interpolator, true_peak_array
from tests.conftest import ROOT, write_audio


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def preset(tmp_path: Path, name: str, steps: str) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text("version: 1\nchain:\n" + steps)
    return p


def program(seconds: float = 3.0, fs: int = 48000, spike: float = 0.95) -> np.ndarray:
    """Stereo noise at about -20 LUFS with one spike near full scale (a high true
    peak that keeps a ceiling-limited gain low)."""
    x = 0.05 * np.random.default_rng(0).standard_normal((2, int(seconds * fs)))
    x[:, 1000] = spike
    return x.astype(np.float32)


def lufs_of(path: Path) -> float:
    y, fs = sf.read(str(path), dtype="float64")
    return float(pyloudnorm.Meter(fs, filter_class="DeMan").integrated_loudness(y))


def dbtp_of(path: Path) -> float:
    y, fs = sf.read(str(path), dtype="float64", always_2d=True)
    interp = interpolator(fs)
    peak, state = true_peak_array(y.T, None, interp)
    tail, _ = true_peak_array(np.zeros((y.shape[1], interp.history)), state, interp)
    return 20 * math.log10(max(float(peak.max()), float(tail.max())))


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_missed_target_is_reported_with_numbers_and_strict_fails(tmp_path: Path) -> None:
    # issue 16: target_lufs -9 with max_true_peak_db -2 gave -20.4 LUFS, reported "ok", notes []
    p = preset(tmp_path, "hot", "  - {type: loudness, target_lufs: -9, max_true_peak_db: -2}\n")
    src = write_audio(tmp_path / "in.wav", program(), 48000, "PCM_24")
    out = tmp_path / "out.wav"
    r = run("process", str(src), str(out), "-p", str(p), "--json")
    assert r.exit_code == 0, r.output
    res = json_lines(r.stdout)[0]
    assert res["status"] == "ok"
    assert len(res["warnings"]) == 1 and res["warnings"][0] in res["notes"]
    w = res["warnings"][0]
    assert "missed target -9.0 LUFS" in w and "max_true_peak_db -2 dBTP" in w
    assert f"warning: {src}: " in r.stderr
    step = res["levels"]["steps"][0]
    measured_out = lufs_of(out)
    assert step["target_reached"] is False
    assert step["reached_lufs"] == pytest.approx(measured_out, abs=0.05)
    assert res["levels"]["output"]["lufs"] == pytest.approx(measured_out, abs=0.05)
    assert res["levels"]["output"]["true_peak_dbtp"] == pytest.approx(dbtp_of(out), abs=0.05)
    assert res["levels"]["input"]["lufs"] == pytest.approx(lufs_of(src), abs=0.05)
    assert step["measured_lufs"] == pytest.approx(lufs_of(src), abs=0.05)
    assert step["gain_db"] == pytest.approx(measured_out - lufs_of(src), abs=0.05)
    assert step["wanted_gain_db"] == pytest.approx(-9 - lufs_of(src), abs=0.05)
    assert f"reached {measured_out:.1f}" in w or f"reached {step['reached_lufs']:.2f}" in w

    out2 = tmp_path / "strict.wav"
    r = run("process", str(src), str(out2), "-p", str(p), "--json", "--strict")
    assert r.exit_code == 1
    res = json_lines(r.stdout)[0]
    assert res["status"] == "failed" and res["error"].startswith("--strict: ")
    assert "missed target -9.0 LUFS" in res["error"]
    assert not out2.exists()  # nothing written for a failed file
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def test_reached_target_has_levels_and_no_warning(tmp_path: Path) -> None:
    p = preset(
        tmp_path,
        "ok",
        "  - {type: loudness, target_lufs: -16}\n"
        "  - {type: limiter, ceiling_db: -1.0, true_peak: true}\n",
    )
    src = write_audio(tmp_path / "in.wav", program(), 48000, "PCM_24")
    out = tmp_path / "out.wav"
    r = run("process", str(src), str(out), "-p", str(p), "--json", "--strict")
    assert r.exit_code == 0, r.output
    res = json_lines(r.stdout)[0]
    assert res["status"] == "ok" and res["warnings"] == [] and res["notes"] == []
    assert "warning:" not in r.stderr
    assert res["levels"]["steps"][0]["through_limiter"] is True
    assert res["levels"]["steps"][0]["target_reached"] is True
    assert lufs_of(out) == pytest.approx(-16, abs=0.5)
    assert res["levels"]["output"]["lufs"] == pytest.approx(lufs_of(out), abs=0.05)
    assert dbtp_of(out) <= -1.0 + 0.05
    # the human line says what was reached, as the JSON does
    r = run("process", str(src), str(tmp_path / "out2.wav"), "-p", str(p))
    assert r.exit_code == 0, r.output
    out_levels = res["levels"]["output"]
    reached = f", {out_levels['lufs']:.1f} LUFS, {out_levels['true_peak_dbtp']:.2f} dBTP)"
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("ok")][0].endswith(reached)


@pytest.mark.parametrize(
    ("name", "x", "why"),
    [
        ("short", 0.3 * np.ones((1, 9600), np.float32), "too short: 0.200 s < 0.4 s"),
        ("silence", np.zeros((1, 48000), np.float32), "silence: nothing above the -70 LUFS"),
    ],
)
def test_undefined_loudness_is_a_warning(tmp_path: Path, name: str, x: np.ndarray, why) -> None:
    # issue 16: files under 0.4 s and digital silence came out unnormalized, "ok", notes []
    p = preset(tmp_path, "l", "  - {type: loudness, target_lufs: -16}\n")
    src = write_audio(tmp_path / f"{name}.wav", x, 48000, "PCM_16")
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(p), "--json")
    assert r.exit_code == 0, r.output
    res = json_lines(r.stdout)[0]
    assert res["status"] == "ok"
    assert len(res["warnings"]) == 1 and why in res["warnings"][0]
    assert "left unnormalized" in res["warnings"][0]
    assert res["levels"]["steps"][0]["undefined"].startswith(why.split(":")[0])
    assert res["levels"]["steps"][0]["gain_db"] == 0.0
    y, _ = sf.read(str(tmp_path / "o" / f"{name}.wav"), dtype="float32", always_2d=True)
    x_in, _ = sf.read(str(src), dtype="float32", always_2d=True)
    assert np.allclose(y, x_in, atol=3 / 32768)  # unity gain (16-bit TPDF dither aside)
    r = run("process", str(src), str(tmp_path / "s"), "-p", str(p), "--strict")
    assert r.exit_code == 1 and why in r.stderr
    assert not (tmp_path / "s" / f"{name}.wav").exists()


def test_silent_normalize_is_a_warning(tmp_path: Path) -> None:
    p = preset(tmp_path, "n", "  - {type: normalize, peak_db: -1}\n")
    src = write_audio(tmp_path / "z.wav", np.zeros((2, 4800), np.float32), 48000, "PCM_16")
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(p), "--json")
    res = json_lines(r.stdout)[0]
    assert r.exit_code == 0 and res["status"] == "ok"
    assert res["warnings"] == ["step 0 (normalize): digital silence (peak 0); left unnormalized"]


def test_clipped_output_is_a_warning_and_strict_fails(tmp_path: Path) -> None:
    p = preset(tmp_path, "loud", "  - {type: gain, gain_db: 12}\n")
    x = np.array([[0.1, 0.5, -0.6, 0.9, -0.2]], dtype=np.float32)
    src = write_audio(tmp_path / "x.wav", x, 8000, "PCM_16")
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(p), "--json")
    res = json_lines(r.stdout)[0]
    assert r.exit_code == 0 and res["status"] == "ok" and res["clipped"] == 3
    assert res["warnings"] == ["clipped 3 samples at full scale"]
    assert f"warning: {src}: clipped 3 samples" in r.stderr
    assert "1 with warnings" in r.stderr
    r = run("process", str(src), str(tmp_path / "s"), "-p", str(p), "--strict")
    assert r.exit_code == 1 and "--strict: clipped 3 samples" in r.stderr
    assert not (tmp_path / "s" / "x.wav").exists()


def test_output_over_a_limiter_ceiling_is_a_warning(tmp_path: Path) -> None:
    # a gain after the limiter pushes the output over the ceiling the chain promised
    p = preset(
        tmp_path,
        "over",
        "  - {type: limiter, ceiling_db: -1.0, true_peak: true}\n  - {type: gain, gain_db: 0.5}\n",
    )
    src = write_audio(tmp_path / "x.wav", program(1.0, spike=1.0) * 4, 48000, "FLOAT")
    out = tmp_path / "o.wav"
    r = run("process", str(src), str(out), "-p", str(p), "--json")
    res = json_lines(r.stdout)[0]
    assert r.exit_code == 0 and res["status"] == "ok", r.output
    tp = dbtp_of(out)
    assert tp > -1.0  # the independent reading agrees that the ceiling is exceeded
    assert len(res["warnings"]) == 1
    assert "exceeds the step 0 (limiter)'s ceiling_db -1 dBTP" in res["warnings"][0]
    assert f"{tp:+.2f} dBTP" in res["warnings"][0]

    # the limiter alone keeps its ceiling: no warning
    p2 = preset(tmp_path, "lim", "  - {type: limiter, ceiling_db: -1.0, true_peak: true}\n")
    r = run("process", str(src), str(tmp_path / "ok.wav"), "-p", str(p2), "--json", "--strict")
    assert r.exit_code == 0, r.output
    assert json_lines(r.stdout)[0]["warnings"] == []
    assert dbtp_of(tmp_path / "ok.wav") <= -1.0 + 0.05


def test_input_and_output_formats_are_reported_separately(tmp_path: Path) -> None:
    # issue 16: sample_rate/channels were the input's and subtype the output's, unnamed
    p = tmp_path / "conv.yaml"
    p.write_text(
        "version: 1\noutput: {subtype: PCM_24}\nchain:\n"
        "  - {type: resample, rate_hz: 48000}\n  - {type: remix, to: mono}\n"
    )
    src = write_audio(tmp_path / "x.wav", program(0.5, 44100), 44100, "PCM_16")
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(p), "--json")
    assert r.exit_code == 0, r.output
    res = json_lines(r.stdout)[0]
    info = sf.info(str(tmp_path / "o" / "x.wav"))
    assert (res["input_sample_rate"], res["input_channels"], res["input_subtype"]) == (
        44100,
        2,
        "PCM_16",
    )
    assert (
        (res["output_sample_rate"], res["output_channels"], res["output_subtype"])
        == (
            info.samplerate,
            info.channels,
            info.subtype,
        )
        == (48000, 1, "PCM_24")
    )
    assert "in 44100 Hz 2 ch PCM_16, out 48000 Hz 1 ch PCM_24" in r.stderr


def test_progress_always_without_a_terminal_prints_lines(tmp_path: Path) -> None:
    # issue 16: --progress always printed nothing when stderr was not a terminal (CI logs)
    p = preset(tmp_path, "g", "  - {type: gain, gain_db: -1}\n")
    for k in range(3):
        write_audio(tmp_path / "in" / f"{k}.wav", program(0.5), 48000, "PCM_16")
    r = subprocess.run(
        [sys.executable, "-m", "fxcli", "process", str(tmp_path / "in"), str(tmp_path / "o")]
        + ["-p", str(p), "--progress", "always", "--jobs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("progress: ")]
    for k in (1, 2, 3):
        assert any(line.startswith(f"progress: {k}/3 files") for line in lines), r.stderr
    assert any("100 %" in line for line in lines)
    # never without being asked: auto (the default) on a pipe prints no progress
    r = subprocess.run(
        [sys.executable, "-m", "fxcli", "process", str(tmp_path / "in"), str(tmp_path / "o2")]
        + ["-p", str(p)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "progress:" not in r.stderr


def test_line_progress_steps_and_seconds() -> None:
    lines: list[str] = []
    now = [0.0]
    prog = LineProgress(
        lines.append, 2, 1000, step_percent=10, every_seconds=5, clock=lambda: now[0]
    )
    for _ in range(9):
        prog.advance_frames(11)  # 99 frames: 9 %, no line yet
    assert lines == []
    prog.advance_frames(1)  # 10 %
    assert lines == ["progress: 0/2 files, 10 %, about 0 s left (0.0 s)"]
    prog.advance_frames(250)  # 35 %: one line for the jump, not one per step
    assert len(lines) == 2 and ", 35 %" in lines[-1]
    now[0] = 6.0
    prog.advance_frames(1)  # no step crossed, but 6 s since the last line
    assert len(lines) == 3 and "(6.0 s)" in lines[-1]
    prog.file_done()
    assert lines[-1].startswith("progress: 1/2 files, 35 %")
