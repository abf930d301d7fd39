"""A fast path for plain preset texts: the YAML most presets are written in, read
without importing PyYAML (issue 15: importing it costs ~15 ms, its reader compiles a
large Unicode regular expression, so the first run of a preset text the parse cache
had not seen was ~20 ms of CPU slower than the second).

:func:`parse_plain` accepts a strict subset and returns exactly what
:func:`fxcli.preset.yaml_text.load_yaml` returns for it (the data, and the line of
each mapping and list by ``id``), or ``None`` for anything outside the subset, which
then goes to PyYAML (its errors and messages included). The subset:

- printable ASCII, ``\\n`` line breaks, spaces for indentation; comments (``#`` at a
  line's start or after a space); no quoted scalars (quotes only inside block
  scalars), tabs, anchors, tags, directives or document markers;
- block mappings of plain-word keys (``[A-Za-z_][A-Za-z0-9_]*``, no duplicates), block
  sequences (``- item``, also at the parent key's indent, and ``- key: value`` items),
  one-line flow mappings ``{k: v, ...}`` and flow sequences ``[a, b]``;
- folded / literal block scalars ``>``, ``>-``, ``|``, ``|-`` whose lines share one
  indent, with no blank line inside and no trailing spaces;
- scalars resolved as :class:`fxcli.preset.yaml_text.PresetLoader` resolves them (YAML
  1.2 core): ``~``/``null``/``Null``/``NULL`` and an empty value are None,
  ``true``/``True``/``TRUE``/``false``/... are booleans, ``[-+]?[0-9]+`` integers
  (decimal, also with leading zeros), ``[-+]?[0-9]+.[0-9]*`` with an optional signed
  exponent and ``[-+]?[0-9]+[eE][-+]?[0-9]+`` floats; other plain scalars are strings
  only when they start with a letter and hold letters, digits, spaces and
  ``_ . , ; ( ) / + % -`` (so no date, number-like or YAML 1.1 form is guessed);
  anything else falls back.

``tests/test_plain_yaml.py`` compares it with PyYAML on every bundled and example
preset and on generated variants, type for type and line for line.
"""

from __future__ import annotations

import re
from typing import Any

from fxcli.errors import FxcliError

__all__ = ["parse_plain"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9 _.,;()/+%-]*")
_NULL = frozenset({"~", "null", "Null", "NULL"})
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_TEXT = re.compile(r"[\x20-\x7e\n]*")
_BLOCK_SCALAR = frozenset({">", ">-", "|", "|-"})
#: larger or deeper texts go to PyYAML, whose limits and messages apply
#: (fxcli.preset.yaml_text.MAX_YAML_NODES / MAX_YAML_DEPTH); a preset needs depth 4
MAX_CHARS = 1 << 16
MAX_DEPTH = 16


class _Unsupported(FxcliError):
    """The text is outside the subset: PyYAML reads it (internal: never leaves
    :func:`parse_plain`)."""


def _scalar(s: str) -> Any:
    if s == "" or s in _NULL:
        return None
    if s in _BOOL:
        return _BOOL[s]
    if _INT.fullmatch(s):
        return int(s, 10)
    if _FLOAT.fullmatch(s):
        # PyYAML: the sign taken off, then sign * float(rest)
        sign = -1 if s[0] == "-" else 1
        return sign * float(s.lstrip("+-"))
    if _WORD.fullmatch(s) and s == s.rstrip():
        return s
    raise _Unsupported


def _strip_comment(content: str) -> str:
    if content.startswith("#"):
        return ""
    cut = content.find(" #")
    return (content if cut < 0 else content[:cut]).rstrip()


class _Flow:
    """One-line flow collection ``{...}`` / ``[...]`` of plain scalars."""

    def __init__(self, text: str, line: int, lines: dict[int, int]) -> None:
        self.s, self.i, self.line, self.lines = text, 0, line, lines
        self.depth = 0

    def parse(self) -> Any:
        v = self._value()
        self._space()
        if self.i != len(self.s):
            raise _Unsupported
        return v

    def _space(self) -> None:
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1

    def _value(self) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Unsupported
        try:
            return self._value_at()
        finally:
            self.depth -= 1

    def _value_at(self) -> Any:
        self._space()
        if self.i >= len(self.s):
            raise _Unsupported
        c = self.s[self.i]
        if c == "{":
            return self._mapping()
        if c == "[":
            return self._sequence()
        j = self.i
        while j < len(self.s) and self.s[j] not in ",[]{}":
            if self.s[j] == ":" and self.s[j + 1 : j + 2] in (" ", ""):
                raise _Unsupported
            j += 1
        text, self.i = self.s[self.i : j].strip(), j
        if text == "":
            raise _Unsupported
        return _scalar(text)

    def _items(self, close: str, item: Any) -> None:
        self.i += 1
        self._space()
        if self.s[self.i : self.i + 1] == close:
            self.i += 1
            return
        while True:
            item()
            self._space()
            c = self.s[self.i : self.i + 1]
            self.i += 1
            if c == close:
                return
            if c != ",":
                raise _Unsupported

    def _mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {}

        def item() -> None:
            self._space()
            m = _KEY.match(self.s, self.i)
            if m is None or self.s[m.end() : m.end() + 2] != ": ":
                raise _Unsupported
            key = m.group()
            if key in out or key in _NULL or key in _BOOL:
                raise _Unsupported
            self.i = m.end() + 2
            out[key] = self._value()

        self._items("}", item)
        self.lines[id(out)] = self.line
        return out

    def _sequence(self) -> list[Any]:
        out: list[Any] = []
        self._items("]", lambda: out.append(self._value()))
        self.lines[id(out)] = self.line
        return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(raw: list[str], i: int) -> int:
    """The index after the body of a block scalar introduced on raw[i]: the non-blank
    lines after it that are more indented than raw[i]."""
    j = i + 1
    while j < len(raw) and raw[j].strip() != "" and _indent(raw[j]) > _indent(raw[i]):
        j += 1
    return j


