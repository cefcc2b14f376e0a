"""Typed model output: ``Agent(output=...)`` as a JSON schema, and a reply parsed back into it.

``OutputSpec.of(tp)`` compiles the output type once into a small tree of nodes. The tree
gives three things: the schema sent to the provider (strict-mode friendly: an object at the
root, every property required, no extra properties, nested classes inlined, never ``$ref``),
a one-line description for re-ask prompts, and a lenient check that normalizes what small
models get slightly wrong (code fences, prose around the JSON, ``"HIGH"`` for ``"high"``,
``"true"`` for ``true``) while refusing anything that would need a guess. The checked value
is then structured into the type with the Runtime's private cattrs converter.

The check runs before cattrs on purpose: cattrs' primitive hooks call the type, so on its
own ``null`` becomes ``"None"``, ``"false"`` becomes ``True`` and ``3.7`` becomes ``3``.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import dataclasses
import decimal
import enum
import json
import math
import re
import types
import typing
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, Literal, TypeVar, overload

import attrs
import cattrs
from cattrs.v import format_exception

from ._errors import OutputParseError
from ._types import ISO_TYPES, Picked, adapter, is_pydantic_model

__all__ = ["OutputSpec"]

T = TypeVar("T")
U = TypeVar("U")

_SUPPORTED = ("str, int, float, bool, Decimal, datetime, date, time, UUID, Enum, Literal[...], "
              "list[...], tuple[...], dict[str, X], Annotated[X, ...], unions, attrs classes, "
              "dataclasses, TypedDicts and pydantic models")
_MAX_PROBLEMS = 10  # a re-ask prompt listing more would drown the question


# --------------------------------------------------------------------------- the type tree


class _Node:
    """One position in the output type."""

    @property
    def accepts_object(self) -> bool:
        """Whether a JSON object can be a valid value here."""
        return False

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def render(self) -> str:
        """The compact, JSON-like rendering used by ``OutputSpec.describe``."""
        raise NotImplementedError

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        """``data`` normalized for the converter; what is wrong goes to ``problems``."""
        raise NotImplementedError


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


@attrs.frozen
class _String(_Node):
    def schema(self) -> dict[str, Any]:
        return {"type": "string"}

    def render(self) -> str:
        return "string"

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        if isinstance(data, str):
            return data
        if isinstance(data, int | float) and not isinstance(data, bool):
            return json.dumps(data)  # a number where text was asked is lossless as text
        problems.append(f"{path}: expected a string, got {_show(data)}")
        return data


@attrs.frozen
class _Integer(_Node):
    def schema(self) -> dict[str, Any]:
        return {"type": "integer"}

    def render(self) -> str:
        return "integer"

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        if isinstance(data, float) and data.is_integer():
            return int(data)
        if isinstance(data, str) and re.fullmatch(r"[+-]?\d+", data.strip()):
            return int(data)
        problems.append(f"{path}: expected an integer, got {_show(data)}")
        return data


@attrs.frozen
class _Number(_Node):
    def schema(self) -> dict[str, Any]:
        return {"type": "number"}

    def render(self) -> str:
        return "number"

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        value: float | None = None
        if isinstance(data, int | float) and not isinstance(data, bool):
            value = float(data)
        elif isinstance(data, str):
            with contextlib.suppress(ValueError):
                value = float(data.strip())
        if value is not None and math.isfinite(value):  # Python's json reads NaN; JSON has none
            return value
        problems.append(f"{path}: expected a number, got {_show(data)}")
        return data


@attrs.frozen
class _Boolean(_Node):
    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}

    def render(self) -> str:
        return "true | false"

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and _clean(data).casefold() in ("true", "false"):
            return _clean(data).casefold() == "true"
        problems.append(f"{path}: expected true or false, got {_show(data)}")
        return data


_JSON_TYPES: dict[type, str] = {str: "string", int: "integer", bool: "boolean",
                                type(None): "null"}


@attrs.frozen
class _Option:
    value: str | int | bool | None  # the JSON value, also what the converter is given
    name: str | None  # an Enum member's name, also accepted from the model


def _clean(text: str) -> str:
    """A bare label without the wrapping small models add: spaces, quotes, a final period."""
    text = text.strip()
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text.rstrip(".").rstrip()


@attrs.frozen
class _Choice(_Node):
    """An Enum or a Literal: the model must return one of a fixed set of values."""

    label: str  # the type's name, for messages
    options: tuple[_Option, ...]

    def schema(self) -> dict[str, Any]:
        groups: dict[str, list[Any]] = {}
        for o in self.options:
            groups.setdefault(_JSON_TYPES[type(o.value)], []).append(o.value)
        parts = [{"type": "null"} if t == "null" else {"type": t, "enum": vals}
                 for t, vals in groups.items()]
        return parts[0] if len(parts) == 1 else {"anyOf": parts}

    def render(self) -> str:
        return " | ".join(json.dumps(o.value) for o in self.options)

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        for o in self.options:  # the exact value first, with its JSON type (True is not 1)
            if type(data) is type(o.value) and data == o.value:
                return data
        if isinstance(data, dict | list):
            problems.append(f"{path}: expected one of {self.render()}, got {_show(data)}")
            return data
        text = _clean(data if isinstance(data, str) else json.dumps(data))
        folded = text.casefold()
        keys: tuple[Callable[[_Option], str | None], ...] = (
            lambda o: _key(o.value), lambda o: o.name,
            lambda o: _key(o.value).casefold(),
            lambda o: None if o.name is None else o.name.casefold(),
        )
        for stage, key in enumerate(keys):
            wanted = text if stage < 2 else folded
            found = [o for o in self.options if key(o) == wanted]
            if len(found) == 1:
                return found[0].value
            if len(found) > 1:  # two candidates: refuse to pick one
                shown = " and ".join(json.dumps(o.value) for o in found)
                problems.append(f"{path}: {_show(data)} is ambiguous between {shown}; "
                                f"answer with one of {self.render()} exactly")
                return data
        problems.append(f"{path}: expected one of {self.render()}, got {_show(data)}")
        return data


def _key(value: str | int | bool | None) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@attrs.frozen
class _Array(_Node):
    item: _Node

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.schema()}

    def render(self) -> str:
        return f"[{self.item.render()}, ...]"

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        if not isinstance(data, list):
            problems.append(f"{path}: expected an array, got {_show(data)}")
            return data
        return [self.item.check(v, f"{path}[{i}]", problems) for i, v in enumerate(data)]


@attrs.frozen
class _Nullable(_Node):
    inner: _Node

    @property
    def accepts_object(self) -> bool:
        return self.inner.accepts_object

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [self.inner.schema(), {"type": "null"}]}

    def render(self) -> str:
        return f"{self.inner.render()} | null"

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        if data is None:
            return None
        mine: list[str] = []
        value = self.inner.check(data, path, mine)
        if mine and isinstance(data, str) and _clean(data).casefold() in ("null", "none"):
            return None  # "None" where no string value fits can only mean null
        problems.extend(mine)
        return value


@attrs.frozen
class _Field:
    name: str
    node: _Node
    required: bool  # no default: the model must give it (the schema lists every field)
    description: str | None


@attrs.frozen
class _Object(_Node):
    """An attrs class or a dataclass."""

    label: str
    fields: tuple[_Field, ...]
    description: str | None

    @property
    def accepts_object(self) -> bool:
        return True

    def schema(self) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for f in self.fields:
            prop = f.node.schema()
            if f.description:
                prop = {**prop, "description": f.description}
            properties[f.name] = prop
        out: dict[str, Any] = {"type": "object"}
        if self.description:
            out["description"] = self.description
        out.update(properties=properties, required=[f.name for f in self.fields],
                   additionalProperties=False)
        return out

    def render(self) -> str:
        inner = ", ".join(f"{json.dumps(f.name)}: {f.node.render()}" for f in self.fields)
        return "{" + inner + "}"

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        if not isinstance(data, dict):
            problems.append(f"{path}: expected an object ({self.label}), got {_show(data)}")
            return data
        out: dict[str, Any] = {}  # unknown keys are dropped: harmless, and strict converters
        for f in self.fields:     # would otherwise refuse them
            if f.name in data:
                out[f.name] = f.node.check(data[f.name], f"{path}.{f.name}", problems)
            elif f.required:
                problems.append(f"{path}.{f.name}: required field missing")
        return out


@attrs.frozen
class _Iso(_Node):
    """A date, time or UUID, written as a string in the format JSON Schema names."""

    format: str
    parse: Callable[[str], Any]

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": self.format}

    def render(self) -> str:
        return f"string ({self.format})"

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        if isinstance(data, str):
            with contextlib.suppress(ValueError):
                self.parse(data.strip())
                return data.strip()
        problems.append(f"{path}: expected a {self.format} string, got {_show(data)}")
        return data


@attrs.frozen
class _Decimal(_Node):
    """An exact decimal: a JSON number (or a numeric string), kept as written."""

    def schema(self) -> dict[str, Any]:
        return {"type": "number"}

    def render(self) -> str:
        return "number"

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        if isinstance(data, int | float | str) and not isinstance(data, bool):
            text = data.strip() if isinstance(data, str) else repr(data)
            with contextlib.suppress(decimal.InvalidOperation):
                if decimal.Decimal(text).is_finite():
                    return text  # the converter makes the Decimal from the exact digits
        problems.append(f"{path}: expected a number, got {_show(data)}")
        return data


@attrs.frozen
class _Tuple(_Node):
    """A fixed-length tuple: an array with one item schema per position."""

    items: tuple[_Node, ...]

    def schema(self) -> dict[str, Any]:
        n = len(self.items)
        return {"type": "array", "prefixItems": [i.schema() for i in self.items],
                "minItems": n, "maxItems": n}

    def render(self) -> str:
        return "[" + ", ".join(i.render() for i in self.items) + "]"

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        if not isinstance(data, list) or len(data) != len(self.items):
            problems.append(f"{path}: expected an array of {len(self.items)} items, "
                            f"got {_show(data) if not isinstance(data, list) else len(data)}")
            return data
        return [n.check(v, f"{path}[{i}]", problems)
                for i, (n, v) in enumerate(zip(self.items, data, strict=True))]


@attrs.frozen
class _Mapping(_Node):
    """``dict[str, X]``: an object with any keys (not strict-mode: providers send it open)."""

    value: _Node

    @property
    def accepts_object(self) -> bool:
        return True

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": self.value.schema()}

    def render(self) -> str:
        return "{string: " + self.value.render() + ", ...}"

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        if not isinstance(data, dict):
            problems.append(f"{path}: expected an object, got {_show(data)}")
            return data
        return {k: self.value.check(v, f"{path}.{k}", problems) for k, v in data.items()}


# annotated-types' constraint objects (also what pydantic and msgspec read), by attribute:
# (attribute, JSON Schema keyword, the test a valid value passes)
_CONSTRAINTS: tuple[tuple[str, str, Callable[[Any, Any], bool]], ...] = (
    ("gt", "exclusiveMinimum", lambda v, c: v > c),
    ("ge", "minimum", lambda v, c: v >= c),
    ("lt", "exclusiveMaximum", lambda v, c: v < c),
    ("le", "maximum", lambda v, c: v <= c),
    ("multiple_of", "multipleOf", lambda v, c: v % c == 0),
    ("min_length", "minLength", lambda v, c: len(v) >= c),
    ("max_length", "maxLength", lambda v, c: len(v) <= c),
)
_SIZED = {"minLength": "minItems", "maxLength": "maxItems"}  # the same bound on an array


@attrs.frozen
class _Constrained(_Node):
    """``Annotated[X, Gt(0), MaxLen(80), "a description"]``: bounds checked and sent."""

    inner: _Node
    bounds: tuple[tuple[str, Any, Callable[[Any, Any], bool]], ...]  # keyword, limit, test
    description: str | None

    @property
    def accepts_object(self) -> bool:
        return self.inner.accepts_object

    def schema(self) -> dict[str, Any]:
        out = self.inner.schema()
        array = out.get("type") == "array"
        out.update((_SIZED.get(k, k) if array else k, limit) for k, limit, _ in self.bounds)
        if self.description:
            out["description"] = self.description
        return out

    def render(self) -> str:
        shown = ", ".join(f"{k} {limit}" for k, limit, _ in self.bounds)
        return f"{self.inner.render()} ({shown})" if shown else self.inner.render()

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        mine: list[str] = []
        value = self.inner.check(data, path, mine)
        if not mine:
            for keyword, limit, test in self.bounds:
                if not test(value, limit):
                    mine.append(f"{path}: {_show(value)} breaks {keyword} {limit}")
        problems.extend(mine)
        return value


@attrs.frozen
class _Adapted(_Node):
    """A pydantic model (or a type with pydantic metadata): pydantic's own schema and
    validation, through its ``TypeAdapter``."""

    type: Any
    closed: dict[str, Any] = attrs.field(eq=False, repr=False)  # the schema, built once

    @property
    def accepts_object(self) -> bool:
        return self.closed.get("type") == "object"

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(self.closed.get("properties", {}))

    def schema(self) -> dict[str, Any]:
        return copy.deepcopy(self.closed)

    def tag_values(self, name: str) -> tuple[Any, ...] | None:
        prop = self.closed.get("properties", {}).get(name, {})
        if "const" in prop:
            return (prop["const"],)
        return tuple(prop["enum"]) if isinstance(prop.get("enum"), list) else None

    def render(self) -> str:
        return _render_schema(self.closed)

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        import pydantic  # a pydantic type is in use, so pydantic is installed

        try:
            return adapter(self.type).validate_python(data)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
                problems.append(f"{path}{where}: {error['msg']}")
            return data


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """pydantic's schema in the form strict providers take: ``$ref`` inlined, every object
    closed with every property required, titles and defaults dropped."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:  # "#/$defs/Name"; pydantic's are never recursive here (checked)
            return walk({**defs[node["$ref"].rsplit("/", 1)[-1]],
                         **{k: v for k, v in node.items() if k != "$ref"}})
        out = {k: walk(v) for k, v in node.items()
               if k not in ("$defs", "title", "default")}
        if out.get("type") == "object" and isinstance(out.get("properties"), dict):
            out.setdefault("additionalProperties", False)
            out["required"] = list(out["properties"])
        return out

    closed: dict[str, Any] = walk(schema)
    return closed


