"""Caches are caches (the design cache; the compiled kernels need none), --manifest validation and
records, numeric options, a closed stdout, and features' index.jsonl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal as sps
from typer.testing import CliRunner

from fxcli._version import __version__
from fxcli.batch.manifest import ManifestError, check_manifest_path
from fxcli.cli.app import app
from fxcli.dsp import design, design_cache
from fxcli.io.audio import TEMP_MARK
from tests.conftest import ROOT, SIMPLE_PRESET, noise, write_audio

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if TEMP_MARK in p.name]


def json_lines(out: str) -> list[dict]:
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


# ---------------------------------------------------------------------------- design cache
# Elliptic designs still come from SciPy through the cache (Butterworth/Chebyshev are
# numpy-only since issue 15 and never touch it).
ELLIPTIC_PRESET = """version: 1
chain:
  - {type: highpass, cutoff_hz: 100, order: 2, design: elliptic}
  - {type: gain, gain_db: -3}
"""


def _ref_design() -> np.ndarray:
    return sps.iirfilter(
        8, 20, rp=0.5, rs=40, btype="highpass", ftype="ellip", fs=96000, output="sos"
    )


def _design() -> np.ndarray:
    return design.iir_pass("highpass", 20, 96000, 8, "elliptic")


@pytest.fixture
def elliptic_preset(tmp_path: Path) -> Path:
    p = tmp_path / "elliptic.yaml"
    p.write_text(ELLIPTIC_PRESET)
    return p


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("FXCLI_CACHE_DIR", str(d))
    monkeypatch.setattr(design_cache, "_memory", None)
    return d


def test_malformed_cache_entries_are_recomputed_and_replaced(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards: an entry whose size does not fill its shape (numpy's `cannot reshape
    array of size 12 into shape (3,6)`), a non-finite one or a wrong type is
    ignored: the design is recomputed, exact, and the entry rewritten."""
    assert np.array_equal(_design(), _ref_design())
    path = cache_dir / "designs.json"
    doc = json.loads(path.read_text())
    (key, (shape, values)), *_ = doc["designs"].items()
    for bad in (
        [[3, 6], values[:12]],  # size does not fill the shape
        [shape, [float("nan")] + values[1:]],  # non-finite
        [shape, ["x"] * len(values)],  # not numbers
        [[-1], values],  # bad shape
        "junk",
    ):
        doc["designs"] = {key: bad, "not-a-key": [shape, values]}
        path.write_text(json.dumps(doc))
        monkeypatch.setattr(design_cache, "_memory", None)
        assert np.array_equal(_design(), _ref_design())
        fixed = json.loads(path.read_text())["designs"]
        assert fixed[key] == [shape, values] and "not-a-key" not in fixed


def test_malformed_entry_does_not_fail_a_file(
    tmp_path: Path, cache_dir: Path, elliptic_preset: Path
) -> None:
    """Guards: `process` over a poisoned cache processes the file (exit 0)."""
    src = write_audio(tmp_path / "a.wav", 0.3 * noise(1, 4410), 44100)
    r = run("process", src, tmp_path / "o1", "-p", elliptic_preset)
    assert r.exit_code == 0, r.output
    path = cache_dir / "designs.json"
    doc = json.loads(path.read_text())
    doc["designs"] = {k: [[3, 6], v[1][:12]] for k, v in doc["designs"].items()}
    path.write_text(json.dumps(doc))
    design_cache._memory = None
    r = run("process", src, tmp_path / "o2", "-p", elliptic_preset)
    assert r.exit_code == 0, r.output
    assert "reshape" not in r.output


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b'{"format": 1, "desi', b"[1, 2]"])
def test_corrupt_cache_file_is_set_aside_and_rebuilt(cache_dir: Path, content: bytes) -> None:
    cache_dir.mkdir()
    path = cache_dir / "designs.json"
    path.write_bytes(content)
    assert np.array_equal(_design(), _ref_design())
    assert [p.read_bytes() for p in cache_dir.glob("designs.json.corrupt-*")] == [content]
    assert len(json.loads(path.read_text())["designs"]) == 1


def test_symlink_at_cache_path_is_not_followed(cache_dir: Path, tmp_path: Path) -> None:
    """Guards: a symlink at the cache path is never read through nor written through."""
    cache_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (cache_dir / "designs.json").symlink_to(victim)
    assert np.array_equal(_design(), _ref_design())
    assert victim.read_text() == "precious"
    assert not (cache_dir / "designs.json").is_symlink()


