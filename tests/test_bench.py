"""`fxcli bench` through Typer's runner, on tiny sweeps. No test asserts a timing."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import fxcli.measure.benchmark as B
from fxcli.cli.app import app
from tests.conftest import ROOT

runner = CliRunner()

TINY = ["--durations", "0.1", "--channels", "1,2", "--reps", "2"]


def bench(*args: str):
    return runner.invoke(app, ["bench", *args])


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_csv_rows_and_columns(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    r = bench(*TINY, "--backends", "cpu,scipy", "--output", str(out))
    assert r.exit_code == 0, r.output
    cols, rows = read_csv(out)
    assert set(B.COLUMNS) <= set(cols)
    for required in [
        "chain",
        "backend",
        "device_name",
        "duration_s",
        "channels",
        "sample_rate",
        "samples",
        "reps",
        "median_s",
        "min_s",
        "max_s",
        "transfer_s",
        "msamples_per_s",
        "realtime_factor",
        "speedup_vs_scipy",
        "max_abs_error",
        "check",
        "torch_version",
        "fxcli_version",
    ]:
        assert required in cols
    # one row per (chain, backend, duration, channels)
    assert sorted((x["backend"], x["channels"]) for x in rows) == [
        ("cpu", "1"),
        ("cpu", "2"),
        ("scipy", "1"),
        ("scipy", "2"),
    ]
    for x in rows:
        assert x["chain"] == "iir"
        assert float(x["duration_s"]) == 0.1 and x["sample_rate"] == "44100"
        assert int(x["samples"]) == int(x["channels"]) * 4410
        assert int(x["reps"]) == 2
        assert float(x["min_s"]) <= float(x["median_s"]) <= float(x["max_s"])
        assert float(x["transfer_s"]) == 0.0  # CPU backends move nothing
        assert float(x["msamples_per_s"]) > 0 and float(x["realtime_factor"]) > 0
        assert x["check"] == "ok" and float(x["max_abs_error"]) <= B.ERROR_THRESHOLD
        assert x["torch_version"] == torch.__version__
        assert x["fxcli_version"] == B.FXCLI_VERSION
        if x["backend"] == "scipy":
            assert float(x["speedup_vs_scipy"]) == 1.0
    assert "MISMATCH" not in r.stdout and "backend" in r.stdout  # the table


def test_default_backends_skip_absent_ones_with_a_note(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    r = bench(
        "--durations",
        "0.05",
        "--channels",
        "1",
        "--reps",
        "1",
        "--backends",
        "cpu,cuda,scipy,torchaudio,torchfx",
        "--output",
        str(out),
    )
    assert r.exit_code == 0, r.output
    ran = {x["backend"] for x in read_csv(out)[1]}
    assert {"cpu", "scipy"} <= ran
    if not torch.cuda.is_available():
        assert "cuda" not in ran and "note: cuda skipped" in r.stderr
    for peer in ("torchaudio", "torchfx"):
        if importlib.util.find_spec(peer) is None:
            assert peer not in ran and f"note: {peer} skipped" in r.stderr


def test_json_lines_without_scipy_leave_speedup_blank(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    r = bench(*TINY, "--backends", "cpu", "--json", "--output", str(out))
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 2
    for row in lines:
        assert list(row) == B.COLUMNS
        assert row["backend"] == "cpu" and row["speedup_vs_scipy"] is None
    assert [x["speedup_vs_scipy"] for x in read_csv(out)[1]] == ["", ""]


def test_wrong_output_is_flagged_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = B.RUNNER_FACTORIES["cpu"]

    def broken(steps, configs, fs, channels):
        run, name = real(steps, configs, fs, channels)

        def run_wrong(x):
            y, kernel_s, transfer_s = run(x)
            return y + 1e-3, kernel_s, transfer_s

        return run_wrong, name

    monkeypatch.setitem(B.RUNNER_FACTORIES, "cpu", broken)
    out = tmp_path / "r.csv"
    r = bench(*TINY, "--backends", "cpu,scipy", "--output", str(out))
    assert r.exit_code == 1, r.output
    rows = read_csv(out)[1]
    for x in rows:
        if x["backend"] == "cpu":
            assert x["check"] == "MISMATCH"
            assert float(x["max_abs_error"]) == pytest.approx(1e-3, rel=1e-2)
            assert float(x["median_s"]) > 0  # still timed, but never without the flag
        else:
            assert x["check"] == "ok"
    assert "MISMATCH" in r.stdout  # in the table
    assert "MISMATCH" in r.stderr and "cpu" in r.stderr.splitlines()[-1]


def test_nan_output_is_a_mismatch() -> None:
    ref = np.zeros((2, 10))
    y = np.zeros((2, 10), dtype=np.float32)
    assert B.max_abs_error(y, ref) == 0.0
    y[1, 3] = np.nan
    assert B.max_abs_error(y, ref) == float("inf")
    assert B.max_abs_error(np.zeros((2, 9)), ref) == float("inf")


def test_max_seconds_caps_the_reps(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    r = bench(
        "--durations",
        "0.1",
        "--channels",
        "1,2",
        "--reps",
        "50",
        "--max-seconds",
        "0.000001",
        "--backends",
        "cpu,scipy",
        "--output",
        str(out),
    )
    assert r.exit_code == 0, r.output
    rows = read_csv(out)[1]
    assert len(rows) == 4
    for x in rows:
        assert 1 <= int(x["reps"]) < 50


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")
def test_plot_file(tmp_path: Path) -> None:
    png = tmp_path / "r.png"
    r = bench(
        *TINY, "--backends", "cpu,scipy", "--output", str(tmp_path / "r.csv"), "--plot", str(png)
    )
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_fails_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    out = tmp_path / "r.csv"
    r = bench(*TINY, "--output", str(out), "--plot", str(tmp_path / "r.png"))
    assert r.exit_code == 2
    assert r.stderr.strip() == "error: --plot needs matplotlib: pip install 'fxcli[plot]'"
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--durations", "0"],
        ["--durations", "-1"],
        ["--durations", "abc"],
        ["--durations", "5,,60"],
        ["--channels", "0"],
        ["--channels", "1.5"],
        ["--backends", "gpu"],
        ["--reps", "0"],
        ["--warmup", "-1"],
        ["--max-seconds", "0"],
        ["--sample-rate", "0"],
        ["--chain", "no_such_chain"],
        ["--chain", "api", "--sample-rate", "8000"],  # 5 kHz lowpass above Nyquist
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    r = bench(*args, "--output", str(out))
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert not out.exists()


def test_unwritable_output_exits_2(tmp_path: Path) -> None:
    r = bench(*TINY, "--output", str(tmp_path / "missing" / "r.csv"))
    assert r.exit_code == 2 and r.stderr.startswith("error: --output")


def test_api_chain_defaults_to_8_channels_x_120_s(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = {}

    def fake_run_bench(chain, durations, channels, backends, **kw):
        seen.update(chain=chain.name, durations=durations, channels=channels)
        return []

    monkeypatch.setattr(B, "run_bench", fake_run_bench)
    r = bench("--chain", "api", "--output", str(tmp_path / "a.csv"))
    assert r.exit_code == 0, r.output
    assert seen == {"chain": "api", "durations": [120.0], "channels": [8]}
    r = bench("--chain", "api", "--durations", "1", "--output", str(tmp_path / "b.csv"))
    assert seen["durations"] == [1.0] and seen["channels"] == [8]
    r = bench("--output", str(tmp_path / "c.csv"))
    assert seen == {"chain": "iir", "durations": [5.0, 60.0, 600.0], "channels": [1, 8]}


@pytest.mark.parametrize("chain", ["mastering", "dataset", "presets/voice.yaml"])
def test_effect_presets_are_timed_unchecked(tmp_path: Path, chain: str) -> None:
    """issue 16: presets with effects (dynamics, loudness, resampling, remix) have no
    SciPy reference: they were refused (exit 2, also the voice example of --help);
    now fxcli's backends time them and the check column says so."""
    out = tmp_path / "m.csv"
    r = bench("--chain", str(ROOT / chain) if "/" in chain else chain, "--durations", "0.45",
              "--channels", "1,2", "--reps", "1", "--backends", "cpu,scipy",
              "--output", str(out))  # fmt: skip
    assert r.exit_code == 0, r.output
    _, rows = read_csv(out)
    assert {(row["backend"], row["check"]) for row in rows} == {("cpu", "unchecked")}
    assert [row["channels"] for row in rows] == ["1", "2"]
    assert all(row["max_abs_error"] == "" and float(row["median_s"]) > 0 for row in rows)
    assert "scipy skipped: the chain has effects" in r.output


