"""``fxcli presets``: list, show and validate presets, print their JSON Schema."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from fxcli.cli import exit_codes
from fxcli.cli.options import cli_text, fail

presets_app = typer.Typer(help="List, show and validate presets.", invoke_without_command=True)


@presets_app.callback()
def presets_list(ctx: typer.Context) -> None:
    """List the bundled presets (name and description)."""
    if ctx.invoked_subcommand is not None:
        return
    for name, desc in _bundled_descriptions().items():
        typer.echo(f"{name:<12} {desc.splitlines()[0] if desc else ''}")


#: the bundled presets' descriptions, written beside them so that listing them needs
#: neither PyYAML nor the validator (~30 ms of a 0.16 s command);
#: tests/test_preset_targets.py checks it against the presets themselves
INDEX_NAME = "index.json"


def _bundled_descriptions() -> dict[str, str]:
    """``{name: description}`` of the bundled presets: from the index when it names
    exactly the bundled files, else by loading each (an invalid one says so)."""
    import json
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "presets"
    names = sorted(p.stem for p in folder.glob("*.yaml"))
    try:
        index = json.loads((folder / INDEX_NAME).read_text(encoding="utf-8"))
        if isinstance(index, dict) and sorted(index) == names:
            return {n: str(index[n]) for n in names}
    except (OSError, ValueError):
        pass
    from fxcli.preset.loader import BUNDLED_DIR, PresetError, load_preset

    out = {}
    for name in names:
        try:
            out[name] = load_preset(str(BUNDLED_DIR / f"{name}.yaml")).description
        except PresetError as exc:
            out[name] = f"(invalid: {exc})"
    return out


@presets_app.command("show")
def presets_show(name: Annotated[str, typer.Argument(help="Bundled preset name or path.")]) -> None:
    """Print a preset's YAML."""
    from fxcli.preset.loader import PresetError, resolve_preset_path

    try:
        typer.echo(resolve_preset_path(name).read_text(encoding="utf-8"), nl=False)
    except PresetError as exc:
        fail(exc)


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
                from fxcli.preset.build import build_chain

                for sr in sample_rate:
                    build_chain(preset.steps, sr, 2)  # designs checked for stereo input
            typer.echo(f"ok: {preset.source} ({len(preset.steps)} steps)")
        except PresetError as exc:
            sys.stderr.write(f"error: {cli_text(exc)}\n")
            bad += 1
    raise typer.Exit(exit_codes.USAGE if bad else exit_codes.OK)


@presets_app.command("plot")
def presets_plot(
    presets: Annotated[list[str], typer.Argument(help="Preset files or bundled names.")],
    output: Annotated[str, typer.Option("--output", "-o", help="PNG file to write.")],
    sample_rate: Annotated[
        int, typer.Option(help="Sample rate the filters are designed at (Hz).")
    ] = 48000,
    group_delay: Annotated[
        bool, typer.Option("--group-delay", help="Add a panel with the group delay (ms).")
    ] = False,
    channels: Annotated[int, typer.Option(help="Input channels (for remix steps).")] = 2,
) -> None:
    """Draw the magnitude response of presets' filter steps, overlaid, to a PNG.

    Dynamics, loudness and other signal-dependent steps are listed beside the curves.

    \b
    Examples:
      fxcli presets plot voice podcast -o response.png
      fxcli presets plot mastering --sample-rate 44100 --group-delay -o mastering.png
    """
    from pathlib import Path

    from fxcli.preset.loader import PresetError, load_preset

    if not Path(output).suffix.lower() == ".png":
        fail(f"--output {output!r}: the picture is a PNG (name it *.png)")
    if not 1000 <= sample_rate <= 768000:
        fail(f"--sample-rate {sample_rate}: allowed: 1000 to 768000 Hz")
    if not 1 <= channels <= 64:
        fail(f"--channels {channels}: allowed: 1 to 64")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        fail("presets plot needs matplotlib: pip install 'fxcli[plot]'")
    from fxcli.measure.response import plot_responses, preset_response

    responses = []
    for name in presets:
        try:
            preset = load_preset(name)
            label = Path(name).stem if name.endswith((".yaml", ".yml")) else name
            responses.append(preset_response(preset, sample_rate, channels=channels, label=label))
        except PresetError as exc:
            fail(exc)
    try:
        plot_responses(responses, output, group_delay=group_delay)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    typer.echo(f"wrote {output}")


@presets_app.command("schema")
def presets_schema() -> None:
    """Print the JSON Schema of presets (for editors)."""
    import json

    from fxcli.preset.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))
