#!/usr/bin/env python
"""Mastering: the bundled ``mastering`` preset against FFmpeg and a pedalboard script.

The same N stereo 48 kHz 24-bit WAV files (default 6 x 60 s, made from the bundled
example music, looped, resampled to 48 kHz with soxr and given a different level
and start offset each) go through three mastering chains aiming at -14 LUFS
integrated with a -1 dBTP ceiling:

- ``fxcli``: ``fxcli process in/ out/ --preset mastering --device cpu`` (one call):
  Linkwitz-Riley highpass, shelves and peaking EQ, loudness to -18 LUFS, 2:1
  compressor, loudness to -14 LUFS aimed through the true-peak limiter at -1 dBTP.
- ``ffmpeg``: one ``ffmpeg`` call per file (a shell loop), the nearest filter graph:
  ``highpass`` x2, ``lowshelf``, ``equalizer`` x2, ``highshelf``, ``acompressor``,
  ``loudnorm=I=-14:TP=-1`` (single pass) and ``alimiter`` at -1 dBFS.
- ``pedalboard``: a Python script per run, the naive way: pedalboard's EQ and
  compressor, pyloudnorm's integrated loudness, one gain to -14 LUFS, pedalboard's
  ``Limiter`` at -1 dB.

Timed as a user runs them (wall clock of the whole batch, interpreter start-up
included; median of ``--reps``). Each output is measured independently: integrated
loudness by pyloudnorm (BS.1770-4) and by FFmpeg's ``ebur128`` where installed, true
peak by an 8x polyphase resampler (``scipy.signal.resample_poly(y, 8, 1)``) and by
FFmpeg's ``ebur128=peak=true``. Columns: ``tool, files, seconds_each, reps,
median_s, realtime_x, lufs_mean, lufs_max_err, tp8x_max_dbtp, ffmpeg_lufs_max_err,
ffmpeg_tp_max_dbtp``. Tools that are not installed are skipped (said on stderr).

Usage::

    python bench/bench_mastering.py [--files 6] [--seconds 60] [--reps 3]
        [--output bench/results/mastering.csv] [--workdir DIR] [--markdown]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
TARGET_LUFS = -14.0
CEILING_DB = -1.0
FS = 48000

FFMPEG_GRAPH = (
    "highpass=f=25:p=2,highpass=f=25:p=2,"
    "lowshelf=f=90:g=1:t=s:w=0.8,"
    "equalizer=f=300:t=q:w=1:g=-1.5,equalizer=f=3500:t=q:w=0.9:g=0.8,"
    "highshelf=f=10000:g=1.5:t=s:w=0.7,"
    "acompressor=threshold=-20dB:ratio=2:attack=20:release=200:knee=2,"
    f"loudnorm=I={TARGET_LUFS:g}:TP={CEILING_DB:g}:LRA=20,"
    "aresample=48000,"
    f"alimiter=limit={10 ** (CEILING_DB / 20):.4f}:level=false"
)

PEDALBOARD_SCRIPT = """
import sys
from pathlib import Path
import numpy as np, soundfile as sf, pyloudnorm
from pedalboard import (Pedalboard, HighpassFilter, LowShelfFilter, PeakFilter,
                        HighShelfFilter, Compressor, Limiter)
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
TARGET, CEILING = float(sys.argv[3]), float(sys.argv[4])
eq = Pedalboard([HighpassFilter(25), HighpassFilter(25), LowShelfFilter(90, 1.0, 0.8),
                 PeakFilter(300, -1.5, 1.0), PeakFilter(3500, 0.8, 0.9),
                 HighShelfFilter(10000, 1.5, 0.7),
                 Compressor(threshold_db=-20, ratio=2, attack_ms=20, release_ms=200)])
lim = Pedalboard([Limiter(threshold_db=CEILING, release_ms=100)])
for f in sorted(src.glob("*.wav")):
    x, fs = sf.read(f, dtype="float32", always_2d=True)
    y = eq(x.T, fs)
    lufs = pyloudnorm.Meter(fs).integrated_loudness(y.T.astype(np.float64))
    y = y * np.float32(10 ** ((TARGET - lufs) / 20))
    y = lim(y, fs)
    sf.write(dst / f.name, y.T, fs, subtype="PCM_24")
