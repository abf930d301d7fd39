"""The on-disk design cache: exact values, and warm runs that skip scipy.signal.

Since issue 15 Butterworth/Chebyshev designs and the common FIR windows come from
numpy (fxcli.dsp.design_np) and never touch the cache; the cache serves the designs
that still need SciPy (elliptic, Bessel, other windows), which these tests use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from fxcli.dsp import design, design_cache
from tests.conftest import ROOT

SCRIPT = """
import sys
from fxcli.preset.loader import load_preset
from fxcli.preset.build import build_step
from fxcli.dsp import design
if sys.argv[1] == "scipy":  # designs only SciPy makes
    design.iir_pass("bandpass", [200, 4000], 44100, 2, "elliptic")
    design.iir_pass("lowpass", 5000, 44100, 4, "bessel")
    design.fir_window(101, 1000, 44100, "lowpass", "bartlett")
    design.fir_window(31, 3000, 44100, "highpass", ["tukey", 0.3])
else:  # the bundled chains: Chebyshev I, Butterworth, hamming FIRs
    for cfg in load_preset("api_chain").steps + load_preset("fir_chain").steps:
        build_step(cfg, 44100)
print("scipy.signal" in sys.modules)
"""


def _run(cache: str, designs: str = "scipy") -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), FXCLI_CACHE_DIR=cache)
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, designs],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_warm_run_does_not_import_scipy_signal(tmp_path: Path) -> None:
    assert _run(str(tmp_path)) == "True"  # cold: designs with SciPy, fills the cache
    assert (tmp_path / "designs.json").is_file()
    assert _run(str(tmp_path)) == "False"  # warm: every design from the cache
    assert _run("off") == "True"  # disabled


def test_numpy_designs_never_import_scipy_signal(tmp_path: Path) -> None:
    """issue 15: the first run after an install (empty cache) is as fast as a warm one
    for Butterworth/Chebyshev IIRs and hamming FIRs: no SciPy, nothing cached."""
    assert _run(str(tmp_path), "numpy") == "False"
    assert not (tmp_path / "designs.json").exists()
    assert _run("off", "numpy") == "False"


def test_cached_designs_are_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FXCLI_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(design_cache, "_memory", None)
    ref = signal.iirfilter(
        8, 20, rp=0.5, rs=40, btype="highpass", ftype="ellip", fs=96000, output="sos"
    )
    for _ in range(2):  # miss, then hit
        sos = design.iir_pass("highpass", 20, 96000, 8, "elliptic")
        assert np.array_equal(sos, ref)
    assert (tmp_path / "designs.json").is_file()
    monkeypatch.setattr(design_cache, "_memory", None)  # from disk this time
    assert np.array_equal(design.iir_pass("highpass", 20, 96000, 8, "elliptic"), ref)
    for _ in range(2):
        h = design.fir_window(31, 3000, 44100, "highpass", ["tukey", 0.3])
        assert np.array_equal(
            h, signal.firwin(31, 3000, window=("tukey", 0.3), pass_zero="highpass", fs=44100)
        )


def test_unwritable_cache_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FXCLI_CACHE_DIR", str(blocker / "sub"))
    monkeypatch.setattr(design_cache, "_memory", None)
    sos = design.iir_pass("lowpass", 1000, 48000, 4, "elliptic")
    assert sos.shape == (2, 6)