def _render_schema(schema: dict[str, Any]) -> str:
    """The compact rendering of a JSON schema, as ``_Node.render`` gives for plait's own."""
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_render_schema(s) for s in schema[key])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        return "{" + ", ".join(f"{json.dumps(k)}: {_render_schema(v)}"
                               for k, v in schema["properties"].items()) + "}"
    if kind == "array":
        return f"[{_render_schema(schema.get('items', {}))}, ...]"
    if kind == "boolean":
        return "true | false"
    return kind if isinstance(kind, str) else "any"


@attrs.frozen
class _Union(_Node):
    """A union: told apart by a ``Literal`` tag field shared by its classes (``tag``), or
    by the shape of the value when only one member fits."""

    types: tuple[Any, ...]
    members: tuple[_Node, ...]
    tag: str | None

    @property
    def accepts_object(self) -> bool:
        return any(m.accepts_object for m in self.members)

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [m.schema() for m in self.members]}

    def render(self) -> str:
        return " | ".join(m.render() for m in self.members)

    def check(self, data: Any, path: str, problems: list[str]) -> Any:
        if self.tag is not None and isinstance(data, dict):
            return self._by_tag(data, path, problems)
        clean: list[tuple[int, Any]] = []
        first: list[str] | None = None
        for i, member in enumerate(self.members):
            mine: list[str] = []
            value = member.check(data, path, mine)
            if not mine:
                clean.append((i, value))
            first = mine if first is None else first
        if not clean:
            problems.append(f"{path}: expected {self.render()}, got {_show(data)}")
            return data
        best = min(_closeness(self.members[i], data) for i, _ in clean)
        found = [(i, v) for i, v in clean if _closeness(self.members[i], data) == best]
        if len(found) > 1:
            names = " and ".join(_type_name(self.types[i]) for i, _ in found)
            problems.append(f"{path}: the value fits both {names}; give the fields of "
                            "exactly one")
            return data
        i, value = found[0]
        return Picked(self.types[i], value)

    def _by_tag(self, data: dict[str, Any], path: str, problems: list[str]) -> Any:
        assert self.tag is not None
        for i, member in enumerate(self.members):
            values = _tag_values(member, self.tag)
            if values is not None and data.get(self.tag) in values:
                return Picked(self.types[i], member.check(data, path, problems))
        options = " | ".join(json.dumps(v) for m in self.members
                             for v in (_tag_values(m, self.tag) or ()))
        problems.append(f"{path}.{self.tag}: expected one of {options}, "
                        f"got {_show(data.get(self.tag)) if self.tag in data else 'nothing'}")
        return data


