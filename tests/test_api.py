"""The library API (issue #6): every code pattern of seed 000 with ``torchfx``
replaced by ``fxcli`` runs and gives the CLI's numbers; module semantics (no hidden
state, explicit streaming, buffers); learnable biquads get gradients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal
from torch import nn

import fxcli as fx
from fxcli.effect import Compressor, Gain, Limiter, Normalize, Remix, Resample
from fxcli.engine.runner import process_array
from fxcli.filter import (
    AllPass,
    DesignableFIR,
    HiButterworth,
    HiChebyshev1,
    HiChebyshev2,
    HiElliptic,
    HiLinkwitzRiley,
    HiShelving,
    LoButterworth,
    LoChebyshev1,
    LoChebyshev2,
    LoElliptic,
    LoLinkwitzRiley,
    LoShelving,
    Notch,
    Peaking,
)
from fxcli.preset.build import build_chain
from fxcli.preset.loader import load_preset
from tests.conftest import write_audio

SAMPLE_RATE = 44100


def create_audio(sample_rate: int, duration: float, num_channels: int) -> np.ndarray:
    """The seed's test signal: per-channel normalized Gaussian noise, float32."""
    rng = np.random.default_rng(0)
    sig = rng.standard_normal((num_channels, int(sample_rate * duration))).astype(np.float32)
    sig /= np.max(np.abs(sig), axis=1, keepdims=True)
    return sig


@pytest.fixture(scope="module")
def signal8() -> np.ndarray:
    return create_audio(SAMPLE_RATE, 0.5, 8)


def engine_output(preset: str, x: np.ndarray, fs: int = SAMPLE_RATE) -> np.ndarray:
    steps = build_chain(load_preset(preset).steps, fs, x.shape[0])
    return process_array(steps, torch.from_numpy(x)).numpy()


def test_seed_api_patterns_equal_the_cli_chain(signal8: np.ndarray) -> None:
    """API patterns 1-3 of seed 000 (custom module, Sequential, pipe) on the api chain."""
    wave = fx.Wave(signal8, SAMPLE_RATE)

    class FilterChain(nn.Module):
        def __init__(self, fs: int) -> None:
            super().__init__()
            self.f1 = HiChebyshev1(20, fs=fs)
            self.f2 = HiChebyshev1(60, fs=fs)
            self.f3 = HiChebyshev1(65, fs=fs)
            self.f4 = LoButterworth(5000, fs=fs)
            self.f5 = LoButterworth(4900, fs=fs)
            self.f6 = LoButterworth(4850, fs=fs)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for f in (self.f1, self.f2, self.f3, self.f4, self.f5, self.f6):
                x = f(x)
            return x

    custom = FilterChain(wave.fs)(wave.ys)
    sequential = nn.Sequential(
        HiChebyshev1(20, fs=wave.fs),
        HiChebyshev1(60, fs=wave.fs),
        HiChebyshev1(65, fs=wave.fs),
        LoButterworth(5000, fs=wave.fs),
        LoButterworth(4900, fs=wave.fs),
        LoButterworth(4850, fs=wave.fs),
    )(wave.ys)
    piped = (
        wave
        | HiChebyshev1(20)
        | HiChebyshev1(60)
        | HiChebyshev1(65)
        | LoButterworth(5000)
        | LoButterworth(4900)
        | LoButterworth(4850)
    )
    assert isinstance(piped, fx.Wave) and piped.fs == SAMPLE_RATE
    cli = engine_output("api_chain", signal8)
    # the pipe runs the engine's fused cascade: the CLI's numbers exactly
    np.testing.assert_array_equal(piped.ys.numpy(), cli)
    np.testing.assert_allclose(custom.numpy(), cli, atol=1e-6)
    np.testing.assert_array_equal(custom.numpy(), sequential.numpy())
    # and SciPy's (pattern 4 of the seed)
    x = signal8.astype(np.float64)
    for btype, design, fc in [("high", "c", 20), ("high", "c", 60), ("high", "c", 65)] + [
        ("low", "b", f) for f in (5000, 4900, 4850)
    ]:
        if design == "c":
            b, a = signal.cheby1(2, 0.5, fc, btype=btype, fs=SAMPLE_RATE)
        else:
            b, a = signal.butter(2, fc, btype=btype, fs=SAMPLE_RATE)
        x = signal.lfilter(b, a, x)
    np.testing.assert_allclose(piped.ys.numpy(), x, atol=2e-6)


