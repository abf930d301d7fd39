"""Quick conversions without a YAML file, as SoX's ``-r -c -b``.

``fxcli process --rate HZ --channels N --bits B`` appends a ``resample`` and a
``remix`` step (``to_channels``: SoX's channel rule, see
:func:`fxcli.steps.edit.channels_matrix`) to the preset's chain, after its last step,
and sets the output subtype from the bits; ``-p none`` is the empty chain (a plain
conversion). Both steps have numpy implementations, so conversions stay on the
torch-free CPU path.
"""

from __future__ import annotations

import dataclasses

from fxcli.errors import ParameterError, UsageError
from fxcli.io.formats import BITS_SUBTYPES
from fxcli.preset.loader import Preset, StepConfig, load_preset
from fxcli.preset.spec import STEPS, check

__all__ = ["BITS_SUBTYPES", "NONE", "bits_subtype", "load", "with_conversions"]

#: ``-p none``: no preset, the empty chain
NONE = "none"


def load(name: str, *, allow_outside: bool = False) -> Preset:
    """The preset ``name`` (a path or a bundled name), or for ``none`` the empty chain."""
    if name.strip().lower() == NONE:
        return Preset(source="no preset (-p none)")
    return load_preset(name, allow_outside=allow_outside)


def bits_subtype(bits: str) -> str:
    """The output subtype of ``bits`` (the CLI's ``--bits``); a usage error names the
    allowed values."""
    try:
        return BITS_SUBTYPES[bits.strip().lower()]
    except KeyError:
        raise UsageError.for_option(
            "bits", f"{bits!r}: allowed: {', '.join(BITS_SUBTYPES)}"
        ) from None


def _step(preset: Preset, type_: str, option: str, key: str, value: int) -> StepConfig:
    try:
        checked = check(type_, key, value)
    except ParameterError as exc:
        raise UsageError.for_option(option, f"{value}: allowed: {exc.allowed}") from None
    params = {p.name: (None if p.required else p.default) for p in STEPS[type_].params}
    params[key] = checked
    return StepConfig(type_, params, len(preset.steps), None, option)


def with_conversions(
    preset: Preset, *, rate: int | None = None, channels: int | None = None
) -> Preset:
    """``preset`` with a ``resample`` to ``rate`` Hz and a ``remix`` to ``channels``
    appended (whichever is given; remix first, so fewer channels are resampled).
    Raises :class:`UsageError` naming ``rate``/``channels`` for values outside
    the steps' limits."""
    steps = list(preset.steps)
    out = dataclasses.replace(preset, steps=steps)
    if channels is not None:
        steps.append(_step(out, "remix", "channels", "to_channels", channels))
    if rate is not None:
        steps.append(_step(out, "resample", "rate", "rate_hz", rate))
    return out