def _closeness(node: _Node, data: Any) -> int:
    """0 when ``data`` is the member's own JSON type (or an object with exactly its
    fields), 1 when it only fits after normalization."""
    names = _object_fields(node)
    if names is not None:
        return 0 if isinstance(data, dict) and set(data) <= set(names) else 1
    native = {_String: str, _Integer: int, _Number: float, _Boolean: bool}.get(type(node))
    if native is None:
        return 0 if isinstance(data, list) == isinstance(node, _Array | _Tuple) else 1
    if native is float:
        return 0 if isinstance(data, int | float) and not isinstance(data, bool) else 1
    return 0 if type(data) is native else 1


def _object_fields(node: _Node) -> tuple[str, ...] | None:
    if isinstance(node, _Object):
        return tuple(f.name for f in node.fields)
    if isinstance(node, _Adapted) and node.accepts_object:
        return node.field_names
    return None


def _tag_values(node: _Node, name: str) -> tuple[Any, ...] | None:
    """The values a class's field ``name`` can take, when it is a Literal (or Enum)."""
    if isinstance(node, _Object):
        for f in node.fields:
            if f.name == name and isinstance(f.node, _Choice):
                return tuple(o.value for o in f.node.options)
        return None
    return node.tag_values(name) if isinstance(node, _Adapted) else None


