"""The WAV fast path (fxcli.io.wavfast) against soundfile/libsndfile.

Guards issue #4's I/O speed-up: every sample the fast reader returns must equal
what soundfile returns for the same file (any doubt about a header must fall
back to soundfile), and every file the fast writer produces must be
byte-identical to soundfile's for the same quantized data, with the atomic
temp/rename semantics kept.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fxcli.io import audio, wavfast

pytestmark = pytest.mark.skipif(not wavfast.available(), reason="fast path unavailable")

SUBTYPES = ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]


@pytest.fixture(autouse=True)
def _fast_path_for_short_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' files are short; let them take the fast path anyway."""
    monkeypatch.setattr(audio, "MIN_FAST_SAMPLES", 0)


WIDTH = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def noise(frames: int, channels: int, seed: int = 0, scale: float = 0.7) -> np.ndarray:
    """(frames, channels) float64 in about [-scale, scale], with full-scale extremes."""
    rng = np.random.default_rng(seed)
    x = np.clip(rng.standard_normal((frames, channels)) * scale / 3, -1, 1)
    if frames >= 2:
        x[0, 0], x[1, -1] = -1.0, 1.0 - 2.0**-31
    return x


def sf_read(path: Path, dtype: str) -> np.ndarray:
    return sf.read(str(path), dtype=dtype, always_2d=True)[0].T


def fast_read(path: Path, block: int, dtype: str) -> np.ndarray:
    lay = wavfast.locate(path)
    assert lay is not None
    blocks = list(wavfast.read_blocks(lay, block, dtype))
    for b in blocks:
        assert b.flags.c_contiguous and b.dtype == np.dtype(dtype)
        assert b.shape[1] <= block
    if not blocks:
        return np.empty((lay.channels, 0), dtype)
    return np.concatenate(blocks, axis=1)


def engine_read(path: Path, block: int) -> tuple[np.ndarray, bool]:
    """What the engine reads (audio.read_blocks) and whether the fast path took it."""
    info = audio.probe(path)
    fast = audio.fast_layout(info) is not None
    blocks = list(audio.read_blocks(info, block))
    arr = (
        np.concatenate(blocks, axis=1)
        if blocks
        else np.empty((info.channels, 0), info.compute_dtype)
    )
    return arr, fast


# ---------------------------------------------------------------------------
# hand-made files
# ---------------------------------------------------------------------------


def fmt_body(tag: int, channels: int, rate: int, bits: int) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def fmt_extensible(sub_tag: int, channels: int, rate: int, bits: int, valid: int) -> bytes:
    guid = struct.pack("<H", sub_tag) + bytes.fromhex("000000001000800000aa00389b71")
    return fmt_body(0xFFFE, channels, rate, bits) + struct.pack("<HHI", 22, valid, 0) + guid


def chunk(cid: bytes, body: bytes, size: int | None = None) -> bytes:
    pad = b"\0" if len(body) & 1 else b""
    return cid + struct.pack("<I", len(body) if size is None else size) + body + pad


def wav_file(path: Path, chunks: list[bytes], riff: bytes = b"RIFF") -> Path:
    body = b"WAVE" + b"".join(chunks)
    path.write_bytes(riff + struct.pack("<I", len(body)) + body)
    return path


