"""Output safety (issue 13): no clobbering without --overwrite (no-replace commit),
stale temporary files of dead runs, outputs never taken as inputs, outputs that
differ only in letter case, and inputs that change between passes."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from fxcli.cli.app import app
from fxcli.cli.options import cli_text
from fxcli.engine.runner import Engine
from fxcli.io import audio
from fxcli.io.audio import TEMP_MARK
from fxcli.io.paths import UsageError, collect
from tests.conftest import noise, write_audio

runner = CliRunner()

NORMALIZE_PRESET = """version: 1
chain:
  - {type: gain, gain_db: -1}
  - {type: normalize, peak_db: -3}
"""


def run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if TEMP_MARK in p.name]


def results(stdout: str) -> list[dict]:
    return [json.loads(x) for x in stdout.splitlines() if x.startswith("{")]


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def planted(folder: Path, name: str, pid: int, age_s: float) -> Path:
    t = folder / f".{name}.{pid}.0123abcd{TEMP_MARK}"
    t.write_bytes(b"half a file")
    then = time.time() - age_s
    os.utime(t, (then, then))
    return t


# --------------------------------------------------------------- 1. no clobbering


def write_one(dest: Path, **kw: object) -> audio.AtomicWriter:
    out = audio.OutputFormat("WAV", "PCM_16", ".wav")
    return audio.AtomicWriter(dest, 44100, 1, out, **kw)  # type: ignore[arg-type]


def test_no_replace_commit_refuses_an_output_that_appeared(tmp_path: Path) -> None:
    dest = tmp_path / "o.wav"
    with pytest.raises(audio.OutputExistsError, match="output appeared during processing"):
        with write_one(dest, replace=False) as w:
            w.write(0.1 * noise(1, 1000))
            dest.write_bytes(b"another run's output")
            w.commit()
    assert dest.read_bytes() == b"another run's output"
    assert leftovers(tmp_path) == []
    # a dangling symlink holds the name too
    dest.unlink()
    dest.symlink_to(tmp_path / "nowhere.wav")
    with pytest.raises(audio.OutputExistsError, match=r"\(use overwrite\)") as err:
        with write_one(dest, replace=False) as w:
            w.write(0.1 * noise(1, 1000))
            w.commit()
    # library words in the library, the flag in the CLI (issue 14: CLI words only in cli/)
    assert cli_text(err.value).endswith("(use --overwrite)")
    assert dest.is_symlink() and leftovers(tmp_path) == []
    # free name: committed, one link, no temp file left
    dest.unlink()
    with write_one(dest, replace=False) as w:
        w.write(0.1 * noise(1, 1000))
        w.commit()
    assert sf.info(str(dest)).frames == 1000 and dest.stat().st_nlink == 1
    assert leftovers(tmp_path) == []
    # replace=True (--overwrite): today's atomic replace
    with write_one(dest) as w:
        w.write(0.1 * noise(1, 500))
        w.commit()
    assert sf.info(str(dest)).frames == 500 and leftovers(tmp_path) == []


@pytest.mark.parametrize("code", [errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP])
def test_no_replace_commit_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def no_links(src: object, dst: object, **kw: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(audio.os, "link", no_links)
    dest = tmp_path / "o.wav"
    with write_one(dest, replace=False) as w:
        w.write(0.1 * noise(1, 1000))
        w.commit()
    assert sf.info(str(dest)).frames == 1000 and leftovers(tmp_path) == []
    with pytest.raises(audio.OutputExistsError):
        with write_one(dest, replace=False) as w:
            w.write(0.1 * noise(1, 10))
            w.commit()
    assert sf.info(str(dest)).frames == 1000 and leftovers(tmp_path) == []


def test_output_appearing_during_processing_is_not_clobbered(
    tmp_path: Path, simple_preset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of two runs: the output appears after the exists-check, before the
    commit. Without --overwrite it is left alone (failed, or skipped under
    --skip-existing), never reported ok; with --overwrite it is replaced."""
    src = write_audio(tmp_path / "in" / "x.wav", 0.3 * noise(1, 3000), 44100, "PCM_16")
    out = tmp_path / "out"
    dest = out / "x.wav"
    real_commit = audio.AtomicWriter.commit

    def racing_commit(self: audio.AtomicWriter) -> None:
        if not self.dest.exists():
            self.dest.write_bytes(b"other run")
        real_commit(self)

    monkeypatch.setattr(audio.AtomicWriter, "commit", racing_commit)
    base = ("process", str(src), str(out), "-p", str(simple_preset), "--json")
    r = run(*base)
    assert r.exit_code == 1, r.output
    (res,) = results(r.stdout)
    assert res["status"] == "failed"
    assert res["error"].startswith(f"output appeared during processing: {dest}")
    assert "\n" not in res["error"] and "--overwrite" in res["error"]
    assert dest.read_bytes() == b"other run" and leftovers(out) == []

    dest.unlink()
    r = run(*base, "--skip-existing")
    assert r.exit_code == 0, r.output
    (res,) = results(r.stdout)
    assert res["status"] == "skipped" and res["error"] is None
    assert any("appeared during processing" in n for n in res["notes"])
    assert dest.read_bytes() == b"other run" and leftovers(out) == []

    r = run(*base, "--overwrite")
    assert r.exit_code == 0, r.output
    assert results(r.stdout)[0]["status"] == "ok"
    assert sf.info(str(dest)).frames == 3000 and leftovers(out) == []


