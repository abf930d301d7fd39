"""Compressor / expander gain on the device (fxcli.dsp.dynamics_triton) against the
compiled CPU kernel (issue 17: "On CUDA, the compressor, limiter and reverb
recurrences hop to the CPU").

The CPU checks run the Triton programs under Triton's interpreter in a subprocess
(``TRITON_INTERPRET=1``, see tests/conftest.py), on small signals: every detector
(peak, rms), kind (compressor with and without a knee, makeup; expander and gate
with hold), linked and unlinked channels, streamed in chunks that carry the state;
the gain and the state equal the CPU kernel's to float64 rounding (the first
version passed its float parameters as Triton scalars, which Triton types as
float32: 6e-7 off). The ``cuda`` tests run the step chain on a GPU.
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
    from fxcli.dsp import dynamics as D
    from fxcli.dsp.dynamics_triton import dynamics_gain_device

    rng = np.random.default_rng(0)
    FS = 8000.0
    X = rng.standard_normal((2, 3, 160)) * np.exp(rng.uniform(-6, 1, (2, 3, 1)))
    X[..., 60:90] = 0.0  # silence: the -300 dB floor, the gate closing
    CASES = {
        "compressor-peak-knee": dict(kind="compressor", threshold_db=-20, ratio=4,
                                     attack_ms=2, release_ms=20, knee_db=6, detector="peak"),
        "compressor-rms-makeup": dict(kind="compressor", threshold_db=-10, ratio=2,
                                      attack_ms=1, release_ms=5, knee_db=0, detector="rms",
                                      makeup_db=3),
        "expander-hold": dict(kind="expander", threshold_db=-15, ratio=3, attack_ms=1,
                              release_ms=10, hold_ms=1, detector="peak"),
        "gate-rms": dict(kind="expander", threshold_db=-30, ratio=50, attack_ms=0.5,
                         release_ms=4, hold_ms=5, detector="rms"),
    }

    def compare(c, link, dtype, cut):
        t = torch.from_numpy(X).to(dtype)
        ref, rst = D.dynamics_gain(t, None, fs=FS, link=link, **c)
        batch = tuple(t.shape[:-1])
        n_g, n_c = D._groups(batch, link)
        st = D.dynamics_init_state(batch, "cpu", link)
        kw = dict(rms=c["detector"] == "rms", a_rms=D.one_pole_coeff(D.RMS_WINDOW_MS, FS),
                  kind=0 if c["kind"] == "compressor" else 1, threshold_db=c["threshold_db"],
                  ratio=c["ratio"], knee_db=c.get("knee_db", 0.0),
                  a_att=D.one_pole_coeff(c["attack_ms"], FS),
                  a_rel=D.one_pole_coeff(c["release_ms"], FS),
                  hold_n=float(round(c.get("hold_ms", 0) * 1e-3 * FS)),
                  floor_db=-D.MAX_ATTENUATION_DB, makeup_db=c.get("makeup_db", 0.0))
        parts = []
        for lo in range(0, t.shape[-1], cut):
            g, (ms, env, hold) = dynamics_gain_device(
                t[..., lo : lo + cut].reshape(n_g, n_c, -1), st, **kw)
            assert g.dtype == torch.float64
            st = D.DynamicsState(ms, env, hold)
            parts.append(g)
        got = torch.cat(parts, -1).reshape(ref.shape)
        close(got.numpy(), ref.numpy(), 1e-12, "gain")
        for a, b in ((st.ms, rst.ms), (st.env, rst.env), (st.hold, rst.hold)):
            close(a.numpy(), b.numpy(), 1e-12, "state")

    for name, c in CASES.items():
        for link in (True, False):
            for dtype, cut in ((torch.float64, 160), (torch.float32, 37)):
                check(f"{name}-link{link}-{dtype}-{cut}",
                      lambda c=c, link=link, dtype=dtype, cut=cut: compare(c, link, dtype, cut))

    def empty():
        st = D.dynamics_init_state((2,), "cpu", True)
        g, _ = dynamics_gain_device(torch.zeros((1, 2, 0)), st, rms=False, a_rms=0.5, kind=0,
                                    threshold_db=-20, ratio=2, knee_db=0, a_att=0.5,
                                    a_rel=0.5, hold_n=0, floor_db=-120, makeup_db=0)
        assert g.shape == (1, 0)
    check("empty", empty)
    report()
    """
)


@pytest.fixture(scope="module")
def results() -> dict[str, str]:
    return run_triton_checks(_CHECKS, timeout=900)


def test_device_gain_equals_cpu_kernel_under_interpreter(results: dict[str, str]) -> None:
    assert len(results) >= 17, results
    bad = {k: v for k, v in results.items() if v}
    assert not bad, bad


def test_cpu_tensors_keep_the_compiled_core() -> None:
    """The device path is for CUDA tensors; CPU tensors never take it."""
    from fxcli.dsp import dynamics_triton as DT

    assert not DT.usable(torch.zeros(3))
    assert not DT.usable(np.zeros(3))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_compressor_and_gate_equal_cpu() -> None:
    from fxcli.dsp import dynamics as D

    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((4, 2, 200_000)) * 0.3)
    for kw in (
        dict(kind="compressor", threshold_db=-20, ratio=4, attack_ms=5, release_ms=50,
             knee_db=6, detector="rms"),
        dict(kind="expander", threshold_db=-25, ratio=3, attack_ms=1, release_ms=20,
             hold_ms=5, detector="peak"),
    ):  # fmt: skip
        ref, _ = D.dynamics_gain(x, None, fs=48000.0, **kw)  # type: ignore[arg-type]
        got, st = D.dynamics_gain(x.cuda(), None, fs=48000.0, **kw)  # type: ignore[arg-type]
        assert got.device.type == "cuda" and st.env.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), ref, rtol=0, atol=1e-9)
