"""JSON Schema (draft 2020-12) for presets, generated from :mod:`fxcli.preset.spec`.

The shipped file ``fxcli/schema/preset.schema.json`` is this function's output
(a test keeps them equal); point an editor's YAML language server at it.
"""

from __future__ import annotations

from typing import Any

from fxcli.preset.spec import DITHER, OUTPUT_SUBTYPES, STEPS, Param


def _param_schema(p: Param) -> dict[str, Any]:
    s: dict[str, Any] = {"description": p.help + (f" ({p.unit})" if p.unit else "")}
    num: dict[str, Any] = {"type": "number"}
    if p.minimum is not None:
        num["exclusiveMinimum" if p.exclusive_minimum else "minimum"] = p.minimum
    if p.maximum is not None:
        num["exclusiveMaximum" if p.exclusive_maximum else "maximum"] = p.maximum
    if p.kind == "number":
        s.update(num)
    elif p.kind == "int":
        s.update(num, type="integer")
    elif p.kind == "bool":
        s["type"] = "boolean"
    elif p.kind == "matrix":
        row = {"type": "array", "items": {"type": "number"}, "minItems": 1}
        s.update(type="array", items=row, minItems=1)
    elif p.kind == "choice":
        s["enum"] = list(p.choices)
    elif p.kind == "freq_or_band":
        pos = {"type": "number", "exclusiveMinimum": 0}
        s["oneOf"] = [pos, {"type": "array", "items": pos, "minItems": 2, "maxItems": 2}]
    elif p.kind == "numbers":
        s.update(type="array", items={"type": "number"}, minItems=1)
    elif p.kind == "path":
        s["type"] = "string"
    elif p.kind == "window":
        s["oneOf"] = [{"type": "string"}, {"type": "array", "minItems": 1}]
    if not p.required and p.default is not None:
        s["default"] = p.default
    return s


def json_schema() -> dict[str, Any]:
    steps = []
    for spec in STEPS.values():
        props: dict[str, Any] = {"type": {"const": spec.type}}
        props.update({p.name: _param_schema(p) for p in spec.params})
        steps.append(
            {
                "title": spec.type,
                "description": spec.help,
                "type": "object",
                "properties": props,
                "required": ["type"] + [p.name for p in spec.params if p.required],
                "additionalProperties": False,
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "fxcli preset (version 1)",
        "type": "object",
        "required": ["version", "chain"],
        "additionalProperties": False,
        "properties": {
            "version": {"const": 1},
            "description": {"type": "string"},
            "output": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "subtype": {"enum": list(OUTPUT_SUBTYPES)},
                    "dither": {"enum": list(DITHER)},
                },
            },
            "chain": {"type": "array", "minItems": 1, "items": {"oneOf": steps}},
        },
    }