@pytest.mark.parametrize("chain", ["fir", "api", "iir_chain", "filters"])
def test_other_chains_and_presets_check_ok(chain: str, tmp_path: Path) -> None:
    if chain == "filters":  # a preset file mixing every filter kind with gain and normalize
        chain = str(tmp_path / "filters.yaml")
        Path(chain).write_text(
            "version: 1\nchain:\n  - {type: highpass, cutoff_hz: 40, order: 4}\n"
            "  - {type: peaking, freq_hz: 300, gain_db: -2, q: 1}\n"
            "  - {type: dc_block}\n  - {type: fir, taps: 33, cutoff_hz: 8000}\n"
            "  - {type: gain, gain_db: -1}\n  - {type: normalize, peak_db: -3}\n"
        )
    out = tmp_path / "r.csv"
    r = bench(
        "--chain",
        chain,
        "--durations",
        "0.05",
        "--channels",
        "2",
        "--reps",
        "1",
        "--backends",
        "cpu,scipy",
        "--output",
        str(out),
    )
    assert r.exit_code == 0, r.output
    rows = read_csv(out)[1]
    assert {x["check"] for x in rows} == {"ok"} and len(rows) == 2


def test_preset_path_chain(tmp_path: Path, simple_preset: Path) -> None:
    out = tmp_path / "r.csv"
    r = bench(
        "--chain",
        str(simple_preset),
        "--durations",
        "0.05",
        "--channels",
        "1",
        "--reps",
        "1",
        "--backends",
        "cpu,scipy",
        "--output",
        str(out),
    )
    assert r.exit_code == 0, r.output
    assert {x["chain"] for x in read_csv(out)[1]} == {"simple"}


def test_make_noise_is_normalized_float32() -> None:
    x = B.make_noise(3, 1000, seed=1)
    assert x.shape == (3, 1000) and x.dtype == np.float32
    np.testing.assert_allclose(np.abs(x).max(axis=1), 1.0)
