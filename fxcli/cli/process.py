"""``fxcli process``: run a preset's chain over audio files (:mod:`fxcli.batch` runs
them: local threads or Ray, shards, a manifest, URLs, several devices)."""

# No ``from __future__ import annotations`` here (issue 15): Typer reads the
# annotations of ``process`` at each call, and as strings it evaluates each one twice
# (~5 ms of a one-file call); every annotation in this module must name something
# defined or imported at its top.

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from fxcli.cli.conversion_options import BitsOpt, ChannelsOpt, RateOpt
from fxcli.cli.options import (
    MAX_CHUNK_SECONDS,
    MAX_SPOOL_GB,
    AddressOpt,
    Fmt,
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
    StrictOpt,
    Subtype,
    ThreadsOpt,
    apply_threads,
    check_inputs_and_output,
    check_number,
    cli_text,
    fail,
)
from fxcli.cli.output_options import BitrateModeOpt, BitrateOpt, KeepExtensionOpt, QualityOpt


@dataclass(frozen=True)
class ProcessOptions:
    """Everything a ``process`` run is asked for besides its inputs and OUTPUT.

    ``overwrite``: the policy for existing outputs, ``refuse`` | ``overwrite`` |
    ``skip``. ``shard`` ``"K/N"`` keeps every N-th file of the sorted list;
    ``manifest`` a JSON-lines file that records finished files and makes reruns
    skip them; inputs and OUTPUT may be fsspec URLs (spooled locally, at most
    ``spool_gb`` GB); ``device`` may be a list (``cuda:all``, ``cuda:0,cuda:1``: one
    pipeline per device); ``executor`` ``"ray"`` runs the files as Ray tasks on the
    cluster at ``address``. ``keep_extension``, ``quality``, ``bitrate``,
    ``bitrate_mode``: see :mod:`fxcli.io.containers`. ``allow_preset_paths``: the
    preset may name files outside its own folder (trusted presets; see
    :mod:`fxcli.preset.files`)."""

    preset: str
    device: str = "auto"
    chunk_seconds: float | None = None
    overwrite: str = "refuse"
    fmt: str = "same"
    subtype: str = "same"
    json_mode: bool = False
    quiet: bool = False
    progress: str = "auto"
    input_list: str | None = None
    jobs: int | None = None
    nonfinite: str = "error"
    shard: str | None = None
    manifest: str | None = None
    executor: str = "local"
    address: str | None = None
    spool_gb: float = 4.0
    allow_preset_paths: bool = False
    #: ``--null``: the ``--input-list`` is NUL-separated
    null: bool = False
    #: names the report shows instead of paths (the temporary files of ``-``)
    names: dict[str, str] | None = None
    keep_extension: bool = False
    quality: float | None = None
    bitrate: float | None = None
    bitrate_mode: str | None = None
    tags: bool = True
    strict: bool = False
    rate: int | None = None  # --rate/--channels: conversions after the preset
    channels: int | None = None
    #: ``--report``: the batch's HTML page (:mod:`fxcli.measure.batch_report`)
    report: str | None = None
    #: ``--dry-run``: every check and each file's plan, nothing read past the header
    dry_run: bool = False


