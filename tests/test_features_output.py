"""issue 16: ``fxcli features`` OUTPUT names and array dtypes.

``features in.wav one.png`` made a folder ``one.png``: a single input with a
file-like OUTPUT of another extension is now a usage error (exit 2, nothing
created). Arrays were float64 for 32-bit inputs and float32 for the others: now
``--dtype`` (float32 by default) decides for every input. Arrays are read back
with numpy and compared with the library on the whole file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from fxcli import features as FT
from fxcli.cli.app import app
from tests.conftest import noise, write_audio


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("name", ["one.png", "one.npz", "one.txt"])
def test_single_input_with_a_file_like_output_of_another_kind_is_a_usage_error(
    tmp_path: Path, name: str
) -> None:
    src = write_audio(tmp_path / "in.wav", noise(1, 4000) * 0.5, 8000, "PCM_16")
    r = run("features", str(src), str(tmp_path / name))
    assert r.exit_code == 2
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "one.npy" in errors[0], r.output
    if name == "one.npz":
        assert "--format npz" in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]  # no folder one.png
    # the matching extension writes that file; a folder name still mirrors
    r = run("features", str(src), str(tmp_path / "one.npy"))
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "one.npy").ndim == 3
    r = run("features", str(src), str(tmp_path / "feats"))
    assert r.exit_code == 0 and (tmp_path / "feats" / "in.npy").is_file()


@pytest.mark.parametrize("dtype", [None, "float32", "float64"])
def test_dtype_is_the_same_for_every_input(tmp_path: Path, dtype: str | None) -> None:
    x = noise(2, 6000, 4) * 0.5
    for subtype in ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        write_audio(tmp_path / "in" / f"{subtype}.wav", x, 16000, subtype)
    args = ["--dtype", dtype] if dtype else []
    r = run("features", str(tmp_path / "in"), str(tmp_path / "o"), "--kind", "mel", *args)
    assert r.exit_code == 0, r.output
    want = dtype or "float32"
    index = [json.loads(line) for line in (tmp_path / "o" / "index.jsonl").read_text().splitlines()]
    assert len(index) == 5 and {e["dtype"] for e in index} == {want}
    for subtype in ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        arr = np.load(tmp_path / "o" / f"{subtype}.npy")
        assert arr.dtype == np.dtype(want), subtype
        audio = sf.read(str(tmp_path / "in" / f"{subtype}.wav"), dtype="float64")[0].T
        ref = FT.MelSpectrogram(fs=16000)(torch.from_numpy(audio).to(torch.float64)).numpy()
        tol = 1e-4 if want == "float32" else 1e-10
        np.testing.assert_allclose(arr, ref, rtol=tol, atol=tol * float(np.abs(ref).max()))
