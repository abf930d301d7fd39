"""Second-order-section (biquad cascade) IIR filtering for torch tensors.

:func:`sosfilt` mirrors :func:`scipy.signal.sosfilt` (same coefficient layout,
same ``zi``/``zf`` state layout and semantics) and streams exactly: filtering a
signal in chunks while carrying ``zf`` into the next call's ``zi`` gives the
same result as one call on the whole signal.

Modules: :mod:`~fxcli.dsp.iir.cpu` (the compiled CPU kernel), :mod:`~fxcli.dsp.iir.scan`
(the time-parallel torch algorithm), :mod:`~fxcli.dsp.iir.triton` (its Triton
kernels), :mod:`~fxcli.dsp.iir.autograd` (gradients), :mod:`~fxcli.dsp.iir.adjoint`
(the CPU backward), :mod:`~fxcli.dsp.iir.timevarying` (per-sample coefficients),
:mod:`~fxcli.dsp.iir.dispatch` (backend choice) and :mod:`~fxcli.dsp.iir.args`
(argument validation).

Two backends compute it:

``"cpu"`` (CPU only)
    A fused cascade compiled ahead of time (``csrc/iir.cpp``). For each sample
    all sections run with their coefficients and states in registers; the batch
    is flattened to rows (channels) that are spread over threads
    (:func:`fxcli.dsp.native.threads`), and groups of 4 rows are filtered
    together with 4-wide SIMD vectors on a time-major copy; inputs of 1-3 rows
    (mono, stereo) put the sections, skewed one sample apart, in the lanes. The
    arithmetic is operation for operation SciPy's transposed direct form II
    (no FMA contraction), so on x86-64 float64 results equal
    ``scipy.signal.sosfilt`` bit for bit, and chunked calls always equal one
    call bit for bit.

``"torch"`` (any device; the GPU path)
    A time-parallel block algorithm on the cascade's state-space form: the time
    axis is cut into segments of ``L`` samples, each segment's zero-state
    response is a Toeplitz matmul, the segment boundary states come from a
    parallel (Hillis-Steele) scan, and the state response is added back. The
    matrices (powers of the state matrix, impulse response) are precomputed in
    extended precision (``np.longdouble``, 80-bit on x86-64) and rounded once
    to float64: computing them in float64 made the results up to ~1000x less
    accurate than SciPy's for designs with poles close to z = 1 (e.g. 20 Hz at
    96 kHz). With it, the distance to the exact result is within about 20x of
    SciPy's own float64 rounding error (measured on 285 random designs against
    an 80-bit reference and SciPy); on platforms where ``np.longdouble`` is
    float64 that advantage is lost for such designs. Not bit-identical to
    SciPy, and chunked calls agree with one call to rounding.

All arithmetic, coefficients and states are float64 whatever the input dtype.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SosfiltFunction",
    "TvSosfiltFunction",
    "sosfilt",
    "sosfilt_autograd",
    "tvsosfilt",
]


def __getattr__(name: str) -> Any:
    # loaded on first use: the torch API (api) is not imported for the numpy kernels
    if name in __all__:
        from fxcli.dsp.iir import api

        return getattr(api, name)
    raise AttributeError(f"module 'fxcli.dsp.iir' has no attribute {name!r}")