def test_fifo_at_cache_path_does_not_hang(cache_dir: Path) -> None:
    cache_dir.mkdir()
    os.mkfifo(cache_dir / "designs.json")
    out: list[np.ndarray] = []
    t = threading.Thread(target=lambda: out.append(_design()), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "design blocked on a FIFO at the cache path"
    assert np.array_equal(out[0], _ref_design())


@pytest.mark.parametrize("var", ["XDG_CACHE_HOME", "HOME"])
def test_uncreatable_cache_dir_turns_caching_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    """Guards: a cache folder that cannot be created (read-only install, unwritable
    HOME; a file where a folder should be works the same for root) is no error."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.delenv("FXCLI_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv(var, str(blocker / "sub"))
    monkeypatch.setattr(design_cache, "_memory", None)
    assert str(blocker) in str(design_cache.cache_path())
    for _ in range(2):
        assert np.array_equal(_design(), _ref_design())
    assert blocker.read_text() == "not a folder"
    assert design.fir_window(31, 3000, 44100, "highpass", ["tukey", 0.3]).shape == (31,)


def test_unwritable_cache_cli_run_works(tmp_path: Path, elliptic_preset: Path) -> None:
    """Guards: a whole CLI run with an uncreatable cache folder: exit 0, at most one note."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    src = write_audio(tmp_path / "a.wav", 0.3 * noise(1, 4410), 44100)
    env = {k: v for k, v in os.environ.items() if k != "FXCLI_CACHE_DIR"}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(blocker / "c"), HOME=str(blocker))
    r = subprocess.run(
        [sys.executable, "-m", "fxcli", "process", str(src), str(tmp_path / "o"), "-p",
         str(elliptic_preset), "--device", "cpu"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert sum("cache" in line for line in r.stderr.splitlines()) <= 1
    assert "Traceback" not in r.stderr


def test_concurrent_writers_leave_a_valid_cache(tmp_path: Path) -> None:
    """Guards: processes designing at once (temp file + rename) never leave a mixed
    or half-written cache; every entry read back is valid."""
    cache = tmp_path / "cc"
    code = (
        "import sys; from fxcli.dsp import design\n"
        "for k in range(30):\n"
        "    design.iir_pass('lowpass', 100 + 10 * k + int(sys.argv[1]), 48000, 4, 'elliptic')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), FXCLI_CACHE_DIR=str(cache))
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(i)], env=env, stderr=subprocess.PIPE)
        for i in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    doc = json.loads((cache / "designs.json").read_text())
    assert doc["designs"] and all(
        design_cache._valid_entry(k, v) for k, v in doc["designs"].items()
    )
    assert not list(cache.glob("*.tmp")) and not list(cache.glob("*.corrupt-*"))


# ---------------------------------------------------------------------------- kernels
def test_kernels_need_no_jit_and_no_writable_location(tmp_path: Path) -> None:
    """Guards the reason numba left (issue 15): its cache sat next to the sources,
    broke in read-only installs and containers (recompiling every run) and could be
    corrupted. The compiled core needs nothing written at run time: with no writable
    home, cache or working folder, every kernel family runs and numba is not loaded."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    code = (
        "import sys, numpy as np\n"
        "from fxcli.dsp.iir.cpu import sosfilt_np\n"
        "from fxcli.dsp.truepeak import interpolator, true_peak_array\n"
        "from fxcli.io import wavfast\n"
        "x = np.random.default_rng(0).standard_normal((2, 5000))\n"
        "y, _ = sosfilt_np(x, np.array([[0.5, 0.2, 0.1, 1.0, -0.3, 0.1]]), None)\n"
        "p, _ = true_peak_array(x, None, interpolator(48000))\n"
        "d = wavfast.decode(np.ones(2).view(np.uint8), 'DOUBLE', 1, 'float64')\n"
        "print(round(float(y.sum()), 6) == round(float(y.sum()), 6), p.shape, d.sum())\n"
        "print('numba' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120, cwd=ro,
        env=dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(ro), XDG_CACHE_HOME=str(ro),
                 FXCLI_CACHE_DIR="off", PYTHONDONTWRITEBYTECODE="1"),
    )  # fmt: skip
    ro.chmod(0o755)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "(2,)", "2.0", "False"], r.stdout
    assert r.stderr == ""


# ---------------------------------------------------------------------------- --manifest
@pytest.fixture
def one_file(tmp_path: Path) -> Path:
    return write_audio(tmp_path / "in" / "a.wav", 0.3 * noise(1, 4410), 44100)


def test_manifest_path_that_is_not_a_manifest_is_a_usage_error(
    tmp_path: Path, one_file: Path, simple_preset: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    other = tmp_path / "other.txt"
    other.write_text("my notes\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(other)
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    jsonl = tmp_path / "other.jsonl"
    jsonl.write_text('{"name": "x"}\n')
    for bad, why in [
        (tmp_path, "directory"),
        (Path("/dev/null"), "regular"),
        (fifo, "regular"),
        (link, "symlink"),
        (other, "first line"),
        (csv, "first line"),
        (jsonl, "first line"),
    ]:
        out = tmp_path / f"out-{bad.name}"
        r = run("process", one_file, out, "-p", simple_preset, "--manifest", bad)
        assert r.exit_code == 2, (bad, r.output)
        assert "--manifest" in r.output and why in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
        assert not out.exists()
    assert other.read_text() == "my notes\n"
    # an empty file, a real manifest, a lone first record cut by a crash: accepted
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cut = tmp_path / "cut.jsonl"
    cut.write_text('{"v":1,"input":"a","out')
    for good in (empty, cut, tmp_path / "new.jsonl"):
        check_manifest_path(good)
    with pytest.raises(ManifestError):
        check_manifest_path(other)


def test_manifest_records_version_and_redoes_other_versions(
    tmp_path: Path, one_file: Path, simple_preset: Path
) -> None:
    """Guards: each record carries fxcli_version, flushed per file; a rerun skips a
    file recorded by this version and redoes one recorded by another version."""
    man = tmp_path / "run.jsonl"
    out = tmp_path / "out"
    args = ("process", one_file.parent, out, "-p", simple_preset, "--manifest", man, "--json")
    r = run(*args)
    assert r.exit_code == 0, r.output
    recs = [json.loads(x) for x in man.read_text().splitlines()]
    assert [r["fxcli_version"] for r in recs] == [__version__]
    r = run(*args)
    assert [x["status"] for x in json_lines(r.stdout)] == ["skipped"]
    old = man.read_text().replace(f'"fxcli_version":"{__version__}"', '"fxcli_version":"0.1"')
    man.write_text(old)
    r = run(*args, "--overwrite")  # redone (the output exists, so --overwrite)
    assert r.exit_code == 0, r.output
    assert [x["status"] for x in json_lines(r.stdout)] == ["ok"]
    last = json.loads(man.read_text().splitlines()[-1])
    assert last["fxcli_version"] == __version__ and last["status"] == "ok"


# ---------------------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    "args,option",
    [
        (["--chunk-seconds", "inf"], "--chunk-seconds"),
        (["--chunk-seconds", "nan"], "--chunk-seconds"),
        (["--chunk-seconds", "1e12"], "--chunk-seconds"),
        (["--spool-gb", "inf"], "--spool-gb"),
        (["--spool-gb", "nan"], "--spool-gb"),
    ],
)
def test_process_rejects_non_finite_numbers(
    tmp_path: Path, one_file: Path, simple_preset: Path, args: list[str], option: str
) -> None:
    out = tmp_path / "out"
    r = run("process", one_file, out, "-p", simple_preset, *args)
    assert r.exit_code == 2 and option in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(
    "args,option",
    [
        (["--chunk-seconds", "inf"], "--chunk-seconds"),
        (["--power", "nan"], "--power"),
        (["--power", "inf"], "--power"),
        (["--f-min", "inf"], "--f-min"),
        (["--f-max", "nan"], "--f-max"),
        (["--amin", "nan"], "--amin"),
        (["--lifter", "inf"], "--lifter"),
        (["--top-db", "inf"], "--top-db"),
        (["--top-db", "nan"], "--top-db"),
        (["--ref", "inf"], "--ref"),
        (["--ref", "nan"], "--ref"),
    ],
)
def test_features_rejects_non_finite_numbers(
    tmp_path: Path, one_file: Path, args: list[str], option: str
) -> None:
    out = tmp_path / "out"
    r = run("features", one_file, out, *args)
    assert r.exit_code == 2 and option in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(
    "args,option",
    [
        (["--durations", "1e12"], "--durations"),
        (["--durations", "inf"], "--durations"),
        (["--durations", "nan"], "--durations"),
        (["--max-seconds", "inf"], "--max-seconds"),
        (["--max-seconds", "nan"], "--max-seconds"),
    ],
)
def test_bench_rejects_non_finite_and_absurd_numbers(
    tmp_path: Path, args: list[str], option: str
) -> None:
    r = run("bench", "--output", tmp_path / "b.csv", *args)
    assert r.exit_code == 2 and option in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "b.csv").exists()


# ---------------------------------------------------------------------------- closed stdout
def test_closed_stdout_ends_the_run_quietly(tmp_path: Path) -> None:
    """Guards: `--json | head -1`: exit 141, no traceback, every output written is
    complete, no temporary file left."""
    src = tmp_path / "in"
    for i in range(3):
        write_audio(src / f"f{i}.wav", 0.3 * noise(2, 44100 * 4, seed=i), 44100, "PCM_16")
    preset = tmp_path / "p.yaml"
    preset.write_text(SIMPLE_PRESET)
    out = tmp_path / "o"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fxcli", "process", str(src), str(out), "-p", str(preset),
         "--chunk-seconds", "0.01", "--json", "--jobs", "1", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    assert json.loads(first)["status"] == "ok"
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception" not in err
    written = list(out.rglob("*.wav"))
    assert 1 <= len(written) < 3
    for p in written:
        assert sf.info(str(p)).frames == 44100 * 4
    assert leftovers(out) == []


def test_features_closed_stdout_ends_the_run_quietly(tmp_path: Path) -> None:
    """`fxcli features --json | head -1`: exit 141 with no message, like `process`;
    every array written is complete and indexed."""
    src = tmp_path / "in"
    # enough files that the run cannot write every line before the reader closes the
    # pipe (with 4 it sometimes did, and exited 0 under load): short files are batched
    # (2^19 samples a batch on the CPU), so 64 x 2 s make 4 batches, lines in 4 bursts
    for i in range(64):
        write_audio(src / f"f{i}.wav", 0.3 * noise(1, 16000 * 2, seed=i), 16000, "PCM_16")
    out = tmp_path / "feat"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fxcli", "features", str(src), str(out), "--json",
         "--jobs", "1", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["status"] == "ok"
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    arrays = sorted(p.name for p in out.glob("*.npy"))
    assert 1 <= len(arrays) <= 64
    indexed = [json.loads(ln) for ln in (out / "index.jsonl").read_text().splitlines()]
    assert len(indexed) == len(arrays)


# ---------------------------------------------------------------------------- index.jsonl
@pytest.fixture
def feat_src(tmp_path: Path) -> Path:
    src = tmp_path / "fin"
    for i in range(3):
        write_audio(src / f"s{i}.wav", 0.3 * noise(1, 8000 + 500 * i, seed=i), 16000, "PCM_16")
    return src


def _index(out: Path) -> dict[str, dict]:
    lines = (out / "index.jsonl").read_text().splitlines()
    return {e["output"]: e for e in map(json.loads, lines)}


def test_index_lines_are_appended_per_file(
    tmp_path: Path, feat_src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards: arrays finished before a kill are indexed: the closing rewrite of the
    index (replaced by a no-op, standing for the kill) is not needed for that."""
    from fxcli.batch import feature_run as cf  # issue 14: the index moved below the CLI

    monkeypatch.setattr(cf, "write_index", lambda root, entries: root / cf.INDEX_NAME)
    out = tmp_path / "feats"
    r = run("features", feat_src, out, "--n-mels", "32", "--n-fft", "512", "--device", "cpu")
    assert r.exit_code == 0, r.output
    idx = _index(out)
    assert sorted(idx) == ["s0.npy", "s1.npy", "s2.npy"]
    for name, e in idx.items():
        assert e["shape"] == list(np.load(out / name).shape)


def test_skip_existing_rerun_indexes_unindexed_arrays(tmp_path: Path, feat_src: Path) -> None:
    out = tmp_path / "feats"
    args = ("features", feat_src, out, "--n-mels", "32", "--n-fft", "512", "--device", "cpu")
    assert run(*args).exit_code == 0
    full = _index(out)
    lines = (out / "index.jsonl").read_text().splitlines()
    (out / "index.jsonl").write_text(lines[0] + "\n" + lines[1][:20])  # s2 lost, s1 cut
    r = run(*args, "--skip-existing")
    assert r.exit_code == 0, r.output
    assert _index(out) == full
    (out / "index.jsonl").unlink()
    assert run(*args, "--skip-existing").exit_code == 0
    assert _index(out) == full


def test_non_utf8_index_is_a_one_line_error(tmp_path: Path, feat_src: Path) -> None:
    out = tmp_path / "feats"
    out.mkdir()
    (out / "index.jsonl").write_bytes(b'{"output": "\xff\xfe"}\n')
    r = run("features", feat_src, out, "--device", "cpu")
    assert r.exit_code == 2, r.output
    assert "index.jsonl" in r.output and "UTF-8" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not list(out.glob("*.npy"))
