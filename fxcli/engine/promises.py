"""What a file's result promised and what it reached: the measured levels of a run
and the warnings for promises missed: a report never says ``ok`` to a result
that missed its promise without saying so.

The engine hands in what it measured anyway: each analysis step's measurement from
its measuring pass (:class:`Measured`), and the input and output
:class:`~fxcli.dsp.levelmeter.LevelMeter` fed by the reader and writer threads.
:func:`check` returns the ``levels`` object of the ``--json`` line and the warnings:

- a ``loudness`` target missed by more than :data:`TARGET_TOLERANCE_LU` (with the
  reason: the true-peak ceiling limited the gain, the limiter after it held the level
  down, or later steps changed the level);
- an undefined loudness (shorter than 400 ms, or digital silence / nothing above the
  -70 LUFS gate) or a silent ``normalize``: left unnormalized;
- a clipped output (samples beyond full scale, clipped by the writer);
- an output whose true peak (sample peak for ``true_peak: false`` limiters) exceeds a
  ceiling of the chain (a limiter's ``ceiling_db``, a loudness step's
  ``max_true_peak_db``) by more than :data:`CEILING_TOLERANCE_DB`.

Each warning is one line with numbers; ``--strict`` makes any of them a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fxcli.dsp.levelmeter import LevelMeter, db
from fxcli.errors import FxcliError
from fxcli.steps import Step

__all__ = [
    "CEILING_TOLERANCE_DB",
    "TARGET_TOLERANCE_LU",
    "Measured",
    "PromiseMissed",
    "check",
    "has_promises",
]

#: a loudness target counts as reached within this many LU (the aim through a limiter
#: stops within 0.05 LU; a linear gain lands within rounding; EBU R128 allows 0.5)
TARGET_TOLERANCE_LU = 0.2
#: a ceiling counts as kept within this many dB (measuring tolerance of the meters)
CEILING_TOLERANCE_DB = 0.05
#: the shortest signal with a defined integrated loudness (one 400 ms gating block)
MIN_LOUDNESS_SECONDS = 0.4


@dataclass
class Measured:
    """One analysis step's measuring pass: the step (unresolved), its position in the
    designed chain, its measurement ``acc``, the linear gain it resolved to and
    whether the gain was aimed through a following peak limiter."""

    index: int
    step: Step
    acc: Any
    gain: float
    through_limiter: bool = False


class PromiseMissed(FxcliError):
    """A strict run (the CLI's ``--strict``): the result missed a promise; the message
    lists the warnings."""

    @classmethod
    def of(cls, warnings: list[str]) -> PromiseMissed:
        return cls.about("{strict}: {warnings}", warnings="; ".join(warnings))


def has_promises(steps: list[Step]) -> bool:
    """Whether a designed chain promises levels worth measuring (an analysis step,
    a peak limiter or a loudness ceiling): then the engine meters input and output."""
    return any(
        s.needs_analysis
        or getattr(s, "peak_limiter", False)
        or getattr(s, "max_true_peak_db", None) is not None
        for s in steps
    )


def _r(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, 2)


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2f} {unit}" if math.isfinite(v) else f"-inf {unit}"


def _loudness_step(m: Measured, fs: float, frames: int) -> tuple[dict[str, Any], list[str]]:
    from fxcli.dsp import loudness as L

    step: Any = m.step
    integrated = L.integrated_lufs(m.acc[0]) if m.acc is not None else -math.inf
    tp = step.true_peak(m.acc) if step.max_true_peak_db is not None else None
    gain_db = db(m.gain)
    row: dict[str, Any] = {
        "step": "loudness",
        "label": step.label,
        "target_lufs": step.target_lufs,
        "max_true_peak_db": step.max_true_peak_db,
        "measured_lufs": _r(integrated),
        "measured_true_peak_dbtp": _r(db(tp)) if tp is not None else None,
        "gain_db": _r(gain_db),
        "through_limiter": m.through_limiter,
    }
    warnings: list[str] = []
    if integrated == -math.inf:
        seconds = frames / fs if fs else 0.0
        why = (
            f"too short: {seconds:.3f} s < {MIN_LOUDNESS_SECONDS} s"
            if seconds < MIN_LOUDNESS_SECONDS
            else "silence: nothing above the -70 LUFS gate"
        )
        row["undefined"] = why
        warnings.append(
            f"{step.label}: loudness undefined ({why}); left unnormalized "
            f"(gain {gain_db:+.2f} dB, target {step.target_lufs:.1f} LUFS not applied)"
        )
        return row, warnings
    row["wanted_gain_db"] = _r(step.target_lufs - integrated)
    row["expected_lufs"] = None if m.through_limiter else _r(integrated + gain_db)
    return row, warnings


def _normalize_step(m: Measured) -> tuple[dict[str, Any], list[str]]:
    step: Any = m.step
    value, count = m.acc if m.acc is not None else (0.0, 0)
    rms = step.rms_db is not None
    level = (value / count) ** 0.5 if rms and count else (0.0 if rms else value)
    row: dict[str, Any] = {
        "step": "normalize",
        "label": step.label,
        "target_rms_dbfs" if rms else "target_peak_dbfs": step.rms_db if rms else step.peak_db,
        "measured_rms_dbfs" if rms else "measured_peak_dbfs": _r(db(level)),
        "gain_db": _r(db(m.gain)),
    }
    warnings = []
    if level == 0.0:
        row["undefined"] = "silence"
        warnings.append(
            f"{step.label}: digital silence ({'RMS' if rms else 'peak'} 0); left unnormalized"
        )
    return row, warnings


def check(
    steps: list[Step],
    measured: list[Measured],
    *,
    fs: float,
    frames: int,
    inp: LevelMeter | None,
    out: LevelMeter | None,
    clipped: int,
) -> tuple[dict[str, Any] | None, list[str]]:
    """The ``levels`` object (None when nothing was measured) and the warnings.

    ``steps``: the designed chain (unfused); ``measured``: its analysis steps'
    measurements in chain order; ``fs``/``frames``: the input's rate and length;
    ``inp``/``out``: meters of the input read and the output written (None when not
    measured); ``clipped``: samples the writer clipped."""
    warnings: list[str] = []
    rows: list[dict[str, Any]] = []
    out_lufs = out.lufs() if out is not None else None
    out_tp = out.true_peak_db() if out is not None else None
    out_peak = out.peak_db() if out is not None else None
    last_loudness = max(
        (k for k, m in enumerate(measured) if getattr(m.step, "target_lufs", None) is not None),
        default=None,
    )
    for k, m in enumerate(measured):
        if getattr(m.step, "target_lufs", None) is not None:
            row, w = _loudness_step(m, fs, frames)
            warnings += w
            if "undefined" not in row:
                later = [str(getattr(s, "label", type(s).__name__)) for s in steps[m.index + 1 :]]
                last = k == last_loudness
                warnings += _target_missed(m, row, out_lufs if last else None, later)
        else:
            row, w = _normalize_step(m)
            warnings += w
        rows.append(row)
    if out is not None:
        warnings += _ceilings(steps, measured, out_tp, out_peak)
    if clipped:
        peak = f" (output peak {out_peak:+.2f} dBFS)" if out_peak is not None else ""
        warnings.append(f"clipped {clipped} samples at full scale{peak}")
    if inp is None and out is None and not rows:
        return None, warnings
    levels: dict[str, Any] = {
        "input": inp.summary() if inp is not None else None,
        "output": out.summary() if out is not None else None,
        "steps": rows,
    }
    return levels, warnings


def _target_missed(
    m: Measured, row: dict[str, Any], out_lufs: float | None, later: list[str]
) -> list[str]:
    """The missed-target warning of a loudness step (``row`` gets ``reached_lufs``);
    ``later``: the labels of the steps after it."""
    step: Any = m.step
    target = step.target_lufs
    expected = row.get("expected_lufs")
    reached = out_lufs if out_lufs is not None and math.isfinite(out_lufs) else expected
    row["reached_lufs"] = _r(reached)
    if reached is None or abs(reached - target) <= TARGET_TOLERANCE_LU:
        row["target_reached"] = reached is not None
        return []
    row["target_reached"] = False
    gain, wanted = row["gain_db"], row["wanted_gain_db"]
    if m.through_limiter and len(later) == 1:
        why = (
            f"the limiter after it holds the level down (gain {gain:+.2f} dB after "
            "aiming through it)"
        )
    elif step.max_true_peak_db is not None and wanted - gain > 0.01:
        why = (
            f"max_true_peak_db {step.max_true_peak_db:g} dBTP limited the gain to "
            f"{gain:+.2f} dB instead of {wanted:+.2f} dB (true peak before the step "
            f"{_fmt(row['measured_true_peak_dbtp'], 'dBTP')}; a limiter after the "
            "loudness step can reach the target)"
        )
    elif expected is not None and later:
        by = reached - expected
        why = f"the steps after it ({', '.join(later)}) changed the level by {by:+.2f} LU"
    elif later:
        why = f"the steps after it ({', '.join(later)}) changed the level"
    else:
        why = f"gain {gain:+.2f} dB"
    return [
        f"{step.label}: missed target {target:.1f} LUFS: reached {reached:.2f} LUFS "
        f"(input of the step {row['measured_lufs']:.2f} LUFS; {why})"
    ]


def _ceilings(
    steps: list[Step], measured: list[Measured], out_tp: float | None, out_peak: float | None
) -> list[str]:
    """Warnings for the output's peaks above a ceiling the chain promises."""
    warnings = []
    aimed = {m.index for m in measured if m.through_limiter}
    for k, step in enumerate(steps):
        s: Any = step
        if getattr(s, "peak_limiter", False):
            ceiling, true_peak = float(s.ceiling_db), bool(s.true_peak)
            what = f"{s.label}'s ceiling_db {ceiling:g} {'dBTP' if true_peak else 'dBFS'}"
        elif getattr(s, "max_true_peak_db", None) is not None and k not in aimed:
            ceiling, true_peak = float(s.max_true_peak_db), True
            what = f"{s.label}'s max_true_peak_db {ceiling:g} dBTP"
        else:
            continue
        level = out_tp if true_peak else out_peak
        if level is not None and math.isfinite(level) and level > ceiling + CEILING_TOLERANCE_DB:
            kind = "true peak" if true_peak else "sample peak"
            unit = "dBTP" if true_peak else "dBFS"
            warnings.append(f"output {kind} {level:+.2f} {unit} exceeds the {what}")
    return warnings
