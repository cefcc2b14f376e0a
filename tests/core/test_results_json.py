"""Results are frozen attrs classes that go to JSON and back; unserializable outputs fail
naming the step and the path inside the value."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

import attrs
import plait
import plait._execution as execution
import pytest
from plait._serialize import serializable_type
from plait_testing import FakeProvider


@attrs.frozen
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Report:
    title: str
    points: list[Point]


class Colour(enum.Enum):
    RED = "red"


async def test_a_result_round_trips_through_json(plait_runtime: plait.Runtime,
                                                 fake_provider: FakeProvider) -> None:
    fake_provider.script("three output words")
    agent = plait.Agent(model="fake:priced", max_tokens=10)

    async def text(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "two words")).text

    async def structured(ctx: plait.StepContext) -> Any:
        return {"report": Report("r", [Point(1, 2)]), "colour": Colour.RED,
                "money": plait.usd("0.10"), "tags": {"b", "a"}, "nothing": None}

    router = plait.Router("route", route=lambda ctx: "only",
                          branches={"only": lambda ctx: [1, 2.5, True]})
    pipe = plait.Pipeline("json", steps={"text": text, "structured": structured,
                                         "route": router},
                          deps={"route": ["text", "structured"]})
    result = await pipe.run({"q": "x"}, runtime=plait_runtime, run_id="run-1")
    text_json = result.to_json()
    assert json.loads(text_json)["run_id"] == "run-1"
    back = plait.PipelineResult.from_json(text_json)

    assert back.steps == result.steps  # records come back exactly, children included
    assert back.usage == result.usage
    assert back.usage.cost == plait.usd("0.000008")  # 2 words in at $1/M, 3 out at $2/M
    assert (back.pipeline, back.run_id, back.stopped_early, back.stop) == (
        "json", "run-1", False, None)
    # outputs come back as plain JSON values
    assert back.outputs == {
        "text": "three output words",
        "structured": {"report": {"title": "r", "points": [{"x": 1, "y": 2}]},
                       "colour": "red", "money": "0.10", "tags": ["a", "b"],
                       "nothing": None},
        "route": [1, 2.5, True],
    }
    assert back.output == [1, 2.5, True]
    assert back.steps["route"].route == "only"
    assert back.steps["route"].children["only"].status == "ok"


async def test_a_failed_and_a_stopped_result_round_trip(plait_runtime: plait.Runtime) -> None:
    async def fail(ctx: plait.StepContext) -> None:
        raise ValueError("nope")

    async def ok(ctx: plait.StepContext) -> int:
        return 1

    pipe = plait.Pipeline("f", steps={"fail": fail, "ok": ok, "after": ok},
                          deps={"after": ["fail"]}, output="after")
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    partial = info.value.partial
    assert partial is not None
    back = plait.PipelineResult.from_json(partial.to_json(indent=2))
    assert back == partial

    async def stop(ctx: plait.StepContext) -> plait.Stop:
        return plait.Stop("halt", {"why": ["because"]})

    stopped = await plait.Pipeline("s", steps={"stop": stop}).run({}, runtime=plait_runtime)
    back = plait.PipelineResult.from_json(stopped.to_json())
    assert back.stop == plait.Stop("halt", {"why": ["because"]})
    assert back.stopped_early


@pytest.mark.parametrize(("value", "path", "detail"), [
    (object(), "$", "object cannot be turned into JSON"),
    ({"a": [1, {"b": object()}]}, "$.a[1].b", "object cannot be turned into JSON"),
    ([1, 2, {"k": lambda: None}], "$[2].k", "function cannot be turned into JSON"),
    ({1.5: "x"}, "$", "key 1.5 is not a string or int"),
    ({"ok": Point(1, 2), "bad": Point(1, object())}, "$.bad.y",  # type: ignore[arg-type]
     "object cannot be turned into JSON"),
    # a value that does not fit its field's declared type: cattrs itself fails
    (Report("r", [Point(1, 2), object()]), "$.points[1]",  # type: ignore[list-item]
     "object cannot be turned into JSON (AttributeError"),
])
async def test_an_unserializable_output_names_the_step_and_the_path(
    plait_runtime: plait.Runtime, value: Any, path: str, detail: str
) -> None:
    async def produce(ctx: plait.StepContext) -> Any:
        return value

    pipe = plait.Pipeline("p", steps={"produce": produce})
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    error = info.value.cause
    assert isinstance(error, plait.SerializationError)
    assert (error.step_id, error.path) == ("produce", path)
    assert f"output of step 'produce' is not serializable at {path}: {detail}" in str(error)
    assert info.value.attempts == 1  # retrying cannot fix it


@pytest.mark.parametrize(("result", "path"), [
    (plait.FanOutResult([1, {"k": object()}], item_usage=[plait.Usage()] * 2, total=2),
     "$.values[1].k"),
    (plait.FanOutResult([], [plait.ItemError(0, object(), plait.ErrorInfo("E", "m"))]),
     "$.errors[0].item"),
])
async def test_a_fanout_result_is_checked_where_it_holds_user_values(
        plait_runtime: plait.Runtime, result: plait.FanOutResult, path: str) -> None:
    """Its per-item usage is plait's own and is not walked; its values and items are."""
    pipe = plait.Pipeline("p", steps={"fan": lambda ctx: result})
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.SerializationError)
    assert info.value.cause.path == path