# --------------------------------------------------------------------------- compiling types


def _type_name(tp: Any) -> str:
    """A short, readable name for a type: ``list[Ticket]``, ``Literal['a', 'b']``."""
    if tp is type(None):
        return "None"
    if tp is Ellipsis:
        return "..."
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return "Literal[" + ", ".join(
            f"{type(a).__name__}.{a.name}" if isinstance(a, enum.Enum) else repr(a)
            for a in args) + "]"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        return f"{_type_name(origin)}[{', '.join(_type_name(a) for a in args)}]"
    if isinstance(tp, type):
        return tp.__name__
    return repr(tp)


def _unsupported(tp: Any, where: str, why: str = "") -> TypeError:
    place = f" for {where}" if where else ""
    reason = why or f"supported output types are {_SUPPORTED}"
    return TypeError(f"unsupported output type {_type_name(tp)}{place}: {reason}")


def _compile(tp: Any, where: str, seen: tuple[type, ...]) -> _Node:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _compile_annotated(tp, args, where, seen)
    if is_pydantic_model(tp):
        return _compile_adapted(tp, where)
    if tp in ISO_TYPES:
        return _Iso(ISO_TYPES[tp], tp.fromisoformat if tp is not uuid.UUID else uuid.UUID)
    if tp is decimal.Decimal:
        return _Decimal()
    if tp is str:
        return _String()
    if tp is bool:
        return _Boolean()
    if tp is int:
        return _Integer()
    if tp is float:
        return _Number()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _compile_enum(tp, where)
    if origin is Literal:
        return _compile_literal(tp, args, where)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return _Nullable(_compile(rest[0], where, seen))
        node = _compile_union(tp, tuple(rest), where, seen)
        return _Nullable(node) if len(rest) < len(args) else node
    if origin is list:
        if len(args) != 1:
            raise _unsupported(tp, where, "give the item type: list[...]")
        return _Array(_compile(args[0], f"{where}[]" if where else "list item", seen))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _Array(_compile(args[0], f"{where}[]" if where else "tuple item", seen))
        if not args or Ellipsis in args:
            raise _unsupported(tp, where, "give the item types: tuple[X, Y] or tuple[X, ...]")
        return _Tuple(tuple(_compile(a, f"{where}[{i}]" if where else f"tuple item {i}", seen)
                            for i, a in enumerate(args)))
    if tp in (list, tuple):
        raise _unsupported(tp, where, "give the item type: list[...] or tuple[X, ...]")
    if isinstance(tp, type) and (attrs.has(tp) or dataclasses.is_dataclass(tp)
                                 or typing.is_typeddict(tp)):
        return _compile_class(tp, where, seen)
    if origin is dict and len(args) == 2 and args[0] is str:
        return _Mapping(_compile(args[1], f"{where}[]" if where else "dict value", seen))
    if tp is dict or origin is dict:
        raise _unsupported(tp, where, "a mapping needs string keys and a value type: "
                                      "dict[str, X]")
    raise _unsupported(tp, where)


