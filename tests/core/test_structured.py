"""OutputSpec: schemas for every output kind, lenient parsing, and messages fit for a re-ask."""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from typing import Any, Literal, Optional

import attrs
import cattrs
import plait
import pytest
from plait._structured import OutputSpec


class Priority(enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Level(enum.IntEnum):
    ONE = 1
    TWO = 2
    THREE = 3


class Casing(enum.Enum):
    UPPER = "High"
    LOWER = "high"


@attrs.frozen
class Ticket:
    """A support ticket."""

    title: str = attrs.field(metadata={"description": "one line, no ticket number"})
    priority: Priority
    tags: list[Priority] = attrs.field(factory=list)
    note: str | None = None


@attrs.frozen
class Backlog:
    owner: str
    tickets: list[Ticket]
    levels: tuple[Level, ...]


@dataclasses.dataclass
class Point:
    x: int
    y: float
    label: str | None = dataclasses.field(default=None, metadata={"description": "a name"})
    seen: bool = dataclasses.field(default=False, init=False)


@attrs.frozen
class Money:
    value: int
    currency: str


@attrs.frozen
class Positive:
    n: int = attrs.field(validator=attrs.validators.gt(0))


@attrs.frozen
class Node:
    children: list[Node]


@attrs.frozen
class Twin:  # Point's fields, so a union of the two cannot be told apart
    x: int
    y: float
    label: str | None = None


@attrs.frozen
class Untyped:
    x = attrs.field()


class Mixed(enum.Enum):
    A = "a"
    B = 2


class Floaty(enum.Enum):
    A = 0.5


@pytest.fixture
def converter() -> cattrs.Converter:
    return cattrs.Converter()


def parse(tp: Any, text: str, conv: cattrs.Converter, parsed: Any = None) -> Any:
    return OutputSpec.of(tp).parse(text, parsed, conv)


def assert_strict(schema: Any) -> None:
    """Every object closed and fully required, and nothing referenced (all inlined)."""
    if isinstance(schema, dict):
        assert "$ref" not in schema
        assert "$defs" not in schema
        if schema.get("type") == "object":
            assert schema["additionalProperties"] is False
            assert schema["required"] == list(schema["properties"])
        for value in schema.values():
            assert_strict(value)
    elif isinstance(schema, list):
        for value in schema:
            assert_strict(value)


# --------------------------------------------------------------------------- schemas

PRIORITY = {"type": "string", "enum": ["low", "medium", "high"]}


def wrapped(inner: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"value": inner}, "required": ["value"],
            "additionalProperties": False}


def test_str_has_no_schema() -> None:
    spec = OutputSpec.of(str)
    assert spec.schema is None
    assert not spec.wrapped
    assert spec.describe() == "plain text"


