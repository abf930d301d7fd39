"""Issue 16: audio through pipes, safe in-place overwrite, odd names.

Every case runs ``python -m fxcli process`` as a real subprocess (stdin/stdout are
pipes, NULs come from printf, a shell pipeline feeds sox); outputs are read back
with soundfile (and sox/ffprobe where installed) and compared with the same preset
run on a file.
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

from tests.conftest import noise, write_audio

ROOT = Path(__file__).resolve().parent.parent
PRESET = "voice"
HAS_SOX = shutil.which("sox") is not None
HAS_FFPROBE = shutil.which("ffprobe") is not None


def fx(*args: str, stdin: bytes | None = None, cwd: Path | None = None):
    """``python -m fxcli ARGS`` with pipes for stdin/stdout/stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "fxcli", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=300,
        env=env,
        cwd=cwd,
    )


def samples(data: bytes | Path) -> tuple[np.ndarray, int, str]:
    """(frames x channels float64, rate, container) read by soundfile."""
    import io

    src = io.BytesIO(data) if isinstance(data, bytes) else os.fsencode(data)
    with sf.SoundFile(src) as f:
        return f.read(dtype="float64", always_2d=True), f.samplerate, f.format


def no_traceback(r: subprocess.CompletedProcess) -> str:
    err = r.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 16-bit stereo WAV, the same as FLAC, and the preset's outputs of both
    from a plain file run (the reference every pipe run must equal)."""
    d = tmp_path_factory.mktemp("media")
    x = 0.3 * noise(2, 24000, 7)
    wav = write_audio(d / "take.wav", x, 48000, "PCM_16")
    flac = write_audio(d / "take.flac", x, 48000, "PCM_16", "FLAC")
    r = fx("process", str(wav), str(flac), str(d / "ref"), "-p", PRESET)
    assert r.returncode == 0, r.stderr.decode()
    return {"wav": wav, "flac": flac, "ref_wav": d / "ref" / "take.wav",
            "ref_flac": d / "ref" / "take.flac"}  # fmt: skip


def test_wav_on_stdin_to_stdout_equals_the_file_run(media: dict[str, Path]) -> None:
    """issue 16: `-` as OUTPUT made a folder named `-` and `-` as INPUT read a path
    list; now WAV in on stdin -> WAV out on stdout, the JSON goes to stderr."""
    r = fx("process", "-", "-", "-p", PRESET, "--json", stdin=media["wav"].read_bytes())
    err = no_traceback(r)
    assert r.returncode == 0, err
    y, rate, container = samples(r.stdout)
    ref, ref_rate, _ = samples(media["ref_wav"])
    assert container == "WAV" and rate == ref_rate
    np.testing.assert_array_equal(y, ref)
    assert r.stdout == media["ref_wav"].read_bytes()  # the header holds the true sizes
    rec = json.loads(next(ln for ln in err.splitlines() if ln.startswith("{")))
    assert rec["input"] == "-" and rec["output"] == "-" and rec["status"] == "ok"
    assert not Path("-").exists()


def test_flac_on_stdin_keeps_its_container_on_stdout(media: dict[str, Path]) -> None:
    """issue 16: the container of stdin is detected from its bytes (fLaC) and kept
    on stdout when --format is not given; /dev/stdout works as OUTPUT too."""
    r = fx("process", "-", "/dev/stdout", "-p", PRESET, stdin=media["flac"].read_bytes())
    assert r.returncode == 0, no_traceback(r)
    y, _, container = samples(r.stdout)
    ref, _, _ = samples(media["ref_flac"])
    assert container == "FLAC"
    np.testing.assert_array_equal(y, ref)
    # a file input to stdout, converted by --format
    r = fx("process", str(media["flac"]), "-", "-p", PRESET, "--format", "wav")
    assert r.returncode == 0, no_traceback(r)
    y, _, container = samples(r.stdout)
    assert container == "WAV"
    np.testing.assert_array_equal(y, ref)


def test_ogg_on_stdin_is_detected(media: dict[str, Path], tmp_path: Path) -> None:
    """issue 16: OGG Vorbis on stdin is recognised (OggS) and processed like a file."""
    ogg = tmp_path / "t.ogg"
    data, rate, _ = samples(media["wav"])
    sf.write(str(ogg), data, rate, format="OGG", subtype="VORBIS")
    to_wav = ["--format", "wav", "--subtype", "PCM_16"]  # a lossy input names its subtype
    ref = fx("process", str(ogg), str(tmp_path / "ref.wav"), "-p", PRESET, *to_wav)
    assert ref.returncode == 0, no_traceback(ref)
    r = fx("process", "-", "-", "-p", PRESET, *to_wav, stdin=ogg.read_bytes())
    assert r.returncode == 0, no_traceback(r)
    y, _, container = samples(r.stdout)
    assert container == "WAV"
    np.testing.assert_array_equal(y, samples(tmp_path / "ref.wav")[0])


def test_raw_pcm_on_stdin(media: dict[str, Path], tmp_path: Path) -> None:
    """issue 16: raw PCM on stdin with --input-rate/--input-channels/--input-subtype
    equals the WAV it came from; without a container OUTPUT - needs --format."""
    data, rate, _ = samples(media["wav"])
    raw = np.round(data * 32768).astype("<i2").tobytes()
    spec = ["--input-rate", str(rate), "--input-channels", "2", "--input-subtype", "PCM_16"]
    r = fx("process", "-", "-", "-p", PRESET, "--format", "wav", *spec, stdin=raw)
    assert r.returncode == 0, no_traceback(r)
    np.testing.assert_array_equal(samples(r.stdout)[0], samples(media["ref_wav"])[0])
    r = fx("process", "-", "-", "-p", PRESET, *spec, stdin=raw)
    err = no_traceback(r)
    assert r.returncode == 2 and "--format" in err and len(err.strip().splitlines()) == 1, err
    r = fx("process", "-", "-", "-p", PRESET, "--input-rate", "48000", stdin=raw)
    err = no_traceback(r)
    assert r.returncode == 2 and "--input-channels" in err, err


def test_paths_on_stdin_point_to_input_list(media: dict[str, Path], tmp_path: Path) -> None:
    """issue 16: `find -print0 | fxcli process - ...` was a traceback (embedded null
    byte). Text or NUL-separated names piped into `-` are one usage line naming
    --input-list - (and --null); the list then works, NUL-separated with -0."""
    nul_names = subprocess.run(
        ["printf", r"%s\0", str(media["wav"]), str(media["flac"])], capture_output=True
    ).stdout
    r = fx("process", "-", str(tmp_path / "o"), "-p", PRESET, stdin=nul_names)
    err = no_traceback(r)
    assert r.returncode == 2 and "--input-list - --null" in err, err
    assert len(err.strip().splitlines()) == 1
    r = fx("process", "-", str(tmp_path / "o"), "-p", PRESET,
           stdin=f"{media['wav']}\n".encode())  # fmt: skip
    err = no_traceback(r)
    assert r.returncode == 2 and "--input-list -" in err, err
    r = fx("process", "--input-list", "-", "-0", str(tmp_path / "o"), "-p", PRESET, "--json",
           stdin=nul_names)  # fmt: skip
    assert r.returncode == 0, no_traceback(r)
    recs = [json.loads(ln) for ln in r.stdout.decode().splitlines()]
    assert [x["input"] for x in recs] == [str(media["wav"]), str(media["flac"])]
    for rec, ref in zip(recs, ("ref_wav", "ref_flac"), strict=True):
        np.testing.assert_array_equal(samples(Path(rec["output"]))[0], samples(media[ref])[0])
    r = fx("process", str(media["wav"]), str(tmp_path / "o3"), "-p", PRESET, "-0")
    err = no_traceback(r)
    assert r.returncode == 2 and "--input-list" in err, err
    # a NUL inside a line-separated list stays a usage line
    r = fx("process", "--input-list", "-", str(tmp_path / "o2"), "-p", PRESET, stdin=nul_names)
    err = no_traceback(r)
    assert r.returncode == 2 and "--null" in err, err


@pytest.mark.skipif(not HAS_SOX, reason="sox is not installed")
def test_shell_pipeline_through_sox(media: dict[str, Path], tmp_path: Path) -> None:
    """issue 16: `sox ... -t wav - | fxcli process - - -p voice --format wav | sox -t
    wav - out.flac`, as sox users chain tools; the result equals the file run."""
    out = tmp_path / "out.flac"
    cmd = (
        f'sox "{media["wav"]}" -t wav - | "{sys.executable}" -m fxcli process - - '
        f'-p {PRESET} --format wav | sox -t wav - "{out}"'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, env=env,
                       timeout=300)  # fmt: skip
    assert r.returncode == 0, no_traceback(r)
    y, _, container = samples(out)
    assert container == "FLAC"
    np.testing.assert_array_equal(y, samples(media["ref_wav"])[0])
    # the reader of stdout going away early is a quiet exit 141 (as after SIGPIPE)
    cmd = (
        f'"{sys.executable}" -m fxcli process "{media["wav"]}" - -p {PRESET} | head -c 100 '
        ">/dev/null; exit ${PIPESTATUS[0]}"
    )
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, env=env, timeout=300)
    assert r.returncode == 141, no_traceback(r)


@pytest.mark.skipif(not HAS_FFPROBE, reason="ffprobe is not installed")
def test_stdout_stream_read_by_ffprobe(media: dict[str, Path]) -> None:
    """issue 16: the WAV on stdout is a plain complete WAV for another reader."""
    r = fx("process", str(media["wav"]), "-", "-p", PRESET)
    assert r.returncode == 0, no_traceback(r)
    p = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,channels,sample_rate",
         "-show_entries", "format=format_name", "-of", "json", "-i", "pipe:0"],
        input=r.stdout, capture_output=True, timeout=60,
    )  # fmt: skip
    info = json.loads(p.stdout)
    assert info["format"]["format_name"] == "wav"
    assert info["streams"][0]["codec_name"] == "pcm_s16le"
    assert info["streams"][0]["channels"] == 2


def test_overwrite_keeps_mode_and_symlink(media: dict[str, Path], tmp_path: Path) -> None:
    """issue 16: --overwrite in place turned a 0640 file into 0644 and replaced a
    symlink by a regular file; now mode (and owner) are kept and the link is
    written through to its target. Input == output in place equals a run into a
    fresh folder."""
    ref = samples(media["ref_wav"])[0]
    f = tmp_path / "a.wav"
    shutil.copy(media["wav"], f)
    f.chmod(0o640)
    st = f.stat()
    r = fx("process", str(f), str(f), "-p", PRESET, "--overwrite")
    assert r.returncode == 0, no_traceback(r)
    now = f.stat()
    assert (now.st_mode & 0o7777, now.st_uid, now.st_gid) == (0o640, st.st_uid, st.st_gid)
    np.testing.assert_array_equal(samples(f)[0], ref)

    target = tmp_path / "real" / "b.wav"
    target.parent.mkdir()
    shutil.copy(media["wav"], target)
    target.chmod(0o600)
    link = tmp_path / "link.wav"
    link.symlink_to(os.path.relpath(target, link.parent))
    r = fx("process", str(link), str(link), "-p", PRESET, "--overwrite")
    assert r.returncode == 0, no_traceback(r)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert target.stat().st_mode & 0o7777 == 0o600
    np.testing.assert_array_equal(samples(target)[0], ref)
    assert not [p for p in target.parent.iterdir() if p.name != "b.wav"]  # no temp left

    # a symlink OUTPUT whose target is ANOTHER input of the run: refused before any
    # work (written through, it would replace that input before it is read)
    other = tmp_path / "other.wav"
    shutil.copy(media["wav"], other)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "a.wav").symlink_to(other)
    r = fx("process", str(f), str(other), str(tmp_path / "o"), "-p", PRESET, "--overwrite")
    err = no_traceback(r)
    assert r.returncode == 2 and "another input of this run" in err, err
    assert other.read_bytes() == media["wav"].read_bytes()

    # a hard link as OUTPUT of its own other name: the input is read whole first;
    # the output name gets the new file, the other name keeps the old content
    h_in = tmp_path / "h_in.wav"
    shutil.copy(media["wav"], h_in)
    h_out = tmp_path / "h_out.wav"
    os.link(h_in, h_out)
    r = fx("process", str(h_in), str(h_out), "-p", PRESET, "--overwrite")
    assert r.returncode == 0, no_traceback(r)
    np.testing.assert_array_equal(samples(h_out)[0], ref)
    assert h_in.read_bytes() == media["wav"].read_bytes()

    # a folder processed into itself equals the run into a fresh folder
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(media["wav"], d / "take.wav")
    shutil.copy(media["flac"], d / "take.flac")
    r = fx("process", str(d), str(d), "-p", PRESET, "--overwrite")
    assert r.returncode == 0, no_traceback(r)
    assert (d / "take.wav").read_bytes() == media["ref_wav"].read_bytes()
    np.testing.assert_array_equal(samples(d / "take.flac")[0], samples(media["ref_flac"])[0])


def test_long_and_undecodable_names(media: dict[str, Path], tmp_path: Path) -> None:
    """issue 16: output names of 230-255 bytes failed (the temporary name overflowed
    NAME_MAX); names that are not UTF-8 work end to end, and are printed escaped:
    no raw ESC or undecodable byte reaches the terminal, the JSON stays valid."""
    for n in (230, 251, 255):
        name = "é" * ((n - 4) // 2) + "x" * ((n - 4) % 2) + ".wav"
        assert len(name.encode()) == n
        r = fx("process", str(media["wav"]), str(tmp_path / "long" / name), "-p", PRESET)
        assert r.returncode == 0, no_traceback(r)
        np.testing.assert_array_equal(
            samples(tmp_path / "long" / name)[0], samples(media["ref_wav"])[0]
        )
    folder = os.fsencode(tmp_path)
    odd = b"t\xff\x1b[31mred\x07.flac"
    shutil.copy(media["flac"], os.fsdecode(folder + b"/" + odd))
    r = fx("process", os.fsdecode(folder + b"/" + odd), str(tmp_path / "o"), "-p", PRESET,
           "--json")  # fmt: skip
    assert r.returncode == 0, no_traceback(r)
    assert os.listdir(os.fsencode(tmp_path / "o")) == [odd]
    out = os.fsdecode(os.fsencode(tmp_path / "o") + b"/" + odd)
    np.testing.assert_array_equal(samples(Path(out))[0], samples(media["ref_flac"])[0])
    for stream in (r.stdout, r.stderr):
        assert b"\x1b" not in stream and b"\xff" not in stream and b"\x07" not in stream
    assert rb"t\xff\x1b[31mred\x07.flac" in r.stderr
    rec = json.loads(r.stdout.decode("ascii"))
    assert bytes.fromhex(rec["output_bytes_hex"]) == os.fsencode(out)
    assert rec["output"].endswith(r"t\xff\x1b[31mred\x07.flac")
    # errors name the file escaped as well
    r = fx("process", os.fsdecode(folder + b"/missing\x1b[2J.wav"), str(tmp_path / "o2"),
           "-p", PRESET)  # fmt: skip
    assert r.returncode == 2 and b"\x1b" not in r.stderr, no_traceback(r)


def test_temp_name_fits_name_max(tmp_path: Path) -> None:
    """issue 16: `.<name>.<pid>.<hex>.fxcli-tmp` of a 255-byte name was 282 bytes."""
    from fxcli.io.atomic import TEMP_NAME, temp_name, temp_stem

    for name in ("a" * 251 + ".wav", "é" * 125 + "x.wav", "日本" * 41 + "x.wav",
                 os.fsdecode(b"\xff" * 251 + b".wav")):  # fmt: skip
        tmp = temp_name(tmp_path / name)
        assert len(os.fsencode(tmp.name)) <= 255
        m = TEMP_NAME.fullmatch(tmp.name)
        assert m is not None and m.group("name") == temp_stem(tmp_path / name)
        tmp.write_bytes(b"")  # the filesystem takes it
    assert temp_stem(tmp_path / "short.wav") == "short.wav"


def test_shown_escapes_controls_and_bytes() -> None:
    from fxcli.io.display import json_safe, shown

    s = os.fsdecode(b"a\x1b[2J\xff\x9b\x7f\xc3\xa9\tz")
    assert shown(s) == "a\\x1b[2J\\xff\\x9b\\x7fé\tz"
    rec = json_safe({"input": s, "notes": [s], "frames": 3})
    json.dumps(rec).encode("ascii")
    assert rec["input_bytes_hex"] == os.fsencode(s).hex() and rec["frames"] == 3
