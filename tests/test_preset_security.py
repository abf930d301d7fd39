"""Untrusted presets (issue 13): a preset may read only regular files of bounded size
inside its own folder (``--allow-preset-paths`` lifts only the folder rule), never
/proc, /sys, /dev or a special file, and no error quotes a file's content; YAML 1.2
scalars, and hostile YAML (huge numbers, deep nesting, merge keys) is a one-line
preset error (exit 2). The attacker's files are planted in ``tmp_path``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from fxcli.cli.app import app
from fxcli.preset import files
from fxcli.preset.files import PresetFileError, read_regular_file
from fxcli.preset.loader import (
    MAX_PRESET_BYTES,
    PresetError,
    load_preset,
    parse_preset,
)
from tests.conftest import ROOT, noise, write_audio

SECRET = "s3cr3t-fxcli-4b1d-7e9a"
#: text planted in files a preset must not echo
CONTENT = "root:*:19000:0:99999:7::: " + SECRET

runner = CliRunner()

needs_posix = pytest.mark.skipif(os.name != "posix", reason="POSIX special files")


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FXCLI_TEST_SECRET", SECRET)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """``presets/`` (a legitimate ``taps.txt``; the preset under test goes here),
    ``outside/`` (a secret and a well-formed taps file), ``in.wav``."""
    d = tmp_path / "presets"
    d.mkdir()
    (d / "taps.txt").write_text("0.25, 0.5, 0.25\n")
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.txt").write_text(CONTENT + "\n")
    (out / "taps.txt").write_text("0.5 0.5\n")
    write_audio(tmp_path / "in.wav", 0.5 * noise(1, 800, 1), 8000, "PCM_16")
    return tmp_path


def write_preset(site: Path, step: str, name: str = "p.yaml") -> Path:
    p = site / "presets" / name
    p.write_text(f"version: 1\ndescription: test\nchain:\n  - {step}\n")
    return p


def cli(site: Path, preset: Path | str, *extra: str) -> tuple[int, str]:
    r = runner.invoke(
        app,
        ["process", str(site / "in.wav"), str(site / "out"), "--preset", str(preset), *extra],
    )
    return r.exit_code, r.output + (r.stderr if r.stderr not in r.output else "")


def error_line(code: int, out: str) -> str:
    """The one error line of a preset error (exit 2); nothing of the secrets in it."""
    assert code == 2, out
    assert SECRET not in out and "root:*" not in out, out
    lines = [x for x in out.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    return lines[0]


# --------------------------------------------------------------------------- file rules


def test_relative_file_inside_the_folder_still_works(site: Path) -> None:
    p = write_preset(site, "{type: fir, coefficients_file: taps.txt}")
    code, out = cli(site, p)
    assert code == 0, out
    assert (site / "out" / "in.wav").is_file()
    sub = site / "presets" / "sub"
    sub.mkdir()
    (sub / "t.txt").write_text("1\n")
    (site / "presets" / "link.txt").symlink_to(sub / "t.txt")  # a link inside the folder
    for value in ("sub/t.txt", "./sub/../taps.txt", "link.txt", str(sub / "t.txt")):
        preset = load_preset(
            str(write_preset(site, f"{{type: fir, coefficients_file: '{value}'}}"))
        )
        assert preset.steps[0].params["coefficients"]


def _plant(site: Path, kind: str) -> str:
    """Plant the attacker's file for ``kind``; the value a preset gives for it."""
    d = site / "presets"
    if kind == "absolute":
        return str(site / "outside" / "secret.txt")
    if kind == "dotdot":
        return "../outside/secret.txt"
    if kind == "symlink":
        (d / "innocent.txt").symlink_to(site / "outside" / "secret.txt")
        return "innocent.txt"
    if kind == "symlinked_dir":
        (d / "lib").symlink_to(site / "outside", target_is_directory=True)
        return "lib/secret.txt"
    if kind == "proc":
        return "/proc/self/environ"
    if kind == "dev":
        return "/dev/zero"
    if kind == "symlink_to_proc":
        (d / "env.txt").symlink_to("/proc/self/environ")
        return "env.txt"
    if kind == "fifo":
        os.mkfifo(d / "pipe.txt")
        return "pipe.txt"
    if kind == "directory":
        (d / "folder.txt").mkdir()
        return "folder.txt"
    if kind == "oversized":
        with open(d / "huge.txt", "wb") as f:
            f.truncate(64 * 2**20 + 1)  # sparse: over both limits
        return "huge.txt"
    raise AssertionError(kind)


