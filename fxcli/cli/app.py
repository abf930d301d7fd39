"""fxcli's command line. Commands are thin: the logic lives in fxcli.cli.process,
fxcli.engine and fxcli.preset. torch is imported only by commands that need it."""

from __future__ import annotations

import math
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from fxcli._version import __version__

app = typer.Typer(
    name="fxcli",
    help="Exact, streaming, GPU-accelerated audio filter chains from YAML presets.\n\n"
    "Example: fxcli process in/ out/ --preset mastering --device auto",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
presets_app = typer.Typer(help="List, show and validate presets.", invoke_without_command=True)
app.add_typer(presets_app, name="presets")


class Fmt(str, Enum):
    same = "same"
    wav = "wav"
    flac = "flac"


class Subtype(str, Enum):
    same = "same"
    PCM_16 = "PCM_16"
    PCM_24 = "PCM_24"
    PCM_32 = "PCM_32"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"


class ProgressMode(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


class NonFinite(str, Enum):
    error = "error"
    zero = "zero"


# Options shared by the commands that read inputs and write an OUTPUT tree.
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace existing outputs (atomically).")
]
SkipExistingOpt = Annotated[
    bool, typer.Option("--skip-existing", help="Leave existing outputs alone.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per file on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]
ProgressOpt = Annotated[
    ProgressMode,
    typer.Option(help="Progress bar on stderr: auto (terminals only), always, never."),
]
InputListOpt = Annotated[
    str | None, typer.Option(help="File with input paths, one per line (- for stdin).")
]


def _fail(message: str, code: int = 2) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


#: upper bounds of numeric options (beyond them a value is a typo, not a request)
MAX_CHUNK_SECONDS = 86400.0
MAX_SPOOL_GB = 1e6
MAX_BENCH_SECONDS = 3600.0


def _check_number(
    option: str,
    value: float | None,
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
) -> None:
    """Fail with a usage error (exit 2) naming ``option`` unless ``value`` is None or
    a finite number within the bounds (``nan``, ``inf`` and ``1e400`` never pass)."""
    if value is None:
        return
    ok = (
        math.isfinite(value)
        and (above is None or value > above)
        and (at_least is None or value >= at_least)
        and (at_most is None or value <= at_most)
    )
    if not ok:
        bounds = [
            f"> {above:g}" if above is not None else "",
            f">= {at_least:g}" if at_least is not None else "",
            f"<= {at_most:g}" if at_most is not None else "",
        ]
        allowed = " and ".join(b for b in bounds if b)
        _fail(f"{option} {value:g}: allowed: a finite number{' ' + allowed if allowed else ''}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fxcli {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Exact, streaming, GPU-accelerated audio filter chains from YAML presets."""


@app.command()
def process(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="INPUT... OUTPUT: files, folders (mirrored under OUTPUT), quoted globs, or - "
            "(paths on stdin); the last path is the OUTPUT folder (or file, for one input)."
        ),
    ],
    preset: Annotated[
        str, typer.Option("--preset", "-p", help="Preset file, or a bundled preset name.")
    ],
    device: Annotated[
        str,
        typer.Option(
            help="auto | cpu | cuda | cuda:N | cuda:all | a list (cuda:0,cuda:1): "
            "one pipeline per device, files spread across them."
        ),
    ] = "auto",
    chunk_seconds: Annotated[
        float | None,
        typer.Option(
            help="Seconds per chunk (default: 10 s on CPU, sized from free memory on CUDA)."
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    skip_existing: SkipExistingOpt = False,
    fmt: Annotated[Fmt, typer.Option("--format", help="Output container.")] = Fmt.same,
    subtype: Annotated[
        Subtype,
        typer.Option(help="Output sample format (default: the preset's, else the input's)."),
    ] = Subtype.same,
    json_mode: JsonOpt = False,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.auto,
    input_list: InputListOpt = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            help="Files processed at once per device (default: up to 4 on CPU, 2 on CUDA; "
            "with several GPUs sized from the CPU cores, 2-8 per GPU)."
        ),
    ] = None,
    nonfinite: Annotated[
        NonFinite,
        typer.Option(
            help="NaN/Inf input samples: error (fail the file, naming the first) or zero "
            "(replace with 0 and report the count)."
        ),
    ] = NonFinite.error,
    shard: Annotated[
        str | None,
        typer.Option(help="K/N: process only shard K (0..N-1) of the sorted input list."),
    ] = None,
    manifest: Annotated[
        str | None,
        typer.Option(
            help="JSON-lines run log; a rerun with it skips files finished with the same "
            "input and preset."
        ),
    ] = None,
    executor: Annotated[
        str, typer.Option(help="local (threads, one pipeline per device) | ray.")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster address (--executor ray; default: start a local one)."),
    ] = None,
    spool_gb: Annotated[
        float, typer.Option(help="Bound on the local copies of URL inputs/outputs, in GB.")
    ] = 4.0,
    allow_preset_paths: Annotated[
        bool,
        typer.Option(
            "--allow-preset-paths",
            help="Trusted presets only: let the preset's coefficients_file / ir_file lie "
            "outside its own folder (still only regular files of bounded size, never "
            "/proc, /sys, /dev).",
        ),
    ] = False,
) -> None:
    """Run a preset's chain over audio files, writing outputs in the input's format.

    \b
    Examples:
      fxcli process song.wav out/ --preset mastering
      fxcli process in/ out/ --preset presets/voice.yaml --device cuda --json
      fxcli process 'takes/**/*.flac' out/ -p voice --skip-existing
      find in -name '*.wav' | fxcli process - out/ -p mastering --quiet
      fxcli process s3://bucket/in/ s3://bucket/out/ -p voice --shard 3/16 --manifest run3.jsonl

    Exit codes: 0 all done, 1 some files failed, 2 usage or preset error, 130 interrupted,
    141 stdout closed (e.g. --json | head).
    """
    from fxcli.cli.process import run_process
    from fxcli.io.paths import UsageError
    from fxcli.preset.loader import PresetError

    if len(paths) < 2 and not (input_list and len(paths) == 1):
        _fail("give at least one INPUT and the OUTPUT folder")
    if overwrite and skip_existing:
        _fail("--overwrite and --skip-existing exclude each other")
    _check_number("--chunk-seconds", chunk_seconds, above=0, at_most=MAX_CHUNK_SECONDS)
    _check_number("--spool-gb", spool_gb, above=0, at_most=MAX_SPOOL_GB)
    policy = "overwrite" if overwrite else "skip" if skip_existing else "refuse"
    try:
        code = run_process(
            paths[:-1],
            paths[-1],
            preset_name=preset,
            device=device,
            chunk_seconds=chunk_seconds,
            overwrite=policy,
            fmt=fmt.value,
            subtype=subtype.value,
            json_mode=json_mode,
            quiet=quiet,
            progress=progress.value,
            input_list=input_list,
            jobs=jobs,
            nonfinite=nonfinite.value,
            shard=shard,
            manifest=manifest,
            executor=executor,
            address=address,
            spool_gb=spool_gb,
            allow_preset_paths=allow_preset_paths,
        )
    except (UsageError, PresetError) as exc:
        _fail(str(exc))
    raise typer.Exit(code)


@app.command()
def analyze(
    files: Annotated[
        list[str], typer.Argument(help="Audio files, or folders (searched recursively).")
    ],
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    json_mode: Annotated[
        bool, typer.Option("--json", help="One JSON object per file on stdout (no table).")
    ] = False,
) -> None:
    """Measure loudness (LUFS, LRA), peaks (dBFS, dBTP), RMS, DC and clipping per file.

    \b
    Examples:
      fxcli analyze song.wav
      fxcli analyze masters/ --json > levels.jsonl

    Exit codes: 0 all files read, 1 some files failed, 2 usage error.
    """
    from fxcli.analyze import run_analyze
    from fxcli.io.paths import UsageError

    try:
        code = run_analyze(files, device=device, json_mode=json_mode)
    except UsageError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


class FeatureKind(str, Enum):
    spectrogram = "spectrogram"
    mel = "mel"
    logmel = "logmel"
    mfcc = "mfcc"


class FeatureFormat(str, Enum):
    npy = "npy"
    npz = "npz"
    pt = "pt"


class PadMode(str, Enum):
    constant = "constant"
    reflect = "reflect"


class MelScale(str, Enum):
    slaney = "slaney"
    htk = "htk"


class MelNorm(str, Enum):
    slaney = "slaney"
    none = "none"


@app.command()
def features(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="INPUT... OUTPUT: files, folders (mirrored under OUTPUT), quoted globs, or - "
            "(paths on stdin); the last path is the OUTPUT folder (or an .npy/.npz/.pt file "
            "for one input)."
        ),
    ],
    kind: Annotated[FeatureKind, typer.Option(help="What to compute.")] = FeatureKind.logmel,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset", "-p", help="Run this preset's chain first (file or bundled name)."
        ),
    ] = None,
    n_fft: Annotated[int, typer.Option(help="FFT size in samples.")] = 2048,
    hop_length: Annotated[
        int | None, typer.Option(help="Samples between frames [default: win-length // 4].")
    ] = None,
    win_length: Annotated[
        int | None, typer.Option(help="Window length in samples [default: n-fft].")
    ] = None,
    window: Annotated[
        str, typer.Option(help="Window name for scipy.signal.get_window (periodic).")
    ] = "hann",
    center: Annotated[
        bool, typer.Option(help="Centre frames on their time (pad n-fft // 2 each side).")
    ] = True,
    pad_mode: Annotated[PadMode, typer.Option(help="Padding with --center.")] = PadMode.constant,
    power: Annotated[
        float, typer.Option(help="Exponent of the magnitude (2 power, 1 magnitude).")
    ] = 2.0,
    n_mels: Annotated[int, typer.Option(help="Mel bands.")] = 128,
    f_min: Annotated[float, typer.Option(help="Lowest mel edge in Hz.")] = 0.0,
    f_max: Annotated[
        float | None, typer.Option(help="Highest mel edge in Hz [default: half the rate].")
    ] = None,
    mel_scale: Annotated[MelScale, typer.Option(help="Mel scale formula.")] = MelScale.slaney,
    norm: Annotated[
        MelNorm, typer.Option(help="Mel filter normalization (slaney: equal area).")
    ] = MelNorm.slaney,
    ref: Annotated[
        str | None,
        typer.Option(help="dB reference: max, or a power value [default: max; mfcc: 1.0]."),
    ] = None,
    amin: Annotated[float, typer.Option(help="Floor of the power before the log.")] = 1e-10,
    top_db: Annotated[
        str, typer.Option(help="Clip dB values this far below the file's maximum (or none).")
    ] = "80",
    n_mfcc: Annotated[int, typer.Option(help="MFCC coefficients.")] = 20,
    lifter: Annotated[float, typer.Option(help="MFCC liftering (0: none).")] = 0.0,
    fmt: Annotated[
        FeatureFormat, typer.Option("--format", help="Array file format.")
    ] = FeatureFormat.npy,
    image: Annotated[
        bool, typer.Option("--image", help="Also write a PNG per file (needs matplotlib).")
    ] = False,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    chunk_seconds: Annotated[
        float | None,
        typer.Option(help="Seconds per chunk; longer files stream, shorter ones are batched."),
    ] = None,
    overwrite: OverwriteOpt = False,
    skip_existing: SkipExistingOpt = False,
    json_mode: JsonOpt = False,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.auto,
    input_list: InputListOpt = None,
    jobs: Annotated[
        int | None, typer.Option(help="Files read and run through the chain at once.")
    ] = None,
    nonfinite: Annotated[
        NonFinite, typer.Option(help="NaN/Inf input samples: error or zero.")
    ] = NonFinite.error,
) -> None:
    """Compute spectrograms, mel/log-mel spectrograms or MFCCs; one array per file.

    Arrays are (channels, bins, frames); index.jsonl in OUTPUT lists them with their
    shape, rate and parameters. Defaults are librosa's (hann, centred with zero
    padding, power 2, slaney mel scale and norm, ref max, amin 1e-10, top_db 80).

    \b
    Examples:
      fxcli features corpus/ feats/ --preset dataset --kind logmel --image
      fxcli features take.wav feats/ --kind mfcc --n-mfcc 13 --format npz
      fxcli features 'in/**/*.flac' feats/ --n-fft 1024 --hop-length 512 --n-mels 64

    Exit codes: 0 all done, 1 some files failed, 2 usage or preset error, 130 interrupted.
    """
    from fxcli.cli.features import FeatureParams, FeatureUsageError, run_features
    from fxcli.io.paths import UsageError
    from fxcli.preset.loader import PresetError

    if len(paths) < 2 and not (input_list and len(paths) == 1):
        _fail("give at least one INPUT and the OUTPUT folder")
    if overwrite and skip_existing:
        _fail("--overwrite and --skip-existing exclude each other")
    _check_number("--chunk-seconds", chunk_seconds, above=0, at_most=MAX_CHUNK_SECONDS)
    _check_number("--power", power, above=0)
    _check_number("--f-min", f_min, at_least=0)
    _check_number("--f-max", f_max, above=0)
    _check_number("--amin", amin, above=0)
    _check_number("--lifter", lifter, at_least=0)
    ref_value: str | float | None = ref
    if ref is not None and ref != "max":
        try:
            ref_value = float(ref)
        except ValueError:
            _fail(f"--ref {ref!r}: allowed: max or a positive number")
        if not (math.isfinite(ref_value) and ref_value > 0):
            _fail(f"--ref {ref!r}: allowed: max or a positive number")
    try:
        top = None if top_db.strip().lower() == "none" else float(top_db)
    except ValueError:
        _fail(f"--top-db {top_db!r}: allowed: a number >= 0 or none")
    if top is not None and not (math.isfinite(top) and top >= 0):
        _fail(f"--top-db {top_db!r}: allowed: a number >= 0 or none")
    params = FeatureParams(
        kind=kind.value,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode.value,
        power=power,
        n_mels=n_mels,
        f_min=f_min,
        f_max=f_max,
        mel_scale=mel_scale.value,
        norm=None if norm is MelNorm.none else norm.value,
        ref=ref_value,
        amin=amin,
        top_db=top,
        n_mfcc=n_mfcc,
        lifter=lifter,
    )
    policy = "overwrite" if overwrite else "skip" if skip_existing else "refuse"
    try:
        code = run_features(
            paths[:-1],
            Path(paths[-1]),
            params=params,
            preset_name=preset,
            out_fmt=fmt.value,
            image=image,
            device=device,
            chunk_seconds=chunk_seconds,
            overwrite=policy,
            json_mode=json_mode,
            quiet=quiet,
            progress=progress.value,
            input_list=input_list,
            jobs=jobs,
            nonfinite=nonfinite.value,
        )
    except (UsageError, PresetError, FeatureUsageError) as exc:
        _fail(str(exc))
    raise typer.Exit(code)


