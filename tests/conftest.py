from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Keep the design cache of test runs (and their subprocesses) out of the user's home.
os.environ["FXCLI_CACHE_DIR"] = tempfile.mkdtemp(prefix="fxcli-test-cache-")


def noise(channels: int, frames: int, seed: int = 0, dtype: type = np.float32) -> np.ndarray:
    """Normalized noise in [-1, 1], shape (channels, frames)."""
    x = np.random.default_rng(seed).standard_normal((channels, frames))
    return (x / np.max(np.abs(x))).astype(dtype)


def write_audio(
    path: Path, x: np.ndarray, fs: int, subtype: str = "PCM_24", fmt: str | None = None
) -> Path:
    """Write (channels, frames) audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.T, fs, subtype=subtype, format=fmt)
    return path


def communicate_rest(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """``proc.communicate()`` after a ``proc.stdout.readline()``, without losing lines.

    communicate() reads the pipe's file descriptor directly, so the lines that
    readline() had already buffered are lost: a run whose second file finished
    together with the first printed both JSON lines in one write, and the test saw
    an output with no line (flaky under load, session 8). Read stdout through the
    same buffered object instead, stderr on a thread so neither pipe fills.
    """
    assert proc.stdout is not None and proc.stderr is not None
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    rest = proc.stdout.read()
    proc.wait(timeout=timeout)
    reader.join(timeout=timeout)
    return rest, "".join(err)


def run_chunked(step, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """Stream ``x`` through one step in chunks of ``chunk`` frames carrying the state,
    then flush: what the engine does, for chunk-invariance tests of single steps."""
    state = step.init_state(tuple(x.shape[:-1]), x.device)
    outs = []
    for i in range(0, x.shape[-1], chunk):
        y, state = step.process(x[..., i : i + chunk], state)
        outs.append(y)
    tail, _ = step.flush(state)
    if tail is not None:
        outs.append(tail.to(x.dtype))
    return torch.cat(outs, dim=-1)


@pytest.fixture
def tiny_tree(tmp_path: Path) -> Path:
    """A mixed tree: 24-bit WAV stereo 44.1k, 16-bit FLAC mono 48k, float WAV 8ch 22.05k,
    a non-audio file."""
    src = tmp_path / "in"
    write_audio(src / "a.wav", 0.5 * noise(2, 4410, 1), 44100, "PCM_24")
    write_audio(src / "sub" / "b.flac", 0.5 * noise(1, 4800, 2), 48000, "PCM_16")
    write_audio(src / "sub" / "deeper" / "c.wav", 0.5 * noise(8, 2205, 3), 22050, "FLOAT")
    (src / "sub" / "readme.txt").write_text("not audio")
    return src


SIMPLE_PRESET = """version: 1
description: test chain
chain:
  - {type: highpass, cutoff_hz: 100, order: 2}
  - {type: gain, gain_db: -3}
"""


@pytest.fixture
def simple_preset(tmp_path: Path) -> Path:
    p = tmp_path / "simple.yaml"
    p.write_text(SIMPLE_PRESET)
    return p


# Shared by the Triton kernel tests: their checks run under Triton's CPU interpreter in
# one subprocess each (TRITON_INTERPRET is read when kernels are decorated, so it must
# never reach this process). A check script defines cases with ``check(name, fn)``
# and ``close(a, b, atol, what)`` from this preamble and ends with ``report()``.
TRITON_CHECK_PREAMBLE = r"""
import json, os
assert os.environ.get("TRITON_INTERPRET") == "1"
import numpy as np

res = {}


def check(name, fn):
    try:
        fn()
        res[name] = ""
    except Exception as exc:  # noqa: BLE001
        res[name] = f"{type(exc).__name__}: {exc}"


def close(a, b, atol, what):
    a = np.asarray(a); b = np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    err = float(np.abs(a - b).max()) if a.size else 0.0
    assert err <= atol, f"{what}: max error {err:.3g} > {atol:.3g}"


def report():
    print("RESULTS" + json.dumps(res))
"""


def run_triton_checks(script: str, timeout: float) -> dict[str, str]:
    """Run ``TRITON_CHECK_PREAMBLE + script`` under ``TRITON_INTERPRET=1`` in a
    subprocess; returns ``{case: error message or ""}``."""
    import json
    import subprocess

    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run(
        [sys.executable, "-c", TRITON_CHECK_PREAMBLE + script],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS")]
    assert proc.returncode == 0 and line, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return dict(json.loads(line[-1][len("RESULTS") :]))
