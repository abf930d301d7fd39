"""The fast path for plain preset texts (fxcli/preset/plain_yaml.py) against PyYAML.

issue 15: the first run of a preset text the parse cache had not seen imported
PyYAML (~15 ms) and was ~20 ms of CPU slower than the second. The fast path must give
exactly what fxcli.preset.yaml_text.load_yaml gives (values type for type, the line
of every mapping and list) or decline (None) so PyYAML reads the text; it must never
accept a text PyYAML rejects or reads differently."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fxcli.errors import PresetError
from fxcli.preset.plain_yaml import parse_plain
from fxcli.preset.yaml_text import load_yaml

ROOT = Path(__file__).resolve().parent.parent


def _same(a: Any, la: dict[int, int], b: Any, lb: dict[int, int], path: str = "") -> None:
    assert type(a) is type(b), (path, a, b)
    if isinstance(a, dict):
        assert list(a) == list(b), path
        assert la.get(id(a)) == lb.get(id(b)), (path, la.get(id(a)), lb.get(id(b)))
        for k in a:
            _same(a[k], la, b[k], lb, f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        assert la.get(id(a)) == lb.get(id(b)), (path, la.get(id(a)), lb.get(id(b)))
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, la, y, lb, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)
        if isinstance(a, float):  # -0.0 vs 0.0
            assert str(a) == str(b), (path, a, b)


def _agrees(text: str) -> bool:
    """True when the fast path accepted ``text`` (and then it matches PyYAML)."""
    got = parse_plain(text)
    if got is None:
        return False
    try:
        ref = load_yaml(text, "t")
    except PresetError as exc:  # the fast path must not accept what PyYAML rejects
        raise AssertionError(f"accepted a text PyYAML rejects: {exc}\n{text}") from None
    _same(got[0], got[1], ref[0], ref[1])
    return True


PRESET_FILES = sorted(
    [*(ROOT / "fxcli" / "presets").glob("*.yaml"), *(ROOT / "examples").rglob("*.yaml")]
)


@pytest.mark.parametrize("path", PRESET_FILES, ids=lambda p: p.name)
def test_bundled_and_example_presets_take_the_fast_path(path: Path) -> None:
    assert _agrees(path.read_text()), f"{path} fell back to PyYAML"


ACCEPTED = [
    "version: 1\nchain:\n  - {type: gain, gain_db: -3}\n",
    "version: 1\nchain:\n- {type: gain, gain_db: +3}\n",  # a sequence at the key's indent
    "version: 1\nchain:\n  - type: gain\n    gain_db: 3.\n  - type: polarity\n",
    "version: 1\nchain:\n  -\n    type: gain\n    gain_db: -0.0\n",
    "version: 1  # trailing comment\n# a comment line\nchain: []\n",
    "a: 1e3\nb: -1.5e-3\nc: 010\nd: -0\ne: ~\nf:\ng: null\nh: TRUE\ni: False\n",
    "a: yes\nb: no\nc: on\nd: off\ne: y\n",  # YAML 1.2: strings
    "a: a-b\nb: butterworth  # c\nc: linkwitz_riley\n",
    "a: {x: [1, 2.5, three], y: {z: []}, w: {}}\n",
    "description: >-\n  first line, it's fine\n  second: line\nversion: 1\n",
    "d: |\n  one\n  two\nv: 1\n",
    "d: >\n  folded\n  text\n",
    "d: |-\n  kept # not a comment\n",
    "outer:\n  inner:\n    - 1\n    - {k: v}\n  other: 2\n",
]

DECLINED = [
    "",
    "# only a comment\n",
    "- a\n- b\n",  # not a mapping
    "a: 1.5e3\n",  # a string for PyYAML's YAML 1.2 rules
    "a: 0x10\nb: 0o7\n",
    "a: 1_000\n",
    "a: .5\n",
    "a: 2024-01-01\n",
    "a: 'quoted'\n",
    'a: "quoted"\n',
    "a: &x 1\nb: *x\n",
    "<<: {a: 1}\n",
    "a: !!str 1\n",
    "a: 1\na: 2\n",  # duplicate: PyYAML's error
    "a:\tb\n",
    "a: caf\u00e9\n",
    "a: one\n  two\n",  # a multi-line plain scalar
    "a: b: c\n",
    "a: x:y\n",
    "d: >\n  one\n\n  two\n",  # a blank line inside a block scalar
    "d: >\n  one \n",  # trailing spaces
    "d: >\n  one\n    more\n",
    "d: >2\n  one\n",
    "---\na: 1\n",
    "a: {b: 1,}\n",
    "a: {b: }\n",
    "a: [1, [2, {c: d}]] x\n",
    "null: 1\n",
    "a: 1\r\nb: 2\r\n",
    "a: " + "1" * 5000 + "\n",
    "  a: 1\n",  # indented document
    "a:\n    b: 1\n  c: 2\n",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_subset_texts_are_read_as_pyyaml_reads_them(text: str) -> None:
    assert _agrees(text)


@pytest.mark.parametrize("text", DECLINED)
def test_texts_outside_the_subset_go_to_pyyaml(text: str) -> None:
    assert parse_plain(text) is None


_SCALARS = [
    "0", "1", "-3", "+4", "007", "1.0", "-2.5", "3.", "1e3", "-2E-2", "1.5e+3", "1.5e3",
    "true", "False", "null", "~", "yes", "no", "on", "butterworth", "a b", "x-1",
    "low.pass", "2024-01-01", "1_0", ".5", "a#b", "0x1f", "inf", ".inf", "NaN", "=",
]  # fmt: skip


def _random_preset(rng: random.Random) -> str:
    ind = rng.choice([2, 4])
    pad = " " * ind
    out = ["version: 1"]
    if rng.random() < 0.5:
        out.append(f"description: {rng.choice(['plain words', 'a, b (c)'])}")
    out.append("chain:")
    dash = pad if rng.random() < 0.7 else ""
    for _ in range(rng.randint(0, 4)):
        keys = rng.sample(["type", "gain_db", "cutoff_hz", "order", "q", "design"], 3)
        vals = [rng.choice(_SCALARS) for _ in keys]
        if rng.random() < 0.5:
            body = ", ".join(f"{k}: {v}" for k, v in zip(keys, vals, strict=True))
            out.append(f"{dash}- {{{body}}}")
        else:
            out.append(f"{dash}- {keys[0]}: {vals[0]}")
            for k, v in zip(keys[1:], vals[1:], strict=True):
                out.append(f"{dash}  {k}: {v}" + (" # c" if rng.random() < 0.2 else ""))
    if rng.random() < 0.3:
        out.append(f"output: {{format: {rng.choice(_SCALARS)}}}")
    return "\n".join(out) + "\n"


def test_generated_presets_agree_with_pyyaml() -> None:
    rng = random.Random(15)
    accepted = 0
    for _ in range(1500):
        accepted += _agrees(_random_preset(rng))
    assert accepted > 300  # the fast path is taken for most plain texts


def test_loading_a_plain_preset_imports_no_pyyaml(tmp_path: Path) -> None:
    # issue 15: the point of the fast path, checked in a fresh interpreter
    preset = tmp_path / "p.yaml"
    preset.write_text(
        "version: 1\ndescription: >-\n  a user's chain\nchain:\n"
        "  - {type: highpass, cutoff_hz: 20, order: 2}\n  - type: gain\n    gain_db: -1\n"
    )
    code = (
        "import sys\n"
        "from fxcli.preset.loader import parse_preset\n"
        f"p = parse_preset(open({str(preset)!r}).read(), {str(preset)!r})\n"
        "print(len(p.steps), 'yaml' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.split() == ["2", "False"]
