"""The private cattrs converter: values to JSON and back at every step boundary.

Each Runtime owns one converter (plugins extend it through
``plait_register_converter_hooks``); ``cattrs.global_converter`` is never touched.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import functools
import json
import types
import typing
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import SerializationError
from ._model import Message
from ._money import Usage
from ._types import ISO_TYPES, is_pydantic_model, register_hooks

if TYPE_CHECKING:  # cattrs loads on first use: `import plait` (and `plait --help`) stay fast
    import cattrs

__all__ = ["LOCAL", "SAFE", "check_serializable", "from_json", "make_converter",
           "serializable_type", "to_json"]

T = typing.TypeVar("T")

_SCALARS = (str, int, float, bool, type(None))

LOCAL = "plait.local"
"""attrs field metadata key: ``metadata={LOCAL: True}`` marks a live object (an exception)
that stays in this process and is left out of JSON."""

SAFE = "plait.safe"
"""attrs field metadata key: ``metadata={SAFE: True}`` marks a field that only ever holds
plait's own plain values (usage, counts), so the serializability check need not walk it."""


def make_converter() -> cattrs.Converter:
    """A fresh converter that knows plait's own types."""
    import cattrs
    from cattrs.gen import make_dict_unstructure_fn, override

    conv = cattrs.Converter()
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Decimal, lambda v, _: Decimal(str(v)))
    conv.register_unstructure_hook_factory(
        _has_local_fields,
        lambda cls: make_dict_unstructure_fn(cls, conv, **{  # type: ignore[arg-type]
            # the keywords are field names, each with its override; mypy reads them as flags
            a.name: override(omit=True) for a in attrs.fields(cls) if a.metadata.get(LOCAL)}))
    # sets (bare, or declared as set[...] fields) become lists: JSON has no sets
    conv.register_unstructure_hook_factory(_is_set, lambda _t: functools.partial(_set_list, conv))
    register_hooks(conv)  # dates, UUIDs, pydantic models, unions of classes
    _register_usage(conv)
    # a plain turn stays {"role", "content"}: no empty tool fields
    conv.register_unstructure_hook(Message, make_dict_unstructure_fn(
        Message, conv, _cattrs_omit_if_default=True))
    return conv


def _register_usage(conv: cattrs.Converter) -> None:
    """``Usage`` with an unpriced call writes ``"cost": null`` (unknown, not $0) and keeps
    what the priced calls cost as ``"priced_cost"``, so nothing is lost on the way back."""
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

    plain_out = make_dict_unstructure_fn(Usage, conv)
    plain_in = make_dict_structure_fn(Usage, conv)

    def unstructure(usage: Usage) -> dict[str, Any]:
        data = plain_out(usage)
        if usage.unpriced:
            data["priced_cost"], data["cost"] = data["cost"], None
        return data

    def structure(data: Mapping[str, Any], _: type) -> Usage:
        if isinstance(data, Mapping) and data.get("cost", "0") is None:
            data = {**data, "cost": data.get("priced_cost", "0")}
            data.pop("priced_cost", None)
        return plain_in(data, Usage)

    conv.register_unstructure_hook(Usage, unstructure)
    conv.register_structure_hook(Usage, structure)


@functools.cache
def _default_converter() -> cattrs.Converter:
    return make_converter()


def _has_local_fields(tp: Any) -> bool:
    return attrs.has(tp) and any(a.metadata.get(LOCAL) for a in attrs.fields(tp))


def _is_set(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return isinstance(origin, type) and issubclass(origin, AbstractSet)


def _set_list(conv: cattrs.Converter, value: AbstractSet[Any]) -> list[Any]:
    items = [conv.unstructure(v) for v in value]
    try:
        return sorted(items)
    except TypeError:  # unorderable members: keep them, in iteration order
        return items


_CONTAINERS = {list, tuple, set, frozenset, collections.abc.Sequence,
               collections.abc.MutableSequence, collections.abc.Set,
               collections.abc.MutableSet, collections.abc.Iterable}
_MAPPINGS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}


@functools.cache
def serializable_type(tp: Any) -> bool:
    """Whether every value of type ``tp`` turns into JSON with plait's own converter:
    scalars, ``Decimal``, dates, times, UUIDs, Enums, ``Literal``, containers and mappings
    (string or int keys) of such, unions of such, pydantic models, and attrs classes,
    dataclasses and TypedDicts whose fields are all such. Anything else (``Any``, an
    unknown class) is not known to be, so a value of it is checked by walking it."""
    return _plain(tp, ())


