"""Delay (feedback echo): numpy-loop reference, echo amplitudes, chunk invariance, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fxcli.steps.delay import Delay
from tests.conftest import noise, run_chunked


def reference(x: np.ndarray, d: int, g: float, mix: float) -> np.ndarray:
    """The definition, one sample at a time (float64)."""
    x = x.astype(np.float64)
    wet = np.zeros_like(x)
    for n in range(d, x.shape[-1]):
        wet[..., n] = x[..., n - d] + g * wet[..., n - d]
    return (1 - mix) * x + mix * wet


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_matches_loop_reference(dtype, channels):
    # guards: the blocked computation equals the sample-by-sample definition
    fs = 8000.0
    x = noise(channels, 3000, seed=channels, dtype=dtype)
    step = Delay(time_ms=13.0, feedback=0.7, mix=0.4, fs=fs)
    assert step.delay_frames == 104
    y = step(torch.from_numpy(x))
    assert y.dtype == torch.from_numpy(x).dtype and y.shape == x.shape
    ref = reference(x, 104, 0.7, 0.4)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y.numpy(), ref, atol=tol, rtol=0)


def test_impulse_echoes():
    # guards: echoes at multiples of D with amplitudes mix * feedback**(k-1), nothing else
    fs, d, g, mix = 1000.0, 37, 0.5, 0.8
    x = torch.zeros(1, 400, dtype=torch.float64)
    x[0, 0] = 1.0
    y = Delay(time_ms=37.0, feedback=g, mix=mix, fs=fs)(x)[0].numpy()
    expect = np.zeros(400)
    expect[0] = 1 - mix
    for k in range(1, 400 // d + 1):
        expect[k * d] = mix * g ** (k - 1)
    np.testing.assert_allclose(y, expect, atol=1e-15, rtol=0)


def test_wet_only_zero_feedback_is_pure_delay():
    # guards: mix=1, feedback=0 shifts the signal by exactly D frames
    x = torch.from_numpy(noise(2, 500, seed=5, dtype=np.float64))
    y = Delay(time_ms=10.0, feedback=0.0, mix=1.0, fs=1000.0)(x)
    torch.testing.assert_close(y[:, 10:], x[:, :-10], rtol=0, atol=0)
    assert bool((y[:, :10] == 0).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("time_ms", [0.125, 5.0, 300.0])
def test_chunk_invariance(dtype, time_ms):
    # guards: carried state makes any chunking equal one pass, bit for bit
    fs = 8000.0
    x = torch.from_numpy(noise(2, 5000, seed=3)).to(dtype)
    step = Delay(time_ms=time_ms, feedback=0.9, mix=0.6, fs=fs)
    whole = step(x)
    for chunk in (1, 7, 4097, 6000):
        if chunk == 1 and time_ms > 1:
            x_c = x[:, :600]  # per-frame calls are slow; a prefix still crosses D
            assert torch.equal(run_chunked(step, x_c, 1), step(x_c))
            continue
        assert torch.equal(run_chunked(step, x, chunk), whole), chunk


def test_state_not_mutated():
    # guards: the engine may retry a chunk from the same state
    step = Delay(time_ms=2.0, feedback=0.5, fs=1000.0)
    x = torch.from_numpy(noise(1, 50, dtype=np.float64))
    st = step.init_state((1,), "cpu")
    _, st1 = step.process(x, st)
    before = [t.clone() for t in st1]
    step.process(x, st1)
    assert all(torch.equal(a, b) for a, b in zip(before, st1, strict=True))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"time_ms": 0.0}, "time_ms: got 0; allowed: a number > 0"),
        ({"time_ms": 0.01}, "shorter than one frame"),
        ({"feedback": 1.0}, "feedback: got 1; allowed: a number >= 0 and <= 0.99"),
        ({"feedback": -0.1}, "feedback"),
        ({"mix": 1.5}, "mix: got 1.5; allowed: a number >= 0 and <= 1"),
    ],
)
def test_validation(kwargs, match):
    # guards: one-line ValueError naming the key
    with pytest.raises(ValueError, match=match):
        Delay(**kwargs, fs=48000.0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.from_numpy(noise(2, 3000, seed=9))
    step = Delay(time_ms=3.0, feedback=0.6, fs=8000.0)
    torch.testing.assert_close(step(x.cuda()).cpu(), step(x), rtol=0, atol=1e-6)
