"""The loudness presets process the bundled examples to their targets (issue #5),
measured by `fxcli analyze` and by an independent BS.1770 meter (pyloudnorm)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from fxcli.cli.app import app
from tests.conftest import ROOT

pyln = pytest.importorskip("pyloudnorm")

EXAMPLES = ROOT / "examples" / "audio"
# preset -> (integrated LUFS target, tolerance LU, true-peak ceiling dBTP)
TARGETS = {
    "broadcast": (-23.0, 0.1, -1.0),
    "podcast": (-16.0, 0.15, -1.5),
    "voice": (-16.0, 0.15, -1.5),
    "mastering": (-14.0, 0.25, -1.0),
}


@pytest.mark.parametrize("preset", sorted(TARGETS))
def test_preset_hits_loudness_and_true_peak_targets(preset: str, tmp_path: Path) -> None:
    """Targets reached, ceilings kept, and the report's warnings empty. The synthetic
    voice is so peaky that -16 and -14 LUFS under the careful true-peak limiter need
    35-95 dB of gain into it: the aim through the limiter takes up to 12 tries (with
    6 it stopped 0.2-0.44 LU short once the careful interpolator came, issue 17)."""
    target, tol, ceiling = TARGETS[preset]
    out = tmp_path / preset
    runner = CliRunner()
    r = runner.invoke(app, ["process", str(EXAMPLES), str(out), "-p", preset, "--json"])
    assert r.exit_code == 0, r.output
    reports = {Path(rec["input"]).name: rec for rec in map(json.loads, r.stdout.splitlines())}
    files = sorted(p for p in out.rglob("*") if p.suffix in (".wav", ".flac"))
    assert len(files) == 2
    r = runner.invoke(app, ["analyze", *map(str, files), "--json"])
    assert r.exit_code == 0, r.output
    for line in r.stdout.splitlines():
        rec = json.loads(line)
        name = Path(rec["input"]).name
        assert rec["true_peak_dbtp"] <= ceiling, rec
        assert abs(rec["integrated_lufs"] - target) <= tol, rec
        assert not reports[name]["warnings"], reports[name]
    for f in files:
        y, fs = sf.read(f, dtype="float64")
        independent = pyln.Meter(fs).integrated_loudness(y)
        assert abs(independent - target) <= tol + 0.1, (f, independent)


def test_dataset_preset_is_16k_mono_16_bit(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["process", str(EXAMPLES), str(tmp_path), "-p", "dataset", "-q"])
    assert r.exit_code == 0, r.output
    for f in (tmp_path / "music_stereo.wav", tmp_path / "voice" / "voice_mono.flac"):
        info = sf.info(str(f))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        y, _ = sf.read(f)
        assert abs(20 * np.log10(np.abs(y).max()) + 1.0) < 0.05  # peak -1 dBFS (+dither)


def test_bundled_preset_index_matches_the_presets() -> None:
    """`fxcli presets` lists the bundled presets from fxcli/presets/index.json (no YAML
    parsing at start-up, issue 15); it must hold exactly their descriptions. After
    adding or editing a bundled preset, regenerate it:
    python -c "import json; from fxcli.preset.loader import *; print(json.dumps({n:
    load_preset(str(BUNDLED_DIR / f'{n}.yaml')).description for n in bundled_names()},
    indent=1, sort_keys=True))" > fxcli/presets/index.json"""
    from fxcli.preset.loader import BUNDLED_DIR, bundled_names, load_preset

    index = json.loads((BUNDLED_DIR / "index.json").read_text(encoding="utf-8"))
    assert index == {
        n: load_preset(str(BUNDLED_DIR / f"{n}.yaml")).description for n in bundled_names()
    }
    r = CliRunner().invoke(app, ["presets"])
    assert r.exit_code == 0
    assert [line.split()[0] for line in r.stdout.splitlines()] == bundled_names()


# ------------------------------------------------------------------ long files
def _long_signals(seconds: int) -> dict[str, tuple[np.ndarray, int, str]]:
    """Music and speech of ``seconds`` s from the bundled examples: the music tiled with
    level jumps of -8..+4 dB, the speech tiled at -10..+2 dB with pauses between
    phrases (fixed seed)."""
    rng = np.random.default_rng(1)
    m, fm = sf.read(EXAMPLES / "music_stereo.wav")
    v, fv = sf.read(EXAMPLES / "voice" / "voice_mono.flac")
    music = np.concatenate(
        [m * 10 ** (rng.uniform(-8, 4) / 20) for _ in range(seconds * fm // len(m) + 1)]
    )[: seconds * fm]
    parts: list[np.ndarray] = []
    while sum(map(len, parts)) < seconds * fv:
        parts += [v * 10 ** (rng.uniform(-10, 2) / 20), np.zeros(int(fv * rng.uniform(0.2, 1)))]
    speech = np.concatenate(parts)[: seconds * fv]
    return {"music": (music, fm, "PCM_24"), "speech": (speech, fv, "PCM_16")}


def _ffmpeg_levels(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) by FFmpeg's ``ebur128=peak=true`` summary."""
    r = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = r.stderr[r.stderr.rindex("Summary:") :]
    integrated = float(re.search(r"\bI:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))  # type: ignore[union-attr]
    return integrated, peak


def test_presets_reach_their_targets_on_long_files_by_outside_meters(tmp_path: Path) -> None:
    """Issue 17: the loudness presets reach their targets within 0.1 LU on files of 20 s
    or more, by pyloudnorm and by FFmpeg's ebur128 (where installed), and keep their
    ceilings by an 8x polyphase meter (scipy.signal.resample_poly) and FFmpeg's."""
    from scipy.signal import resample_poly

    src = tmp_path / "in"
    src.mkdir()
    for name, (x, fs, subtype) in _long_signals(25).items():
        sf.write(src / f"{name}.wav", x, fs, subtype=subtype)
    have_ffmpeg = shutil.which("ffmpeg") is not None
    for preset, (target, _, ceiling) in sorted(TARGETS.items()):
        out = tmp_path / preset
        r = CliRunner().invoke(app, ["process", str(src), str(out), "-p", preset, "-q"])
        assert r.exit_code == 0, r.output
        for f in sorted(out.glob("*.wav")):
            y, fs = sf.read(f, dtype="float64")
            where = (preset, f.name)
            assert abs(pyln.Meter(fs).integrated_loudness(y) - target) <= 0.1, where
            tp8 = 20 * np.log10(np.abs(resample_poly(y, 8, 1, axis=0)).max())
            assert tp8 <= ceiling + 0.01, (where, tp8)
            if have_ffmpeg:  # prints one decimal: within 0.1 LU shows as <= 0.1 off
                integrated, peak = _ffmpeg_levels(f)
                assert abs(integrated - target) <= 0.1, (where, integrated)
                assert peak <= ceiling, (where, peak)
    if not have_ffmpeg:
        pytest.skip("ffmpeg not installed: checked by pyloudnorm and the 8x meter only")