def process(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="INPUT... OUTPUT: files, folders (mirrored under OUTPUT), quoted globs, or - "
            "(audio on stdin); the last path is the OUTPUT folder (or file, for one input; "
            "- or /dev/stdout: audio on stdout). Paths on stdin: --input-list -."
        ),
    ],
    preset: Annotated[
        str,
        typer.Option(
            "--preset", "-p", help="Preset file, a bundled preset name, or none (no chain)."
        ),
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
    fmt: Annotated[
        Fmt,
        typer.Option(
            "--format",
            help="Output container (default: the OUTPUT file's extension, else each input's own).",
        ),
    ] = Fmt.same,
    keep_extension: KeepExtensionOpt = False,
    quality: QualityOpt = None,
    bitrate: BitrateOpt = None,
    bitrate_mode: BitrateModeOpt = None,
    subtype: Annotated[
        Subtype,
        typer.Option(help="Output sample format (default: the preset's, else the input's)."),
    ] = Subtype.same,
    json_mode: JsonOpt = False,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.auto,
    input_list: InputListOpt = None,
    null: NullOpt = False,
    input_rate: Annotated[
        int | None, typer.Option(help="Raw PCM on stdin (-): its sample rate in Hz.")
    ] = None,
    input_channels: Annotated[
        int | None, typer.Option(help="Raw PCM on stdin (-): its channel count.")
    ] = None,
    input_subtype: Annotated[
        str | None,
        typer.Option(
            help="Raw PCM on stdin (-), little-endian: PCM_16, PCM_24, PCM_32, "
            "FLOAT, DOUBLE, PCM_U8, PCM_S8."
        ),
    ] = None,
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
    address: AddressOpt = None,
    spool_gb: SpoolGbOpt = 4.0,
    allow_preset_paths: Annotated[
        bool,
        typer.Option(
            "--allow-preset-paths",
            help="Trusted presets only: let the preset's coefficients_file / ir_file lie "
            "outside its own folder (still only regular files of bounded size, never "
            "/proc, /sys, /dev).",
        ),
    ] = False,
    threads: ThreadsOpt = None,
    tags: Annotated[
        bool,
        typer.Option(
            "--tags/--no-tags",
            help="Copy the input's tags (title, artist, album, ...) to the output where its "
            "container can hold them (default), or drop them.",
        ),
    ] = True,
    strict: StrictOpt = False,
    rate: RateOpt = None,
    channels: ChannelsOpt = None,
    bits: BitsOpt = None,
    report: Annotated[
        str | None,
        typer.Option(
            help="Write one self-contained HTML page for the batch: per file loudness, "
            "true peak, gain, clipping, notes, failures and a loudness plot; sortable.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            "-n",
            help="Check everything and print what each file would become (output name, "
            "rate, channels, subtype); read only headers, write nothing. Exit 1 if a "
            "file would fail.",
        ),
    ] = False,
) -> None:
    """Run a preset's chain over audio files, writing outputs in the input's format.

    \b
    Examples:
      fxcli process song.wav out/ --preset mastering
      fxcli process take.flac take.mp3 -p voice --bitrate 256
      fxcli process in/ out/ -p dataset --format wav --keep-extension
      fxcli process in/ out/ --preset presets/voice.yaml --device cuda --json
      fxcli process 'takes/**/*.flac' out/ -p voice --skip-existing
      find in -name '*.wav' -print0 | fxcli process --input-list - -0 out/ -p mastering
      sox in.wav -t wav - | fxcli process - - -p voice | sox -t wav - out.flac
      fxcli process s3://bucket/in/ s3://bucket/out/ -p voice --shard 3/16 --manifest run3.jsonl
      fxcli process in.flac out.wav -p none --rate 16000 --channels 1 --bits 16
      fxcli process in/ out/ -p voice --report report.html
      fxcli process in/ out/ -p mastering --format flac --dry-run

    Exit codes: 0 all done (files with warnings included, unless --strict), 1 some files
    failed (with --strict: or missed a promise: a loudness target, a ceiling, clipping),
    2 usage or preset error, 130 interrupted, 141 stdout closed (e.g. --json | head).
    """
    from fxcli.io.paths import UsageError
    from fxcli.preset.loader import PresetError

    apply_threads(threads)
    policy = check_inputs_and_output(paths, input_list, overwrite, skip_existing)
    check_number("--chunk-seconds", chunk_seconds, above=0, at_most=MAX_CHUNK_SECONDS)
    check_number("--spool-gb", spool_gb, above=0, at_most=MAX_SPOOL_GB)
    if bits is not None:
        if subtype.value != "same":
            fail("--bits and --subtype exclude each other")
        from fxcli.preset.conversions import bits_subtype  # loads PyYAML: only when used

        subtype = Subtype(bits_subtype(bits.value))
    opts = ProcessOptions(
        preset=preset,
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
        null=null,
        keep_extension=keep_extension,
        quality=quality,
        bitrate=bitrate,
        bitrate_mode=bitrate_mode.value if bitrate_mode is not None else None,
        tags=tags,
        strict=strict,
        rate=rate,
        channels=channels,
        report=report,
        dry_run=dry_run,
    )
    from dataclasses import replace

    from fxcli.cli.pipes import Pipes, raw_input

    try:
        raw = raw_input(input_rate, input_channels, input_subtype)
        if null and not input_list:
            raise UsageError("--null/-0 describes --input-list (NUL-separated names); give one")
        with Pipes(paths[:-1], paths[-1], fmt=fmt.value, input_list=input_list, raw=raw) as io:
            opts = replace(opts, names=io.names or None)
            code = io.finish(run_process(io.inputs, io.output, opts))
    except (UsageError, PresetError) as exc:
        fail(exc)
    raise typer.Exit(code)


