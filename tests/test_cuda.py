"""GPU checks: run only where CUDA is available (marked `cuda`, skipped elsewhere).

CI has no GPU; sessions that are lent one run `pytest -m cuda` and report the result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from fxcli.cli.app import app
from fxcli.engine.device import chunk_frames, resolve_device
from fxcli.engine.runner import process_array
from fxcli.preset.build import build_step
from fxcli.preset.loader import load_preset
from tests.conftest import noise, write_audio

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("preset", ["iir_chain", "fir_chain", "api_chain", "mastering", "voice"])
def test_cuda_chain_matches_cpu(preset: str) -> None:
    fs = 48000
    steps = [build_step(c, fs) for c in load_preset(preset).steps]
    x = torch.from_numpy(noise(8, 200_000, seed=3))
    cpu = process_array(steps, x, chunk=65_536)
    gpu = process_array(
        [build_step(c, fs) for c in load_preset(preset).steps], x, chunk=65_536, device="cuda"
    ).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=0, atol=1e-6)


def test_cuda_chunk_invariance() -> None:
    steps = [build_step(c, 44100) for c in load_preset("iir_chain").steps]
    x = torch.from_numpy(noise(2, 100_000, seed=1))
    whole = process_array(steps, x, device="cuda")
    for chunk in (7, 4097):
        torch.testing.assert_close(
            process_array(steps, x, chunk=chunk, device="cuda"), whole, rtol=0, atol=1e-6
        )


def test_cli_device_cuda(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "in" / "x.wav", 0.3 * noise(2, 100_000), 44100, "PCM_24")
    r = CliRunner().invoke(
        app, ["process", str(src), str(tmp_path / "g"), "-p", "iir_chain", "--device", "cuda"]
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        app, ["process", str(src), str(tmp_path / "c"), "-p", "iir_chain", "--device", "cpu"]
    )
    a, _ = sf.read(str(tmp_path / "g" / "x.wav"), dtype="int32")
    b, _ = sf.read(str(tmp_path / "c" / "x.wav"), dtype="int32")
    assert np.max(np.abs(a.astype(np.int64) - b)) <= 256  # <= 1 LSB at 24 bits


def test_cuda_chunk_size_from_free_memory() -> None:
    dev = resolve_device("cuda")
    frames = chunk_frames(dev, 44100, 12, None)
    assert 4096 <= frames <= 1 << 24
