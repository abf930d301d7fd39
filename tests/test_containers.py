"""Containers, codecs and lossy quality of outputs (issue 16).

Issue 16: ``process take.flac take.wav`` wrote FLAC bytes into take.wav, mp3/ogg/aiff
names got WAV bytes, ``--format flac`` into ``c2.wav`` wrote FLAC, ``out.m4a``
became a folder, ``Wave.save("x.mp3")`` wrote WAV; a 320 kbps MP3 came back at
83 kbps; the bundled ``dataset`` preset failed on mp3/ogg/opus inputs and
``--subtype`` refused the values its error offered; ``--format wav`` over
speech.mp3 + speech.wav refused the whole batch; a lossy re-encode pushed the
true peak over the limiter's ceiling and the report said ``ok``.

Every output is checked by independent readers: soundfile and, where installed,
ffprobe (container, codec, bitrate).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from fxcli.cli.app import app
from fxcli.io import containers
from tests.conftest import ROOT

runner = CliRunner()
HAVE_FFPROBE = shutil.which("ffprobe") is not None
HAVE_FFMPEG = shutil.which("ffmpeg") is not None
needs_ffprobe = pytest.mark.skipif(not HAVE_FFPROBE, reason="ffprobe is not installed")
SR = 44100


@pytest.fixture(autouse=True)
def _torch_engine_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs take the torch engine: this pytest process imported torch (the
    conftest) and, in this checkout, a CLI run inside it that switches to the
    torch-free step classes fails with ``to() received ... HostDevice`` (on main too:
    tests/test_cli_process.py). The torch-free path runs in the subprocess tests."""
    monkeypatch.setenv("FXCLI_CPU_ENGINE", "torch")


def run(*args: str):
    return runner.invoke(app, list(args))