def test_seed_fir_and_iir_benchmark_patterns(signal8: np.ndarray) -> None:
    wave = fx.Wave(signal8, SAMPLE_RATE)
    fchain = nn.Sequential(
        DesignableFIR(num_taps=101, cutoff=1000, fs=SAMPLE_RATE),
        DesignableFIR(num_taps=102, cutoff=5000, fs=SAMPLE_RATE),
        DesignableFIR(num_taps=103, cutoff=1500, fs=SAMPLE_RATE),
        DesignableFIR(num_taps=104, cutoff=1800, fs=SAMPLE_RATE),
        DesignableFIR(num_taps=105, cutoff=1850, fs=SAMPLE_RATE),
    )
    for f in fchain:
        f.compute_coefficients()
    wave.to("cpu")
    fchain.to("cpu")
    y = (wave | fchain).ys
    np.testing.assert_allclose(y.numpy(), engine_output("fir_chain", signal8), atol=1e-6)
    ref = signal8.astype(np.float64)
    for taps, fc in zip((101, 102, 103, 104, 105), (1000, 5000, 1500, 1800, 1850), strict=True):
        ref = signal.lfilter(signal.firwin(taps, fc, fs=SAMPLE_RATE), [1], ref)
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-5)

    iir = nn.Sequential(
        HiButterworth(cutoff=1000, order=2, fs=SAMPLE_RATE),
        LoButterworth(cutoff=5000, order=2, fs=SAMPLE_RATE),
        HiChebyshev1(cutoff=1500, order=2, fs=SAMPLE_RATE),
        LoChebyshev1(cutoff=1800, order=2, fs=SAMPLE_RATE),
    )
    for f in iir:
        f.compute_coefficients()
        f.move_coeff("cpu")
    np.testing.assert_allclose(iir(wave.ys).numpy(), engine_output("iir_chain", signal8), atol=1e-6)


def test_sequential_without_fs_gets_it_from_the_pipe(signal8: np.ndarray) -> None:
    """Seed: ``torch.nn.Sequential(fx.filter.LoButterworth(cutoff=1000, order=4), ...)``
    with no fs; compute_coefficients() before the rate is known is a no-op."""
    pipeline = nn.Sequential(
        fx.filter.LoButterworth(cutoff=1000, order=4),
        fx.filter.HiButterworth(cutoff=100, order=2),
    )
    for module in pipeline:
        if hasattr(module, "compute_coefficients"):
            module.compute_coefficients()
    with pytest.raises(ValueError, match="no sample rate.*pipe a Wave"):
        pipeline(torch.from_numpy(signal8))
    y = (fx.Wave(signal8, SAMPLE_RATE) | pipeline).ys
    sos = np.concatenate(
        [
            signal.butter(4, 1000, fs=SAMPLE_RATE, output="sos"),
            signal.butter(2, 100, "high", fs=SAMPLE_RATE, output="sos"),
        ]
    )
    np.testing.assert_allclose(
        y.numpy(), signal.sosfilt(sos, signal8.astype(np.float64)), atol=1e-6
    )
    assert pipeline[0].fs == SAMPLE_RATE
    # issue 14: a filter built without fs follows the next signal's rate (TorchFX
    # redesigns); it used to stay designed for the first one
    y48 = (fx.Wave(signal8, 48000) | pipeline).ys
    sos48 = np.concatenate(
        [
            signal.butter(4, 1000, fs=48000, output="sos"),
            signal.butter(2, 100, "high", fs=48000, output="sos"),
        ]
    )
    np.testing.assert_allclose(
        y48.numpy(), signal.sosfilt(sos48, signal8.astype(np.float64)), atol=1e-6
    )
    assert pipeline[0].fs == 48000
    fixed = fx.filter.LoButterworth(cutoff=1000, order=4, fs=SAMPLE_RATE)
    with pytest.raises(ValueError, match="built for fs=44100 Hz, the signal is 48000 Hz"):
        _ = fx.Wave(signal8, 48000) | fixed


def test_file_round_trip_keeps_subtype(tmp_path: Path, signal8: np.ndarray) -> None:
    """Seed: ``Wave.from_file(f).to(device) | fchain`` then ``.to("cpu").save(...)``:
    the source subtype (PCM_24 here) is kept, not PCM_16; the numbers equal the CLI's."""
    from typer.testing import CliRunner

    from fxcli.cli.app import app

    src = write_audio(tmp_path / "song1.wav", 0.5 * signal8[:2], SAMPLE_RATE, "PCM_24")
    wave = fx.Wave.from_file(src).to("cpu")
    result = wave | HiButterworth(cutoff=80, order=2) | LoButterworth(cutoff=12000, order=4)
    out = result.to("cpu").save(tmp_path / "processed_song1.wav")
    assert sf.info(str(out)).subtype == "PCM_24"
    preset = tmp_path / "p.yaml"
    preset.write_text(
        "version: 1\nchain:\n  - {type: highpass, cutoff_hz: 80}\n"
        "  - {type: lowpass, cutoff_hz: 12000, order: 4}\n"
    )
    res = CliRunner().invoke(
        app, ["process", str(src), str(tmp_path / "cli"), "-p", str(preset), "-q"]
    )
    assert res.exit_code == 0, res.output
    a, _ = sf.read(out, dtype="int32")
    b, _ = sf.read(tmp_path / "cli" / "song1.wav", dtype="int32")
    np.testing.assert_array_equal(a, b)


