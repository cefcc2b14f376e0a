"""The output types people use: pydantic models, TypedDicts, mappings, fixed tuples, dates,
UUIDs, decimals, Annotated constraints and unions of classes, through the fake provider
(schema sent, reply parsed, re-asked on failure) and through a run's JSON."""

from __future__ import annotations

import dataclasses
import datetime
import json
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import annotated_types as at
import attrs
import cattrs
import plait
import pydantic
import pytest
from plait._serialize import make_converter, serializable_type
from plait._structured import OutputSpec
from plait_testing import FakeProvider


class Address(pydantic.BaseModel):
    city: str
    postcode: str = "?"


class Customer(pydantic.BaseModel):
    """A customer, as pydantic describes one."""

    name: str = pydantic.Field(description="full name")
    age: int = pydantic.Field(ge=0)
    address: Address
    tags: list[str] = []


class Recursive(pydantic.BaseModel):
    children: list[Recursive]


class Movie(TypedDict):
    title: str
    year: int
    rating: NotRequired[float]


@attrs.frozen
class Billing:
    kind: Literal["billing"]
    invoice: str


@dataclasses.dataclass
class Return:
    kind: Literal["return"]
    order: int


class Status(pydantic.BaseModel):
    kind: Literal["status"]
    order: int


@attrs.frozen
class Short:
    x: int


@attrs.frozen
class Long:
    x: int
    y: str


@attrs.frozen
class Event:
    id: uuid.UUID
    at: datetime.datetime
    day: datetime.date
    amount: Decimal
    score: Annotated[int, at.Ge(1), at.Le(5)]
    name: Annotated[str, at.MaxLen(8), "a short name"]


ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
AT = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


@pytest.mark.parametrize(("output", "reply", "expected"), [
    (Customer, {"name": "Ada", "age": 36, "address": {"city": "London"}},
     Customer(name="Ada", age=36, address=Address(city="London"))),
    (list[Address], {"value": [{"city": "Oslo", "postcode": "0150"}]},
     [Address(city="Oslo", postcode="0150")]),
    (Movie, {"title": "Alien", "year": "1979"}, {"title": "Alien", "year": 1979}),
    (dict[str, int], {"value": {"apples": 3, "pears": "2"}}, {"apples": 3, "pears": 2}),
    (dict[str, Short], {"a": {"x": 1}}, {"a": Short(1)}),
    (tuple[str, int], {"value": ["a", 1]}, ("a", 1)),
    (datetime.datetime, {"value": "2026-01-02T03:04:05Z"}, AT),
    (datetime.date, {"value": "2026-01-02"}, datetime.date(2026, 1, 2)),
    (uuid.UUID, {"value": str(ID)}, ID),
    (Decimal, {"value": 19.99}, Decimal("19.99")),
    (Decimal, {"value": "0.10"}, Decimal("0.10")),
    (Annotated[int, at.Gt(0)], {"value": 4}, 4),
    (Event, {"id": str(ID), "at": "2026-01-02T03:04:05+00:00", "day": "2026-01-02",
             "amount": 3, "score": 5, "name": "gala"},
     Event(ID, AT, datetime.date(2026, 1, 2), Decimal(3), 5, "gala")),
    (list[Billing | Return | Status],
     {"value": [{"kind": "status", "order": 7}, {"kind": "billing", "invoice": "A1"},
                {"kind": "return", "order": "8"}]},
     [Status(kind="status", order=7), Billing("billing", "A1"), Return("return", 8)]),
    (list[Short | Long], {"value": [{"x": 1, "y": "b"}, {"x": 2}]}, [Long(1, "b"), Short(2)]),
    (int | str, {"value": "7"}, "7"),
    (int | str, {"value": 7}, 7),
    (Billing | None, {"value": None}, None),
])
async def test_each_type_is_asked_for_and_parsed(plait_runtime: plait.Runtime,
                                                 fake_provider: FakeProvider, output: Any,
                                                 reply: Any, expected: Any) -> None:
    fake_provider.script(reply)
    reply_ = await plait.Agent("fake:typed", output=output).ask("go", runtime=plait_runtime)
    assert reply_.output == expected
    assert type(reply_.output) is type(expected)
    [request] = fake_provider.requests
    assert request.json_schema is not None
    assert request.json_schema["type"] == "object"
    assert request.json_schema == OutputSpec.of(output).schema


