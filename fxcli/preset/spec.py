"""The preset step vocabulary: every step type, its keys, defaults and limits.

This table is the single source of truth for validation messages, the JSON
Schema shipped for editors (:func:`fxcli.preset.schema.json_schema`) and the
CLI's ``presets`` help. It imports neither torch nor scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fxcli.errors import ParameterError
from fxcli.io.formats import OUTPUT_SUBTYPES as OUTPUT_SUBTYPES

REQUIRED: Any = object()

IIR_DESIGNS = ("butterworth", "chebyshev1", "chebyshev2", "elliptic", "bessel", "linkwitz_riley")
FIR_PASS = ("lowpass", "highpass", "bandpass", "bandstop")
MAX_IIR_ORDER = 32
MAX_FIR_TAPS = 65536
MAX_COEFFICIENTS_FILE_BYTES = 16 * 1024 * 1024
MAX_IR_FILE_BYTES = 64 * 1024 * 1024
MAX_CHANNELS = 64
FADE_SHAPES = ("linear", "exp", "cosine")
REMIX_SHORTHANDS = ("mono", "stereo", "swap")
RESAMPLE_QUALITY = ("quick", "low", "medium", "high", "very_high")


@dataclass(frozen=True)
class Param:
    """One key of a step.

    ``kind`` is one of ``number`` (int or float), ``int``, ``bool``, ``choice``,
    ``freq_or_band`` (a number or ``[low, high]``), ``numbers`` (a non-empty list of
    numbers), ``matrix`` (a list of equal-length rows of numbers), ``path`` (a file
    path relative to the preset) or ``window`` (a SciPy window name or
    ``[name, parameter...]``).
    """

    name: str
    kind: str
    help: str
    default: Any = REQUIRED
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[str, ...] = ()
    unit: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, value: Any) -> Any:
        """``value`` checked against this key's kind and limits, normalized (ints to
        float for numbers...); else :class:`~fxcli.errors.ParameterError`
        (``name: got X; allowed: Y``). Presets and step constructors both check here."""
        return _check(self, value)

    def allowed(self) -> str:
        """Human description of the allowed values, used in error messages."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.exclusive_minimum else '>='} {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"{'<' if self.exclusive_maximum else '<='} {self.maximum:g}")
        what = {
            "number": "a number",
            "int": "an integer",
            "bool": "true or false",
            "matrix": f"a list of rows (one per output channel, <= {MAX_CHANNELS}) of numbers",
            "freq_or_band": "a number or [low, high]",
            "numbers": "a non-empty list of numbers",
            "path": "a file path (relative to the preset)",
            "window": "a SciPy window name or [name, parameter]",
        }[self.kind]
        unit = f" {self.unit}" if self.unit else ""
        return what + (" " + " and ".join(parts) + unit if parts else "")


@dataclass(frozen=True)
class StepSpec:
    """A step type: its keys, and groups of keys that exclude or require each other."""

    type: str
    help: str
    params: tuple[Param, ...]
    exclusive: tuple[tuple[str, ...], ...] = ()  # at most one key of each group
    one_of: tuple[tuple[str, ...], ...] = ()  # exactly one key of each group
    needs_analysis: bool = False
    param_map: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_map", {p.name: p for p in self.params})


def _freq(name: str, help: str, default: Any = REQUIRED) -> Param:
    return Param(name, "number", help, default, minimum=0, exclusive_minimum=True, unit="Hz")


_ORDER = Param("order", "int", "filter order (band types: 2N poles)", 2, 1, MAX_IIR_ORDER)
_DESIGN = Param("design", "choice", "IIR design family", "butterworth", choices=IIR_DESIGNS)
_RIPPLE = Param(
    "ripple_db", "number", "passband ripple (chebyshev1, elliptic)", 0.5, 0, 20, True, unit="dB"
)
_ATTEN = Param(
    "attenuation_db",
    "number",
    "stopband attenuation (chebyshev2, elliptic)",
    40.0,
    0,
    200,
    True,
    unit="dB",
)
_Q = Param("q", "number", "quality factor", 0.7071, 0, 100, True)
_GAIN = Param("gain_db", "number", "gain", REQUIRED, -120, 60, unit="dB")

