"""Chunked processing equals whole-file processing for every step type.

Bit-identical for IIR cascades on CPU (same arithmetic per sample), within float
rounding otherwise. Chunk sizes: 1, 7, 4097 frames and one larger than the file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fxcli.engine.runner import process_array
from fxcli.steps import fuse
from tests.conftest import noise
from tests.test_steps_vs_scipy import CASES, build, case_id

CHUNKS = [1, 7, 4097, 10**6]


@pytest.mark.parametrize("step", CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunk_invariance(step: dict, dtype: type) -> None:
    fs = 44100
    x = torch.from_numpy(noise(2, 9000, seed=11, dtype=dtype))
    s = build(step, fs)
    whole = process_array([s], x)
    for chunk in CHUNKS:
        if chunk == 1 and step["type"] == "fir" and step.get("taps", 0) > 100:
            chunk = 3  # same property, a third of the Python calls
        part = process_array([s], x, chunk=chunk)
        if step["type"] in ("fir",):
            tol = 1e-6 if dtype == np.float32 else 1e-12
            torch.testing.assert_close(part, whole, rtol=0, atol=tol)
        else:
            assert torch.equal(part, whole), f"chunk {chunk} differs"


def test_chain_with_normalize_chunk_invariant() -> None:
    steps = [
        build(c, 48000)
        for c in (
            {"type": "highpass", "cutoff_hz": 40, "order": 4},
            {"type": "peaking", "freq_hz": 300, "gain_db": -2, "q": 1},
            {"type": "fir", "taps": 65, "cutoff_hz": 12000},
            {"type": "normalize", "peak_db": -3},
            {"type": "gain", "gain_db": 1.0},
        )
    ]
    x = torch.from_numpy(noise(2, 20000, seed=5))
    whole = process_array(steps, x)
    for chunk in (7, 4097):
        torch.testing.assert_close(process_array(steps, x, chunk=chunk), whole, rtol=0, atol=1e-6)
    peak = float(whole.abs().max())
    assert abs(20 * np.log10(peak) - (-3 + 1.0)) < 1e-4


def test_fused_equals_unfused() -> None:
    fs = 44100
    cfgs = [
        {"type": "highpass", "cutoff_hz": 1000},
        {"type": "gain", "gain_db": -2},
        {"type": "lowpass", "cutoff_hz": 5000},
        {"type": "fir", "taps": 101, "cutoff_hz": 1000},
        {"type": "fir", "taps": 102, "cutoff_hz": 5000},
        {"type": "gain", "gain_db": 3},
    ]
    steps = [build(c, fs) for c in cfgs]
    fused = fuse(steps)
    assert len(fused) == 3  # iir+gain+iir | fir+fir | gain
    x = torch.from_numpy(noise(3, 5000, seed=2, dtype=np.float64))
    y_unfused = x
    for s in steps:
        y_unfused = s(y_unfused)
    y_fused = x
    for s in fused:
        y_fused = s(y_fused)
    torch.testing.assert_close(y_fused, y_unfused, rtol=0, atol=1e-12)


def test_step_calls_are_stateless() -> None:
    s = build({"type": "lowpass", "cutoff_hz": 2000, "order": 4}, 44100)
    x = torch.from_numpy(noise(1, 1000, seed=1))
    assert torch.equal(s(x), s(x))
