"""Early write-back of outputs (fxcli.io.writeback, core.start_writeback).

Issue 15 (the api chain on 8 ch x 120 s as a command, >= 2x FFmpeg and >= 3x SoX):
the fsync before the atomic rename wrote the whole 127 MB output while the command
waited (0.15-0.25 s). The PCM WAV writer now starts the write-back every few MiB; the
bytes written, the fsync and the rename are unchanged.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fxcli.dsp.native import core
from fxcli.io import wavfast, writeback


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_start_writeback_on_a_file_a_pipe_and_a_closed_fd(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f.bin", os.O_WRONLY | os.O_CREAT)
    try:
        os.write(fd, b"x" * 100_000)
        assert core.start_writeback(fd) == 0
    finally:
        os.close(fd)
    r, w = os.pipe()
    try:
        assert core.start_writeback(w) == errno.ESPIPE
    finally:
        os.close(r)
        os.close(w)
    assert core.start_writeback(fd) == errno.EBADF  # closed above: an error, not a raise


def test_hints_every_few_mib_and_stop_where_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    answers = iter([0, 0, errno.ENOSYS])

    class FakeCore:
        def start_writeback(self, fd: int) -> int:
            calls.append(fd)
            return next(answers)

    monkeypatch.setattr(writeback, "core", FakeCore())
    wb = writeback.EarlyWriteback(7, every=1000)
    for _ in range(10):
        wb.wrote(400)  # a hint at 1200, 2400 and 3600 bytes; the third says unsupported
    assert calls == [7, 7, 7] and not wb.active


def test_a_wav_written_with_hints_is_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hints change no byte: a 24-bit file of 4 ch x 2 s written in blocks with a
    hint after every block equals libsndfile's file of the same (rounded) integers."""
    monkeypatch.setattr(writeback, "EVERY_BYTES", 1)
    rng = np.random.default_rng(5)
    x = 0.4 * rng.standard_normal((4, 96000))
    ours = tmp_path / "ours.wav"
    w = wavfast.PcmWavWriter(ours, 48000, 4, "PCM_24")
    for start in range(0, x.shape[1], 10_000):
        w.write(x[:, start : start + 10_000])
    w.close()
    ref = tmp_path / "ref.wav"
    q = np.clip(np.rint(x * 2.0**23), -(2**23), 2**23 - 1).astype(np.int32)
    sf.write(ref, (q << 8).T, 48000, subtype="PCM_24")
    assert ours.read_bytes() == ref.read_bytes()
