"""issue 16: quick conversions without a YAML file, as SoX's ``-r -c -b``.

``--rate``, ``--channels`` and ``--bits`` apply after the preset's chain, ``-p none``
is a plain conversion; they stay on the torch-free CPU path. Outputs are checked
with soundfile, soxr (the resampler, called directly) and ffprobe where installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from typer.testing import CliRunner

from fxcli.cli.app import app
from fxcli.steps.edit import channels_matrix
from tests.conftest import write_audio
from tests.test_torch_free import _cli, _loaded


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def tone(channels: int, frames: int, fs: int) -> np.ndarray:
    """Band-limited test signal: a different sine per channel, well below any Nyquist."""
    t = np.arange(frames) / fs
    return np.stack(
        [0.2 * np.sin(2 * np.pi * (300 + 170 * c) * t) for c in range(channels)]
    ).astype(np.float32)


def test_plain_conversion_rate_channels_bits(tmp_path: Path) -> None:
    # issue 16: sox in.wav -r 16000 -c 1 -b 16 out.wav had no fxcli equivalent without a YAML
    x = tone(2, 44100, 44100)
    src = write_audio(tmp_path / "in.wav", x, 44100, "PCM_24")
    out = tmp_path / "out.wav"
    r = run("process", str(src), str(out), "-p", "none", "--rate", "16000", "-c", "1", "-b", "16")
    assert r.exit_code == 0, r.output
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    y, _ = sf.read(str(out), dtype="float64")
    x_in, _ = sf.read(str(src), dtype="float64")
    want = soxr.resample(x_in.mean(axis=1), 44100, 16000, quality="HQ")
    assert len(y) == len(want)
    assert np.max(np.abs(y - want)) < 4 / 32768  # 16-bit rounding and TPDF dither
    if shutil.which("ffprobe"):
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        stream = json.loads(probe.stdout)["streams"][0]
        assert (stream["sample_rate"], stream["channels"], stream["codec_name"]) == (
            "16000",
            1,
            "pcm_s16le",
        )


@pytest.mark.parametrize(("c_in", "c_out"), [(6, 2), (2, 1), (1, 3), (3, 5), (4, 4)])
def test_channel_rule_is_soxs(tmp_path: Path, c_in: int, c_out: int) -> None:
    """Fewer channels: output k is the mean of inputs k, k+N, ...; more: input k mod C."""
    x = tone(c_in, 4800, 48000)
    src = write_audio(tmp_path / "in.wav", x, 48000, "FLOAT")
    out = tmp_path / "out.wav"
    r = run("process", str(src), str(out), "-p", "none", "--channels", str(c_out))
    assert r.exit_code == 0, r.output
    y, _ = sf.read(str(out), dtype="float64", always_2d=True)
    x64 = x.astype(np.float64)
    for k in range(c_out):
        if c_out < c_in:
            want = x64[[j for j in range(c_in) if j % c_out == k]].mean(axis=0)
        else:
            want = x64[k % c_in]
        np.testing.assert_allclose(y[:, k], want, atol=1e-7)
    assert np.asarray(channels_matrix(c_out, c_in)).shape == (c_out, c_in)


def test_conversions_apply_after_the_preset(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nchain:\n  - {type: gain, gain_db: -6}\n  - {type: remix, to: mono}\n")
    src = write_audio(tmp_path / "in.wav", tone(2, 22050, 44100), 44100, "PCM_24")
    out = tmp_path / "out.wav"
    r = run("process", str(src), str(out), "-p", str(p), "-r", "48000", "-c", "2", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.splitlines()[0])
    assert (res["output_sample_rate"], res["output_channels"]) == (48000, 2)
    y, fs = sf.read(str(out), dtype="float64")
    assert fs == 48000 and y.shape[1] == 2
    np.testing.assert_array_equal(y[:, 0], y[:, 1])  # mono from the preset, duplicated after


def test_eight_bits_follow_the_container(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "in" / "x.wav", tone(1, 4800, 48000), 48000, "PCM_16")
    r = run("process", str(src), str(tmp_path / "w"), "-p", "none", "--bits", "8")
    assert r.exit_code == 0, r.output
    assert sf.info(str(tmp_path / "w" / "x.wav")).subtype == "PCM_U8"
    r = run("process", str(src), str(tmp_path / "f"), "-p", "none", "-b", "8", "--format", "flac")
    assert r.exit_code == 0, r.output
    assert sf.info(str(tmp_path / "f" / "x.flac")).subtype == "PCM_S8"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "22"], "--rate 22: allowed: an integer >= 1000 and <= 768000 Hz"),
        (["--channels", "0"], "--channels 0: allowed: an integer >= 1 and <= 64"),
        (["--channels", "65"], "--channels 65: allowed"),
        (["--bits", "16", "--subtype", "PCM_24"], "--bits and --subtype exclude each other"),
    ],
)
def test_bad_conversions_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    src = write_audio(tmp_path / "x.wav", tone(1, 480, 48000), 48000, "PCM_16")
    r = run("process", str(src), str(tmp_path / "o.wav"), "-p", "none", *args)
    assert r.exit_code == 2
    assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o.wav").exists()


def test_conversions_stay_torch_free(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "x.wav", tone(2, 44100, 44100), 44100, "PCM_16")
    out = tmp_path / "o.wav"
    r = _cli("process", str(src), str(out), "-p", "none", "-r", "22050", "-c", "1", "-b", "24")
    assert r.returncode == 0, r.stderr
    assert _loaded(r) == "-"
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_24")