_PASS_PARAMS = (_freq("cutoff_hz", "cutoff frequency"), _ORDER, _DESIGN, _RIPPLE, _ATTEN)
_BAND_PARAMS = (
    _freq("low_hz", "lower band edge"),
    _freq("high_hz", "upper band edge"),
    _ORDER,
    _DESIGN,
    _RIPPLE,
    _ATTEN,
)

STEPS: dict[str, StepSpec] = {
    s.type: s
    for s in [
        StepSpec("highpass", "IIR highpass, scipy.signal.iirfilter semantics", _PASS_PARAMS),
        StepSpec("lowpass", "IIR lowpass, scipy.signal.iirfilter semantics", _PASS_PARAMS),
        StepSpec("bandpass", "IIR bandpass (order N gives 2N poles)", _BAND_PARAMS),
        StepSpec("bandstop", "IIR bandstop (order N gives 2N poles)", _BAND_PARAMS),
        StepSpec(
            "peaking",
            "RBJ cookbook peaking EQ biquad",
            (_freq("freq_hz", "centre frequency"), _GAIN, _Q),
        ),
        StepSpec(
            "lowshelf",
            "RBJ cookbook low shelf biquad (q or slope)",
            (
                _freq("freq_hz", "shelf midpoint frequency"),
                _GAIN,
                Param("q", "number", "quality factor", None, 0, 100, True),
                Param("slope", "number", "shelf slope (1 = steepest monotonic)", None, 0, 10, True),
            ),
            exclusive=(("q", "slope"),),
        ),
        StepSpec(
            "highshelf",
            "RBJ cookbook high shelf biquad (q or slope)",
            (
                _freq("freq_hz", "shelf midpoint frequency"),
                _GAIN,
                Param("q", "number", "quality factor", None, 0, 100, True),
                Param("slope", "number", "shelf slope (1 = steepest monotonic)", None, 0, 10, True),
            ),
            exclusive=(("q", "slope"),),
        ),
        StepSpec("notch", "RBJ cookbook notch biquad", (_freq("freq_hz", "notch frequency"), _Q)),
        StepSpec(
            "allpass", "RBJ cookbook allpass biquad", (_freq("freq_hz", "centre frequency"), _Q)
        ),
        StepSpec(
            "fir",
            "FIR filter: windowed sinc (scipy.signal.firwin) or explicit coefficients",
            (
                Param("taps", "int", "number of taps for a designed filter", None, 1, MAX_FIR_TAPS),
                Param(
                    "cutoff_hz",
                    "freq_or_band",
                    "cutoff (or [low, high] for band types)",
                    None,
                    unit="Hz",
                ),
                Param("pass", "choice", "response type", "lowpass", choices=FIR_PASS),
                Param("window", "window", "scipy.signal.get_window name", "hamming"),
                Param("coefficients", "numbers", "explicit taps", None),
                Param(
                    "coefficients_file",
                    "path",
                    "taps in a .txt (whitespace separated) or .npy",
                    None,
                ),
            ),
            one_of=(("taps", "coefficients", "coefficients_file"),),
        ),
        StepSpec("gain", "constant gain", (_GAIN,)),
        StepSpec(
            "normalize",
            "scale so the sample peak (peak_db) or the RMS (rms_db) of the chain's output up "
            "to here reaches the target (measuring pass)",
            (
                Param("peak_db", "number", "target sample peak", None, -120, 0, unit="dBFS"),
                Param(
                    "rms_db", "number", "target RMS over all channels", None, -120, 0, unit="dBFS"
                ),
            ),
            exclusive=(("peak_db", "rms_db"),),
            needs_analysis=True,
        ),
        StepSpec(
            "loudness",
            "linear gain to an integrated loudness (ITU-R BS.1770-4 / EBU R128, measuring "
            "pass), optionally lowered so the true peak stays under max_true_peak_db",
            (
                Param(
                    "target_lufs",
                    "number",
                    "integrated loudness target",
                    -23.0,
                    -70,
                    0,
                    unit="LUFS",
                ),
                Param(
                    "max_true_peak_db",
                    "number",
                    "true-peak limit for the gain",
                    None,
                    -30,
                    0,
                    unit="dBTP",
                ),
            ),
            needs_analysis=True,
        ),
        StepSpec(
            "compressor",
            "feed-forward compressor with a soft knee (Giannoulis, Massberg & Reiss 2012)",
            (
                Param("threshold_db", "number", "threshold", -18.0, -100, 0, unit="dBFS"),
                Param("ratio", "number", "compression ratio", 4.0, 1, 100),
                Param("attack_ms", "number", "attack time", 10.0, 0, 1000, True, unit="ms"),
                Param("release_ms", "number", "release time", 100.0, 0, 10000, True, unit="ms"),
                Param("knee_db", "number", "soft knee width", 6.0, 0, 48, unit="dB"),
                Param("makeup_db", "number", "makeup gain", 0.0, -24, 48, unit="dB"),
                Param("detector", "choice", "level detector", "peak", choices=("peak", "rms")),
                Param(
                    "sidechain_highpass_hz",
                    "number",
                    "highpass on the detector",
                    None,
                    0,
                    20000,
                    True,
                    unit="Hz",
                ),
                Param("link_channels", "bool", "one gain for all channels", True),
            ),
        ),
        StepSpec(
            "limiter",
            "lookahead brickwall limiter, latency compensated; with true_peak the output's "
            "4x-oversampled peak never exceeds the ceiling",
            (
                Param("ceiling_db", "number", "output ceiling", -1.0, -60, 0, unit="dBFS"),
                Param("true_peak", "bool", "limit the true (inter-sample) peak", True),
                Param("lookahead_ms", "number", "lookahead", 5.0, 0, 100, True, unit="ms"),
                Param("release_ms", "number", "release time", 50.0, 0, 10000, True, unit="ms"),
            ),
        ),
        StepSpec(
            "gate",
            "noise gate: strong downward expansion below the threshold, with hold",
            (
                Param("threshold_db", "number", "threshold", -50.0, -140, 0, unit="dBFS"),
                Param("ratio", "number", "expansion ratio", 10.0, 1, 1000),
                Param(
                    "attack_ms", "number", "attack (opening) time", 1.0, 0, 1000, True, unit="ms"
                ),
                Param("hold_ms", "number", "hold time", 50.0, 0, 10000, unit="ms"),
                Param(
                    "release_ms",
                    "number",
                    "release (closing) time",
                    100.0,
                    0,
                    10000,
                    True,
                    unit="ms",
                ),
            ),
        ),
        StepSpec(
            "expander",
            "downward expander below the threshold, with hold",
            (
                Param("threshold_db", "number", "threshold", -40.0, -140, 0, unit="dBFS"),
                Param("ratio", "number", "expansion ratio", 2.0, 1, 1000),
                Param("attack_ms", "number", "attack time", 5.0, 0, 1000, True, unit="ms"),
                Param("hold_ms", "number", "hold time", 20.0, 0, 10000, unit="ms"),
                Param("release_ms", "number", "release time", 100.0, 0, 10000, True, unit="ms"),
            ),
        ),
        StepSpec(
            "fade",
            "fade in from the start and/or out to the end (the fade-out holds out_s back)",
            (
                Param("in_s", "number", "fade-in length", 0.0, 0, 3600, unit="s"),
                Param("out_s", "number", "fade-out length", 0.0, 0, 600, unit="s"),
                Param("shape", "choice", "fade curve", "linear", choices=FADE_SHAPES),
            ),
        ),
        StepSpec(
            "trim",
            "cut start_s seconds from the start and end_s seconds from the end",
            (
                Param("start_s", "number", "seconds removed at the start", 0.0, 0, 86400, unit="s"),
                Param("end_s", "number", "seconds removed at the end", 0.0, 0, 600, unit="s"),
            ),
        ),
        StepSpec(
            "pad",
            "add start_s seconds of silence before and end_s seconds after",
            (
                Param("start_s", "number", "silence added at the start", 0.0, 0, 3600, unit="s"),
                Param("end_s", "number", "silence added at the end", 0.0, 0, 3600, unit="s"),
            ),
        ),
        StepSpec(
            "delay",
            "feedback echo: wet = x delayed by time_ms, fed back with feedback; mix of dry and wet",
            (
                Param("time_ms", "number", "echo delay", 250.0, 0, 10000, True, unit="ms"),
                Param("feedback", "number", "feedback gain", 0.3, 0, 0.99),
                Param("mix", "number", "wet share (0 dry, 1 wet)", 0.5, 0, 1),
            ),
        ),
        StepSpec(
            "remix",
            "channel matrix (rows: output channels, columns: input channels) or a shorthand",
            (
                Param("matrix", "matrix", "gains from each input channel to each output", None),
                Param("to", "choice", "shorthand", None, choices=REMIX_SHORTHANDS),
                Param(
                    "to_channels",
                    "int",
                    "output channel count, mixed as SoX's -c: fewer outputs average inputs "
                    "k, k+N, k+2N... into output k (mono: the mean); more repeat input k mod C",
                    None,
                    1,
                    MAX_CHANNELS,
                ),
            ),
            one_of=(("matrix", "to", "to_channels"),),
        ),
        StepSpec("polarity", "invert the polarity of every channel", ()),
        StepSpec(
            "dc_block",
            "one-pole DC blocker y[n] = x[n] - x[n-1] + R y[n-1], R = exp(-2 pi cutoff/fs)",
            (_freq("cutoff_hz", "-3 dB corner", 10.0),),
        ),
        StepSpec(
            "resample",
            "band-limited resampling (soxr on CPU, a polyphase sinc on other devices); later "
            "steps are designed at the new rate",
            (
                Param("rate_hz", "int", "output sample rate", REQUIRED, 1000, 768000, unit="Hz"),
                Param("quality", "choice", "soxr quality", "high", choices=RESAMPLE_QUALITY),
            ),
        ),
        StepSpec(
            "convolve",
            "convolution with an impulse-response file (reverb, cabinet, room), partitioned FFT",
            (
                Param("ir_file", "path", "impulse response audio file", REQUIRED),
                Param("mix", "number", "wet share (0 dry, 1 wet)", 1.0, 0, 1),
                Param("normalize_ir", "bool", "scale the IR to unit energy", True),
            ),
        ),
        StepSpec(
            "reverb",
            "algorithmic reverb (Freeverb topology, pedalboard/JUCE parameter meanings)",
            (
                Param("room_size", "number", "room size", 0.5, 0, 1),
                Param("damping", "number", "high-frequency damping", 0.5, 0, 1),
                Param("wet", "number", "wet level", 0.33, 0, 1),
                Param("dry", "number", "dry level", 0.4, 0, 1),
                Param("width", "number", "stereo width", 1.0, 0, 1),
            ),
        ),
    ]
}

