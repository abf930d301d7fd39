"""``fxcli match``: learn a parametric EQ preset that gives INPUT files the long-term
spectrum of a REFERENCE (:mod:`fxcli.measure.match`)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from fxcli.cli.options import cli_text, fail


def match(
    reference: Annotated[str, typer.Argument(help="The audio file whose spectrum to match.")],
    inputs: Annotated[list[str], typer.Argument(help="Audio files to EQ (same sample rate).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Preset file to write (.yaml).")],
    bands: Annotated[
        int, typer.Option(help="EQ bands: a low shelf, BANDS-2 peaking filters, a high shelf.")
    ] = 10,
    max_gain_db: Annotated[float, typer.Option(help="Largest gain of a band, dB.")] = 12.0,
    include: Annotated[
        str | None,
        typer.Option(help="loudness: end with a loudness step to the REFERENCE's LUFS."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUTPUT.")] = False,
    json_mode: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Learn an EQ preset that makes INPUT sound like REFERENCE, spectrally.

    The long-term spectra (gated, channels mixed) are compared in 1/3-octave bands
    from 50 Hz to 16 kHz; the EQ is fitted by gradient descent through the biquads
    and written as an ordinary preset for fxcli process. Prints the distance per
    band before and after.

    \b
    Examples:
      fxcli match reference.wav take.wav -o matched.yaml
      fxcli match master.flac mix1.wav mix2.wav -o m.yaml --bands 10 --include loudness
      fxcli process take.wav out.wav -p matched.yaml

    Exit codes: 0 written, 2 usage error or a file that cannot be matched.
    """
    from fxcli.io.atomic import atomic_path
    from fxcli.io.audio import AudioError
    from fxcli.measure import match as M

    out = Path(output)
    if out.suffix.lower() not in (".yaml", ".yml"):
        fail(f"--output {output!r}: a preset is YAML (name it *.yaml)")
    if out.exists() and not overwrite:
        fail(f"output {output} exists (use --overwrite)")
    if include not in (None, "loudness"):
        fail(f"--include {include!r}: allowed: loudness")
    if not 2 <= bands <= 32:
        fail(f"--bands {bands}: allowed: 2 to 32")
    if not (math.isfinite(max_gain_db) and 0 < max_gain_db <= 24):
        fail(f"--max-gain-db {max_gain_db:g}: allowed: above 0 up to 24")
    spectra = []
    for name in (reference, *inputs):
        try:
            spectra.append(M.long_term_spectrum(Path(name)))
        except AudioError as exc:
            fail(f"{name}: {cli_text(exc)}")
        except M.MatchError as exc:
            fail(exc)
    ref, ins = spectra[0], spectra[1:]
    try:
        result = M.match(ref, ins, bands=bands, max_gain_db=max_gain_db)
    except M.MatchError as exc:
        fail(exc)
    text = M.preset_yaml(result, reference_name=Path(reference).name, loudness=include is not None)
    try:
        with atomic_path(out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    if json_mode:
        typer.echo(json.dumps({
            "output": str(out),
            "bands": [vars(b) for b in result.bands],
            "gain_db": result.gain_db,
            "centres_hz": result.centres.tolist(),
            "before_db": result.before_db.tolist(),
            "after_db": result.after_db.tolist(),
            "rms_before_db": result.rms_before,
            "rms_after_db": result.rms_after,
        }))  # fmt: skip
        return
    err = sys.stderr
    err.write("   band Hz   before dB   after dB\n")
    for c, b, a in zip(result.centres, result.before_db, result.after_db, strict=True):
        err.write(f"{c:10.0f}   {b:+9.2f}  {a:+9.2f}\n")
    err.write(
        f"distance (RMS over bands): {result.rms_before:.2f} dB before, "
        f"{result.rms_after:.2f} dB after\n"
    )
    if any(s.channels != ref.channels for s in ins):
        err.write("note: channel counts differ; spectra compare the channel mixes\n")
    typer.echo(f"wrote {out}")