#: ``FXCLI_CPU_ENGINE=torch`` keeps CPU runs on the torch engine (to compare the two)
ENV_CPU_ENGINE = "FXCLI_CPU_ENGINE"


def cpu_path_without_torch(preset: Any, device: str) -> bool:
    """Whether this run takes the torch-free CPU path, and if so switch the steps to it.

    Taken when the device is the CPU (``cpu``, or ``auto`` where no CUDA device can
    exist), every step type of the preset runs on numpy
    (:data:`fxcli.preset.spec.NUMPY_STEP_TYPES`), ``FXCLI_CPU_ENGINE`` is not
    ``torch`` and torch is not loaded in this process yet (a library caller or a test
    that imported torch gets the torch engine: the steps' base class follows torch)."""
    import os
    import sys

    from fxcli.engine.device import cuda_may_exist
    from fxcli.preset.spec import NUMPY_STEP_TYPES

    spec = device.strip().lower()
    if not (spec == "cpu" or (spec == "auto" and not cuda_may_exist())):
        return False
    engine = os.environ.get(ENV_CPU_ENGINE, "numpy").strip().lower()
    if engine not in ("numpy", "torch"):
        from fxcli.io.paths import UsageError

        raise UsageError(f"{ENV_CPU_ENGINE}={engine!r}: allowed: numpy, torch")
    if engine == "torch" or not all(s.type in NUMPY_STEP_TYPES for s in preset.steps):
        return False
    if "torch" in sys.modules:
        return False  # a library caller or a test loaded torch already: nothing to save
    from fxcli.steps import module

    if "fxcli.steps.base" in sys.modules and not module.torch_free():
        return False  # this process (a test, a library caller) already runs torch steps
    module.use_arrays()
    return module.torch_free()


