"""One route per pipeline: real OpenAPI request and response schemas, and 422s for inputs
that do not match the declaration in the very shape FastAPI gives its own bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import attrs
import fastapi
import httpx
import plait
import plait_fastapi
import pydantic
import pytest


@attrs.frozen
class Answer:
    """A reply in the asked language."""

    text: str
    lang: Literal["en", "de"]


@plait.step
async def answer(ctx: plait.StepContext) -> Answer:
    return Answer(ctx.input("text") * ctx.input("times"), ctx.input("lang"))


@attrs.frozen
class Ask:
    text: str
    lang: Literal["en", "de"]
    times: int = 1


qa = plait.Pipeline("qa", steps={"answer": answer}, inputs=Ask)


@plait.step
async def anything(ctx: plait.StepContext) -> str:
    return ",".join(sorted(ctx.inputs))


free = plait.Pipeline("free", steps={"anything": anything})


class AskModel(pydantic.BaseModel):
    """FastAPI's own validation of the same inputs, to compare the 422 bodies with."""

    model_config = pydantic.ConfigDict(extra="forbid")
    text: str
    lang: Literal["en", "de"]
    times: int = 1


def app() -> fastapi.FastAPI:
    built = fastapi.FastAPI()
    built.include_router(plait_fastapi.router({"qa": qa, "free": free}), prefix="/p")

    @built.post("/native")
    async def native(body: AskModel) -> str:
        return "ok"

    return built


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http


def test_each_pipeline_has_its_own_documented_route() -> None:
    spec = app().openapi()
    assert {"/p/qa/runs", "/p/free/runs"} <= set(spec["paths"])
    assert "/p/{name}/runs" not in spec["paths"]  # the 404 catch-all is not an operation
    operation = spec["paths"]["/p/qa/runs"]["post"]
    assert operation["operationId"] == "run_qa"
    body = operation["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "type": "object", "title": "qa inputs",
        "properties": {"text": {"type": "string"},
                       "lang": {"type": "string", "enum": ["en", "de"]},
                       "times": {"type": "integer"}},
        "required": ["text", "lang"], "additionalProperties": False}
    result = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert result["title"] == "qa result"
    assert result["properties"]["output"] == {"anyOf": [{
        "type": "object", "description": "A reply in the asked language.",
        "properties": {"text": {"type": "string"},
                       "lang": {"type": "string", "enum": ["en", "de"]}},
        "required": ["text", "lang"], "additionalProperties": False}, {"type": "null"}]}
    assert set(operation["responses"]) >= {"200", "402", "404", "422"}


def test_an_undeclared_pipeline_takes_any_object() -> None:
    operation = app().openapi()["paths"]["/p/free/runs"]["post"]
    assert operation["requestBody"] == {
        "required": False,
        "content": {"application/json": {"schema": {"type": "object",
                                                    "title": "free inputs"}}}}
    output = operation["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"]["output"]
    assert output == {"anyOf": [{"type": "string"}, {"type": "null"}]}


async def test_declared_inputs_run_with_defaults(client: httpx.AsyncClient) -> None:
    response = await client.post("/p/qa/runs", json={"text": "hi", "lang": "de"})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == {"text": "hi", "lang": "de"}
    response = await client.post("/p/qa/runs", json={"text": "a", "lang": "en", "times": "3"})
    assert response.json()["output"]["text"] == "aaa"  # "3" is an int, as FastAPI reads it


@pytest.mark.parametrize("body", [
    {"text": "hi"},                                   # missing
    {"text": "hi", "lang": "fr"},                     # not one of the literal's values
    {"text": "hi", "lang": "en", "lnag": "de"},       # undeclared
    {"text": 3, "lang": "en", "times": "many"},       # two wrong types
    [1, 2],                                           # not an object
])
async def test_bad_inputs_answer_422_as_fastapi_does(client: httpx.AsyncClient,
                                                     body: Any) -> None:
    ours = await client.post("/p/qa/runs", json=body)
    native = await client.post("/native", json=body)
    assert ours.status_code == native.status_code == 422
    assert sorted(map(str, ours.json()["detail"])) == sorted(map(str, native.json()["detail"]))


async def test_a_body_that_is_not_json_answers_422_as_fastapi_does(
        client: httpx.AsyncClient) -> None:
    sent = {"content": b'{"text": nope', "headers": {"content-type": "application/json"}}
    ours = await client.post("/p/qa/runs", **sent)
    native = await client.post("/native", **sent)
    assert ours.status_code == native.status_code == 422
    assert ours.json() == native.json()


async def test_an_undeclared_pipeline_passes_any_object_through(
        client: httpx.AsyncClient) -> None:
    response = await client.post("/p/free/runs", json={"b": 1, "a": 2})
    assert response.json()["output"] == "a,b"


@plait.step
async def lang_of(ctx: plait.StepContext) -> str:
    return str(ctx.input("reply")["lang"])


async def test_an_input_type_pydantic_does_not_know_reaches_the_run_as_json() -> None:
    typed = plait.Pipeline("typed", steps={"lang_of": lang_of}, inputs={"reply": Answer})
    built = fastapi.FastAPI()
    built.include_router(plait_fastapi.router({"typed": typed}))
    schema = built.openapi()["paths"]["/typed/runs"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert schema["properties"]["reply"]["properties"]["lang"] == {"type": "string",
                                                                   "enum": ["en", "de"]}
    transport = httpx.ASGITransport(app=built)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        ok = await http.post("/typed/runs", json={"reply": {"text": "x", "lang": "de"}})
        missing = await http.post("/typed/runs", json={})
    assert ok.json()["output"] == "de"
    assert missing.json()["detail"][0]["type"] == "missing"
