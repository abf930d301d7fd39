#!/usr/bin/env python
"""Before/after figures for a restructuring of the package (same machine, one run).

For each source tree given (``--tree NAME=PATH``, the folder that holds ``fxcli/``),
alternating trees rep by rep so that drift on a shared machine hits both alike:

- ``process``: ``python -m fxcli process one.wav out.wav -p voice`` on a 5 s stereo
  48 kHz 24-bit file (wall time and peak RSS of the child, median of ``--reps``);
- ``analyze``: ``python -m fxcli analyze one.wav --json`` (same figures);
- ``engine``: the in-process engine (``Engine.process``) on the ``api_chain`` preset
  over 8 ch x 120 s 24-bit (wall time of the second of two runs in one process, one
  process per tree and rep, median over reps).

Usage::

    git worktree add /tmp/before <rev>
    python bench/bench_house.py --tree before=/tmp/before --tree after=. --reps 5

Prints a Markdown table; ``--csv`` also writes the rows.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ENGINE_CODE = """
import sys, time, torch
from fxcli.engine.runner import Engine
from fxcli.io.paths import Job
from fxcli.preset.loader import load_preset
src, out, preset = sys.argv[1:4]
engine = Engine(load_preset(preset), torch.device("cpu"), overwrite="overwrite")
times = []
for _ in range(2):
    t0 = time.perf_counter()
    res = engine.process(Job(__import__("pathlib").Path(src), __import__("pathlib").Path(out)))
    times.append(time.perf_counter() - t0)
    assert res.status == "ok", res.error
print(" ".join(f"{t:.4f}" for t in times[1:]))
"""


def child(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-500:]}")
    return wall, usage.ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", required=True, help="NAME=PATH")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--csv", type=Path)
    a = ap.parse_args(argv)
    trees = dict(t.split("=", 1) for t in a.tree)
    work = Path(tempfile.mkdtemp(prefix="fxcli-house-"))
    rng = np.random.default_rng(0)
    one = work / "one.wav"
    sf.write(one, 0.1 * rng.standard_normal((5 * 48000, 2)), 48000, subtype="PCM_24")
    big = work / "big.wav"
    sf.write(big, 0.1 * rng.standard_normal((120 * 48000, 8)), 48000, subtype="PCM_24")
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _rep in range(a.reps):
        for name, path in trees.items():
            env = {**os.environ, "PYTHONPATH": str(Path(path).resolve())}
            preset_dir = Path(path) / "fxcli" / "presets"
            for what, cmd in (
                (
                    "process",
                    [
                        sys.executable,
                        "-m",
                        "fxcli",
                        "process",
                        str(one),
                        str(work / f"o-{name}.wav"),
                        "-p",
                        "voice",
                        "--overwrite",
                        "--quiet",
                    ],
                ),
                ("analyze", [sys.executable, "-m", "fxcli", "analyze", str(one), "--json"]),
            ):
                results.setdefault((name, what), []).append(child(cmd, env))
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    ENGINE_CODE,
                    str(big),
                    str(work / f"b-{name}.wav"),
                    str(preset_dir / "api_chain.yaml"),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            second = float(out.stdout.split()[-1])
            results.setdefault((name, "engine"), []).append((second, 0.0))
    rows = []
    for (name, what), vals in results.items():
        rows.append(
            {
                "tree": name,
                "what": what,
                "wall_s": round(statistics.median(v[0] for v in vals), 4),
                "peak_rss_mib": round(statistics.median(v[1] for v in vals), 1) or "",
                "reps": len(vals),
            }
        )
    print("| tree | what | wall (s, median) | peak RSS (MiB) | reps |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tree']} | {r['what']} | {r['wall_s']} | {r['peak_rss_mib']} | {r['reps']} |")
    if a.csv:
        with open(a.csv, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
