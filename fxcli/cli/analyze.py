"""``fxcli analyze``: levels and loudness per file (:mod:`fxcli.measure.analyze`),
as a table per file on stdout or one JSON object per file."""

# No ``from __future__ import annotations`` here (issue 15): Typer reads the
# command's annotations at each call and evaluates string ones twice; names imported
# only for type checkers are quoted.

import json
import math
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fxcli.cli.options import InputListOpt, NullOpt, ThreadsOpt, apply_threads, cli_text, fail
from fxcli.cli.report import Reporter

if TYPE_CHECKING:
    from fxcli.measure.analyze import FileAnalysis


def analyze(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Audio files, folders (searched recursively), quoted globs, or - (audio on "
            "stdin; paths on stdin: --input-list -)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    json_mode: Annotated[
        bool, typer.Option("--json", help="One JSON object per file on stdout (no table).")
    ] = False,
    input_list: InputListOpt = None,
    null: NullOpt = False,
    plot: Annotated[
        str | None,
        typer.Option(
            help="PNG of the loudness over time (momentary, short-term, integrated, true "
            "peak, LRA band); one INPUT file."
        ),
    ] = None,
    threads: ThreadsOpt = None,
) -> None:
    """Measure loudness (LUFS, LRA), peaks (dBFS, dBTP), RMS, DC and clipping per file.

    \b
    Examples:
      fxcli analyze song.wav
      fxcli analyze masters/ --json > levels.jsonl
      fxcli analyze 'takes/**/*.flac'
      find in -name '*.wav' | fxcli analyze --input-list - --json
      sox take.wav -t wav - | fxcli analyze -
      fxcli analyze song.wav --plot loudness.png

    Exit codes: 0 all files read, 1 some files failed, 2 usage error, 141 stdout closed.
    """
    from fxcli.io.paths import UsageError

    apply_threads(threads)
    if not files and not input_list:
        fail("give at least one INPUT (a file, folder, glob, - or --input-list)")
    from fxcli.cli.pipes import Pipes

    try:
        if null and not input_list:
            raise UsageError("--null/-0 describes --input-list (NUL-separated names); give one")
        if plot is not None:
            _check_plot(plot, files or [], input_list)
        with Pipes(files or [], "", input_list=input_list) as io:
            code = run_analyze(
                io.inputs, device=device, json_mode=json_mode, input_list=input_list,
                null=null, names=io.names, plot=plot,
            )  # fmt: skip
    except UsageError as exc:
        fail(exc)
    raise typer.Exit(code)


class AnalyzeReporter(Reporter):
    """Errors on stderr; a table per file on stdout, or ``--json`` lines."""

    def __init__(self, *, json_mode: bool) -> None:
        super().__init__(json_mode=json_mode, quiet=False)
        self.out = None
        if not json_mode:
            from rich.console import Console

            self.out = Console(highlight=False, soft_wrap=True)

    def file_done(self, result: Any, key: str | None = None) -> None:
        self.count(key or result.status)
        if result.status == "failed":
            sys.stderr.write(f"error: {result.input}: {result.error}\n")
            sys.stderr.flush()
        if self.json_mode:
            self.write_stdout(json.dumps(result.to_json(), allow_nan=False) + "\n")
        elif self.out is not None and result.status == "ok":
            print_file(result, self.out)


