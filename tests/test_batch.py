"""Batch runs: shards, the run manifest and resuming, fsspec URLs (memory:// in-process,
S3 through moto's local server), device lists, the Ray executor."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fxcli.batch import remote
from fxcli.batch.manifest import Manifest, config_digest, is_done, sha256_file
from fxcli.batch.shard import parse_shard, shard
from fxcli.cli.app import app
from fxcli.io.audio import TEMP_MARK
from fxcli.io.paths import UsageError
from tests.conftest import SIMPLE_PRESET, noise, write_audio

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(ln) for ln in stdout.splitlines() if ln.startswith("{")]


def make_tree(root: Path, n: int = 5, frames: int = 3000) -> list[str]:
    """n short stereo files in two folders; returns their paths relative to root."""
    rels = []
    for i in range(n):
        rel = f"sub/f{i}.wav" if i % 2 else f"f{i}.flac" if i == 2 else f"f{i}.wav"
        write_audio(
            root / rel,
            0.4 * noise(2, frames + 17 * i, i),
            44100,
            "PCM_16" if i == 2 else "PCM_24",
            "FLAC" if rel.endswith("flac") else None,
        )
        rels.append(rel)
    return sorted(rels)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def preset(tmp_path: Path) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(SIMPLE_PRESET)
    return p


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    make_tree(tmp_path / "in")
    return tmp_path / "in"


@pytest.fixture
def reference(tmp_path: Path, tree: Path, preset: Path) -> dict[str, bytes]:
    """Outputs of a plain local single-device run (what every other mode must match)."""
    r = run("process", tree, tmp_path / "ref", "-p", preset, "--device", "cpu")
    assert r.exit_code == 0, r.output
    out = tree_bytes(tmp_path / "ref")
    assert len(out) == 5
    return out


# --------------------------------------------------------------------------- shards


@pytest.mark.parametrize("spec", ["3/3", "a/b", "-1/3", "1/0", "1", "1/2/3", ""])
def test_parse_shard_rejects(spec: str) -> None:
    with pytest.raises(UsageError, match="^shard ") as err:
        parse_shard(spec)
    # library words in the library; the CLI names the flag
    from fxcli.cli.options import cli_text

    assert err.value.option == "shard" and cli_text(err.value).startswith("--shard ")


def test_shards_partition_the_sorted_list() -> None:
    """Guards: N shards together hold every item exactly once (N = 1..5), disjoint,
    sizes within one, independent of the input order."""
    items = [f"d{i % 3}/f{i:03d}.wav" for i in range(23)]
    rng = np.random.default_rng(0)
    for n in range(1, 6):
        parts = [shard(items, k, n, key=str) for k in range(n)]
        shuffled = [shard(list(rng.permutation(items)), k, n, key=str) for k in range(n)]
        assert parts == shuffled  # deterministic whatever the listing order
        flat = [x for p in parts for x in p]
        assert sorted(flat) == sorted(items) and len(flat) == len(set(flat))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parse_shard(" 2 / 5 ") == (2, 5)


def test_cli_shards_write_every_file_once(
    tmp_path: Path, tree: Path, preset: Path, reference: dict[str, bytes]
) -> None:
    """Guards: `--shard K/N` runs into one OUTPUT write each file exactly once, and the
    union equals the unsharded run; a bad K/N is a usage error (exit 2)."""
    out = tmp_path / "sharded"
    seen: list[str] = []
    for k in range(3):
        r = run(
            "process", tree, out, "-p", preset, "--device", "cpu", "--shard", f"{k}/3", "--json"
        )
        assert r.exit_code == 0, r.output
        seen += [Path(d["output"]).relative_to(out).as_posix() for d in json_lines(r.stdout)]
    assert sorted(seen) == sorted(reference) and len(seen) == len(set(seen))
    assert tree_bytes(out) == reference
    r = run("process", tree, tmp_path / "x", "-p", preset, "--shard", "3/3")
    assert r.exit_code == 2 and "--shard" in r.stderr


# --------------------------------------------------------------------------- manifest


def test_manifest_tolerates_a_truncated_last_line(tmp_path: Path) -> None:
    """Guards: a line cut short by a crash is skipped on reading, and the next append
    starts a new line (the record after it stays readable)."""
    m = tmp_path / "m.jsonl"
    good = {"input": "a", "output": "b", "status": "ok", "input_sha256": "1"}
    m.write_text(json.dumps(good) + "\n" + '{"input": "c", "output": "d", "sta')
    man = Manifest(m)
    assert man.bad_lines == 1 and man.latest("a", "b") == good and man.latest("c", "d") is None
    man.append({"input": "c", "output": "d", "status": "ok"})
    again = Manifest(m)
    assert again.latest("c", "d") == {"input": "c", "output": "d", "status": "ok"}
    assert again.bad_lines == 1 and len(again) == 2
    assert m.read_text().count("\n") == 3


def test_config_digest_tracks_content_not_formatting(tmp_path: Path) -> None:
    """Guards: the preset hash changes with any value that changes the output and not
    with comments, key order or the description."""
    from fxcli.preset.loader import parse_preset

    a = parse_preset(SIMPLE_PRESET, "a")
    b = parse_preset(
        "# comment\nversion: 1\ndescription: other\nchain:\n"
        "  - {order: 2, cutoff_hz: 100, type: highpass}\n  - {type: gain, gain_db: -3}\n",
        "b",
    )
    c = parse_preset(SIMPLE_PRESET.replace("-3", "-2"), "c")
    opts = {"format": "same", "subtype": "same", "nonfinite": "error"}
    assert config_digest(a, opts) == config_digest(b, opts)
    assert config_digest(a, opts) != config_digest(c, opts)
    assert config_digest(a, opts) != config_digest(a, {**opts, "subtype": "PCM_16"})
    rec = {"status": "ok", "input_sha256": "x", "config_sha256": "y", "output_bytes": 10}
    assert is_done(rec, "x", "y", 10)
    assert not is_done(rec, "x2", "y", 10) and not is_done(rec, "x", "y2", 10)
    assert not is_done(rec, "x", "y", None) and not is_done(rec, "x", "y", 9)


class Crash(BaseException):
    """Stands for the process dying (kill -9) between two files."""


def crash_after(monkeypatch: pytest.MonkeyPatch, n_ok: int) -> list[str]:
    """Let the engine finish ``n_ok`` files, then 'kill' the run on the next one."""
    from fxcli.engine.runner import Engine

    original = Engine.process
    done: list[str] = []

    def process(self, job, progress=None):
        if len(done) >= n_ok:
            raise Crash()
        res = original(self, job, progress)
        done.append(str(job.src))
        return res

    monkeypatch.setattr(Engine, "process", process)
    return done


def test_interrupted_run_resumes_from_manifest(
    tmp_path: Path,
    tree: Path,
    preset: Path,
    reference: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Guards: after a run dies after its first file (with a torn manifest line), a
    rerun with the manifest processes only the other files; the result equals an
    uninterrupted run; a changed input or preset is redone."""
    out, man = tmp_path / "out", tmp_path / "run.jsonl"
    args = [
        "process",
        tree,
        out,
        "-p",
        preset,
        "--device",
        "cpu",
        "--jobs",
        "1",
        "--manifest",
        man,
        "--json",
    ]
    with monkeypatch.context() as mp:
        done = crash_after(mp, 1)
        with pytest.raises(Crash):
            run(*args)
    assert len(done) == 1
    lines = man.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["status"] == "ok"
    with open(man, "ab") as f:  # the crash also tore the next line
        f.write(b'{"v":1,"input":"' + str(tree).encode())
    first_out = out / json.loads(lines[0])["output"].split(str(out) + "/")[1]
    stamp = first_out.stat().st_mtime_ns

    r = run(*args)
    assert r.exit_code == 0, r.output
    res = json_lines(r.stdout)
    assert [d["status"] for d in res].count("skipped") == 1
    assert sum(d["status"] == "ok" for d in res) == 4
    assert first_out.stat().st_mtime_ns == stamp  # not written twice
    assert tree_bytes(out) == reference
    recs = [json.loads(x) for x in man.read_text().splitlines() if x.endswith("}")]
    ok = [x for x in recs if x["status"] == "ok"]
    assert len(ok) == 5 and {x["input"] for x in ok} == {str(p) for p in tree.rglob("*.*")}
    for x in ok:
        assert x["input_sha256"] == sha256_file(x["input"])
        assert x["output_bytes"] == Path(x["output"]).stat().st_size
        assert x["timings_s"]["engine_s"] > 0 and x["frames"] > 0

    # everything finished: nothing is redone
    r = run(*args)
    assert [d["status"] for d in json_lines(r.stdout)] == ["skipped"] * 5
    # a changed input is redone (its stale output replaced only with --overwrite)
    changed = tree / "f0.wav"
    write_audio(changed, 0.2 * noise(2, 2000, 9), 44100)
    r = run(*args, "--overwrite")
    st = {Path(d["input"]).name: d["status"] for d in json_lines(r.stdout)}
    assert st["f0.wav"] == "ok" and sum(v == "skipped" for v in st.values()) == 4
    # a changed preset redoes every file
    preset.write_text(SIMPLE_PRESET.replace("-3", "-4"))
    r = run(*args, "--overwrite")
    assert [d["status"] for d in json_lines(r.stdout)] == ["ok"] * 5


