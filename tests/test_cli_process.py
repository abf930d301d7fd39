"""`fxcli process` through Typer's runner and through real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from fxcli.cli.app import app
from fxcli.io.audio import TEMP_MARK
from tests.conftest import ROOT, SIMPLE_PRESET, communicate_rest, noise, write_audio

runner = CliRunner()


def run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if TEMP_MARK in p.name]


def fxcli_subprocess(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "fxcli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kw,
    )


def test_directory_tree_is_mirrored_and_formats_kept(
    tiny_tree: Path, tmp_path: Path, simple_preset: Path
) -> None:
    out = tmp_path / "out"
    r = run("process", str(tiny_tree), str(out), "--preset", str(simple_preset), "--json")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert {x["status"] for x in lines} == {"ok"} and len(lines) == 3
    for rel in ["a.wav", "sub/b.flac", "sub/deeper/c.wav"]:
        i, o = sf.info(str(tiny_tree / rel)), sf.info(str(out / rel))
        assert (o.samplerate, o.channels, o.format, o.subtype) == (
            i.samplerate,
            i.channels,
            i.format,
            i.subtype,
        )
        assert o.frames == i.frames
    assert not (out / "sub" / "readme.txt").exists()
    assert "1 non-audio files ignored" in r.stderr
    assert leftovers(out) == []


def test_output_equals_library_processing(tmp_path: Path, simple_preset: Path) -> None:
    """The CLI's float output equals the chain run on the whole file in memory."""
    import torch

    from fxcli.engine.runner import process_array
    from fxcli.preset.build import build_step
    from fxcli.preset.loader import load_preset

    x = 0.5 * noise(2, 50000, seed=9)
    src = write_audio(tmp_path / "x.wav", x, 48000, "FLOAT")
    out = tmp_path / "o"
    r = run("process", str(src), str(out), "-p", str(simple_preset), "--chunk-seconds", "0.1")
    assert r.exit_code == 0, r.output
    y, _ = sf.read(str(out / "x.wav"), dtype="float32", always_2d=True)
    steps = [build_step(c, 48000) for c in load_preset(str(simple_preset)).steps]
    ref = process_array(steps, torch.from_numpy(x)).numpy()
    assert np.array_equal(y.T, ref)


def test_single_file_to_named_output_and_format_flag(tmp_path: Path, simple_preset: Path) -> None:
    src = write_audio(tmp_path / "x.wav", 0.3 * noise(1, 1000), 44100, "PCM_16")
    r = run("process", str(src), str(tmp_path / "y.wav"), "-p", str(simple_preset))
    assert r.exit_code == 0, r.output
    assert sf.info(str(tmp_path / "y.wav")).subtype == "PCM_16"
    r = run(
        "process",
        str(src),
        str(tmp_path / "f"),
        "-p",
        str(simple_preset),
        "--format",
        "flac",
        "--subtype",
        "PCM_24",
    )
    assert r.exit_code == 0, r.output
    info = sf.info(str(tmp_path / "f" / "x.flac"))
    assert (info.format, info.subtype) == ("FLAC", "PCM_24")


def test_float_to_flac_is_refused_not_downgraded(tmp_path: Path, simple_preset: Path) -> None:
    src = write_audio(tmp_path / "x.wav", 0.3 * noise(1, 1000), 44100, "FLOAT")
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(simple_preset), "--format", "flac")
    assert r.exit_code == 1
    assert "cannot write subtype FLOAT to FLAC" in r.stderr and "--subtype" in r.stderr
    assert not (tmp_path / "o" / "x.flac").exists()


def test_clipping_is_counted_never_wrapped(tmp_path: Path) -> None:
    preset = tmp_path / "loud.yaml"
    preset.write_text("version: 1\nchain:\n  - {type: gain, gain_db: 12}\n")
    x = np.array([[0.1, 0.5, -0.6, 0.9, -0.2]], dtype=np.float32)
    src = write_audio(tmp_path / "x.wav", x, 8000, "PCM_16")
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(preset), "--json")
    assert r.exit_code == 0
    res = json.loads(r.stdout.splitlines()[0])
    assert res["clipped"] == 3
    assert "clipped 3 samples" in r.stderr
    y, _ = sf.read(str(tmp_path / "o" / "x.wav"), dtype="int16")
    assert list(y) == [13004, 32767, -32768, 32767, -26008] or np.all(np.sign(y) == np.sign(x[0]))


