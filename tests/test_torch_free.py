"""The torch-free CPU path of ``fxcli process`` (issues 14 and 15).

A chain made only of step types with a numpy implementation
(``fxcli.preset.spec.NUMPY_STEP_TYPES``) runs on the CPU without importing torch
(nor numba or scipy): the step classes derive from the stand-in base of
``fxcli.steps.module`` and filter numpy arrays with the compiled core. Each test runs
the CLI in a fresh interpreter, because the choice of the base class is made once per
process. Guards: one call per file cost ~1 s of ``import torch`` and ~150 MiB
before the audio work of ~50 ms began.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fxcli.preset.spec import NUMPY_STEP_TYPES, STEPS

ROOT = Path(__file__).resolve().parents[1]

# one preset line per numpy step type (parameters chosen so every code path runs)
CHAIN = {
    "highpass": "{type: highpass, cutoff_hz: 120, order: 4}",
    "lowpass": "{type: lowpass, cutoff_hz: 9000, order: 3, design: chebyshev1}",
    "bandpass": "{type: bandpass, low_hz: 200, high_hz: 4000, order: 2, design: elliptic}",
    "bandstop": "{type: bandstop, low_hz: 900, high_hz: 1100, order: 2}",
    "peaking": "{type: peaking, freq_hz: 2500, gain_db: 3, q: 1.2}",
    "lowshelf": "{type: lowshelf, freq_hz: 150, gain_db: -2}",
    "highshelf": "{type: highshelf, freq_hz: 8000, gain_db: 1.5, slope: 1}",
    "notch": "{type: notch, freq_hz: 60, q: 8}",
    "allpass": "{type: allpass, freq_hz: 700, q: 0.9}",
    "dc_block": "{type: dc_block, cutoff_hz: 10}",
    "gain": "{type: gain, gain_db: -4.5}",
    "polarity": "{type: polarity}",
    "normalize": "{type: normalize, peak_db: -1.5}",
    "loudness": "{type: loudness, target_lufs: -20, max_true_peak_db: -2}",
    "compressor": "{type: compressor, threshold_db: -30, ratio: 4, detector: rms, "
    "sidechain_highpass_hz: 100, link_channels: false}",
    "limiter": "{type: limiter, ceiling_db: -6, true_peak: true, lookahead_ms: 3}",
    "expander": "{type: expander, threshold_db: -25, ratio: 3}",
    "gate": "{type: gate, threshold_db: -22}",
    "remix": "{type: remix, matrix: [[0.5, 0.25, 0.25], [0.1, 0.7, 0.2]]}",
    "resample": "{type: resample, rate_hz: 32000}",
    "trim": "{type: trim, start_s: 0.11, end_s: 0.23}",
    "pad": "{type: pad, start_s: 0.05, end_s: 0.17}",
    "fade": "{type: fade, in_s: 0.3, out_s: 0.45, shape: cosine}",
    "delay": "{type: delay, time_ms: 37, feedback: 0.6, mix: 0.4}",
    "reverb": "{type: reverb, room_size: 0.7, width: 0.8}",
    "fir": "{type: fir, cutoff_hz: 3000, taps: 129}",
    "convolve": "{type: convolve, ir_file: ir.wav, mix: 0.7}",
}
#: numpy's FFT vs torch's: equal to float64 rounding, not bit for bit
FFT_TYPES = ("fir", "convolve")

RUN = """
import os, sys
from fxcli.cli.app import main
sys.argv = ["fxcli", *sys.argv[1:]]
def report():
    loaded = [m for m in ("torch", "numba", "scipy") if m in sys.modules]
    print("LOADED", ",".join(loaded) or "-", file=sys.stderr, flush=True)
exit_now = os._exit
def _exit(code):  # the CLI leaves with os._exit once torch is loaded
    report()
    exit_now(code)
os._exit = _exit
try:
    main()
except SystemExit:
    report()
    raise
