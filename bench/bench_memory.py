"""Peak memory of `fxcli process` for a short and a long file (bounded streaming).

Generates 16-bit stereo noise WAVs of 1 minute and N minutes (default 60) in a temp
folder, runs `fxcli process` on each in its own child process, and reports the child's
peak RSS (ru_maxrss). The issue #4 target: peak RSS(60 min) <= 1.2 x peak RSS(1 min).

Usage: python bench/bench_memory.py [--minutes 60] [--preset mastering]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

CHILD = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def make_wav(path: Path, minutes: float, fs: int = 44100) -> None:
    rng = np.random.default_rng(0)
    block = fs * 10
    with sf.SoundFile(str(path), "w", fs, 2, "PCM_16") as f:
        for _ in range(int(round(minutes * 6))):
            f.write((0.1 * rng.standard_normal((block, 2))).astype(np.float32))


def peak_rss_kb(src: Path, dest: Path, preset: str) -> tuple[int, float]:
    cmd = [
        sys.executable,
        "-m",
        "fxcli",
        "process",
        str(src),
        str(dest),
        "-p",
        preset,
        "--overwrite",
        "-q",
    ]
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *cmd], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1]), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--preset", default="mastering")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for minutes in (1.0, a.minutes):
            src = Path(tmp) / f"in_{minutes:g}min.wav"
            make_wav(src, minutes)
            kb, secs = peak_rss_kb(src, Path(tmp) / f"out_{minutes:g}min.wav", a.preset)
            rows.append((minutes, kb, secs))
            src.unlink()
    print("| file | peak RSS MB | wall s |\n|---|---:|---:|")
    for minutes, kb, secs in rows:
        print(
            f"| {minutes:g} min stereo 16-bit, preset {a.preset} | {kb / 1024:.0f} | {secs:.1f} |"
        )
    print(f"\nratio long/short: {rows[1][1] / rows[0][1]:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
