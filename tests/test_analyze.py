"""`fxcli analyze`: JSON values against independent computations (numpy for peak, RMS,
DC and clipping; pyloudnorm for LUFS; a sine with a known true peak), streaming
(block size does not matter), error handling and exit codes like `process`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from fxcli.cli.app import app
from fxcli.measure.analyze import CHANNEL_KEYS, FILE_KEYS, analyze_file, clip_threshold
from tests.conftest import noise, write_audio

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["analyze", *args])


def json_lines(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines() if x.startswith("{")]


def db(v: float) -> float:
    return 20 * math.log10(v)


def programme(channels: int, seconds: float, fs: int, seed: int) -> np.ndarray:
    """Noise under a slow loudness envelope plus a tone, with a DC offset per channel."""
    n = int(seconds * fs)
    t = np.arange(n) / fs
    x = 0.3 * noise(channels, n, seed, np.float64) * (0.2 + 0.8 * np.sin(np.pi * t / seconds))
    x += 0.2 * np.sin(2 * np.pi * 220 * t)
    x += np.linspace(-0.01, 0.02, channels)[:, None]
    return x


def test_json_values_match_independent_computations(tmp_path: Path) -> None:
    fs = 44100
    x = programme(2, 3.0, fs, seed=1)
    x[0, 1000:1010] = 1.5  # clipped at +full scale when written as PCM_24
    x[1, 2000:2003] = -1.2  # and at -full scale
    path = write_audio(tmp_path / "prog.wav", x, fs, "PCM_24")
    r = run(str(path), "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    (res,) = json_lines(r.stdout)
    assert list(res) == list(FILE_KEYS)
    assert list(res["per_channel"][0]) == list(CHANNEL_KEYS)
    data, _ = sf.read(str(path), always_2d=True)  # what the file holds, float64
    assert res["status"] == "ok" and res["error"] is None
    assert (res["sample_rate"], res["channels"], res["frames"]) == (fs, 2, x.shape[1])
    assert res["subtype"] == "PCM_24" and res["format"] == "WAV"
    assert res["duration_s"] == pytest.approx(3.0, abs=1e-12)
    thr = 1 - 2.0**-23
    for c, ch in enumerate(res["per_channel"]):
        col = data[:, c]
        assert ch["channel"] == c
        assert ch["sample_peak_dbfs"] == pytest.approx(db(np.abs(col).max()), abs=1e-9)
        assert ch["rms_dbfs"] == pytest.approx(db(np.sqrt(np.mean(col**2))), abs=1e-6)
        assert ch["dc_offset"] == pytest.approx(np.mean(col), abs=1e-7)
        assert ch["clipped_samples"] == int(np.sum(np.abs(col) >= thr))
        assert ch["true_peak_dbtp"] >= ch["sample_peak_dbfs"]
        mono = pyloudnorm.Meter(fs, filter_class="DeMan").integrated_loudness(col)
        assert ch["integrated_lufs"] == pytest.approx(mono, abs=1e-6)
    assert [c["clipped_samples"] for c in res["per_channel"]] == [10, 3]
    assert res["clipped_samples"] == 13
    assert res["sample_peak_dbfs"] == pytest.approx(db(np.abs(data).max()), abs=1e-9)
    assert res["rms_dbfs"] == pytest.approx(db(np.sqrt(np.mean(data**2))), abs=1e-6)
    assert abs(res["integrated_lufs"] - pyloudnorm.Meter(fs).integrated_loudness(data)) < 0.1
    deman = pyloudnorm.Meter(fs, filter_class="DeMan").integrated_loudness(data)
    assert res["integrated_lufs"] == pytest.approx(deman, abs=1e-6)
    assert res["max_momentary_lufs"] >= res["integrated_lufs"]
    assert res["max_short_term_lufs"] is not None  # 3.0 s: exactly one 3 s window


def test_true_peak_of_quarter_rate_sine(tmp_path: Path) -> None:
    # A sine at fs/4 with 45 degree phase: samples at +-A/sqrt(2), the waveform peaks at A.
    # Sample peak -9.03 dBFS, true peak -6.02 dBTP (BS.1770 interpolator: within 0.2 dB).
    fs = 48000
    t = np.arange(fs) / fs
    x = 0.5 * np.sin(2 * np.pi * fs / 4 * t + np.pi / 4)
    path = write_audio(tmp_path / "q.wav", x[None, :], fs, "FLOAT")
    (res,) = json_lines(run(str(path), "--json").stdout)
    assert res["sample_peak_dbfs"] == pytest.approx(db(0.5 / math.sqrt(2)), abs=1e-5)
    assert abs(res["true_peak_dbtp"] - db(0.5)) < 0.2
    assert res["clipped_samples"] == 0


def test_loudness_range_and_float_clipping(tmp_path: Path) -> None:
    # EBU Tech 3342 case 1 (20 s at -20 dBFS then 20 s at -30 dBFS, 1 kHz): LRA 10 +- 1 LU.
    fs = 8000
    t = np.arange(20 * fs) / fs
    s = np.sin(2 * np.pi * 1000 * t)
    x = np.concatenate([10 ** (-20 / 20) * s, 10 ** (-30 / 20) * s])
    x[-5] = 1.0  # float files: |x| >= 1 counts as clipped
    x[-6] = -1.25
    path = write_audio(tmp_path / "lra.wav", x[None, :], fs, "FLOAT")
    (res,) = json_lines(run(str(path), "--json").stdout)
    assert abs(res["loudness_range_lu"] - 10.0) <= 1.0
    assert res["clipped_samples"] == 2
    assert res["max_short_term_lufs"] == pytest.approx(-20 - 3.01, abs=0.1)  # mono sine


def test_short_file_and_silence_give_nulls(tmp_path: Path) -> None:
    fs = 48000
    silent = write_audio(tmp_path / "silent.flac", np.zeros((2, fs)), fs, "PCM_16")
    short = write_audio(tmp_path / "short.wav", 0.5 * noise(1, fs // 5, 2), fs, "PCM_16")
    r = run(str(silent), str(short), "--json")
    assert r.exit_code == 0, r.output
    a, b = json_lines(r.stdout)
    assert "Infinity" not in r.stdout and "NaN" not in r.stdout
    assert a["integrated_lufs"] is None and a["sample_peak_dbfs"] is None
    assert a["rms_dbfs"] is None and a["loudness_range_lu"] == 0.0
    assert a["per_channel"][0]["dc_offset"] == 0.0
    assert b["integrated_lufs"] is None  # 200 ms: no complete 400 ms block
    assert b["sample_peak_dbfs"] is not None and b["max_momentary_lufs"] is None


def test_broken_file_one_line_error_others_continue(tmp_path: Path) -> None:
    good = write_audio(tmp_path / "good.wav", 0.3 * noise(2, 20000, 3), 44100)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    missing = tmp_path / "missing.wav"
    r = run(str(bad), str(good), str(missing), "--json")
    assert r.exit_code == 1
    res = json_lines(r.stdout)
    assert [x["status"] for x in res] == ["failed", "ok", "failed"]
    assert res[0]["input"] == str(bad) and res[0]["error"] and res[0]["per_channel"] == []
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {bad}: cannot read audio")
    assert errors[1] == f"error: {missing}: no such file"
    # human mode: the good file's report is printed, the error goes to stderr
    r = run(str(bad), str(good))
    assert r.exit_code == 1
    assert str(good) in r.stdout and "LUFS" in r.stdout and "dBTP" in r.stdout
    assert str(bad) not in r.stdout and f"error: {bad}" in r.stderr


def test_non_finite_sample_fails_the_file(tmp_path: Path) -> None:
    x = 0.1 * noise(2, 30000, 7, np.float64)
    x[1, 20000] = np.nan
    path = write_audio(tmp_path / "nan.wav", x, 48000, "FLOAT")
    r = run(str(path), "--json")
    assert r.exit_code == 1
    (res,) = json_lines(r.stdout)
    assert res["status"] == "failed"
    assert res["error"] == "non-finite input sample (NaN or Inf) at frame 20000, channel 1"
    assert r.stderr.strip() == f"error: {path}: {res['error']}"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    good = write_audio(tmp_path / "good.wav", 0.3 * noise(1, 8000, 4), 16000)
    r = run(str(good), "--device", "tpu")
    assert r.exit_code == 2 and "--device 'tpu'" in r.stderr
    assert run().exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run(str(empty))
    assert r.exit_code == 2 and "no audio files" in r.stderr


def test_folder_is_searched(tiny_tree: Path) -> None:
    r = run(str(tiny_tree), "--json")
    assert r.exit_code == 0, r.output
    res = json_lines(r.stdout)
    assert [Path(x["input"]).name for x in res] == ["a.wav", "b.flac", "c.wav"]
    assert [x["channels"] for x in res] == [2, 1, 8]


def test_glob_input(tiny_tree: Path) -> None:
    r = run(str(tiny_tree / "**" / "*.wav"), "--json")
    assert r.exit_code == 0, r.output
    res = json_lines(r.stdout)
    assert [Path(x["input"]).name for x in res] == ["a.wav", "c.wav"]
    r = run(str(tiny_tree / "*.mp3"), "--json")
    assert r.exit_code == 2 and "no files match this pattern" in r.stderr


def test_input_list(tiny_tree: Path, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    missing = tiny_tree / "gone.wav"
    listing.write_text(
        f"# levels of two files\n{tiny_tree / 'sub' / 'b.flac'}\n\n{missing}\n"
        f"{tiny_tree / 'a.wav'}\n"
    )
    r = run("--input-list", str(listing), "--json")
    assert r.exit_code == 1, r.output  # the missing file fails, the others are measured
    res = json_lines(r.stdout)
    assert [(Path(x["input"]).name, x["status"]) for x in res] == [
        ("b.flac", "ok"),
        ("gone.wav", "failed"),
        ("a.wav", "ok"),
    ]
    assert r.stderr.strip() == f"error: {missing}: no such file"
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    r = run("--input-list", str(empty))
    assert r.exit_code == 2 and "no audio files" in r.stderr


def test_paths_on_stdin(tiny_tree: Path) -> None:
    files = [tiny_tree / "sub" / "deeper" / "c.wav", tiny_tree / "a.wav"]
    stdin = "".join(f"{f}\n" for f in files)
    r = runner.invoke(app, ["analyze", "--input-list", "-", "--json"], input=stdin)
    assert r.exit_code == 0, r.output
    res = json_lines(r.stdout)
    assert [x["input"] for x in res] == [str(f) for f in files]
    assert [x["channels"] for x in res] == [8, 2]
    # stdin together with a file argument: the arguments first, then the listed paths
    r = runner.invoke(
        app,
        ["analyze", str(tiny_tree / "sub" / "b.flac"), "--input-list", "-", "--json"],
        input=stdin,
    )
    assert r.exit_code == 0, r.output
    assert [Path(x["input"]).name for x in json_lines(r.stdout)] == ["b.flac", "c.wav", "a.wav"]
    # NUL-separated (find -print0)
    r = runner.invoke(
        app, ["analyze", "--input-list", "-", "-0", "--json"], input="\0".join(map(str, files))
    )
    assert r.exit_code == 0, r.output
    assert [x["input"] for x in json_lines(r.stdout)] == [str(f) for f in files]


def test_audio_on_stdin(tiny_tree: Path) -> None:
    """issue 16 (session 7): ``-`` is audio on stdin for analyze as for process (it was
    a path list); the report names it ``-`` and measures what the file measures; text
    piped into ``-`` is one usage line pointing to --input-list."""
    src = tiny_tree / "a.wav"
    r = runner.invoke(app, ["analyze", "-", "--json"], input=src.read_bytes())
    assert r.exit_code == 0, r.output
    (got,) = json_lines(r.stdout)
    want = analyze_file(src, "cpu").to_json()
    assert got["input"] == "-"
    for k in ("integrated_lufs", "true_peak_dbtp", "channels", "frames"):
        assert got[k] == want[k], k
    r = runner.invoke(app, ["analyze", "-"], input=f"{src}\n")
    assert r.exit_code == 2
    assert "--input-list -" in r.stderr and "Traceback" not in r.output


def test_block_size_does_not_matter(tmp_path: Path) -> None:
    fs = 22050
    path = write_audio(tmp_path / "p.wav", programme(3, 4.0, fs, seed=5), fs, "PCM_16")
    whole = analyze_file(path, "cpu", block_frames=10**7).to_json()
    for block in (1000, 4097):
        part = analyze_file(path, "cpu", block_frames=block).to_json()
        for k in ("integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "rms_dbfs"):
            assert part[k] == pytest.approx(whole[k], abs=1e-9), (block, k)
        assert part["sample_peak_dbfs"] == whole["sample_peak_dbfs"]
        assert part["clipped_samples"] == whole["clipped_samples"]


def test_clip_thresholds() -> None:
    assert clip_threshold("PCM_16") == 32767 / 32768
    assert clip_threshold("PCM_24") == (2**23 - 1) / 2**23
    assert clip_threshold("FLOAT") == 1.0 and clip_threshold("VORBIS") == 1.0


@pytest.mark.cuda
def test_cuda_matches_cpu(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    fs = 48000
    path = write_audio(tmp_path / "p.wav", programme(2, 4.0, fs, seed=6), fs, "FLOAT")
    cpu = analyze_file(path, "cpu").to_json()
    gpu = analyze_file(path, "cuda").to_json()
    for k in ("integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "rms_dbfs"):
        assert gpu[k] == pytest.approx(cpu[k], abs=1e-6), k
    assert gpu["clipped_samples"] == cpu["clipped_samples"]


def test_cpu_analysis_runs_without_torch_and_equals_the_torch_path(tmp_path: Path) -> None:
    """``analyze --device cpu`` measures with numpy and the compiled kernels (torch is
    never imported: half the run time and memory of a one-file analysis) and gives the
    torch path's figures (the same kernels: equal bit for bit here)."""
    import json
    import subprocess
    import sys

    import torch

    from fxcli.measure.analyze import analyze_file

    fs = 48000
    path = write_audio(tmp_path / "p.wav", programme(2, 3.0, fs, seed=3), fs, "PCM_24")
    code = (
        "import sys\n"
        f"sys.argv = ['fxcli', 'analyze', {str(path)!r}, '--json', '--device', 'cpu']\n"
        "from fxcli.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.stderr.strip().endswith("False"), r.stderr[-500:]
    cpu = json.loads(r.stdout)
    with_torch = analyze_file(path, torch.device("cpu")).to_json()
    assert cpu == json.loads(json.dumps(with_torch))


def test_auto_is_the_torch_free_cpu_where_no_cuda_device_can_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--device auto`` asks torch about CUDA only where a GPU could be present
    (Linux: /dev/nvidia*, /dev/dxg under WSL2; never on macOS), so a CPU machine
    measures without loading torch by default too."""
    import subprocess
    import sys

    from fxcli.engine import device as D

    monkeypatch.setattr(sys, "platform", "darwin")
    assert D.cuda_may_exist() is False
    monkeypatch.setattr(sys, "platform", "win32")
    assert D.cuda_may_exist() is True
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(D.os.path, "exists", lambda p: p == "/dev/nvidiactl")
    assert D.cuda_may_exist() is True
    monkeypatch.setattr(D.os.path, "exists", lambda p: False)
    monkeypatch.setattr(D, "_listdir", lambda p: ["null", "tty"])
    assert D.cuda_may_exist() is False
    monkeypatch.undo()
    if D.cuda_may_exist():
        pytest.skip("this machine may have a CUDA device: auto asks torch")
    fs = 44100
    path = write_audio(tmp_path / "a.wav", programme(2, 1.0, fs, seed=1), fs, "PCM_16")
    code = (
        "import sys\n"
        f"sys.argv = ['fxcli', 'analyze', {str(path)!r}, '--json']\n"
        "from fxcli.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.stderr.strip().endswith("False"), r.stderr[-500:]
    assert '"status": "ok"' in r.stdout