"""


def _cli(*args: str, engine: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FXCLI_CPU_ENGINE"}
    env["PYTHONPATH"] = str(ROOT)
    if engine is not None:
        env["FXCLI_CPU_ENGINE"] = engine
    return subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env, timeout=300
    )


def _loaded(r: subprocess.CompletedProcess[str]) -> str:
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("LOADED ")]
    assert line, r.stderr
    return line[-1].split(" ", 1)[1]


def _input(tmp: Path, name: str = "in.wav", channels: int = 3, seconds: float = 1.3) -> Path:
    rng = np.random.default_rng(7)
    n = int(44100 * seconds)
    x = rng.standard_normal((n, channels)) * 0.1 + 0.01  # some DC for dc_block
    path = tmp / name
    sf.write(path, x, 44100, subtype="FLOAT")
    return path


def test_every_numpy_step_type_has_a_case_here() -> None:
    assert set(CHAIN) == set(NUMPY_STEP_TYPES)
    assert NUMPY_STEP_TYPES <= set(STEPS)


@pytest.mark.parametrize("step_type", sorted(NUMPY_STEP_TYPES))
def test_numpy_path_equals_torch_path_bit_for_bit(tmp_path: Path, step_type: str) -> None:
    """Each numpy step type, after a highpass (so fusion runs too), streamed in small
    chunks: the torch-free output equals the torch engine's, and torch, numba and
    scipy were never imported on the torch-free path (the torch run goes first and
    leaves the designs in the design cache; a design that is not cached yet imports
    scipy, see fxcli.dsp.design_cache)."""
    src = _input(tmp_path)
    _ir(tmp_path)
    preset = tmp_path / "p.yaml"
    preset.write_text(
        "version: 1\nchain:\n  - {type: highpass, cutoff_hz: 40}\n  - " + CHAIN[step_type] + "\n"
    )
    outs = {}
    for engine in ("torch", "numpy"):
        out = tmp_path / f"{engine}.wav"
        r = _cli(
            "process",
            str(src),
            str(out),
            "-p",
            str(preset),
            "--device",
            "cpu",
            "--chunk-seconds",
            "0.1",
            "--allow-preset-paths",
            "--quiet",
            engine=engine,
        )
        assert r.returncode == 0, r.stderr
        outs[engine] = sf.read(out, dtype="float64")[0]
        if engine == "numpy":
            assert _loaded(r) == "-", f"torch-free path imported {_loaded(r)}"
        else:
            assert "torch" in _loaded(r)
    if step_type in FFT_TYPES:
        np.testing.assert_allclose(outs["numpy"], outs["torch"], rtol=0, atol=1e-6)
    else:
        np.testing.assert_array_equal(outs["numpy"], outs["torch"])


def test_bundled_iir_preset_is_torch_free_and_chunk_invariant(tmp_path: Path) -> None:
    src = _input(tmp_path, channels=2, seconds=2.0)
    whole, tiny = tmp_path / "whole.wav", tmp_path / "tiny.wav"
    for _ in range(2):  # the first run may design (scipy) and cache; the second only reads
        r = _cli(
            "process",
            str(src),
            str(whole),
            "-p",
            "iir_chain",
            "--device",
            "cpu",
            "--quiet",
            "--overwrite",
        )
        assert r.returncode == 0 and _loaded(r) in ("-", "scipy"), r.stderr
    assert _loaded(r) == "-"
    r = _cli(
        "process",
        str(src),
        str(tiny),
        "-p",
        "iir_chain",
        "--device",
        "cpu",
        "--quiet",
        "--chunk-seconds",
        "0.0005",
    )
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(sf.read(whole)[0], sf.read(tiny)[0])


@pytest.mark.parametrize(
    "preset", ["voice", "podcast", "mastering", "broadcast", "dataset", "fir_chain"]
)
def test_bundled_presets_are_torch_free_and_equal_the_torch_engine(
    tmp_path: Path, preset: str
) -> None:
    """The bundled presets (loudness aims through the limiter, compressors, resampling)
    run without torch and write what the torch engine writes, bit for bit."""
    src = _input(tmp_path, channels=2, seconds=3.0)
    outs = {}
    for engine in ("torch", "numpy"):
        out = tmp_path / f"{engine}.wav"
        r = _cli("process", str(src), str(out), "-p", preset, "--device", "cpu", "--quiet",
                 engine=engine)  # fmt: skip
        assert r.returncode == 0, r.stderr
        if engine == "numpy":
            assert "torch" not in _loaded(r), _loaded(r)
        outs[engine] = sf.read(out, dtype="float64")[0]
    if preset == "fir_chain":  # numpy's FFT vs torch's: equal to float64 rounding
        np.testing.assert_allclose(outs["numpy"], outs["torch"], rtol=0, atol=1e-6)
    else:
        np.testing.assert_array_equal(outs["numpy"], outs["torch"])


def _ir(tmp: Path) -> Path:
    """A 2000-frame mono impulse response (a decaying ringing tone)."""
    ir = tmp / "ir.wav"
    t = np.arange(2000)
    sf.write(ir, np.exp(-t / 300.0) * np.cos(t / 7.0) * 0.1, 44100, subtype="FLOAT")
    return ir


def test_convolve_numpy_equals_torch_and_is_chunk_invariant() -> None:
    """issue 14: ``convolve`` was the last step type tied to torch on the CPU. Its
    numpy overlap-save equals the torch one to float64 rounding, per channel IRs
    and shared ones, in chunks of any size (1 frame to more than the FFT block)."""
    import torch

    from fxcli.dsp.reverb import fft_convolve

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9000))
    for c_ir in (1, 3):
        ir = rng.standard_normal((c_ir, 700)) * np.exp(-np.arange(700) / 100.0)
        whole, _ = fft_convolve(x, ir, np.zeros((2, 3, 699)))
        ref = np.stack([[np.convolve(x[b, c], ir[c % c_ir])[:9000] for c in range(3)]
                        for b in range(2)])  # fmt: skip
        np.testing.assert_allclose(whole, ref, rtol=0, atol=1e-9)
        tw, _ = fft_convolve(torch.from_numpy(x), torch.from_numpy(ir),
                             torch.zeros((2, 3, 699), dtype=torch.float64))  # fmt: skip
        np.testing.assert_allclose(whole, tw.numpy(), rtol=0, atol=1e-12)
        for cut in (1, 17, 699, 5000):
            hist, parts, spectra = np.zeros((2, 3, 699)), [], {}
            for lo in range(0, 9000, cut):
                y, hist = fft_convolve(x[..., lo : lo + cut], ir, hist, spectra)
                parts.append(y)
            np.testing.assert_allclose(np.concatenate(parts, -1), whole, rtol=0, atol=1e-12)


def test_a_type_without_numpy_takes_the_torch_engine() -> None:
    """A chain holding a step type outside NUMPY_STEP_TYPES stays on the torch engine
    (every type has a numpy implementation today; the gate stays for new ones). In a
    fresh process: this one has loaded torch steps already."""
    code = (
        "from types import SimpleNamespace as N\n"
        "from fxcli.cli.process import cpu_path_without_torch as gate\n"
        "from fxcli.preset.spec import NUMPY_STEP_TYPES\n"
        "assert 'new' not in NUMPY_STEP_TYPES\n"
        "print(gate(N(steps=[N(type='gain'), N(type='new')]), 'cpu'),"
        " gate(N(steps=[N(type='gain')]), 'cpu'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "FXCLI_CPU_ENGINE"}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]


def test_bad_cpu_engine_variable_is_a_usage_error(tmp_path: Path) -> None:
    src = _input(tmp_path, channels=1, seconds=0.2)
    r = _cli("process", str(src), str(tmp_path / "o.wav"), "-p", "iir_chain", engine="jax")
    assert r.returncode == 2
    assert "FXCLI_CPU_ENGINE='jax': allowed: numpy, torch" in r.stderr
    assert "Traceback" not in r.stderr


def test_array_steps_refuse_other_devices() -> None:
    """The stand-in base runs on the CPU only: moving a torch-free step to CUDA fails
    loudly instead of silently staying on the CPU."""
    code = (
        "from fxcli.steps import module; module.use_arrays()\n"
        "from fxcli.steps.gain import Gain\n"
        "g = Gain(gain_db=-3)\n"
        "assert type(g).__mro__[-2] is module.ArrayModule, type(g).__mro__\n"
        "g.to('cpu')\n"
        "try:\n    g.to('cuda')\nexcept RuntimeError as e:\n    print('REFUSED', e)\n"
        "import sys; print('TORCH', 'torch' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "REFUSED torch-free steps run on the CPU only" in r.stdout
    assert "TORCH False" in r.stdout


def test_threads_option_and_variable(tmp_path: Path) -> None:
    """``--threads`` / ``FXCLI_THREADS`` bound the CPU kernels' threads (issue 15: a
    steady run on busy shared machines); results do not depend on them; bad values are
    usage errors naming the option or the variable."""
    src = _input(tmp_path, channels=8, seconds=2.0)
    outs = []
    for n in ("1", "2", "3"):
        out = tmp_path / f"t{n}.wav"
        r = _cli("process", str(src), str(out), "-p", "iir_chain", "--threads", n, "--quiet")
        assert r.returncode == 0, r.stderr
        outs.append(sf.read(out)[0])
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    r = _cli("process", str(src), str(tmp_path / "x.wav"), "-p", "iir_chain", "--threads", "0")
    assert r.returncode == 2 and "--threads" in r.stderr and "Traceback" not in r.stderr
    env_bad = subprocess.run(
        [sys.executable, "-c", RUN, "analyze", str(src)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT), FXCLI_THREADS="many"),
        timeout=120,
    )
    assert env_bad.returncode == 2, env_bad.stderr
    assert "FXCLI_THREADS must be an integer >= 1, got 'many'" in env_bad.stderr


def test_a_process_that_loaded_torch_gets_the_torch_engine(tmp_path: Path) -> None:
    """Found by two helpers (session 7): a library caller or a test that imported
    torch before calling the CLI in-process had the torch-free path chosen while the
    steps' base class followed torch (nn.Module), and every file failed with
    "to() received an invalid combination of arguments - got (HostDevice)"."""
    src = _input(tmp_path, channels=2, seconds=0.3)
    code = (
        "import sys, torch\n"
        "from fxcli.cli.app import main\n"
        f"sys.argv = ['fxcli', 'process', {str(src)!r}, {str(tmp_path / 'o.wav')!r},"
        " '-p', 'voice', '--device', 'cpu', '--quiet']\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "FXCLI_CPU_ENGINE"}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert sf.info(str(tmp_path / "o.wav")).frames > 0


LOADED_AT_EXIT = """
import os, sys
from fxcli.cli.app import main
sys.argv = ["fxcli", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    import gc
    watch = os.environ["WATCH_MODULES"].split(",")
    print("LOADED", ",".join(m for m in watch if m in sys.modules) or "-", file=sys.stderr)
    print("GC", gc.isenabled(), gc.get_freeze_count() > 0, file=sys.stderr)
    print("OPENBLAS_THREAD_TIMEOUT", os.environ.get("OPENBLAS_THREAD_TIMEOUT"), file=sys.stderr)
    raise
"""

#: what a one-file ``process`` through an IIR chain does not need
NOT_NEEDED = (
    "fxcli.cli.features",
    "fxcli.cli.analyze",
    "fxcli.cli.bench",
    "fxcli.cli.match",
    "fxcli.cli.presets",
    "numpy.random",
    "fxcli.dsp.loudness",
    "fxcli.dsp.truepeak",
    "yaml",
    "torch",
    "scipy",
    # issue 15: OpenSSL's hashing only for a manifest or Ray (~3 ms of a one-file call)
    "hashlib",
    "_hashlib",
)


def test_one_file_process_imports_only_what_it_needs(tmp_path: Path) -> None:
    """Issue 15 (one call per file within 3x FFmpeg's wall time): ``fxcli process`` builds
    only the process command (the other command modules and Typer's reading of their
    signatures were ~25 ms), draws no dither generator for an output without dither
    (numpy.random), measures no levels for a chain that promises none (the meters'
    modules), and a preset parsed before comes from the parse cache (PyYAML's import is
    ~15 ms), hashes nothing without a manifest (hashlib loads OpenSSL). numpy's OpenBLAS
    is told not to spin idle threads. The garbage collector, paused while the command
    starts (fxcli.cli.gc_pause), is on again for the files, with start-up's objects
    frozen."""
    src = tmp_path / "in.wav"
    rng = np.random.default_rng(3)
    sf.write(src, 0.1 * rng.standard_normal((4410, 2)), 44100, subtype="PCM_24")
    env = {k: v for k, v in os.environ.items() if k not in ("FXCLI_CPU_ENGINE",)}
    env.pop("OPENBLAS_THREAD_TIMEOUT", None)
    env.update(PYTHONPATH=str(ROOT), WATCH_MODULES=",".join(NOT_NEEDED))
    out = tmp_path / "out.wav"
    args = ["process", str(src), str(out), "-p", "iir_chain", "--device", "cpu", "--overwrite"]
    for _ in range(2):  # the first run may parse the preset (and fill the parse cache)
        r = subprocess.run(
            [sys.executable, "-c", LOADED_AT_EXIT, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
    assert "LOADED -" in r.stderr.splitlines(), r.stderr
    assert "GC True True" in r.stderr.splitlines(), r.stderr
    assert "OPENBLAS_THREAD_TIMEOUT 4" in r.stderr, r.stderr
    assert sf.info(str(out)).frames == 4410
    r = subprocess.run(  # a value the user set is kept
        [sys.executable, "-c", LOADED_AT_EXIT, *args],
        capture_output=True,
        text=True,
        env={**env, "OPENBLAS_THREAD_TIMEOUT": "12"},
        timeout=300,
    )
    assert r.returncode == 0 and "OPENBLAS_THREAD_TIMEOUT 12" in r.stderr, r.stderr


@pytest.mark.parametrize("command", ["process", "analyze", "features", "presets", "bench", "match"])
def test_one_command_app_has_the_full_apps_help(command: str) -> None:
    """Issue 15: ``fxcli COMMAND ...`` runs an app holding that command only; its help
    (usage line, options, texts) is the full app's, and so are its usage errors."""
    from typer.testing import CliRunner

    from fxcli.cli.app import app, build_app

    runner = CliRunner()
    for args in ([command, "--help"], [command, "--no-such-option"]):
        full = runner.invoke(app, args, prog_name="fxcli")
        one = runner.invoke(build_app(command), args, prog_name="fxcli")
        assert (one.exit_code, one.output) == (full.exit_code, full.output)
