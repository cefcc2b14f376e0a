"""What a pipeline takes and gives: ``Pipeline(..., inputs=...)`` and the JSON schemas.

``inputs=`` is a mapping of name -> type (every name required), or an attrs class, a
dataclass or a TypedDict (a field with a default, or a TypedDict key that is not required,
is optional). A run's inputs are checked against it when the run starts, before any step
runs or any money is spent: a missing name raises ``MissingInput``, one the pipeline does
not declare ``UnknownInput``, both with a did-you-mean. Defaults fill in what was not given.

The schemas come from ``_structured``'s type tree, the one that also describes model
output, so a pipeline's schema and an agent's schema never disagree. A type that tree
cannot describe (``Any``, a free-form ``dict``) allows any JSON value: ``{}``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._errors import MissingInput, PipelineDefinitionError, UnknownInput

__all__ = ["InputSpec", "type_schema"]

_NO_DEFAULT: Any = object()


@attrs.frozen
class _Input:
    name: str
    type: Any
    default: Callable[[], Any] | None  # makes the default value; None: the input is required


@attrs.frozen
class InputSpec:
    """The inputs a pipeline declares, compiled once at construction."""

    pipeline: str
    declared: Any  # what ``inputs=`` was: a mapping or a class
    fields: Mapping[str, _Input]

    @classmethod
    def of(cls, pipeline: str, declared: Any) -> InputSpec:
        """Compile ``inputs=``; a malformed one raises ``PipelineDefinitionError``."""
        where = f"pipeline {pipeline!r}: inputs"
        if isinstance(declared, Mapping):
            found = []
            for name, tp in declared.items():
                if not isinstance(name, str) or not name:
                    raise PipelineDefinitionError(
                        f"{where}: names must be non-empty strings, got {name!r}")
                if isinstance(tp, str):
                    raise PipelineDefinitionError(
                        f"{where}[{name!r}] is the string {tp!r}; give the type itself")
                found.append(_Input(name, tp, None))
        elif isinstance(declared, type) and typing.is_typeddict(declared):
            found = [_Input(name, tp, None if _required(declared, name) else _absent)
                     for name, tp in _hints(declared, where).items()]
        elif _is_class(declared):
            found = _class_inputs(declared, where)
        else:
            raise PipelineDefinitionError(
                f"{where} must be a mapping of name -> type, an attrs class, a dataclass or a "
                f"TypedDict, got {declared!r}")
        return cls(pipeline, declared, {i.name: i for i in found})

    def check(self, given: Any, *, nested: bool = False) -> dict[str, Any]:
        """The run's inputs with defaults filled in, or ``MissingInput`` / ``UnknownInput``.

        ``given`` may also be an instance of the declared class (anything else that is not
        a mapping comes back as it is, for the caller to refuse). Nested in another
        pipeline (``nested``), the run also sees the outer run's inputs and its
        dependencies' outputs, so names it does not declare are allowed there.
        """
        if _is_class(self.declared) and isinstance(given, self.declared):
            given = {name: getattr(given, name) for name in self.fields}
        if not isinstance(given, Mapping):
            return typing.cast(dict[str, Any], given)
        inputs = dict(given)
        if not nested:
            for name in inputs:
                if name not in self.fields:
                    raise UnknownInput(self.pipeline, name, list(self.fields))
        for name, field in self.fields.items():
            if name in inputs:
                continue
            if field.default is None:
                raise MissingInput(name, list(inputs))
            value = field.default()
            if value is not _NO_DEFAULT:
                inputs[name] = value
        return inputs

    def schema(self) -> dict[str, Any]:
        """A fresh JSON schema of the inputs: an object, optional inputs not required."""
        out: dict[str, Any] = {"type": "object", "title": f"{self.pipeline} inputs"}
        doc = _doc(self.declared)
        if doc:
            out["description"] = doc
        out.update(properties={name: type_schema(f.type) for name, f in self.fields.items()},
                   required=[name for name, f in self.fields.items() if f.default is None],
                   additionalProperties=False)
        return out


def type_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema of one type, ``{}`` (any JSON value) for one it cannot describe."""
    from ._structured import json_schema  # cattrs loads with the first schema, not on import

    try:
        return json_schema(tp)
    except TypeError:
        return {}


def _is_class(declared: Any) -> bool:
    """An attrs class or a dataclass (a TypedDict has no instances of its own)."""
    return isinstance(declared, type) and (attrs.has(declared)
                                           or dataclasses.is_dataclass(declared))


def _absent() -> Any:
    return _NO_DEFAULT  # an optional TypedDict key with no value: left out of the inputs


def _required(td: Any, key: str) -> bool:
    """Whether a TypedDict key is required; ``NotRequired[...]`` is read from the
    annotation too, since under ``from __future__ import annotations`` Python 3.11 does
    not see it when it builds ``__required_keys__``."""
    marker = typing.get_origin(typing.get_type_hints(td, include_extras=True)[key])
    if marker is typing.NotRequired:
        return False
    return marker is typing.Required or key in td.__required_keys__


def _hints(tp: type, where: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(tp)
    except Exception as exc:  # a forward reference that does not resolve
        raise PipelineDefinitionError(f"{where}: cannot resolve the types of "
                                      f"{tp.__name__}: {exc}") from exc


def _class_inputs(tp: type, where: str) -> list[_Input]:
    hints = _hints(tp, where)
    found = []
    if attrs.has(tp):
        for a in attrs.fields(tp):
            if a.init:
                found.append(_Input(a.alias or a.name, hints.get(a.name, a.type),
                                    _attrs_default(a.default)))
    else:
        for f in dataclasses.fields(tp):
            if f.init:
                found.append(_Input(f.name, hints.get(f.name, f.type), _dataclass_default(f)))
    return found


def _attrs_default(default: Any) -> Callable[[], Any] | None:
    if default is attrs.NOTHING:
        return None
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]  # attrs types Factory as a function
        if default.takes_self:
            return lambda: _NO_DEFAULT  # needs the instance: the step passes its own default
        return typing.cast(Callable[[], Any], default.factory)
    return lambda: default


def _dataclass_default(f: dataclasses.Field[Any]) -> Callable[[], Any] | None:
    if f.default is not dataclasses.MISSING:
        value = f.default
        return lambda: value
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory
    return None


def _doc(declared: Any) -> str | None:
    if not isinstance(declared, type):
        return None
    doc = declared.__doc__
    if not doc or doc.startswith(f"{declared.__name__}("):  # the docstring dataclass makes up
        return None
    return " ".join(doc.split())
