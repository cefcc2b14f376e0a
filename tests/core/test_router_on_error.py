"""``Router(on_error=...)``: a failed branch hands over to a fallback branch."""

from __future__ import annotations

import plait
import pytest
from plait_testing import FakeProvider, provider_plugin


def fails(message: str) -> plait.Step:
    @plait.step(retries=0)
    async def broken(ctx: plait.StepContext) -> str:
        raise ValueError(message)

    return broken


async def human(ctx: plait.StepContext) -> str:
    return "a person will answer"


async def test_a_failed_branch_runs_the_on_error_branch_and_both_are_recorded(
    plait_runtime: plait.Runtime,
) -> None:
    router = plait.Router("route", route=lambda ctx: "bot",
                          branches={"bot": fails("model down"), "human": human},
                          on_error="human")
    result = await plait.Pipeline("p", steps={"route": router}).run({}, runtime=plait_runtime)
    assert result.output == "a person will answer"
    record = result.steps["route"]
    assert (record.status, record.route) == ("ok", "human")
    assert record.children["bot"].status == "failed"
    assert record.children["bot"].error == plait.ErrorInfo("ValueError", "model down")
    assert record.children["human"].status == "ok"


async def test_a_failing_on_error_branch_fails_the_router(plait_runtime: plait.Runtime) -> None:
    router = plait.Router("route", route=lambda ctx: "bot",
                          branches={"bot": fails("model down"), "human": fails("nobody in")},
                          on_error="human")
    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"route": router}).run({}, runtime=plait_runtime)
    assert str(info.value.cause) == "nobody in"
    assert info.value.partial is not None
    assert set(info.value.partial.steps["route"].children) == {"bot", "human"}


async def test_the_on_error_branch_failing_itself_is_not_run_twice(
    plait_runtime: plait.Runtime,
) -> None:
    runs: list[str] = []

    async def once(ctx: plait.StepContext) -> str:
        runs.append("human")
        raise ValueError("nobody in")

    router = plait.Router("route", route=lambda ctx: "human",
                          branches={"bot": human, "human": plait.step(retries=0)(once)},
                          on_error="human")
    with pytest.raises(plait.StepFailed):
        await plait.Pipeline("p", steps={"route": router}).run({}, runtime=plait_runtime)
    assert runs == ["human"]


async def test_a_spent_budget_is_raised_not_rerouted() -> None:
    fake = FakeProvider(["never"])
    runtime = plait.Runtime(entry_points=False, plugins=[provider_plugin(
        fake, prices={"*": plait.Price.per_million("1000", "1000")})])
    agent = plait.Agent("fake:dear", max_tokens=1000)
    ran: list[str] = []

    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "hi")).output

    async def cheap(ctx: plait.StepContext) -> str:
        ran.append("cheap")
        return "cheap"

    router = plait.Router("route", route=lambda ctx: "ask", on_error="cheap",
                          branches={"ask": plait.step(retries=0)(ask), "cheap": cheap})
    pipe = plait.Pipeline("p", steps={"route": router},
                          config=plait.Config(budget=plait.usd("0.01")))
    with pytest.raises(plait.BudgetExceeded):
        await pipe.run({}, runtime=runtime)
    assert (ran, fake.calls) == ([], 0)


def test_on_error_must_name_a_branch() -> None:
    with pytest.raises(plait.PipelineDefinitionError,
                       match="router 'route': on_error 'humans' is not a branch; "
                             "branches: 'bot', 'human'"):
        plait.Router("route", route=lambda ctx: "bot", branches={"bot": human, "human": human},
                     on_error="humans")
