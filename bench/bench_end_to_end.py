#!/usr/bin/env python
"""End to end: the seed's 6-filter api chain on a WAV file, fxcli vs SoX vs FFmpeg.

A generated 8 ch x 120 s, 44.1 kHz, 24-bit WAV (half-scale normalized Gaussian noise)
goes through highpass 20, 60, 65 Hz and lowpass 5000, 4900, 4850 Hz and is written
back as 24-bit WAV by each tool, timed as a user would run it (wall clock of the
command, interpreter start-up included):

- ``fxcli-process``: ``fxcli process in.wav out.wav --preset chain.yaml --device cpu``
- ``sox``: ``sox -D in.wav out.wav highpass 20 highpass 60 ... lowpass 4850``
  (``-D``: no dither, so outputs are comparable)
- ``ffmpeg``: ``ffmpeg -filter_threads 1 -i in.wav -af highpass=f=20,...,lowpass=f=4850
  -c:a pcm_s24le out.wav``
- ``ffmpeg-fsync``: the same FFmpeg command, then an ``fsync`` of its output (timed
  together): the durability fxcli's atomic write gives its outputs (fsync before the
  rename), which FFmpeg and SoX do not do; for a like-for-like ratio
- ``scipy-script``: a Python script: ``soundfile.read`` -> ``scipy.signal.sosfilt``
  per filter -> ``soundfile.write``
- ``soundfile-io``: read + write alone (a Python script): the I/O floor
- ``fxcli-engine-inprocess``: fxcli's engine called in an already-running Python
  (no start-up), for reference; ``fxcli-engine-inprocess-sfio``: the same with the
  WAV fast path off (``FXCLI_WAVFAST=0``: soundfile reads and writes, as before it)
- ``fxcli-io-inprocess``: fxcli's own read (``read_blocks``) and atomic write
  (``AtomicWriter``, fsync included) of the same file without filtering, one thread:
  fxcli's I/O floor

Start-up (``--startup-reps N``, default 3, 0 skips it): ``fxcli process`` on a
5-second 2 ch 24-bit WAV (one warm-up run, then N timed), next to SoX and FFmpeg on
the same file, the first run after an install (empty design cache), the torch engine
on the same file, ``fxcli --help``, ``fxcli presets`` and ``python -c "import
torch"``; written to ``startup.csv`` beside the main CSV (columns ``what, reps,
min_s, median_s, max_s, cpu_s, peak_rss_mib``).

Batch (``--batch-files N``, default 20, 0 skips it; ``--batch-seconds S``, default
60): a folder of N stereo 24-bit WAVs through the same chain, one ``fxcli process
in/ out/`` call against a loop of one SoX or FFmpeg call per file; written to
``batch.csv`` (columns ``what, files, seconds_each, reps, min_s, median_s, max_s,
cpu_s``).

All 6 filters are order-2 **Butterworth** here (the seed's api chain has Chebyshev-I
highpasses): SoX's and FFmpeg's ``highpass``/``lowpass`` default to 2-pole filters
with Q = 1/sqrt(2), which are the bilinear-transform Butterworth biquads, so the
three tools run the same filters. Each output is compared with a float64 SciPy
reference of the same chain on the same 24-bit input (``max_abs_error``, flagged
above 1e-4; 24-bit quantization alone is ~6e-8) and with fxcli's output
(``max_abs_diff_vs_fxcli``). Tools that are not installed are skipped.

CSV columns are those of ``fxcli bench`` plus ``speedup_vs_sox``,
``speedup_vs_ffmpeg``, ``max_abs_diff_vs_fxcli`` and ``cpu_s`` (median user +
system CPU seconds of one run, all threads; less sensitive than wall time to other
load on the machine, but threads spinning while they wait count too).

Usage::

    python bench/bench_end_to_end.py [--duration 120] [--channels 8] [--reps 3]
        [--output bench/results/end_to_end.csv] [--workdir DIR] [--markdown]
        [--startup-reps 3] [--startup-only] [--batch-files 20] [--batch-seconds 60]
        [--batch-only]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from fxcli.cli.bench import finish
from fxcli.measure import benchmark as B

ROOT = Path(__file__).resolve().parent
HP = (20, 60, 65)
LP = (5000, 4900, 4850)
PRESET = (
    "version: 1\ndescription: seed api chain, all order-2 Butterworth (SoX/FFmpeg)\n"
    "chain:\n"
    + "".join(
        f"  - {{type: highpass, cutoff_hz: {f}, order: 2, design: butterworth}}\n" for f in HP
    )
    + "".join(f"  - {{type: lowpass, cutoff_hz: {f}, order: 2, design: butterworth}}\n" for f in LP)
)

EXTRA = ["speedup_vs_sox", "speedup_vs_ffmpeg", "max_abs_diff_vs_fxcli", "cpu_s"]
IO_ONLY = ("soundfile-io", "fxcli-io-inprocess")
STARTUP_COLUMNS = ["what", "reps", "min_s", "median_s", "max_s", "cpu_s", "peak_rss_mib"]

IO_SCRIPT = """
import sys, soundfile as sf
x, fs = sf.read(sys.argv[1], dtype="float32")
sf.write(sys.argv[2], x, fs, subtype="PCM_24")
"""

SCIPY_SCRIPT = """
import sys, soundfile as sf
from scipy import signal
x, fs = sf.read(sys.argv[1])  # float64, (frames, channels)
for f in (20, 60, 65):
    x = signal.sosfilt(signal.butter(2, f, "highpass", fs=fs, output="sos"), x, axis=0)