def _plain(tp: Any, seen: tuple[type, ...]) -> bool:
    if tp in _SCALARS or tp is Decimal or tp is None or tp in ISO_TYPES:
        return True
    if is_pydantic_model(tp):  # model_dump(mode="json") is JSON by construction
        return True
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return all(type(m.value) in _SCALARS for m in tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return all(type(a) in _SCALARS for a in args)
    if origin is typing.Union or origin is types.UnionType:
        return all(_plain(a, seen) for a in args)
    if origin is typing.Annotated:
        return _plain(args[0], seen)
    if origin in _CONTAINERS:
        return bool(args) and all(_plain(a, seen) for a in args if a is not Ellipsis)
    if origin in _MAPPINGS:
        return len(args) == 2 and args[0] in (str, int) and _plain(args[1], seen)
    if isinstance(tp, type) and (attrs.has(tp) or dataclasses.is_dataclass(tp)
                                 or typing.is_typeddict(tp)):
        if tp in seen:  # a recursive class: the cycle adds nothing new
            return True
        try:
            hints = typing.get_type_hints(tp)
        except Exception:  # an annotation that does not resolve proves nothing
            return False
        fields = list(hints) if typing.is_typeddict(tp) else (
            [a.name for a in attrs.fields(tp)] if attrs.has(tp)
            else [f.name for f in dataclasses.fields(tp)])
        return all(name in hints and _plain(hints[name], (*seen, tp)) for name in fields)
    return False


def check_serializable(conv: cattrs.Converter | None, value: Any, step_id: str) -> None:
    """Raise ``SerializationError`` naming the path of the first value JSON cannot hold
    (``conv``: a Runtime's converter, or the default one)."""
    if type(value) in _SCALARS:  # the common case costs one type check
        return
    conv = conv or _default_converter()
    checked = _checked_fields(type(value))
    if checked is None:
        _check(conv, value, "$", step_id)
    else:  # only the fields that can hold anything: a fan-out's values, not its usage
        for name in checked:
            part = getattr(value, name)
            if type(part) not in _SCALARS:
                _check(conv, part, f"$.{name}", step_id)


def _checked_fields(cls: type) -> tuple[str, ...] | None:
    """The fields of ``cls`` to check, when some are marked ``SAFE``; else ``None``."""
    try:
        return _CHECKED[cls]
    except KeyError:
        fields = attrs.fields(cls) if attrs.has(cls) else ()
        found = _CHECKED[cls] = (tuple(a.name for a in fields if not a.metadata.get(SAFE))
                                 if any(a.metadata.get(SAFE) for a in fields) else None)
        return found


_CHECKED: dict[type, tuple[str, ...] | None] = {}  # per class; classes do not change


def _check(conv: cattrs.Converter, value: Any, where: str, step_id: str) -> None:
    try:
        data = conv.unstructure(value)
    except Exception as exc:  # e.g. a value that does not match its field's declared type
        path, part = _locate(conv, value, where, step_id, set())
        raise SerializationError(
            step_id, path, f"{type(part).__name__} cannot be turned into JSON "
            f"({type(exc).__name__}: {exc})") from exc
    _walk(data, where, step_id)


def _locate(conv: cattrs.Converter, value: Any, path: str, step_id: str,
            seen: set[int]) -> tuple[str, Any]:
    """The path of the innermost part of ``value`` that the converter chokes on."""
    seen.add(id(value))
    for child_path, child in _parts(value, path):
        if id(child) in seen:
            continue
        try:
            _walk(conv.unstructure(child), child_path, step_id)
        except Exception:
            return _locate(conv, child, child_path, step_id, seen)
    return path, value


def _parts(value: Any, path: str) -> list[tuple[str, Any]]:
    if attrs.has(type(value)):
        return [(f"{path}.{a.name}", getattr(value, a.name)) for a in attrs.fields(type(value))]
    if dataclasses.is_dataclass(value):
        return [(f"{path}.{f.name}", getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, Mapping):
        return [(f"{path}.{k}", v) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    return []


def _walk(data: Any, path: str, step_id: str) -> None:
    if isinstance(data, _SCALARS):
        return
    if isinstance(data, Mapping):
        for key, item in data.items():
            if not isinstance(key, str | int) or isinstance(key, bool):
                # JSON writes int keys as strings; the converter structures them back
                raise SerializationError(step_id, path, f"key {key!r} is not a string or int")
            if type(item) not in _SCALARS:  # a path is built only where there is more to see
                _walk(item, f"{path}.{key}", step_id)
    elif isinstance(data, list | tuple):
        for i, item in enumerate(data):
            if type(item) not in _SCALARS:
                _walk(item, f"{path}[{i}]", step_id)
    else:
        raise SerializationError(
            step_id, path, f"{type(data).__name__} cannot be turned into JSON "
            "(return attrs classes, dataclasses or plain data, or register a converter hook)"
        )


def to_json(value: Any, *, indent: int | None = None,
            converter: cattrs.Converter | None = None) -> str:
    conv = converter or _default_converter()
    return json.dumps(conv.unstructure(value), indent=indent)


def from_json(text: str, cls: type[T], converter: cattrs.Converter | None = None) -> T:
    """Structure ``text`` as ``cls``; malformed input raises ``ValueError`` saying where."""
    import cattrs

    conv = converter or _default_converter()
    try:
        return conv.structure(json.loads(text), cls)
    except (ValueError, cattrs.BaseValidationError) as exc:
        detail = "; ".join(cattrs.transform_error(exc)) if isinstance(
            exc, cattrs.BaseValidationError) else str(exc)
        raise ValueError(f"not a serialized {cls.__name__}: {detail}") from exc