@pytest.mark.parametrize(("tp", "inner"), [
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (Priority, PRIORITY),
    (Level, {"type": "integer", "enum": [1, 2, 3]}),
    (Literal["billing", "refund"], {"type": "string", "enum": ["billing", "refund"]}),
    (Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
    (Literal["a", 1, None], {"anyOf": [{"type": "string", "enum": ["a"]},
                                       {"type": "integer", "enum": [1]}, {"type": "null"}]}),
    (Literal[Priority.LOW, "other"], {"type": "string", "enum": ["low", "other"]}),
    (list[Priority], {"type": "array", "items": PRIORITY}),
    (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
    (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
    (Optional[Priority], {"anyOf": [PRIORITY, {"type": "null"}]}),  # noqa: UP045  (typing.Optional itself)
])
def test_non_class_outputs_are_wrapped_in_an_object(tp: Any, inner: dict[str, Any]) -> None:
    spec = OutputSpec.of(tp)
    assert spec.wrapped
    assert spec.schema == wrapped(inner)
    assert_strict(spec.schema)


def test_attrs_class_schema_is_the_root_object_with_descriptions() -> None:
    spec = OutputSpec.of(Ticket)
    assert not spec.wrapped
    assert spec.name == "Ticket"
    assert spec.schema == {
        "type": "object",
        "description": "A support ticket.",
        "properties": {
            "title": {"type": "string", "description": "one line, no ticket number"},
            "priority": PRIORITY,
            "tags": {"type": "array", "items": PRIORITY},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        # strict mode: fields with defaults are required too (the model may send null/[])
        "required": ["title", "priority", "tags", "note"],
        "additionalProperties": False,
    }


def test_dataclass_schema_skips_init_false_fields_and_generated_docs() -> None:
    schema = OutputSpec.of(Point).schema
    assert schema == {
        "type": "object",
        "properties": {
            "x": {"type": "integer"},
            "y": {"type": "number"},
            "label": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "a name"},
        },
        "required": ["x", "y", "label"],
        "additionalProperties": False,
    }


def test_nested_classes_are_inlined_and_strict_everywhere() -> None:
    schema = OutputSpec.of(Backlog).schema
    assert_strict(schema)
    assert schema is not None
    tickets = schema["properties"]["tickets"]
    assert tickets["type"] == "array"
    assert tickets["items"] == OutputSpec.of(Ticket).schema
    assert schema["properties"]["levels"] == {"type": "array",
                                              "items": {"type": "integer", "enum": [1, 2, 3]}}
    for tp in (list[Ticket], Backlog | None, list[list[Priority]]):
        assert_strict(OutputSpec.of(tp).schema)


def test_schema_is_fresh_each_time() -> None:
    spec = OutputSpec.of(Ticket)
    first = spec.schema
    assert first is not None
    first["properties"].clear()
    again = spec.schema
    assert again is not None
    assert again["properties"]


@pytest.mark.parametrize(("tp", "name"), [
    (Ticket, "Ticket"), (Priority, "Priority"), (list[Ticket], "Ticket_list"),
    (Literal["a", "b"], "choice"), (int, "integer"), (Ticket | None, "Ticket"),
    (tuple[float, ...], "number_list"), (str, "text"),
])
def test_schema_names_are_provider_safe(tp: Any, name: str) -> None:
    spec = OutputSpec.of(tp)
    assert spec.name == name
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", spec.name)


def test_specs_compare_by_type() -> None:
    assert OutputSpec.of(list[Ticket]) == OutputSpec.of(list[Ticket])
    assert hash(OutputSpec.of(Priority)) == hash(OutputSpec.of(Priority))
    assert OutputSpec.of(Priority) != OutputSpec.of(Level)


@pytest.mark.parametrize(("tp", "words"), [
    (dict[int, str], ["dict[int, str]", "string keys"]),
    (dict, ["dict", "dict[str, X]"]),
    (Point | Twin, ["Point and Twin", "same fields", "Literal"]),
    (list, ["list", "item type"]),
    (set[int], ["set[int]", "supported output types are"]),
    (Any, ["Any"]),
    (None, ["None"]),
    (Node, ["Node", "recursive"]),
    (Mixed, ["Mixed", "all str or all int"]),
    (Floaty, ["Floaty"]),
    (Literal[1.5], ["Literal[1.5]", "float"]),
    (list[bytes], ["bytes", "list item"]),
    (Untyped, ["Untyped.x", "no type annotation"]),
])
def test_unsupported_types_fail_at_construction_naming_them(tp: Any, words: list[str]) -> None:
    with pytest.raises(TypeError) as info:
        OutputSpec.of(tp)
    for word in words:
        assert word in str(info.value)


def test_describe_is_one_line_saying_what_to_send() -> None:
    assert OutputSpec.of(Priority).describe() == \
        'a JSON object {"value": "low" | "medium" | "high"}'
    described = OutputSpec.of(Ticket).describe()
    assert described == ('a JSON object {"title": string, "priority": "low" | "medium" | '
                         '"high", "tags": ["low" | "medium" | "high", ...], '
                         '"note": string | null}')
    assert "\n" not in OutputSpec.of(Backlog).describe()
    assert OutputSpec.of(bool | None).describe() == 'a JSON object {"value": true | false | null}'


# --------------------------------------------------------------------------- parsing

def test_str_output_is_the_text_unchanged(converter: cattrs.Converter) -> None:
    text = '  ```json\n{"not": "parsed"}\n```  '
    assert parse(str, text, converter) == text


def test_attrs_class_from_text_and_from_parsed(converter: cattrs.Converter) -> None:
    data = {"title": "Refund", "priority": "high", "tags": ["low"], "note": None}
    want = Ticket("Refund", Priority.HIGH, [Priority.LOW])
    assert parse(Ticket, json.dumps(data), converter) == want
    # the provider's parsed JSON wins over the text
    assert parse(Ticket, "ignored", converter, parsed=data) == want


def test_defaults_fill_fields_the_model_left_out(converter: cattrs.Converter) -> None:
    got = parse(Ticket, '{"title": "t", "priority": "low", "extra": 1}', converter)
    assert got == Ticket("t", Priority.LOW)
    assert parse(Point, '{"x": 1, "y": 2}', converter) == Point(1, 2.0)


def test_nested_combinations(converter: cattrs.Converter) -> None:
    reply = {"owner": "ana", "levels": [1, "TWO", "3"],
             "tickets": [{"title": "a", "priority": "Low", "tags": ["HIGH", "medium"]}]}
    got = parse(Backlog, json.dumps(reply), converter)
    assert got == Backlog("ana", [Ticket("a", Priority.LOW, [Priority.HIGH, Priority.MEDIUM])],
                          (Level.ONE, Level.TWO, Level.THREE))
    assert parse(list[Ticket], '[{"title": "x", "priority": "medium"}]', converter) == \
        [Ticket("x", Priority.MEDIUM)]
    assert parse(list[list[Priority]], '{"value": [["low"], []]}', converter) == \
        [[Priority.LOW], []]


@pytest.mark.parametrize("text", [
    '```json\n{"title": "x", "priority": "low"}\n```',
    '```\n{"title": "x", "priority": "low"}\n```',
    'Here you go:\n{"title": "x", "priority": "low"}\nLet me know if you need more.',
    'Sure!\n```json\n{"title": "x", "priority": "low"}\n```\nDone.',
    '{"Ticket": {"title": "x", "priority": "low"}}',
])
def test_fences_prose_and_a_named_wrapper_are_tolerated(
        text: str, converter: cattrs.Converter) -> None:
    assert parse(Ticket, text, converter) == Ticket("x", Priority.LOW)


@pytest.mark.parametrize("text", [
    '{"value": "high"}', '"high"', "high", "HIGH", " High. ", "`high`", "'high'",
    '```\nhigh\n```', '```text\nHigh\n```', '{"priority": "high"}', '{"value": "HIGH"}',
    '{"value": "High", "reason": "it is urgent"}',
])
def test_enum_by_value_or_name_any_case(text: str, converter: cattrs.Converter) -> None:
    assert parse(Priority, text, converter) is Priority.HIGH


@pytest.mark.parametrize(("text", "want"), [
    ('{"value": 2}', Level.TWO), ("2", Level.TWO), ('"2"', Level.TWO), ("two", Level.TWO),
    ("THREE", Level.THREE),
])
def test_int_enum(text: str, want: Level, converter: cattrs.Converter) -> None:
    assert parse(Level, text, converter) is want


def test_literal_and_literal_of_enum(converter: cattrs.Converter) -> None:
    route = Literal["billing", "refund", "other"]
    assert parse(route, "Refund", converter) == "refund"
    assert parse(route, '{"category": "billing"}', converter) == "billing"
    assert parse(Literal[1, 2], "2", converter) == 2
    assert parse(Literal[Priority.LOW, "other"], "LOW", converter) is Priority.LOW
    assert parse(Literal[Priority.LOW, "other"], '{"value": "other"}', converter) == "other"


def test_scalars_accept_bare_values(converter: cattrs.Converter) -> None:
    assert parse(int, "42", converter) == 42
    assert parse(int, '{"value": "7"}', converter) == 7
    assert parse(int, "3.0", converter) == 3
    assert parse(float, "2.5", converter) == 2.5
    assert parse(float, '{"value": 2}', converter) == 2.0
    assert parse(bool, "false", converter) is False
    assert parse(bool, '{"value": "True"}', converter) is True
    assert parse(bool, "TRUE.", converter) is True
    assert parse(str | None, "free text.", converter) == "free text."
    assert parse(list[int], "[1, 2, 3]", converter) == [1, 2, 3]
    assert parse(tuple[Priority, ...], '["low", "High"]', converter) == \
        (Priority.LOW, Priority.HIGH)


def test_optional_outputs(converter: cattrs.Converter) -> None:
    assert parse(Priority | None, '{"value": null}', converter) is None
    assert parse(Priority | None, "null", converter) is None
    assert parse(Priority | None, "None", converter) is None
    assert parse(Priority | None, "low", converter) is Priority.LOW
    # a literal value spelled "none" is the value, not null
    assert parse(Literal["none", "some"] | None, "None", converter) == "none"
    # a bare object whose own field is called "value" is not mistaken for the wrapper
    assert parse(Money | None, '{"value": 3, "currency": "EUR"}', converter) == \
        Money(3, "EUR")
    assert parse(Money | None, '{"value": {"value": 3, "currency": "EUR"}}', converter) == \
        Money(3, "EUR")
    assert parse(Money | None, '{"value": null}', converter) is None


def test_uses_the_converter_it_is_given(converter: cattrs.Converter) -> None:
    converter.register_structure_hook(Money, lambda d, _: ("custom", d["value"]))
    assert parse(Money, '{"value": 1, "currency": "USD"}', converter) == ("custom", 1)
    assert parse(Money, '{"value": 1, "currency": "USD"}', cattrs.Converter()) == \
        Money(1, "USD")


# --------------------------------------------------------------------------- failures

def fail(tp: Any, text: str, conv: cattrs.Converter, parsed: Any = None) -> plait.OutputParseError:
    with pytest.raises(plait.OutputParseError) as info:
        parse(tp, text, conv, parsed)
    assert info.value.raw == text
    return info.value


def test_failure_lists_every_problem_by_path(converter: cattrs.Converter) -> None:
    text = '{"title": null, "priority": "urgent", "tags": ["low", 5]}'
    err = fail(Ticket, text, converter)
    assert err.expected == "Ticket"
    assert str(err).startswith(
        'the reply does not match Ticket: $.title: expected a string, got null; '
        '$.priority: expected one of "low" | "medium" | "high", got "urgent"; '
        '$.tags[1]: expected one of "low" | "medium" | "high", got 5; raw reply: ')


def test_missing_fields_and_wrong_shapes(converter: cattrs.Converter) -> None:
    err = fail(Backlog, '{"tickets": [{"title": "a"}, 3], "levels": {}}', converter)
    message = str(err)
    assert "$.owner: required field missing" in message
    assert "$.tickets[0].priority: required field missing" in message
    assert "$.tickets[1]: expected an object (Ticket), got 3" in message
    assert "$.levels: expected an array, got an object" in message


def test_unsafe_coercions_are_refused(converter: cattrs.Converter) -> None:
    # what a bare cattrs converter would quietly turn into 3, "None" and True
    assert "expected an integer, got 3.7" in str(fail(int, '{"value": 3.7}', converter))
    assert "expected an integer, got true" in str(fail(int, '{"value": true}', converter))
    assert "expected a string, got null" in str(fail(Money, '{"value": 1, "currency": null}',
                                                     converter))
    assert 'expected true or false, got "no"' in str(fail(bool, "no", converter))
    assert "expected a number" in str(fail(float, '{"value": "NaN"}', converter))
    assert "expected a number, got NaN" in str(fail(float, '{"value": NaN}', converter))


def test_never_guesses_between_two_candidates(converter: cattrs.Converter) -> None:
    assert parse(Casing, "high", converter) is Casing.LOWER  # exact values still match
    assert parse(Casing, "High", converter) is Casing.UPPER
    err = fail(Casing, "HIGH", converter)
    assert 'ambiguous between "High" and "high"' in str(err)
    err = fail(Literal["Yes", "YES", "no"], "yes", converter)
    assert 'ambiguous between "Yes" and "YES"' in str(err)


def test_wrapped_value_problems_are_reported_under_value(converter: cattrs.Converter) -> None:
    err = fail(Priority, '{"value": "urgent"}', converter)
    assert str(err).startswith('the reply does not match Priority: $.value: expected one of '
                               '"low" | "medium" | "high", got "urgent"')
    assert err.expected == "Priority"
    assert fail(list[Ticket], "[{", converter).expected == "list[Ticket]"
    assert fail(Literal["a", "b"], "c", converter).expected == "Literal['a', 'b']"


def test_not_json_and_too_much_json(converter: cattrs.Converter) -> None:
    err = fail(Ticket, "I cannot help with that.", converter)
    assert str(err).startswith("the reply is not valid JSON (Expecting value at line 1 column 1)")
    err = fail(Ticket, 'first {"title": "a", "priority": "low"} then {"title": "b"}', converter)
    assert "2 separate JSON values; expected exactly one" in str(err)
    err = fail(Priority, "The category is probably billing, or maybe high.", converter)
    assert "expected one of" in str(err)


def test_class_validators_are_reported_with_their_message(
        converter: cattrs.Converter) -> None:
    err = fail(Positive, '{"n": -1}', converter)
    assert "invalid value ('n' must be > 0: -1)" in str(err)
    assert isinstance(err.__cause__, Exception)


def test_long_problem_lists_are_cut(converter: cattrs.Converter) -> None:
    err = fail(list[Priority], json.dumps({"value": ["bad"] * 25}), converter)
    assert "$.value[9]" in str(err)
    assert "$.value[10]" not in str(err)
    assert "and 15 more" in str(err)
