"""Time and channel edits (fade, trim, pad, remix), dc_block, polarity, RMS
normalization, and output dither: exact semantics, chunk invariance with the
frames these steps hold back, and the engine writing the new length/channels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from fxcli.engine.runner import process_array
from fxcli.preset.build import build_chain
from fxcli.preset.loader import PresetError, parse_preset
from fxcli.steps.edit import Fade, Pad, Remix, Trim, fade_curve
from tests.conftest import noise, write_audio

FS = 8000
CHUNKS = [1, 7, 4097, 10**6]


def chain(yaml_steps: str, fs: int = FS, channels: int = 2):
    preset = parse_preset(f"version: 1\nchain:\n{yaml_steps}", "t.yaml")
    return build_chain(preset.steps, fs, channels)


def run(steps, x, chunk=None):
    return process_array(steps, torch.as_tensor(x), chunk=chunk).numpy()


@pytest.mark.parametrize(
    "spec",
    [
        "  - {type: fade, in_s: 0.1, out_s: 0.2, shape: cosine}",
        "  - {type: fade, in_s: 0.3, shape: exp}",
        "  - {type: trim, start_s: 0.05, end_s: 0.1}",
        "  - {type: pad, start_s: 0.01, end_s: 0.02}",
        "  - {type: remix, to: mono}",
        "  - {type: remix, matrix: [[0.5, 0.5], [1, -1], [0, 1]]}",
        "  - {type: dc_block, cutoff_hz: 20}",
        "  - {type: polarity}",
        "  - {type: normalize, rms_db: -20}",
        "  - {type: trim, start_s: 0.01}\n  - {type: fade, out_s: 0.05}\n"
        "  - {type: pad, end_s: 0.01}\n  - {type: highpass, cutoff_hz: 50}",
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunk_invariance(spec: str, dtype: type) -> None:
    steps = chain(spec)
    x = noise(2, 3000, seed=3, dtype=dtype)
    whole = run(steps, x)
    # bit-identical except where vectorized exp/cos of the fade curves round differently
    rtol = 0 if "fade" not in spec else (1e-12 if dtype == np.float64 else 1e-6)
    for chunk in CHUNKS:
        np.testing.assert_allclose(
            run(steps, x, chunk), whole, rtol=rtol, atol=0, err_msg=f"chunk {chunk}"
        )


def test_fade_gains_exact() -> None:
    x = np.ones((1, 1000))
    y = run([Fade(in_s=0.01, out_s=0.02, shape="linear", fs=FS)], x)[0]
    n_in, n_out = 80, 160
    np.testing.assert_allclose(y[:n_in], np.arange(n_in) / n_in)
    np.testing.assert_allclose(y[-n_out:], np.arange(n_out - 1, -1, -1)[::-1][::-1] / n_out)
    assert y[-1] == 0.0 and y[0] == 0.0
    np.testing.assert_array_equal(y[n_in:-n_out], 1.0)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    for shape in ("linear", "exp", "cosine"):
        g = fade_curve(t, shape)
        assert float(g[0]) == 0.0 and abs(float(g[-1]) - 1.0) < 1e-12
        assert bool(torch.all(g[1:] > g[:-1])), shape  # monotonic rise
    # a signal shorter than the fade-out gets the end of the curve
    y = run([Fade(out_s=1.0, fs=FS)], np.ones((1, 10)))[0]
    np.testing.assert_allclose(y, np.arange(9, -1, -1) / 8000)


def test_trim_and_pad_lengths() -> None:
    x = noise(2, 1000, seed=1, dtype=np.float64)
    y = run([Trim(start_s=0.01, end_s=0.02, fs=FS)], x)
    np.testing.assert_array_equal(y, x[:, 80:-160])
    assert run([Trim(start_s=0.1, end_s=0.1, fs=FS)], x).shape == (2, 0)
    y = run([Pad(start_s=0.001, end_s=0.002, fs=FS)], x)
    assert y.shape == (2, 1000 + 8 + 16)
    np.testing.assert_array_equal(y[:, 8:-16], x)
    assert not y[:, :8].any() and not y[:, -16:].any()
    # zero-length input: padding only (the engine never calls process for it)
    empty = torch.zeros((2, 0))
    assert Pad(start_s=0.001, end_s=0.001, fs=FS)(empty).shape == (2, 16)


def test_remix_shorthands_and_errors() -> None:
    x = noise(2, 100, seed=2, dtype=np.float64)
    np.testing.assert_allclose(run(chain("  - {type: remix, to: mono}"), x)[0], x.mean(axis=0))
    np.testing.assert_array_equal(run(chain("  - {type: remix, to: swap}"), x), x[::-1])
    six = noise(6, 50, seed=4, dtype=np.float64)
    y = run(chain("  - {type: remix, to: stereo}", channels=6), six)
    np.testing.assert_allclose(y[0], six[0] + np.sqrt(0.5) * (six[2] + six[4]))
    assert run(chain("  - {type: remix, to: stereo}", channels=1), x[:1]).shape == (2, 100)
    with pytest.raises(PresetError, match=r"step 0 \(remix\).*3 columns.*2 channels"):
        chain("  - {type: remix, matrix: [[1, 0, 1]]}")
    with pytest.raises(PresetError, match=r"step 0 \(remix\).*swap needs 2 input channels"):
        chain("  - {type: remix, to: swap}", channels=3)
    with pytest.raises(PresetError, match=r"key 'matrix'"):
        chain("  - {type: remix, matrix: [[1, 0], [1]]}")
    with pytest.raises(PresetError, match=r"give exactly one of matrix, to"):
        chain("  - {type: remix}")
    assert Remix(to="mono", channels=3).output_channels(3) == 1


def test_dc_block_matches_scipy_and_removes_dc() -> None:
    x = noise(1, 4000, seed=5, dtype=np.float64) + 0.3
    y = run(chain("  - {type: dc_block, cutoff_hz: 20}"), x)
    r = np.exp(-2 * np.pi * 20 / FS)
    np.testing.assert_allclose(y[0], signal.lfilter([1, -1], [1, -r], x[0]), atol=1e-12)
    assert abs(y[0, -1000:].mean()) < 0.01


def test_polarity_and_rms_normalize() -> None:
    x = noise(2, 2000, seed=6, dtype=np.float64)
    np.testing.assert_array_equal(run(chain("  - {type: polarity}"), x), -x)
    y = run(chain("  - {type: normalize, rms_db: -20}"), x)
    assert abs(20 * np.log10(np.sqrt(np.mean(y**2))) + 20) < 1e-9
    with pytest.raises(PresetError, match="exclude each other"):
        chain("  - {type: normalize, rms_db: -20, peak_db: -1}")


def test_engine_writes_new_length_channels_and_dithers_16_bit(tmp_path: Path) -> None:
    """CLI: a chain that trims, pads and downmixes writes the new shape; 16-bit
    output is TPDF-dithered by default (like SoX) and exact with `dither: none`."""
    from typer.testing import CliRunner

    from fxcli.cli.app import app

    src = write_audio(tmp_path / "in" / "a.wav", 0.25 * noise(2, 8000, seed=7), FS, "PCM_16")
    for dither, name in ((None, "auto"), ("none", "none")):
        out_line = f"output: {{dither: {dither}}}\n" if dither else ""
        preset = tmp_path / f"{name}.yaml"
        preset.write_text(
            "version: 1\n" + out_line + "chain:\n"
            "  - {type: trim, start_s: 0.1}\n  - {type: pad, end_s: 0.05}\n"
            "  - {type: remix, to: mono}\n"
        )
        out = tmp_path / f"out-{name}"
        res = CliRunner().invoke(
            app, ["process", str(src), str(out), "--preset", str(preset), "--json"]
        )
        assert res.exit_code == 0, res.output
        rec = json.loads([ln for ln in res.output.splitlines() if ln.startswith("{")][0])
        assert rec["output_channels"] == 1 and rec["output_frames"] == 8000 - 800 + 400
        y, fs = sf.read(out / "a.wav", dtype="float64", always_2d=True)
        assert fs == FS and y.shape == (7600, 1) and sf.info(str(out / "a.wav")).subtype == "PCM_16"
        x, _ = sf.read(src, dtype="float64", always_2d=True)
        exact = np.round(x[800:].mean(axis=1) * 32768) / 32768
        diff = np.abs(y[:7200, 0] - exact) * 32768
        if name == "none":
            np.testing.assert_array_equal(diff, 0)
        else:
            assert 0.2 < diff.mean() < 1.0 and diff.max() <= 2  # TPDF: +-1 LSB triangular


def test_dither_does_not_depend_on_block_sizes(tmp_path: Path) -> None:
    """TPDF dither is drawn in fixed blocks, so the dithered output of a frame depends on
    its position only: 16-bit output with --chunk-seconds 0.3 equals one whole-file chunk.
    Guards the first GPU run's finding (2026-12-04): CUDA's one-chunk output was 2 LSB
    away from the CPU's 10 s chunks, the draws followed the block sizes."""
    from typer.testing import CliRunner

    from fxcli.cli.app import app
    from fxcli.io.audio import Quantizer

    q1, q2 = Quantizer("PCM_16", "tpdf"), Quantizer("PCM_16", "tpdf")
    whole = q1.noise(200_000, 2)
    parts = [q2.noise(n, 2) for n in (1, 65_535, 70_000, 3, 64_461)]
    assert whole is not None and all(p is not None for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), whole)  # type: ignore[arg-type]

    src = write_audio(tmp_path / "in" / "a.wav", 0.25 * noise(2, 100_000, seed=3), 44100, "PCM_16")
    outs = []
    for chunk in ("0.3", "100"):
        out = tmp_path / f"out-{chunk}"
        res = CliRunner().invoke(
            app, ["process", str(src), str(out), "-p", "iir_chain", "--chunk-seconds", chunk]
        )
        assert res.exit_code == 0, res.output
        outs.append(sf.read(out / "a.wav", dtype="int16")[0])
    np.testing.assert_array_equal(outs[0], outs[1])
