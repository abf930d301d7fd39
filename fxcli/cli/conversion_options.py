"""The quick-conversion options of ``fxcli process`` (SoX's ``-r -c -b``):
``--rate``, ``--channels``, ``--bits``, applied after the preset's chain
(:mod:`fxcli.preset.conversions`)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from fxcli.io.formats import BITS_SUBTYPES

Bits = Enum("Bits", {f"b{name}": name for name in BITS_SUBTYPES}, type=str)  # type: ignore[misc]

RateOpt = Annotated[
    int | None,
    typer.Option(
        "--rate",
        "-r",
        help="Resample the output to HZ after the preset (as sox -r; soxr, high quality).",
    ),
]
ChannelsOpt = Annotated[
    int | None,
    typer.Option(
        "--channels",
        "-c",
        help="Output channels after the preset (as sox -c): fewer average input channels "
        "k, k+N, ... into output k (mono: the mean of all); more repeat input k mod C "
        "(mono: duplicated).",
    ),
]
BitsOpt = Annotated[
    Bits | None,
    typer.Option(
        "--bits",
        "-b",
        help="Output sample format (as sox -b): 8, 16, 24, 32 (integer PCM), float, double; "
        "excludes --subtype.",
    ),
]
