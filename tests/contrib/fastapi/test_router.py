"""plait_fastapi.router: pipelines served over HTTP, answered through httpx's ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import anyio
import fastapi
import httpx
import plait
import plait_fastapi
import pytest
from plait_testing import PRICES, FakeProvider, provider_plugin

echo = plait.Agent("fake:echo", system="Repeat.")


@plait.step
async def shout(ctx: plait.StepContext) -> str:
    return str(ctx.dep("echo")).upper()


@plait.step
async def parse(ctx: plait.StepContext) -> int:
    return int(ctx.input("amount"))


@plait.step
async def double(ctx: plait.StepContext) -> int:
    return ctx.dep("parse") * 2


@plait.step
async def audit(ctx: plait.StepContext) -> str:
    return "audited"


@plait.step
async def gate(ctx: plait.StepContext) -> object:
    if not ctx.input("email", None):
        return plait.Stop("need an email", {"missing": ["email"]})
    return ctx.input("email")


PIPELINES = {
    "shout": plait.Pipeline("shout", steps={"echo": echo.as_step("{text}"), "shout": shout},
                            deps={"shout": ["echo"]}),
    "double": plait.Pipeline("double", steps={"parse": parse, "double": double,
                                              "audit": audit},
                             deps={"double": ["parse"]}, output="double"),
    "costly": plait.Pipeline(
        "costly",
        steps={name: plait.Agent("fake:priced", max_tokens=1000).as_step("{text}")
               for name in ("a", "b", "c")},
        deps={"c": ["a", "b"]}, config=plait.Config(budget=plait.usd("0.003"))),
    "signup": plait.Pipeline("signup", steps={"gate": gate}),
}


async def slow_echo(request: plait.ModelRequest) -> str:
    """Echo, once every other task is waiting: parallel calls are in flight together."""
    await anyio.wait_all_tasks_blocked()
    return request.messages[-1].content


@pytest.fixture
def fake_provider(register_plugin: Callable[..., Any]) -> FakeProvider:
    fake = FakeProvider(slow_echo)
    register_plugin(provider_plugin(fake, prices=PRICES))
    return fake


@pytest.fixture
async def client(plait_runtime: plait.Runtime,
                 fake_provider: FakeProvider) -> AsyncIterator[httpx.AsyncClient]:
    app = fastapi.FastAPI()
    app.include_router(plait_fastapi.router(PIPELINES, runtime=plait_runtime), prefix="/p")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http


async def test_a_run_answers_the_pipeline_result_json(client: httpx.AsyncClient,
                                                      fake_provider: FakeProvider) -> None:
    response = await client.post("/p/shout/runs", json={"text": "hello"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    result = plait.PipelineResult.from_json(response.text)
    assert result.output == "HELLO"
    assert result.outputs == {"echo": "hello", "shout": "HELLO"}
    assert result.steps["echo"].usage.calls == 1
    assert fake_provider.requests[0].messages[-1].content == "hello"


async def test_a_failed_step_answers_422_with_the_partial_result(
        client: httpx.AsyncClient) -> None:
    response = await client.post("/p/double/runs", json={"amount": "twelve"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["error"] == "step_failed"
    assert detail["step"] == "parse"
    assert detail["attempts"] == 1
    assert detail["cause"]["type"] == "ValueError"
    assert "invalid literal for int()" in detail["cause"]["message"]
    assert detail["message"].startswith("step 'parse' failed after 1 attempt: ValueError")
    partial = detail["partial"]
    assert partial["outputs"] == {"audit": "audited"}
    assert {sid: r["status"] for sid, r in partial["steps"].items()} == {
        "parse": "failed", "double": "skipped", "audit": "ok"}


async def test_a_missing_input_is_a_failed_step_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/p/double/runs", json={})
    assert response.status_code == 422
    cause = response.json()["detail"]["cause"]
    assert cause == {"type": "MissingInput",
                     "message": "missing input 'amount' (inputs given: none)"}


async def test_an_exceeded_budget_answers_402_with_the_partial_result(
        client: httpx.AsyncClient, fake_provider: FakeProvider) -> None:
    # a and b run in parallel; each reserves ~$0.002 of a $0.003 budget, so one is refused
    response = await client.post("/p/costly/runs", json={"text": "one two three"})
    assert response.status_code == 402
    detail = response.json()["detail"]
    assert detail["error"] == "budget_exceeded"
    assert detail["scope"] == "run"
    assert Decimal(detail["limit"]) == Decimal("0.003")
    assert Decimal(detail["reserved"]) > Decimal(detail["limit"]) - Decimal(detail["spent"])
    partial = detail["partial"]
    assert len(partial["outputs"]) == 1  # the call that fitted finished
    assert partial["steps"]["c"]["status"] == "skipped"
    assert Decimal(partial["usage"]["cost"]) <= Decimal("0.003")
    assert fake_provider.calls == 1  # the refused call was never sent


async def test_an_unknown_pipeline_answers_404_listing_the_pipelines(
        client: httpx.AsyncClient) -> None:
    response = await client.post("/p/nope/runs", json={})
    assert response.status_code == 404
    assert response.json()["detail"] == {
        "error": "unknown_pipeline", "message": "no pipeline named 'nope'",
        "pipelines": ["costly", "double", "shout", "signup"]}


async def test_an_early_stop_is_a_normal_result(client: httpx.AsyncClient) -> None:
    response = await client.post("/p/signup/runs")  # no body: no inputs
    assert response.status_code == 200
    result = plait.PipelineResult.from_json(response.text)
    assert result.stopped_early
    assert result.stop == plait.Stop("need an email", {"missing": ["email"]})


async def test_a_stopped_run_resumes_with_the_missing_input(client: httpx.AsyncClient) -> None:
    stopped = plait.PipelineResult.from_json((await client.post("/p/signup/runs")).text)
    assert stopped.stopped_early
    response = await client.post(f"/p/signup/runs/{stopped.run_id}/resume",
                                 json={"email": "ada@example.com"})
    assert response.status_code == 200
    result = plait.PipelineResult.from_json(response.text)
    assert (result.run_id, result.output) == (stopped.run_id, "ada@example.com")
    assert not result.stopped_early


async def test_a_run_that_cannot_resume_answers_409(client: httpx.AsyncClient) -> None:
    response = await client.post("/p/signup/runs/no-such-run/resume")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail["error"] == "cannot_resume"
    assert "no run 'no-such-run'" in detail["message"]
    done = plait.PipelineResult.from_json(
        (await client.post("/p/double/runs", json={"amount": "2"})).text)
    response = await client.post(f"/p/signup/runs/{done.run_id}/resume")
    assert response.status_code == 409
    assert "a run of pipeline 'double'" in response.json()["detail"]["message"]
    assert (await client.post("/p/nope/runs/x/resume")).status_code == 404


@pytest.mark.parametrize("body", [[1, 2], "text", 3])
async def test_a_body_that_is_not_an_object_is_refused_by_fastapi(
        client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/p/shout/runs", json=body)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)  # FastAPI's validation format


async def test_the_route_is_documented_in_openapi(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/p/shout/runs"]["post"]
    assert set(operation["responses"]) >= {"200", "402", "404", "422"}
    operation = spec["paths"]["/p/shout/runs/{run_id}/resume"]["post"]
    assert set(operation["responses"]) >= {"200", "402", "404", "409", "422"}


async def test_runs_are_concurrent_and_independent(client: httpx.AsyncClient) -> None:
    texts = [f"request {i}" for i in range(8)]
    outputs: dict[str, str] = {}

    async def call(text: str) -> None:
        response = await client.post("/p/shout/runs", json={"text": text})
        outputs[text] = response.json()["output"]

    async with anyio.create_task_group() as tg:
        for text in texts:
            tg.start_soon(call, text)
    assert outputs == {text: text.upper() for text in texts}


@pytest.mark.parametrize(("pipelines", "error"), [
    ({"a/b": PIPELINES["shout"]}, ValueError),
    ({"": PIPELINES["shout"]}, ValueError),
    ({"x": "not a pipeline"}, TypeError),
    ([PIPELINES["shout"]], TypeError),
])
def test_bad_pipelines_are_refused_when_the_router_is_built(pipelines: object,
                                                            error: type) -> None:
    with pytest.raises(error):
        plait_fastapi.router(pipelines)  # type: ignore[arg-type]