def pcm24(frames: int, channels: int, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    q = rng.integers(-(2**23), 2**23, size=frames * channels, dtype=np.int64)
    return b"".join(int(v & 0xFFFFFF).to_bytes(3, "little") for v in q)


# ---------------------------------------------------------------------------
# decoding: bit-identical to libsndfile
# ---------------------------------------------------------------------------


def test_every_24_bit_value_decodes_like_libsndfile(tmp_path: Path) -> None:
    q = np.arange(-(2**23), 2**23, dtype=np.int32)
    path = tmp_path / "all24.wav"
    sf.write(str(path), (q << 8).reshape(-1, 1), 48000, subtype="PCM_24")
    for dtype in ("float32", "float64"):
        got = fast_read(path, 1 << 20, dtype)
        assert np.array_equal(got, sf_read(path, dtype)), dtype
    assert got[0, 0] == -1.0 and got[0, -1] == (2**23 - 1) / 2**23


def test_every_16_bit_value_decodes_like_libsndfile(tmp_path: Path) -> None:
    q = np.arange(-(2**15), 2**15, dtype=np.int16)
    path = tmp_path / "all16.wav"
    sf.write(str(path), q.reshape(-1, 2), 48000, subtype="PCM_16")
    for dtype in ("float32", "float64"):
        assert np.array_equal(fast_read(path, 1000, dtype), sf_read(path, dtype)), dtype


def test_32_bit_dense_sample_decodes_like_libsndfile(tmp_path: Path) -> None:
    # float32 output rounds int32 to 24 bits: ties and extremes included
    rng = np.random.default_rng(3)
    q = rng.integers(-(2**31), 2**31, size=200_000, dtype=np.int64)
    special = [
        -(2**31),
        2**31 - 1,
        0,
        1,
        -1,
        2**24 + 1,
        2**24 + 3,
        2**25 + 2,
        -(2**24) - 1,
        127,
        128,
    ]
    q = np.concatenate([special, q, np.arange(2**24 - 500, 2**24 + 500)]).astype(np.int32)
    path = tmp_path / "i32.wav"
    sf.write(str(path), q.reshape(-1, 1), 48000, subtype="PCM_32")
    for dtype in ("float32", "float64"):
        assert np.array_equal(fast_read(path, 4096, dtype), sf_read(path, dtype)), dtype


@pytest.mark.parametrize("subtype", SUBTYPES)
@pytest.mark.parametrize("channels", [1, 2, 8])
def test_fast_read_equals_soundfile(tmp_path: Path, subtype: str, channels: int) -> None:
    frames = 1001  # odd: 24-bit mono ends on a pad byte
    path = tmp_path / "x.wav"
    x = noise(frames, channels, seed=channels)
    if subtype in ("FLOAT", "DOUBLE"):
        x[5, 0] = 1.75  # floats above full scale pass unchanged
    sf.write(str(path), x, 44100, subtype=subtype)
    lay = wavfast.locate(path)
    assert lay is not None and (lay.subtype, lay.channels, lay.frames) == (
        subtype,
        channels,
        frames,
    )
    for dtype in ("float32", "float64"):
        ref = sf_read(path, dtype)
        for block in (1, 7, 4097, frames + 5):
            assert np.array_equal(fast_read(path, block, dtype), ref), (dtype, block)
    got, fast = engine_read(path, 333)
    assert fast
    assert np.array_equal(got, sf_read(path, str(audio.probe(path).compute_dtype)))


@pytest.mark.parametrize("fmt", ["WAVEX", "RF64"])
@pytest.mark.parametrize("subtype", ["PCM_24", "FLOAT"])
def test_extensible_and_rf64(tmp_path: Path, fmt: str, subtype: str) -> None:
    path = tmp_path / "x.wav"
    sf.write(str(path), noise(777, 3), 48000, subtype=subtype, format=fmt)
    got, fast = engine_read(path, 100)
    assert fast, f"{fmt} {subtype} should take the fast path"
    assert np.array_equal(got, sf_read(path, "float32"))


def test_empty_data_chunk(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros((0, 2)), 44100, subtype="PCM_24")
    assert wavfast.locate(path).frames == 0  # type: ignore[union-attr]
    got, _ = engine_read(path, 100)
    assert got.shape == (2, 0)


# ---------------------------------------------------------------------------
# robustness: damaged and unusual headers
# ---------------------------------------------------------------------------


def test_truncated_mid_sample(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    sf.write(str(path), noise(500, 2), 44100, subtype="PCM_24")
    full = sf_read(path, "float32")
    raw = path.read_bytes()
    path.write_bytes(raw[: 44 + 6 * 300 + 4])  # 300 whole frames and 4 bytes of frame 301
    lay = wavfast.locate(path)
    assert lay is not None and lay.frames == 300
    got, _ = engine_read(path, 64)
    assert np.array_equal(got, sf_read(path, "float32"))
    assert np.array_equal(got, full[:, :300])


def test_file_shrinking_after_locate_ends_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "shrink.wav"
    sf.write(str(path), noise(1000, 2), 44100, subtype="PCM_16")
    full = sf_read(path, "float32")
    lay = wavfast.locate(path)
    assert lay is not None
    with open(path, "r+b") as f:
        f.truncate(44 + 4 * 600 + 3)
    got = np.concatenate(list(wavfast.read_blocks(lay, 256, "float32")), axis=1)
    assert np.array_equal(got, full[:, :600])


@pytest.mark.parametrize("claimed", [10, 299, 301, 5000, 0xFFFFFFFF])
def test_header_lies_about_data_size(tmp_path: Path, claimed: int) -> None:
    data = pcm24(300, 1)
    path = wav_file(
        tmp_path / "lie.wav",
        [chunk(b"fmt ", fmt_body(1, 1, 44100, 24)), b"data" + struct.pack("<I", claimed) + data],
    )
    got, fast = engine_read(path, 128)
    assert np.array_equal(got, sf_read(path, "float32"))
    lay = wavfast.locate(path)
    assert lay is not None and lay.frames == min(claimed, 900) // 3
    # where libsndfile agrees on the frame count, the fast path is taken
    assert fast == (audio.probe(path).frames == lay.frames)


def test_extra_chunks_and_pad_bytes(tmp_path: Path) -> None:
    data = pcm24(201, 1)  # 603 bytes: odd, padded
    chunks = [
        chunk(b"JUNK", b"x" * 27),  # odd-sized, pad byte
        chunk(b"fmt ", fmt_body(1, 1, 44100, 24)),
        chunk(b"fact", struct.pack("<I", 201)),
        chunk(b"LIST", b"INFOISFT" + struct.pack("<I", 5) + b"abcd\0\0"),
        chunk(b"data", data),
        chunk(b"LIST", b"INFOICMT" + struct.pack("<I", 3) + b"hi\0\0"),
    ]
    path = wav_file(tmp_path / "chunks.wav", chunks)
    lay = wavfast.locate(path)
    assert lay is not None and lay.frames == 201 and lay.data_offset == 12 + 36 + 24 + 12 + 26 + 8
    got, fast = engine_read(path, 50)
    assert fast
    assert np.array_equal(got, sf_read(path, "float32"))


def test_fmt_after_data_is_found(tmp_path: Path) -> None:
    path = wav_file(
        tmp_path / "late.wav",
        [chunk(b"data", pcm24(50, 2)), chunk(b"fmt ", fmt_body(1, 2, 48000, 24))],
    )
    lay = wavfast.locate(path)
    assert lay is not None and (lay.frames, lay.data_offset) == (50, 20)
    # libsndfile refuses this layout, so probe() fails first and the engine never reads it
    with pytest.raises(audio.AudioError, match="data"):
        audio.probe(path)


@pytest.mark.parametrize(
    "chunks",
    [
        [chunk(b"fmt ", fmt_body(1, 1, 44100, 8)), chunk(b"data", b"\x80" * 10)],  # 8-bit
        [chunk(b"fmt ", fmt_body(6, 1, 8000, 8)), chunk(b"data", b"\x00" * 10)],  # A-law
        [chunk(b"fmt ", fmt_body(1, 1, 44100, 24)[:12]), chunk(b"data", b"\x00" * 9)],  # short
        [chunk(b"data", b"\x00" * 9)],  # no fmt
        [chunk(b"fmt ", fmt_body(1, 1, 44100, 24)), chunk(b"LIST", b"ab", size=1000)],  # runs off
        [chunk(b"fmt ", fmt_extensible(1, 2, 44100, 32, 24)), chunk(b"data", b"\0" * 16)],
        [chunk(b"fmt ", fmt_extensible(1, 2, 44100, 24, 24))[:-4] + b"\0" * 4],  # bad GUID
    ],
    ids=["pcm8", "alaw", "short-fmt", "no-fmt", "chunk-runs-off", "valid-bits", "bad-guid"],
)
def test_unsupported_or_damaged_headers_are_refused(tmp_path: Path, chunks: list[bytes]) -> None:
    assert wavfast.locate(wav_file(tmp_path / "odd.wav", chunks)) is None


def test_non_wav_files_fall_back(tmp_path: Path) -> None:
    x = noise(400, 2)
    flac, aiff, text = tmp_path / "x.flac", tmp_path / "x.aiff", tmp_path / "x.wav"
    sf.write(str(flac), x, 44100, subtype="PCM_24")
    sf.write(str(aiff), x, 44100, subtype="PCM_16")
    text.write_text("RIFF this is not audio")
    for path in (flac, aiff, text):
        assert wavfast.locate(path) is None
    assert wavfast.locate(tmp_path / "missing.wav") is None
    for path in (flac, aiff):
        got, fast = engine_read(path, 100)
        assert not fast
        assert np.array_equal(got, sf_read(path, "float32"))
    # RIFX (big-endian) WAV: soundfile reads it, the fast path does not
    rifx = tmp_path / "x_rifx.wav"
    sf.write(str(rifx), x, 44100, subtype="PCM_16", endian="BIG")
    assert rifx.read_bytes()[:4] == b"RIFX"
    got, fast = engine_read(rifx, 100)
    assert not fast and np.array_equal(got, sf_read(rifx, "float32"))


def test_switch_off_and_short_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.wav"
    sf.write(str(path), noise(100, 2), 44100, subtype="PCM_24")
    info = audio.probe(path)
    assert audio.fast_layout(info) is not None
    monkeypatch.setattr(audio, "MIN_FAST_SAMPLES", 201)  # 200 samples: below
    assert audio.fast_layout(info) is None
    out = audio.OutputFormat("WAV", "PCM_24", ".wav")
    for hint, fast in ((100, False), (101, True), (None, True)):
        with audio.AtomicWriter(tmp_path / "o.wav", 44100, 2, out, frames_hint=hint) as w:
            assert (w._fast is not None) == fast, hint
    monkeypatch.setattr(audio, "MIN_FAST_SAMPLES", 0)
    monkeypatch.setenv("FXCLI_WAVFAST", "0")
    assert audio.fast_layout(info) is None
    with audio.AtomicWriter(tmp_path / "o.wav", 44100, 2, out) as w:
        assert w._fast is None


# ---------------------------------------------------------------------------
# writing: byte-identical to soundfile, atomic
# ---------------------------------------------------------------------------


def write_with(
    dest: Path, y: np.ndarray, subtype: str, fast: bool, mp: pytest.MonkeyPatch, **kw: object
) -> int:
    mp.setenv("FXCLI_WAVFAST", "1" if fast else "0")
    out = audio.OutputFormat("WAV", subtype, ".wav")
    block = int(kw.get("block", 4097))  # type: ignore[call-overload]
    with audio.AtomicWriter(dest, 44100, y.shape[0], out, str(kw.get("dither", "none"))) as w:
        assert (w._fast is not None) == (fast and subtype in wavfast.WRITE_SUBTYPES)
        for i in range(0, y.shape[1], block):
            w.write(y[:, i : i + block])
        w.commit()
    return w.clipped


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32"])
@pytest.mark.parametrize("channels", [1, 2, 8])
def test_writer_bytes_equal_soundfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, subtype: str, channels: int
) -> None:
    y = noise(3001, channels, seed=7, scale=1.1).T.astype(np.float32)  # some clip
    y[0, 10], y[0, 11] = 0.5 / 2**15, 1.5 / 2**15  # rint ties: half to even
    y64 = y.astype(np.float64)
    y64[-1, 3] = -1.0 - 1e-12
    for arr in (y, y64):
        clipped = {}
        for fast in (True, False):
            clipped[fast] = write_with(tmp_path / f"{fast}.wav", arr, subtype, fast, monkeypatch)
        a, b = (tmp_path / "True.wav").read_bytes(), (tmp_path / "False.wav").read_bytes()
        assert a == b
        assert clipped[True] == clipped[False] > 0
        # and it reads back as the quantized samples
        bits = audio.PCM_BITS[subtype]
        q = np.clip(
            np.rint(arr.astype(np.float64) * 2.0 ** (bits - 1)),
            -(2 ** (bits - 1)),
            2 ** (bits - 1) - 1,
        )
        assert np.array_equal(sf_read(tmp_path / "True.wav", "float64"), q / 2.0 ** (bits - 1))


def test_writer_with_dither_equals_soundfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    y = noise(5000, 2, seed=9).T
    for fast in (True, False):
        write_with(
            tmp_path / f"{fast}.wav", y, "PCM_16", fast, monkeypatch, dither="tpdf", block=999
        )
    assert (tmp_path / "True.wav").read_bytes() == (tmp_path / "False.wav").read_bytes()


def test_writer_past_riff_limit_writes_rf64(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 16: past the RIFF limit the fast writer no longer hands over to
    # soundfile (whose RIFF sizes wrapped at 4 GiB): the file becomes RF64
    from fxcli.io import wavmeta

    y = noise(3000, 3, seed=11).T
    write_with(tmp_path / "ref.wav", y, "PCM_24", False, monkeypatch, block=500)
    monkeypatch.setattr(wavmeta, "RIFF_MAX_BYTES", 9 * 1200)
    dest = tmp_path / "big.wav"
    monkeypatch.setenv("FXCLI_WAVFAST", "1")
    out = audio.OutputFormat("WAV", "PCM_24", ".wav")
    with audio.AtomicWriter(dest, 44100, 3, out) as w:
        for i in range(0, 3000, 500):
            w.write(y[:, i : i + 500])
            assert w._fast is not None
        w.commit()
    assert w.rf64 and dest.read_bytes()[:4] == b"RF64"
    assert np.array_equal(sf_read(dest, "float32"), sf_read(tmp_path / "ref.wav", "float32"))


def test_written_file_reads_back_with_other_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import subprocess

    y = noise(1001, 3, seed=5).T
    dest = tmp_path / "o.wav"
    write_with(dest, y, "PCM_24", True, monkeypatch)
    info = sf.info(str(dest))
    assert (info.frames, info.channels, info.samplerate, info.subtype) == (1001, 3, 44100, "PCM_24")
    if shutil.which("sox"):
        p = subprocess.run(["sox", "--i", "-s", str(dest)], capture_output=True, text=True)
        assert p.returncode == 0 and p.stdout.strip() == "1001"
    if shutil.which("ffprobe"):
        p = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "stream=channels,codec_name",
                "-of",
                "csv=p=0",
                str(dest),
            ],
            capture_output=True,
            text=True,
        )
        assert p.returncode == 0 and p.stdout.strip() == "pcm_s24le,3"


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if audio.TEMP_MARK in p.name]


