"""Generate the fixed corpus of damaged audio files used by tests/test_reliability.py
and tests/test_fuzz.py (issue #8). Deterministic: rerunning it rewrites the same bytes.

    python tests/corpus/make_corpus.py          # (re)write tests/corpus/{seeds,bad,fuzz}/

Layout:

- ``seeds/``: small valid files (WAV PCM 16/24/32, float, extensible, RF64; FLAC 16/24).
- ``bad/``:   the named cases of the contract table in issue #8 (empty file, 4/12/44/45
  bytes of a WAV, cut mid-data, flipped header bytes, headers lying about their size
  both ways, random bytes named .wav/.flac, zero channels, a 2**31-frame claim, ...).
  Every one of them must fail cleanly, or (``*.lies-*``/``*.huge-claim*``) be read up
  to where the data really ends. ``bad/expected.json`` says which.
- ``fuzz/``:  seeded mutations of the seeds (bit flips, truncations, chunk-size edits,
  byte-range overwrites); each must either read or fail with a clean ``AudioError``.

Total size is kept well under 2 MB (seeds are a few hundred frames).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
SEED_FRAMES = 600


def _signal(channels: int, frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((frames, channels))
    return (0.5 * x / np.max(np.abs(x))).astype(np.float64)


SEEDS: dict[str, tuple[int, int, str, str]] = {
    # name: (channels, rate, subtype, format)
    "pcm16_stereo.wav": (2, 44100, "PCM_16", "WAV"),
    "pcm24_mono.wav": (1, 48000, "PCM_24", "WAV"),
    "pcm32_stereo.wav": (2, 22050, "PCM_32", "WAV"),
    "float_3ch.wav": (3, 16000, "FLOAT", "WAV"),
    "double_mono.wav": (1, 8000, "DOUBLE", "WAV"),
    "ext_pcm24_6ch.wav": (6, 48000, "PCM_24", "WAVEX"),
    "rf64_pcm16.wav": (2, 44100, "PCM_16", "RF64"),
    "pcm16_stereo.flac": (2, 44100, "PCM_16", "FLAC"),
    "pcm24_mono.flac": (1, 96000, "PCM_24", "FLAC"),
}


def write_seeds(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (name, (ch, fs, sub, fmt)) in enumerate(SEEDS.items()):
        p = folder / name
        sf.write(str(p), _signal(ch, SEED_FRAMES, i), fs, subtype=sub, format=fmt)
        b = p.read_bytes()
        if sub in ("FLOAT", "DOUBLE"):  # libsndfile's PEAK chunk holds a time stamp: zero it
            at = _find_chunk(b, b"PEAK") + 12
            b = b[:at] + bytes(4) + b[at + 4 :]
            p.write_bytes(b)
        out[name] = b
    return out


def _find_chunk(b: bytes, cid: bytes) -> int:
    """Offset of a RIFF chunk header (id + size), walking from byte 12."""
    pos = 12
    while pos + 8 <= len(b):
        if b[pos : pos + 4] == cid:
            return pos
        size = struct.unpack_from("<I", b, pos + 4)[0]
        pos += 8 + size + (size & 1)
    raise ValueError(cid)


def _set_u32(b: bytes, at: int, value: int) -> bytes:
    return b[:at] + struct.pack("<I", value & 0xFFFFFFFF) + b[at + 4 :]


def _set_u16(b: bytes, at: int, value: int) -> bytes:
    return b[:at] + struct.pack("<H", value & 0xFFFF) + b[at + 2 :]


def named_cases(seeds: dict[str, bytes]) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, expectation); expectation is ``fail`` (a clean per-file error)
    or ``read`` (readable: the frames actually present, nothing more)."""
    w = seeds["pcm16_stereo.wav"]
    fl = seeds["pcm16_stereo.flac"]
    data_at = _find_chunk(w, b"data")
    fmt_at = _find_chunk(w, b"fmt ")
    rng = np.random.default_rng(8)
    cases: dict[str, tuple[bytes, str]] = {
        "empty.wav": (b"", "fail"),
        "empty.flac": (b"", "fail"),
        "first4.wav": (w[:4], "fail"),
        "first12.wav": (w[:12], "fail"),
        "first44.wav": (w[:44], "fail"),  # header only: no data frames at all
        "first45.wav": (w[:45], "fail"),  # header + half a sample
        "cut_mid_header.wav": (w[: fmt_at + 12], "fail"),
        "first42.flac": (fl[:42], "fail"),  # fLaC + part of STREAMINFO
        "random.wav": (rng.bytes(3000), "fail"),
        "random.flac": (rng.bytes(3000), "fail"),
        "random_riff_head.wav": (b"RIFF" + rng.bytes(2000), "fail"),
        "text_named.wav": (b"this is not audio\n" * 20, "fail"),
        "riff_not_wave.wav": (w[:8] + b"AVI " + w[12:], "fail"),
        "no_fmt_chunk.wav": (w[:12] + w[data_at:], "fail"),
        "zero_channels.wav": (_set_u16(w, fmt_at + 10, 0), "fail"),
        "zero_rate.wav": (_set_u32(w, fmt_at + 12, 0), "fail"),
        "bad_format_tag.wav": (_set_u16(w, fmt_at + 8, 0x7777), "fail"),
        "bits_zero.wav": (_set_u16(w, fmt_at + 22, 0), "fail"),
        "fmt_size_huge.wav": (_set_u32(w, fmt_at + 4, 0x7FFFFFF0), "fail"),
        "flipped_magic.wav": (bytes([w[0] ^ 0xFF]) + w[1:], "fail"),
        "flipped_wave_id.wav": (w[:8] + bytes([w[8] ^ 0x01]) + w[9:], "fail"),
        "flac_bad_magic.flac": (b"fLaX" + fl[4:], "fail"),
        "flac_flipped_streaminfo.flac": (
            fl[:8] + bytes(b ^ 0xFF for b in fl[8:26]) + fl[26:],
            "fail",
        ),
        # cut mid-data: readable up to the cut (libsndfile and the fast path both
        # report the whole frames present); the contract is "no hang, no traceback"
        "cut_mid_data.wav": (w[: data_at + 8 + 1001], "read"),
        "cut_mid_data.flac": (fl[: len(fl) // 2], "fail_or_read"),
        # data size larger than the file: read what is there
        "lies_data_too_big.wav": (_set_u32(w, data_at + 4, 0x7FFFFFF0), "read"),
        # data size smaller than the data: read only what the header declares
        "lies_data_too_small.wav": (_set_u32(w, data_at + 4, 400), "read"),
        "lies_riff_too_big.wav": (_set_u32(w, 4, 0xFFFFFFF0), "read"),
        "lies_riff_too_small.wav": (_set_u32(w, 4, 20), "read"),
        # RF64 whose ds64 claims 2**31 frames (8 GiB of float32): read to the end
        "huge_claim_rf64.wav": (_huge_rf64(seeds["rf64_pcm16.wav"]), "read"),
        "huge_claim_riff.wav": (_set_u32(w, data_at + 4, 0xFFFFFFF0), "read"),
    }
    return cases


def _huge_rf64(b: bytes) -> bytes:
    """Set the ds64 data size (and sample count) to 2**31 frames of 16-bit stereo."""
    ds64 = _find_chunk(b, b"ds64")
    frames = 2**31
    body = ds64 + 8
    riff_size, _data_size, _count = struct.unpack_from("<QQQ", b, body)
    new = struct.pack("<QQQ", riff_size + frames * 4, frames * 4, frames)
    return b[:body] + new + b[body + 24 :]


def fuzz_cases(seeds: dict[str, bytes], n_per_seed: int = 10) -> dict[str, bytes]:
    """Seeded mutations: bit flips (header-weighted), truncations, chunk-size edits,
    overwritten byte ranges."""
    out: dict[str, bytes] = {}
    for s_i, (name, b) in enumerate(seeds.items()):
        rng = np.random.default_rng(1000 + s_i)
        stem = name.replace(".", "_")
        ext = Path(name).suffix
        is_riff = b[:4] in (b"RIFF", b"RF64")
        for k in range(n_per_seed):
            kind = ["flip", "flip", "truncate", "chunksize", "overwrite"][k % 5]
            m = bytearray(b)
            if kind == "flip":
                for _ in range(int(rng.integers(1, 6))):
                    # 3/4 of the flips land in the first 128 bytes (the headers)
                    hi = 128 if rng.random() < 0.75 else len(m)
                    i = int(rng.integers(0, min(hi, len(m))))
                    m[i] ^= 1 << int(rng.integers(0, 8))
            elif kind == "truncate":
                m = m[: int(rng.integers(0, len(m)))]
            elif kind == "chunksize" and is_riff:
                cid = [b"fmt ", b"data", b"RIFF"][int(rng.integers(0, 3))]
                at = 0 if cid == b"RIFF" else _find_chunk(bytes(m), cid)
                value = int(
                    rng.choice(
                        [0, 1, 2, 15, 17, 0x7FFFFFFF, 0xFFFFFFFF, int(rng.integers(0, 1 << 32))]
                    )
                )
                m[at + 4 : at + 8] = struct.pack("<I", value)
            else:  # overwrite a random range (also the FLAC "chunksize" case)
                i = int(rng.integers(0, len(m)))
                n = int(rng.integers(1, 64))
                m[i : i + n] = rng.bytes(min(n, len(m) - i))
            out[f"{stem}.{kind}{k:02d}{ext}"] = bytes(m)
    return out


def main() -> None:
    for sub in ("seeds", "bad", "fuzz"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
    seeds = write_seeds(HERE / "seeds")
    bad = HERE / "bad"
    bad.mkdir()
    expected = {}
    for name, (data, expect) in named_cases(seeds).items():
        (bad / name).write_bytes(data)
        expected[name] = expect
    (bad / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    fuzz = HERE / "fuzz"
    fuzz.mkdir()
    for name, data in fuzz_cases(seeds).items():
        (fuzz / name).write_bytes(data)
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"wrote {len(list(HERE.rglob('*.*')))} files, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