# --------------------------------------------------------------- 2. stale temp files


def test_stale_temp_files_of_dead_runs_are_removed(tmp_path: Path, simple_preset: Path) -> None:
    src = write_audio(tmp_path / "in" / "x.wav", 0.3 * noise(1, 2000), 44100, "PCM_16")
    out = tmp_path / "out"
    out.mkdir()
    dead = dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = planted(out, "x.wav", dead, 3600)
        stale2 = planted(out, "other.flac", dead, 120)
        young = planted(out, "y.wav", dead, 0)  # may be a writer on another host
        alive = planted(out, "z.wav", live.pid, 3600)
        foreign = out / f".x.wav.{dead}.not-hex{TEMP_MARK}"
        foreign.write_bytes(b"not ours")
        os.utime(foreign, (time.time() - 3600,) * 2)
        r = run("process", str(src), str(out), "-p", str(simple_preset), "--json")
        assert r.exit_code == 0, r.output
        (res,) = results(r.stdout)
        assert "removed 2 stale temporary files of dead runs" in "; ".join(res["notes"])
        assert not stale.exists() and not stale2.exists()
        assert young.exists() and alive.exists() and foreign.exists()
        assert sf.info(str(out / "x.wav")).frames == 2000
    finally:
        live.kill()
        live.wait()


def test_remove_dead_temps_direct(tmp_path: Path) -> None:
    dead = dead_pid()
    old = planted(tmp_path, "a.wav", dead, 90)
    mine = planted(tmp_path, "b.wav", os.getpid(), 3600)
    assert audio.remove_dead_temps(tmp_path) == 1
    assert not old.exists() and mine.exists()
    # the writer's own temporary names are the ones recognised
    tmp = audio.temp_name(tmp_path / "c.wav")
    m = audio.TEMP_NAME.fullmatch(tmp.name)
    assert m is not None and m["name"] == "c.wav" and int(m["pid"]) == os.getpid()


# --------------------------------------------------------------- 3. outputs never inputs


