"""fxcli's command line. Commands are thin: the logic lives in fxcli.cli.process,
fxcli.engine and fxcli.preset. torch is imported only by commands that need it."""

from __future__ import annotations

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


def _fail(message: str, code: int = 2) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fxcli {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Exact, streaming, GPU-accelerated audio filter chains from YAML presets."""


@app.command()
def process(
    paths: Annotated[list[str], typer.Argument(
        help="INPUT... OUTPUT: files, folders (mirrored under OUTPUT), quoted globs, or - "
        "(paths on stdin); the last path is the OUTPUT folder (or file, for one input).")],
    preset: Annotated[str, typer.Option("--preset", "-p",
                                        help="Preset file, or a bundled preset name.")],
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    chunk_seconds: Annotated[float | None, typer.Option(
        help="Seconds per chunk (default: 10 s on CPU, sized from free memory on CUDA).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite",
                                            help="Replace existing outputs (atomically).")] = False,
    skip_existing: Annotated[bool, typer.Option("--skip-existing",
                                                help="Leave existing outputs alone.")] = False,
    fmt: Annotated[Fmt, typer.Option("--format", help="Output container.")] = Fmt.same,
    subtype: Annotated[Subtype, typer.Option(
        help="Output sample format (default: the preset's, else the input's).")] = Subtype.same,
    json_mode: Annotated[bool, typer.Option("--json",
                                            help="One JSON object per file on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    progress: Annotated[ProgressMode, typer.Option(
        help="Progress bar on stderr: auto (terminals only), always, never.")] = ProgressMode.auto,
    input_list: Annotated[str | None, typer.Option(
        help="File with input paths, one per line (- for stdin).")] = None,
) -> None:
    """Run a preset's chain over audio files, writing outputs in the input's format.

    \b
    Examples:
      fxcli process song.wav out/ --preset mastering
      fxcli process in/ out/ --preset presets/voice.yaml --device cuda --json
      fxcli process 'takes/**/*.flac' out/ -p voice --skip-existing
      find in -name '*.wav' | fxcli process - out/ -p mastering --quiet

    Exit codes: 0 all done, 1 some files failed, 2 usage or preset error, 130 interrupted.
    """
    from fxcli.cli.process import run_process
    from fxcli.io.paths import UsageError
    from fxcli.preset.loader import PresetError

    if len(paths) < 2 and not (input_list and len(paths) == 1):
        _fail("give at least one INPUT and the OUTPUT folder")
    if overwrite and skip_existing:
        _fail("--overwrite and --skip-existing exclude each other")
    policy = "overwrite" if overwrite else "skip" if skip_existing else "refuse"
    try:
        code = run_process(
            paths[:-1], Path(paths[-1]), preset_name=preset, device=device,
            chunk_seconds=chunk_seconds, overwrite=policy, fmt=fmt.value, subtype=subtype.value,
            json_mode=json_mode, quiet=quiet, progress=progress.value, input_list=input_list,
        )
    except (UsageError, PresetError) as exc:
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
    sample_rate: Annotated[list[int] | None, typer.Option(
        help="Also design every step at this rate (repeatable).")] = None,
) -> None:
    """Check presets (keys, values, and with --sample-rate the designs). Exit 2 on error."""
    from fxcli.preset.loader import PresetError, load_preset

    bad = 0
    for f in files:
        try:
            preset = load_preset(f)
            if sample_rate:
                from fxcli.steps import build_step

                for sr in sample_rate:
                    for cfg in preset.steps:
                        build_step(cfg, sr)
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


def main() -> None:
    """Console-script entry point."""
    app()
