"""fxcli's command line: the Typer app, its global options, one line per command
(each command lives in its own module of :mod:`fxcli.cli`) and :func:`main`.
torch is imported only by the commands that need it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from fxcli._version import __version__
from fxcli.cli.analyze import analyze
from fxcli.cli.bench import bench
from fxcli.cli.features import features
from fxcli.cli.match import match
from fxcli.cli.presets import presets_app
from fxcli.cli.process import process

app = typer.Typer(
    name="fxcli",
    help="Exact, streaming, GPU-accelerated audio filter chains from YAML presets.\n\n"
    "Example: fxcli process in/ out/ --preset mastering --device auto",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


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


app.command()(process)
app.command()(analyze)
app.command()(features)
app.add_typer(presets_app, name="presets")
app.command()(bench)
app.command()(match)


def main() -> None:
    """Console-script entry point.

    Once torch is loaded, exit with ``os._exit`` after flushing: every output is
    already fsynced and renamed by then, and torch's interpreter teardown costs
    about a second, more than a short file's processing.
    """
    import os

    from fxcli.cli.signals import exit_at_once

    exit_at_once()  # until a command installs its own handlers
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