def test_failure_leaves_no_temp_file_and_keeps_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FXCLI_WAVFAST", "1")
    dest = tmp_path / "keep.wav"
    dest.write_bytes(b"old")
    out = audio.OutputFormat("WAV", "PCM_24", ".wav")
    y = noise(100, 2).T
    with pytest.raises(RuntimeError, match="boom"):
        with audio.AtomicWriter(dest, 44100, 2, out) as w:
            assert w._fast is not None
            w.write(y)
            assert temp_files(tmp_path)
            raise RuntimeError("boom")
    assert temp_files(tmp_path) == [] and dest.read_bytes() == b"old"

    def failing(self: wavfast.PcmWavWriter, y: np.ndarray, d: object = None) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wavfast.PcmWavWriter, "write", failing)
    with pytest.raises(audio.AudioError, match="write failed .*No space left"):
        with audio.AtomicWriter(dest, 44100, 2, out) as w:
            w.write(y)
    assert temp_files(tmp_path) == [] and dest.read_bytes() == b"old"


def test_unwritable_folder_is_an_audio_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FXCLI_WAVFAST", "1")
    (tmp_path / "file").write_text("x")
    out = audio.OutputFormat("WAV", "PCM_16", ".wav")
    with pytest.raises(audio.AudioError, match="cannot write"):
        with audio.AtomicWriter(tmp_path / "file" / "o.wav", 44100, 1, out):
            pass


