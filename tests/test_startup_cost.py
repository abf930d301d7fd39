"""Start-up of a CLI call (issue 15: one ``fxcli process`` per file, where start-up
was most of the ~0.26 s against FFmpeg's 0.14 s): the garbage collector paused
while a command starts (:mod:`fxcli.cli.gc_pause`) and Typer reading the ``process``
command's annotations as objects. No timings are asserted: each test checks the
mechanism that saves the time, and fails if it is undone."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fxcli.cli import gc_pause

ROOT = Path(__file__).resolve().parents[1]

# the state of the collector when the first file starts, and after the run
PROBE = """
import gc, sys
from fxcli.cli import gc_pause
from fxcli.io import audio  # numpy and soundfile only: the engine's choice stays free
seen = []
real = audio.read_blocks
def read_blocks(*a, **k):
    seen.append((gc.isenabled(), gc.get_freeze_count() > 0, gc_pause.paused()))
    return real(*a, **k)
audio.read_blocks = read_blocks  # before the engine imports it
from fxcli.cli.app import main
sys.argv = ["fxcli", *sys.argv[1:]]
try:
    main()
except SystemExit:
    print("FILES", seen, "END", gc.isenabled(), file=sys.stderr)
    raise
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FXCLI_CPU_ENGINE"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_process_runs_its_files_with_the_collector_on(tmp_path: Path) -> None:
    """issue 15: the pause ends before the first file (a long batch collects its
    garbage as before), with start-up's objects frozen; the output is the same."""
    src = tmp_path / "in.wav"
    rng = np.random.default_rng(5)
    x = 0.1 * rng.standard_normal((4800, 2))
    sf.write(src, x, 48000, subtype="PCM_24")
    out = tmp_path / "out.wav"
    r = _run("process", str(src), str(out), "-p", "none", "--device", "cpu", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "FILES [(True, True, False)] END True" in r.stderr, r.stderr
    np.testing.assert_array_equal(sf.read(out)[0], sf.read(src)[0])


def test_analyze_and_a_usage_error_leave_with_the_collector_as_expected(tmp_path: Path) -> None:
    """``analyze`` ends the pause before its files; a usage error ends the call during
    start-up (exit 2, one line, no traceback) and ``main`` turns the collector back on
    (a caller of ``main`` in its own process gets it as it was)."""
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros((4800, 1)), 48000, subtype="PCM_16")
    code = (
        "import gc, sys\n"
        "from fxcli.cli.app import main\n"
        "sys.argv = ['fxcli', *sys.argv[1:]]\n"
        "try:\n    main()\n"
        "except SystemExit:\n"
        "    print('GC', gc.isenabled(), gc.get_freeze_count() > 0, file=sys.stderr)\n"
        "    raise\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    analyze = [sys.executable, "-c", code, "analyze", str(src), "--device", "cpu", "--json"]
    r = subprocess.run(analyze, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "GC True True" in r.stderr, r.stderr
    bad = [sys.executable, "-c", code, "process", str(src), str(tmp_path / "o.wav"), "-p", "none"]
    r = subprocess.run(
        [*bad, "--chunk-seconds", "-1"], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 2 and "--chunk-seconds" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert "GC True False" in r.stderr, r.stderr  # on again, nothing frozen


def test_pause_only_for_commands_that_resume() -> None:
    """Other commands (a long ``bench``) and library callers never run paused, and
    :func:`resume` without a pause does nothing (no ``gc.freeze`` in a library)."""
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    for argv in (["fxcli"], ["fxcli", "bench"], ["fxcli", "--help"], ["fxcli", "presets"]):
        gc_pause.pause(argv)
        assert gc.isenabled() and not gc_pause.paused()
    gc_pause.resume()
    assert gc.isenabled() and gc.get_freeze_count() == frozen


@pytest.mark.parametrize("command", ["process", "analyze", "features"])
def test_command_annotations_are_objects_for_typer(command: str) -> None:
    """issue 15: Typer reads the command's annotations at each call; as strings
    (``from __future__ import annotations``) it evaluated each one twice: building
    ``process`` took 7.7 ms instead of 3.0, ``features`` 10.6 instead of 3.4."""
    from fxcli.cli.app import build_app

    (info,) = build_app(command).registered_commands
    func = info.callback
    assert func is not None and func.__name__ == command
    strings = [k for k, v in func.__annotations__.items() if isinstance(v, str)]
    assert not strings, strings