def _compile_annotated(tp: Any, args: tuple[Any, ...], where: str,
                       seen: tuple[type, ...]) -> _Node:
    inner, meta = args[0], args[1:]
    if any(type(m).__module__.split(".")[0] == "pydantic" for m in meta):
        return _compile_adapted(tp, where)  # Field(...), AfterValidator...: pydantic's own
    bounds: list[tuple[str, Any, Callable[[Any, Any], bool]]] = []
    description = None
    for m in meta:
        if isinstance(m, str):
            description = m
            continue
        parts = [m] if not hasattr(m, "__iter__") else list(m)  # Interval and Len group some
        for part in parts:
            for attr, keyword, test in _CONSTRAINTS:
                limit = getattr(part, attr, None)
                if limit is not None:
                    bounds.append((keyword, limit, test))
    return _Constrained(_compile(inner, where, seen), tuple(bounds), description)


def _compile_adapted(tp: Any, where: str) -> _Adapted:
    try:
        raw = adapter(tp).json_schema()
    except Exception as exc:  # pydantic refuses to describe it (an arbitrary type inside)
        raise _unsupported(tp, where, f"pydantic cannot build its JSON schema ({exc})") from exc
    if _recursive(raw):
        raise _unsupported(tp, where, "recursive types cannot be inlined into a schema")
    return _Adapted(tp, _closed(raw))


