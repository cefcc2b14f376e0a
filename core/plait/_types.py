"""The value types plait's converter knows beyond attrs classes: dates, UUIDs, pydantic
models, TypedDicts and unions of classes.

pydantic is never a dependency: a pydantic model is recognised by duck typing
(``model_validate`` and ``model_json_schema`` on the class), and pydantic itself is
imported only once such a class is in use, which means it is installed.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import types
import typing
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import cattrs

__all__ = ["ISO_TYPES", "Picked", "adapter", "is_pydantic_model", "register_hooks",
           "union_members"]

ISO_TYPES: dict[type, str] = {datetime.datetime: "date-time", datetime.date: "date",
                              datetime.time: "time", uuid.UUID: "uuid"}
"""Types written as strings in JSON, with their JSON Schema ``format``."""


def is_pydantic_model(tp: Any) -> bool:
    """A pydantic ``BaseModel`` subclass (by duck typing: no import of pydantic)."""
    return (isinstance(tp, type) and callable(getattr(tp, "model_validate", None))
            and callable(getattr(tp, "model_json_schema", None))
            and hasattr(tp, "model_fields"))


@functools.cache
def adapter(tp: Any) -> Any:
    """pydantic's ``TypeAdapter`` for ``tp``, built once per type."""
    import pydantic  # only reached with a pydantic type in hand, so pydantic is installed

    return pydantic.TypeAdapter(tp)


@attrs.frozen
class Picked:
    """A value the output check already matched to one member of a union: the converter
    structures it as that member instead of guessing again."""

    type: Any
    data: Any


def union_members(tp: Any) -> tuple[Any, ...] | None:
    """The members of a union of two or more non-None types; ``None`` for anything else
    (``X | None`` included: cattrs handles that itself)."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    members = tuple(a for a in typing.get_args(tp) if a is not type(None))
    return members if len(members) > 1 else None


def register_hooks(conv: cattrs.Converter) -> None:
    """Teach ``conv`` the types above (called by ``make_converter``)."""
    for tp in (datetime.datetime, datetime.date, datetime.time):
        conv.register_unstructure_hook(tp, lambda v: v.isoformat())
        conv.register_structure_hook(tp, _from_iso)
    conv.register_unstructure_hook(uuid.UUID, str)
    conv.register_structure_hook(uuid.UUID, lambda v, _: v if isinstance(v, uuid.UUID)
                                 else uuid.UUID(str(v)))
    conv.register_unstructure_hook_func(is_pydantic_model,
                                        lambda v: v.model_dump(mode="json"))
    conv.register_structure_hook_func(is_pydantic_model, _pydantic_structure)
    conv.register_structure_hook_func(typing.is_typeddict,
                                      functools.partial(_typeddict_structure, conv))
    conv.register_structure_hook_func(lambda tp: union_members(tp) is not None,
                                      functools.partial(_union_structure, conv))


def _from_iso(value: Any, tp: Any) -> Any:
    if isinstance(value, tp) and not (tp is datetime.date and isinstance(value, datetime.datetime)):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 string, got {type(value).__name__}")
    return tp.fromisoformat(value)


def _pydantic_structure(value: Any, tp: type[Any]) -> Any:
    if isinstance(value, tp):  # the output check validated it already
        return value
    return adapter(typing.cast(Any, tp)).validate_python(value)


def _typeddict_structure(conv: cattrs.Converter, value: Any, tp: Any) -> Any:
    # Each key given, by its hint. cattrs' own reads ``__required_keys__``, which under
    # ``from __future__ import annotations`` marks a ``NotRequired`` key required.
    if not isinstance(value, Mapping):
        raise ValueError(f"expected an object for {tp.__name__}, got {type(value).__name__}")
    hints = typing.get_type_hints(tp)
    return {k: conv.structure(v, hints[k]) for k, v in value.items() if k in hints}


def _union_structure(conv: cattrs.Converter, value: Any, tp: Any) -> Any:
    if isinstance(value, Picked):
        return conv.structure(value.data, value.type)
    if value is None and type(None) in typing.get_args(tp):
        return None
    members = union_members(tp)
    assert members is not None, "the hook is registered for unions only"
    first: Exception | None = None
    for member in sorted(members, key=lambda m: _fit(m, value)):
        if _fit(member, value) == _NO_FIT:
            break
        try:
            return conv.structure(value, member)
        except Exception as exc:  # the next member may fit
            first = first or exc
    raise first or ValueError(f"{type(value).__name__} fits none of {tp}")


_NO_FIT = 3


def _fit(member: Any, value: Any) -> int:
    """How well ``value`` (plain JSON data) fits ``member``: 0 best, ``_NO_FIT`` not at all.
    A mapping fits best the class whose fields are exactly its keys, as written by the
    converter itself."""
    if isinstance(member, type) and isinstance(value, member) and not isinstance(value, bool):
        return 0
    names = field_names(member)
    if names is not None:
        if not isinstance(value, Mapping):
            return _NO_FIT
        return 0 if set(value) == set(names) else 1 if set(value) <= set(names) else 2
    if isinstance(member, type) and issubclass(member, enum.Enum):
        return 0 if any(m.value == value for m in member) else _NO_FIT
    if member is Decimal and isinstance(value, str | int | float):
        return 1
    origin = typing.get_origin(member) or member
    if origin is typing.Literal:
        return 0 if value in typing.get_args(member) else _NO_FIT
    if isinstance(value, bool):
        return 0 if member is bool else _NO_FIT
    if member is float and isinstance(value, int):
        return 1
    if isinstance(value, list) and origin in (list, tuple):
        return 0
    if isinstance(value, Mapping) and origin in (dict, Mapping):
        return 1
    return 2 if isinstance(value, str) and member in ISO_TYPES else _NO_FIT


def field_names(tp: Any) -> tuple[str, ...] | None:
    """The field names of a class that JSON writes as an object; ``None`` for others."""
    if not isinstance(tp, type):
        return None
    if attrs.has(tp):
        return tuple(a.name for a in attrs.fields(tp))
    if dataclasses.is_dataclass(tp):
        return tuple(f.name for f in dataclasses.fields(tp))
    if typing.is_typeddict(tp):
        return tuple(typing.get_type_hints(tp))
    if is_pydantic_model(tp):
        return tuple(tp.model_fields)  # type: ignore[attr-defined]  # a pydantic model
    return None
