"""fxcli's command line: the Typer app, its global options, one line per command
(each command lives in its own module of :mod:`fxcli.cli`) and :func:`main`.
torch is imported only by the commands that need it.

:func:`main` registers only the command it is asked for (``fxcli process ...``
imports and builds ``process`` alone: the other command modules and Typer's reading
of their signatures cost ~25 ms, a tenth of a one-file call); ``fxcli``,
``fxcli --help``, ``--version`` and anything that is not a command name get the full
app. ``app`` (for tests and library callers) is the full app, built on first use."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from fxcli._version import __version__


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fxcli {__version__}")
        raise typer.Exit()


def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Exact, streaming, GPU-accelerated audio filter chains from YAML presets."""


def _add_process(app: typer.Typer) -> None:
    from fxcli.cli.process import process

    app.command()(process)


def _add_analyze(app: typer.Typer) -> None:
    from fxcli.cli.analyze import analyze

    app.command()(analyze)


def _add_features(app: typer.Typer) -> None:
    from fxcli.cli.features import features

    app.command()(features)


def _add_presets(app: typer.Typer) -> None:
    from fxcli.cli.presets import presets_app

    app.add_typer(presets_app, name="presets")


def _add_bench(app: typer.Typer) -> None:
    from fxcli.cli.bench import bench

    app.command()(bench)


def _add_match(app: typer.Typer) -> None:
    from fxcli.cli.match import match

    app.command()(match)


#: the commands in help order: name -> adds it to an app (importing its module)
COMMANDS: dict[str, Callable[[typer.Typer], None]] = {
    "process": _add_process,
    "analyze": _add_analyze,
    "features": _add_features,
    "presets": _add_presets,
    "bench": _add_bench,
    "match": _add_match,
}


def build_app(only: str | None = None) -> typer.Typer:
    """The Typer app with every command, or with the command ``only`` alone (what
    ``fxcli ONLY ...`` needs: its usage, options and errors are the same)."""
    app = typer.Typer(
        name="fxcli",
        help="Exact, streaming, GPU-accelerated audio filter chains from YAML presets.\n\n"
        "Example: fxcli process in/ out/ --preset mastering --device auto",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    app.callback()(main_callback)
    for name, add in COMMANDS.items():
        if only is None or name == only:
            add(app)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # the full app, built once on first use
        full = build_app()
        globals()["app"] = full
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point.

    Once torch is loaded, exit with ``os._exit`` after flushing: every output is
    already fsynced and renamed by then, and torch's interpreter teardown costs
    about a second, more than a short file's processing.
    """
    import os

    from fxcli.cli import gc_pause
    from fxcli.cli.blas_env import quiet_idle_blas_threads
    from fxcli.cli.signals import exit_at_once

    gc_pause.pause(sys.argv)  # until the command has prepared its run
    exit_at_once()  # until a command installs its own handlers
    quiet_idle_blas_threads()  # before numpy loads
    first = sys.argv[1] if len(sys.argv) > 1 else None
    try:
        build_app(first if first in COMMANDS else None)()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    gc_pause.resume(freeze=False)  # a command that ended before its run (usage error)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError):
            pass
    if "torch" in sys.modules:
        os._exit(code)
    sys.exit(code)