def _recursive(schema: dict[str, Any]) -> bool:
    """Whether a ``$defs`` entry refers back to itself, directly or through others."""
    defs = schema.get("$defs", {})

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"].rsplit("/", 1)[-1]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    def reaches(name: str, target: str, seen: set[str]) -> bool:
        for ref in refs(defs.get(name)):
            if ref == target or (ref not in seen and reaches(ref, target, seen | {ref})):
                return True
        return False

    return any(reaches(name, name, set()) for name in defs)


def _compile_union(tp: Any, members: tuple[Any, ...], where: str,
                   seen: tuple[type, ...]) -> _Union:
    nodes = tuple(_compile(m, where, seen) for m in members)
    fields = [_object_fields(n) for n in nodes]
    if all(f is not None for f in fields):  # every member is a class: look for a tag
        shared = set.intersection(*(set(f or ()) for f in fields))
        for name in sorted(shared):
            values = [_tag_values(n, name) for n in nodes]
            flat = [v for vs in values for v in (vs or ())]
            if all(values) and len(flat) == len(set(map(repr, flat))):
                return _Union(members, nodes, name)
    for i, a in enumerate(fields):  # no tag: by shape, which two same-field classes lack
        for j in range(i):
            if a is not None and fields[j] is not None and set(a) == set(fields[j] or ()):
                raise _unsupported(tp, where, f"{_type_name(members[j])} and "
                                   f"{_type_name(members[i])} have the same fields; give "
                                   "each a Literal tag field (kind: Literal['a'])")
    return _Union(members, nodes, None)


def _compile_enum(tp: type[enum.Enum], where: str) -> _Choice:
    members = list(tp)
    values = [m.value for m in members]
    if not members:
        raise _unsupported(tp, where, "the Enum has no members")
    if not (all(isinstance(v, str) for v in values)
            or all(isinstance(v, int) and not isinstance(v, bool) for v in values)):
        raise _unsupported(tp, where, "Enum values must be all str or all int")
    return _Choice(tp.__name__, tuple(_Option(m.value, m.name) for m in members))


def _compile_literal(tp: Any, args: tuple[Any, ...], where: str) -> _Choice:
    options = []
    for a in args:
        if isinstance(a, enum.Enum):
            if type(a.value) not in _JSON_TYPES:
                raise _unsupported(tp, where, f"{a!r} has a {type(a.value).__name__} value")
            options.append(_Option(a.value, a.name))
        elif type(a) in _JSON_TYPES:
            options.append(_Option(a, None))
        else:
            raise _unsupported(tp, where, f"Literal values must be str, int, bool or None, "
                                          f"not {type(a).__name__}")
    return _Choice(_type_name(tp), tuple(options))


def _doc(tp: type) -> str | None:
    """The class's own docstring (not a dataclass's generated signature, not a base's)."""
    doc = tp.__dict__.get("__doc__")
    if not doc or (dataclasses.is_dataclass(tp) and doc.startswith(f"{tp.__name__}(")):
        return None
    return " ".join(doc.split())


def _compile_class(tp: type, where: str, seen: tuple[type, ...]) -> _Object:
    if tp in seen:
        raise _unsupported(tp, where, "recursive types cannot be inlined into a schema")
    try:
        hints = typing.get_type_hints(tp)
    except Exception as exc:  # a forward reference that does not resolve, at construction
        raise TypeError(f"cannot resolve the type hints of {tp.__name__}: {exc}") from exc
    fields: list[_Field] = []
    for name, init, has_default, meta, declared in _class_fields(tp):
        if not init:  # the converter never sets these, so the model must not be asked
            continue
        field_tp = hints.get(name, declared)
        if field_tp is None:
            raise TypeError(f"field {tp.__name__}.{name} has no type annotation")
        node = _compile(field_tp, f"{tp.__name__}.{name}", (*seen, tp))
        description = meta.get("description")
        fields.append(_Field(name, node, not has_default,
                             description if isinstance(description, str) else None))
    return _Object(tp.__name__, tuple(fields), _doc(tp))