def test_glob_into_a_folder_below_its_root_never_reprocesses_outputs(
    tmp_path: Path, simple_preset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_audio(Path("in/a.wav"), 0.3 * noise(1, 1000, 1), 44100, "PCM_16")
    write_audio(Path("in/sub/b.wav"), 0.3 * noise(1, 1000, 2), 44100, "PCM_16")
    statuses, summaries = [], []
    for _ in range(3):
        r = run(
            "process", "in/**/*.wav", "in/gout/", "-p", str(simple_preset),
            "--skip-existing", "--json",
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        statuses.append(sorted((x["input"], x["status"]) for x in results(r.stdout)))
        summaries.append([ln for ln in r.stderr.splitlines() if " in " in ln][-1])
    assert statuses[0] == [("in/a.wav", "ok"), ("in/sub/b.wav", "ok")]
    assert "under OUTPUT" not in summaries[0]
    assert all("2 inputs under OUTPUT not taken" in x for x in summaries[1:]), summaries
    assert statuses[1] == statuses[2] == [("in/a.wav", "skipped"), ("in/sub/b.wav", "skipped")]
    assert not Path("in/gout/gout").exists()
    assert sorted(p.as_posix() for p in Path("in/gout").rglob("*")) == [
        "in/gout/a.wav",
        "in/gout/sub",
        "in/gout/sub/b.wav",
    ]


def test_input_lists_and_stdin_drop_files_inside_output(
    tmp_path: Path, simple_preset: Path
) -> None:
    a = write_audio(tmp_path / "in" / "a.wav", 0.3 * noise(1, 1000), 44100, "PCM_16")
    out = tmp_path / "in" / "o"
    inside = write_audio(out / "a.wav", 0.3 * noise(1, 1000), 44100, "PCM_16")
    link = tmp_path / "link.wav"  # a symlink elsewhere that resolves into OUTPUT
    link.symlink_to(inside)
    c = collect([], out, [str(a), str(inside), str(link)])
    assert [j.src for j in c.jobs] == [a] and c.in_output == 2
    c = collect([str(tmp_path / "in" / "**" / "*.wav")], out)
    assert [j.src for j in c.jobs] == [a] and c.in_output == 1
    with pytest.raises(UsageError, match="inside OUTPUT"):
        collect([], out, [str(inside)])

    lst = tmp_path / "list.txt"
    lst.write_text(f"{a}\n{inside}\n")
    r = run("process", str(out), "--input-list", str(lst), "-p", str(simple_preset), "--json",
            "--skip-existing")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert [x["input"] for x in results(r.stdout)] == [str(a)]
    # issue 16: `-` is audio on stdin now; paths on stdin come through --input-list -
    r = run("process", "--input-list", "-", str(out), "-p", str(simple_preset), "--json",
            "--skip-existing", input=f"{inside}\n{a}\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert [x["input"] for x in results(r.stdout)] == [str(a)]
    assert not (out / "o").exists()


# --------------------------------------------------------------- 4. letter case


def test_outputs_differing_only_in_case_are_a_usage_error(
    tmp_path: Path, simple_preset: Path
) -> None:
    src = tmp_path / "in"
    write_audio(src / "Take.wav", 0.3 * noise(1, 1000, 1), 44100, "PCM_16")
    if (src / "take.wav").exists():
        pytest.skip("case-insensitive filesystem: cannot make both names")
    write_audio(src / "take.wav", 0.3 * noise(1, 1000, 2), 44100, "PCM_16")
    out = tmp_path / "out"
    r = run("process", str(src), str(out), "-p", str(simple_preset))
    assert r.exit_code == 2, r.output
    assert str(src / "Take.wav") in r.stderr and str(src / "take.wav") in r.stderr
    assert "letter case" in r.stderr
    assert not out.exists()
    # folders too (A/x.wav and a/x.wav), and with --format (x.WAV and X.flac -> x.wav, X.wav)
    write_audio(tmp_path / "d" / "A" / "x.wav", 0.3 * noise(1, 100), 44100, "PCM_16")
    write_audio(tmp_path / "d" / "a" / "x.wav", 0.3 * noise(1, 100), 44100, "PCM_16")
    with pytest.raises(UsageError, match="differ only in letter case"):
        collect([str(tmp_path / "d")], out)
    write_audio(tmp_path / "e" / "x.WAV", 0.3 * noise(1, 100), 44100, "PCM_16")
    write_audio(tmp_path / "e" / "X.flac", 0.3 * noise(1, 100), 44100, "PCM_16")
    collect([str(tmp_path / "e")], out)  # x.WAV and X.flac: different names
    with pytest.raises(UsageError, match="letter case"):
        collect([str(tmp_path / "e")], out, out_ext=".wav")
    # the exact duplicate keeps its own message
    write_audio(tmp_path / "f" / "speech.mp3", 0.3 * noise(1, 100), 44100, "PCM_16", "WAV")
    write_audio(tmp_path / "f" / "speech.wav", 0.3 * noise(1, 100), 44100, "PCM_16")
    with pytest.raises(UsageError, match="would both write"):
        collect([str(tmp_path / "f")], out, out_ext=".wav")


# --------------------------------------------------------------- 5. input changed


def test_input_changed_between_measuring_and_writing_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preset = tmp_path / "n.yaml"
    preset.write_text(NORMALIZE_PRESET)
    src = write_audio(tmp_path / "in" / "x.wav", 0.3 * noise(2, 4000), 44100, "PCM_16")
    out = tmp_path / "out"
    real = Engine._resolve_analysis

    def measure_then_edit(self: Engine, *a: object, **kw: object) -> object:
        steps = real(self, *a, **kw)  # type: ignore[arg-type]
        y = np.concatenate([0.3 * noise(2, 4000), 0.9 * noise(2, 100, 5)], axis=1)
        sf.write(str(src), y.T, 44100, subtype="PCM_16")  # another program rewrites it
        return steps

    monkeypatch.setattr(Engine, "_resolve_analysis", measure_then_edit)
    r = run("process", str(src), str(out), "-p", str(preset), "--json")
    assert r.exit_code == 1, r.output
    (res,) = results(r.stdout)
    assert res["status"] == "failed"
    assert res["error"].startswith("input changed while it was processed (size/mtime)")
    assert str(src) in res["error"] and "\n" not in res["error"]
    assert not (out / "x.wav").exists() and leftovers(tmp_path) == []


def test_input_changed_during_writing_pass_is_not_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preset = tmp_path / "n.yaml"
    preset.write_text(NORMALIZE_PRESET)
    src = write_audio(tmp_path / "in" / "x.wav", 0.3 * noise(2, 4000), 44100, "PCM_16")
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.wav").write_bytes(b"previous")
    real_write = audio.AtomicWriter.write

    def write_and_touch(self: audio.AtomicWriter, y: np.ndarray) -> None:
        real_write(self, y)
        st = os.stat(src)
        os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same size

    monkeypatch.setattr(audio.AtomicWriter, "write", write_and_touch)
    r = run("process", str(src), str(out), "-p", str(preset), "--json", "--overwrite")
    assert r.exit_code == 1, r.output
    (res,) = results(r.stdout)
    assert res["status"] == "failed"
    assert res["error"].startswith("input changed while it was processed (mtime)")
    assert (out / "x.wav").read_bytes() == b"previous" and leftovers(tmp_path) == []

    # replaced by another file with the same size and mtime (rsync -t, cp -p)
    monkeypatch.setattr(audio.AtomicWriter, "write", real_write)
    real = Engine._resolve_analysis

    def swap(self: Engine, *a: object, **kw: object) -> object:
        steps = real(self, *a, **kw)  # type: ignore[arg-type]
        st = os.stat(src)
        other = src.with_name("other.wav")
        other.write_bytes(src.read_bytes()[::-1][::-1])
        os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(other, src)
        return steps

    monkeypatch.setattr(Engine, "_resolve_analysis", swap)
    r = run("process", str(src), str(out), "-p", str(preset), "--json", "--overwrite")
    assert r.exit_code == 1, r.output
    assert "replaced by another file" in results(r.stdout)[0]["error"]
    assert (out / "x.wav").read_bytes() == b"previous"


def test_input_list_nul_byte_and_closed_stdin_are_usage_errors(tmp_path: Path) -> None:
    """A NUL byte in --input-list (find -print0 output) and `-` with stdin closed were
    tracebacks (issue 13's second probe); both are one-line usage errors (exit 2)."""

    src = write_audio(tmp_path / "a.wav", 0.1 * noise(1, 4410), 44100, "PCM_16")
    lst = tmp_path / "list.txt"
    lst.write_bytes(str(src).encode() + b"\0" + b"b.wav\n")
    cmd = [sys.executable, "-m", "fxcli", "process"]
    for args, stdin in (
        ([*cmd, "--input-list", str(lst), str(tmp_path / "o1"), "-p", "voice"], None),
        (  # issue 16: paths on stdin come through --input-list - (- is audio)
            [*cmd, "--input-list", "-", str(tmp_path / "o2"), "-p", "voice"],
            str(src).encode() + b"\0" + b"\n",
        ),
    ):
        r = subprocess.run(args, input=stdin, capture_output=True, timeout=120)
        err = r.stderr.decode()
        assert r.returncode == 2 and "NUL byte" in err and "Traceback" not in err, err
    r = subprocess.run(
        ["bash", "-c", 'exec "$@" <&-', "_", *cmd, "-", str(tmp_path / "o3"), "-p", "voice"],
        capture_output=True,
        timeout=120,
    )
    err = r.stderr.decode()
    assert r.returncode == 2 and "stdin is closed" in err and "Traceback" not in err, err


def test_full_disk_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libsndfile reports a full disk while writing FLAC as "System error"; the file's
    error says no space is left instead (issue 13), and no partial output remains."""

    class FullDisk:
        f_bavail, f_frsize = 3, 4096

    src = write_audio(tmp_path / "in" / "a.flac", 0.1 * noise(1, 44100), 44100, "PCM_16")
    real_write = sf.SoundFile.write

    def failing_write(self: sf.SoundFile, data: np.ndarray) -> None:
        if self.mode != "r":
            raise sf.LibsndfileError(2, "Error writing: ")
        real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", failing_write)
    monkeypatch.setattr(audio.os, "statvfs", lambda p: FullDisk())
    res = CliRunner().invoke(app, ["process", str(src), str(tmp_path / "out"), "-p", "voice"])
    assert res.exit_code == 1, res.output
    assert "No space left on device" in res.output and "12288 bytes free" in res.output
    assert not list((tmp_path / "out").glob("*.flac"))
    assert audio._write_reason(OSError(errno.ENOSPC, "No space"), tmp_path).startswith(
        "No space left on device"
    )


def test_ima_adpcm_keeps_its_frame_count(tmp_path: Path) -> None:
    """Issue 13 reported IMA ADPCM outputs growing by a block per pass: two passes of
    a stereo 48 kHz file (and small chunks) keep the input's frame count."""
    x = (0.1 * noise(2, 48000 * 2 + 777, seed=4)).T
    src = tmp_path / "ima.wav"
    sf.write(str(src), x, 48000, subtype="IMA_ADPCM")
    frames = sf.info(str(src)).frames
    cur = src
    for k in range(2):
        res = CliRunner().invoke(
            app,
            ["process", str(cur), str(tmp_path / f"p{k}"), "-p", "voice", "--chunk-seconds", "0.3"],
        )
        assert res.exit_code == 0, res.output
        cur = tmp_path / f"p{k}" / "ima.wav"
        info = sf.info(str(cur))
        assert (info.frames, info.subtype) == (frames, "IMA_ADPCM")


def test_features_and_wave_save_never_replace_a_file_that_appeared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The features writer and ``Wave.save(overwrite=False)`` commit without replacing:
    a file that appears while they write stays as it was."""
    import fxcli
    from fxcli.io.atomic import atomic_path

    dest = tmp_path / "a.npy"
    with pytest.raises(audio.OutputExistsError):
        with atomic_path(dest, replace=False) as tmp:
            tmp.write_bytes(b"ours")
            dest.write_bytes(b"theirs")
    assert dest.read_bytes() == b"theirs" and leftovers(tmp_path) == []

    out = tmp_path / "w.wav"
    real_write = audio.AtomicWriter.write

    def racing_write(self: audio.AtomicWriter, y: np.ndarray) -> None:
        real_write(self, y)
        out.write_bytes(b"theirs")

    monkeypatch.setattr(audio.AtomicWriter, "write", racing_write)
    wave = fxcli.Wave(torch.zeros(1, 100), 8000)
    with pytest.raises(audio.OutputExistsError):
        wave.save(out, overwrite=False)
    assert out.read_bytes() == b"theirs"