for f in (5000, 4900, 4850):
    x = signal.sosfilt(signal.butter(2, f, "lowpass", fs=fs, output="sos"), x, axis=0)
sf.write(sys.argv[2], x, fs, subtype="PCM_24")
"""


def fxcli_cmd() -> list[str]:
    exe = shutil.which("fxcli") or str(Path(sys.executable).parent / "fxcli")
    return [exe] if Path(exe).exists() else [sys.executable, "-m", "fxcli"]


def commands(src: Path, out: Path, preset: Path) -> dict[str, list[str] | None]:
    af = ",".join([f"highpass=f={f}" for f in HP] + [f"lowpass=f={f}" for f in LP])
    sox = shutil.which("sox")
    ffmpeg = shutil.which("ffmpeg")
    cmds: dict[str, list[str] | None] = {
        "fxcli-process": [
            *fxcli_cmd(),
            "process",
            str(src),
            str(out),
            "--preset",
            str(preset),
            "--device",
            "cpu",
            "--overwrite",
            "--quiet",
            "--progress",
            "never",
        ],
        "sox": None
        if not sox
        else [
            sox,
            "-D",
            "-V1",
            str(src),
            str(out),
            *[a for f in HP for a in ("highpass", str(f))],
            *[a for f in LP for a in ("lowpass", str(f))],
        ],
        "ffmpeg": None
        if not ffmpeg
        else [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-filter_threads",
            "1",
            "-i",
            str(src),
            "-af",
            af,
            "-c:a",
            "pcm_s24le",
            str(out),
        ],
        "scipy-script": [sys.executable, "-c", SCIPY_SCRIPT, str(src), str(out)],
        "soundfile-io": [sys.executable, "-c", IO_SCRIPT, str(src), str(out)],
    }
    # FFmpeg, then an fsync of its output: what fxcli's atomic write guarantees
    # (the output durable before it replaces the old one); timed as one command
    cmds["ffmpeg-fsync"] = cmds["ffmpeg"]
    return cmds


@contextlib.contextmanager
def wavfast_env(on: bool) -> Iterator[None]:
    """Switch fxcli's WAV fast path for the duration (``FXCLI_WAVFAST``)."""
    old = os.environ.get("FXCLI_WAVFAST")
    os.environ["FXCLI_WAVFAST"] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["FXCLI_WAVFAST"]
        else:
            os.environ["FXCLI_WAVFAST"] = old


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_io_inprocess(src: Path, out: Path) -> None:
    """fxcli's read + atomic write of ``src`` without filtering (one thread)."""
    from fxcli.io.audio import AtomicWriter, output_format, probe, read_blocks

    info = probe(src)
    ofmt = output_format(info, "same", "same", "same")
    with AtomicWriter(out, info.samplerate, info.channels, ofmt) as w:
        for block in read_blocks(info, 10 * info.samplerate):
            w.write(block)
        w.commit()


def run_inprocess(src: Path, out: Path, preset: Path) -> None:
    import torch

    from fxcli.engine.runner import Engine
    from fxcli.io.paths import Job
    from fxcli.preset.loader import load_preset

    engine = Engine(load_preset(str(preset)), torch.device("cpu"), overwrite="overwrite")
    res = engine.process(Job(src, out))
    if res.status != "ok":
        raise RuntimeError(res.error)