def _class_fields(tp: type) -> Iterator[tuple[str, bool, bool, Mapping[str, Any], Any]]:
    """(name, init, has a default, metadata, declared type) for each field."""
    if attrs.has(tp):
        for a in attrs.fields(tp):
            yield a.name, a.init, a.default is not attrs.NOTHING, a.metadata, a.type
    elif typing.is_typeddict(tp):
        for name, hint in typing.get_type_hints(tp, include_extras=True).items():
            yield name, True, not _typeddict_required(tp, name, hint), {}, None
    else:
        for f in dataclasses.fields(tp):
            has_default = (f.default is not dataclasses.MISSING
                           or f.default_factory is not dataclasses.MISSING)
            yield f.name, f.init, has_default, f.metadata, f.type


def _typeddict_required(tp: Any, name: str, hint: Any) -> bool:
    """Whether a TypedDict key is required. Read from the hint, because under
    ``from __future__ import annotations`` the class's ``__required_keys__`` cannot see a
    ``NotRequired[...]`` written as a string (before Python 3.14)."""
    marker = typing.get_origin(hint)
    if marker is typing.NotRequired:
        return False
    if marker is typing.Required:
        return True
    return name in getattr(tp, "__required_keys__", ()) or bool(getattr(tp, "__total__", True))


def _schema_name(tp: Any) -> str:
    """A provider-safe schema name (``[A-Za-z0-9_-]{1,64}``) for the output type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        name = _schema_name(args[0])
    elif origin in (typing.Union, types.UnionType):
        name = _schema_name(next(a for a in args if a is not type(None)))
    elif origin in (list, tuple):
        name = f"{_schema_name(args[0])}_list"
    elif origin is Literal:
        name = "choice"
    else:
        name = {int: "integer", float: "number", bool: "boolean", str: "text"}.get(
            tp, getattr(tp, "__name__", "output"))
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


# --------------------------------------------------------------------------- reading replies

_FENCE = re.compile(r"\A\s*```[\w+-]*[^\S\n]*\n?(.*?)\n?\s*```\s*\Z", re.DOTALL)


class _NoJson(Exception):
    """The reply holds no usable JSON value; the message says why."""


def _unfence(text: str) -> str:
    """The inside of a reply that is one fenced code block; any other reply unchanged."""
    fenced = _FENCE.match(text)
    return fenced.group(1) if fenced else text


def _load(body: str) -> Any:
    """The one JSON value in a reply, allowing prose around a single object or array."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        first_error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    found = list(_embedded(body))
    if len(found) == 1:
        return found[0]
    if found:
        raise _NoJson(f"the reply contains {len(found)} separate JSON values; "
                      "expected exactly one")
    raise _NoJson(f"the reply is not valid JSON ({first_error})")


def _embedded(text: str) -> Iterator[Any]:
    """Every top-level JSON object or array inside surrounding prose."""
    decoder = json.JSONDecoder()
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                pass
            else:
                yield value
                i = end
                continue
        i += 1


