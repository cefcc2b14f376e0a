"""run_step: one step, unit-tested with everything a real run gives it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio
import plait
import pytest
from plait_testing import FakeProvider, StepRun, run_step

classifier = plait.Agent("fake:priced", system="Classify.")


@plait.step(retries=1, retry_delay=0)
async def classify(ctx: plait.StepContext) -> dict[str, Any]:
    entities = ctx.dep("extract")
    reply = await ctx.ask(classifier, f"{ctx.input('text')} / {', '.join(entities)}")
    return {"label": reply.output, "user": ctx.deps["user"], "attempt": ctx.attempt,
            "key": ctx.idempotency_key, "pipeline": ctx.pipeline}


async def test_a_step_sees_its_inputs_dependencies_deps_and_runtime(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider,
) -> None:
    fake_provider.script("billing")
    run = await run_step(classify, inputs={"text": "refund"},
                         dependencies={"extract": ["order 7"]}, deps={"user": "ada"},
                         runtime=plait_runtime, run_id="r1")
    assert isinstance(run, StepRun)
    assert run.output == {"label": "billing", "user": "ada", "attempt": 1,
                          "key": "r1/classify", "pipeline": "test classify"}
    assert fake_provider.requests[0].messages[-1].content == "refund / order 7"
    assert run.record.status == "ok"
    assert run.usage.calls == 1
    assert run.usage.cost > 0
    assert list(run.record.models) == ["fake:priced"]


async def test_the_step_s_own_retries_run(plait_runtime: plait.Runtime) -> None:
    @plait.step(retries=2, retry_delay=0)
    async def flaky(ctx: plait.StepContext) -> int:
        if ctx.attempt < 3:
            raise ConnectionError("try again")
        return ctx.attempt

    run = await run_step(flaky, runtime=plait_runtime)
    assert run.output == 3
    assert run.record.attempts == 3


async def test_an_undeclared_dependency_fails_as_in_a_run(plait_runtime: plait.Runtime) -> None:
    with pytest.raises(plait.StepFailed) as info:
        await run_step(classify, inputs={"text": "x"}, runtime=plait_runtime)
    assert info.value.step_id == "classify"
    assert isinstance(info.value.cause, plait.UndeclaredDependency)
    assert info.value.attempts == 1  # a programming error: never retried


async def test_config_applies_a_timeout_and_a_budget(plait_runtime: plait.Runtime,
                                                     fake_provider: FakeProvider) -> None:
    @plait.step
    async def slow(ctx: plait.StepContext) -> str:
        await anyio.sleep(10)
        return "late"

    with anyio.fail_after(5), pytest.raises(plait.StepFailed) as info:
        await run_step(slow, runtime=plait_runtime, config=plait.Config(timeout=0.05))
    assert isinstance(info.value.cause, plait.StepTimeout)

    with pytest.raises(plait.BudgetExceeded):
        await run_step(classifier.as_step("{text}"), inputs={"text": "hi"},
                       runtime=plait_runtime,
                       config=plait.Config(budget=plait.usd("0.0000001")))
    assert fake_provider.calls == 0  # refused before it was sent


async def test_a_plain_function_and_a_stop(plait_runtime: plait.Runtime) -> None:
    def gather(ctx: plait.StepContext) -> Any:  # sync: runs in a worker thread
        missing = {"name", "email"} - set(ctx.input("form"))
        return plait.Stop("incomplete", sorted(missing)) if missing else ctx.input("form")

    run = await run_step(gather, inputs={"form": {"name": "Ada"}}, runtime=plait_runtime)
    assert run.output == plait.Stop("incomplete", ["email"])
    assert run.record.status == "stopped"
    assert run.result.stopped_early


async def test_a_step_id_that_is_also_a_dependency_is_refused() -> None:
    with pytest.raises(ValueError, match="'extract' is also the id of one of its dependencies"):
        await run_step(classify, dependencies={"extract": []}, step_id="extract")


async def test_the_usage_is_an_exact_decimal(plait_runtime: plait.Runtime,
                                             fake_provider: FakeProvider) -> None:
    fake_provider.script("two words")
    run = await run_step(classifier.as_step("one two three"), runtime=plait_runtime)
    # fake:priced: $1 per million in, $2 per million out; 5 words in (system + prompt)
    assert run.usage.cost == Decimal(4) / 1_000_000 + Decimal(4) / 1_000_000