@presets_app.callback()
def presets_list(ctx: typer.Context) -> None:
    """List the bundled presets (name and description)."""
    if ctx.invoked_subcommand is not None:
        return
    from fxcli.preset.loader import BUNDLED_DIR, PresetError, bundled_names, load_preset

    for name in bundled_names():
        try:
            desc = load_preset(str(BUNDLED_DIR / f"{name}.yaml")).description
        except PresetError as exc:
            desc = f"(invalid: {exc})"
        typer.echo(f"{name:<12} {desc.splitlines()[0] if desc else ''}")


@presets_app.command("show")
def presets_show(name: Annotated[str, typer.Argument(help="Bundled preset name or path.")]) -> None:
    """Print a preset's YAML."""
    from fxcli.preset.loader import PresetError, resolve_preset_path

    try:
        typer.echo(resolve_preset_path(name).read_text(encoding="utf-8"), nl=False)
    except PresetError as exc:
        _fail(str(exc))


@presets_app.command("validate")
def presets_validate(
    files: Annotated[list[str], typer.Argument(help="Preset files or bundled names.")],
    sample_rate: Annotated[
        list[int] | None, typer.Option(help="Also design every step at this rate (repeatable).")
    ] = None,
) -> None:
    """Check presets (keys, values, and with --sample-rate the designs). Exit 2 on error."""
    from fxcli.preset.loader import PresetError, load_preset

    bad = 0
    for f in files:
        try:
            preset = load_preset(f)
            if sample_rate:
                from fxcli.steps import build_chain

                for sr in sample_rate:
                    build_chain(preset.steps, sr, 2)  # designs checked for stereo input
            typer.echo(f"ok: {preset.source} ({len(preset.steps)} steps)")
        except PresetError as exc:
            sys.stderr.write(f"error: {exc}\n")
            bad += 1
    raise typer.Exit(2 if bad else 0)