def test_encode_pcm_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="nbytes"):
        wavfast.encode_pcm(np.zeros((1, 4)), 5, np.empty(40, np.uint8))
    with pytest.raises(ValueError, match="too small"):
        wavfast.encode_pcm(np.zeros((2, 4)), 3, np.empty(10, np.uint8))
    buf = np.empty(6, np.uint8)
    assert wavfast.encode_pcm(np.array([[np.nan, 2.0]]), 3, buf) == 1
    assert buf.tolist() == [0, 0, 0, 0xFF, 0xFF, 0x7F]


@pytest.mark.parametrize("nbytes", [2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_encode_pcm_equals_numpy_quantization(nbytes: int, channels: int, dtype) -> None:
    """Guards the compiled encoder (vector lanes, exact rint): the bytes equal numpy's
    rint (half to even), clip and little-endian packing, with ties, the clip bounds,
    NaN and infinities, with and without dither."""
    rng = np.random.default_rng(nbytes * 10 + channels)
    scale = float(2 ** (8 * nbytes - 1))
    k = rng.integers(-int(scale) - 3, int(scale) + 3, 2000).astype(np.float64)
    special = [np.nan, np.inf, -np.inf, -0.0, 1.0, -1.0, (scale - 0.5) / scale, -0.5 / scale]
    vals = np.concatenate([(k + 0.5) / scale, k / scale, (k + 0.25) / scale, special])
    n = len(vals) // channels
    y = rng.permutation(vals)[: n * channels].reshape(channels, n).astype(dtype)
    for dither in (None, np.round(rng.standard_normal((n, channels)) * 4) / 2):
        v = y.T.astype(np.float64) * scale
        if dither is not None:
            v = v + dither
        q = np.rint(v)
        clip = (q < -scale) | (q > scale - 1)
        q = np.nan_to_num(np.clip(q, -scale, scale - 1), nan=0.0).astype("<i8", order="C")
        want = q.view(np.uint8).reshape(-1, 8)[:, :nbytes].reshape(-1)
        out = np.zeros(y.size * nbytes + 5, np.uint8)
        assert wavfast.encode_pcm(y, nbytes, out, dither) == int(clip.sum())
        assert np.array_equal(out[: y.size * nbytes], want) and not out[y.size * nbytes :].any()


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_engine_output_identical_with_and_without_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, subtype: str
) -> None:
    """The whole engine (threads, chunks, quantizer) writes the same bytes either way."""
    import torch

    from fxcli.engine.runner import Engine
    from fxcli.io.paths import Job
    from fxcli.preset.loader import load_preset

    preset = tmp_path / "p.yaml"
    preset.write_text(
        "version: 1\ndescription: t\nchain:\n"
        "  - {type: highpass, cutoff_hz: 80, order: 2, design: butterworth}\n"
        "  - {type: gain, gain_db: 9}\n"  # pushes some samples past full scale
    )
    src = tmp_path / "in.wav"
    sf.write(str(src), noise(30011, 3, seed=2), 44100, subtype=subtype)
    results = {}
    for fast in ("1", "0"):
        monkeypatch.setenv("FXCLI_WAVFAST", fast)
        engine = Engine(load_preset(str(preset)), torch.device("cpu"), chunk_seconds=0.1)
        res = engine.process(Job(src, tmp_path / f"out{fast}.wav"))
        assert res.status == "ok", res.error
        results[fast] = res

    def without_peak_time(b: bytes) -> bytes:
        # FLOAT WAV carries libsndfile's PEAK chunk, whose timestamp is the wall clock:
        # two runs a second apart differ there only (seen in a full run, 2026-12-04)
        i = b.find(b"PEAK")
        return b if i < 0 else b[: i + 12] + b"\0\0\0\0" + b[i + 16 :]

    out1, out0 = ((tmp_path / f"out{f}.wav").read_bytes() for f in ("1", "0"))
    assert without_peak_time(out1) == without_peak_time(out0)
    assert results["1"].clipped == results["0"].clipped
    assert (results["1"].clipped > 0) == (subtype != "FLOAT")
    assert temp_files(tmp_path) == []


def test_empty_blocks_and_empty_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps may release zero frames for a chunk (latency); an empty output is valid."""
    y = noise(301, 2, seed=4).T
    empty = np.empty((2, 0))
    for fast in (True, False):
        monkeypatch.setenv("FXCLI_WAVFAST", "1" if fast else "0")
        out = audio.OutputFormat("WAV", "PCM_24", ".wav")
        with audio.AtomicWriter(tmp_path / f"e{fast}.wav", 44100, 2, out) as w:
            w.write(empty)
            w.write(y[:, :100])
            w.write(empty)
            w.write(y[:, 100:])
            w.commit()
        with audio.AtomicWriter(tmp_path / f"z{fast}.wav", 44100, 2, out) as w:
            w.write(empty)
            w.commit()
    for name in ("e", "z"):
        assert (tmp_path / f"{name}True.wav").read_bytes() == (
            tmp_path / f"{name}False.wav"
        ).read_bytes()
    assert sf.info(str(tmp_path / "zTrue.wav")).frames == 0
