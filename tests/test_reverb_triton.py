"""Freeverb on the device (fxcli.dsp.reverb_triton) against the compiled CPU kernel
(issue 17: "On CUDA, the compressor, limiter and reverb recurrences hop to the CPU").

Runs the Triton program under Triton's interpreter in a subprocess (see
tests/conftest.py) at a low rate (comb lines of 25-36 frames, so 80 frames wrap
each of them twice): stereo (spread lengths) and mono rows, streamed in chunks carrying
the state; output and every state array equal the CPU kernel's bit for bit there.
The ``cuda`` test runs the Reverb step on a GPU.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from tests.conftest import run_triton_checks

pytest.importorskip("triton")

_CHECKS = textwrap.dedent(
    r"""
    import torch
    from fxcli.dsp import reverb as RV
    from fxcli.dsp.reverb_triton import freeverb_device

    rng = np.random.default_rng(0)

    def compare(batch, stereo, cut, feedback, damp):
        fs = 1000.0
        x = torch.from_numpy(rng.standard_normal((*batch, 80)))
        st = RV.freeverb_state(fs, batch, stereo)
        ref, rst = RV.freeverb(x, st, feedback, damp)
        rows = int(np.prod(batch))
        s2, parts = st, []
        for lo in range(0, 80, cut):
            w, s2 = freeverb_device(x[..., lo : lo + cut].reshape(rows, -1), s2, feedback, damp)
            parts.append(w)
        got = torch.cat(parts, -1).reshape(ref.shape)
        assert torch.equal(got, ref), float((got - ref).abs().max())
        for k in rst:
            assert torch.equal(s2[k], rst[k]), k
        assert all(torch.equal(st[k], RV.freeverb_state(fs, batch, stereo)[k]) for k in st)

    check("stereo-chunks", lambda: compare((1, 2), True, 29, 0.84, 0.2))
    check("mono-whole", lambda: compare((1,), False, 80, 0.98, 0.0))
    report()
    """
)


def test_device_freeverb_equals_cpu_kernel_under_interpreter() -> None:
    results = run_triton_checks(_CHECKS, timeout=600)
    assert set(results) == {"stereo-chunks", "mono-whole"}, results
    assert not any(results.values()), results


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_reverb_step_equals_cpu() -> None:
    from fxcli.steps.space import Reverb

    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 96_000)) * 0.1)
    step = Reverb(room_size=0.8, width=0.7, fs=48000.0)
    ref, _ = step.process(x, step.init_state((2,), "cpu"))
    got, st = step.process(x.cuda(), step.init_state((2,), "cuda"))
    assert st["comb_buf"].device.type == "cuda"
    torch.testing.assert_close(got.cpu(), ref, rtol=0, atol=1e-9)
