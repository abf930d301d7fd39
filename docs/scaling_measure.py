"""Per-core figures behind docs/scaling.md (issue #9): decode/encode throughput of
44.1 kHz stereo WAV and FLAC with soundfile and with fxcli's own I/O, SHA-256 (the
manifest's cost), and the CPU engine end to end, all on ONE thread.

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python docs/scaling_measure.py [SECONDS] [REPS]

Prints one JSON object per measurement and a Markdown table. ``x_rt_cpu`` is audio
seconds per CPU second of the process (all its threads: the engine decodes and
encodes on helper threads; one compute thread), i.e. what one core delivers, and
robust to other load on the machine; ``x_rt_wall`` is audio seconds per wall
second (best of REPS).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
FS = 44100


def music_like(seconds: float, seed: int = 0) -> np.ndarray:
    """(frames, 2) float32: lowpassed noise plus a few partials, peak about -6 dBFS
    (FLAC compresses it about like dense music; white noise would not compress)."""
    from scipy.signal import butter, sosfilt

    n = int(seconds * FS)
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    x = sosfilt(butter(2, 2000, fs=FS, output="sos"), rng.standard_normal((2, n)), axis=-1)
    for f, a in [(110, 0.3), (220, 0.2), (440, 0.1), (1320, 0.05)]:
        x += a * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28, (2, 1)))
    x *= 0.5 / np.max(np.abs(x))
    return x.T.astype(np.float32)


def timed(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    """(best wall s, median process CPU s) over reps."""
    walls, cpus = [], []
    for _ in range(reps):
        w, c = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - c)
        walls.append(time.perf_counter() - w)
    return min(walls), float(np.median(cpus))


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    tmp = Path(tempfile.mkdtemp(prefix="fxcli-scaling-"))
    x = music_like(seconds)
    rows = []

    def row(what: str, wall: float, cpu: float, nbytes: int | None = None) -> None:
        r = {
            "what": what,
            "audio_s": seconds,
            "wall_s": round(wall, 4),
            "cpu_s": round(cpu, 4),
            "x_rt_wall": round(seconds / wall, 1),
            "x_rt_cpu": round(seconds / max(cpu, 1e-9), 1),
            "file_MB": round(nbytes / 1e6, 2) if nbytes else None,
        }
        rows.append(r)
        print(json.dumps(r), flush=True)

    files = {}
    for name, fmt, sub in [
        ("wav16", "WAV", "PCM_16"),
        ("wav24", "WAV", "PCM_24"),
        ("flac16", "FLAC", "PCM_16"),
        ("flac24", "FLAC", "PCM_24"),
    ]:
        p = tmp / f"{name}.{fmt.lower()}"
        w, c = timed(lambda p=p, fmt=fmt, sub=sub: sf.write(p, x, FS, sub, format=fmt), reps)
        files[name] = p
        row(f"soundfile encode {name}", w, c, p.stat().st_size)
        w, c = timed(lambda p=p: sf.read(p, dtype="float32"), reps)
        row(f"soundfile decode {name}", w, c, p.stat().st_size)

    from fxcli.io.audio import AtomicWriter, output_format, probe, read_blocks

    for name in ("wav24", "flac24"):
        info = probe(files[name])

        def io_pass(info=info, name=name) -> None:
            ofmt = output_format(info, "same", "same", "same")
            dest = tmp / f"io-{name}{files[name].suffix}"
            with AtomicWriter(dest, FS, 2, ofmt, "none", frames_hint=info.frames) as wr:
                for block in read_blocks(info, 10 * FS):
                    wr.write(block)
                wr.commit()

        w, c = timed(io_pass, reps)
        row(f"fxcli I/O floor (read_blocks + AtomicWriter) {name}", w, c)

    def sha() -> None:
        h = hashlib.sha256()
        with open(files["wav24"], "rb") as f:
            while b := f.read(1 << 20):
                h.update(b)

    w, c = timed(sha, reps)
    row("sha256 of the wav24 file (manifest)", w, c, files["wav24"].stat().st_size)

    from fxcli.engine.device import resolve_device
    from fxcli.engine.runner import Engine
    from fxcli.io.paths import Job
    from fxcli.preset.loader import load_preset

    for preset in ("iir_chain", "dataset", "voice"):
        eng = Engine(load_preset(preset), resolve_device("cpu"), overwrite="overwrite")
        for name in ("wav24", "flac24"):
            src = files[name]
            job = Job(src, tmp / f"out-{preset}{src.suffix}")
            res = eng.process(job)  # warm-up: design, numba load
            assert res.status == "ok", res.error
            w, c = timed(lambda job=job, eng=eng: eng.process(job), reps)
            row(f"CPU engine {preset} {name}", w, c)

    print("\n| what | x realtime per core (CPU time) | x realtime (wall, best) | file MB |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['what']} | {r['x_rt_cpu']} | {r['x_rt_wall']} | {r['file_MB'] or ''} |")


if __name__ == "__main__":
    main()