OUTSIDE = "is outside the preset's folder"
RULE = "presets may only read files in their own folder (use --allow-preset-paths"
CASES = [
    ("absolute", OUTSIDE),
    ("dotdot", OUTSIDE),
    ("symlink", OUTSIDE),
    ("symlinked_dir", OUTSIDE),
    ("proc", OUTSIDE),
    ("dev", OUTSIDE),
    ("symlink_to_proc", OUTSIDE),
    ("fifo", "is a FIFO, not a regular file"),
    ("directory", "is a folder, not a regular file"),
    ("oversized", "is larger than"),
]


@needs_posix
@pytest.mark.parametrize("key", ["coefficients_file", "ir_file"])
@pytest.mark.parametrize(("kind", "expected"), CASES)
def test_preset_cannot_read_files_outside_or_special(
    site: Path, key: str, kind: str, expected: str
) -> None:
    value = _plant(site, kind)
    stype = "fir" if key == "coefficients_file" else "convolve"
    p = write_preset(site, f"{{type: {stype}, {key}: '{value}'}}")
    line = error_line(*cli(site, p))
    # the established format: FILE:LINE: step N (TYPE): key 'KEY': ...
    assert line.startswith(f"error: {p}:4: step 0 ({stype}): key '{key}': {value!r} "), line
    assert expected in line, line
    if expected == OUTSIDE:
        assert RULE in line and str((site / "presets").resolve()) in line
    assert not (site / "out").exists()


@needs_posix
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("proc", "is on a kernel pseudo-filesystem"),
        ("dev", "is on a kernel pseudo-filesystem"),
        ("symlink_to_proc", "is on a kernel pseudo-filesystem"),
        ("fifo", "is a FIFO, not a regular file"),
        ("directory", "is a folder, not a regular file"),
        ("oversized", "is larger than 16 MiB"),
    ],
)
def test_allow_preset_paths_lifts_only_the_folder_rule(
    site: Path, kind: str, expected: str
) -> None:
    value = _plant(site, kind)
    p = write_preset(site, f"{{type: fir, coefficients_file: '{value}'}}")
    line = error_line(*cli(site, p, "--allow-preset-paths"))
    assert expected in line and "key 'coefficients_file'" in line, line


def test_allow_preset_paths_reads_outside_files(site: Path) -> None:
    p = write_preset(site, f"{{type: fir, coefficients_file: '{site / 'outside' / 'taps.txt'}'}}")
    assert error_line(*cli(site, p)).endswith("for trusted presets)")
    code, out = cli(site, p, "--allow-preset-paths")
    assert code == 0, out
    # ... and the secret, outside, is still not echoed: it is not a list of numbers
    p = write_preset(site, "{type: fir, coefficients_file: ../outside/secret.txt}")
    line = error_line(*cli(site, p, "--allow-preset-paths"))
    assert line.endswith("'../outside/secret.txt': not a list of numbers (line 1)"), line


def test_file_content_is_never_quoted(site: Path) -> None:
    d = site / "presets"
    (d / "taps.txt").write_text(f"0.1, 0.2\n0.3\n{CONTENT}\n")
    p = write_preset(site, "{type: fir, coefficients_file: taps.txt}")
    line = error_line(*cli(site, p))
    assert line.endswith("key 'coefficients_file': 'taps.txt': not a list of numbers (line 3)")
    (d / "bin.txt").write_bytes(b"\xff\xfe" + CONTENT.encode())
    p = write_preset(site, "{type: fir, coefficients_file: bin.txt}")
    assert "not a text file of numbers" in error_line(*cli(site, p))
    # a .npy whose header carries text (numpy's own message would repeat it)
    (d / "evil.npy").write_bytes(b"\x93NUMPY\x01\x00" + b"\x40\x00" + CONTENT.encode()[:64])
    p = write_preset(site, "{type: fir, coefficients_file: evil.npy}")
    assert "not a valid .npy file" in error_line(*cli(site, p))
    np.save(d / "obj.npy", np.array([{"x": SECRET}, 2], dtype=object), allow_pickle=True)
    p = write_preset(site, "{type: fir, coefficients_file: obj.npy}")
    assert "pickle" in error_line(*cli(site, p))
    np.save(d / "ok.npy", np.array([0.5, 0.5]))
    assert load_preset(str(write_preset(site, "{type: fir, coefficients_file: ok.npy}")))
    # an impulse response that is text: read when the chain is built, never quoted
    (d / "ir.wav").write_text(CONTENT)
    p = write_preset(site, "{type: convolve, ir_file: ir.wav}")
    code, out = cli(site, p)
    assert code != 0 and SECRET not in out and "root:*" not in out, out
    assert "not an audio file soundfile can read" in out


