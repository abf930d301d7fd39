"""issue 14: ``fxcli features`` runs through the same batch executor as ``process``,
so it gains ``--shard``, ``--manifest``, URLs and ``--executor ray``; ``features -``
reads audio on stdin (as ``process -`` and ``analyze -``), paths on stdin come with
``--input-list -``.

Every test runs the real command in a subprocess (``sys.executable -m fxcli``) and
checks the arrays with numpy against the library's transform on the audio read back
with soundfile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fxcli import features as FT
from fxcli.io.audio import TEMP_MARK
from tests.conftest import ROOT, noise, write_audio

FS = 16000


def fx(*args: object, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "fxcli", "features", *map(str, args)]
    return subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=300)


def lines(r: subprocess.CompletedProcess[bytes]) -> list[dict]:
    return [json.loads(x) for x in r.stdout.decode().splitlines() if x.startswith("{")]


def corpus(folder: Path, n: int = 5) -> Path:
    for i in range(n):
        write_audio(folder / f"f{i}.wav", noise(1, 4000 + 500 * i, seed=i) * 0.4, FS, "FLOAT")
    return folder


def expected(wav: Path, **kw: int) -> np.ndarray:
    """The library's log-mel of the file as soundfile reads it."""
    x, fs = sf.read(wav, dtype="float32", always_2d=True)
    return FT.LogMelSpectrogram(fs=fs, **kw)(torch.from_numpy(x.T.copy())).numpy()


def test_shard_in_a_subprocess_covers_the_corpus_once(tmp_path: Path) -> None:
    """issue 14: ``features --shard K/N`` through the batch layer: disjoint shards,
    together the corpus, each array equal to the library's."""
    src = corpus(tmp_path / "in")
    got: list[str] = []
    for k in range(3):
        out = tmp_path / f"o{k}"
        r = fx(src, out, "--shard", f"{k}/3", "--json", "--device", "cpu")
        assert r.returncode == 0, r.stderr.decode()
        names = sorted(p.name for p in out.glob("*.npy"))
        assert sorted(Path(x["output"]).name for x in lines(r)) == names
        got += names
        for name in names:
            arr = np.load(out / name)
            assert np.array_equal(arr, expected(src / name.replace(".npy", ".wav")))
    assert sorted(got) == [f"f{i}.npy" for i in range(5)]


def test_manifest_resume_skips_finished_and_changed_params_redo(tmp_path: Path) -> None:
    """issue 14: ``features --manifest``: a rerun skips files finished with the same
    input and parameters (arrays untouched), a changed input is redone, and changed
    feature parameters redo every file."""
    src = corpus(tmp_path / "in", 3)
    out, man = tmp_path / "o", tmp_path / "run.jsonl"
    base = (src, out, "--manifest", man, "--json", "--device", "cpu", "--skip-existing")
    r = fx(*base)
    assert r.returncode == 0, r.stderr.decode()
    assert [x["status"] for x in lines(r)] == ["ok"] * 3
    recs = [json.loads(x) for x in man.read_text().splitlines()]
    assert len(recs) == 3 and {x["status"] for x in recs} == {"ok"}
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")}

    # rerun: all finished in the manifest
    r = fx(*base)
    assert r.returncode == 0, r.stderr.decode()
    assert [x["notes"] for x in lines(r)] == [["finished in the manifest"]] * 3
    assert "3 files already finished" in r.stderr.decode()
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")} == mtimes

    # one input changed: only that file is redone (the others stay finished)
    write_audio(src / "f1.wav", noise(1, 6000, seed=99) * 0.4, FS, "FLOAT")
    r = fx(src, out, "--manifest", man, "--json", "--device", "cpu", "--overwrite")
    assert r.returncode == 0, r.stderr.decode()
    status = {Path(x["input"]).name: x["status"] for x in lines(r)}
    assert status == {"f0.wav": "skipped", "f1.wav": "ok", "f2.wav": "skipped"}
    assert np.array_equal(np.load(out / "f1.npy"), expected(src / "f1.wav"))

    # changed feature parameters: every file redone, arrays follow the new parameters
    r = fx(src, out, "--manifest", man, "--json", "--device", "cpu", "--overwrite",
           "--n-mels", "40")  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    assert [x["status"] for x in lines(r)] == ["ok"] * 3
    for i in range(3):
        arr = np.load(out / f"f{i}.npy")
        assert arr.shape[1] == 40
        assert np.array_equal(arr, expected(src / f"f{i}.wav", n_mels=40))
    index = [json.loads(x) for x in (out / "index.jsonl").read_text().splitlines()]
    assert sorted(e["output"] for e in index) == ["f0.npy", "f1.npy", "f2.npy"]
    assert {e["params"]["n_mels"] for e in index} == {40}


