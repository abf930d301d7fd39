"""The parse cache of preset texts (fxcli.preset.parse_cache).

Issue 15: one ``fxcli process`` call per file should take at most 3x FFmpeg's wall
time; importing PyYAML and composing the preset were ~15-20 ms of ~0.27 s. A preset
file read before is taken from the cache: the same Preset (values, lines, errors) as
parsing it, no PyYAML import, and no cache problem ever fails a load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fxcli.errors import PresetError
from fxcli.preset import parse_cache
from fxcli.preset.loader import BUNDLED_DIR, bundled_names, load_preset, parse_preset
from tests.conftest import ROOT

# quoted: outside the plain fast path (fxcli/preset/plain_yaml.py), which reads plain
# texts without PyYAML and without the cache
GOOD = """version: 1
description: 'a test chain'
output: {subtype: PCM_24}
chain:
  - {type: highpass, cutoff_hz: 80, order: 2}
  - type: lowpass
    cutoff_hz: 1e4
  - {type: gain, gain_db: -3}
"""


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("FXCLI_CACHE_DIR", str(d))
    return d


def _uncached(path: Path) -> object:
    text = path.read_text(encoding="utf-8")
    return parse_preset(text, str(path), path.resolve().parent)


def test_a_hit_is_the_same_preset_as_parsing(cache_dir: Path) -> None:
    for name in bundled_names():
        path = BUNDLED_DIR / f"{name}.yaml"
        first, second = load_preset(str(path)), load_preset(str(path))
        assert first == second == _uncached(path), name
    # the bundled presets come from the package's parses: nothing in the user's cache
    assert not (cache_dir / parse_cache.FILE_NAME).exists()


def test_a_warm_load_does_not_import_yaml(cache_dir: Path, tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text(GOOD)
    code = (
        "import sys\nfrom fxcli.preset.loader import load_preset\n"
        f"p = load_preset({str(preset)!r})\n"
        "print(len(p.steps), 'yaml' in sys.modules)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), FXCLI_CACHE_DIR=str(cache_dir))
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        for _ in range(2)
    ]
    assert [r.stdout.split() for r in runs] == [["3", "True"], ["3", "False"]], runs[1].stderr


def test_an_edited_preset_is_parsed_again(cache_dir: Path, tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text(GOOD)
    assert load_preset(str(preset)).steps[0].params["cutoff_hz"] == 80
    preset.write_text(GOOD.replace("cutoff_hz: 80", "cutoff_hz: 90"))
    assert load_preset(str(preset)).steps[0].params["cutoff_hz"] == 90


def test_errors_and_their_lines_are_the_same_warm_and_cold(cache_dir: Path, tmp_path: Path) -> None:
    """A preset with valid YAML but a bad value is cached as parsed; the error (file,
    line, step, key) is the same every time. Invalid YAML is never cached."""
    bad_value = tmp_path / "bad.yaml"
    bad_value.write_text(GOOD.replace("cutoff_hz: 1e4", "cutoff_hz: -5"))
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("version: 1\nchain: [\n")
    first = {}
    for path in (bad_value, bad_yaml):
        messages = []
        for _ in range(2):
            with pytest.raises(PresetError) as err:
                load_preset(str(path))
            messages.append(str(err.value))
        assert messages[0] == messages[1]
        first[path] = messages[0]
    assert first[bad_value].startswith(f"{bad_value}:6: step 1 (lowpass): key 'cutoff_hz'")
    assert first[bad_yaml].startswith(f"{bad_yaml}:"), first[bad_yaml]
    doc = json.loads((cache_dir / parse_cache.FILE_NAME).read_text())
    assert [e[0] for e in doc["presets"].values()] == [bad_value.read_text()]


def test_only_plain_documents_are_cached(cache_dir: Path, tmp_path: Path) -> None:
    """Scalars other than str, int, float, bool and None (a date, bytes) are never
    cached: such a preset is parsed, and refused, every time. Aliases expand to
    separate copies when parsed, and come back the same from the cache."""
    preset = tmp_path / "p.yaml"
    for description in ("2001-12-14", "!!binary aGVsbG8="):
        preset.write_text(f"version: 1\ndescription: {description}\n" + GOOD.split("\n", 2)[2])
        for _ in range(2):
            with pytest.raises(PresetError, match="key 'description': must be a string"):
                load_preset(str(preset))
    assert not (cache_dir / parse_cache.FILE_NAME).exists()
    preset.write_text("version: 1\nchain:\n  - &hp {type: highpass, cutoff_hz: 80}\n  - *hp\n")
    assert load_preset(str(preset)) == load_preset(str(preset)) == _uncached(preset)
    assert (cache_dir / parse_cache.FILE_NAME).exists()


@pytest.mark.parametrize("kind", ["garbage", "foreign", "wrong entry", "symlink", "fifo", "dir"])
def test_a_broken_cache_file_is_no_error(cache_dir: Path, tmp_path: Path, kind: str) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text(GOOD)
    cache_dir.mkdir()
    path = cache_dir / parse_cache.FILE_NAME
    if kind == "garbage":
        path.write_bytes(b"\xff{not json")
    elif kind == "foreign":
        path.write_text(json.dumps([1, 2, 3]))
    elif kind == "wrong entry":  # same key, a value that is not an encoded document
        key = parse_cache._key(GOOD)
        path.write_text(json.dumps({"format": 1, "presets": {key: [GOOD, {"x": 1}]}}))
    elif kind == "symlink":
        victim = tmp_path / "victim"
        victim.write_text("keep me")
        path.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    for _ in range(2):
        assert load_preset(str(preset)) == _uncached(preset)
    if kind == "symlink":
        assert (tmp_path / "victim").read_text() == "keep me"


def test_cache_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FXCLI_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    preset = tmp_path / "p.yaml"
    preset.write_text(GOOD)
    assert load_preset(str(preset)) == load_preset(str(preset))
    assert not (tmp_path / "xdg").exists()


def test_the_cache_keeps_the_newest_entries(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parse_cache, "MAX_ENTRIES", 3)
    texts = [GOOD.replace("a test chain", f"chain {i}") for i in range(5)]
    for i, text in enumerate(texts):
        p = tmp_path / f"p{i}.yaml"
        p.write_text(text)
        load_preset(str(p))
    doc = json.loads((cache_dir / parse_cache.FILE_NAME).read_text())
    assert [e[0] for e in doc["presets"].values()] == texts[2:]


def test_bundled_parses_ship_with_the_package_and_match_the_presets() -> None:
    """The bundled presets' parses (fxcli/presets/parsed.json) equal a fresh parse of
    each bundled preset: their first use after an install imports no PyYAML (issue 15:
    first run == second run). After editing a bundled preset, regenerate it:
    python -c "from fxcli.preset.loader import *; from fxcli.preset.parse_cache import *;
    BUNDLED_FILE.write_bytes(bundled_parses([(BUNDLED_DIR / f'{n}.yaml').read_text(
    encoding='utf-8') for n in bundled_names()]))" """
    texts = [(BUNDLED_DIR / f"{n}.yaml").read_text(encoding="utf-8") for n in bundled_names()]
    assert parse_cache.BUNDLED_FILE.read_bytes() == parse_cache.bundled_parses(texts)


def test_a_bundled_preset_is_not_parsed_even_without_a_cache(tmp_path: Path) -> None:
    code = (
        "import sys; from fxcli.preset.loader import load_preset; load_preset('mastering'); "
        "print('yaml' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FXCLI_CACHE_DIR": "off"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
