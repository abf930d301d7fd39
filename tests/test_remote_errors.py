"""issue 16: ``s3://`` inputs without credentials printed a 70-line traceback; now
one ``error:`` line naming the URL and the reason, exit 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def test_s3_without_credentials_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install s3fs)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PYTHONPATH=str(ROOT),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
    )
    r = subprocess.run(
        [sys.executable, "-m", "fxcli", "process", "s3://bucket/in/", str(tmp_path / "out")]
        + ["-p", "voice"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: INPUT s3://bucket/in/: cannot list it")
    assert "Credentials" in lines[0] or "credentials" in lines[0]
    assert not (tmp_path / "out").exists()