def reference(src: Path) -> np.ndarray:
    x, fs = sf.read(str(src), dtype="float64")
    sos = np.concatenate(
        [signal.butter(2, f, "highpass", fs=fs, output="sos") for f in HP]
        + [signal.butter(2, f, "lowpass", fs=fs, output="sos") for f in LP]
    )
    return signal.sosfilt(sos, x.T, axis=-1)


def read(path: Path) -> np.ndarray:
    return sf.read(str(path), dtype="float64")[0].T


def markdown(rows: list[dict]) -> str:
    cols = [
        "backend",
        "duration_s",
        "channels",
        "reps",
        "median_s",
        "min_s",
        "max_s",
        "realtime_factor",
        "speedup_vs_scipy",
        *EXTRA,
        "max_abs_error",
        "check",
    ]
    return B.markdown_table(rows, cols)


GNU_TIME = "/usr/bin/time"


def _run_measured(cmd: list[str], env: dict[str, str] | None) -> tuple[float, float, float]:
    """(wall s, cpu s, peak RSS MiB) of one command. The peak RSS comes from GNU time
    (Debian's ``time`` package), which forks the command itself: the rusage of a child
    of this process would report this process's own (large) peak, because Python
    spawns with vfork and Linux carries the parent's high-water mark across exec.
    Without GNU time the RSS is NaN (not measured)."""
    rss_file = Path(tempfile.mkstemp(prefix="rss-")[1])
    wrapped = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *cmd] if Path(GNU_TIME).exists() else cmd
    t0 = time.perf_counter()
    p = subprocess.Popen(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.stderr:
        p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        rss_file.unlink(missing_ok=True)
        raise RuntimeError(f"{cmd[0]} failed: {err.strip()[-500:]}")
    text = rss_file.read_text().strip().splitlines() if rss_file.exists() else []
    rss_file.unlink(missing_ok=True)
    mib = int(text[-1]) / 1024.0 if text and text[-1].isdigit() else float("nan")
    return dt, ru.ru_utime + ru.ru_stime, mib


def startup(work: Path, preset: Path, reps: int, csv_path: Path, a: argparse.Namespace) -> None:
    """One call per file, as in a shell loop or CI: ``fxcli process`` on a 5 s stereo
    24-bit WAV through the chain (warm: one run first), next to SoX and FFmpeg on the
    same file; the first run after an install (``fxcli-process-cold``: an empty design
    cache every time, nothing else is compiled at first use); the torch engine on the
    same file (``FXCLI_CPU_ENGINE=torch``: the CPU path before it went torch-free);
    ``fxcli --help``, ``fxcli presets`` and a bare ``import torch`` for scale. Wall and
    CPU seconds and the peak RSS of each command (its own rusage)."""
    # byte-code as an installed package has it (pip compiles at install; a source tree
    # run with PYTHONDONTWRITEBYTECODE=1 would compile every module on every start)
    import fxcli

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(fxcli.__file__).parent)],
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        capture_output=True,
        check=False,
    )
    src = work / "five_seconds.wav"
    sf.write(str(src), 0.5 * B.make_noise(2, 5 * a.sample_rate).T, a.sample_rate, subtype="PCM_24")
    out = work / "five_seconds_out.wav"
    base = {
        k: v
        for k, v in commands(src, out, preset).items()
        if k in ("fxcli-process", "sox", "ffmpeg")
    }
    env = {k: v for k, v in os.environ.items() if k not in ("FXCLI_CPU_ENGINE", "FXCLI_CACHE_DIR")}
    cases: list[tuple[str, list[str] | None, dict[str, str] | None]] = [
        ("fxcli-process", base["fxcli-process"], env),
        ("fxcli-process-cold", base["fxcli-process"], None),  # env set per run below
        ("fxcli-process-torch-engine", base["fxcli-process"], {**env, "FXCLI_CPU_ENGINE": "torch"}),
        ("sox", base["sox"], env),
        ("ffmpeg", base["ffmpeg"], env),
        ("fxcli-help", [*fxcli_cmd(), "--help"], env),
        ("fxcli-presets", [*fxcli_cmd(), "presets"], env),
        ("python-import-torch", [sys.executable, "-c", "import torch"], env),
    ]
    rows = []
    for name, cmd, run_env in cases:
        if cmd is None:
            continue
        ts, cs, rss = [], [], []
        for i in range(reps + 1):
            e = run_env
            if e is None:  # a fresh, empty design cache: the first run after an install
                e = {**env, "FXCLI_CACHE_DIR": tempfile.mkdtemp(prefix="cold-cache-", dir=work)}
            dt, cpu, mib = _run_measured(cmd, e)
            if i:
                ts.append(dt)
                cs.append(cpu)
                rss.append(mib)
        rows.append(
            {
                "what": name,
                "reps": reps,
                "min_s": round(min(ts), 3),
                "median_s": round(statistics.median(ts), 3),
                "max_s": round(max(ts), 3),
                "cpu_s": round(statistics.median(cs), 3),
                "peak_rss_mib": round(statistics.median(rss), 1),
            }
        )
        print(
            f"start-up {name}: median {statistics.median(ts):.3f} s, "
            f"peak RSS {statistics.median(rss):.0f} MiB",
            file=sys.stderr,
        )
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=STARTUP_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    if a.markdown:
        print(B.markdown_table(rows, STARTUP_COLUMNS))
    print(f"wrote {csv_path}", file=sys.stderr)


