"""Other meters' true-peak interpolators as polyphase branches, for the limiter.

Issue 17: near Nyquist (clicks, clipped full-band noise, tones at 0.45-0.5 fs)
true-peak meters disagree by tenths of a dB, because each reconstructs the
ambiguous band around ``fs / 2`` with its own filter. A limiter that keeps only
:func:`fxcli.dsp.truepeak.interpolator`'s values under its ceiling can be read
over it by another meter (measured: scipy's ``resample_poly(y, 8, 1)`` up to
+0.12 dB over, FFmpeg's ``ebur128=peak=true`` up to +0.05 dB over, on
click and near-Nyquist bursts driven into a -1 dBTP ceiling). The limiter
therefore checks the union of three interpolators (:func:`limiter_phases`):

- the default sinc (:func:`fxcli.dsp.truepeak.interpolator`, the meter of
  ``fxcli analyze``);
- scipy's ``resample_poly(x, 8, 1)`` with its default filter
  (:func:`resample_poly8_phases`: ``firwin(161, 1/8, window=("kaiser", 5.0))``
  times 8, 20 taps per phase; all 8 phases, exactly: its phase 0 is not the
  identity but scales the samples by 1.00067, +0.006 dB);
- FFmpeg's ``ebur128`` true-peak meter (:func:`ffmpeg_phases`): libswresample
  upsampling to 192 kHz with its default filter (32 taps, Kaiser window
  ``beta = 9``, cutoff at the input's Nyquist when upsampling, every phase
  normalized by phase 0's sum; ``r = 192000 / gcd`` phases when that is at most
  1024 (``exact_rational``), else 1024, in which case the position is truncated
  to 1/1024). The 192 kHz grid visits ``r`` fractional positions (48 kHz: 1/4,
  1/2, 3/4; 96 kHz: 1/2; 16 kHz: k/12; 44.1 kHz: k/640; 22.05 kHz: k/1024): up
  to :data:`FFMPEG_MAX_POSITIONS` of them all, else that many evenly spaced ones
  (the values between them, for content up to 0.55 fs, at most 1 - cos(0.55 pi /
  16) = 0.05 dB higher).

Every branch is placed into the default's ``T = 48`` taps with the same centre
(an estimate of input time ``n - 24 + f``), so the limiter's latency does not
change. Not emulated: FFmpeg's meter mirrors the first 32 samples of a stream
(libswresample's initial buffer, ``x[-k] = x[k]``), so a transient in the first
~1 ms of a file can read higher by FFmpeg than by any meter of the signal itself
(a +1/-1 click at sample 0 limited to -1.15 dBTP reads -0.64 dBTP by FFmpeg).
numpy only (no scipy).
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "FFMPEG_RATE_HZ",
    "FFMPEG_MAX_POSITIONS",
    "MAX_PHASES",
    "ffmpeg_phase_count",
    "ffmpeg_filter",
    "ffmpeg_phases",
    "resample_poly8_phases",
    "limiter_phases",
]

#: The rate FFmpeg's ``ebur128`` true-peak meter upsamples to (Hz).
FFMPEG_RATE_HZ = 192_000
#: libswresample's defaults: filter_size, phase_shift (1024 phases), kaiser_beta.
_SWR_TAPS, _SWR_PHASES, _SWR_BETA = 32, 1024, 9.0
#: At most this many of FFmpeg's fractional positions become branches (evenly spaced).
FFMPEG_MAX_POSITIONS = 16
#: The compiled limiter takes at most this many phases.
MAX_PHASES = 64


def ffmpeg_phase_count(fs: float) -> tuple[int, bool]:
    """``(r, exact)``: the phases of libswresample's filter for ``fs -> 192 kHz``
    (``exact``: ``r = 192000 / gcd(192000, fs)`` <= 1024, every position visited
    is ``k / r``; else ``r = 1024`` and positions are truncated to ``k / 1024``)."""
    num = FFMPEG_RATE_HZ // math.gcd(FFMPEG_RATE_HZ, int(round(fs)))
    return (num, True) if num <= _SWR_PHASES else (_SWR_PHASES, False)


def ffmpeg_filter(fs: float, phase: int) -> np.ndarray:
    """libswresample's default upsampling filter, phase ``phase`` of
    :func:`ffmpeg_phase_count`: 32 float64 taps ``b[i]``; the output at input time
    ``m + phase / r`` is ``sum_i b[i] x[m - 15 + i]``."""
    r, _ = ffmpeg_phase_count(fs)
    center = (_SWR_TAPS - 1) // 2
    i = np.arange(_SWR_TAPS, dtype=np.float64)

    def taps(ph: int) -> np.ndarray:
        x = math.pi * ((i - center) - ph / r)
        safe = np.where(x == 0.0, 1.0, x)
        y = np.where(x == 0.0, 1.0, np.sin(safe) / safe)
        w = 2.0 * x / (_SWR_TAPS * math.pi)
        return y * np.i0(_SWR_BETA * np.sqrt(np.clip(1.0 - w * w, 0.0, None)))

    return taps(phase) / taps(0).sum()  # every phase by phase 0's sum, as FFmpeg does


def _aligned(taps_per_phase: int) -> tuple[int, np.ndarray]:
    c = taps_per_phase // 2
    return c, np.zeros(taps_per_phase)


def ffmpeg_phases(fs: float, taps_per_phase: int = 48) -> np.ndarray:
    """``(K, taps_per_phase)`` branches estimating input time ``n - T/2 + f`` with
    FFmpeg's filter, for the non-zero positions ``f`` its 192 kHz grid visits (all
    of them where there are at most :data:`FFMPEG_MAX_POSITIONS`, else that many
    evenly spaced, each truncated to FFmpeg's phase grid). ``K = 0`` at or above
    192 kHz (FFmpeg then resamples down, not a peak interpolation)."""
    if fs >= FFMPEG_RATE_HZ:
        return np.zeros((0, taps_per_phase))
    r, _ = ffmpeg_phase_count(fs)
    if r <= FFMPEG_MAX_POSITIONS:
        positions = list(range(1, r))
    else:
        positions = [j * r // FFMPEG_MAX_POSITIONS for j in range(1, FFMPEG_MAX_POSITIONS)]
    rows = []
    for ph in positions:
        c, h = _aligned(taps_per_phase)
        b = ffmpeg_filter(fs, ph)
        # x[m - 15 + i] with m = n - c is x[n - k], k = c + 15 - i
        for i in range(_SWR_TAPS):
            h[c + 15 - i] = b[i]
        rows.append(h)
    return np.array(rows).reshape(len(rows), taps_per_phase)


def resample_poly8_phases(taps_per_phase: int = 48) -> np.ndarray:
    """``(8, taps_per_phase)``: phases 0..7 of scipy's ``resample_poly(x, 8, 1)``
    (default ``window=("kaiser", 5.0)``: ``firwin(161, 1/8)`` times 8), aligned to
    estimate input time ``n - T/2 + p/8``, computed with numpy (no scipy)."""
    up, half = 8, 80
    m = np.arange(2 * half + 1, dtype=np.float64) - half
    h = np.sinc(m / up) / up * np.kaiser(2 * half + 1, 5.0)
    h = h / h.sum() * up
    rows = []
    for p in range(up):
        c, t = _aligned(taps_per_phase)
        # output 8 n' + p = sum_d x[n' - d] h[8 d + p + half]; n' = n - c -> k = c + d
        for d in range(-c, taps_per_phase - c):
            j = up * d + p + half
            if 0 <= j < h.size:
                t[c + d] = h[j]
        rows.append(t)
    return np.array(rows)


@functools.lru_cache(maxsize=16)
def limiter_phases(fs: float, base: bytes, taps_per_phase: int) -> np.ndarray:
    """The union ``(L', T)``: ``base`` (the default interpolator's phases, as bytes
    of a C-ordered float64 ``(L, T)`` array), then :func:`resample_poly8_phases`,
    then :func:`ffmpeg_phases`, then zero rows to a multiple of 4. Where that would
    exceed :data:`MAX_PHASES` (rates under ~4.6 kHz) the FFmpeg branches, then the
    scipy ones, are left out. Read-only float64."""
    b = np.frombuffer(base, dtype=np.float64).reshape(-1, taps_per_phase)
    extra = [resample_poly8_phases(taps_per_phase), ffmpeg_phases(fs, taps_per_phase)]
    while extra and b.shape[0] + sum(len(e) for e in extra) > MAX_PHASES:
        extra.pop()
    rows = np.concatenate([b, *extra], axis=0)
    pad = -rows.shape[0] % 4
    out = np.ascontiguousarray(np.concatenate([rows, np.zeros((pad, taps_per_phase))]))
    out.setflags(write=False)
    return out