def test_schemas_say_what_each_type_is() -> None:
    def value(tp: Any) -> Any:
        schema = OutputSpec.of(tp).schema
        assert schema is not None
        return schema["properties"]["value"]

    assert value(datetime.datetime) == {"type": "string", "format": "date-time"}
    assert value(datetime.date) == {"type": "string", "format": "date"}
    assert value(uuid.UUID) == {"type": "string", "format": "uuid"}
    assert value(Decimal) == {"type": "number"}
    assert value(dict[str, int]) == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert value(tuple[str, int]) == {"type": "array", "minItems": 2, "maxItems": 2,
                                      "prefixItems": [{"type": "string"}, {"type": "integer"}]}
    assert value(Annotated[list[int], at.MinLen(1), "the scores"]) == {
        "type": "array", "items": {"type": "integer"}, "minItems": 1,
        "description": "the scores"}
    assert value(Annotated[float, at.Interval(gt=0, le=1)]) == {
        "type": "number", "exclusiveMinimum": 0, "maximum": 1}
    union = value(Billing | Return)
    assert [m["properties"]["kind"] for m in union["anyOf"]] == [
        {"type": "string", "enum": ["billing"]}, {"type": "string", "enum": ["return"]}]
    movie = OutputSpec.of(Movie).schema
    assert movie == {"type": "object", "properties": {
        "title": {"type": "string"}, "year": {"type": "integer"}, "rating": {"type": "number"}},
        "required": ["title", "year", "rating"], "additionalProperties": False}


def test_a_pydantic_schema_is_its_own_made_strict() -> None:
    """pydantic's own schema (descriptions, bounds), with $ref inlined, every object closed
    and every property required, as strict providers demand."""
    schema = OutputSpec.of(Customer).schema
    assert schema == {
        "type": "object", "description": "A customer, as pydantic describes one.",
        "properties": {
            "name": {"type": "string", "description": "full name"},
            "age": {"type": "integer", "minimum": 0},
            "address": {"type": "object", "additionalProperties": False,
                        "properties": {"city": {"type": "string"},
                                       "postcode": {"type": "string"}},
                        "required": ["city", "postcode"]},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "address", "tags"], "additionalProperties": False,
    }
    assert "$ref" not in json.dumps(schema)
    assert not OutputSpec.of(Customer).wrapped  # an object at the root, as an attrs class
    assert OutputSpec.of(Customer).describe() == (
        'a JSON object {"name": string, "age": integer, "address": {"city": string, '
        '"postcode": string}, "tags": [string, ...]}')


@pytest.mark.parametrize(("tp", "words"), [
    (Recursive, ["Recursive", "recursive"]),
    (dict[int, str], ["string keys"]),
    (Short | Long | Short, []),  # a repeated member is collapsed by typing; still fine
])
def test_types_that_cannot_be_schemas_fail_at_construction(tp: Any, words: list[str]) -> None:
    if not words:
        OutputSpec.of(tp)
        return
    with pytest.raises(TypeError) as info:
        OutputSpec.of(tp)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(("output", "bad", "good", "problem"), [
    (list[Billing | Return], {"value": [{"kind": "refund", "order": 1}]},
     {"value": [{"kind": "return", "order": 1}]}, '$.value[0].kind: expected one of '
                                                  '"billing" | "return", got "refund"'),
    (Annotated[int, at.Le(5)], {"value": 9}, {"value": 5}, "$.value: 9 breaks maximum 5"),
    (Customer, {"name": "Ada", "age": -1, "address": {"city": "x"}},
     {"name": "Ada", "age": 1, "address": {"city": "x"}},
     "$.age: Input should be greater than or equal to 0"),
    (datetime.date, {"value": "next tuesday"}, {"value": "2026-02-03"},
     '$.value: expected a date string, got "next tuesday"'),
    (tuple[str, int], {"value": ["a"]}, {"value": ["a", 2]},
     "$.value: expected an array of 2 items, got 1"),
])
async def test_a_reply_that_does_not_fit_is_re_asked_naming_the_problem(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, output: Any, bad: Any,
    good: Any, problem: str,
) -> None:
    fake_provider.script(bad, good)
    reply = await plait.Agent("fake:typed", output=output).ask("go", runtime=plait_runtime)
    assert reply.attempts == 2
    reask = fake_provider.requests[1].messages[-1].content
    assert problem in reask, reask
    assert OutputSpec.of(output).describe() in reask