def test_every_class_name_exists_with_preset_defaults() -> None:
    fs = 48000
    for cls in (HiButterworth, LoButterworth, HiChebyshev1, LoChebyshev1, HiElliptic, LoElliptic):
        f = cls(1000, fs=fs)
        assert f.order == 2 and f.ripple_db == 0.5 and f.attenuation_db == 40.0
    np.testing.assert_allclose(
        HiChebyshev2(1000, fs=fs).sos.numpy(),
        signal.cheby2(2, 40, 1000, "high", fs=fs, output="sos"),
    )
    np.testing.assert_allclose(
        LoChebyshev2(1000, fs=fs).sos.numpy(), signal.cheby2(2, 40, 1000, fs=fs, output="sos")
    )
    half = signal.butter(2, 500, "high", fs=fs, output="sos")
    np.testing.assert_allclose(
        HiLinkwitzRiley(500, fs=fs).sos.numpy(), np.concatenate([half, half])
    )
    assert LoLinkwitzRiley(500, fs=fs).sos.shape == (2, 6)  # LR4 = Butterworth-2 twice
    for biquad in (
        Peaking(1000, gain_db=3.0, fs=fs),
        HiShelving(8000, gain_db=2.0, fs=fs),
        LoShelving(100, gain_db=2.0, fs=fs),
    ):
        assert biquad.sos.shape == (1, 6)
    assert Notch(50, q=10, fs=fs).sos.shape == AllPass(1000, fs=fs).sos.shape == (1, 6)
    assert isinstance(fx.filter.FIR([0.5, 0.5]), nn.Module)
    assert Gain(gain_db=-6.0).gain == pytest.approx(10 ** (-6 / 20))
    unbound = Compressor(threshold_db=-20)
    assert isinstance(unbound, Compressor) and not unbound.bound
    assert unbound.bind(fs, 2).bound
    assert type(Compressor(threshold_db=-20, fs=fs)).__name__ == "Compressor"


def test_module_semantics_no_hidden_state_and_explicit_streaming() -> None:
    x = torch.from_numpy(create_audio(SAMPLE_RATE, 0.2, 2))
    f = LoChebyshev1(3000, order=4, fs=SAMPLE_RATE)
    y1, y2 = f(x), f(x)
    assert torch.equal(y1, y2)  # calling twice: same output
    state = f.init_state((2,), "cpu")
    parts = []
    for chunk in torch.split(x, 1000, dim=-1):
        y, state = f(chunk, state)
        parts.append(y)
    assert torch.equal(torch.cat(parts, -1), y1)
    assert set(f.state_dict()) == {"sos"} and f.sos.dtype == torch.float64
    learnable = Peaking(1000, gain_db=3.0, fs=SAMPLE_RATE, learnable=True)
    assert learnable.state_dict()["freq_hz"].item() == 1000


def test_pipe_with_effects_resample_and_remix() -> None:
    x = create_audio(48000, 1.0, 2)
    wave = fx.Wave(x, 48000) | Remix(to="mono") | Resample(16000) | HiButterworth(100)
    assert wave.fs == 16000 and wave.ys.shape == (1, 16000)
    w2 = fx.Wave(x, 48000) | Normalize(peak=0.5) | Limiter(ceiling_db=-12.0)
    assert float(w2.ys.abs().max()) <= 10 ** (-12 / 20)


def test_learnable_biquad_gradients_reach_design_parameters() -> None:
    x = torch.from_numpy(create_audio(16000, 0.1, 1)).double()
    eq = Peaking(1000.0, gain_db=3.0, q=1.0, fs=16000, learnable=True)
    y = (fx.Wave(x, 16000) | eq).ys
    y.pow(2).sum().backward()
    for p in (eq.freq_hz, eq.gain_db, eq.q):
        assert p.grad is not None and torch.isfinite(p.grad) and p.grad != 0
    # the learnable path computes the same section as the fixed design
    fixed = Peaking(1000.0, gain_db=3.0, q=1.0, fs=16000)
    torch.testing.assert_close(eq.torch_sos().detach(), fixed.sos, rtol=0, atol=1e-12)


def test_torch_compile_runs_the_modules() -> None:
    """torch.compile works with graph breaks at the kernels (numba on CPU is opaque
    to the compiler); outputs equal eager ones."""
    x = torch.from_numpy(create_audio(SAMPLE_RATE, 0.05, 2))
    f = nn.Sequential(HiButterworth(100, fs=SAMPLE_RATE), LoButterworth(5000, fs=SAMPLE_RATE))
    compiled = torch.compile(f, backend="eager")
    assert torch.equal(compiled(x), f(x))
