"""What the commands share: option choices (built from the format vocabulary, so
the CLI cannot drift from what the writers and presets accept), the options of
the commands that read inputs and write an OUTPUT tree, number checks and the
usage-error exit."""

from __future__ import annotations

import math
import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from fxcli.cli import exit_codes
from fxcli.errors import FxcliError
from fxcli.io.formats import FORMAT_EXTENSIONS, OUTPUT_SUBTYPES

if TYPE_CHECKING:  # the members are built below from the vocabulary

    class Fmt(str, Enum):
        """``--format``: same (the input's container) or one of FORMAT_EXTENSIONS."""

        same = "same"

    class Subtype(str, Enum):
        """``--subtype``: same, or one of the preset spec's output subtypes."""

        same = "same"

else:
    Fmt = Enum("Fmt", {name: name for name in ("same", *FORMAT_EXTENSIONS)}, type=str)
    Subtype = Enum("Subtype", {name: name for name in OUTPUT_SUBTYPES}, type=str)


class ProgressMode(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


class NonFinite(str, Enum):
    error = "error"
    zero = "zero"


# Options shared by the commands that read inputs and write an OUTPUT tree.
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace existing outputs (atomically).")
]
SkipExistingOpt = Annotated[
    bool, typer.Option("--skip-existing", help="Leave existing outputs alone.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per file on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]
ProgressOpt = Annotated[
    ProgressMode,
    typer.Option(
        help="Progress on stderr: auto (a bar, terminals only), always (without a "
        "terminal: a line per file and every 10 % or 10 s), never."
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="A file that missed a promise (loudness target, undefined loudness, "
        "clipping, a peak over a ceiling: the warnings) fails (exit 1), its output "
        "not written.",
    ),
]
InputListOpt = Annotated[
    str | None, typer.Option(help="File with input paths, one per line (- for stdin).")
]
NullOpt = Annotated[
    bool,
    typer.Option(
        "--null",
        "-0",
        help="--input-list names are separated by NUL bytes (find -print0), not lines.",
    ),
]

#: --executor ray's cluster (process, features)
AddressOpt = Annotated[
    str | None,
    typer.Option(help="Ray cluster address (--executor ray; default: start a local one)."),
]
#: the bound on local copies of URL inputs and outputs (process, features)
SpoolGbOpt = Annotated[
    float, typer.Option(help="Bound on the local copies of URL inputs/outputs, in GB.")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        help="Threads of the CPU kernels, per file in flight (default: $FXCLI_THREADS, "
        "else the CPUs this process may use). 1 suits busy shared machines.",
    ),
]

#: upper bounds of numeric options (beyond them a value is a typo, not a request)
MAX_CHUNK_SECONDS = 86400.0
MAX_SPOOL_GB = 1e6
MAX_BENCH_SECONDS = 3600.0
MAX_THREADS = 1024


def cli_text(exc: BaseException) -> str:
    """An error's message in CLI words: an error about an option of the run
    (``FxcliError.for_option``) names its flag (``device`` -> ``--device``)."""
    if isinstance(exc, FxcliError):
        return exc.worded(flag)
    return str(exc)


def flag(option: str) -> str:
    """An option's flag: ``skip_existing`` -> ``--skip-existing``."""
    return "--" + option.replace("_", "-")


def fail(message: str | BaseException, code: int = exit_codes.USAGE) -> NoReturn:
    """``error: MESSAGE`` on stderr, then exit (a usage error unless ``code``)."""
    from fxcli.io.display import shown

    text = cli_text(message) if isinstance(message, BaseException) else message
    sys.stderr.write(f"error: {shown(text)}\n")
    raise typer.Exit(code)


def check_number(
    option: str,
    value: float | None,
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
) -> None:
    """Fail with a usage error (exit 2) naming ``option`` unless ``value`` is None or
    a finite number within the bounds (``nan``, ``inf`` and ``1e400`` never pass)."""
    if value is None:
        return
    ok = (
        math.isfinite(value)
        and (above is None or value > above)
        and (at_least is None or value >= at_least)
        and (at_most is None or value <= at_most)
    )
    if not ok:
        bounds = [
            f"> {above:g}" if above is not None else "",
            f">= {at_least:g}" if at_least is not None else "",
            f"<= {at_most:g}" if at_most is not None else "",
        ]
        allowed = " and ".join(b for b in bounds if b)
        fail(f"{option} {value:g}: allowed: a finite number{' ' + allowed if allowed else ''}")


def check_inputs_and_output(
    paths: list[str], input_list: str | None, overwrite: bool, skip_existing: bool
) -> str:
    """Checks of the INPUT... OUTPUT commands; returns the overwrite policy
    (``overwrite`` | ``skip`` | ``refuse``)."""
    if len(paths) < 2 and not (input_list and len(paths) == 1):
        fail("give at least one INPUT and the OUTPUT folder")
    if overwrite and skip_existing:
        fail("--overwrite and --skip-existing exclude each other")
    return "overwrite" if overwrite else "skip" if skip_existing else "refuse"


def apply_threads(threads: int | None) -> None:
    """``--threads`` (and ``FXCLI_THREADS``) checked and set for the CPU kernels; a bad
    value is a usage error (exit 2) naming the option or the variable."""
    check_number("--threads", threads, at_least=1, at_most=MAX_THREADS)
    from fxcli.dsp import native

    try:
        native.set_threads(threads)
        native.threads()  # reads FXCLI_THREADS when --threads is not given
    except ValueError as exc:
        fail(exc)
