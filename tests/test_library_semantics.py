"""The library does what was written, or refuses loudly (issue 14).

Each test cites the misreading it guards, found with TorchFX-style code: TorchFX
names take TorchFX's argument order or refuse; parameters changed after
construction are used; analysis steps work when called directly; invalid values
raise with ``name: got X; allowed: Y``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal
from torch import nn

import fxcli as fx
from fxcli.effect import Compressor, Delay, Gain, Loudness, Normalize, Polarity
from fxcli.errors import FxcliError, ParameterError
from fxcli.filter import (
    Bandpass,
    DesignableFIR,
    HiButterworth,
    HiShelving,
    LoButterworth,
    LoChebyshev1,
    Peaking,
)

FS = 44100


def _x(channels: int = 2, n: int = 8192, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.standard_normal((channels, n)) * 0.1)


def test_designable_fir_takes_torchfx_order() -> None:
    """``DesignableFIR(1000, 101, 44100)`` became 1000 taps at 101 Hz."""
    f = DesignableFIR(1000, 101, FS)
    np.testing.assert_allclose(f.taps.numpy(), signal.firwin(101, 1000, fs=FS), atol=0)
    hp = DesignableFIR(1000, 101, FS, pass_zero=False)
    np.testing.assert_allclose(
        hp.taps.numpy(), signal.firwin(101, 1000, fs=FS, pass_zero=False), atol=0
    )


def test_torchfx_positional_biquads_refuse_instead_of_misreading() -> None:
    """``HiShelving(1000, 0.707, 2.0)`` became gain 0.707 dB with q 2 (TorchFX: q, linear gain)."""
    with pytest.raises(TypeError):
        HiShelving(1000, 0.707, 2.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Peaking(1000, 2.0, 1.0)  # type: ignore[misc]
    sh = HiShelving(1000, gain_db=6.0, q=0.707, fs=FS)
    assert sh.gain_db == 6.0 and sh.q == 0.707


def test_fixed_design_third_positional_is_refused_not_dropped() -> None:
    """``LoChebyshev1(1000, 4, 0.1)`` kept 0.5 dB ripple silently."""
    with pytest.raises(TypeError):
        LoChebyshev1(1000, 4, 0.1)  # type: ignore[misc]
    f = LoChebyshev1(1000, 4, ripple_db=0.1, fs=FS)
    ref = signal.cheby1(4, 0.1, 1000, fs=FS, output="sos")
    np.testing.assert_allclose(f.sos.numpy(), ref, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="always chebyshev1"):
        LoChebyshev1(1000, 4, design="elliptic", fs=FS)


def test_defaults_that_differ_from_torchfx_are_documented() -> None:
    for cls in (HiButterworth, LoButterworth):
        assert "TorchFX's is 5" in (cls.__doc__ or "")
    assert "order 4, ripple 0.1" in (fx.filter.HiChebyshev1.__doc__ or "")


def test_delay_positional_means_samples_as_in_torchfx() -> None:
    """``Delay(4410)`` meant 4410 ms (TorchFX: samples)."""
    d = Delay(4410, fs=FS)
    assert d.delay_frames == 4410 and d.time_ms == pytest.approx(100.0)
    assert Delay(time_ms=100.0, fs=FS).delay_frames == 4410
    with pytest.raises(ParameterError, match="delay_samples or time_ms, not both"):
        Delay(10, time_ms=5.0, fs=FS)
    with pytest.raises(ParameterError, match="delay_samples: got 0"):
        Delay(0, fs=FS)


def test_filter_without_fs_follows_each_signal_rate() -> None:
    """A filter built without fs stayed designed for the first wave's rate."""
    x = np.random.default_rng(1).standard_normal((1, 4000)) * 0.1
    f = LoButterworth(1000, 4)
    for fs in (44100, 48000, 22050):
        y = (fx.Wave(x, fs) | f).ys.numpy()
        ref = signal.sosfilt(signal.butter(4, 1000, fs=fs, output="sos"), x)
        np.testing.assert_allclose(y, ref, atol=1e-9)