def test_overwrite_policy(tmp_path: Path, simple_preset: Path) -> None:
    src = write_audio(tmp_path / "in" / "x.wav", 0.3 * noise(1, 1000), 44100, "PCM_16")
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.wav").write_bytes(b"old")
    r = run("process", str(src), str(out), "-p", str(simple_preset))
    assert r.exit_code == 1 and "exists" in r.stderr and "--overwrite" in r.stderr
    assert (out / "x.wav").read_bytes() == b"old"
    r = run("process", str(src), str(out), "-p", str(simple_preset), "--skip-existing", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "skipped"
    assert (out / "x.wav").read_bytes() == b"old"
    r = run("process", str(src), str(out), "-p", str(simple_preset), "--overwrite")
    assert r.exit_code == 0 and sf.info(str(out / "x.wav")).frames == 1000
    r = run(
        "process", str(src), str(out), "-p", str(simple_preset), "--overwrite", "--skip-existing"
    )
    assert r.exit_code == 2


def test_injected_failure_mid_file_leaves_nothing(
    tmp_path: Path, simple_preset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fxcli.io import audio

    src = write_audio(tmp_path / "x.wav", 0.3 * noise(2, 20000), 44100, "PCM_24")
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.wav").write_bytes(b"previous")
    calls = {"n": 0}
    real_write = audio.AtomicWriter.write

    def failing_write(self, y):
        calls["n"] += 1
        if calls["n"] == 3:
            raise audio.AudioError(f"write failed for {self.dest}: injected disk error")
        real_write(self, y)

    monkeypatch.setattr(audio.AtomicWriter, "write", failing_write)
    r = run(
        "process",
        str(src),
        str(out),
        "-p",
        str(simple_preset),
        "--chunk-seconds",
        "0.05",
        "--overwrite",
    )
    assert r.exit_code == 1 and "injected disk error" in r.stderr
    assert (out / "x.wav").read_bytes() == b"previous"
    assert leftovers(out) == []


def test_corrupt_file_fails_alone(tmp_path: Path, simple_preset: Path) -> None:
    src = tmp_path / "in"
    write_audio(src / "good.wav", 0.3 * noise(1, 1000), 44100, "PCM_16")
    (src / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(50))
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(simple_preset), "--json")
    assert r.exit_code == 1
    res = {Path(x["input"]).name: x for x in map(json.loads, r.stdout.splitlines())}
    assert res["good.wav"]["status"] == "ok" and res["bad.wav"]["status"] == "failed"
    assert "cannot read audio" in res["bad.wav"]["error"]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o" / "bad.wav").exists()


def test_nyquist_error_names_step_and_file(tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text(
        "version: 1\nchain:\n  - {type: gain, gain_db: 0}\n  - {type: lowpass, cutoff_hz: 15000}\n"
    )
    src = tmp_path / "in"
    write_audio(src / "lo.wav", 0.3 * noise(1, 500), 22050, "PCM_16")
    write_audio(src / "hi.wav", 0.3 * noise(1, 500), 48000, "PCM_16")
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(preset))
    assert r.exit_code == 1
    line = next(x for x in r.stderr.splitlines() if "lo.wav" in x)
    assert "p.yaml:4: step 1 (lowpass)" in line and "Nyquist (11025 Hz)" in line
    assert (tmp_path / "o" / "hi.wav").exists() and not (tmp_path / "o" / "lo.wav").exists()


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "version: 1\nchain:\n  - {type: lowpass, cutoff_hz: -5}\n",
            "bad.yaml:3: step 0 (lowpass): key 'cutoff_hz': got -5; allowed: a number > 0 Hz",
        ),
        (
            "version: 1\nchain:\n  - {type: lowpass, cutoff_hz: 100, order: 200}\n",
            "key 'order': got 200; allowed: an integer >= 1 and <= 32",
        ),
        (
            "version: 1\nchain:\n  - {type: lowpas, cutoff_hz: 100}\n",
            "unknown type 'lowpas'; allowed:",
        ),
        ("version: 1\nchain:\n  - {type: gain}\n", "step 0 (gain): missing key 'gain_db'"),
        (
            "version: 1\nchain:\n  - {type: peaking, freq_hz: 1000, gain_db: 1, qq: 2}\n",
            "unknown key 'qq'; allowed keys: freq_hz, gain_db, q",
        ),
        (
            "version: 1\nchain:\n  - {type: fir, taps: 100, cutoff_hz: 1000, pass: highpass}\n",
            "a highpass FIR needs an odd number of taps",
        ),
        ("version: 1\nchain: [\n", "bad.yaml:3: invalid YAML"),
        ("chain: []\n", "key 'version'"),
        ("version: 1\nchain:\n  - {type: gain, gain_db: .nan}\n", "key 'gain_db': got nan"),
    ],
)
def test_bad_presets_exit_2_before_touching_files(tmp_path: Path, text: str, expected: str) -> None:
    preset = tmp_path / "bad.yaml"
    preset.write_text(text)
    src = write_audio(tmp_path / "x.wav", 0.3 * noise(1, 100), 44100, "PCM_16")
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(preset))
    assert r.exit_code == 2
    assert expected in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_usage_errors(tmp_path: Path, simple_preset: Path) -> None:
    r = run("process", str(tmp_path / "missing.wav"), str(tmp_path / "o"), "-p", str(simple_preset))
    assert r.exit_code == 2 and "no such file" in r.stderr
    r = run("process", str(tmp_path), str(tmp_path / "o"), "-p", "no-such-preset")
    assert r.exit_code == 2 and "not a bundled preset" in r.stderr
    r = run(
        "process",
        str(tmp_path),
        str(tmp_path / "o"),
        "-p",
        str(simple_preset),
        "--chunk-seconds",
        "0",
    )
    assert r.exit_code == 2


