"""Fusion of a designed chain: runs of IIR steps and gains become one cascade,
runs of FIR steps one FIR (the engine runs the fused chain; outputs equal the
unfused chain within float rounding)."""

from __future__ import annotations

import numpy as np

from fxcli.steps.base import FIR, IIR, Step, as_numpy
from fxcli.steps.gain import Gain

__all__ = ["fuse"]


def _fusable(step: Step) -> bool:
    """Steps whose coefficients carry gradients (learnable filters) are not fused:
    fusing goes through float64 numpy copies of the coefficients."""
    if any(p.requires_grad for p in step.parameters()):
        return False
    return not any(getattr(b, "requires_grad", False) for b in step.buffers())


def fuse(steps: list[Step]) -> list[Step]:
    """Merge runs of IIR steps and gains into one IIR cascade (a gain scales the
    numerator of an adjacent section, costing nothing per sample), and runs of FIR
    steps into one FIR (taps convolved). Analysis steps (normalize) are barriers."""
    out: list[Step] = []
    for step in steps:
        prev = out[-1] if out else None
        if not (_fusable(step) and (prev is None or _fusable(prev))):
            out.append(step)
            continue
        label = f"{prev.label} + {step.label}" if prev is not None else step.label
        if isinstance(step, Gain) and isinstance(prev, Gain):
            out[-1] = Gain.factor(prev.gain * step.gain, label=label)
        elif isinstance(step, (IIR, Gain)) and isinstance(prev, (IIR, Gain)):
            if isinstance(prev, IIR) and isinstance(step, IIR):
                sos = np.concatenate([as_numpy(prev.sos), as_numpy(step.sos)])
            elif isinstance(prev, IIR) and isinstance(step, Gain):
                sos = as_numpy(prev.sos).copy()
                sos[-1, :3] *= step.gain
            else:
                assert isinstance(prev, Gain) and isinstance(step, IIR)
                sos = as_numpy(step.sos).copy()
                sos[0, :3] *= prev.gain
            out[-1] = IIR(sos, label=label)
        elif isinstance(step, FIR) and isinstance(prev, FIR):
            taps = np.convolve(as_numpy(prev.taps), as_numpy(step.taps))
            out[-1] = FIR(taps, label=label)
        else:
            out.append(step)
    return out
