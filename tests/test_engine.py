"""Engine behaviours: OOM retry from saved state, pipelining helpers, chunk planning."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fxcli.engine import runner
from fxcli.engine.device import chunk_frames, resolve_device
from fxcli.engine.pipeline import WriteBehind, prefetch
from fxcli.io.paths import Job, UsageError
from fxcli.preset.loader import load_preset
from tests.conftest import noise, write_audio


def _engine(preset: Path, **kw) -> runner.Engine:
    return runner.Engine(load_preset(str(preset)), torch.device("cpu"), **kw)


def test_oom_mid_file_retries_from_saved_state(
    tmp_path: Path, simple_preset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_audio(tmp_path / "x.wav", 0.4 * noise(2, 30000, seed=4), 44100, "FLOAT")
    clean = _engine(simple_preset, chunk_seconds=0.25).process(Job(src, tmp_path / "a.wav"))
    assert clean.status == "ok" and clean.notes == []

    real = runner.run_chain_checked
    calls = {"oom": 0}

    def flaky(steps, x, states, offset):
        if x.shape[-1] > 3000:
            calls["oom"] += 1
            raise torch.OutOfMemoryError("injected")
        return real(steps, x, states, offset)

    monkeypatch.setattr(runner, "run_chain_checked", flaky)
    res = _engine(simple_preset, chunk_seconds=0.25).process(Job(src, tmp_path / "b.wav"))
    assert res.status == "ok" and calls["oom"] >= 1
    assert any("out of device memory" in n for n in res.notes)
    a, _ = sf.read(str(tmp_path / "a.wav"), dtype="float32")
    b, _ = sf.read(str(tmp_path / "b.wav"), dtype="float32")
    assert np.array_equal(a, b)


def test_oom_even_for_tiny_chunks_fails_cleanly(
    tmp_path: Path, simple_preset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_audio(tmp_path / "x.wav", 0.4 * noise(1, 5000), 44100, "PCM_16")

    def always(*a, **k):
        raise torch.OutOfMemoryError("injected")

    monkeypatch.setattr(runner, "run_chain_checked", always)
    res = _engine(simple_preset).process(Job(src, tmp_path / "o" / "x.wav"))
    assert res.status == "failed" and "out of device memory" in res.error
    assert not (tmp_path / "o" / "x.wav").exists()
    assert list((tmp_path / "o").glob("*")) == []


def test_prefetch_order_errors_and_early_close() -> None:
    assert list(prefetch(lambda: iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise OSError("disk gone")

    it = prefetch(broken)
    assert next(it) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(it)
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    gen = prefetch(endless)
    assert next(gen) == 0
    gen.close()
    assert closed.wait(5)


def test_write_behind_keeps_order_and_raises() -> None:
    seen: list[int] = []
    with WriteBehind(seen.append, depth=2) as wb:
        for i in range(20):
            wb.submit(i)
        wb.finish()
    assert seen == list(range(20))

    def boom(i: int) -> None:
        if i == 3:
            raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space"), WriteBehind(boom) as wb:
        for i in range(10):
            wb.submit(i)
        wb.finish()


def test_chunk_planning_and_devices() -> None:
    cpu = torch.device("cpu")
    assert chunk_frames(cpu, 48000, 2, 0.5) == 24000
    assert chunk_frames(cpu, 48000, 2, None) == 480000
    assert chunk_frames(cpu, 8000, 1, 1e-9) == 1
    assert resolve_device("cpu") == cpu and resolve_device("AUTO").type in ("cpu", "cuda")
    with pytest.raises(UsageError, match="allowed"):
        resolve_device("gpu0")