def test_device_cuda_without_gpu_is_a_usage_error(tmp_path: Path, simple_preset: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    src = write_audio(tmp_path / "x.wav", 0.3 * noise(1, 100), 44100, "PCM_16")
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(simple_preset), "--device", "cuda")
    assert r.exit_code == 2 and "CUDA is not available" in r.stderr
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(simple_preset), "--device", "tpu")
    assert r.exit_code == 2 and "allowed: auto, cpu, cuda, cuda:N" in r.stderr


def test_glob_and_input_list(
    tmp_path: Path, simple_preset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    for name in ["a/x.wav", "a/y.flac", "b/z.wav"]:
        write_audio(
            src / name,
            0.3 * noise(1, 300),
            44100,
            "PCM_16",
            "FLAC" if name.endswith("flac") else None,
        )
    r = run("process", f"{src}/**/*.wav", str(tmp_path / "g"), "-p", str(simple_preset))
    assert r.exit_code == 0, r.output
    assert sorted(
        p.relative_to(tmp_path / "g").as_posix() for p in (tmp_path / "g").rglob("*.wav")
    ) == ["a/x.wav", "b/z.wav"]
    listing = f"{src}/a/y.flac\n# comment\n\n../{tmp_path.name}/in/b/z.wav\nmissing.wav\n"
    monkeypatch.chdir(tmp_path)
    # issue 16: `-` is audio on stdin now; paths on stdin come through --input-list -
    r = run("process", "--input-list", "-", str(tmp_path / "l"), "-p", str(simple_preset),
            input=listing)  # fmt: skip
    assert r.exit_code == 1, r.output
    assert "error: missing.wav: no such file" in r.stderr
    outs = sorted(p for p in (tmp_path / "l").rglob("*") if p.is_file())
    assert all((tmp_path / "l") in p.parents for p in outs) and len(outs) == 2


def test_presets_commands() -> None:
    r = run("presets")
    assert r.exit_code == 0
    for name in ["mastering", "voice", "iir_chain", "fir_chain"]:
        assert name in r.stdout
    r = run("presets", "show", "iir_chain")
    assert r.exit_code == 0 and "chebyshev1" in r.stdout
    r = run(
        "presets",
        "validate",
        "mastering",
        "voice",
        "--sample-rate",
        "22050",
        "--sample-rate",
        "96000",
    )
    assert r.exit_code == 0, r.output


def test_shipped_schema_is_current() -> None:
    from fxcli.preset.schema import json_schema

    shipped = json.loads((ROOT / "fxcli" / "schema" / "preset.schema.json").read_text())
    assert shipped == json_schema()


def test_subprocess_version_help_and_exit_codes(tmp_path: Path, simple_preset: Path) -> None:
    t = time.perf_counter()
    r = fxcli_subprocess("--version")
    assert r.returncode == 0 and r.stdout.startswith("fxcli ")
    r = fxcli_subprocess("--help")
    assert r.returncode == 0 and "process" in r.stdout
    assert time.perf_counter() - t < 30  # sanity only; start-up is measured in bench/
    r = fxcli_subprocess("process", "nope.wav", str(tmp_path / "o"), "-p", str(simple_preset))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_subprocess_json_pipeline(tiny_tree: Path, tmp_path: Path, simple_preset: Path) -> None:
    r = fxcli_subprocess(
        "process",
        str(tiny_tree),
        str(tmp_path / "o"),
        "-p",
        str(simple_preset),
        "--json",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 3 and all(x["status"] == "ok" for x in rows)
    assert r.stderr == ""  # quiet: nothing on stderr, no progress bar in a pipe


def test_jobs_give_identical_outputs(tiny_tree: Path, tmp_path: Path, simple_preset: Path) -> None:
    """--jobs N changes scheduling only: same bytes, same per-file reports in input order."""
    reports = {}
    for jobs in ("1", "3"):
        out = tmp_path / f"o{jobs}"
        r = run(
            "process",
            str(tiny_tree),
            str(out),
            "-p",
            str(simple_preset),
            "--json",
            "--jobs",
            jobs,
            "--chunk-seconds",
            "0.01",
        )
        assert r.exit_code == 0, r.output
        reports[jobs] = [
            (x["input"], x["status"], x["frames"]) for x in map(json.loads, r.stdout.splitlines())
        ]
    assert reports["1"] == reports["3"]
    for p in (tmp_path / "o1").rglob("*.*"):
        q = tmp_path / "o3" / p.relative_to(tmp_path / "o1")
        if sf.info(str(p)).subtype == "FLOAT":  # libsndfile stamps the time into PEAK chunks
            a, b = sf.read(p), sf.read(q)
            np.testing.assert_array_equal(a[0], b[0])
        else:
            assert p.read_bytes() == q.read_bytes()
    r = run(
        "process", str(tiny_tree), str(tmp_path / "o0"), "-p", str(simple_preset), "--jobs", "0"
    )
    assert r.exit_code == 2 and "--jobs" in r.stderr


@pytest.mark.parametrize(
    "jobs,sig,code",
    [("1", signal.SIGINT, 130), ("2", signal.SIGINT, 130), ("2", signal.SIGTERM, 143)],
)
def test_signal_mid_batch_exit_code_and_no_partial(
    tmp_path: Path, jobs: str, sig: int, code: int
) -> None:
    src = tmp_path / "in"
    for i in range(6):
        write_audio(src / f"f{i}.wav", 0.3 * noise(2, 44100 * 4, seed=i), 44100, "PCM_16")
    preset = tmp_path / "slow.yaml"
    preset.write_text(SIMPLE_PRESET)
    out = tmp_path / "o"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fxcli",
            "process",
            str(src),
            str(out),
            "-p",
            str(preset),
            "--chunk-seconds",
            "0.01",
            "--json",
            "--jobs",
            jobs,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # one file finished
    assert json.loads(first)["status"] == "ok"
    proc.send_signal(sig)
    rest, err = communicate_rest(proc, timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    done = [json.loads(x)["output"] for x in [first, *rest.splitlines()] if x.strip()]
    assert sorted(str(p) for p in out.rglob("*.wav")) == sorted(done)
    for p in out.rglob("*.wav"):
        assert sf.info(str(p)).frames == 44100 * 4
    assert leftovers(out) == []


def test_non_finite_input_and_output_are_named(tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text(
        "version: 1\nchain:\n  - {type: lowpass, cutoff_hz: 1000}\n  - {type: gain, gain_db: 60}\n"
    )
    x = 0.1 * noise(2, 5000, seed=1)
    x[1, 4123] = np.nan
    src = tmp_path / "in"
    write_audio(src / "nan.wav", x, 44100, "FLOAT")
    big = np.full((1, 3000), 3e37, dtype=np.float32)  # finite input, 60 dB gain overflows float32
    write_audio(src / "big.wav", big, 44100, "FLOAT")
    r = run("process", str(src), str(tmp_path / "o"), "-p", str(preset), "--chunk-seconds", "0.02")
    assert r.exit_code == 1
    lines = {ln.split(":")[1].strip(): ln for ln in r.stderr.splitlines() if ln.startswith("error")}
    assert (
        "non-finite input sample (NaN or Inf) at frame 4123, channel 1"
        in lines[str(src / "nan.wav")]
    )
    assert "produced non-finite output" in lines[str(src / "big.wav")]
    assert not list((tmp_path / "o").rglob("*.wav"))


def test_nonfinite_zero_replaces_and_reports_the_count(tmp_path: Path) -> None:
    """--nonfinite zero: NaN/Inf input samples become 0, the count is reported, and the
    rest of the signal is processed exactly as if those samples had been 0."""
    x = 0.1 * noise(2, 5000, seed=1)
    x[1, 4123] = np.nan
    x[0, 10] = np.inf
    x[0, 11] = -np.inf
    src = write_audio(tmp_path / "in" / "nan.wav", x, 44100, "FLOAT")
    clean = x.copy()
    clean[~np.isfinite(clean)] = 0
    ref = write_audio(tmp_path / "ref" / "nan.wav", clean, 44100, "FLOAT")
    preset = tmp_path / "p.yaml"
    preset.write_text("version: 1\nchain:\n  - {type: lowpass, cutoff_hz: 1000}\n")
    r = run(
        "process", str(src), str(tmp_path / "o"), "-p", str(preset), "--nonfinite", "zero", "--json"
    )
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout.splitlines()[0])
    assert rec["nonfinite_replaced"] == 3
    assert "replaced 3 non-finite input samples with 0" in rec["notes"]
    r2 = run("process", str(ref), str(tmp_path / "o2"), "-p", str(preset), "-q")
    assert r2.exit_code == 0
    a, _ = sf.read(tmp_path / "o" / "nan.wav")
    b, _ = sf.read(tmp_path / "o2" / "nan.wav")
    np.testing.assert_array_equal(a, b)
    r3 = run("process", str(src), str(tmp_path / "o3"), "-p", str(preset), "--nonfinite", "maybe")
    assert r3.exit_code == 2


def test_format_and_subtype_choices_come_from_the_vocabulary(
    tmp_path: Path, simple_preset: Path
) -> None:
    """--format and --subtype offer what the writers and presets accept, no more, no less."""
    from fxcli.cli.options import Fmt, Subtype
    from fxcli.io.formats import FORMAT_EXTENSIONS
    from fxcli.preset.spec import OUTPUT_SUBTYPES

    assert [f.value for f in Fmt] == ["same", *FORMAT_EXTENSIONS]
    assert [s.value for s in Subtype] == list(OUTPUT_SUBTYPES)
    src = write_audio(tmp_path / "a.wav", 0.3 * noise(1, 4000, 1), 8000, "PCM_16")
    out = tmp_path / "o.wav"
    r = run("process", str(src), str(out), "-p", str(simple_preset), "--subtype", "PCM_U8")
    assert r.exit_code == 0, r.output
    assert sf.info(str(out)).subtype == "PCM_U8"


def test_dry_run_plans_every_file_and_writes_nothing(tmp_path: Path) -> None:
    """--dry-run / -n: every check a run makes before reading audio (output names and
    policy, headers, the chain designed for each file's rate, containers, encoder
    limits), one line per file, nothing written; exit 1 when a file would fail."""
    src = tmp_path / "in"
    write_audio(src / "a.wav", 0.1 * noise(2, 4800), 48000, "PCM_24")
    write_audio(src / "low.wav", 0.1 * noise(1, 1600), 16000, "PCM_16")
    (src / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    preset = tmp_path / "lp.yaml"  # a 10 kHz lowpass cannot be designed at 16 kHz
    preset.write_text("version: 1\nchain:\n  - {type: lowpass, cutoff_hz: 10000}\n")
    out = tmp_path / "out"
    r = fxcli_subprocess("process", str(src), str(out), "-p", str(preset), "--dry-run")
    assert r.returncode == 1, r.stderr
    assert not out.exists()
    lines = r.stderr.splitlines()
    plan = [ln for ln in lines if ln.startswith("plan")]
    assert plan == [
        f"plan    {src / 'a.wav'} -> {out / 'a.wav'} "
        "(0.10 s; in 48000 Hz 2 ch PCM_24, out 48000 Hz 2 ch PCM_24)"
    ]
    errors = {ln.split(": ")[1]: ln for ln in lines if ln.startswith("error")}
    assert "10000" in errors[str(src / "low.wav")] and "Nyquist" in errors[str(src / "low.wav")]
    assert str(src / "broken.wav") in errors
    assert lines[-1].startswith("1 planned (dry run: nothing written), 2 failed")
    # -n with --json: one record per file, status planned; an existing output is refused
    # as the real run would refuse it, and --skip-existing skips it
    (out).mkdir()
    (out / "a.flac").write_bytes(b"x")
    r = fxcli_subprocess(
        "process", str(src / "a.wav"), str(out / "a.flac"), "-p", "voice", "-n", "--json"
    )
    assert r.returncode == 1 and json.loads(r.stdout)["status"] == "failed"
    assert "use --overwrite or --skip-existing" in json.loads(r.stdout)["error"]
    r = fxcli_subprocess(
        "process", str(src / "a.wav"), str(out / "b.mp3"), "-p", "dataset", "-n", "--json"
    )
    rec = json.loads(r.stdout)
    assert r.returncode == 0 and rec["status"] == "planned", r.stderr
    assert (rec["output_sample_rate"], rec["output_channels"]) == (16000, 1)
    assert rec["output_subtype"] == "MPEG_LAYER_III"
    assert sorted(p.name for p in out.iterdir()) == ["a.flac"]
