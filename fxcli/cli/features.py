"""``fxcli features``: spectrograms, mel/log-mel spectrograms or MFCCs, one array per
file (:mod:`fxcli.batch.feature_run` runs them like ``process``: local threads or Ray,
shards, a manifest, URLs; :mod:`fxcli.engine.feature_engine` computes them;
``index.jsonl`` in OUTPUT lists them)."""

# No ``from __future__ import annotations`` here (issue 15): Typer reads the
# command's annotations at each call and evaluates string ones twice; names imported
# only for type checkers are quoted.

import math
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fxcli.cli.options import (
    MAX_CHUNK_SECONDS,
    MAX_SPOOL_GB,
    AddressOpt,
    InputListOpt,
    JsonOpt,
    NonFinite,
    NullOpt,
    OverwriteOpt,
    ProgressMode,
    ProgressOpt,
    QuietOpt,
    SkipExistingOpt,
    SpoolGbOpt,
    ThreadsOpt,
    apply_threads,
    check_inputs_and_output,
    check_number,
    cli_text,
    fail,
)
from fxcli.cli.report import Reporter
from fxcli.engine.feature_params import FEATURE_FORMATS


class FeatureDtype(str, Enum):
    float32 = "float32"
    float64 = "float64"


class FeatureKind(str, Enum):
    spectrogram = "spectrogram"
    mel = "mel"
    logmel = "logmel"
    mfcc = "mfcc"


if TYPE_CHECKING:  # the members are built below from FEATURE_FORMATS
    from fxcli.batch.feature_run import FeatureOptions

    class FeatureFormat(str, Enum):
        npy = "npy"

else:
    FeatureFormat = Enum("FeatureFormat", {name: name for name in FEATURE_FORMATS}, type=str)


class PadMode(str, Enum):
    constant = "constant"
    reflect = "reflect"


class MelScale(str, Enum):
    slaney = "slaney"
    htk = "htk"


class MelNorm(str, Enum):
    slaney = "slaney"
    none = "none"


