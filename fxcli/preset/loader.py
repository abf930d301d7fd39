"""Load and validate YAML presets (version 1) before any audio is read.

Errors are :class:`PresetError` with one line of the form
``FILE:LINE: step INDEX (TYPE): key 'KEY': what is wrong; allowed: ...``.
Only ``yaml.SafeLoader`` (:class:`fxcli.preset.yaml_text.PresetLoader`: YAML 1.2
scalars, plus ``1e3`` floats) is used: presets may come from untrusted places. A
preset file's parsed text comes from :mod:`fxcli.preset.parse_cache` when it was
read before (PyYAML is then not imported). Files that a preset names
are read only through :mod:`fxcli.preset.files` (regular files in the preset's own
folder, size-bounded; errors never quote a file's content).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fxcli.errors import ParameterError, PresetError
from fxcli.preset.files import (
    FILE_KEYS,
    FileTooLargeError,
    PresetFileError,
    read_preset_file,
    read_regular_file,
    resolve_preset_file,
)
from fxcli.preset.spec import (
    DITHER,
    MAX_FIR_TAPS,
    OUTPUT_KEYS,
    OUTPUT_SUBTYPES,
    STEPS,
    TOP_LEVEL_KEYS,
    Param,
    StepSpec,
)

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "presets"

#: a preset file's size limit in bytes (real presets are a few KiB)
MAX_PRESET_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StepConfig:
    """A validated step: its type, its keys with defaults filled in, and where it came from."""

    type: str
    params: dict[str, Any]
    index: int
    line: int | None
    source: str
    base_dir: Path | None = None

    @property
    def where(self) -> str:
        loc = f"{self.source}:{self.line}" if self.line else self.source
        return f"{loc}: step {self.index} ({self.type})"


@dataclass
class Preset:
    """A validated preset. ``steps`` are :class:`StepConfig` in chain order."""

    source: str
    description: str = ""
    subtype: str = "same"
    dither: str | None = None  # None: tpdf for PCM of 16 bits or fewer, else none
    steps: list[StepConfig] = field(default_factory=list)


# --------------------------------------------------------------------------- values


def _check_value(p: Param, v: Any, where: str) -> Any:
    try:
        return p.check(v)
    except ParameterError as exc:
        raise PresetError(f"{where}: key '{p.name}': {exc.got}; allowed: {exc.allowed}") from None


def validate_step(
    raw: Any,
    index: int,
    line: int | None,
    source: str,
    base_dir: Path | None,
    *,
    allow_outside: bool = False,
) -> StepConfig:
    """Validate one chain entry (static checks only; rate-dependent ones happen at build).

    Files the step names are checked by :func:`fxcli.preset.files.resolve_preset_file`
    relative to ``base_dir`` (the working folder when None); ``allow_outside`` (for
    trusted presets) lets them lie outside that folder."""
    loc = f"{source}:{line}" if line else source
    if not isinstance(raw, dict):
        raise PresetError(f"{loc}: step {index}: must be a mapping with a 'type' key, got {raw!r}")
    stype = raw.get("type")
    if stype not in STEPS:
        known = ", ".join(sorted(STEPS))
        raise PresetError(f"{loc}: step {index}: unknown type {stype!r}; allowed: {known}")
    spec: StepSpec = STEPS[stype]
    where = f"{loc}: step {index} ({stype})"
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "type":
            continue
        if key not in spec.param_map:
            allowed = ", ".join(p.name for p in spec.params)
            raise PresetError(f"{where}: unknown key {key!r}; allowed keys: {allowed}")
        p = spec.param_map[key]
        try:
            params[key] = _check_value(p, value, where)
        except PresetError:
            raise
        except (ValueError, OverflowError, RecursionError):  # 10**400, deep lists in repr
            raise PresetError(
                f"{where}: key '{key}': value out of range or too large; allowed: {p.allowed()}"
            ) from None
    for group in spec.exclusive:
        given = [k for k in group if k in params]
        if len(given) > 1:
            raise PresetError(f"{where}: keys {' and '.join(given)} exclude each other; give one")
    for group in spec.one_of:
        given = [k for k in group if k in params]
        if len(given) != 1:
            raise PresetError(f"{where}: give exactly one of {', '.join(group)}")
    for p in spec.params:
        if p.name not in params:
            if p.required:
                raise PresetError(f"{where}: missing key '{p.name}' ({p.help}; {p.allowed()})")
            params[p.name] = p.default
    files = {  # every file a preset can name goes through one checked function
        p.name: _referenced_file(params[p.name], base_dir, where, p.name, allow_outside)
        for p in spec.params
        if p.kind == "path" and params[p.name] is not None
    }
    _cross_checks(stype, params, where, files)
    return StepConfig(stype, params, index, line, source, base_dir)


def _cross_checks(stype: str, params: dict[str, Any], where: str, files: dict[str, Path]) -> None:
    """Rules across keys; ``files``: the checked, resolved path of each file key given."""
    if stype in ("highpass", "lowpass", "bandpass", "bandstop"):
        if params["design"] == "linkwitz_riley":
            if stype in ("bandpass", "bandstop"):
                raise PresetError(
                    f"{where}: key 'design': linkwitz_riley is only for highpass and lowpass"
                )
            if params["order"] % 2:
                raise PresetError(
                    f"{where}: key 'order': linkwitz_riley needs an even order, "
                    f"got {params['order']}"
                )
        if stype in ("bandpass", "bandstop") and not params["low_hz"] < params["high_hz"]:
            raise PresetError(
                f"{where}: key 'low_hz': {params['low_hz']:g} must be below high_hz "
                f"{params['high_hz']:g}"
            )
    if stype in ("lowshelf", "highshelf") and params["q"] is None and params["slope"] is None:
        params["q"] = 0.7071
    if stype == "normalize" and params["peak_db"] is None and params["rms_db"] is None:
        params["peak_db"] = -1.0
    if stype == "convolve":  # read when the step is built (at the input's rate)
        params["ir_file"] = str(files["ir_file"])
    if stype == "fir":
        if params["taps"] is not None:
            if params["cutoff_hz"] is None:
                raise PresetError(f"{where}: missing key 'cutoff_hz' (needed with 'taps')")
            band = params["pass"] in ("bandpass", "bandstop")
            if band != isinstance(params["cutoff_hz"], list):
                need = "[low, high]" if band else "a single number"
                raise PresetError(f"{where}: key 'cutoff_hz': pass {params['pass']} needs {need}")
            if params["pass"] in ("highpass", "bandstop") and params["taps"] % 2 == 0:
                raise PresetError(
                    f"{where}: key 'taps': a {params['pass']} FIR needs an odd number of taps, "
                    f"got {params['taps']}"
                )
        elif params["cutoff_hz"] is not None:
            raise PresetError(f"{where}: key 'cutoff_hz' only applies with 'taps'")
        if params["coefficients_file"] is not None:
            params["coefficients"] = load_coefficients_file(
                files["coefficients_file"], params["coefficients_file"], where
            )


def _referenced_file(
    name: str, base_dir: Path | None, where: str, key: str, allow_outside: bool
) -> Path:
    """A file named by a preset key (one of :data:`fxcli.preset.files.FILE_KEYS`),
    checked by :func:`fxcli.preset.files.resolve_preset_file`: in the preset's
    folder unless ``allow_outside``, a regular file, not in /proc, /sys or /dev,
    size-checked (coefficients_file: 16 MiB, ir_file: 64 MiB)."""
    if key not in FILE_KEYS:  # pragma: no cover - a new path key must be given a limit
        raise AssertionError(f"path key {key!r} has no entry in FILE_KEYS")
    try:
        return resolve_preset_file(base_dir, name, key, allow_outside=allow_outside)
    except PresetFileError as exc:
        raise PresetError.wrapping(exc, f"{where}: key '{key}': ") from None


def _parse_taps_text(data: bytes, shown: str, where: str) -> list[float]:
    """Whitespace/comma separated numbers; errors name the line, never its text."""
    bad = f"{where}: key 'coefficients_file': {shown!r}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PresetError(f"{bad}: not a text file of numbers (or a .npy file)") from None
    taps: list[float] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for token in line.replace(",", " ").split():
            try:
                taps.append(float(token))
            except ValueError:
                raise PresetError(f"{bad}: not a list of numbers (line {lineno})") from None
            if len(taps) > MAX_FIR_TAPS:
                raise PresetError(f"{bad}: more than {MAX_FIR_TAPS} numbers")
    return taps


def _parse_taps_npy(data: bytes, shown: str, where: str) -> list[float]:
    """A .npy array of numbers: header checked first (no pickle, no object dtype, at
    most MAX_FIR_TAPS values), errors never quote the file."""
    import numpy as np
    import numpy.lib.format as npy

    bad = f"{where}: key 'coefficients_file': {shown!r}"
    f = io.BytesIO(data)
    try:
        version = npy.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(f)
        else:
            raise PresetError(f"{bad}: cannot read: unsupported .npy version")
    except PresetError:
        raise
    except (ValueError, TypeError, OSError, EOFError, SyntaxError):
        raise PresetError(f"{bad}: cannot read: not a valid .npy file") from None
    if dtype.hasobject:
        raise PresetError(
            f"{bad}: cannot read: an object array (loading it would need pickle, which is refused)"
        )
    if dtype.kind not in "biuf" or math.prod(shape) > MAX_FIR_TAPS:
        raise PresetError(f"{bad}: must hold 1..{MAX_FIR_TAPS} finite numbers")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
        return [float(x) for x in np.asarray(arr, dtype=np.float64).ravel()]
    except (ValueError, TypeError, OSError, EOFError):
        raise PresetError(f"{bad}: cannot read: not a valid .npy file") from None


def load_coefficients_file(path: Path, shown: str, where: str) -> list[float]:
    """FIR taps from ``.npy`` (no pickle) or whitespace/comma separated text at
    ``path`` (already checked by :func:`_referenced_file`; read again with the same
    checks on the opened file). ``shown`` is the preset's value, for messages."""
    try:
        data = read_preset_file(path, "coefficients_file", shown)
    except PresetFileError as exc:
        raise PresetError(f"{where}: key 'coefficients_file': {exc.reason}") from None
    if path.suffix.lower() == ".npy":
        taps = _parse_taps_npy(data, shown, where)
    else:
        taps = _parse_taps_text(data, shown, where)
    if not taps or len(taps) > MAX_FIR_TAPS or not all(math.isfinite(x) for x in taps):
        raise PresetError(
            f"{where}: key 'coefficients_file': {shown!r} must hold 1..{MAX_FIR_TAPS} "
            "finite numbers"
        )
    return taps


