"""Validators on structure: a JSON schema, or cattrs structuring into a type."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._naming import named

if TYPE_CHECKING:
    import plait

__all__ = ["json_schema", "structure"]

_PROBLEMS = 3  # problems listed in one reason


def json_schema(schema: Mapping[str, Any]) -> Callable[..., str | None]:
    """The output, as JSON, must be valid against ``schema`` (any draft jsonschema knows;
    ``format`` is checked too). attrs classes and dataclasses are turned into JSON with
    the Runtime's converter first, exactly as they cross the step boundary.
    """
    # heavy: imported when a schema is built, never at plugin load; ships no type stubs
    import cattrs
    import jsonschema  # type: ignore[import-untyped]

    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"json_schema(): the schema itself is invalid: {exc.message}") from None
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    fallback = cattrs.Converter()

    def check(value: Any, ctx: plait.StepContext | None = None) -> str | None:
        converter = ctx.runtime.converter if ctx is not None else fallback
        try:  # a JSON round trip: tuples become arrays, as in the serialized output
            data = json.loads(json.dumps(converter.unstructure(value)))
        except (TypeError, ValueError) as exc:
            return f"the output cannot be turned into JSON: {exc}"
        errors = sorted(validator.iter_errors(data), key=jsonschema.exceptions.relevance,
                        reverse=True)  # most relevant first, as best_match picks
        if not errors:
            return None
        shown = "; ".join(f"{e.message} at {e.json_path}" for e in errors[:_PROBLEMS])
        more = len(errors) - _PROBLEMS
        return shown + (f" (and {more} more problems)" if more > 0 else "")

    title = schema.get("title")
    return named(f"json_schema({title!r})" if isinstance(title, str) else "json_schema", check)


def structure(tp: Any, *, forbid_extra_keys: bool = False) -> Callable[[Any], str | None]:
    """The output must structure into ``tp`` with cattrs (attrs classes, dataclasses,
    ``list[...]``, ``Literal``, Enums...). Scalars are strict: ``"3"`` is not an ``int``
    and ``True`` is not a number. Uses a private converter; the global one is untouched.
    """
    import cattrs  # imported when the validator is built, never at plugin load

    converter = cattrs.Converter(forbid_extra_keys=forbid_extra_keys)
    for scalar in (str, int, float, bool):
        converter.register_structure_hook(scalar, _strict(scalar))

    def check(value: Any) -> str | None:
        try:
            converter.structure(converter.unstructure(value), tp)
        except Exception as exc:  # cattrs raises ClassValidationError, or the hook's error
            problems = cattrs.transform_error(exc, path="$")
            shown = "; ".join(problems[:_PROBLEMS])
            more = len(problems) - _PROBLEMS
            return (f"the output is not a valid {_type_name(tp)}: {shown}"
                    + (f" (and {more} more problems)" if more > 0 else ""))
        return None

    return named(f"structure({_type_name(tp)})", check)


def _strict(scalar: type) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _tp: Any) -> Any:
        ok = isinstance(value, scalar) and (scalar is bool or not isinstance(value, bool))
        if scalar is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise TypeError(f"expected {scalar.__name__}, got {type(value).__name__}")
        return scalar(value)

    return hook


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and typing.get_origin(tp) is None:
        return tp.__name__
    return repr(tp).replace("typing.", "")