def test_changed_parameters_redesign_before_the_next_call() -> None:
    """``f.cutoff = ...`` kept the old coefficients while repr showed the new value."""
    x = _x()
    f = LoButterworth(1000, 2, fs=FS)
    f(x)
    f.cutoff = 3000.0
    f.order = 4
    ref = signal.sosfilt(signal.butter(4, 3000, fs=FS, output="sos"), x.numpy())
    np.testing.assert_allclose(f(x).numpy(), ref, atol=1e-12)
    assert "cutoff=3000" in repr(f)
    fir = DesignableFIR(1000, 31, FS)
    fir.cutoff = 5000
    np.testing.assert_allclose(
        fir(x).numpy(), signal.lfilter(signal.firwin(31, 5000, fs=FS), 1, x.numpy()), atol=1e-12
    )


def test_analysis_steps_work_when_called_and_in_sequential() -> None:
    """``Normalize`` and ``Loudness`` raised inside ``nn.Sequential`` or when called."""
    x = _x()
    y = Normalize(0.5)(x)
    assert float(y.abs().max()) == pytest.approx(0.5, rel=1e-12)
    seq = nn.Sequential(HiButterworth(100, fs=FS), Normalize(peak_db=-6.0))
    assert float(seq(x).abs().max()) == pytest.approx(10 ** (-6 / 20), rel=1e-12)
    from fxcli.dsp import loudness as L

    out = Loudness(target_lufs=-20.0, fs=FS)(_x(2, FS * 3))
    state = L.meter_update(out, L.meter_init(2, FS))
    assert L.integrated_lufs(state) == pytest.approx(-20.0, abs=0.01)
    with pytest.raises(RuntimeError, match="whole signal"):
        Normalize(0.5).process(x, None)


def test_streaming_needs_the_state_and_says_so() -> None:
    """Calling a filter chunk by chunk restarts from zero state (0.096 error at the
    joins); the forward docstring says how to stream, and streaming with the state
    equals one call."""
    assert "init_state" in (fx.steps.Step.forward.__doc__ or "")
    x = _x()
    f = HiButterworth(500, 4, fs=FS)
    st = f.init_state((2,), "cpu")
    parts = []
    for chunk in torch.split(x, 1000, dim=-1):
        y, st = f(chunk, st)
        parts.append(y)
    assert torch.equal(torch.cat(parts, dim=-1), f(x))


def test_invalid_values_raise_with_one_format() -> None:
    """``Bandpass(order=0)`` and ``Gain(nan)`` were accepted."""
    with pytest.raises(ParameterError, match=r"order: got 0; allowed: an integer >= 1"):
        Bandpass(100, 1000, order=0, fs=FS)
    with pytest.raises(ParameterError, match="gain: got nan"):
        Gain(float("nan"))
    with pytest.raises(ParameterError, match="gain_db: got 100; allowed"):
        Gain(gain_db=100)
    with pytest.raises(ParameterError, match=r"attack_ms: got 0; allowed: a number > 0"):
        Compressor(attack_ms=0, fs=FS)
    assert issubclass(ParameterError, FxcliError) and issubclass(ParameterError, ValueError)


def test_gain_units_are_explicit() -> None:
    """``Gain(-3)`` silently meant a linear factor of -3 while presets mean dB."""
    with pytest.raises(ParameterError, match=r"Gain\(gain_db=-3\)"):
        Gain(-3)
    assert Gain(0.5).gain == 0.5
    assert Gain(-6, gain_type="db").gain == pytest.approx(10 ** (-6 / 20))
    assert Gain(0.25, gain_type="power").gain == pytest.approx(0.5)
    assert Gain(gain_db=-6).gain == pytest.approx(10 ** (-6 / 20))
    assert Polarity().gain == -1.0
    with pytest.raises(ValueError, match="once"):
        Gain(0.5, gain_db=-6)