# --------------------------------------------------------------------------- presets


def resolve_preset_path(name_or_path: str) -> Path:
    """A path to an existing file, or the name of a bundled preset (``mastering``)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    for cand in (BUNDLED_DIR / name_or_path, BUNDLED_DIR / f"{name_or_path}.yaml"):
        if cand.is_file():
            return cand
    if p.is_dir():
        raise PresetError(f"preset {name_or_path!r} is a folder, not a preset file")
    if p.exists():
        raise PresetError(f"preset {name_or_path!r} is not a regular file")
    names = ", ".join(bundled_names())
    raise PresetError(f"preset {name_or_path!r}: no such file, and not a bundled preset ({names})")


def bundled_names() -> list[str]:
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.yaml"))


def parse_preset(
    text: str,
    source: str,
    base_dir: Path | None = None,
    *,
    allow_outside: bool = False,
    cached: bool = False,
) -> Preset:
    """Validate preset text (static checks: types, keys, ranges, cross-key rules).

    Files the preset names must lie in ``base_dir`` (the preset's folder; the working
    folder when None) unless ``allow_outside`` (trusted presets). ``cached``: take the
    parsed text from :mod:`fxcli.preset.parse_cache` (and keep it there)."""
    from fxcli.preset.plain_yaml import parse_plain

    plain = parse_plain(text)  # plain presets: no PyYAML import (~15 ms)
    if plain is not None:
        data, lines = plain
    else:
        if cached:
            from fxcli.preset.parse_cache import load_yaml
        else:
            from fxcli.preset.yaml_text import load_yaml
        data, lines = load_yaml(text, source)
    if not isinstance(data, dict):
        raise PresetError(f"{source}: a preset is a mapping with 'version: 1' and a 'chain' list")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise PresetError(
                f"{source}:{lines.get(id(data), 1)}: unknown top-level key {key!r}; "
                f"allowed: {', '.join(TOP_LEVEL_KEYS)}"
            )
    if data.get("version") != 1:
        raise PresetError(
            f"{source}: key 'version': got {data.get('version')!r}; allowed: 1 (required)"
        )
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise PresetError(f"{source}: key 'description': must be a string")
    preset = Preset(source=source, description=desc.strip())
    out = data.get("output", {}) or {}
    if not isinstance(out, dict):
        raise PresetError(f"{source}: key 'output': must be a mapping with subtype and dither")
    for key in out:
        if key not in OUTPUT_KEYS:
            raise PresetError(
                f"{source}:{lines.get(id(out), 1)}: output: unknown key {key!r}; "
                f"allowed: {', '.join(OUTPUT_KEYS)}"
            )
    preset.subtype = out.get("subtype", "same")
    if preset.subtype not in OUTPUT_SUBTYPES:
        raise PresetError(
            f"{source}: output: key 'subtype': got {preset.subtype!r}; "
            f"allowed: {', '.join(OUTPUT_SUBTYPES)}"
        )
    preset.dither = out.get("dither")
    if preset.dither is not None and preset.dither not in DITHER:
        raise PresetError(
            f"{source}: output: key 'dither': got {preset.dither!r}; allowed: {', '.join(DITHER)}"
        )
    chain = data.get("chain")
    if not isinstance(chain, list) or not chain:
        raise PresetError(f"{source}: key 'chain': must be a non-empty list of steps")
    for i, raw in enumerate(chain):
        line = lines.get(id(raw)) if isinstance(raw, (dict, list)) else lines.get(id(chain))
        preset.steps.append(
            validate_step(raw, i, line, source, base_dir, allow_outside=allow_outside)
        )
    return preset


def load_preset(name_or_path: str, *, allow_outside: bool = False) -> Preset:
    """Resolve (path or bundled name), read and validate a preset.

    The files it names must lie in its own folder (bundled presets: the bundled
    folder) unless ``allow_outside`` (``fxcli process --allow-preset-paths``)."""
    path = resolve_preset_path(name_or_path)
    try:
        text = read_regular_file(path, MAX_PRESET_BYTES).decode("utf-8")
    except FileTooLargeError:
        raise PresetError(
            f"{path}: preset file is larger than {MAX_PRESET_BYTES // 2**20} MiB "
            "(the limit for presets)"
        ) from None
    except PresetFileError as exc:
        raise PresetError(f"{path}: cannot read preset: it {exc.reason}") from None
    except UnicodeDecodeError:
        raise PresetError(f"{path}: cannot read preset: not UTF-8 text") from None
    return parse_preset(
        text, str(path), path.resolve().parent, allow_outside=allow_outside, cached=True
    )
