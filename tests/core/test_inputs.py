"""Declared inputs: checked when a run starts, before any step; schemas for inputs and output."""

from __future__ import annotations

import dataclasses
import enum
from typing import Literal, NotRequired, TypedDict

import attrs
import plait
import pytest

ran: list[str] = []


@attrs.frozen
class Answer:
    """What the pipeline answers."""

    text: str
    lang: Literal["en", "de"]


@plait.step
async def answer(ctx: plait.StepContext) -> Answer:
    ran.append("answer")
    return Answer(ctx.input("text"), ctx.input("lang"))


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


def pipe(inputs: object) -> plait.Pipeline:
    return plait.Pipeline("qa", steps={"answer": answer}, inputs=inputs)


async def test_declared_inputs_run_as_given() -> None:
    result = await pipe({"text": str, "lang": Literal["en", "de"]}).run(
        {"text": "hi", "lang": "en"})
    assert result.output == Answer("hi", "en")


async def test_a_missing_input_fails_before_any_step() -> None:
    with pytest.raises(plait.MissingInput) as caught:
        await pipe({"text": str, "lang": str}).run({"text": "hi"})
    assert str(caught.value) == "missing input 'lang' (inputs given: text)"
    assert ran == []


async def test_an_undeclared_pipeline_step_asking_a_misspelt_input_gets_a_did_you_mean() -> None:
    with pytest.raises(plait.StepFailed, match=r"missing input 'lang' .*did you mean 'lan'"):
        await pipe(None).run({"text": "hi", "lan": "en"})


async def test_an_unknown_input_fails_before_any_step_with_a_did_you_mean() -> None:
    with pytest.raises(plait.UnknownInput) as caught:
        await pipe({"text": str, "lang": str}).run({"text": "hi", "lang": "en", "txet": "x"})
    assert str(caught.value) == ("pipeline 'qa' takes no input 'txet' (inputs: text, lang); "
                                 "did you mean 'text'?")
    assert caught.value.declared == ("text", "lang")
    assert ran == []


async def test_undeclared_pipelines_take_any_inputs() -> None:
    p = pipe(None)
    assert p.input_types is None
    assert p.input_schema() is None
    result = await p.run({"text": "hi", "lang": "de", "extra": 1})
    assert result.output == Answer("hi", "de")


@attrs.frozen
class AttrsIn:
    """A question and its language."""

    text: str
    lang: Literal["en", "de"] = "en"


@dataclasses.dataclass
class DataIn:
    text: str
    lang: str = dataclasses.field(default_factory=lambda: "en")


class DictIn(TypedDict):
    text: str
    lang: NotRequired[str]


@pytest.mark.parametrize("declared", [AttrsIn, DataIn])
async def test_class_defaults_fill_in_what_was_not_given(declared: type) -> None:
    result = await pipe(declared).run({"text": "hi"})
    assert result.output == Answer("hi", "en")
    assert (await pipe(declared).run(declared(text="yo", lang="de"))).output == Answer("yo", "de")


async def test_a_typeddict_optional_key_stays_optional() -> None:
    p = plait.Pipeline("t", steps={"answer": answer}, inputs=DictIn)
    with pytest.raises(plait.MissingInput, match="'text'"):
        await p.run({"lang": "en"})
    with pytest.raises(plait.StepFailed, match="missing input 'lang'"):
        await p.run({"text": "hi"})  # optional and absent: the step asked without a default
    assert p.input_schema() == {
        "type": "object", "title": "t inputs",
        "properties": {"text": {"type": "string"}, "lang": {"type": "string"}},
        "required": ["text"], "additionalProperties": False}


