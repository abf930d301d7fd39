"""The CLI keeps freed large blocks for reuse (fxcli/cli/memory_policy.py, issue 15:
15.6 % of an 8-channel `fxcli process`'s CPU was the kernel zeroing the pages of
each chunk's freshly mapped buffers)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from fxcli.cli import memory_policy
from fxcli.dsp.native import core

GLIBC = platform.libc_ver()[0] == "glibc"


def test_user_settings_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
            monkeypatch.delenv(k, raising=False)
        monkeypatch.setenv(key, "1")
        assert memory_policy.keep_freed_buffers() is False


@pytest.mark.skipif(not GLIBC, reason="mallopt thresholds exist in glibc only")
def test_thresholds_are_set_in_a_fresh_process() -> None:
    # a subprocess: the setting lasts for the process; mallinfo2 is not needed, the
    # call's return value is glibc's own success flag for both settings
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
    }
    code = "from fxcli.cli.memory_policy import keep_freed_buffers as k; print(k())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"


def test_invalid_thresholds_raise() -> None:
    if not GLIBC:
        assert core.keep_freed_memory(1, 1) is False
        return
    with pytest.raises(ValueError, match="thresholds must be > 0"):
        core.keep_freed_memory(0, 1 << 20)