def fxcli_subprocess(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "fxcli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def probe(path: Path) -> dict[str, str]:
    """ffprobe's container, codec, sample rate and bitrates of a file."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=format_name,bit_rate:stream=codec_name,sample_rate,bit_rate",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(out)
    stream = data["streams"][0]
    return {
        "format": data["format"]["format_name"],
        "codec": stream["codec_name"],
        "rate": stream.get("sample_rate", ""),
        "stream_kbps": stream.get("bit_rate", ""),
        "kbps": str(int(data["format"].get("bit_rate", 0)) / 1000),
    }


def signal_(seconds: float = 0.6, sr: int = SR, channels: int = 2) -> np.ndarray:
    """(frames, channels) float64: two tones plus a little noise, peak about 0.6."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(1)
    cols = [0.35 * np.sin(2 * np.pi * (440 + 110 * c) * t) for c in range(channels)]
    return np.stack(cols, 1) + 0.03 * rng.standard_normal((len(t), channels))


def kbps_of(path: Path) -> float:
    """A file's average bitrate from its size and duration (kbps)."""
    info = sf.info(str(path))
    return path.stat().st_size * 8 / info.duration / 1000


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of every input format: WAV 16/24/float, FLAC, AIFF, OGG Vorbis, Opus
    and MP3 (0.6 s stereo; Opus at 48 kHz, the others at 44.1 kHz)."""
    d = tmp_path_factory.mktemp("inputs")
    x = signal_()
    sf.write(d / "w16.wav", x, SR, subtype="PCM_16")
    sf.write(d / "w24.wav", x, SR, subtype="PCM_24")
    sf.write(d / "wfloat.wav", x, SR, subtype="FLOAT")
    sf.write(d / "take.flac", x, SR, subtype="PCM_24")
    sf.write(d / "take.aiff", x, SR, subtype="PCM_16")
    sf.write(d / "vorbis.ogg", x, SR, format="OGG", subtype="VORBIS")
    sf.write(d / "speech.opus", signal_(sr=48000), 48000, format="OGG", subtype="OPUS")
    # a 320 kbps MP3, the bitrate of the report
    sf.write(
        d / "song.mp3",
        x,
        SR,
        format="MP3",
        subtype="MPEG_LAYER_III",
        compression_level=0.0,
        bitrate_mode="CONSTANT",
    )
    return d


# ----------------------------------------------------------------- the name decides

#: output extension -> (soundfile format, subtype, ffprobe format_name, codec) for a
#: 24-bit FLAC input through the voice preset
BY_NAME = {
    ".wav": ("WAV", "PCM_24", "wav", "pcm_s24le"),
    ".flac": ("FLAC", "PCM_24", "flac", "flac"),
    ".aiff": ("AIFF", "PCM_24", "aiff", "pcm_s24be"),
    ".aif": ("AIFF", "PCM_24", "aiff", "pcm_s24be"),
    ".ogg": ("OGG", "VORBIS", "ogg", "vorbis"),
    ".opus": ("OGG", "OPUS", "ogg", "opus"),
    ".mp3": ("MP3", "MPEG_LAYER_III", "mp3", "mp3"),
    ".w64": ("W64", "PCM_24", "w64", "pcm_s24le"),
    ".rf64": ("RF64", "PCM_24", "wav", "pcm_s24le"),
    ".caf": ("CAF", "PCM_24", "caf", "pcm_s24be"),
}


@pytest.mark.parametrize("ext", sorted(BY_NAME))
def test_output_name_decides_container_and_codec(inputs: Path, tmp_path: Path, ext: str) -> None:
    # issue 16: take.flac -> take.wav wrote FLAC bytes, .mp3/.ogg/.aiff got WAV bytes
    if ext not in containers.writable_containers():
        pytest.skip(f"the installed libsndfile cannot write {ext}")
    dest = tmp_path / f"take{ext}"
    r = run("process", str(inputs / "take.flac"), str(dest), "-p", "voice", "--quiet")
    assert r.exit_code == 0, r.output
    info = sf.info(str(dest))
    fmt, sub, ff_format, codec = BY_NAME[ext]
    assert (info.format, info.subtype) == (fmt, sub)
    if HAVE_FFPROBE:
        got = probe(dest)
        assert ff_format in got["format"].split(",")
        assert got["codec"] == codec
    if ext == ".opus":  # Opus takes 48 kHz, not 44.1: resampled as FFmpeg does
        assert info.samplerate == 48000
    assert not list(tmp_path.glob("*fxcli-tmp*"))


@needs_ffprobe
def test_name_decides_in_a_fresh_process(inputs: Path, tmp_path: Path) -> None:
    # issue 16, through the shell and the torch-free CPU path: take.flac -> x.mp3
    # wrote WAV bytes; now MP3 at the default high bitrate
    dest = tmp_path / "x.mp3"
    r = fxcli_subprocess("process", str(inputs / "take.flac"), str(dest), "-p", "voice")
    assert r.returncode == 0, r.stderr
    got = probe(dest)
    assert got["format"] == "mp3" and got["codec"] == "mp3"
    assert int(got["stream_kbps"]) == 320_000


def test_unwritable_output_name_is_a_usage_error_before_any_work(
    inputs: Path, tmp_path: Path
) -> None:
    # issue 16: out.m4a became a directory and the run said ok
    dest = tmp_path / "out.m4a"
    r = fxcli_subprocess("process", str(inputs / "take.flac"), str(dest), "-p", "voice")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and ".m4a" in lines[0] and ".mp3" in lines[0] and ".flac" in lines[0]
    assert "Traceback" not in r.stderr
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_format_disagreeing_with_output_name_is_a_usage_error(inputs: Path, tmp_path: Path) -> None:
    # issue 16: --format flac into c2.wav wrote FLAC bytes into a .wav name
    dest = tmp_path / "c2.wav"
    r = run("process", str(inputs / "take.flac"), str(dest), "-p", "voice", "--format", "flac")
    assert r.exit_code == 2
    assert "--format" in r.output and "c2.wav" in r.output
    assert not dest.exists()
    # agreeing: fine
    r = run("process", str(inputs / "w16.wav"), str(dest), "-p", "voice", "--format", "wav")
    assert r.exit_code == 0, r.output
    assert sf.info(str(dest)).format == "WAV"


def test_format_choices_cover_every_writable_container() -> None:
    from fxcli.cli.options import Fmt

    values = {f.value for f in Fmt}
    for name in ("wav", "flac", "aiff", "ogg", "opus", "mp3", "w64", "rf64", "caf"):
        assert name in values


def test_wave_save_follows_the_name(tmp_path: Path) -> None:
    # issue 16: Wave.save("x.mp3") wrote WAV bytes
    import torch

    from fxcli import Wave
    from fxcli.errors import AudioError

    w = Wave(torch.from_numpy(signal_().T.copy()), SR)
    w48 = Wave(torch.from_numpy(signal_(sr=48000).T.copy()), 48000)
    with pytest.raises(AudioError, match="48000 Hz; got 44100 Hz"):
        w.save(tmp_path / "x.opus")  # Opus takes 48 kHz, not 44.1
    for ext, (fmt, sub, _, _) in BY_NAME.items():
        if ext not in containers.writable_containers():
            continue
        p = (w48 if ext == ".opus" else w).save(tmp_path / f"x{ext}")
        info = sf.info(str(p))
        expected_sub = "FLOAT" if fmt in ("WAV", "W64", "RF64", "AIFF", "CAF") else sub
        assert (info.format, info.subtype) == (fmt, expected_sub), ext
    with pytest.raises(AudioError, match=r"\.m4a"):
        w.save(tmp_path / "x.m4a")
    assert not (tmp_path / "x.m4a").exists()
    if HAVE_FFPROBE:
        assert probe(tmp_path / "x.mp3")["codec"] == "mp3"


# ----------------------------------------------------------------- subtypes


@pytest.mark.parametrize(
    ("ext", "subtype", "codec"),
    [
        (".ogg", "VORBIS", "vorbis"),
        (".ogg", "OPUS", "opus"),
        (".mp3", "MPEG_LAYER_III", "mp3"),
        (".flac", "PCM_S8", "flac"),
        (".caf", "ALAC_16", "alac"),
        (".wav", "ULAW", "pcm_mulaw"),
    ],
)
def test_subtype_accepts_what_the_container_holds(
    inputs: Path, tmp_path: Path, ext: str, subtype: str, codec: str
) -> None:
    # issue 16: --subtype rejected the values its own error message offered
    dest = tmp_path / f"o{ext}"
    src = inputs / ("speech.opus" if subtype == "OPUS" else "take.flac")
    r = run("process", str(src), str(dest), "-p", "voice", "--subtype", subtype, "--quiet")
    assert r.exit_code == 0, r.output
    assert sf.info(str(dest)).subtype == subtype
    if HAVE_FFPROBE:
        assert probe(dest)["codec"] == codec


def test_subtype_error_lists_exactly_the_containers_subtypes(inputs: Path, tmp_path: Path) -> None:
    r = run(
        "process",
        str(inputs / "take.flac"),
        str(tmp_path / "o.mp3"),
        "-p",
        "voice",
        "--subtype",
        "PCM_24",
    )
    assert r.exit_code == 2
    line = r.output.strip().splitlines()[-1]
    listed = line.split("allowed for MP3: ")[1].split(", ")
    assert sorted(listed) == sorted(sf.available_subtypes("MP3"))
    assert not (tmp_path / "o.mp3").exists()


def test_dataset_preset_runs_on_lossy_inputs(inputs: Path, tmp_path: Path) -> None:
    # issue 16: "choose one with --subtype" for mp3/ogg/opus inputs of `dataset`
    r = run("process", str(inputs), str(tmp_path / "out"), "-p", "dataset", "--json")
    assert r.exit_code == 0, r.output
    results = [json.loads(ln) for ln in r.output.splitlines() if ln.startswith("{")]
    assert {res["status"] for res in results} == {"ok"}
    for res in results:
        out = Path(res["output"])
        info = sf.info(str(out))
        assert info.samplerate == 16000 and info.channels == 1
        if info.format in ("WAV", "FLAC", "AIFF"):
            assert info.subtype == "PCM_16"
        else:  # the container keeps its codec; the note says so
            assert any("PCM_16" in n for n in res["notes"]), res


def test_mixed_inputs_collide_with_a_way_out(tmp_path: Path) -> None:
    # issue 16: --format wav over speech.mp3 + speech.wav refused the whole batch
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "speech.wav", signal_(), SR, subtype="PCM_16")
    sf.write(src / "speech.mp3", signal_(), SR, format="MP3", subtype="MPEG_LAYER_III")
    r = run("process", str(src), str(tmp_path / "o1"), "-p", "dataset", "--format", "wav")
    assert r.exit_code == 2
    assert "--keep-extension" in r.output
    assert not (tmp_path / "o1").exists()
    out = tmp_path / "o2"
    r = run(
        "process",
        str(src),
        str(out),
        "-p",
        "dataset",
        "--format",
        "wav",
        "--keep-extension",
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["speech.mp3.wav", "speech.wav"]
    for p in out.iterdir():
        assert (sf.info(str(p)).format, sf.info(str(p)).subtype) == ("WAV", "PCM_16")


# ----------------------------------------------------------------- lossy quality


@needs_ffprobe
def test_mp3_bitrate_defaults_to_the_inputs(inputs: Path, tmp_path: Path) -> None:
    # issue 16: a 320 kbps MP3 came back at 83 kbps, silently
    assert kbps_of(inputs / "song.mp3") > 300
    dest = tmp_path / "o.mp3"
    r = run("process", str(inputs / "song.mp3"), str(dest), "-p", "voice", "--quiet")
    assert r.exit_code == 0, r.output
    assert int(probe(dest)["stream_kbps"]) >= 320_000


@needs_ffprobe
def test_lossless_to_lossy_default_is_high(inputs: Path, tmp_path: Path) -> None:
    # never silently a low bitrate: MP3 320 kbps, Vorbis and Opus near 256/192
    for ext, at_least in ((".mp3", 300.0), (".ogg", 200.0), (".opus", 150.0)):
        dest = tmp_path / f"o{ext}"
        r = run("process", str(inputs / "take.flac"), str(dest), "-p", "voice", "--quiet")
        assert r.exit_code == 0, r.output
        assert kbps_of(dest) >= at_least, (ext, kbps_of(dest))


@needs_ffprobe
@pytest.mark.parametrize(
    ("ext", "kbps", "lo", "hi"),
    [(".mp3", 128, 120, 150), (".opus", 64, 50, 90), (".ogg", 96, 96, 128)],
)
def test_bitrate_option(
    inputs: Path, tmp_path: Path, ext: str, kbps: int, lo: float, hi: float
) -> None:
    dest = tmp_path / f"o{ext}"
    src = inputs / "take.flac"
    r = run("process", str(src), str(dest), "-p", "voice", "--bitrate", str(kbps), "--quiet")
    assert r.exit_code == 0, r.output
    if ext == ".mp3":  # constant bitrate: the stream says it exactly
        assert int(probe(dest)["stream_kbps"]) == kbps * 1000
    if ext == ".ogg":  # Vorbis: the nominal rate of the quality chosen (headers weigh
        # much in 0.6 s)
        assert lo * 1000 <= int(probe(dest)["stream_kbps"]) <= hi * 1000
    else:
        assert lo <= kbps_of(dest) <= hi, kbps_of(dest)


@needs_ffprobe
def test_quality_orders_the_bitrate(inputs: Path, tmp_path: Path) -> None:
    for ext in (".mp3", ".ogg", ".opus"):
        sizes = []
        for q in ("0.1", "0.9"):
            dest = tmp_path / f"q{q}{ext}"
            r = run("process", str(inputs / "take.flac"), str(dest), "-p", "voice", "--quality", q)
            assert r.exit_code == 0, r.output
            sizes.append(kbps_of(dest))
        assert sizes[0] * 1.5 < sizes[1], (ext, sizes)


@needs_ffprobe
@pytest.mark.parametrize("mode", ["constant", "variable", "average"])
def test_bitrate_mode_for_mp3(inputs: Path, tmp_path: Path, mode: str) -> None:
    dest = tmp_path / "o.mp3"
    r = run(
        "process",
        str(inputs / "take.flac"),
        str(dest),
        "-p",
        "voice",
        "--bitrate",
        "192",
        "--bitrate-mode",
        mode,
    )
    assert r.exit_code == 0, r.output
    assert 90 < kbps_of(dest) < 300


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--quality", "1.5"], "--quality"),
        (["--quality", "nan"], "--quality"),
        (["--bitrate", "0"], "--bitrate"),
        (["--quality", "0.5", "--bitrate", "128"], "exclude"),
        (["--bitrate-mode", "variable"], "MP3"),
    ],
)
def test_lossy_option_errors(inputs: Path, tmp_path: Path, args: list[str], words: str) -> None:
    dest = tmp_path / "o.ogg"
    r = run("process", str(inputs / "take.flac"), str(dest), "-p", "voice", *args)
    assert r.exit_code == 2 and words in r.output, r.output
    assert not dest.exists()


def test_encoded_true_peak_over_the_ceiling_is_noted(inputs: Path, tmp_path: Path) -> None:
    # issue 16: after a re-encode the -1 dBTP ceiling read -0.75 dBTP and the report said ok
    preset = tmp_path / "hot.yaml"
    preset.write_text(
        "version: 1\nchain:\n  - {type: gain, gain_db: 20}\n"
        "  - {type: limiter, ceiling_db: -0.3, true_peak: true}\n"
    )
    # a square wave: the encoder's low-pass brings back its Gibbs overshoot
    src = tmp_path / "square.flac"
    t = np.arange(int(0.6 * SR)) / SR
    sq = 0.5 * np.sign(np.sin(2 * np.pi * 220 * t))
    sf.write(src, np.stack([sq, sq], 1), SR, subtype="PCM_24")
    dest = tmp_path / "hot.mp3"
    r = run("process", str(src), str(dest), "-p", str(preset), "--bitrate", "32", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(next(ln for ln in r.output.splitlines() if ln.startswith("{")))
    from fxcli.engine.encoded import true_peak_db

    peak = true_peak_db(dest)  # an independent decode of the written file
    assert peak > -0.3
    notes = [n for n in res["notes"] if "true peak" in n]
    assert len(notes) == 1 and f"{peak:.2f} dBTP" in notes[0] and "-0.30" in notes[0]
    # lossless: the limiter's promise holds, no note
    r = run("process", str(src), str(tmp_path / "hot.wav"), "-p", str(preset), "--json")
    res = json.loads(next(ln for ln in r.output.splitlines() if ln.startswith("{")))
    assert res["notes"] == []


@needs_ffprobe
@pytest.mark.parametrize(
    ("sr", "kbps", "legal"),
    [(44100, 32, 32), (44100, 190, 192), (44100, 256, 256), (22050, 100, 112), (16000, 320, 160)],
)
def test_mpeg_level_gives_the_legal_rate_at_or_above(
    tmp_path: Path, sr: int, kbps: int, legal: int
) -> None:
    # --bitrate through libsndfile's compression level: the encoder's constant rate is
    # the legal MPEG rate at or above the target (the highest the version allows)
    out = containers.OutputFormat("MP3", "MPEG_LAYER_III", ".mp3")
    enc = containers.lossy_encoding(out, containers.LossyOptions(bitrate=kbps), sr, 1, None)
    dest = tmp_path / "o.mp3"
    sf.write(
        dest,
        signal_(sr=sr, channels=1),
        sr,
        format="MP3",
        subtype="MPEG_LAYER_III",
        compression_level=enc.compression_level,
        bitrate_mode=enc.bitrate_mode,
    )
    assert int(probe(dest)["stream_kbps"]) == legal * 1000


# ----------------------------------------------------------------- the matrix


def expected_subtype(in_info: sf._SoundFileInfo, container: str, ext: str) -> str:
    """What an input of this format becomes in ``container`` (module rules)."""
    codec = {".ogg": "VORBIS", ".opus": "OPUS", ".mp3": "MPEG_LAYER_III"}.get(ext)
    if codec is not None:
        return codec
    linear = {"PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_S8", "PCM_U8"}
    if in_info.subtype in linear and sf.check_format(container, in_info.subtype):
        return in_info.subtype
    return "PCM_24"  # decoded lossy inputs


@pytest.mark.parametrize("fmt", ["wav", "flac", "aiff", "ogg", "opus", "mp3", "w64", "rf64", "caf"])
def test_matrix_every_input_to_every_container(inputs: Path, tmp_path: Path, fmt: str) -> None:
    # issue 16: every input format x every writable output container x a preset with
    # effects (the bundled voice preset: filters, loudness, compressor, limiter)
    ext = {"aiff": ".aiff"}.get(fmt, "." + fmt)
    if ext not in containers.writable_containers():
        pytest.skip(f"the installed libsndfile cannot write {ext}")
    out = tmp_path / "out"
    r = run(
        "process",
        str(inputs),
        str(out),
        "-p",
        "voice",
        "--format",
        fmt,
        "--keep-extension",
        "--json",
    )
    assert r.exit_code == (1 if fmt == "flac" else 0), r.output
    results = [json.loads(ln) for ln in r.output.splitlines() if ln.startswith("{")]
    container = containers.EXTENSION_CONTAINERS[ext]
    assert len(results) == 8
    for res in results:
        src, dest = Path(res["input"]), Path(res["output"])
        if src.name == "wfloat.wav" and container == "FLAC":
            # FLAC holds no float: refused (naming what it holds), never downgraded
            assert res["status"] == "failed" and "--subtype" in res["error"], res
            assert "PCM_24" in res["error"] and not dest.exists()
            continue
        assert res["status"] == "ok", res
        assert dest.suffix == ext
        in_info, info = sf.info(str(src)), sf.info(str(dest))
        assert info.format == container
        assert info.subtype == expected_subtype(in_info, container, ext), (src.name, info)
        rate = 48000 if ext == ".opus" else in_info.samplerate
        assert info.samplerate == rate and info.channels == 2
        data, _ = sf.read(str(dest), dtype="float64")
        assert np.isfinite(data).all() and 0.05 < np.abs(data).max() <= 1.0
        if HAVE_FFPROBE:
            got = probe(dest)
            assert got["codec"] == BY_NAME[ext][3] or info.subtype not in ("PCM_24",), got
