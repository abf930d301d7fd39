"""``fxcli bench``: time a chain over a sweep (:mod:`fxcli.measure.benchmark`),
write the CSV, render the table, and optionally a plot. :func:`finish` ends the
scripts in ``bench/`` the same way."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fxcli.cli import exit_codes
from fxcli.cli.options import MAX_BENCH_SECONDS, ThreadsOpt, apply_threads, fail

if TYPE_CHECKING:
    from fxcli.measure.benchmark import CsvSink


def bench(
    chain: Annotated[
        str,
        typer.Option(
            help="iir | fir | api (the named benchmark chains) or any preset path or bundled name."
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
    threads: ThreadsOpt = None,
) -> None:
    """Time a chain over durations x channel counts x backends; check outputs; write CSV.

    Every backend's output is first compared with a float64 SciPy reference: the
    max abs error goes in the CSV and a backend off by more than 1e-4 is flagged
    MISMATCH. Chains with effects (dynamics, loudness, resampling, remixing, edits,
    reverb: no SciPy equivalent) are timed on cpu and cuda only, without the check:
    their check column says unchecked. Times are medians (with min and max) of the
    kernel only: coefficient design and (on CUDA) host-device transfers are excluded,
    the transfers reported in transfer_s. Progress and skip notes go to stderr.

    \b
    Examples:
      fxcli bench --durations 5,60 --channels 1,8
      fxcli bench --chain fir --backends cpu,scipy --reps 3 --plot fir.png
      fxcli bench --chain api                  # 8 ch x 120 s
      fxcli bench --chain presets/voice.yaml --durations 1,10 --max-seconds 5 --json
      fxcli bench --durations 1,5,180,300,600 --channels 1,2,4,8,12 --max-seconds 20

    Exit codes: 0 done, 1 some backend's output was flagged MISMATCH, 2 usage error.
    """
    from fxcli.measure import benchmark as B

    apply_threads(threads)
    try:
        durs = B.parse_durations(durations) if durations is not None else None
        if durs is not None and max(durs) > MAX_BENCH_SECONDS:
            raise B.BenchError(
                f"--durations: {max(durs):g} s: allowed: at most {MAX_BENCH_SECONDS:g} s"
            )
        chans = B.parse_channels(channels) if channels is not None else None
        names = B.parse_backends(backends)
        B.check_settings(reps=reps, warmup=warmup, max_seconds=max_seconds, sample_rate=sample_rate)
        designed = B.resolve_chain(chain, sample_rate)
        if durs is None:
            durs = [120.0] if designed.name == "api" else [5.0, 60.0, 600.0]
        if chans is None:
            chans = [8] if designed.name == "api" else [1, 8]
        if plot:
            B.check_plot_available()
        sink = B.CsvSink(output or f"fxcli-bench-{designed.name}.csv")
    except B.BenchError as exc:
        fail(exc)

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
        fail(exc)
    finally:
        sink.close()
    if not json_mode:
        print_table(rows)
    log(f"wrote {sink.path} ({len(rows)} rows)")
    if plot:
        try:
            B.write_plot(rows, plot)
        except B.BenchError as exc:
            fail(exc)
        log(f"wrote {plot}")
    bad = [r for r in rows if r["check"] == "MISMATCH"]
    if bad:
        names_bad = sorted({r["backend"] for r in bad})
        fail(
            f"{len(bad)} result(s) MISMATCH the float64 reference "
            f"(max abs error > {B.ERROR_THRESHOLD:g}): {', '.join(names_bad)}",
            exit_codes.SOME_FAILED,
        )


def _fmt(v: Any, spec: str) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return format(v, spec)


def print_table(rows: list[dict[str, Any]], console: Any = None) -> None:
    """The sweep as a rich table (mismatching rows in red)."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # pipes and files: do not squeeze to 80 columns
            console = Console(width=180)
    if not rows:
        console.print("no results")
        return
    r0 = rows[0]
    table = Table(
        title=f"fxcli bench: chain {r0['chain']}, {r0['sample_rate']} Hz "
        f"(torch {r0['torch_version']}, fxcli {r0['fxcli_version']})"
    )
    for col, just in [
        ("backend", "left"),
        ("device", "left"),
        ("dur s", "right"),
        ("ch", "right"),
        ("reps", "right"),
        ("median s", "right"),
        ("min s", "right"),
        ("max s", "right"),
        ("transfer s", "right"),
        ("Msamples/s", "right"),
        ("x realtime", "right"),
        ("vs scipy", "right"),
        ("max err", "right"),
        ("check", "left"),
    ]:
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        bad = r["check"] == "MISMATCH"
        check = (
            "[bold red]MISMATCH[/]"
            if bad
            else "[green]ok[/]"
            if r["check"] == "ok"
            else str(r["check"])
        )
        table.add_row(
            r["backend"],
            r["device_name"],
            f"{r['duration_s']:g}",
            str(r["channels"]),
            str(r["reps"]),
            _fmt(r["median_s"], ".4g"),
            _fmt(r["min_s"], ".4g"),
            _fmt(r["max_s"], ".4g"),
            _fmt(r["transfer_s"], ".3g"),
            _fmt(r["msamples_per_s"], ".4g"),
            _fmt(r["realtime_factor"], ".4g"),
            _fmt(r["speedup_vs_scipy"], ".3g"),
            _fmt(r["max_abs_error"], ".2g"),
            check,
            style="red" if bad else None,
        )
    console.print(table)


def finish(rows: list[dict[str, Any]], sink: CsvSink, markdown: str | None = None) -> int:
    """End a bench script: close its CSV, print the table (and the Markdown version when
    given); returns the exit status, 1 if any row failed the output check."""
    sink.close()
    print_table(rows)
    if markdown is not None:
        print(markdown)
    return exit_codes.SOME_FAILED if any(r["check"] == "MISMATCH" for r in rows) else exit_codes.OK