#: Step types whose classes also run on numpy arrays (the torch-free CPU path of
#: ``fxcli process``: compiled kernels, no torch import). Today every type; a new
#: type joins when its class runs on numpy arrays, and until then a chain holding it
#: runs on the torch engine (same results: the two paths are tested equal per type,
#: bit for bit except ``fir`` and ``convolve``, whose FFTs come from numpy on one
#: path and torch on the other: equal to float64 rounding).
NUMPY_STEP_TYPES = frozenset(
    {
        "highpass",
        "lowpass",
        "bandpass",
        "bandstop",
        "peaking",
        "lowshelf",
        "highshelf",
        "notch",
        "allpass",
        "dc_block",
        "gain",
        "polarity",
        "normalize",
        "loudness",
        "compressor",
        "limiter",
        "expander",
        "gate",
        "remix",
        "resample",
        "trim",
        "pad",
        "fade",
        "delay",
        "reverb",
        "fir",
        "convolve",
    }
)

DITHER = ("none", "tpdf")  # default: tpdf for PCM of 16 bits or fewer, else none
TOP_LEVEL_KEYS = ("version", "description", "output", "chain")
OUTPUT_KEYS = ("subtype", "dither")


def check(step_type: str, key: str, value: Any) -> Any:
    """Check one argument of a step against the spec (the one source of limits).

    >>> check("compressor", "ratio", 4)
    4.0
    >>> check("compressor", "attack_ms", 0)
    Traceback (most recent call last):
    ...
    fxcli.errors.ParameterError: attack_ms: got 0; allowed: a number > 0 and <= 1000 ms
    """
    return STEPS[step_type].param_map[key].check(value)


