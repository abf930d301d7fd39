"""One source of parameter limits (issue 14): the preset spec.

For every numeric key of every step type: a value just outside a limit is refused
by preset validation (exit 2 before any file is touched) AND by the step's class
(the library), with the same ``key: got X; allowed: Y`` text; every boundary value
builds a chain at 44.1 kHz. Guards the bug where ``compressor: {attack_ms: 0}``
validated and then failed every file with exit 1.
"""

from __future__ import annotations

import math

import pytest

from fxcli.preset.build import build_chain, build_step
from fxcli.preset.loader import PresetError, StepConfig, validate_step
from fxcli.preset.spec import STEPS, Param

FS = 44100.0
# required keys (and one of each "exactly one" group) for a valid step of each type
BASE: dict[str, dict] = {
    "highpass": {"cutoff_hz": 1000},
    "lowpass": {"cutoff_hz": 1000},
    "bandpass": {"low_hz": 500, "high_hz": 2000},
    "bandstop": {"low_hz": 500, "high_hz": 2000},
    "peaking": {"freq_hz": 1000, "gain_db": 3},
    "lowshelf": {"freq_hz": 1000, "gain_db": 3},
    "highshelf": {"freq_hz": 1000, "gain_db": 3},
    "notch": {"freq_hz": 1000},
    "allpass": {"freq_hz": 1000},
    "fir": {"taps": 11, "cutoff_hz": 1000},
    "gain": {"gain_db": -3},
    "resample": {"rate_hz": 48000},
    "remix": {"to": "mono"},
}
SKIP = {"convolve"}
# the smallest value above an exclusive minimum that builds at FS (a rule of the rate)
MIN_BUILDABLE = {("delay", "time_ms"): 1000.0 / FS}
# where the library's argument has another name than the preset key (TorchFX's name)
LIB_NAME = {
    ("fir", "taps"): "num_taps"
}  # needs an impulse response file (tests/test_space.py covers its keys)


def _bounded() -> list[tuple[str, Param, str]]:
    out = []
    for t, spec in STEPS.items():
        if t in SKIP:
            continue
        for p in spec.params:
            if p.kind not in ("number", "int"):
                continue
            if p.minimum is not None:
                out.append((t, p, "min"))
            if p.maximum is not None:
                out.append((t, p, "max"))
    return out


CASES = _bounded()


def _ids(case: tuple[str, Param, str]) -> str:
    return f"{case[0]}.{case[1].name}.{case[2]}"


def _outside(p: Param, side: str) -> float:
    if side == "min":
        assert p.minimum is not None
        if p.exclusive_minimum:
            return p.minimum
        return p.minimum - (1 if p.kind == "int" else max(1e-6, abs(p.minimum) * 1e-6))
    assert p.maximum is not None
    if p.exclusive_maximum:
        return p.maximum
    return p.maximum + (1 if p.kind == "int" else max(1e-6, abs(p.maximum) * 1e-6))


def _boundary(p: Param, side: str, step_type: str = "") -> float:
    if side == "min" and (step_type, p.name) in MIN_BUILDABLE:
        return MIN_BUILDABLE[(step_type, p.name)]
    v = p.minimum if side == "min" else p.maximum
    assert v is not None
    if (side == "min" and p.exclusive_minimum) or (side == "max" and p.exclusive_maximum):
        step = 1 if p.kind == "int" else max(1e-3, abs(v) * 1e-6)
        return v + step if side == "min" else v - step
    return v


def _raw(t: str, key: str, value: float) -> dict:
    raw = {"type": t, **BASE.get(t, {}), key: value}
    if key == "high_hz" and isinstance(value, (int, float)) and value > 0:
        raw["low_hz"] = value / 2  # keep low_hz < high_hz
    # keys that exclude each other (at most one, or exactly one: ``one_of``): drop the
    # partners of the one under test
    for group in (*STEPS[t].exclusive, *STEPS[t].one_of):
        if key in group:
            for other in group:
                if other != key:
                    raw.pop(other, None)
    return raw


def test_every_bounded_key_is_covered() -> None:
    assert len(CASES) > 60


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_just_outside_is_refused_by_preset_and_library(case: tuple[str, Param, str]) -> None:
    t, p, side = case
    value = _outside(p, side)
    with pytest.raises(PresetError) as preset_err:
        validate_step(_raw(t, p.name, value), 0, 3, "limits.yaml", None)
    msg = str(preset_err.value)
    assert f"key '{p.name}': got" in msg and f"allowed: {p.allowed()}" in msg
    # the library: the step's class, given the same value (validation bypassed)
    params = dict(
        validate_step(_raw(t, p.name, _boundary(p, side, t)), 0, 3, "l.yaml", None).params
    )
    params[p.name] = float(value) if p.kind == "number" else int(value)
    cfg = StepConfig(t, params, 0, 3, "limits.yaml")
    with pytest.raises(ValueError) as lib_err:
        build_step(cfg, FS, 2)
    name = LIB_NAME.get((t, p.name), p.name)
    assert f"{name}: got" in str(lib_err.value), str(lib_err.value)
    assert f"allowed: {p.allowed()}" in str(lib_err.value), str(lib_err.value)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_boundary_value_builds_a_chain(case: tuple[str, Param, str]) -> None:
    t, p, side = case
    value = _boundary(p, side, t)
    cfg = validate_step(_raw(t, p.name, value), 0, 3, "limits.yaml", None)
    steps = build_chain([cfg], FS, 2)
    assert len(steps) == 1
    got = getattr(steps[0], p.name, None)
    if isinstance(got, (int, float)) and not isinstance(got, bool) and p.name != "gain_db":
        assert math.isclose(float(got), float(value), rel_tol=1e-12, abs_tol=1e-12)
