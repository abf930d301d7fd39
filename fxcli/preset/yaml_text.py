"""Presets' YAML: PyYAML's safe loader with YAML 1.2 scalars, building plain data and
the line of each mapping and list (:func:`load_yaml`).

Only ``yaml.SafeLoader`` (:class:`PresetLoader`) is used: presets may come from
untrusted places. Collections are plain mappings and lists only, with bounded size
(aliases), depth and nesting; every problem is a one-line :class:`PresetError`.
Importing PyYAML costs ~15 ms (its reader compiles a large Unicode regular
expression), so :mod:`fxcli.preset.loader` imports this module only for a preset
text that :mod:`fxcli.preset.parse_cache` does not already hold.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from fxcli.errors import PresetError


class PresetLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 scalars: only ``true``/``false`` are booleans
    (YAML 1.1 also read ``yes``, ``no``, ``on``, ``off``, so ``to: no`` became False),
    no sexagesimal numbers (``-1:30`` was -90), and exponent floats without a dot
    (``1e3``; PyYAML's YAML 1.1 rules made ``cutoff_hz: 1e3`` the string ``'1e3'``).
    The resolver table is a filtered copy: ``yaml.SafeLoader`` is not changed."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
#: PyYAML's YAML 1.1 int and float forms without the sexagesimal ones (``1:30``)
_YAML12_RESOLVERS = {
    _BOOL_TAG: re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    # YAML 1.2 core: decimal (leading zeros stay decimal: 010 is 10, not YAML 1.1's
    # octal 8), 0o octal, 0x hex; no underscores, no 0b
    _INT_TAG: re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    _FLOAT_TAG: re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
            |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
}


def _yaml12_resolvers(
    table: dict[Any, list[tuple[str, re.Pattern[str]]]],
) -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    """A copy of a loader's implicit resolver table with the YAML 1.1-only forms
    dropped: bool words other than true/false (first letters y, n, o lose the bool
    resolver) and sexagesimal ints and floats."""
    out: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in table.items():
        kept = []
        for tag, regexp in entries:
            if tag == _BOOL_TAG and first not in ("t", "T", "f", "F"):
                continue
            kept.append((tag, _YAML12_RESOLVERS.get(tag, regexp)))
        if kept:
            out[first] = kept
    return out


PresetLoader.yaml_implicit_resolvers = _yaml12_resolvers(yaml.SafeLoader.yaml_implicit_resolvers)


def _construct_int12(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """YAML 1.2 ints (PyYAML's constructor reads a leading 0 as octal)."""
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


PresetLoader.add_constructor(_INT_TAG, _construct_int12)
PresetLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


#: libyaml's C parser (10-20x faster: the bundled presets' listing went from about
#: 90 to 6 ms) composes the same nodes; its composer recurses in C without Python's
#: recursion limit (100,000 nested ``[`` crash the process), so it only reads texts
#: whose nesting cannot exceed :data:`_C_NESTING_BOUND`. Each nesting level needs one
#: of ``[ { - ? :`` or a new line, so their count bounds the depth; texts above the
#: bound go to the Python composer, whose RecursionError becomes a one-line preset error.
_C_LOADER: type | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _CPresetLoader(yaml.CSafeLoader):  # type: ignore[misc,name-defined]
        """:class:`PresetLoader`'s resolvers on libyaml's parser."""

    _CPresetLoader.yaml_implicit_resolvers = PresetLoader.yaml_implicit_resolvers
    _C_LOADER = _CPresetLoader

_C_NESTING_BOUND = 5000


def _loader_for(text: str) -> type:
    """The C loader where available and safe for ``text`` (see :data:`_C_LOADER`)."""
    if _C_LOADER is None:
        return PresetLoader
    bound = sum(text.count(c) for c in "[{-?:\n")
    return _C_LOADER if bound <= _C_NESTING_BOUND else PresetLoader


#: nodes built per preset at most: aliases can expand a few lines of YAML
#: exponentially ("billion laughs"); real presets build a few hundred
MAX_YAML_NODES = 100_000

#: nesting depth of mappings and lists at most (a preset needs 4)
MAX_YAML_DEPTH = 64


_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class _Budget:
    """Nodes left to build, and the collection nodes being built (alias cycles)."""

    def __init__(self) -> None:
        self.left = MAX_YAML_NODES
        self.open: set[int] = set()
        self.depth = 0


def _construct(
    node: yaml.Node,
    lines: dict[int, int],
    loader: yaml.SafeLoader,
    budget: _Budget | None = None,
) -> Any:
    """Build Python data from a composed node, recording each mapping's line by id().

    Recursive aliases (``&a [*a]``) and alias expansions beyond
    :data:`MAX_YAML_NODES` nodes are a :class:`PresetError`, not a RecursionError
    or an exhausted memory."""
    if budget is None:
        budget = _Budget()
    budget.left -= 1
    if budget.left < 0:
        raise PresetError(
            f"line {node.start_mark.line + 1}: the document expands to more than "
            f"{MAX_YAML_NODES} values (aliases); not a preset"
        )
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if id(node) in budget.open:
            raise PresetError(f"line {node.start_mark.line + 1}: recursive alias")
        if node.tag not in _PLAIN_TAGS:  # e.g. !!python/object/apply on a list
            raise PresetError(
                f"line {node.start_mark.line + 1}: tag {node.tag!r} is not allowed "
                "(plain YAML mappings and lists only)"
            )
        if budget.depth >= MAX_YAML_DEPTH:
            raise PresetError(
                f"line {node.start_mark.line + 1}: nested more than {MAX_YAML_DEPTH} "
                "levels deep; not a preset"
            )
        budget.open.add(id(node))
        budget.depth += 1
        try:
            return _construct_collection(node, lines, loader, budget)
        finally:
            budget.open.discard(id(node))
            budget.depth -= 1
    try:
        return loader.construct_object(node, deep=True)  # scalars: SafeLoader's own rules
    except (ValueError, OverflowError):  # int('1' * 5000), an impossible date, ...
        kind = str(node.tag).rsplit(":", 1)[-1]
        raise PresetError(
            f"line {node.start_mark.line + 1}: the {kind} value cannot be converted "
            "(too many digits, or out of range)"
        ) from None


def _construct_collection(
    node: yaml.Node, lines: dict[int, int], loader: yaml.SafeLoader, budget: _Budget
) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for k, v in node.value:
            if k.tag == "tag:yaml.org,2002:merge":
                raise PresetError(
                    f"line {k.start_mark.line + 1}: merge keys (<<) are not supported"
                )
            key = _construct(k, lines, loader, budget)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise PresetError(f"line {k.start_mark.line + 1}: mapping keys must be plain words")
            if key in out:
                raise PresetError(f"line {k.start_mark.line + 1}: duplicate key {key!r}")
            out[key] = _construct(v, lines, loader, budget)
        lines[id(out)] = node.start_mark.line + 1
        return out
    seq = [_construct(v, lines, loader, budget) for v in node.value]
    lines[id(seq)] = node.start_mark.line + 1
    return seq


def load_yaml(text: str, source: str) -> tuple[Any, dict[int, int]]:
    """Parse YAML safely; return the data and a map ``id(container) -> line``."""
    try:
        root = yaml.compose(text, Loader=_loader_for(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PresetError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise PresetError(
            f"{source}: invalid YAML: nested too deeply (at most {MAX_YAML_DEPTH} levels)"
        ) from None
    except (ValueError, OverflowError):  # pragma: no cover - the composer builds no values
        raise PresetError(f"{source}: invalid YAML: a value cannot be read") from None
    lines: dict[int, int] = {}
    if root is None:
        return None, lines
    try:
        return _construct(root, lines, PresetLoader("")), lines
    except PresetError as exc:
        raise PresetError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise PresetError(f"{source}: invalid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # pragma: no cover - MAX_YAML_DEPTH stops it first
        raise PresetError(f"{source}: invalid YAML: nested too deeply") from None