@needs_posix
def test_proc_self_environ_never_reaches_the_output(site: Path) -> None:
    """End to end in a real process, whose /proc/self/environ holds the secret."""
    p = write_preset(site, "{type: fir, coefficients_file: /proc/self/environ}")
    q = write_preset(site, "{type: convolve, ir_file: /proc/self/environ}", "q.yaml")
    env = dict(os.environ, PYTHONPATH=str(ROOT), FXCLI_TEST_SECRET=SECRET)
    for preset in (p, q):
        for extra in ([], ["--allow-preset-paths"]):
            r = subprocess.run(
                [sys.executable, "-m", "fxcli", "process", str(site / "in.wav"),
                 str(site / "out"), "-p", str(preset), *extra],
                capture_output=True, text=True, timeout=120, env=env,
            )  # fmt: skip
            line = error_line(r.returncode, r.stdout + r.stderr)
            assert ("pseudo-filesystem" if extra else OUTSIDE) in line, line


@needs_posix
def test_reader_checks_the_opened_file(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: with the checks before open() skipped (as if the file were
    swapped in between), fstat on the descriptor (opened O_NONBLOCK: a FIFO does not
    hang) refuses FIFOs, devices and procfs, and no more than limit + 1 bytes are read."""
    d = site / "presets"
    os.mkfifo(d / "fifo")
    monkeypatch.setattr(files, "_check_path", lambda path, limit: None)
    for path, why in [
        (d / "fifo", "is a FIFO"),
        (Path("/dev/zero"), "is a device"),
        (Path("/proc/self/environ"), "pseudo-filesystem"),
        (d, "is a folder"),
    ]:
        with pytest.raises(PresetFileError, match=why):
            read_regular_file(path, 1024)
    monkeypatch.setattr(files, "_check_stat", lambda st, limit: None)  # size 0 claimed
    with pytest.raises(files.FileTooLargeError, match="larger than 16 bytes") as e:
        read_regular_file(site / "outside" / "secret.txt", 16)
    assert e.value.size == 17
    assert read_regular_file(d / "taps.txt", 1024) == b"0.25, 0.5, 0.25\n"


def test_text_presets_use_the_working_folder(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(site / "presets")
    text = "version: 1\nchain:\n  - {type: fir, coefficients_file: %s}\n"
    assert parse_preset(text % "taps.txt", "t.yaml").steps[0].params["coefficients"]
    with pytest.raises(PresetError, match=OUTSIDE):
        parse_preset(text % "../outside/taps.txt", "t.yaml")
    preset = parse_preset(text % "../outside/taps.txt", "t.yaml", allow_outside=True)
    assert preset.steps[0].params["coefficients"] == [0.5, 0.5]


@needs_posix
def test_convolve_api_refuses_special_files(site: Path) -> None:
    from fxcli.steps.space import Convolve

    os.mkfifo(site / "ir.fifo")
    for path, why in [(site / "ir.fifo", "FIFO"), ("/dev/zero", "pseudo-filesystem")]:
        with pytest.raises(ValueError, match=why):
            Convolve(str(path), fs=8000)


# --------------------------------------------------------------------------- preset files


def test_preset_path_that_is_a_folder_or_too_large(site: Path) -> None:
    line = error_line(*cli(site, site / "presets"))
    assert "is a folder, not a preset file" in line and "no such file" not in line
    big = site / "presets" / "big.yaml"
    big.write_text("version: 1\n# " + "x" * MAX_PRESET_BYTES + "\n")
    line = error_line(*cli(site, big))
    assert "larger than 1 MiB" in line and "limit for presets" in line
    if os.name == "posix":
        os.mkfifo(site / "presets" / "fifo.yaml")
        assert "not a regular file" in error_line(*cli(site, site / "presets" / "fifo.yaml"))


# --------------------------------------------------------------------------- YAML 1.2


def _parse(step: str, top: str = "") -> object:
    return parse_preset(f"version: 1\n{top}chain:\n  - {step}\n", "y.yaml")


def test_yaml_1_1_booleans_stay_strings() -> None:
    # remix `to` allows mono, stereo, swap: `no` is now refused as the string it is
    with pytest.raises(PresetError, match=r"key 'to': got 'no'; allowed: one of mono"):
        _parse("{type: remix, to: no}")
    for word in ("no", "off", "yes", "on", "No", "OFF", "y", "n"):
        preset = _parse("{type: gain, gain_db: 1}", f"description: {word}\n")
        assert preset.description == word  # type: ignore[attr-defined]
        with pytest.raises(PresetError, match=f"key 'normalize_ir': got '{word}'"):
            _parse(f"{{type: convolve, ir_file: x.wav, normalize_ir: {word}}}")
    assert yaml.safe_load("a: no")["a"] is False  # yaml.SafeLoader itself is untouched
    preset = parse_preset("version: 1\nchain:\n  - {type: limiter, true_peak: true}\n", "y.yaml")
    assert preset.steps[0].params["true_peak"] is True


def test_sexagesimal_is_not_a_number() -> None:
    for value in ("-1:30", "1:30", "1:30.5", "190:20:30"):
        with pytest.raises(PresetError, match=f"key 'gain_db': got '{value}'"):
            _parse(f"{{type: gain, gain_db: {value}}}")
    assert yaml.safe_load("a: -1:30")["a"] == -90  # YAML 1.1, outside fxcli
    for value, expected in (("-1.5", -1.5), ("1e1", 10.0), ("-3", -3.0), ("0x1", 1.0)):
        assert _parse(f"{{type: gain, gain_db: {value}}}").steps[0].params["gain_db"] == expected  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{type: gain, gain_db: " + "9" * 5000 + "}", "cannot be converted"),
        ("{type: gain, gain_db: -" + "9" * 400 + "}", "value out of range or too large"),
        ("{type: gain, gain_db: " + "[" * 10000 + "]" * 10000 + "}", "nested too deeply"),
        ("{type: gain, gain_db: " + "[" * 100 + "]" * 100 + "}", "nested more than 64"),
        ("{<<: {type: gain}, gain_db: 1}", "y.yaml: line 4: merge keys (<<) are not supported"),
    ],
)
def test_hostile_yaml_is_a_one_line_preset_error(site: Path, body: str, expected: str) -> None:
    p = site / "presets" / "y.yaml"
    p.write_text(f"version: 1\ndescription: x\nchain:\n  - {body}\n")
    line = error_line(*cli(site, p))
    assert expected in line and len(line) < 300, line
    with pytest.raises(PresetError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_preset(str(p))


def test_merge_key_anywhere_names_its_line() -> None:
    text = "version: 1\nbase: &b {type: gain}\nchain:\n  - <<: *b\n    gain_db: 1\n"
    with pytest.raises(PresetError, match=r"line 4: merge keys \(<<\) are not supported"):
        parse_preset(text, "m.yaml")


def test_missing_and_existing_outside_files_get_the_same_answer(site: Path) -> None:
    """A preset cannot probe what exists outside its folder: a missing outside file and
    an existing one both get the folder rule (a missing one said "no such file")."""
    answers = []
    for target in ("../outside/secret.txt", "../outside/nope.txt", "/no/such/dir/x.txt"):
        p = write_preset(site, f"{{type: fir, coefficients_file: '{target}'}}")
        line = error_line(*cli(site, p))
        assert "outside the preset's folder" in line and "No such file" not in line, line
        answers.append(line.split("outside the preset's folder")[1])
    assert len(set(answers)) == 1


def test_yaml_12_integers() -> None:
    """YAML 1.2 integers: a leading zero stays decimal (YAML 1.1 read 010 as octal 8),
    0o and 0x keep their bases, 1_000 and 0b11 are not numbers."""
    from fxcli.preset.yaml_text import PresetLoader

    def load(text: str) -> object:
        return yaml.load(f"a: {text}", Loader=PresetLoader)["a"]

    assert load("010") == 10 and load("-007") == -7
    assert load("0o10") == 8 and load("0x1F") == 31
    assert load("1_000") == "1_000" and load("0b11") == "0b11"
    assert load("1e3") == 1000.0 and load("no") == "no"


def test_c_parser_reads_presets_like_the_python_one_and_deep_texts_stay_safe() -> None:
    """Start-up (issue 15): presets are composed by libyaml's C parser where PyYAML has
    it; the nodes, values, line numbers and errors equal the Python composer's. Its
    composer recurses in C without a limit (100,000 nested ``[`` crash the process),
    so texts whose nesting could be deep go to the Python composer, whose
    RecursionError is reported as "nested too deeply"."""
    from fxcli.preset import loader
    from fxcli.preset import yaml_text as L

    if L._C_LOADER is None:
        pytest.skip("PyYAML was built without libyaml: only the Python composer exists")
    for name in loader.bundled_names():
        text = (loader.BUNDLED_DIR / f"{name}.yaml").read_text(encoding="utf-8")
        assert L._loader_for(text) is L._C_LOADER
        c_data, c_lines = L.load_yaml(text, name)
        root = yaml.compose(text, Loader=L.PresetLoader)
        py_lines: dict[int, int] = {}
        py_data = L._construct(root, py_lines, L.PresetLoader(""))
        assert c_data == py_data
        assert sorted(c_lines.values()) == sorted(py_lines.values())
    deep = "a: " + "[" * 100_000 + "]" * 100_000
    assert L._loader_for(deep) is L.PresetLoader
    with pytest.raises(L.PresetError, match="nested too deeply"):
        L.load_yaml(deep, "deep.yaml")