async def test_an_ambiguous_shape_is_re_asked_not_guessed(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    @attrs.frozen
    class Left:
        a: int
        b: str | None = None

    @attrs.frozen
    class Right:
        a: int
        c: str | None = None

    fake_provider.script({"value": {"a": 1}}, {"value": {"a": 1, "c": "x"}})
    reply = await plait.Agent("fake:t", output=Left | Right).ask("go", runtime=plait_runtime)
    assert reply.output == Right(1, "x")
    assert "fits both Left and Right" in fake_provider.requests[1].messages[-1].content


async def test_typed_outputs_serialize_in_results_and_come_back(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script(
        {"id": str(ID), "at": "2026-01-02T03:04:05+00:00", "day": "2026-01-02",
         "amount": "0.10", "score": 1, "name": "x"},
        {"name": "Ada", "age": 3, "address": {"city": "Rome"}},
        {"value": [{"kind": "status", "order": 1}, {"kind": "billing", "invoice": "I"}]},
    )
    event = plait.Agent("fake:a", output=Event).as_step("go")
    customer = plait.Agent("fake:a", output=Customer).as_step("go")
    tasks = plait.Agent("fake:a", output=list[Billing | Return | Status]).as_step("go")
    pipe = plait.Pipeline("types", steps={"event": event, "customer": customer, "tasks": tasks},
                          deps={"customer": ["event"], "tasks": ["customer"]})
    result = await pipe.run({}, runtime=plait_runtime)
    data = json.loads(result.to_json(runtime=plait_runtime))
    assert data["outputs"]["event"] == {"id": str(ID), "at": "2026-01-02T03:04:05+00:00",
                                        "day": "2026-01-02", "amount": "0.10", "score": 1,
                                        "name": "x"}
    assert data["outputs"]["customer"] == {"name": "Ada", "age": 3, "tags": [],
                                           "address": {"city": "Rome", "postcode": "?"}}
    assert data["outputs"]["tasks"] == [{"kind": "status", "order": 1},
                                        {"kind": "billing", "invoice": "I"}]
    # and the converter structures the JSON back into the declared types
    conv = plait_runtime.converter
    assert conv.structure(data["outputs"]["event"], Event) == result.outputs["event"]
    assert conv.structure(data["outputs"]["tasks"], list[Billing | Return | Status]) == \
        result.outputs["tasks"]
    assert conv.structure(data["outputs"]["customer"], Customer) == result.outputs["customer"]


def test_the_converter_tells_union_members_apart_by_their_fields() -> None:
    conv = make_converter()
    tp = list[Short | Long]
    values = [Long(1, "y"), Short(2)]
    assert conv.structure(conv.unstructure(values), tp) == values
    assert conv.structure([{"kind": "return", "order": 2}], list[Billing | Return]) == [
        Return("return", 2)]
    with pytest.raises(cattrs.BaseValidationError) as info:
        conv.structure([{"kind": "billing"}], list[Billing | Return])
    assert "invoice" in " ".join(cattrs.transform_error(info.value))


@pytest.mark.parametrize("tp", [datetime.datetime, uuid.UUID, Customer, Movie, Event,
                                list[Billing | Status], dict[str, datetime.date]])
def test_the_new_types_are_known_to_serialize(tp: Any) -> None:
    assert serializable_type(tp)


async def test_an_orchestrator_plan_of_a_union_dispatches_by_class(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script({"value": [{"kind": "billing", "invoice": "A1"},
                                    {"kind": "return", "order": 9},
                                    {"kind": "status", "order": 4}]})
    seen: list[str] = []

    def handler(name: str) -> Any:
        async def work(_ctx: plait.StepContext, task: Any) -> str:
            seen.append(f"{name}:{type(task).__name__}")
            return name
        return work

    orchestrator = plait.Orchestrator(
        plait.Agent("fake:planner", output=list[Billing | Return | Status]),
        workers={Billing: handler("bill"), Return: handler("ret"), Status: handler("stat")},
        limit=1)
    result = await plait.Pipeline("o", steps={"o": orchestrator}).run(
        {"query": "help"}, runtime=plait_runtime)
    assert [t.output for t in result.output.tasks] == ["bill", "ret", "stat"]
    assert seen == ["bill:Billing", "ret:Return", "stat:Status"]


_WITHOUT_PYDANTIC = """
import sys
sys.modules["pydantic"] = None  # as if it were not installed: importing it fails
import datetime, json, typing, attrs
from plait._structured import OutputSpec
from plait._serialize import make_converter

@attrs.frozen
class A:
    kind: typing.Literal["a"]
    when: datetime.date

class LooksLikeAModel:  # not pydantic: no model_validate / model_json_schema
    model_fields = {}

spec = OutputSpec.of(list[A | None])
out = spec.parse('{"value": [{"kind": "a", "when": "2026-01-02"}, null]}', None, make_converter())
print(json.dumps([repr(o) for o in out]))
try:
    OutputSpec.of(LooksLikeAModel)
except TypeError as exc:
    print("refused:", exc)
"""


def test_core_needs_no_pydantic() -> None:
    done = subprocess.run([sys.executable, "-c", _WITHOUT_PYDANTIC], capture_output=True,
                          text=True, timeout=60, check=True)
    first, second = done.stdout.splitlines()
    assert json.loads(first) == ["A(kind='a', when=datetime.date(2026, 1, 2))", "None"]
    assert second.startswith("refused: unsupported output type LooksLikeAModel")


def test_plain_types_never_import_pydantic() -> None:
    code = ("import sys, plait, datetime\n"
            "plait.Agent('openai:gpt-4o-mini', output=list[datetime.date] | None)\n"
            "print('pydantic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "False"
