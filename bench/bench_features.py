#!/usr/bin/env python
"""Log-mel speed: an hour of 16 kHz mono audio in 10 s files, fxcli vs librosa.

Issue #7's benchmark. The audio is synthesized (a chirp plus noise per file, float32,
``--files`` files of ``--seconds`` s; default 360 x 10 s = one hour) and held in
memory, so only the feature computation is timed. Cases (each over all files; one
warm-up, then ``--reps`` rounds in which every case runs once, interleaved so that
changes in machine load hit all cases alike; median and min reported):

- ``librosa``: per file ``power_to_db(feature.melspectrogram(y, sr), ref=np.max)``
  (librosa's defaults, as its users call it);
- ``fxcli-batched``: :class:`fxcli.features.MelSpectrogram` on batches of files
  (``--batch`` files, default 4, about what ``fxcli features`` puts in one CPU batch;
  ``--cuda-batch`` 64 on the GPU), then per file the
  dB conversion (``LogMelSpectrogram.from_power``, ``ref`` max over the file);
- ``fxcli-one-by-one``: ``LogMelSpectrogram`` per file;
- ``cuda-batched`` (when CUDA is available): the batched case on the GPU, from host
  arrays to host arrays (transfers included) and ``cuda-batched-resident`` (audio
  already on the GPU, result left there; synchronized).

Every case's output is compared with librosa's (max abs dB difference in
``max_db_diff``). ``ratio`` is librosa's median time over the case's (above 1:
faster than librosa), ``ratio_min`` the same for the minima. ``--threads`` (default
1) sets torch's threads and the BLAS/OpenMP threads numpy uses, for both sides
alike. Two parameter sets: librosa's defaults (``n_fft`` 2048, hop 512, 128 mels)
and the seed article's (1024, 512, 64 mels).

With ``--end-to-end``, also files on disk to arrays on disk: the files are written
as 16-bit WAVs, then ``fxcli features`` (in process; decoding, batching, atomic .npy
writes, index.jsonl) is timed against a librosa loop (``soundfile.read``, the same
features, ``np.save``).

Usage::

    python bench/bench_features.py [--files 360] [--seconds 10] [--reps 3]
        [--threads 1] [--batch 4] [--end-to-end] [--output bench/results/features.csv]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def _threads_from_argv() -> str:
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


# BLAS / OpenMP thread counts must be set before numpy is imported
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = _threads_from_argv()

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from fxcli import features as FT  # noqa: E402

COLUMNS = [
    "config",
    "case",
    "device",
    "threads",
    "files",
    "audio_s",
    "median_s",
    "min_s",
    "ratio",
    "ratio_min",
    "x_realtime",
    "max_db_diff",
    "note",
]
CONFIGS = {
    "librosa-defaults": dict(n_fft=2048, hop_length=512, n_mels=128),
    "article": dict(n_fft=1024, hop_length=512, n_mels=64),
}


def synth(files: int, n: int, fs: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(n) / fs
    out = np.empty((files, n), dtype=np.float32)
    for i in range(files):
        f0 = 100 + 20 * (i % 50)
        out[i] = 0.4 * np.sin(2 * np.pi * (f0 * t + 300 * t**2)) + 0.05 * rng.standard_normal(n)
    return out


def bench_config(cname: str, cfg: dict, audio: np.ndarray, args, rows: list[dict]) -> None:
    import librosa

    fs = args.sample_rate
    audio_s = args.files * args.seconds
    lm = FT.LogMelSpectrogram(**cfg, fs=fs)

    def run_librosa() -> list[np.ndarray]:
        return [
            librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=fs, **cfg), ref=np.max)
            for y in audio
        ]

    def run_batched(lm: FT.LogMelSpectrogram, device: str, src: torch.Tensor, keep: bool):
        out = []
        size = args.cuda_batch if device == "cuda" else args.batch
        for s in range(0, args.files, size):
            mel = lm.mel(src[s : s + size].to(device))
            for i in range(mel.shape[0]):
                d = lm.from_power(mel[i])
                out.append(d if keep else d.cpu().numpy())
        return out

    def run_single() -> list[np.ndarray]:
        return [lm(torch.from_numpy(y)).numpy() for y in audio]

    host = torch.from_numpy(audio)
    cases: list[tuple[str, Any, str, str, Any]] = [
        ("librosa", run_librosa, "cpu", "reference", lambda: None),
        ("fxcli-batched", lambda: run_batched(lm, "cpu", host, False), "cpu",
         f"batches of {args.batch} files", lambda: None),
        ("fxcli-one-by-one", run_single, "cpu", "", lambda: None),
    ]  # fmt: skip
    if torch.cuda.is_available():
        sync = torch.cuda.synchronize
        lmc = FT.LogMelSpectrogram(**cfg, fs=fs).to("cuda")
        dev = host.cuda()
        cases += [
            ("cuda-batched", lambda: run_batched(lmc, "cuda", host, False), "cuda",
             f"batches of {args.cuda_batch}; host arrays in and out", sync),
            ("cuda-batched-resident", lambda: run_batched(lmc, "cuda", dev, True), "cuda",
             f"batches of {args.cuda_batch}; audio and result on the GPU", sync),
        ]  # fmt: skip
    else:
        print("no CUDA device: GPU cases skipped", file=sys.stderr)
    outputs = {}
    for name, fn, _, _, sync_fn in cases:  # warm-up, and the outputs to check
        outputs[name] = [np.asarray(o.cpu() if hasattr(o, "cpu") else o) for o in fn()]
        sync_fn()
    times: dict[str, list[float]] = {c[0]: [] for c in cases}
    for _ in range(args.reps):  # interleaved: load changes hit every case alike
        for name, fn, _, _, sync_fn in cases:
            t0 = time.perf_counter()
            fn()
            sync_fn()
            times[name].append(time.perf_counter() - t0)
    ref = outputs["librosa"]
    ref_med = statistics.median(times["librosa"])
    ref_min = min(times["librosa"])
    for name, _, device, note, _ in cases:
        t = times[name]
        med = statistics.median(t)
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(outputs[name], ref, strict=True))
        r = dict(
            config=cname,
            case=name,
            device=device,
            threads=args.threads,
            files=args.files,
            audio_s=audio_s,
            median_s=round(med, 4),
            min_s=round(min(t), 4),
            ratio=round(ref_med / med, 2),
            ratio_min=round(ref_min / min(t), 2),
            x_realtime=round(audio_s / med, 1),
            max_db_diff=f"{diff:.2g}",
            note=note,
        )
        rows.append(r)
        print(
            f"{cname:17} {name:22} {device:5} median {med:7.3f} s  min {min(t):7.3f} s  "
            f"x{r['ratio']:<5} (min x{r['ratio_min']:<5}) {r['x_realtime']:>8}x realtime  "
            f"max dB diff {r['max_db_diff']}",
            file=sys.stderr,
        )


def bench_end_to_end(audio: np.ndarray, args, rows: list[dict]) -> None:
    """Files on disk (16-bit WAV) to .npy files: ``fxcli features`` (in process, no
    preset, log-mel with the CLI defaults, atomic writes and index) vs a librosa loop
    (``soundfile.read``, melspectrogram, power_to_db, ``np.save``). Interleaved reps."""
    import shutil
    import tempfile

    import librosa
    import soundfile as sf

    from fxcli.batch.feature_run import FeatureOptions
    from fxcli.batch.run import BatchOptions
    from fxcli.cli.features import run_features
    from fxcli.engine.feature_params import FeatureParams

    fs = args.sample_rate
    audio_s = args.files * args.seconds
    tmp = Path(tempfile.mkdtemp(prefix="fxcli-bench-features-"))
    try:
        src = tmp / "in"
        src.mkdir()
        for i, y in enumerate(audio):
            sf.write(str(src / f"f{i:04d}.wav"), y, fs, subtype="PCM_16")

        def run_librosa() -> None:
            out = tmp / "librosa"
            out.mkdir(exist_ok=True)
            for path in sorted(src.iterdir()):
                y, sr = sf.read(str(path), dtype="float32")
                db = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr), ref=np.max)
                np.save(out / f"{path.stem}.npy", db[None])

        def run_fxcli() -> None:
            batch = BatchOptions(device="cpu", overwrite="overwrite", jobs=args.threads)
            opts = FeatureOptions(params=FeatureParams(), out_fmt="npy", batch=batch)
            code = run_features([str(src)], str(tmp / "fxcli"), opts, quiet=True, progress="never")
            assert code == 0

        cases = [("e2e-librosa", run_librosa), ("e2e-fxcli-features", run_fxcli)]
        for _, fn in cases:
            fn()
        a = np.load(tmp / "librosa" / "f0000.npy")
        b = np.load(tmp / "fxcli" / "f0000.npy")
        diff = float(np.max(np.abs(a - b)))
        times: dict[str, list[float]] = {c: [] for c, _ in cases}
        for _ in range(args.reps):
            for name, fn in cases:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        ref_med, ref_min = statistics.median(times["e2e-librosa"]), min(times["e2e-librosa"])
        for name, _ in cases:
            t = times[name]
            med = statistics.median(t)
            rows.append(
                dict(
                    config="librosa-defaults",
                    case=name,
                    device="cpu",
                    threads=args.threads,
                    files=args.files,
                    audio_s=audio_s,
                    median_s=round(med, 4),
                    min_s=round(min(t), 4),
                    ratio=round(ref_med / med, 2),
                    ratio_min=round(ref_min / min(t), 2),
                    x_realtime=round(audio_s / med, 1),
                    max_db_diff=f"{diff:.2g}",
                    note="16-bit WAV files in, .npy files out",
                )
            )
            print(
                f"end to end        {name:22} cpu   median {med:7.3f} s  min {min(t):7.3f} s  "
                f"x{rows[-1]['ratio']:<5} (min x{rows[-1]['ratio_min']:<5})",
                file=sys.stderr,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=360)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sample-rate", type=int, default=16000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4, help="files per batch on the CPU")
    ap.add_argument("--cuda-batch", type=int, default=64, help="files per batch on CUDA")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument(
        "--end-to-end", action="store_true", help="also files on disk to .npy: CLI vs librosa"
    )
    ap.add_argument("--output", default=str(ROOT / "results" / "features.csv"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import librosa
    except ImportError:
        sys.exit("bench_features needs librosa (pip install librosa), the reference")
    fs = args.sample_rate
    n = round(args.seconds * fs)
    audio = synth(args.files, n, fs)
    audio_s = args.files * args.seconds
    rows: list[dict] = []
    print(
        f"{args.files} files x {args.seconds:g} s at {fs} Hz ({audio_s / 3600:.3g} h), "
        f"threads {args.threads}, torch {torch.__version__}, librosa {librosa.__version__}",
        file=sys.stderr,
    )
    for cname in args.configs.split(","):
        bench_config(cname, CONFIGS[cname], audio, args, rows)
    if args.end_to_end:
        bench_end_to_end(audio, args, rows)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
