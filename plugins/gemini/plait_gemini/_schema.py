"""JSON Schema to Gemini's ``responseSchema``, a subset of the OpenAPI 3.0 schema object.

Gemini takes upper-case types, ``nullable`` instead of a ``null`` type, ``enum`` on strings
only, a few formats, and no ``additionalProperties``, ``$ref`` or ``const``. Keywords it
lacks are dropped (plait checks the reply against the full schema anyway); a schema that
cannot be said in the subset at all (a ``$ref``, an object without properties, a value of
any type) gives ``None``, and the request asks for JSON without a schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["response_schema"]

_COPIED = (
    "description",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minProperties",
    "maxProperties",
)
_FORMATS = {"string": {"date-time"}, "integer": {"int32", "int64"}, "number": {"float", "double"}}
_TYPES = {"string", "integer", "number", "boolean", "array", "object"}


class _Inexpressible(Exception):
    """This schema has no equivalent in Gemini's subset."""


def response_schema(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """Gemini's form of ``schema``, or ``None`` when it has none."""
    try:
        return _convert(schema)
    except _Inexpressible:
        return None


def _convert(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, Mapping) or "$ref" in schema:
        raise _Inexpressible
    schema = dict(schema)
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _union(schema, schema.pop(key))
    if "allOf" in schema:
        parts = schema.pop("allOf")
        if len(parts) != 1 or not isinstance(parts[0], Mapping):
            raise _Inexpressible
        return _convert({**parts[0], **schema})

    kind = schema.get("type")
    nullable = False
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        nullable = len(kinds) < len(kind)
        if len(kinds) != 1:
            raise _Inexpressible
        kind = kinds[0]
    if kind is None:
        kind = "object" if "properties" in schema else _enum_type(schema.get("enum"))
    if kind not in _TYPES:
        raise _Inexpressible

    out: dict[str, Any] = {"type": kind.upper()}
    out.update((k, schema[k]) for k in _COPIED if k in schema)
    if nullable or schema.get("nullable") is True:
        out["nullable"] = True
    if schema.get("format") in _FORMATS.get(kind, ()):
        out["format"] = schema["format"]
    enum = schema.get("enum")
    if kind == "string" and isinstance(enum, list) and all(isinstance(v, str) for v in enum):
        out.update(format="enum", enum=enum)  # Gemini's enums are strings only: others dropped
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            raise _Inexpressible  # Gemini refuses an OBJECT without properties
        out["properties"] = {name: _convert(sub) for name, sub in properties.items()}
        out["required"] = [name for name in schema.get("required", ()) if name in properties]
        out["propertyOrdering"] = list(properties)  # else Gemini orders them alphabetically
    if kind == "array":
        out["items"] = _convert(schema.get("items"))
    return out


def _union(schema: dict[str, Any], options: Any) -> dict[str, Any]:
    if not isinstance(options, list) or not options:
        raise _Inexpressible
    kept = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
    if not kept:
        raise _Inexpressible
    if len(kept) == 1:
        out = _convert({**kept[0], **schema})
    else:
        out = {"anyOf": [_convert(o) for o in kept]}
        out.update((k, schema[k]) for k in ("description",) if k in schema)
    if len(kept) < len(options):
        out["nullable"] = True
    return out


def _enum_type(enum: Any) -> str | None:
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        return "string"
    return None