def test_late_binding_is_one_mechanism() -> None:
    """Every effect without fs is the class itself, unbound, with its real signature;
    a Wave binds it; calling it unbound names what is missing."""
    import inspect

    c = Compressor(threshold_db=-20)
    assert type(c) is Compressor and not c.bound
    assert "threshold_db" in str(inspect.signature(Compressor))
    with pytest.raises(ValueError, match="Compressor has no sample rate"):
        c(_x())
    y = (fx.Wave(_x().numpy(), FS) | c).ys
    assert y.shape == (2, 8192)
    from fxcli.effect import Remix

    r = Remix(to="mono")
    assert (fx.Wave(_x().numpy(), FS) | r).ys.shape[0] == 1


def test_log_mel_gradient_is_exact_with_ref_max() -> None:
    """The log-mel layer's gradient was 21% off with ``ref="max"`` (detached maximum)."""
    from fxcli.features import power_to_db

    s = torch.rand(3, 8, dtype=torch.float64) + 0.1
    s.requires_grad_(True)
    torch.autograd.gradcheck(lambda t: power_to_db(t, ref="max", top_db=None), (s,))


def test_every_public_class_states_devices_and_autograd() -> None:
    """torchaudio's habit: Delay, Convolve and Reverb detached silently, undocumented."""
    import fxcli.effect as E
    import fxcli.filter as F

    missing = [
        f"{mod.__name__}.{n}"
        for mod in (F, E)
        for n in mod.__all__
        if not all(w in (getattr(mod, n).__doc__ or "") for w in ("Devices:", "Autograd:"))
    ]
    assert missing == []


@pytest.mark.parametrize("name", ["Limiter", "Resample", "Reverb", "Delay"])
def test_steps_without_gradients_refuse_a_tensor_that_needs_them(name: str) -> None:
    import fxcli.effect as E

    kwargs = {"Resample": {"rate_hz": 48000}, "Delay": {"delay_samples": 10}}.get(name, {})
    step = getattr(E, name)(**kwargs, fs=FS)
    x = _x().requires_grad_(True)
    with pytest.raises(RuntimeError, match="does not propagate gradients"):
        step(x)
    with torch.no_grad():
        assert step(x).shape[0] == 2


def test_every_public_class_has_a_real_signature() -> None:
    """Most effect classes showed ``(*args, **kwargs)`` to IDEs and type checkers."""
    import inspect

    import fxcli.effect as E
    import fxcli.filter as F

    vague = [
        f"{n}{inspect.signature(getattr(mod, n))}"
        for mod in (F, E)
        for n in mod.__all__
        if any(
            p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            for p in inspect.signature(getattr(mod, n)).parameters.values()
        )
    ]
    assert vague == []


@pytest.mark.parametrize(
    "argv",
    [
        ["presets"],
        ["presets", "show", "voice"],
        ["presets", "validate", "voice", "mastering"],
        ["presets", "schema"],
        ["--help"],
    ],
)
def test_presets_commands_do_not_import_torch(argv: list[str]) -> None:
    """``fxcli presets`` answers without loading torch (or numpy, numba)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        f"sys.argv = ['fxcli', *{argv!r}]\n"
        "from fxcli.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print('LOADED', [m for m in ('torch', 'numpy', 'numba') if m in sys.modules])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "LOADED []" in r.stdout, r.stdout[-500:] + r.stderr[-500:]


def test_wave_pipe_refuses_to_detach_silently() -> None:
    """Gradients flow through the pipe; a step that cannot pass them raises."""
    from fxcli.effect import Limiter

    x = _x().requires_grad_(True)
    y = (fx.Wave(x, FS) | HiButterworth(100)).ys
    y.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    with pytest.raises(RuntimeError, match="Limiter does not propagate gradients"):
        _ = (fx.Wave(_x().requires_grad_(True), FS) | Limiter()).ys
    with torch.no_grad():
        assert (fx.Wave(_x().requires_grad_(True), FS) | Limiter()).ys.shape == (2, 8192)
