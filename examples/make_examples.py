"""Synthesize the bundled example audio (deterministic; run from the repo root).

- examples/audio/music_stereo.wav: 4 s, 44.1 kHz, stereo, 24-bit WAV: bass, chords,
  kick and hi-hat, panned, with some subsonic rumble for the highpass to remove.
- examples/audio/voice/voice_mono.flac: 4 s, 48 kHz, mono, 16-bit FLAC: a voice-like
  source (glottal pulses with vibrato through moving vowel formants, syllable
  envelopes) with 50 Hz mains hum and low rumble, for the voice preset.
- examples/audio/voice/notes.txt: a non-audio file (skipped and counted by process).

Usage: python examples/make_examples.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

ROOT = Path(__file__).resolve().parent / "audio"


def music(fs: int = 44100, seconds: float = 4.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(fs * seconds)) / fs
    beat = 0.5  # 120 bpm
    roots = [55.0, 43.65, 49.0, 41.2]  # A1 F1 G1 E1
    bass = np.zeros_like(t)
    chords = np.zeros((2, t.size))
    for i, f0 in enumerate(roots):
        seg = (t >= i * 1.0) & (t < (i + 1) * 1.0)
        tt = t[seg] - i * 1.0
        env = np.exp(-tt * 2.0)
        bass[seg] = env * sum(np.sin(2 * np.pi * f0 * k * tt) / k for k in range(1, 8))
        for j, ratio in enumerate((4.0, 5.04, 5.99)):  # root, third, fifth two octaves up
            ch = np.sin(2 * np.pi * f0 * ratio * tt + j) * (1 - np.exp(-tt * 30)) * 0.15
            chords[j % 2, seg] += ch
            chords[(j + 1) % 2, seg] += 0.5 * ch
    kick = np.zeros_like(t)
    hat = np.zeros_like(t)
    sos_hat = signal.butter(4, 7000, "highpass", fs=fs, output="sos")
    for n in range(int(seconds / beat)):
        start = int(n * beat * fs)
        tt = np.arange(int(0.25 * fs)) / fs
        sweep = np.sin(2 * np.pi * (50 * tt + 60 * (1 - np.exp(-tt * 30)) / 30))
        end = min(t.size, start + tt.size)
        kick[start:end] += (sweep * np.exp(-tt * 12))[: end - start]
        hs = int((n * beat + beat / 2) * fs)
        burst = signal.sosfilt(sos_hat, rng.standard_normal(int(0.05 * fs)))
        burst *= np.exp(-np.arange(burst.size) / fs * 80)
        end = min(t.size, hs + burst.size)
        hat[hs:end] += burst[: end - hs]
    rumble = 0.05 * np.sin(2 * np.pi * 8 * t)
    left = 0.35 * bass + chords[0] + 0.45 * kick + 0.12 * hat + rumble
    right = 0.35 * bass + chords[1] + 0.45 * kick + 0.2 * hat + rumble
    x = np.stack([left, right])
    fade = np.minimum(1, np.minimum(t / 0.01, (seconds - t) / 0.05))
    return 0.8 * x / np.max(np.abs(x)) * fade


def voice(fs: int = 48000, seconds: float = 4.0, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    f0 = 120 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t)) * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    phase = np.cumsum(f0) / fs
    pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per glottal period
    source = signal.lfilter([1.0], [1.0, -0.95], pulses)  # spectral tilt
    source += 0.02 * rng.standard_normal(n)  # breath
    vowels = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480)]
    out = np.zeros(n)
    syl = int(0.5 * fs)
    for k, start in enumerate(range(0, n, syl)):
        seg = source[start : start + syl]
        y = seg.copy()
        for fc in vowels[k % len(vowels)]:
            b, a = signal.iirpeak(fc, 8.0, fs=fs)
            y = y + 3.0 * signal.lfilter(b, a, seg)
        env = np.sin(np.pi * np.arange(seg.size) / seg.size) ** 0.6
        out[start : start + seg.size] = y * env
    out /= np.max(np.abs(out))
    hum = 0.03 * np.sin(2 * np.pi * 50 * t) + 0.01 * np.sin(2 * np.pi * 150 * t)
    rumble = (
        0.04
        * signal.sosfilt(signal.butter(2, 30, fs=fs, output="sos"), rng.standard_normal(n))
        * 20
    )
    x = 0.6 * out + hum + rumble
    return (0.7 * x / np.max(np.abs(x)))[None, :]


def main() -> None:
    (ROOT / "voice").mkdir(parents=True, exist_ok=True)
    sf.write(ROOT / "music_stereo.wav", music().T, 44100, subtype="PCM_24")
    sf.write(ROOT / "voice" / "voice_mono.flac", voice().T, 48000, subtype="PCM_16")
    (ROOT / "voice" / "notes.txt").write_text(
        "Not audio: fxcli process skips and counts files like this one.\n"
    )
    for p in sorted(ROOT.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(ROOT.parent.parent)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
