"""The options of ``fxcli process`` about what outputs are written in: lossy
quality and bitrate, and how ``--format`` names outputs (rules:
:mod:`fxcli.io.containers`)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer


class BitrateMode(str, Enum):
    """``--bitrate-mode``: libsndfile's MPEG bitrate modes."""

    constant = "constant"
    variable = "variable"
    average = "average"


KeepExtensionOpt = Annotated[
    bool,
    typer.Option(
        "--keep-extension",
        help="With --format: append the new extension instead of replacing the input's "
        "(speech.mp3 -> speech.mp3.wav), so inputs differing only in extension never "
        "collide.",
    ),
]
QualityOpt = Annotated[
    float | None,
    typer.Option(
        help="Lossy outputs (mp3, ogg, opus): quality 0 (smallest) .. 1 (best), "
        "libsndfile's compression level 1 - Q. Default: the input's bitrate for lossy "
        "inputs, else 320 kbps MP3 / 256 kbps Vorbis / 192 kbps Opus per stereo pair.",
    ),
]
BitrateOpt = Annotated[
    float | None,
    typer.Option(
        help="Lossy outputs: target bitrate in kbps (MP3: the legal rate at or above it).",
    ),
]
BitrateModeOpt = Annotated[
    BitrateMode | None,
    typer.Option(
        help="MP3 outputs: constant (default with --bitrate or the default target), "
        "variable (default with --quality) or average.",
    ),
]