def test_url_input_and_output(tmp_path: Path) -> None:
    """issue 14: URL inputs and a URL OUTPUT (file:// through fsspec, as object
    storage would be): arrays equal the library's, the index lands next to them,
    nothing temporary is left."""
    pytest.importorskip("fsspec", reason="URLs need fsspec (pip install 'fxcli[remote]')")
    src = corpus(tmp_path / "in", 3)
    out = tmp_path / "o"
    r = fx(f"file://{src}", f"file://{out}", "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr.decode()
    assert [x["status"] for x in lines(r)] == ["ok"] * 3
    assert all(x["output"].startswith(f"file://{out}/") for x in lines(r))
    for i in range(3):
        assert np.array_equal(np.load(out / f"f{i}.npy"), expected(src / f"f{i}.wav"))
    index = [json.loads(x) for x in (out / "index.jsonl").read_text().splitlines()]
    assert sorted(e["output"] for e in index) == ["f0.npy", "f1.npy", "f2.npy"]
    assert [p for p in out.rglob("*") if TEMP_MARK in p.name] == []
    # a URL input into a local folder, and --image with a URL OUTPUT refused (exit 2)
    r = fx(f"file://{src}/f0.wav", tmp_path / "local", "--device", "cpu")
    assert r.returncode == 0, r.stderr.decode()
    assert np.array_equal(np.load(tmp_path / "local" / "f0.npy"), expected(src / "f0.wav"))
    r = fx(src, f"file://{tmp_path / 'img'}", "--image")
    assert r.returncode == 2 and "--image" in r.stderr.decode()
    assert not (tmp_path / "img").exists()


def test_missing_ray_is_a_usage_error_before_any_file(tmp_path: Path) -> None:
    """issue 14: ``features --executor ray`` without Ray: exit 2 naming the extra,
    nothing written; executor options are checked like ``process``'s."""
    src = corpus(tmp_path / "in", 1)
    out = tmp_path / "o"
    fake = tmp_path / "no_ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no Ray here')\n")
    env = dict(os.environ, PYTHONPATH=f"{fake.parent}{os.pathsep}{ROOT}")
    cmd = [sys.executable, "-m", "fxcli", "features", str(src), str(out), "--executor", "ray"]
    r = subprocess.run(cmd, capture_output=True, env=env, timeout=300)
    assert r.returncode == 2 and "fxcli[ray]" in r.stderr.decode(), r.stderr.decode()
    for extra, msg in [
        (["--executor", "dask"], "--executor"),
        (["--address", "auto"], "--address needs --executor ray"),
        (["--executor", "ray", "--device", "cuda:0,cuda:1"], "with --executor ray"),
        (["--spool-gb", "0"], "--spool-gb"),
        (["--manifest", str(tmp_path)], "--manifest"),
    ]:
        r = fx(src, out, *extra)
        assert r.returncode == 2 and msg in r.stderr.decode(), (extra, r.stderr)
    assert not out.exists()