async def test_a_fanout_trusts_a_worker_that_declares_json_but_checks_failed_items(
        plait_runtime: plait.Runtime) -> None:
    handle = object()

    async def length(ctx: plait.StepContext, item: Any) -> int:
        if item is handle:
            raise ValueError("not text")
        return len(item)

    async def undeclared(ctx: plait.StepContext, item: Any):  # type: ignore[no-untyped-def]
        return {"item": handle}

    declared = plait.FanOut(length, over="items", on_error="collect")
    assert declared.declares_serializable
    assert not plait.FanOut(undeclared, over="items").declares_serializable
    ok = await plait.Pipeline("p", steps={"fan": declared}).run(
        {"items": ["ab", "c"]}, runtime=plait_runtime)
    assert list(ok.output) == [2, 1]
    with pytest.raises(plait.StepFailed) as info:  # the failed item is an input: walked
        await plait.Pipeline("p", steps={"fan": declared}).run(
            {"items": ["ab", handle]}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.SerializationError)
    assert (info.value.cause.step_id, info.value.cause.path) == ("fan", "$.errors[0].item")
    with pytest.raises(plait.StepFailed) as info:  # an undeclared worker's values are walked
        await plait.Pipeline("p", steps={"fan": plait.FanOut(undeclared, over="items")}).run(
            {"items": ["ab"]}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.SerializationError)
    assert info.value.cause.path == "$.values[0].item"


async def test_the_path_names_a_nested_step(plait_runtime: plait.Runtime) -> None:
    async def produce(ctx: plait.StepContext) -> Any:
        return {"handle": object()}

    inner = plait.Pipeline("inner", steps={"produce": produce})
    outer = plait.Pipeline("outer", steps={"nested": inner})
    with pytest.raises(plait.StepFailed) as info:
        await outer.run({}, runtime=plait_runtime)
    assert info.value.step_id == "nested/produce"  # one StepFailed, named by the path
    error = info.value.cause
    assert isinstance(error, plait.SerializationError)
    assert (error.step_id, error.path) == ("nested/produce", "$.handle")


def test_from_json_refuses_what_is_not_a_result() -> None:
    with pytest.raises(ValueError, match="not a serialized PipelineResult"):
        plait.PipelineResult.from_json("{}")
    with pytest.raises(ValueError, match="not a serialized PipelineResult"):
        plait.PipelineResult.from_json("not json")


def test_records_are_frozen() -> None:
    record = plait.StepRecord("s", "ok")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.status = "failed"  # type: ignore[misc]


@attrs.frozen
class Tagged:
    tags: frozenset[str]
    ids: set[int]


async def test_set_fields_serialize_as_sorted_lists(plait_runtime: plait.Runtime) -> None:
    pipe = plait.Pipeline("p", {"t": lambda ctx: Tagged(frozenset({"b", "a"}), {3, 1})})
    result = await pipe.run({}, runtime=plait_runtime)
    assert json.loads(result.to_json())["output"] == {"tags": ["a", "b"], "ids": [1, 3]}


# -- declared output types --------------------------------------------------------------


@pytest.mark.parametrize(("tp", "known"), [
    (int, True), (list[int], True), (dict[str, list[float]], True), (tuple[str, ...], True),
    (Point, True), (Report, True), (int | None, True), (set[str], True),
    (Any, False), (object, False), (list, False), (dict[object, int], False),
    (list[Any], False),
])
def test_which_declared_types_json_always_holds(tp: Any, known: bool) -> None:
    assert serializable_type(tp) is known


async def test_a_chain_declaring_its_state_type_is_not_walked(
        plait_runtime: plait.Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Growing state passed along a chain: walking every output would cost O(n) per step.
    A step that declares a type JSON always holds is trusted; one that does not is walked."""
    walked: list[str] = []
    real = execution.check_serializable

    def counting(conv: Any, value: Any, step_id: str) -> None:
        walked.append(step_id)
        real(conv, value, step_id)

    monkeypatch.setattr(execution, "check_serializable", counting)

    @plait.step
    async def declared(ctx: plait.StepContext) -> list[int]:
        return [*ctx.dependencies.get("a", []), 1]

    @plait.step
    async def undeclared(ctx: plait.StepContext):  # type: ignore[no-untyped-def]
        return [*ctx.dep("b"), 2]

    pipe = plait.Pipeline("p", steps={"a": declared, "b": declared, "c": undeclared},
                          deps={"b": ["a"], "c": ["b"]})
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == [1, 1, 2]
    assert walked == ["c"]


async def test_an_output_that_lied_about_its_type_is_named_when_serialized(
        plait_runtime: plait.Runtime) -> None:
    @plait.step
    async def liar(ctx: plait.StepContext) -> list[int]:
        return [1, object()]  # type: ignore[list-item]

    result = await plait.Pipeline("p", steps={"liar": liar}).run(runtime=plait_runtime)
    with pytest.raises(plait.SerializationError) as info:
        result.to_json(runtime=plait_runtime)
    assert (info.value.step_id, info.value.path) == ("liar", "$[1]")