def test_input_schema_of_a_mapping_and_of_an_attrs_class() -> None:
    assert pipe({"text": str, "lang": Literal["en", "de"]}).input_schema() == {
        "type": "object", "title": "qa inputs",
        "properties": {"text": {"type": "string"},
                       "lang": {"type": "string", "enum": ["en", "de"]}},
        "required": ["text", "lang"], "additionalProperties": False}
    schema = pipe(AttrsIn).input_schema()
    assert schema is not None
    assert schema["description"] == "A question and its language."
    assert schema["required"] == ["text"]  # lang has a default


def test_output_schema_comes_from_the_output_steps_return_annotation() -> None:
    assert pipe(None).output_schema() == {
        "type": "object", "description": "What the pipeline answers.",
        "properties": {"text": {"type": "string"},
                       "lang": {"type": "string", "enum": ["en", "de"]}},
        "required": ["text", "lang"], "additionalProperties": False}


class Mood(enum.Enum):
    HAPPY = "happy"


@plait.step
async def untyped(ctx: plait.StepContext):  # type: ignore[no-untyped-def]  # no annotation on purpose
    return {"free": "form"}


@plait.step
async def moods(ctx: plait.StepContext) -> list[Mood]:
    return [Mood.HAPPY]


def test_output_schema_of_nested_pipelines_lists_and_unannotated_steps() -> None:
    inner = plait.Pipeline("inner", steps={"moods": moods})
    outer = plait.Pipeline("outer", steps={"first": untyped, "inner": inner},
                           deps={"inner": ["first"]})
    assert outer.output_schema() == {"type": "array",
                                     "items": {"type": "string", "enum": ["happy"]}}
    assert plait.Pipeline("u", steps={"u": untyped}).output_schema() == {}


async def test_a_nested_pipeline_checks_only_what_it_lacks() -> None:
    inner = plait.Pipeline("inner", steps={"answer": answer},
                           inputs={"text": str, "lang": str})
    outer = plait.Pipeline("outer", steps={"inner": inner})
    result = await outer.run({"text": "hi", "lang": "en", "other": 1})
    assert result.output == Answer("hi", "en")
    with pytest.raises(plait.StepFailed, match="missing input 'lang'"):
        await outer.run({"text": "hi"})


@pytest.mark.parametrize(("declared", "message"), [
    ({"text": "str"}, r"inputs\['text'\] is the string 'str'; give the type itself"),
    ({"": str}, "names must be non-empty strings"),
    (42, "must be a mapping of name -> type, an attrs class"),
])
def test_malformed_declarations_are_definition_errors(declared: object, message: str) -> None:
    with pytest.raises(plait.PipelineDefinitionError, match=message):
        pipe(declared)


def test_unknown_step_errors_suggest_the_closest_step() -> None:
    with pytest.raises(plait.PipelineDefinitionError, match="did you mean 'answer'"):
        plait.Pipeline("p", steps={"answer": answer}, output="anwser")


def test_every_unknown_name_error_says_did_you_mean() -> None:
    assert "did you mean 'billing'" in str(plait.UnknownRoute("r", "biling", ["billing", "x"]))
    assert "did you mean 'openai'" in str(
        plait.UnknownPlugin("provider", "opnai", ["openai", "local"]))
    assert "did you mean" not in str(plait.UnknownPlugin("provider", "zzz", ["openai"]))


def test_input_types_map_each_declared_name_to_its_type() -> None:
    assert pipe({"text": str, "n": int}).input_types == {"text": str, "n": int}
    assert pipe(AttrsIn).input_types == {"text": str, "lang": Literal["en", "de"]}


def test_definition_errors_listing_names_say_did_you_mean() -> None:
    async def route(ctx: plait.StepContext) -> str:
        return "billing"

    with pytest.raises(plait.PipelineDefinitionError, match="did you mean 'general'"):
        plait.Router("r", route=route, branches={"general": answer, "billing": answer},
                     fallback="genral")
    with pytest.raises(ValueError, match="did you mean 'temperature'"):
        plait.Ensemble(plait.Agent("fake:echo"), "{text}", n=2, vary={"temprature": [0, 1]})
