"""The package's import graph (issue 14): no import cycle, imports only point down.

Layers, bottom to top: ``dsp`` <- ``steps`` <- ``preset.build``/``engine`` <-
``batch``/``measure`` <- ``cli``. ``preset.spec`` and ``preset.files`` are the
shared vocabulary (limits, file rules) that steps read; ``io`` is below the
engine. The graph is read from the source with :mod:`ast` (function-level imports
included), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "fxcli"


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = p
    return mods


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in mods]
                # `from P import m` where P.m is a module imports P.m (P is its parent)
                targets = subs if len(subs) == len(node.names) else [mod, *subs]
            edges[m].update(t for t in targets if t in mods and t != m)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """Guards the test above against passing vacuously."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# what each layer may not import (prefixes); the package root and _version are free
FORBIDDEN = {
    "fxcli.dsp": (
        "fxcli.steps",
        "fxcli.preset",
        "fxcli.engine",
        "fxcli.batch",
        "fxcli.measure",
        "fxcli.cli",
        "fxcli.io",
        "fxcli.wave",
        "fxcli.filter",
        "fxcli.effect",
    ),
    "fxcli.steps": (
        "fxcli.preset.loader",
        "fxcli.preset.build",
        "fxcli.engine",
        "fxcli.batch",
        "fxcli.measure",
        "fxcli.cli",
        "fxcli.wave",
        "fxcli.filter",
        "fxcli.effect",
    ),
    "fxcli.preset": ("fxcli.engine", "fxcli.batch", "fxcli.measure", "fxcli.cli", "fxcli.wave"),
    "fxcli.io": ("fxcli.steps", "fxcli.engine", "fxcli.batch", "fxcli.measure", "fxcli.cli"),
    "fxcli.engine": ("fxcli.batch", "fxcli.measure", "fxcli.cli"),
    "fxcli.batch": ("fxcli.cli",),
    "fxcli.measure": ("fxcli.cli",),
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_down(layer: str) -> None:
    bad = []
    for mod, targets in _graph().items():
        if mod == layer or mod.startswith(layer + "."):
            for t in targets:
                if any(t == f or t.startswith(f + ".") for f in FORBIDDEN[layer]):
                    bad.append(f"{mod} -> {t}")
    assert bad == []


def test_no_importlib_work_arounds_in_the_package() -> None:
    """Modules import each other by name; the package root's lazy attribute map is
    the one place that resolves names at run time."""
    users = [
        str(p.relative_to(PKG.parent))
        for p in PKG.rglob("*.py")
        if "importlib.import_module(" in p.read_text(encoding="utf-8")
    ]
    assert users == []


def test_no_package_attribute_shadows_a_submodule() -> None:
    """``fxcli.dsp.sosfilt`` was both a module and (in ``fxcli.dsp``) the function it
    exports, so the module could only be reached through importlib: every submodule
    must be what its package's attribute of that name is."""
    import importlib
    import pkgutil

    import fxcli

    shadowed = []

    def walk(pkg: object) -> None:
        for m in pkgutil.iter_modules(pkg.__path__):  # type: ignore[attr-defined]
            if m.name == "__main__":
                continue
            full = f"{pkg.__name__}.{m.name}"  # type: ignore[attr-defined]
            mod = importlib.import_module(full)
            if getattr(pkg, m.name, None) is not mod:
                shadowed.append(full)
            if m.ispkg:
                walk(mod)

    walk(fxcli)
    assert shadowed == []


def test_every_error_class_has_the_one_root() -> None:
    """Nine unrelated exception classes with four message formats became one root:
    every exception class the package defines derives from ``FxcliError`` (control
    flow signals such as a cancelled run excepted)."""
    import importlib
    import inspect
    import pkgutil

    import fxcli
    from fxcli.errors import FxcliError

    allowed = {"Cancelled"}  # a cancelled run: control flow, not an error to report
    outside = []

    def walk(pkg: object) -> None:
        for m in pkgutil.iter_modules(pkg.__path__):  # type: ignore[attr-defined]
            if m.name == "__main__":
                continue
            mod = importlib.import_module(f"{pkg.__name__}.{m.name}")  # type: ignore[attr-defined]
            for name, obj in vars(mod).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == mod.__name__
                    and not issubclass(obj, FxcliError)
                    and name not in allowed
                ):
                    outside.append(f"{mod.__name__}.{name}")
            if m.ispkg:
                walk(mod)

    walk(fxcli)
    assert outside == []


# --------------------------------------------------------------------- CLI words
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
#: flags of other programs that messages below cli/ may name
_OTHER_PROGRAMS_FLAGS = {"--force-reinstall"}


def test_cli_words_only_in_cli() -> None:
    """Issue 14: CLI words (``--flag``) only in ``fxcli/cli``. Messages below it name
    options in library words through ``FxcliError.about``/``for_option``, which the CLI
    words as flags (``cli_text``); a string literal naming a flag (docstrings aside)
    fails here."""
    found = []
    for path in sorted(PKG.rglob("*.py")):
        if path.relative_to(PKG).parts[0] == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) in docs:
                    continue
                flags = set(_FLAG.findall(node.value)) - _OTHER_PROGRAMS_FLAGS
                if flags:
                    found.append(f"{path.relative_to(PKG)}:{node.lineno}: {sorted(flags)}")
    assert found == []


def test_option_words_library_and_cli() -> None:
    """An error naming options says ``skip_existing`` to the library and
    ``--skip-existing`` on the command line; values are never parsed as a template
    (a path with braces), and pickling (Ray) keeps the options."""
    import pickle

    from fxcli.cli.options import cli_text
    from fxcli.errors import PresetError, UsageError

    exc = UsageError.about(
        "output {dest} exists (use {overwrite} or {skip_existing})", dest="a{0}}.wav"
    )
    assert str(exc) == "output a{0}}.wav exists (use overwrite or skip_existing)"
    assert cli_text(exc) == "output a{0}}.wav exists (use --overwrite or --skip-existing)"
    assert exc.option == "overwrite" and exc.options == ("overwrite", "skip_existing")
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is UsageError and cli_text(again) == cli_text(exc)
    wrapped = PresetError.wrapping(exc, "p.yaml:3: {x}: ")
    assert cli_text(wrapped) == "p.yaml:3: {x}: " + cli_text(exc)
    assert cli_text(UsageError.for_option("device", ": no GPU")) == "--device: no GPU"
    assert str(UsageError.for_option("shard", "'x': bad")) == "shard 'x': bad"