def run_process(inputs: list[str], output: str | Path, opts: ProcessOptions) -> int:
    """Returns the exit code. Usage and preset errors are raised (UsageError,
    PresetError) before any file is touched. ``inputs`` and ``output`` name files:
    the command resolves ``-`` (audio through pipes) first (:mod:`fxcli.cli.pipes`)."""
    from fxcli.io.containers import LossyOptions, check_run
    from fxcli.io.paths import UsageError, format_extension
    from fxcli.preset import conversions

    preset = conversions.load(opts.preset, allow_outside=opts.allow_preset_paths)
    preset = conversions.with_conversions(preset, rate=opts.rate, channels=opts.channels)
    # decided before the engine is imported: the steps follow numpy or torch from here
    host = opts.executor == "local" and cpu_path_without_torch(preset, opts.device)
    from fxcli.batch import run as batch_run
    from fxcli.batch.devices import files_per_device, parse_devices
    from fxcli.batch.executors import EngineConfig
    from fxcli.batch.manifest import config_digest
    from fxcli.cli import gc_pause
    from fxcli.cli.batch_session import run_reported

    if opts.chunk_seconds is not None and not 0 < opts.chunk_seconds < float("inf"):
        raise UsageError(f"--chunk-seconds must be a finite number > 0, got {opts.chunk_seconds}")
    bopts = batch_run.BatchOptions(
        device=opts.device, jobs=opts.jobs, overwrite=opts.overwrite,
        input_list=opts.input_list, null=opts.null, shard=opts.shard, manifest=opts.manifest,
        executor=opts.executor, address=opts.address, spool_gb=opts.spool_gb,
    )  # fmt: skip
    batch_run.check_options(bopts)
    found = batch_run.find_tasks(
        inputs, str(output), bopts, format_extension(opts.fmt), keep_extension=opts.keep_extension
    )
    lossy = LossyOptions(opts.quality, opts.bitrate, opts.bitrate_mode)
    check_run([t.dest for t in found.tasks], opts.fmt, opts.subtype, lossy)
    tasks = batch_run.take_shard(found.tasks, bopts)
    page = None
    if opts.report is not None:  # a usage error before any file is processed
        from fxcli._version import __version__ as version
        from fxcli.measure.batch_report import BatchReport, check_report_path

        names = [n for t in tasks for n in (t.src, t.dest)]
        path = check_report_path(opts.report, names, str(output))
        page = BatchReport(path, opts.preset, version)
    if opts.executor == "ray":
        devices = batch_run.ray_devices(bopts)
    elif host:
        from fxcli.engine.device import HOST

        devices = [HOST]
    else:
        devices = list(parse_devices(opts.device))
    cfg = EngineConfig(
        preset, chunk_seconds=opts.chunk_seconds, fmt=opts.fmt, subtype=opts.subtype,
        nonfinite=opts.nonfinite, lossy=lossy, tags=opts.tags, strict=opts.strict,
        words=cli_text,
    )  # fmt: skip
    options: dict[str, Any] = {
        "format": opts.fmt,
        "subtype": opts.subtype,
        "nonfinite": opts.nonfinite,
    }
    if lossy != LossyOptions():
        options["lossy"] = [lossy.quality, lossy.bitrate, lossy.bitrate_mode]
    if not opts.tags:  # only when set: manifests of earlier runs stay valid
        options["tags"] = "none"
    if opts.strict:  # a file that passed without --strict is not done under it
        options["strict"] = "true"
    # only a manifest keeps the digest (hashing loads OpenSSL, ~3 ms of a one-file call)
    digest = config_digest(preset, options) if opts.manifest is not None else ""
    batch = batch_run.prepare(
        tasks, cfg, bopts, config_sha256=digest, devices=devices,
        default_jobs=lambda devs, n: files_per_device(list(devs), n),
        ignored=found.ignored, in_output=found.in_output, words=cli_text,
    )  # fmt: skip
    gc_pause.resume()  # start-up is over (fxcli.cli.gc_pause)
    if opts.dry_run:
        return _dry_run(tasks, cfg.build(devices[0], opts.overwrite), opts, found.ignored)
    if page is None:
        return run_reported(
            batch, json_mode=opts.json_mode, quiet=opts.quiet, progress=opts.progress,
            names=opts.names,
        )  # fmt: skip
    report = page

    def write_page(rep: Any, code: int, signum: int | None, wall_s: float) -> int:
        from fxcli.cli.signals import Stop

        late = Stop()  # Ctrl-C while the curves are measured: the page without them
        with late.installed():
            error = report.write(wall_s, ignored=found.ignored, signum=signum, cancel=late.is_set)
        if error:
            rep.message(error)
            return code or 1
        if not opts.quiet:
            rep.message(f"report: {report.path}")
        return code

    return run_reported(
        batch, json_mode=opts.json_mode, quiet=opts.quiet, progress=opts.progress,
        names=opts.names, on_file=lambda res: report.add(res.to_json()), finish=write_page,
    )  # fmt: skip


def _dry_run(tasks: list[Any], engine: Any, opts: ProcessOptions, ignored: int) -> int:
    """``--dry-run``: each file planned by the engine (header, output format, chain
    designed for its rate, encoder limits, existing outputs), one line each; URLs are
    listed without being fetched. Returns the exit code (1 if a file would fail)."""
    import time
    from pathlib import Path

    from fxcli.batch.remote import is_url
    from fxcli.cli.report import Reporter
    from fxcli.engine.runner import FileResult
    from fxcli.io.paths import Job

    t0 = time.perf_counter()
    rep = Reporter(json_mode=opts.json_mode, quiet=opts.quiet, progress="never")
    for task in tasks:
        if is_url(task.src) or is_url(task.dest):
            res = FileResult(task.src, task.dest, "planned", notes=["URL: not fetched"])
        else:
            res = engine.process(Job(Path(task.src), Path(task.dest)), dry_run=True)
        if opts.names:
            res.input = opts.names.get(res.input, res.input)
            res.output = opts.names.get(res.output, res.output)
        rep.file_done(res)
    rep.summary(ignored, time.perf_counter() - t0)
    return rep.exit_code(None)
