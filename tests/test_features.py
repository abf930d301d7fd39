"""fxcli.features (issue #7) and the ``fxcli features`` command.

Guards: agreement with librosa (stft power, melspectrogram with htk/slaney scales and
slaney/None norms, power_to_db ref=max/top_db 80/amin 1e-10, mfcc) within 1e-4
relative on power and 0.01 dB; HTK weights equal the TensorFlow
``linear_to_mel_weight_matrix`` formula of the seed article; streamed frames equal
whole-signal frames bit for bit; batched short files equal one-by-one; the CLI on the
bundled examples (``--preset dataset --kind logmel --image``) writes arrays equal to the
library on the chain's output, ``index.jsonl`` and PNGs; atomic writes, overwrite
policy and exit codes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from fxcli import features as FT
from fxcli.cli.app import app
from fxcli.io.audio import TEMP_MARK
from tests.conftest import ROOT, communicate_rest, noise, write_audio

EXAMPLES = ROOT / "examples" / "audio"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def signal_(n: int = 24000, channels: int | None = None, seed: int = 0, fs: int = 16000):
    """Chirp + noise, float32 (a spectrum with structure and a wide dB range)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    x = 0.5 * np.sin(2 * np.pi * (100 * t + 2000 * t**2)) + 0.05 * rng.standard_normal(n)
    if channels:
        x = np.stack([x * (0.5 + 0.5 * c) + 0.01 * rng.standard_normal(n) for c in range(channels)])
    return x.astype(np.float32)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """Max error relative to the reference's peak (tiny bins are dominated by rounding)."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ---------------------------------------------------------------------------- librosa
librosa_params = [
    dict(),
    dict(n_fft=1024, hop_length=256),
    dict(n_fft=512, hop_length=160, win_length=400, window="hamming"),
    dict(n_fft=1024, hop_length=300, center=False),
    dict(n_fft=1024, pad_mode="reflect"),
    dict(n_fft=1023, hop_length=200),  # odd FFT size
]


@pytest.mark.parametrize("kw", librosa_params)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stft_power_matches_librosa(kw: dict, dtype: type) -> None:
    librosa = pytest.importorskip("librosa")
    x = signal_().astype(dtype)
    ref = np.abs(librosa.stft(x, **kw)) ** 2
    got = FT.Spectrogram(**kw)(torch.from_numpy(x))
    assert got.dtype == torch.from_numpy(x).dtype
    assert got.shape == ref.shape
    assert rel_err(got.numpy(), ref) < (1e-4 if dtype == np.float32 else 1e-10)
    mag = FT.Spectrogram(**kw, power=1.0)(torch.from_numpy(x)).numpy()
    assert rel_err(mag, np.sqrt(ref)) < 1e-4
    cpx = FT.Spectrogram(**kw, power=None)(torch.from_numpy(x)).numpy()
    assert rel_err(cpx, librosa.stft(x, **kw)) < 1e-4


@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize("norm", ["slaney", None])
@pytest.mark.parametrize(
    "kw", [dict(), dict(n_fft=1024, hop_length=256, n_mels=64, fmin=30.0, fmax=7000.0)]
)
def test_melspectrogram_and_db_match_librosa(htk: bool, norm: str | None, kw: dict) -> None:
    librosa = pytest.importorskip("librosa")
    x = signal_(channels=2)
    fs = 16000
    ref = librosa.feature.melspectrogram(y=x, sr=fs, htk=htk, norm=norm, **kw)
    ours = dict(
        n_fft=kw.get("n_fft", 2048),
        hop_length=kw.get("hop_length"),
        n_mels=kw.get("n_mels", 128),
        f_min=kw.get("fmin", 0.0),
        f_max=kw.get("fmax"),
        mel_scale="htk" if htk else "slaney",
        norm=norm,
        fs=fs,
    )
    got = FT.MelSpectrogram(**ours)(torch.from_numpy(x)).numpy()
    assert (
        got.shape
        == ref.shape
        == (2, ours["n_mels"], 1 + x.shape[-1] // (ours["hop_length"] or 512))
    )
    assert rel_err(got, ref) < 1e-4
    # librosa's filterbank in float64 and ours agree to rounding
    fb_ref = librosa.filters.mel(
        sr=fs, n_fft=ours["n_fft"], n_mels=ours["n_mels"], fmin=ours["f_min"],
        fmax=ours["f_max"], htk=htk, norm=norm, dtype=np.float64,
    )  # fmt: skip
    fb = FT.mel_filterbank(fs, ours["n_fft"], ours["n_mels"], ours["f_min"], ours["f_max"],
                           ours["mel_scale"], norm)  # fmt: skip
    np.testing.assert_allclose(fb, fb_ref, rtol=1e-12, atol=1e-15)
    # dB: ref=np.max, top_db 80, amin 1e-10 over the whole (2-channel) array
    db_ref = librosa.power_to_db(ref, ref=np.max, amin=1e-10, top_db=80.0)
    db = FT.LogMelSpectrogram(**ours)(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(db - db_ref)) < 0.01
    assert db.max() == 0.0 and db.min() >= -80.0 and db.min() < -50  # clipping was active


def test_power_to_db_matches_librosa_on_extremes() -> None:
    librosa = pytest.importorskip("librosa")
    S = np.array([[0.0, 1e-12, 1e-10, 1e-3, 1.0, 250.0]], dtype=np.float32)
    for ref, top in [(np.max, 80.0), (1.0, 80.0), (1.0, None), (2.5, 30.0)]:
        r = librosa.power_to_db(S, ref=ref, amin=1e-10, top_db=top)
        ours_ref = "max" if ref is np.max else ref
        got = FT.power_to_db(torch.from_numpy(S), ours_ref, 1e-10, top).numpy()
        np.testing.assert_allclose(got, r, atol=1e-4)
    # per-row maxima with dims
    S2 = torch.tensor([[1.0, 0.1], [100.0, 1.0]])
    np.testing.assert_allclose(
        FT.power_to_db(S2, dims=(-1,)).numpy(), [[0, -10], [0, -20]], atol=1e-5
    )


@pytest.mark.parametrize("lifter", [0.0, 22.0])
def test_mfcc_matches_librosa(lifter: float) -> None:
    librosa = pytest.importorskip("librosa")
    x = signal_()
    ref = librosa.feature.mfcc(y=x, sr=16000, n_mfcc=13, lifter=lifter, n_mels=40)
    got = FT.MFCC(fs=16000, n_mfcc=13, lifter=lifter, n_mels=40)(torch.from_numpy(x)).numpy()
    assert got.shape == ref.shape
    # MFCCs are sums of dB values: 0.01 dB per band bounds the error by ~0.01 * sqrt(n_mels)
    assert np.max(np.abs(got - ref)) < 0.01 * (1 + lifter / 2) * np.sqrt(40)
    from scipy.fft import dct

    np.testing.assert_allclose(
        FT.dct_matrix(13, 40) @ np.eye(40), dct(np.eye(40), type=2, norm="ortho", axis=0)[:13],
        atol=1e-14,
    )  # fmt: skip


def tf_linear_to_mel_weight_matrix(
    num_mel_bins: int, num_spectrogram_bins: int, sample_rate: float, lower: float, upper: float
) -> np.ndarray:
    """numpy transcription of ``tf.signal.linear_to_mel_weight_matrix`` (the seed
    article's filterbank): HTK mel ``1127 ln(1 + f / 700)``, triangles in mel, the
    DC bin zeroed. Returns (num_spectrogram_bins, num_mel_bins)."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 1127.0 * np.log(1.0 + f / 700.0)

    nyquist = sample_rate / 2.0
    linear = np.linspace(0.0, nyquist, num_spectrogram_bins)[1:]
    bins_mel = hz_to_mel(linear)[:, None]
    edges = np.linspace(
        hz_to_mel(np.float64(lower)), hz_to_mel(np.float64(upper)), num_mel_bins + 2
    )
    lo, ce, up = edges[:-2], edges[1:-1], edges[2:]
    lower_slopes = (bins_mel - lo) / (ce - lo)
    upper_slopes = (up - bins_mel) / (up - ce)
    w = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    return np.pad(w, [[1, 0], [0, 0]])


@pytest.mark.parametrize(
    "fs,n_fft,f_min,f_max,n_mels,max_diff",
    [
        (16000, 1024, 0.0, 8000.0, 64, 0.005),  # the article's 64 bins at 16 kHz
        (16000, 1024, 80.0, 7600.0, 80, 0.004),
        (8000, 256, 125.0, 3800.0, 20, 0.011),  # TensorFlow's defaults
    ],
)
def test_htk_weights_match_tensorflow_formula(
    fs: int, n_fft: int, f_min: float, f_max: float, n_mels: int, max_diff: float
) -> None:
    """The article's TF filterbank has triangles linear in *mel* (HTK scale, no area
    norm); ours (librosa's ``htk=True``) has triangles linear in Hz between the same
    mel-spaced edges. Same edges, centres and support; the in-band curvature of the mel
    warping differs by at most 0.5-1.1 % of the peak (measured: 0.0048, 0.0036, 0.0101)."""
    tf_w = tf_linear_to_mel_weight_matrix(n_mels, n_fft // 2 + 1, fs, f_min, f_max).T
    ours = FT.mel_filterbank(fs, n_fft, n_mels, f_min, f_max, "htk", None)
    assert ours.shape == tf_w.shape
    np.testing.assert_array_equal(ours > 1e-12, tf_w > 1e-12)  # same support
    assert np.max(np.abs(ours - tf_w)) < max_diff
    assert np.abs(ours - tf_w).sum() / tf_w.sum() < 0.015
    # the band centres are the TF edges (1127 ln(1 + f/700) evenly spaced)
    centres = FT.mel_frequencies(n_mels + 2, f_min, f_max, "htk")
    tf_edges = np.linspace(1127 * np.log1p(f_min / 700), 1127 * np.log1p(f_max / 700), n_mels + 2)
    np.testing.assert_allclose(1127 * np.log1p(centres / 700), tf_edges, rtol=1e-12, atol=1e-9)


# ---------------------------------------------------------------------------- streaming
def stream(module: FT.Spectrogram, x: torch.Tensor, chunk: int) -> torch.Tensor:
    state = module.init_state(tuple(x.shape[:-1]), x.device)
    outs = []
    for i in range(0, x.shape[-1], chunk):
        y, state = module.process(x[..., i : i + chunk], state)
        outs.append(y)
    y, _ = module.flush(state)
    outs.append(y)
    return torch.cat(outs, -1)


@pytest.mark.parametrize(
    "kw",
    [
        dict(n_fft=512, hop_length=128),
        dict(n_fft=512, hop_length=128, pad_mode="reflect"),
        dict(n_fft=400, hop_length=160, center=False),
        dict(n_fft=255, hop_length=100, win_length=200),
    ],
)
@pytest.mark.parametrize("cls", ["spectrogram", "mel"])
def test_streamed_frames_equal_whole_signal(kw: dict, cls: str) -> None:
    """Chunks of 1, 7, 4097 and more than the signal, with flush, give the whole-signal
    frames bit for bit (frame grid and mel blocks anchored at the signal start)."""
    x = torch.from_numpy(signal_(9000, channels=2))
    m = (
        FT.Spectrogram(**kw)
        if cls == "spectrogram"
        else FT.MelSpectrogram(**kw, n_mels=40, fs=16000)
    )
    whole = m(x)
    assert whole.shape[-1] == m.n_frames(x.shape[-1])
    for chunk in (7, 4097, 20000):
        assert torch.equal(stream(m, x, chunk), whole), chunk
    short = x[..., :700]
    assert torch.equal(stream(m, short, 1), m(short))
    x64 = x.double()
    assert torch.equal(stream(m, x64, 1000), m(x64))


def test_stream_edge_cases() -> None:
    m = FT.MelSpectrogram(n_fft=256, hop_length=64, n_mels=16, fs=8000)
    empty = torch.zeros(2, 0)
    assert stream(m, empty, 10).shape == (2, 16, 0)
    r = FT.Spectrogram(n_fft=256, hop_length=64, pad_mode="reflect")
    with pytest.raises(ValueError, match="reflect needs more than n_fft // 2 = 128 samples"):
        stream(r, torch.zeros(1, 100), 10)
    with pytest.raises(ValueError, match="reflect needs more"):
        r(torch.zeros(1, 100))


def test_batched_equals_one_by_one() -> None:
    """Short files zero-padded into one batch, cut to their own frames, equal each file
    alone (constant padding: the padded zeros are what the file's own padding is)."""
    m = FT.MelSpectrogram(n_fft=1024, hop_length=256, n_mels=64, fs=16000)
    lens = [7000, 7500, 8000, 8191]
    xs = [torch.from_numpy(signal_(n, channels=1, seed=i)) for i, n in enumerate(lens)]
    batch = torch.stack([torch.nn.functional.pad(x, (0, max(lens) - x.shape[-1])) for x in xs])
    out = m(batch)
    for i, (x, n) in enumerate(zip(xs, lens, strict=True)):
        assert torch.equal(out[i, ..., : m.n_frames(n)], m(x))


def test_constructor_errors_name_the_key() -> None:
    cases = [
        (lambda: FT.Spectrogram(n_fft=0), "n_fft"),
        (lambda: FT.Spectrogram(n_fft=512, win_length=600), "win_length"),
        (
            lambda: FT.Spectrogram(pad_mode="edge"),
            "pad_mode: got 'edge'; allowed: constant, reflect",
        ),
        (lambda: FT.Spectrogram(window="nope"), "window"),
        (lambda: FT.MelSpectrogram(fs=16000, mel_scale="bark"), "mel_scale"),
        (lambda: FT.MelSpectrogram(fs=16000, norm="l2"), "norm"),
        (lambda: FT.MelSpectrogram(fs=16000, f_max=9000), "f_max: must be <= fs / 2"),
        (lambda: FT.MelSpectrogram(fs=16000, n_mels=0), "n_mels"),
        (lambda: FT.LogMelSpectrogram(fs=16000, ref="min"), "ref"),
        (lambda: FT.LogMelSpectrogram(fs=16000, amin=0), "amin"),
        (lambda: FT.LogMelSpectrogram(fs=16000, top_db=-1), "top_db"),
        (lambda: FT.MFCC(fs=16000, n_mels=10, n_mfcc=20), "n_mfcc"),
    ]
    for make, msg in cases:
        with pytest.raises(ValueError, match=msg.replace("(", r"\(")) as info:
            make()
        assert "\n" not in str(info.value)


def test_gradients_flow() -> None:
    """Differentiable: gradcheck through STFT power + mel (float64), finite dB grads."""
    m = FT.MelSpectrogram(n_fft=32, hop_length=8, n_mels=6, fs=8000)
    x = torch.randn(1, 64, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,), eps=1e-6, atol=1e-6)
    lm = FT.LogMelSpectrogram(n_fft=32, hop_length=8, n_mels=6, fs=8000, db_dims=(-2, -1))
    y = lm(x)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_module_device_dtype_and_state_dict() -> None:
    m = FT.MFCC(fs=16000, n_mels=40, n_mfcc=13)
    assert {"mel.window", "mel.fb", "dct"} <= set(m.state_dict())
    assert m.mel.fb.dtype == torch.float64  # built in float64, cast per call
    y = m(torch.from_numpy(signal_(4000)))
    assert y.dtype == torch.float32 and y.shape == (13, 1 + 4000 // 512)


@pytest.mark.cuda
def test_cuda_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    x = torch.from_numpy(signal_(48000, channels=2))
    for m in (FT.LogMelSpectrogram(fs=16000), FT.MFCC(fs=16000)):
        cpu = m(x)
        gpu = m.to("cuda")(x.cuda())
        assert gpu.device.type == "cuda"
        assert (gpu.cpu() - cpu).abs().max() < 0.01
    m = FT.MelSpectrogram(fs=16000).to("cuda")
    xc = x.cuda()
    assert ((stream(m, xc, 5000) - m(xc)).abs().max() / m(xc).abs().max()) < 1e-5


# ---------------------------------------------------------------------------- CLI
def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if TEMP_MARK in p.name]


def json_lines(out: str) -> list[dict]:
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def test_cli_dataset_logmel_image_on_bundled_examples(tmp_path: Path) -> None:
    """Done-when of issue #7: arrays, index.jsonl and PNGs; arrays equal the library
    (LogMelSpectrogram) on the dataset chain's output, bit for bit."""
    pytest.importorskip("matplotlib")
    from fxcli.engine.runner import process_array
    from fxcli.preset.build import build_chain
    from fxcli.preset.loader import load_preset

    out = tmp_path / "feats"
    r = run("features", str(EXAMPLES), str(out), "--preset", "dataset", "--kind", "logmel",
            "--image", "--json", "--device", "cpu")  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = json_lines(r.stdout)
    assert [x["status"] for x in lines] == ["ok", "ok"]
    index = [json.loads(x) for x in (out / "index.jsonl").read_text().splitlines()]
    assert sorted(e["output"] for e in index) == ["music_stereo.npy", "voice/voice_mono.npy"]
    preset = load_preset("dataset")
    for e in index:
        arr = np.load(out / e["output"])
        assert list(arr.shape) == e["shape"] and arr.shape[:2] == (1, 128)
        assert e["axes"] == ["channel", "mel", "frame"] and e["sample_rate"] == 16000
        assert e["params"]["ref"] == "max" and e["params"]["top_db"] == 80.0
        assert arr.max() == 0.0 and arr.min() >= -80.0
        png = out / e["image"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10000
        x, fs = sf.read(e["input"], dtype="float32", always_2d=True)
        y = process_array(build_chain(preset.steps, fs, x.shape[1]), x.T.copy())
        ref = FT.LogMelSpectrogram(fs=16000)(y).numpy()
        assert arr.shape == ref.shape
        assert np.array_equal(arr, ref), np.abs(arr - ref).max()
    assert leftovers(out) == []


def test_cli_streamed_long_file_and_batched_short_files(tmp_path: Path) -> None:
    """A file longer than a chunk streams; short files of several lengths are batched;
    every array equals the library on the whole file, bit for bit."""
    src = tmp_path / "in"
    long_x = noise(2, 40000, seed=1) * 0.3
    write_audio(src / "long.wav", long_x, 16000, "FLOAT")
    shorts = {
        f"s{i}.wav": noise(2, n, seed=10 + i) * 0.3 for i, n in enumerate([3000, 3300, 3600, 9000])
    }
    for name, x in shorts.items():
        write_audio(src / name, x, 16000, "FLOAT")
    out = tmp_path / "out"
    for kind, cls in [("mel", FT.MelSpectrogram), ("mfcc", FT.MFCC)]:
        r = run("features", str(src), str(out / kind), "--kind", kind, "--chunk-seconds", "0.7",
                "--n-fft", "1024", "--hop-length", "256", "--n-mels", "64", "--json")  # fmt: skip
        assert r.exit_code == 0, r.output
        res = {Path(x["input"]).name: x for x in json_lines(r.stdout)}
        assert res["long.wav"]["batched"] is False
        assert res["s0.wav"]["batched"] and res["s1.wav"]["batched"] and res["s2.wav"]["batched"]
        m = cls(n_fft=1024, hop_length=256, n_mels=64, fs=16000)
        for name, x in {"long.wav": long_x, **shorts}.items():
            arr = np.load(out / kind / name.replace(".wav", ".npy"))
            assert np.array_equal(arr, m(torch.from_numpy(x)).numpy()), (kind, name)


def test_cli_formats_single_file_and_index_merge(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "a.wav", noise(1, 5000, 3) * 0.5, 8000, "PCM_16")
    ref = FT.Spectrogram(n_fft=256)(torch.from_numpy(sf.read(src, dtype="float32")[0][None]))
    r = run("features", str(src), str(tmp_path / "one.pt"), "--kind", "spectrogram", "--n-fft",
            "256", "--format", "pt")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert torch.equal(torch.load(tmp_path / "one.pt"), ref)
    r = run("features", str(src), str(tmp_path / "z"), "--kind", "spectrogram", "--n-fft", "256",
            "--format", "npz")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.load(tmp_path / "z" / "a.npz")["features"], ref.numpy())
    # a second run: refused (exit 1, file kept), then skipped, then overwritten; the index
    # keeps one entry per output
    before = (tmp_path / "z" / "a.npz").read_bytes()
    r = run("features", str(src), str(tmp_path / "z"), "--format", "npz")
    assert r.exit_code == 1 and "exists (use --overwrite or --skip-existing)" in r.stderr
    assert (tmp_path / "z" / "a.npz").read_bytes() == before
    r = run("features", str(src), str(tmp_path / "z"), "--format", "npz", "--skip-existing")
    assert r.exit_code == 0 and "skipped" in r.stderr
    r = run("features", str(src), str(tmp_path / "z"), "--format", "npz", "--overwrite",
            "--n-mels", "20")  # fmt: skip
    assert r.exit_code == 0, r.output
    index = [json.loads(x) for x in (tmp_path / "z" / "index.jsonl").read_text().splitlines()]
    assert len(index) == 1 and index[0]["shape"][1] == 20 and index[0]["params"]["kind"] == "logmel"
    assert leftovers(tmp_path) == []


def test_cli_failures_and_usage_errors(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_audio(src / "good.wav", noise(1, 4000, 1) * 0.5, 8000, "PCM_16")
    (src / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    out = tmp_path / "out"
    r = run("features", str(src), str(out), "--json")
    assert r.exit_code == 1
    res = {Path(x["input"]).name: x for x in json_lines(r.stdout)}
    assert res["good.wav"]["status"] == "ok" and res["bad.wav"]["status"] == "failed"
    assert "bad.wav" in r.stderr and (out / "good.npy").exists() and not (out / "bad.npy").exists()
    assert leftovers(out) == []
    # f_max above the file's Nyquist frequency fails that file (rate-dependent), exit 1
    r = run("features", str(src / "good.wav"), str(tmp_path / "o2"), "--f-max", "6000")
    assert r.exit_code == 1 and "f_max: must be <= fs / 2 (4000 Hz)" in r.stderr
    for args, msg in [
        (["--n-mels", "0"], "n_mels"),
        (["--top-db", "abc"], "--top-db"),
        (["--ref", "min"], "--ref"),
        (["--kind", "chroma"], "chroma"),
        (["--preset", "no_such_preset"], "no_such_preset"),
        (["--format", "wav"], "wav"),
    ]:
        r = run("features", str(src / "good.wav"), str(tmp_path / "o3"), *args)
        assert r.exit_code == 2, (args, r.output)
        assert msg in r.output
    assert not (tmp_path / "o3").exists()


def test_cli_image_without_matplotlib_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    src = write_audio(tmp_path / "a.wav", noise(1, 4000, 1) * 0.5, 8000, "PCM_16")
    r = run("features", str(src), str(tmp_path / "o"), "--image")
    assert r.exit_code == 2
    assert "--image needs matplotlib: pip install 'fxcli[plot]'" in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_signal_exit_code_no_partial_and_index_of_finished(
    tmp_path: Path, sig: int, code: int
) -> None:
    """Interrupted while streaming: exit 130/143, finished files complete and indexed,
    nothing partial, no temporary files."""
    src = tmp_path / "in"
    for i in range(4):
        write_audio(src / f"f{i}.wav", 0.3 * noise(1, 16000 * 3, seed=i), 16000, "FLOAT")
    out = tmp_path / "o"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "fxcli", "features", str(src), str(out), "--json",
           "--chunk-seconds", "0.005", "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # one file finished (streamed: longer than a chunk)
    assert json.loads(first)["status"] == "ok"
    proc.send_signal(sig)
    rest, err = communicate_rest(proc, timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    done = sorted(json.loads(x)["output"] for x in [first, *rest.splitlines()] if x.strip())
    assert len(done) < 4
    assert sorted(str(p) for p in out.rglob("*.npy")) == done
    index = [json.loads(x) for x in (out / "index.jsonl").read_text().splitlines()]
    assert sorted(str(out / e["output"]) for e in index) == done
    assert leftovers(out) == []


def test_shard_splits_the_corpus_like_process(tmp_path: Path) -> None:
    """``features --shard K/N``: the shards are disjoint and together the whole corpus
    (sorted by output path, every N-th from K, as ``process``); a bad spec is a usage
    error naming the flag, before any file is touched."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        write_audio(src / f"f{i}.wav", noise(1, 4000, seed=i), 16000)
    outs = []
    for k in range(2):
        out = tmp_path / f"out{k}"
        r = run("features", str(src), str(out), "--shard", f"{k}/2", "--quiet")
        assert r.exit_code == 0, r.output
        outs.append(sorted(p.name for p in out.glob("*.npy")))
    assert outs == [["f0.npy", "f2.npy", "f4.npy"], ["f1.npy", "f3.npy"]]
    r = run("features", str(src), str(tmp_path / "bad"), "--shard", "2/2")
    assert r.exit_code == 2 and "--shard" in r.output
    assert not (tmp_path / "bad").exists()