# --------------------------------------------------------------------------- values


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(p: Param, v: Any) -> Any:
    def bad(why: str) -> ParameterError:
        return ParameterError(p.name, why, p.allowed())

    def check_range(x: float) -> None:
        if not math.isfinite(x):
            raise bad(f"got {x!r}")
        if p.minimum is not None and (x <= p.minimum if p.exclusive_minimum else x < p.minimum):
            raise bad(f"got {x:g}")
        if p.maximum is not None and (x >= p.maximum if p.exclusive_maximum else x > p.maximum):
            raise bad(f"got {x:g}")

    if p.kind == "number":
        if not _is_number(v):
            raise bad(f"got {v!r}")
        check_range(float(v))
        return float(v)
    if p.kind == "int":
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool):
            raise bad(f"got {v!r}")
        check_range(v)
        return v
    if p.kind == "bool":
        if not isinstance(v, bool):
            raise bad(f"got {v!r}")
        return v
    if p.kind == "matrix":
        ok = (
            isinstance(v, list)
            and 0 < len(v) <= MAX_CHANNELS
            and all(isinstance(r, list) and r for r in v)
            and len({len(r) for r in v}) == 1
            and len(v[0]) <= MAX_CHANNELS
            and all(_is_number(x) and math.isfinite(x) for r in v for x in r)
        )
        if not ok:
            raise bad("got " + (repr(v) if len(repr(v)) < 60 else repr(v)[:57] + "..."))
        return [[float(x) for x in r] for r in v]
    if p.kind == "choice":
        if v not in p.choices:
            raise bad(f"got {v!r}")
        return v
    if p.kind == "freq_or_band":
        if _is_number(v):
            if not (math.isfinite(v) and v > 0):
                raise bad(f"got {v!r}")
            return float(v)
        if (
            isinstance(v, list)
            and len(v) == 2
            and all(_is_number(x) and math.isfinite(x) and x > 0 for x in v)
        ):
            return [float(x) for x in v]
        raise bad(f"got {v!r}")
    if p.kind == "numbers":
        if not isinstance(v, list) or not v or not all(_is_number(x) for x in v):
            raise bad("got " + (repr(v) if len(repr(v)) < 60 else repr(v)[:57] + "..."))
        if len(v) > MAX_FIR_TAPS:
            raise bad(f"got {len(v)} values (at most {MAX_FIR_TAPS})")
        if not all(math.isfinite(x) for x in v):
            raise bad("got a non-finite value")
        return [float(x) for x in v]
    if p.kind == "path":
        if not isinstance(v, str) or not v:
            raise bad(f"got {v!r}")
        return v
    if p.kind == "window":
        if isinstance(v, str) and v:
            return v
        if (
            isinstance(v, list)
            and v
            and isinstance(v[0], str)
            and all(_is_number(x) for x in v[1:])
        ):
            return v
        raise bad(f"got {v!r}")
    raise AssertionError(p.kind)  # pragma: no cover