@attrs.frozen
class OutputSpec(Generic[T]):
    """What an agent's reply must be, compiled once from ``Agent(output=...)``.

    Build with ``OutputSpec.of(tp)``. ``schema`` is ``None`` for plain text; otherwise an
    object schema, with a non-class type wrapped as ``{"value": ...}`` (``wrapped``).
    Equal specs have equal types.
    """

    type: Any
    name: str  # the schema's name, for providers that want one
    wrapped: bool  # the schema wraps the type as {"value": ...}
    _root: _Node | None = attrs.field(eq=False, repr=False, alias="root")

    @overload
    @classmethod
    def of(cls, tp: builtins.type[U]) -> OutputSpec[U]: ...  # `type` is a field here

    @overload
    @classmethod
    def of(cls, tp: Any) -> OutputSpec[Any]: ...  # Literal[...] and other special forms

    @classmethod
    def of(cls, tp: Any) -> OutputSpec[Any]:
        """Compile ``tp``; an unsupported type raises ``TypeError`` naming it (and where)."""
        if tp is str:
            return cls(str, "text", False, root=None)
        root = _compile(tp, "", ())
        return cls(tp, _schema_name(tp), _object_fields(root) is None, root=root)

    @property
    def schema(self) -> dict[str, Any] | None:
        """A fresh JSON Schema (an object at the root), or ``None`` for plain text."""
        if self._root is None:
            return None
        inner = self._root.schema()
        if not self.wrapped:
            return inner
        return {"type": "object", "properties": {"value": inner}, "required": ["value"],
                "additionalProperties": False}

    def describe(self) -> str:
        """One line saying what the reply must be, for prompts that re-ask."""
        if self._root is None:
            return "plain text"
        shape = self._root.render()
        if self.wrapped:
            shape = '{"value": ' + shape + "}"
        return f"a JSON object {shape}"

    def parse(self, text: str, parsed: Any, converter: cattrs.BaseConverter) -> T:
        """The reply as the output type.

        ``parsed`` is the provider's already-decoded JSON (``None``: decode ``text``);
        ``converter`` is the Runtime's private converter. Raises ``OutputParseError`` with
        a message that lists every problem by JSON path.
        """
        if self._root is None:
            return typing.cast(T, text)
        expected = _type_name(self.type)
        if parsed is None:
            body = _unfence(text)
            try:
                parsed = _load(body)
            except _NoJson as exc:
                if not self._accepts_label():
                    raise OutputParseError(str(exc), raw=text, expected=expected) from None
                parsed = self._label(body)
        first: list[str] | None = None
        for data, path in self._candidates(parsed):
            problems: list[str] = []
            value = self._root.check(data, path, problems)
            if not problems:
                return self._structure(value, path, text, expected, converter)
            first = problems if first is None else first
        assert first is not None  # there is always at least one candidate
        shown = first[:_MAX_PROBLEMS]
        if len(first) > _MAX_PROBLEMS:
            shown.append(f"and {len(first) - _MAX_PROBLEMS} more")
        raise OutputParseError(f"the reply does not match {expected}: " + "; ".join(shown),
                               raw=text, expected=expected)

    # ---- helpers

    def _scalar_root(self) -> _Node | None:
        root = self._root
        return root.inner if isinstance(root, _Nullable) else root

    def _accepts_label(self) -> bool:
        """A wrapped scalar may come back as a bare, unquoted label."""
        return isinstance(self._scalar_root(),
                          _Choice | _String | _Integer | _Number | _Boolean)

    def _label(self, text: str) -> str:
        # quotes and a final period are noise around a label, but may be part of free text
        return text.strip() if isinstance(self._scalar_root(), _String) else _clean(text)

    def _candidates(self, data: Any) -> Iterator[tuple[Any, str]]:
        """Readings of the decoded reply, most plausible first; the first clean one wins."""
        assert self._root is not None
        if not isinstance(data, dict):
            yield data, "$"
            return
        if not self.wrapped:
            yield data, "$"
            # {"Ticket": {...}}: one key that is not a field, holding an object
            if len(data) == 1:
                (key, inner), = data.items()
                names = set(_object_fields(self._root) or ())
                if key not in names and isinstance(inner, dict):
                    yield inner, f"$.{key}"
            return
        if "value" in data:
            yield data["value"], "$.value"
            if len(data) > 1 and self._root.accepts_object:  # an object with a value field
                yield data, "$"
            return
        if len(data) == 1 and not self._root.accepts_object:  # {"intent": "billing"}
            (key, inner), = data.items()
            yield inner, f"$.{key}"
            return
        yield data, "$"

    def _structure(self, value: Any, path: str, text: str, expected: str,
                   converter: cattrs.BaseConverter) -> T:
        try:
            return typing.cast(T, converter.structure(value, self.type))
        except Exception as exc:  # a class's own validators or converters refused the value
            lines = []
            for line in cattrs.transform_error(exc, path=path, format_exception=_format):
                desc, _, where = line.rpartition(" @ ")
                lines.append(f"{where}: {desc}")
            raise OutputParseError(f"the reply does not match {expected}: " + "; ".join(lines),
                                   raw=text, expected=expected) from exc


def _format(exc: BaseException, tp: type | None) -> str:
    """cattrs' wording, but keeping a validator's own message: it says what is wrong."""
    if isinstance(exc, ValueError | TypeError) and str(exc):
        return f"invalid value ({exc})"
    return format_exception(exc, tp)