BATCH_COLUMNS = ["what", "files", "seconds_each", "reps", "min_s", "median_s", "max_s", "cpu_s"]


def batch(work: Path, preset: Path, a: argparse.Namespace, csv_path: Path) -> None:
    """A folder of ``--batch-files`` stereo 24-bit WAVs of ``--batch-seconds`` each through
    the same chain: one ``fxcli process in/ out/`` call against a shell-style loop of one
    SoX or FFmpeg call per file (what users of those tools run)."""
    src_dir, out_dir = work / "batch_in", work / "batch_out"
    src_dir.mkdir(exist_ok=True)
    out_dir.mkdir(exist_ok=True)
    n = round(a.batch_seconds * a.sample_rate)
    files = []
    for k in range(a.batch_files):
        path = src_dir / f"take{k:03d}.wav"
        if not path.exists():
            sf.write(str(path), 0.5 * B.make_noise(2, n, seed=k).T, a.sample_rate, "PCM_24")
        files.append(path)
    cases: dict[str, list[list[str]] | None] = {
        "fxcli-process-one-call": [
            [
                *fxcli_cmd(),
                "process",
                str(src_dir),
                str(out_dir),
                "--preset",
                str(preset),
                "--device",
                "cpu",
                "--overwrite",
                "--quiet",
                "--progress",
                "never",
            ]
        ],  # fmt: skip
    }
    for tool in ("sox", "ffmpeg"):
        per_file = [commands(f, out_dir / f.name, preset)[tool] for f in files]
        cases[f"{tool}-loop"] = None if per_file[0] is None else per_file  # type: ignore[assignment]
    rows = []
    for name, cmds in cases.items():
        if cmds is None:
            print(f"note: {name} skipped: not installed", file=sys.stderr)
            continue
        ts, cs = [], []
        for i in range(a.reps + 1):
            c0 = cpu_seconds()
            t0 = time.perf_counter()
            for cmd in cmds:
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode != 0:
                    raise RuntimeError(f"{name} failed: {p.stderr.strip()[-500:]}")
            if i:  # the first run warms the page cache (and the design cache)
                ts.append(time.perf_counter() - t0)
                cs.append(cpu_seconds() - c0)
        rows.append(
            {
                "what": name,
                "files": a.batch_files,
                "seconds_each": a.batch_seconds,
                "reps": a.reps,
                "min_s": round(min(ts), 3),
                "median_s": round(statistics.median(ts), 3),
                "max_s": round(max(ts), 3),
                "cpu_s": round(statistics.median(cs), 3),
            }
        )
        print(f"batch {name}: median {statistics.median(ts):.3f} s", file=sys.stderr)
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=BATCH_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    if a.markdown:
        print(B.markdown_table(rows, BATCH_COLUMNS))
    print(f"wrote {csv_path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--output", default=str(ROOT / "results" / "end_to_end.csv"))
    ap.add_argument("--workdir", default=None, help="where the WAVs go (default: a temp dir)")
    ap.add_argument("--markdown", action="store_true", help="also print a markdown table")
    ap.add_argument("--startup-only", action="store_true", help="only the start-up case")
    ap.add_argument("--batch-only", action="store_true", help="only the batch case")
    ap.add_argument("--batch-files", type=int, default=20, help="files of the batch case (0: skip)")
    ap.add_argument("--batch-seconds", type=float, default=60.0, help="seconds per batch file")
    ap.add_argument(
        "--startup-reps", type=int, default=3, help="timed runs of the 1-second start-up case"
    )
    a = ap.parse_args(argv)
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    fs, nch = a.sample_rate, a.channels
    frames = round(a.duration * fs)
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="fxcli-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        src = work / "in.wav"
        preset = work / "api_butterworth.yaml"
        preset.write_text(PRESET)
        if a.startup_only:
            startup(work, preset, a.startup_reps, Path(a.output).with_name("startup.csv"), a)
            return 0
        if a.batch_only:
            batch(work, preset, a, Path(a.output).with_name("batch.csv"))
            return 0
        x = B.make_noise(nch, frames)
        sf.write(str(src), 0.5 * x.T, fs, subtype="PCM_24")
        del x
        ref = reference(src)
        inproc = ["fxcli-engine-inprocess", "fxcli-engine-inprocess-sfio", "fxcli-io-inprocess"]
        outs = {name: work / f"out_{name}.wav" for name in [*commands(src, src, preset), *inproc]}
        cmds = commands(src, Path("OUT"), preset)
        times: dict[str, list[float]] = {}
        cpu: dict[str, float] = {}
        for name, out in outs.items():
            if name in inproc:

                def run(out: Path = out, name: str = name) -> None:
                    with wavfast_env(not name.endswith("-sfio")):
                        if name == "fxcli-io-inprocess":
                            run_io_inprocess(src, out)
                        else:
                            run_inprocess(src, out, preset)
            else:
                cmd = cmds[name]
                if cmd is None:
                    print(f"note: {name} skipped: not installed", file=sys.stderr)
                    continue
                cmd = [str(out) if c == "OUT" else c for c in cmd]

                def run(cmd: list[str] = cmd, out: Path = out, name: str = name) -> None:
                    p = subprocess.run(
                        cmd,
                        capture_output=True,
                        text=True,
                        env=dict(os.environ, PYTHONWARNINGS="ignore"),
                    )
                    if p.returncode != 0:
                        raise RuntimeError(f"{cmd[0]} failed: {p.stderr.strip()[-500:]}")
                    if name.endswith("-fsync"):
                        fd = os.open(out, os.O_RDONLY)
                        try:
                            os.fsync(fd)
                        finally:
                            os.close(fd)

            run()  # warm-up (page cache, numba cache) and output for the check
            ts, cs = [], []
            for _ in range(a.reps):
                c0 = cpu_seconds()
                t0 = time.perf_counter()
                run()
                ts.append(time.perf_counter() - t0)
                cs.append(cpu_seconds() - c0)
            times[name] = ts
            cpu[name] = statistics.median(cs)
            print(
                f"{name}: median {statistics.median(ts):.3f} s, cpu {cpu[name]:.3f} s",
                file=sys.stderr,
            )
        med = {k: statistics.median(v) for k, v in times.items()}
        fx = read(outs["fxcli-process"]) if "fxcli-process" in times else None
        rows = []
        sink = B.CsvSink(a.output, [*B.COLUMNS, *EXTRA])
        for name, ts in times.items():
            if name in IO_ONLY:
                err, diff = 0.0, None  # not filtered: nothing to compare
            else:
                y = read(outs[name])
                err = B.max_abs_error(y, ref)
                diff = B.max_abs_error(y, fx) if fx is not None else None
                del y
            row = B.make_row(
                "api-butterworth",
                name,
                B.cpu_name(),
                a.duration,
                nch,
                fs,
                frames,
                ts,
                [],
                err,
                med.get("scipy-script"),
            )
            for tool, col in (("sox", "speedup_vs_sox"), ("ffmpeg", "speedup_vs_ffmpeg")):
                row[col] = round(med[tool] / med[name], 3) if tool in med else None
            row["max_abs_diff_vs_fxcli"] = None if diff is None else float(f"{diff:.3g}")
            row["cpu_s"] = round(cpu[name], 3)
            if name in IO_ONLY:
                row["check"] = "n/a (I/O only)"
                row["max_abs_error"] = None
            rows.append(row)
            sink.write(row)
            gc.collect()
        status = finish(rows, sink, markdown(rows) if a.markdown else None)
        print(f"wrote {a.output}", file=sys.stderr)
        if a.startup_reps > 0:
            startup(work, preset, a.startup_reps, Path(a.output).with_name("startup.csv"), a)
        if a.batch_files > 0:
            batch(work, preset, a, Path(a.output).with_name("batch.csv"))
        return status
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
