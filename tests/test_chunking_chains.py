"""issue 16: tiny chunks through chains of every step type equal whole-file results.

``--chunk-seconds 0.001`` with ``loudness`` before ``limiter`` failed with an internal
reshape error: the limiter's lookahead returns empty chunks at first, and the
loudness step's measuring pass could not fold an empty chunk. tests/test_chunking.py
checks each step alone through :func:`process_array`, whose measuring pass is one
whole-signal call; here the engine itself runs (measuring passes, the aiming
passes through a limiter, the writing pass, all chunked) for chains that put every
step type of :data:`fxcli.preset.spec.STEPS` before a ``loudness`` step that measures
it and aims through the ``limiter`` after it, in chunks of 1, 7 and 64 frames. Outputs are FLOAT
files (no dither) read back with soundfile.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fxcli.engine.runner import Engine
from fxcli.io.paths import Job
from fxcli.preset.loader import parse_preset
from fxcli.preset.spec import STEPS
from tests.conftest import ROOT, write_audio
from tests.test_torch_free import CHAIN

FS = 11025  # low, to keep the per-chunk Python loops short; frequencies below Nyquist
STEP_LINES = {
    **CHAIN,
    "lowpass": "{type: lowpass, cutoff_hz: 4000, order: 3, design: chebyshev1}",
    "highshelf": "{type: highshelf, freq_hz: 4000, gain_db: 1.5, slope: 1}",
    "convolve": "{type: convolve, ir_file: ir.wav, mix: 0.5}",
}


def _signal(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(3)
    n = int(seconds * FS)
    x = 0.1 * rng.standard_normal((3, n)) + 0.01
    x[:, n // 3] = 0.9  # a peak for the limiter
    return x.astype(np.float32)


def _run(tmp: Path, step_line: str, src: Path, chunk: int | None) -> np.ndarray:
    text = (
        "version: 1\noutput: {subtype: FLOAT}\nchain:\n"
        "  - {type: highpass, cutoff_hz: 40}\n"
        f"  - {step_line}\n"
        "  - {type: loudness, target_lufs: -14}\n"
        "  - {type: limiter, ceiling_db: -1.0, true_peak: true, lookahead_ms: 2}\n"
    )
    preset = parse_preset(text, str(tmp / "p.yaml"), tmp)
    seconds = None if chunk is None else chunk / FS
    engine = Engine(preset, torch.device("cpu"), chunk_seconds=seconds, overwrite="overwrite")
    dest = tmp / f"out-{chunk}.wav"
    res = engine.process(Job(src, dest))
    assert res.status == "ok", res.error
    y, fs = sf.read(str(dest), dtype="float64", always_2d=True)
    return y


def test_every_step_type_has_a_line_here() -> None:
    assert set(STEP_LINES) == set(STEPS)


@pytest.mark.parametrize("step_type", sorted(STEP_LINES))
def test_tiny_chunks_equal_whole_file_in_chains(tmp_path: Path, step_type: str) -> None:
    write_audio(tmp_path / "ir.wav", np.array([[1.0, 0.3, -0.2, 0.1]], np.float32), FS, "FLOAT")
    # long enough for a defined loudness (0.4 s, so the gain is aimed through the
    # limiter in several passes) with chunks of 7; chunks of 1 and 64 frames on a
    # shorter file (the Python loop per chunk is slow)
    long = write_audio(tmp_path / "long.wav", _signal(0.42), FS, "FLOAT")
    short = write_audio(tmp_path / "short.wav", _signal(0.03), FS, "FLOAT")
    line = STEP_LINES[step_type]
    for src, chunks in ((long, (7,)), (short, (1, 64))):
        whole = _run(tmp_path, line, src, None)
        for chunk in chunks:
            part = _run(tmp_path, line, src, chunk)
            assert part.shape == whole.shape, (step_type, chunk)
            np.testing.assert_allclose(part, whole, rtol=0, atol=2e-6, err_msg=f"chunk {chunk}")


def test_loudness_before_limiter_with_tiny_chunks_on_the_cli(tmp_path: Path) -> None:
    # the reported command: --chunk-seconds 0.001, loudness then limiter, torch-free path
    src = write_audio(tmp_path / "in.wav", _signal(0.6), FS, "FLOAT")
    preset = tmp_path / "p.yaml"
    preset.write_text(
        "version: 1\nchain:\n  - {type: loudness, target_lufs: -16}\n"
        "  - {type: limiter, ceiling_db: -1.0}\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    outs = {}
    for chunk in ("0.001", "10"):
        dest = tmp_path / f"o{chunk}.wav"
        r = subprocess.run(
            [sys.executable, "-m", "fxcli", "process", str(src), str(dest), "-p", str(preset)]
            + ["--chunk-seconds", chunk, "--device", "cpu"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr and "reshape" not in r.stderr
        outs[chunk] = sf.read(str(dest), dtype="float64")[0]
    np.testing.assert_allclose(outs["0.001"], outs["10"], rtol=0, atol=2e-6)