def run_analyze(
    items: list[str],
    *,
    device: str,
    json_mode: bool,
    input_list: str | None = None,
    null: bool = False,
    names: dict[str, str] | None = None,
    plot: str | None = None,
) -> int:
    """Returns the exit code. Inputs are found as for ``process`` (files, folders, globs
    and ``--input-list``, ``null``: NUL-separated; a missing file is reported as
    failed); ``names`` maps paths to the names reports show (a spooled stdin: ``-``);
    ``plot``: a PNG of the (one) file's loudness over time.
    Finding no audio file and an invalid ``device`` raise
    :class:`fxcli.io.paths.UsageError` (exit 2, before any file is read)."""
    from fxcli.cli import gc_pause
    from fxcli.cli.signals import Stop
    from fxcli.engine.device import cuda_may_exist, resolve_device
    from fxcli.io.audio import AudioError
    from fxcli.io.paths import UsageError, find_inputs, inputs_and_list
    from fxcli.measure.analyze import FileAnalysis, analyze_file

    inputs, listed = inputs_and_list(items, input_list, null=null)
    paths = [src for src, _ in find_inputs(inputs, listed, keep_missing=True).files]
    shown = names or {}
    if not paths:
        named = items + ([input_list] if input_list else [])
        raise UsageError(f"no audio files in {', '.join(named)}")
    # the CPU measures with numpy and the compiled kernels, without loading torch:
    # --device cpu, or auto on a machine that cannot have a CUDA device
    spec = device.strip().lower()
    cpu = spec == "cpu" or (spec == "auto" and not cuda_may_exist())
    dev: object = "cpu" if cpu else resolve_device(device)
    rep = AnalyzeReporter(json_mode=json_mode)
    stop = Stop()
    rep.on_stdout_closed = stop.stdout_closed
    gc_pause.resume()  # start-up is over (fxcli.cli.gc_pause)
    for path in paths:
        if stop.is_set():
            break
        try:
            res = analyze_file(path, dev)
        except AudioError as exc:
            res = FileAnalysis(input=str(path), status="failed", error=cli_text(exc))
        except (ValueError, RuntimeError, MemoryError) as exc:  # e.g. a malformed stream
            res = FileAnalysis(input=str(path), status="failed", error=_one_line(exc))
        res.input = shown.get(str(path), res.input)
        if plot is not None and res.status == "ok":
            _plot(path, res, plot, rep)
        rep.file_done(res)
    return rep.exit_code(stop.signum)


def _check_plot(plot: str, files: list[str], input_list: str | None) -> None:
    """``--plot``: a .png name, one INPUT that is a file (or -), matplotlib importable."""
    from pathlib import Path

    from fxcli.io.paths import UsageError

    if Path(plot).suffix.lower() != ".png":
        raise UsageError(f"--plot {plot!r}: the picture is a PNG (name it *.png)")
    if input_list or len(files) != 1 or not (files[0] == "-" or Path(files[0]).is_file()):
        raise UsageError("--plot draws one file: give exactly one INPUT file (or -)")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'fxcli[plot]'") from None


def _plot(path: Any, res: "FileAnalysis", plot: str, rep: Reporter) -> None:
    """Draw the file's loudness over time; a failure fails the file (one line)."""
    from fxcli.measure.loudness_plot import loudness_over_time, plot_loudness

    try:
        curves = loudness_over_time(path)
        plot_loudness(
            curves, plot,
            integrated_lufs=-math.inf if res.integrated_lufs is None else res.integrated_lufs,
            true_peak_dbtp=-math.inf if res.true_peak_dbtp is None else res.true_peak_dbtp,
            title=f"{res.input}: loudness over time",
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        res.status, res.error = "failed", f"cannot draw {plot}: {exc}"


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "-"
    if v == -math.inf:
        return "-inf"
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


def print_file(r: "FileAnalysis", console: Any) -> None:
    """Human report of one file on ``console`` (rich): a summary line, then a table
    with one row per channel and an ``all`` row (narrow enough for 80 columns)."""
    from rich.table import Table

    console.print(
        f"{r.input}  ({_fmt(r.duration_s, 2)} s, {r.sample_rate} Hz, {r.channels} ch, "
        f"{r.subtype})  integrated {_fmt(r.integrated_lufs)} LUFS, "
        f"LRA {_fmt(r.loudness_range_lu)} LU, max momentary {_fmt(r.max_momentary_lufs)}, "
        f"max short-term {_fmt(r.max_short_term_lufs)} LUFS",
        markup=False,
    )
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for name in ("ch", "LUFS", "peak dBFS", "TP dBTP", "RMS dBFS", "DC", "clipped"):
        table.add_column(name, justify="right")
    for c in r.per_channel:
        table.add_row(
            str(c.channel + 1),
            _fmt(c.integrated_lufs),
            _fmt(c.sample_peak_dbfs, 2),
            _fmt(c.true_peak_dbtp, 2),
            _fmt(c.rms_dbfs, 2),
            f"{c.dc_offset:+.2e}",
            str(c.clipped_samples),
        )
    if (r.channels or 0) > 1:
        table.add_row(
            "all",
            _fmt(r.integrated_lufs),
            _fmt(r.sample_peak_dbfs, 2),
            _fmt(r.true_peak_dbtp, 2),
            _fmt(r.rms_dbfs, 2),
            "",
            str(r.clipped_samples),
        )
    console.print(table)
    console.print()
