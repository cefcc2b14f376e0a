"""A Router runs on its own like a one-step pipeline: ``await router.run(inputs)``."""

from __future__ import annotations

import plait
import pytest
from plait_testing import FakeProvider

agent = plait.Agent("fake:priced", system="Answer.")


@plait.step
async def simple(ctx: plait.StepContext) -> str:
    return f"simple: {ctx.input('text')} for {ctx.deps['user']}"


@plait.step
async def thorough(ctx: plait.StepContext) -> str:
    reply = await ctx.ask(agent, ctx.input("text"))
    return f"thorough: {reply.output}"


def by_length(ctx: plait.StepContext) -> str:
    return "simple" if len(ctx.input("text").split()) < 5 else "thorough"


router = plait.Router("documents", route=by_length,
                      branches={"simple": simple, "thorough": thorough})


async def test_a_router_runs_alone_and_returns_a_pipeline_result(
    plait_runtime: plait.Runtime,
) -> None:
    result = await router.run({"text": "short one"}, deps={"user": "ada"},
                              runtime=plait_runtime, run_id="r1")
    assert isinstance(result, plait.PipelineResult)
    assert (result.pipeline, result.run_id) == ("documents", "r1")
    assert result.output == "simple: short one for ada"
    record = result.steps["documents"]
    assert (record.status, record.route) == ("ok", "simple")
    assert record.children["simple"].status == "ok"


async def test_a_router_alone_counts_its_branch_s_usage(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider,
) -> None:
    fake_provider.script("a long answer")
    result = await router.run({"text": "one two three four five six"},
                              runtime=plait_runtime)
    assert result.output == "thorough: a long answer"
    assert result.usage.calls == 1
    assert result.usage.cost > 0
    assert result.steps["documents"].usage == result.usage


async def test_a_router_alone_raises_like_a_pipeline(plait_runtime: plait.Runtime) -> None:
    lost = plait.Router("lost", route=lambda ctx: "nowhere", branches={"a": simple})
    with pytest.raises(plait.StepFailed) as info:
        await lost.run({}, runtime=plait_runtime)
    assert info.value.step_id == "lost"
    assert isinstance(info.value.cause, plait.UnknownRoute)
    assert info.value.partial is not None
    assert info.value.partial.failed == ["lost"]


async def test_the_same_router_still_nests_in_a_pipeline(plait_runtime: plait.Runtime) -> None:
    pipe = plait.Pipeline("outer", steps={"route": router})
    result = await pipe.run({"text": "hi"}, deps={"user": "bo"}, runtime=plait_runtime)
    assert result.output == "simple: hi for bo"  # the branch's value, not a PipelineResult