class _Block:
    """The block structure over (indent, content, 1-based line) entries: the lines that
    are not blank, not comments and not in a block scalar's body."""

    def __init__(self, raw: list[str]) -> None:
        self.raw = raw
        self.lines: dict[int, int] = {}
        self.ent: list[tuple[int, str, int]] = []
        self.k = 0
        self.depth = 0  # block collections open (compact "- key:" items not counted)
        i = 0
        while i < len(raw):
            content = _strip_comment(raw[i].lstrip(" "))
            if content:
                self.ent.append((_indent(raw[i]), content, i + 1))
            m = _KEY.match(content)
            if m is not None and content[m.end() : m.end() + 1] == ":":
                if content[m.end() + 1 :].strip() in _BLOCK_SCALAR:
                    i = _block_end(raw, i)  # its body is content, not entries
                    continue
            i += 1

    def node(self, indent: int) -> Any:
        ind, content, _ = self.ent[self.k]
        if ind != indent or self.depth >= MAX_DEPTH:
            raise _Unsupported
        self.depth += 1
        try:
            if content == "-" or content.startswith("- "):
                return self.sequence(indent)
            return self.mapping(indent)
        finally:
            self.depth -= 1

    def value_after(self, indent: int, rest: str, line: int, seq_ok: bool) -> Any:
        """The value of an entry at ``indent`` on ``line`` whose text after the
        indicator is ``rest``."""
        nxt = self.ent[self.k] if self.k < len(self.ent) else None
        if rest == "":
            if nxt is not None and nxt[0] > indent:
                return self.node(nxt[0])
            if seq_ok and nxt is not None and nxt[0] == indent:
                c = nxt[1]
                if c == "-" or c.startswith("- "):
                    return self.sequence(indent)
            return None
        if nxt is not None and nxt[0] > indent:  # a multi-line plain scalar or worse
            raise _Unsupported
        if rest[0] in "{[":
            return _Flow(rest, line, self.lines).parse()
        if rest in _BLOCK_SCALAR:
            raise _Unsupported  # handled by mapping(); elsewhere not in the subset
        return _scalar(rest)

    def block_scalar(self, style: str, line: int) -> str:
        """The body of the block scalar introduced on ``line`` (1-based), folded
        (``>``) or kept (``|``); ``-``: no final line break."""
        i = line - 1
        end = _block_end(self.raw, i)
        body = self.raw[i + 1 : end]
        if not body or any(_indent(b) != _indent(body[0]) or b != b.rstrip() for b in body):
            raise _Unsupported
        # what follows must be the next entry (or the end): no blank line inside
        j = end
        while j < len(self.raw) and self.raw[j].strip() == "":
            j += 1
        if j < len(self.raw) and _indent(self.raw[j]) > _indent(self.raw[i]):
            raise _Unsupported
        text = (" " if style[0] == ">" else "\n").join(b[_indent(body[0]) :] for b in body)
        return text if style.endswith("-") else text + "\n"

    def mapping(self, indent: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first = self.ent[self.k][2]
        while self.k < len(self.ent) and self.ent[self.k][0] == indent:
            _, content, line = self.ent[self.k]
            m = _KEY.match(content)
            if m is None or content[m.end() : m.end() + 1] != ":":
                raise _Unsupported
            key, rest = m.group(), content[m.end() + 1 :]
            if rest and rest[0] != " ":
                raise _Unsupported
            rest = rest.strip()
            if key in out or key in _NULL or key in _BOOL:
                raise _Unsupported
            self.k += 1
            if rest in _BLOCK_SCALAR:
                out[key] = self.block_scalar(rest, line)
                continue
            out[key] = self.value_after(indent, rest, line, True)
        if self.k < len(self.ent) and self.ent[self.k][0] > indent:
            raise _Unsupported
        self.lines[id(out)] = first
        return out

    def sequence(self, indent: int) -> list[Any]:
        out: list[Any] = []
        first = self.ent[self.k][2]
        while self.k < len(self.ent) and self.ent[self.k][0] == indent:
            _, content, line = self.ent[self.k]
            if not (content == "-" or content.startswith("- ")):
                break
            rest = content[1:]
            inner = len(rest) - len(rest.lstrip(" "))
            rest = rest.strip()
            m = _KEY.match(rest)
            if m is not None and rest[m.end() : m.end() + 1] == ":" and rest[0] not in "{[":
                # "- key: value": a mapping whose indent is the key's column
                self.ent[self.k] = (indent + 1 + inner, rest, line)
                out.append(self.mapping(indent + 1 + inner))
                continue
            self.k += 1
            out.append(self.value_after(indent, rest, line, False))
        self.lines[id(out)] = first
        return out


def parse_plain(text: str) -> tuple[Any, dict[int, int]] | None:
    """``(data, lines)`` as :func:`fxcli.preset.yaml_text.load_yaml` gives them for a
    text in the subset (see the module docstring), else None. Never raises."""
    if len(text) > MAX_CHARS or not _TEXT.fullmatch(text):
        return None
    raw = text.split("\n")
    if any(line.startswith(("---", "...", "%")) for line in raw):
        return None
    try:
        return _parse(raw)
    except (_Unsupported, IndexError, ValueError, RecursionError):
        return None


def _parse(raw: list[str]) -> tuple[Any, dict[int, int]]:
    b = _Block(raw)
    if not b.ent or b.ent[0][0] != 0:
        raise _Unsupported
    root = b.node(0)
    if b.k != len(b.ent) or not isinstance(root, dict):
        raise _Unsupported
    return root, b.lines