@presets_app.command("schema")
def presets_schema() -> None:
    """Print the JSON Schema of presets (for editors)."""
    import json

    from fxcli.preset.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
def bench(
    chain: Annotated[
        str,
        typer.Option(
            help="iir | fir | api (the seed benchmark chains) or any preset path or bundled name."
        ),
    ] = "iir",
    durations: Annotated[
        str | None,
        typer.Option(
            help="Signal durations in seconds, comma-separated [default: 5,60,600; api: 120]."
        ),
    ] = None,
    channels: Annotated[
        str | None, typer.Option(help="Channel counts, comma-separated [default: 1,8; api: 8].")
    ] = None,
    backends: Annotated[
        str,
        typer.Option(
            help="Comma-separated: cpu, cuda, scipy, torchaudio, torchfx (absent ones are "
            "skipped with a note)."
        ),
    ] = "cpu,cuda,scipy",
    reps: Annotated[int, typer.Option(help="Timed runs per case (at most).")] = 5,
    warmup: Annotated[
        int, typer.Option(help="Warm-up runs per case (the output-check run is the first).")
    ] = 1,
    max_seconds: Annotated[
        float,
        typer.Option(
            help="Time cap per backend and case; fewer reps are run (and recorded) when "
            "it is reached, at least one."
        ),
    ] = 30.0,
    sample_rate: Annotated[int, typer.Option(help="Sample rate in Hz.")] = 44100,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="CSV file [default: fxcli-bench-CHAIN.csv]."),
    ] = None,
    plot: Annotated[
        str | None,
        typer.Option(
            help="Also draw throughput vs duration to this PNG (needs matplotlib: "
            "pip install 'fxcli[plot]')."
        ),
    ] = None,
    json_mode: Annotated[
        bool, typer.Option("--json", help="One JSON object per result row on stdout (no table).")
    ] = False,
) -> None:
    """Time a chain over durations x channel counts x backends; check outputs; write CSV.

    Every backend's output is first compared with a float64 SciPy reference: the
    max abs error goes in the CSV and a backend off by more than 1e-4 is flagged
    MISMATCH. Times are medians (with min and max) of the kernel only: coefficient
    design and (on CUDA) host-device transfers are excluded, the transfers
    reported in transfer_s. Progress and skip notes go to stderr.

    \b
    Examples:
      fxcli bench --durations 5,60 --channels 1,8
      fxcli bench --chain fir --backends cpu,scipy --reps 3 --plot fir.png
      fxcli bench --chain api                  # 8 ch x 120 s, like the seed's api benchmark
      fxcli bench --chain presets/voice.yaml --durations 1,10 --max-seconds 5 --json
      fxcli bench --durations 1,5,180,300,600 --channels 1,2,4,8,12 --max-seconds 20

    Exit codes: 0 done, 1 some backend's output was flagged MISMATCH, 2 usage error.
    """
    from fxcli import benchmark as B

    try:
        durs = B.parse_durations(durations) if durations is not None else None
        if durs is not None and max(durs) > MAX_BENCH_SECONDS:
            raise B.BenchError(
                f"--durations: {max(durs):g} s: allowed: at most {MAX_BENCH_SECONDS:g} s"
            )
        chans = B.parse_channels(channels) if channels is not None else None
        names = B.parse_backends(backends)
        if reps < 1:
            raise B.BenchError("--reps must be at least 1")
        if warmup < 0:
            raise B.BenchError("--warmup must be 0 or more")
        if not 0 < max_seconds < float("inf"):
            raise B.BenchError("--max-seconds must be a positive number")
        if sample_rate < 1:
            raise B.BenchError("--sample-rate must be a positive integer")
        designed = B.resolve_chain(chain, sample_rate)
        if durs is None:
            durs = [120.0] if designed.name == "api" else [5.0, 60.0, 600.0]
        if chans is None:
            chans = [8] if designed.name == "api" else [1, 8]
        if plot:
            B.check_plot_available()
        sink = B.CsvSink(output or f"fxcli-bench-{designed.name}.csv")
    except B.BenchError as exc:
        _fail(str(exc))

    def on_row(row: dict) -> None:
        sink.write(row)
        if json_mode:
            typer.echo(B.json_line(row))

    def log(msg: str) -> None:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    try:
        rows = B.run_bench(
            designed,
            durs,
            chans,
            names,
            reps=reps,
            warmup=warmup,
            max_seconds=max_seconds,
            sample_rate=sample_rate,
            on_row=on_row,
            log=log,
        )
    except B.BenchError as exc:
        _fail(str(exc))
    finally:
        sink.close()
    if not json_mode:
        B.print_table(rows)
    log(f"wrote {sink.path} ({len(rows)} rows)")
    if plot:
        try:
            B.write_plot(rows, plot)
        except B.BenchError as exc:
            _fail(str(exc))
        log(f"wrote {plot}")
    bad = [r for r in rows if r["check"] != "ok"]
    if bad:
        names_bad = sorted({r["backend"] for r in bad})
        sys.stderr.write(
            f"error: {len(bad)} result(s) MISMATCH the float64 reference "
            f"(max abs error > {B.ERROR_THRESHOLD:g}): {', '.join(names_bad)}\n"
        )
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point.

    Once torch is loaded, exit with ``os._exit`` after flushing: every output is
    already fsynced and renamed by then, and torch's interpreter teardown costs
    about a second, more than a short file's processing.
    """
    import os
    import signal

    def early_exit(signum: int, frame: object) -> None:  # until `process` installs its own
        os._exit(128 + signum)  # nothing written yet; an exception could abort inside C code

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, early_exit)
    try:
        app()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError):
            pass
    if "torch" in sys.modules:
        os._exit(code)
    sys.exit(code)