"""


def make_inputs(folder: Path, files: int, seconds: float) -> None:
    """``files`` stereo 48 kHz 24-bit WAVs of ``seconds`` from the example music."""
    import soxr

    x, fs = sf.read(REPO / "examples" / "audio" / "music_stereo.wav", always_2d=True)
    x = soxr.resample(x, fs, FS, quality="VHQ")
    n = int(seconds * FS)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        start = (i * 7919) % x.shape[0]
        idx = (start + np.arange(n)) % x.shape[0]
        level = 10 ** ((-6.0 + 1.5 * i) / 20)  # -6 .. +1.5 dB: some files start hot
        y = np.clip(x[idx] * level, -1.0, 1.0 - 2**-23)
        sf.write(folder / f"take{i:02d}.wav", y, FS, subtype="PCM_24")


def commands(src: Path, out: Path) -> dict[str, list[str] | None]:
    fxcli = [sys.executable, "-m", "fxcli", "process", str(src), str(out), "-p", "mastering",
             "--device", "cpu", "--quiet", "--overwrite"]  # fmt: skip
    cmds: dict[str, list[str] | None] = {"fxcli": fxcli}
    if shutil.which("ffmpeg"):
        loop = (
            f'for f in "{src}"/*.wav; do ffmpeg -nostdin -hide_banner -loglevel error -y '
            f'-i "$f" -af "{FFMPEG_GRAPH}" -c:a pcm_s24le "{out}/$(basename "$f")" || exit 1; done'
        )
        cmds["ffmpeg"] = ["bash", "-c", loop]
    else:
        cmds["ffmpeg"] = None
    try:
        import pedalboard  # noqa: F401
        import pyloudnorm  # noqa: F401

        cmds["pedalboard"] = [sys.executable, "-c", PEDALBOARD_SCRIPT, str(src), str(out),
                              str(TARGET_LUFS), str(CEILING_DB)]  # fmt: skip
    except ImportError:
        cmds["pedalboard"] = None
    return cmds


def true_peak_8x(y: np.ndarray) -> float:
    from scipy.signal import resample_poly

    up = resample_poly(y, 8, 1, axis=0)
    peak = max(float(np.max(np.abs(up))), float(np.max(np.abs(y))))
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def ffmpeg_meter(path: Path) -> tuple[float, float] | None:
    """(integrated LUFS, true peak dBTP) by FFmpeg's ebur128, or None."""
    if not shutil.which("ffmpeg"):
        return None
    r = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(path), "-af",
         "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True,
    )  # fmt: skip
    text = r.stderr[r.stderr.rfind("Summary:") :]
    i = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", text)
    p = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", text)
    if not (i and p):
        return None
    return float(i.group(1)), float(p.group(1))


def measure(out: Path) -> dict[str, float]:
    import pyloudnorm

    lufs, tps, ff_lufs, ff_tps = [], [], [], []
    for f in sorted(out.glob("*.wav")):
        y, fs = sf.read(f, always_2d=True)
        lufs.append(pyloudnorm.Meter(fs).integrated_loudness(y))
        tps.append(true_peak_8x(y))
        ff = ffmpeg_meter(f)
        if ff is not None:
            ff_lufs.append(ff[0])
            ff_tps.append(ff[1])
    row = {
        "lufs_mean": round(float(np.mean(lufs)), 3),
        "lufs_max_err": round(float(np.max(np.abs(np.array(lufs) - TARGET_LUFS))), 3),
        "tp8x_max_dbtp": round(float(np.max(tps)), 3),
    }
    if ff_lufs:
        row["ffmpeg_lufs_max_err"] = round(
            float(np.max(np.abs(np.array(ff_lufs) - TARGET_LUFS))), 3
        )
        row["ffmpeg_tp_max_dbtp"] = round(float(np.max(ff_tps)), 3)
    return row


COLUMNS = [
    "tool", "files", "seconds_each", "reps", "median_s", "realtime_x", "lufs_mean",
    "lufs_max_err", "tp8x_max_dbtp", "ffmpeg_lufs_max_err", "ffmpeg_tp_max_dbtp",
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=6)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--output", default=str(ROOT / "results" / "mastering.csv"))
    p.add_argument("--workdir", default=None)
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args(argv)
    work = Path(a.workdir or tempfile.mkdtemp(prefix="fxcli-mastering-"))
    src = work / "in"
    if not src.is_dir() or len(list(src.glob("*.wav"))) != a.files:
        shutil.rmtree(src, ignore_errors=True)
        make_inputs(src, a.files, a.seconds)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rows = []
    audio_s = a.files * a.seconds
    for tool, cmd in commands(src, work / "out").items():
        if cmd is None:
            print(f"{tool}: not installed, skipped", file=sys.stderr)
            continue
        out = work / f"out_{tool}"
        cmd = [c.replace(str(work / "out"), str(out)) for c in cmd]
        times = []
        for _ in range(a.reps):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            t = time.perf_counter()
            r = subprocess.run(cmd, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            if r.returncode != 0:
                print(f"{tool} failed: {r.stderr[-2000:]}", file=sys.stderr)
                break
        else:
            med = statistics.median(times)
            row = {"tool": tool, "files": a.files, "seconds_each": a.seconds, "reps": a.reps,
                   "median_s": round(med, 3), "realtime_x": round(audio_s / med, 1)}  # fmt: skip
            row.update(measure(out))
            rows.append(row)
            print(row, file=sys.stderr)
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    with open(a.output, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for row in rows:
            w.writerow(row)
    if a.markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for row in rows:
            print("| " + " | ".join(str(row.get(c, "")) for c in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
