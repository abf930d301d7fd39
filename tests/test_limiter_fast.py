"""issue 17 (speed): the true-peak limiter's fast mode gives the exact mode's bits.

The compiled limiter (csrc/dynamics.cpp, ``tp_group``) checks only the newest
interpolated output point while nothing was corrected for a whole window (a bound
first, then the exact value), rebuilds the finalized / unfinalized parts of the
pending points by replaying the exact mode's operations when a new point comes
near the ceiling, and prunes the per-frame true peaks that cannot reach the
ceiling. These tests hold it to the reference loops (tests/_dynamics_reference.py)
bit for bit on signals that switch modes, with corrections, chunk boundaries in
both modes, NaN and inf.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fxcli.dsp import dynamics as dyn
from fxcli.dsp.truepeak import Interpolator, kaiser_sinc_phases
from tests import _dynamics_reference as reference

FS = 48000


def _bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    ints = torch.int64 if a.element_size() == 8 else torch.int32
    return torch.equal(a.contiguous().view(ints), b.contiguous().view(ints))


def _run_both(x: torch.Tensor, cuts: list[tuple[int, int]], **kw: object) -> None:
    l_new = l_ref = None
    for a, b in cuts:
        y_new, l_new = dyn.limit(x[..., a:b], l_new, **kw)  # type: ignore[arg-type]
        y_ref, l_ref = reference.limit(x[..., a:b], l_ref, **kw)  # type: ignore[arg-type]
        assert _bits_equal(y_new, y_ref), (a, b, kw)
        assert all(map(_bits_equal, l_new, l_ref)), (a, b, kw)


def _quiet_then_bursts(
    n: int,
    start: int,
    longest: int,
    bursts: int,
    clicks: int,
    *,
    nan_at: int,
    inf_at: int,
    seed: int,
) -> torch.Tensor:
    """(1, 2, n) float32: a quiet sine, then from ``start`` on fs/4 square bursts and
    single clicks 1-4x full scale, a NaN in channel 0 and an inf in channel 1."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 0.05 * np.sin(2 * np.pi * 0.011 * t)[None, :] * np.array([[1.0], [0.6]])
    for s in rng.integers(start, n - 150, bursts):
        m = int(rng.integers(5, longest))
        x[:, s : s + m] = 3.0 * np.sign(np.sin(np.pi / 2 * t[s : s + m] + rng.uniform(0, 6)))
    for s in rng.integers(start, n, clicks):
        x[int(rng.integers(0, 2)), s] = rng.choice([-1, 1]) * rng.uniform(1, 4)
    x[0, nan_at] = np.nan
    x[1, inf_at] = np.inf
    return torch.tensor(x.reshape(1, 2, n), dtype=torch.float32)


def test_fast_mode_with_corrections_matches_reference() -> None:
    """issue 17: gated clipped noise through a 1-frame ramp: long stretches in the
    fast mode, new points over the ceiling (a rebuild, a correction, the exact mode
    and back), chunk boundaries in both modes; the same bits as the reference."""
    it = Interpolator("test", 8, kaiser_sinc_phases(8, 16), 15, 8.0)
    rng = np.random.default_rng(2)
    n = 3000
    x = np.clip(rng.standard_normal((2, n)) * 3, -2, 2) * (rng.uniform(0, 1, (1, n)) > 0.7)
    xt = torch.tensor(x.reshape(1, 2, n))
    cuts = [(0, 700), (700, 701), (701, 1999), (1999, n)]
    for release_ms in (0.02, 3.0):
        _run_both(xt, cuts, ceiling=0.7, true_peak=True, lookahead=1, release_ms=release_ms,
                  fs=FS, interp=it)  # fmt: skip


def test_fast_mode_quiet_then_loud_float32_nan() -> None:
    """issue 17: a quiet stretch (pruned true peaks, unity gain, fast mode) then
    loud bursts near fs/4 and clicks, float32, a NaN and an inf late in the
    signal: the same bits as the reference, chunk by chunk."""
    it = Interpolator("test", 8, kaiser_sinc_phases(8, 16), 15, 8.0)
    xt = _quiet_then_bursts(2400, 900, 100, 8, 12, nan_at=2100, inf_at=2200, seed=5)
    cuts = [(0, 500), (500, 1500), (1500, 2400)]
    _run_both(xt, cuts, ceiling=0.5, true_peak=True, lookahead=3, release_ms=1.0, fs=FS, interp=it)


@pytest.mark.parametrize("fs", [44100, 48000])
def test_default_interpolator_zero_taps_skipped_same_bits(fs: int) -> None:
    """issue 17: the limiter's default interpolator is a union of meters whose shorter
    filters are padded with zero taps (resample_poly's 21 of 48, FFmpeg's 32); the
    requirement stage skips them on finite supports and sums every tap where the
    support holds inf or NaN (0 * inf is NaN). Same bits as the reference, which sums
    every tap, on loud bursts, clicks, a NaN and an inf, chunk by chunk."""
    it = dyn.limiter_interpolator(fs)
    assert it.factor > 8 and (it.phases == 0.0).any()
    xt = _quiet_then_bursts(1600, 300, 80, 6, 10, nan_at=1100, inf_at=1300, seed=fs)
    cuts = [(0, 400), (400, 1001), (1001, 1600)]
    _run_both(xt, cuts, ceiling=0.5, true_peak=True, lookahead=3, release_ms=1.0, fs=fs, interp=it)
