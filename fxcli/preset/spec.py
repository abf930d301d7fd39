"""The preset step vocabulary: every step type, its keys, defaults and limits.

This table is the single source of truth for validation messages, the JSON
Schema shipped for editors (:func:`fxcli.preset.schema.json_schema`) and the
CLI's ``presets`` help. It imports neither torch nor scipy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REQUIRED: Any = object()

IIR_DESIGNS = ("butterworth", "chebyshev1", "chebyshev2", "elliptic", "bessel", "linkwitz_riley")
FIR_PASS = ("lowpass", "highpass", "bandpass", "bandstop")
MAX_IIR_ORDER = 32
MAX_FIR_TAPS = 65536
MAX_COEFFICIENTS_FILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Param:
    """One key of a step.

    ``kind`` is one of ``number`` (int or float), ``int``, ``choice``, ``freq_or_band``
    (a number or ``[low, high]``), ``numbers`` (a non-empty list of numbers),
    ``path`` (a file path relative to the preset) or ``window`` (a SciPy window
    name or ``[name, parameter...]``).
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
            "scale so the peak of the chain's output up to here reaches peak_db (measuring pass)",
            (Param("peak_db", "number", "target sample peak", -1.0, -120, 0, unit="dBFS"),),
            needs_analysis=True,
        ),
    ]
}

OUTPUT_SUBTYPES = ("same", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8", "PCM_S8")
DITHER = ("none", "tpdf")
TOP_LEVEL_KEYS = ("version", "description", "output", "chain")
OUTPUT_KEYS = ("subtype", "dither")