def features(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="INPUT... OUTPUT: files, folders (mirrored under OUTPUT), quoted globs, URLs, "
            "or - (audio on stdin); the last path is the OUTPUT folder or URL (or an "
            ".npy/.npz/.pt file for one input). Paths on stdin: --input-list -."
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
    null: NullOpt = False,
    jobs: Annotated[
        int | None, typer.Option(help="Files read and run through the chain at once.")
    ] = None,
    nonfinite: Annotated[
        NonFinite, typer.Option(help="NaN/Inf input samples: error or zero.")
    ] = NonFinite.error,
    shard: Annotated[
        str | None,
        typer.Option(help="K/N: compute only shard K (0..N-1) of the sorted input list."),
    ] = None,
    manifest: Annotated[
        str | None,
        typer.Option(
            help="JSON-lines run log; a rerun with it skips files finished with the same "
            "input, preset and feature options."
        ),
    ] = None,
    executor: Annotated[
        str, typer.Option(help="local (threads; short files batched) | ray.")
    ] = "local",
    address: AddressOpt = None,
    spool_gb: SpoolGbOpt = 4.0,
    threads: ThreadsOpt = None,
    dtype: Annotated[
        FeatureDtype,
        typer.Option(
            "--dtype",
            help="Array dtype, for every input (the audio is computed in it too): float32 "
            "or float64.",
        ),
    ] = FeatureDtype.float32,
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
      sox take.wav -t wav - | fxcli features - feats/ --kind mel
      find in -name '*.wav' -print0 | fxcli features --input-list - -0 feats/
      fxcli features s3://bucket/in/ s3://bucket/feats/ --shard 3/16 --manifest run3.jsonl

    Exit codes: 0 all done, 1 some files failed, 2 usage or preset error, 130 interrupted,
    141 stdout closed (e.g. --json | head).
    """
    from fxcli.errors import PresetError, UsageError

    apply_threads(threads)
    policy = check_inputs_and_output(paths, input_list, overwrite, skip_existing)
    check_number("--chunk-seconds", chunk_seconds, above=0, at_most=MAX_CHUNK_SECONDS)
    check_number("--spool-gb", spool_gb, above=0, at_most=MAX_SPOOL_GB)
    check_number("--power", power, above=0)
    check_number("--f-min", f_min, at_least=0)
    check_number("--f-max", f_max, above=0)
    check_number("--amin", amin, above=0)
    check_number("--lifter", lifter, at_least=0)
    ref_value: str | float | None = ref
    if ref is not None and ref != "max":
        try:
            ref_value = float(ref)
        except ValueError:
            fail(f"--ref {ref!r}: allowed: max or a positive number")
        if not (math.isfinite(ref_value) and ref_value > 0):
            fail(f"--ref {ref!r}: allowed: max or a positive number")
    try:
        top = None if top_db.strip().lower() == "none" else float(top_db)
    except ValueError:
        fail(f"--top-db {top_db!r}: allowed: a number >= 0 or none")
    if top is not None and not (math.isfinite(top) and top >= 0):
        fail(f"--top-db {top_db!r}: allowed: a number >= 0 or none")
    from fxcli.batch.feature_run import FeatureOptions
    from fxcli.batch.run import BatchOptions
    from fxcli.engine.feature_params import FeatureParams

    params = FeatureParams(
        kind=kind.value, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
        window=window, center=center, pad_mode=pad_mode.value, power=power, n_mels=n_mels,
        f_min=f_min, f_max=f_max, mel_scale=mel_scale.value,
        norm=None if norm is MelNorm.none else norm.value, ref=ref_value, amin=amin,
        top_db=top, n_mfcc=n_mfcc, lifter=lifter,
    )  # fmt: skip
    batch = BatchOptions(
        device=device, jobs=jobs, overwrite=policy, input_list=input_list, null=null,
        shard=shard, manifest=manifest, executor=executor, address=address, spool_gb=spool_gb,
    )  # fmt: skip
    opts = FeatureOptions(
        params=params, preset_name=preset, out_fmt=fmt.value, image=image,
        chunk_seconds=chunk_seconds, nonfinite=nonfinite.value, dtype=dtype.value, batch=batch,
        words=cli_text,
    )  # fmt: skip
    from fxcli.cli.pipes import Pipes
    from fxcli.io.stdio import is_stdout

    try:
        if is_stdout(paths[-1]):
            raise UsageError(
                "OUTPUT -: features writes array files; give a folder, or an "
                f"{'/'.join(FEATURE_FORMATS.values())} name for one input"
            )
        if null and not input_list:
            raise UsageError("--null/-0 describes --input-list (NUL-separated names); give one")
        with Pipes(paths[:-1], paths[-1], input_list=input_list) as io:
            code = run_features(
                io.inputs, io.output, opts, json_mode=json_mode, quiet=quiet,
                progress=progress.value, names=io.names or None,
            )  # fmt: skip
    except (UsageError, PresetError) as exc:
        fail(exc)
    raise typer.Exit(code)


class FeatureReporter(Reporter):
    """:class:`Reporter` with a features line for finished files."""

    def ok_line(self, result: Any) -> str:
        shape = "x".join(str(s) for s in result.shape or [])
        img = f" + {result.image}" if result.image else ""
        return (
            f"ok      {result.input} -> {result.output}{img} ({result.seconds:.2f} s, "
            f"{result.sample_rate} Hz, {result.channels} ch; {shape} {result.dtype})"
        )


def run_features(
    inputs: list[str],
    output: str,
    opts: "FeatureOptions",
    *,
    json_mode: bool = False,
    quiet: bool = False,
    progress: str = "auto",
    names: dict[str, str] | None = None,
) -> int:
    """Returns the exit code; usage, preset and parameter errors are raised before any
    file is touched. The index is written after the run (a failure to write it
    counts as a failed file)."""
    from fxcli.batch.feature_run import prepare_features
    from fxcli.cli import gc_pause
    from fxcli.cli.batch_session import run_reported

    batch, index = prepare_features(inputs, output, opts)
    gc_pause.resume()  # start-up is over (fxcli.cli.gc_pause)

    def write_index(rep: Reporter) -> None:
        try:
            index.close()
        except Exception as exc:  # noqa: BLE001 - an OSError or a store's error
            rep.message(f"error: cannot write {index.root}/index.jsonl: {exc}")
            rep.count("failed")

    return run_reported(
        batch, json_mode=json_mode, quiet=quiet, progress=progress, reporter=FeatureReporter,
        names=names, on_file=index.add, after=write_index,
    )  # fmt: skip
