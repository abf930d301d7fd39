"""The measuring pass's chunks kept for the loudness aim (issue 17: "fxcli reruns the
whole chain for each loudness aim, 1-6 extra passes through the limiter").

Guards: replayed chunks are bit-identical to the added ones, in memory and spilled to
the anonymous temporary file, for numpy arrays and tensors; a loudness step before a
limiter measures the chain before it once (not once per try); the aim reaches the
same loudness as measuring the whole chain again (within the aim's 0.05 LU); an
output written with the chunks spilled equals one written with them in memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
import torch

from fxcli.engine import replay as R

ROOT = Path(__file__).resolve().parents[1]


def _chunks(rng: np.random.Generator) -> list[np.ndarray]:
    sizes = (1, 4097, 3, 10_000, 0, 257)
    return [rng.standard_normal((2, n)).astype(np.float32) for n in sizes]


def test_replay_is_bit_identical_in_memory_and_spilled() -> None:
    rng = np.random.default_rng(1)
    chunks = _chunks(rng)
    for budget in (1 << 30, 0, 20_000):  # all in memory, all spilled, spilled part way
        with R.Replay(budget) as rp:
            for c in chunks:
                rp.add(c)
            for _ in range(2):  # replayed as often as needed
                got = list(rp)
                assert len(got) == len(chunks)
                for a, b in zip(got, chunks, strict=True):
                    assert a.dtype == b.dtype and a.shape == b.shape
                    np.testing.assert_array_equal(a, b)
            if budget == 0:
                assert rp.spilled == sum(c.nbytes for c in chunks)
            if budget == 1 << 30:
                assert rp.spilled == 0


def test_replay_of_tensors_keeps_dtype_and_device() -> None:
    rng = np.random.default_rng(2)
    chunks = [torch.from_numpy(c.astype(np.float64)) for c in _chunks(rng)]
    with R.Replay(0) as rp:
        for c in chunks:
            rp.add(c)
        for a, b in zip(rp, chunks, strict=True):
            assert isinstance(a, torch.Tensor) and a.dtype == torch.float64
            assert a.device == b.device
            assert torch.equal(a, b)


def test_budget_from_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(R.ENV_BUDGET, "3")
    assert R.budget_from_env() == 3 << 20
    for bad in ("x", "-1", "nan", ""):
        monkeypatch.setenv(R.ENV_BUDGET, bad)
        assert R.budget_from_env() == R.DEFAULT_BUDGET_BYTES


def _music(fs: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(5)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    env = 0.3 + 0.7 * np.abs(np.sin(2 * np.pi * 0.7 * t))
    x = rng.standard_normal((2, n)) * 0.05 * env
    x[:, :: fs // 4] += 0.9  # transients the limiter has to catch
    return x.astype(np.float32)


def test_the_chain_before_the_loudness_step_is_measured_once() -> None:
    """The aim tries several gains; each try used to rerun every step before the
    limiter from the start. Now the measuring pass runs once per analysis step."""
    from fxcli.engine.chain import flush_chain, init_states, run_chain
    from fxcli.engine.runner import resolve_analysis
    from fxcli.preset.build import build_chain
    from fxcli.preset.loader import load_preset

    fs = 48000
    x = torch.from_numpy(_music(fs, 6.0))
    steps = build_chain(load_preset("mastering").steps, fs, 2)
    passes = []

    def measure_pass(head):  # type: ignore[no-untyped-def]
        passes.append(len(head))
        y, st = run_chain(head, x, init_states(head, (2,), "cpu"))
        tail, _ = flush_chain(head, st, x.dtype)
        yield y if tail is None else torch.cat([y, tail], -1)

    resolved = resolve_analysis(steps, measure_pass, "cpu")
    assert len(passes) == 2, passes  # one per loudness step, none per aim try
    y, st = run_chain(resolved, x, init_states(resolved, (2,), "cpu"))
    tail, _ = flush_chain(resolved, st, x.dtype)
    out = torch.cat([y, tail], -1) if tail is not None else y
    lufs = pyloudnorm.Meter(fs).integrated_loudness(out.double().numpy().T)
    assert abs(lufs - (-14.0)) <= 0.05, lufs


def _run(src: Path, out: Path, env_extra: dict[str, str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    r = subprocess.run(
        [sys.executable, "-m", "fxcli", "process", str(src), str(out), "-p", "mastering",
         "--device", "cpu", "--chunk-seconds", "0.5", "--quiet"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_spilled_replay_writes_the_same_file(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    sf.write(src, _music(44100, 4.0).T, 44100, subtype="PCM_24")
    _run(src, tmp_path / "mem.wav", {})
    _run(src, tmp_path / "disk.wav", {R.ENV_BUDGET: "0"})
    assert (tmp_path / "mem.wav").read_bytes() == (tmp_path / "disk.wav").read_bytes()
    y, fs = sf.read(tmp_path / "mem.wav")
    assert abs(pyloudnorm.Meter(fs).integrated_loudness(y) + 14.0) <= 0.05


def test_the_writing_pass_reuses_the_kept_chunks(tmp_path: Path) -> None:
    """The writing pass of a chain ending in loudness -> limiter starts from the last
    measuring pass's kept chunks (and, when the aim settled on its last try, writes
    that try's output): the file is read by the measuring passes only, and the bytes
    equal the whole chain run again from the file
    (the library's process_array) for chains whose steps before the aimed gain do
    not fuse with it."""
    from fxcli.engine.runner import Engine, process_array
    from fxcli.io.paths import Job
    from fxcli.preset.build import build_chain
    from fxcli.preset.loader import load_preset

    fs = 44100
    x = _music(fs, 6.0)
    src = tmp_path / "in.wav"
    sf.write(src, x.T, fs, subtype="FLOAT")
    reads: list[int] = []
    engine = Engine(load_preset("mastering"), torch.device("cpu"), chunk_seconds=1.0)
    original = engine.read_chunks

    def counting(info, frames, res):  # type: ignore[no-untyped-def]
        reads.append(1)
        return original(info, frames, res)

    engine.read_chunks = counting  # type: ignore[method-assign]
    res = engine.process(Job(src, tmp_path / "out.wav"))
    assert res.status == "ok", res.error
    assert len(reads) == 2  # two loudness steps: two measuring passes, no third read
    y, _ = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    steps = build_chain(load_preset("mastering").steps, fs, 2)
    whole = process_array(steps, torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(y.T, whole)
    assert res.levels is not None and res.levels["input"]["lufs"] is not None