# --------------------------------------------------------------------------- devices


def test_device_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from fxcli.batch.devices import parse_devices

    assert parse_devices("cpu,cpu") == [torch.device("cpu")] * 2
    assert parse_devices("cpu") == [torch.device("cpu")]
    for bad in ["cpu,,cpu", "auto,cpu", "tpu"]:
        with pytest.raises(UsageError, match="^device ") as err:
            parse_devices(bad)
        assert err.value.option == "device"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="cuda:all"):
        parse_devices("cuda:all")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert parse_devices("cuda:all") == [torch.device("cuda", i) for i in range(3)]


def test_files_spread_across_device_list(
    tmp_path: Path,
    tree: Path,
    preset: Path,
    reference: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Guards: `--device cpu,cpu,cpu` runs one Engine per listed device, every engine
    gets files, and the outputs equal the single-device run."""
    from fxcli.batch import executors

    used: dict[int, int] = {}
    lock = threading.Lock()
    original = executors.run_task

    def spy(task, engine, opts, **kw):
        with lock:
            used[id(engine)] = used.get(id(engine), 0) + 1
        time.sleep(0.05)  # keep each worker busy so every thread takes a file
        return original(task, engine, opts, **kw)

    monkeypatch.setattr(executors, "run_task", spy)
    r = run(
        "process", tree, tmp_path / "multi", "-p", preset, "--device", "cpu,cpu,cpu", "--jobs", "1"
    )
    assert r.exit_code == 0, r.output
    assert len(used) == 3 and sum(used.values()) == 5
    assert tree_bytes(tmp_path / "multi") == reference


# --------------------------------------------------------------------------- memory://


@pytest.fixture
def memfs():
    fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed")
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
    yield fs
    fs.store.clear()


def upload_tree(fs, local: Path, prefix: str) -> None:
    for p in sorted(local.rglob("*")):
        if p.is_file():
            fs.pipe_file(f"{prefix}/{p.relative_to(local).as_posix()}", p.read_bytes())
    fs.pipe_file(f"{prefix}/notes.txt", b"not audio")


def remote_tree(fs, prefix: str) -> dict[str, bytes]:
    return {f[len(prefix) :].lstrip("/"): fs.cat_file(f) for f in sorted(fs.find(prefix))}


def test_memory_urls_in_and_out(
    tmp_path: Path, tree: Path, preset: Path, reference: dict[str, bytes], memfs
) -> None:
    """Guards: fsspec URLs as INPUT and OUTPUT (remote -> remote, local -> remote,
    remote -> local, a remote glob) give the same bytes as a local run, leave no
    temporary key, and skip non-audio objects."""
    upload_tree(memfs, tree, "/bucket/in")
    r = run(
        "process",
        "memory://bucket/in",
        "memory://bucket/out",
        "-p",
        preset,
        "--device",
        "cpu",
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert remote_tree(memfs, "/bucket/out") == reference
    assert "1 non-audio files ignored" in r.stderr
    assert all(d["output"].startswith("memory://bucket/out/") for d in json_lines(r.stdout))

    r = run("process", tree, "memory://bucket/out2", "-p", preset, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert remote_tree(memfs, "/bucket/out2") == reference

    r = run("process", "memory://bucket/in", tmp_path / "back", "-p", preset, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert tree_bytes(tmp_path / "back") == reference

    r = run(
        "process",
        "memory://bucket/in/sub/*.wav",
        "memory://bucket/g",
        "-p",
        preset,
        "--device",
        "cpu",
    )
    assert r.exit_code == 0, r.output
    assert remote_tree(memfs, "/bucket/g") == {
        k.split("/", 1)[1]: v for k, v in reference.items() if k.startswith("sub/")
    }
    # an existing output is refused (exit 1) unless --overwrite / --skip-existing
    r = run("process", "memory://bucket/in", "memory://bucket/out", "-p", preset)
    assert r.exit_code == 1 and "exists" in r.stderr
    r = run("process", "memory://bucket/in", "memory://bucket/out", "-p", preset, "--skip-existing")
    assert r.exit_code == 0
    assert not [k for k in memfs.find("/bucket") if TEMP_MARK in k]
    r = run("process", "memory://bucket/nothing", "memory://bucket/o", "-p", preset)
    assert r.exit_code == 2 and "no such object" in r.stderr


def test_upload_commits_atomically(tmp_path: Path, memfs, monkeypatch) -> None:
    """Guards: the final key appears only by the commit move; a failed commit leaves
    neither the final key nor the temporary one."""
    src = tmp_path / "x.bin"
    src.write_bytes(b"\x01" * 1000)
    remote.upload_atomic(src, "memory://b/o/x.bin")
    assert memfs.cat_file("/b/o/x.bin") == b"\x01" * 1000
    assert memfs.find("/b/o") == ["/b/o/x.bin"]

    seen: list[list[str]] = []

    def broken_mv(self, path1, path2, **kw):
        seen.append(self.find("/b/o"))
        raise OSError("connection reset")

    monkeypatch.setattr(type(memfs), "mv", broken_mv)
    with pytest.raises(OSError, match="connection reset"):
        remote.upload_atomic(src, "memory://b/o/y.bin")
    assert any(TEMP_MARK in k for k in seen[0]) and "/b/o/y.bin" not in seen[0]
    assert memfs.find("/b/o") == ["/b/o/x.bin"]
    # leftovers of a lost attempt are removed by a retry's cleanup
    memfs.pipe_file("/b/o/.y.bin.0123456789ab" + TEMP_MARK, b"half")
    memfs.pipe_file("/b/o/.y.bin.z.bin.0123456789ab" + TEMP_MARK, b"another file's")
    assert remote.remove_stale_temps("memory://b/o/y.bin") == 1
    assert len(memfs.find("/b/o")) == 2
    assert remote.temp_key("/b/o/y.bin").startswith("/b/o/.y.bin.")
    # local outputs: AtomicWriter's names only, not a longer file name's
    (tmp_path / f".x.bin.123.0123abcd{TEMP_MARK}").write_bytes(b"half")
    (tmp_path / f".x.bin.y.bin.123.0123abcd{TEMP_MARK}").write_bytes(b"other")
    assert remote.remove_stale_temps(str(tmp_path / "x.bin")) == 1
    assert (tmp_path / f".x.bin.y.bin.123.0123abcd{TEMP_MARK}").exists()


def test_spool_bounds_bytes_in_flight() -> None:
    """Guards: reservations wait while the spool is full (peak <= bound), and one file
    larger than the bound still runs alone instead of deadlocking."""
    spool = remote.Spool(max_bytes=100)
    try:

        def worker(n: int) -> None:
            with spool.reserve(n) as d:
                assert d.is_dir() and spool.used <= max(100, n)
                time.sleep(0.02)

        threads = [threading.Thread(target=worker, args=(40,)) for _ in range(8)]
        threads.append(threading.Thread(target=worker, args=(250,)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert spool.peak <= 250 and spool.used == 0
        assert not any(t.is_alive() for t in threads)
    finally:
        spool.close()


# --------------------------------------------------------------------------- S3 (moto)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    """A local S3-compatible server (moto's server mode, offline) with bucket ``bkt``;
    fsspec's ``s3://`` pointed at it."""
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install s3fs)")
    moto_server = pytest.importorskip(
        "moto.server", reason="moto's server mode is not installed (pip install 'moto[server]')"
    )
    import fsspec.config
    import s3fs

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setitem(
        fsspec.config.conf, "s3", {"endpoint_url": f"http://{host}:{port}", "anon": False}
    )
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(endpoint_url=f"http://{host}:{port}")
    fs.mkdir("bkt")
    try:
        yield fs
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def test_s3_in_and_out_resumed_from_manifest(
    tmp_path: Path,
    tree: Path,
    preset: Path,
    reference: dict[str, bytes],
    s3,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Guards: S3 as input and output through a local server, a run killed
    after its first file, resumed from the manifest: only the rest is processed, the
    bucket then equals a local run, no temporary key is left, and a rerun of a
    finished manifest skips every file without downloading it (ETag fingerprint)."""
    for p in sorted(tree.rglob("*")):
        if p.is_file():
            s3.pipe_file(f"bkt/in/{p.relative_to(tree).as_posix()}", p.read_bytes())
    man = tmp_path / "s3.jsonl"
    args = [
        "process",
        "s3://bkt/in/",
        "s3://bkt/out/",
        "-p",
        preset,
        "--device",
        "cpu",
        "--jobs",
        "1",
        "--manifest",
        man,
        "--json",
    ]
    with monkeypatch.context() as mp:
        done = crash_after(mp, 1)
        with pytest.raises(Crash):
            run(*args)
    assert len(done) == 1 and len(man.read_text().splitlines()) == 1
    s3.invalidate_cache()
    assert len(s3.find("bkt/out")) == 1

    r = run(*args)
    assert r.exit_code == 0, r.output
    assert sorted(d["status"] for d in json_lines(r.stdout)) == ["ok"] * 4 + ["skipped"]
    s3.invalidate_cache()
    got = {k[len("bkt/out/") :]: s3.cat_file(k) for k in sorted(s3.find("bkt/out"))}
    assert got == reference
    assert not [k for k in s3.find("bkt") if TEMP_MARK in k]

    fetched: list[str] = []
    monkeypatch.setattr(remote, "fetch", lambda url, local: fetched.append(url))
    r = run(*args)
    assert [d["status"] for d in json_lines(r.stdout)] == ["skipped"] * 5 and not fetched


# --------------------------------------------------------------------------- Ray


@pytest.fixture(scope="module")
def ray_local():
    """A local CPU-only Ray cluster with 2 worker CPUs, shared by the Ray tests."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'fxcli[ray]')")
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_ray_executor_matches_local(
    tmp_path: Path, tree: Path, preset: Path, reference: dict[str, bytes], ray_local
) -> None:
    """Guards: `--executor ray` (--device auto: the cluster has no GPU, so cpu) writes
    the same bytes as the local executor, streams one result per file to the
    driver's report, and records them in the manifest."""
    man = tmp_path / "ray.jsonl"
    r = run(
        "process",
        tree,
        tmp_path / "ray",
        "-p",
        preset,
        "--executor",
        "ray",
        "--manifest",
        man,
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert tree_bytes(tmp_path / "ray") == reference
    res = json_lines(r.stdout)
    assert len(res) == 5 and all(d["status"] == "ok" for d in res)
    assert len(Manifest(man)) == 5
    r = run(
        "process",
        tree,
        tmp_path / "ray",
        "-p",
        preset,
        "--executor",
        "ray",
        "--manifest",
        man,
        "--json",
    )
    assert [d["status"] for d in json_lines(r.stdout)] == ["skipped"] * 5


def test_ray_lost_worker_is_retried(tmp_path: Path, tree: Path, preset: Path, ray_local) -> None:
    """Guards: a worker killed in the middle of a file (after its first chunk was
    written to the temporary file) makes the driver retry the file; the outputs
    are complete and equal the local executor's, and no temporary file is left."""
    from fxcli.batch.executors import EngineConfig, fault_marker, run_ray
    from fxcli.batch.work import WorkOptions
    from fxcli.preset.loader import load_preset

    r = run(
        "process",
        tree,
        tmp_path / "local",
        "-p",
        preset,
        "--device",
        "cpu",
        "--chunk-seconds",
        "0.01",
    )
    assert r.exit_code == 0, r.output
    want = tree_bytes(tmp_path / "local")
    tasks = remote.collect_tasks([str(tree)], str(tmp_path / "out"), None, None).tasks
    faults = tmp_path / "faults"
    faults.mkdir()
    doomed = tasks[:2]
    for t in doomed:
        fault_marker(str(faults), t).write_text("die once")
    results = []
    run_ray(
        tasks,
        EngineConfig(load_preset(str(preset)), chunk_seconds=0.01),
        WorkOptions(config_sha256="x"),
        device="cpu",
        on_result=lambda res, rec: results.append(res),
        _fault_dir=str(faults),
    )
    assert sorted(r.status for r in results) == ["ok"] * 5
    retried = {r.input for r in results if any("retried 1 time" in n for n in r.notes)}
    assert retried == {t.src for t in doomed}
    assert not list(faults.iterdir())  # every doomed worker did die once
    assert tree_bytes(tmp_path / "out") == want


def test_files_per_device_feeds_gpus() -> None:
    """Guards: one device keeps the engine's default; several GPUs share the CPU cores
    out (2 per file in flight), within [single-GPU default, 8] and the file count."""
    import torch

    from fxcli.batch.devices import files_per_device
    from fxcli.engine.device import default_jobs

    cpu, gpus = torch.device("cpu"), [torch.device("cuda", i) for i in range(4)]
    assert files_per_device([cpu], 100) == default_jobs(cpu, 100)
    assert files_per_device([cpu, cpu], 100, cpus=64) == default_jobs(cpu, 100)
    assert files_per_device(gpus[:1], 100, cpus=64) == 2
    assert files_per_device(gpus, 1000, cpus=48) == 6  # 48 cores / (2 x 4 GPUs)
    assert files_per_device(gpus, 1000, cpus=8) == 2
    assert files_per_device(gpus, 1000, cpus=512) == 8
    assert files_per_device(gpus, 5, cpus=48) == 2  # 5 files over 4 GPUs


def test_executor_usage_errors(
    tmp_path: Path, tree: Path, preset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards: executor options are checked before any file is touched (exit 2), and
    Ray is never imported by a local run; a missing Ray is a usage error naming the
    extra."""
    import sys

    out = tmp_path / "o"
    base = ["process", tree, out, "-p", preset]
    for extra, msg in [
        (["--executor", "dask"], "--executor"),
        (["--address", "auto"], "--address needs --executor ray"),
        (["--executor", "ray", "--device", "cuda:0,cuda:1"], "with --executor ray"),
        (["--spool-gb", "0"], "--spool-gb"),
    ]:
        r = run(*base, *extra)
        assert r.exit_code == 2 and msg in r.stderr, (extra, r.stderr)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    r = run(*base, "--executor", "ray")
    assert r.exit_code == 2 and "fxcli[ray]" in r.stderr
    assert not out.exists()
    r = run(*base, "--device", "cpu")
    assert r.exit_code == 0, r.output