def test_ray_executor_matches_the_library(tmp_path: Path) -> None:
    """issue 14: ``features --executor ray`` (a local Ray cluster started by the
    command) writes the same arrays, one Ray task per file, and the index."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'fxcli[ray]')")
    src = corpus(tmp_path / "in", 3)
    out = tmp_path / "o"
    r = fx(src, out, "--executor", "ray", "--json", "--manifest", tmp_path / "m.jsonl")
    assert r.returncode == 0, r.stderr.decode()
    assert sorted(Path(x["input"]).name for x in lines(r)) == ["f0.wav", "f1.wav", "f2.wav"]
    for i in range(3):
        assert np.array_equal(np.load(out / f"f{i}.npy"), expected(src / f"f{i}.wav"))
    index = [json.loads(x) for x in (out / "index.jsonl").read_text().splitlines()]
    assert sorted(e["output"] for e in index) == ["f0.npy", "f1.npy", "f2.npy"]
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 3


def test_audio_on_stdin(tmp_path: Path) -> None:
    """issue 14: ``features -`` reads audio on stdin (as ``process -``); the array
    equals the library's on that audio, the report names the input ``-``."""
    wav = write_audio(tmp_path / "a.wav", noise(2, 7000, seed=3) * 0.4, FS, "PCM_16")
    out = tmp_path / "o"
    r = fx("-", out, "--json", "--device", "cpu", stdin=wav.read_bytes())
    assert r.returncode == 0, r.stderr.decode()
    (res,) = lines(r)
    assert res["input"] == "-" and res["status"] == "ok"
    arrays = list(out.glob("*.npy"))
    assert len(arrays) == 1
    assert np.array_equal(np.load(arrays[0]), expected(wav))
    r = fx("-", tmp_path / "one.npy", "--device", "cpu", stdin=wav.read_bytes())
    assert r.returncode == 0, r.stderr.decode()
    assert np.array_equal(np.load(tmp_path / "one.npy"), expected(wav))


def test_text_on_stdin_points_to_input_list(tmp_path: Path) -> None:
    """issue 14: paths piped into ``features -`` get one line pointing to
    ``--input-list -`` (exit 2, nothing written); ``--input-list -`` (and ``-0``) takes
    them."""
    src = corpus(tmp_path / "in", 2)
    names = [str(src / "f0.wav"), str(src / "f1.wav")]
    out = tmp_path / "o"
    r = fx("-", out, stdin="\n".join(names).encode() + b"\n")
    err = r.stderr.decode()
    assert r.returncode == 2 and "--input-list -" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    r = fx("-", out, stdin=b"\0".join(n.encode() for n in names) + b"\0")
    assert r.returncode == 2 and "--input-list - --null" in r.stderr.decode()
    assert not out.exists()
    r = fx("--input-list", "-", "-0", out, "--device", "cpu",
           stdin=b"\0".join(n.encode() for n in names))  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    assert sorted(p.name for p in out.rglob("*.npy")) == ["f0.npy", "f1.npy"]
    r = fx(tmp_path / "a.wav", "-", stdin=b"")
    assert r.returncode == 2 and "OUTPUT -" in r.stderr.decode()


def test_non_finite_samples_are_counted_once_with_a_measuring_pass(tmp_path: Path) -> None:
    """Guards a double count: with an analysis step (loudness) the input is read by the
    measuring pass and again by the feature pass; --nonfinite zero must report the 2
    replaced samples once, as process does (it said 4)."""
    x = 0.1 * noise(1, 48000 * 3, seed=4)
    x[0, 1000], x[0, 2000] = np.nan, np.inf
    src = write_audio(tmp_path / "nf.wav", x, 48000, "FLOAT")
    preset = tmp_path / "p.yaml"
    preset.write_text("version: 1\nchain:\n  - {type: loudness, target_lufs: -20}\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for cmd, out in (("features", tmp_path / "f"), ("process", tmp_path / "o.wav")):
        args = [cmd, str(src), str(out), "-p", str(preset), "--nonfinite", "zero", "--json"]
        r = subprocess.run(
            [sys.executable, "-m", "fxcli", *args], capture_output=True, env=env, timeout=300
        )
        assert r.returncode == 0, r.stderr
        rec = json.loads(r.stdout)
        assert rec["nonfinite_replaced"] == 2, (cmd, rec)
        assert "replaced 2 non-finite input samples with 0" in rec["notes"], (cmd, rec)
