"""issue 16: every ``Examples:`` line of every command's ``--help`` runs.

``fxcli bench --chain presets/voice.yaml`` from ``bench --help`` exited 2. Each example
runs here through the shell (pipes and quoted globs as a user types them) in a
temporary folder holding small generated inputs: ``fxcli`` is this interpreter's
``-m fxcli``; bench examples get a tiny sweep appended (the last value of an option
wins), so they run in seconds. An example may fail only where this machine lacks
what it needs (no CUDA device; no credentials for ``s3://``), and then with one
``error:`` line and exit 2, never a traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from fxcli.cli.app import app
from tests.conftest import ROOT

COMMANDS = [
    "process",
    "analyze",
    "features",
    "bench",
    "presets",
    "presets show",
    "presets validate",
]
#: appended to every bench example: a sweep small enough for a test
BENCH_SMALL = "--durations 0.05 --channels 1 --reps 1 --warmup 1 --max-seconds 1"


def examples(command: str) -> list[str]:
    """The example lines of ``fxcli COMMAND --help`` (comments dropped)."""
    r = CliRunner().invoke(app, [*command.split(), "--help"], terminal_width=200)
    assert r.exit_code == 0, r.output
    lines, inside = [], False
    for line in r.output.splitlines():
        if line.strip() == "Examples:":
            inside = True
            continue
        if inside:
            if not line.strip() or not line.startswith(" "):
                inside = False
                continue
            lines.append(line.split("  #", 1)[0].strip())
    return lines


ALL = [(c, e) for c in COMMANDS for e in examples(c)]


def test_the_commands_have_examples() -> None:
    have = {c for c, _ in ALL}
    assert {"process", "analyze", "features", "bench"} <= have, have


def _audio(path: Path, channels: int = 2, seconds: float = 0.6, fs: int = 44100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * fs)) / fs
    x = np.stack([0.1 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)])
    sf.write(str(path), x.T.astype(np.float32), fs, subtype="PCM_16")


def _workspace(tmp: Path) -> None:
    """The inputs the examples name, small."""
    for name in ("song.wav", "take.wav", "in.wav", "in/a.wav", "in/sub/b.wav", "masters/m.wav"):
        _audio(tmp / name)
    for name in ("in.flac", "take.flac", "in/c.flac", "takes/day1/t1.flac", "corpus/x.flac"):
        _audio(tmp / name, channels=1, fs=48000)
    shutil.copytree(ROOT / "presets", tmp / "presets")


def _expected_failure(example: str) -> str | None:
    """Why this example cannot succeed on this machine (then: one line, exit 2)."""
    if "--device cuda" in example:
        import torch

        if not torch.cuda.is_available():
            return "no CUDA device"
    if "s3://" in example:
        return "no credentials for s3://"
    if "--plot" in example or "--image" in example:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return "matplotlib is not installed"
    return None


@pytest.mark.parametrize(("command", "example"), ALL, ids=[e for _, e in ALL])
def test_help_example_runs(tmp_path: Path, command: str, example: str) -> None:
    for tool in ("sox", "ffmpeg"):
        if re.search(rf"(^|\|\s*){tool} ", example) and shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    _workspace(tmp_path)
    line = re.sub(r"(^|\|\s*)fxcli ", rf"\1{sys.executable} -m fxcli ", example)
    if command == "bench":
        line += f" {BENCH_SMALL}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), AWS_EC2_METADATA_DISABLED="true")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(key, None)
    env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    r = subprocess.run(
        ["bash", "-o", "pipefail", "-c", line],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in r.stderr, r.stderr
    why = _expected_failure(example)
    if why is None:
        assert r.returncode == 0, f"{example}\n{r.stderr}"
    else:
        assert r.returncode in (0, 2), f"{example} ({why})\n{r.stderr}"
        if r.returncode == 2:
            errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
            assert len(errors) == 1, r.stderr
