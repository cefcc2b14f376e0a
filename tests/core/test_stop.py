"""Early stop with plait.Stop, and pipelines nested as steps (their output, failure, stop)."""

from __future__ import annotations

from typing import Any

import anyio
import plait
import pytest


async def test_a_stop_ends_the_run_and_nothing_downstream_runs(
    plait_runtime: plait.Runtime,
) -> None:
    ran: list[str] = []

    async def check(ctx: plait.StepContext) -> Any:
        ran.append("check")
        if not ctx.input("email", None):
            return plait.Stop("need an email", {"missing": ["email"]})
        return "ok"

    async def downstream(ctx: plait.StepContext) -> str:
        ran.append(ctx.step_id)
        return "never"

    pipe = plait.Pipeline("form", steps={"check": check, "send": downstream,
                                         "log": downstream},
                          deps={"send": ["check"], "log": ["send"]})
    result = await pipe.run({}, runtime=plait_runtime)
    assert ran == ["check"]
    assert result.stopped_early
    assert result.stop == plait.Stop("need an email", {"missing": ["email"]})
    assert result.output is None
    assert result.outputs == {}
    assert {sid: r.status for sid, r in result.steps.items()} == {
        "check": "stopped", "send": "skipped", "log": "skipped"}
    assert result.ok
    assert result.failed == []


async def test_a_stop_cancels_steps_still_running(plait_runtime: plait.Runtime) -> None:
    cancelled = anyio.Event()
    slow_started = anyio.Event()

    async def slow(ctx: plait.StepContext) -> str:
        slow_started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return "never"

    async def stopper(ctx: plait.StepContext) -> plait.Stop:
        await slow_started.wait()
        return plait.Stop("enough")

    async def after_slow(ctx: plait.StepContext) -> str:
        raise AssertionError("must not run")

    pipe = plait.Pipeline("p", steps={"slow": slow, "stopper": stopper, "after": after_slow},
                          deps={"after": ["slow"]}, output="after")
    result = await pipe.run({}, runtime=plait_runtime)
    assert cancelled.is_set()
    assert result.stop == plait.Stop("enough")
    assert {sid: r.status for sid, r in result.steps.items()} == {
        "slow": "cancelled", "stopper": "stopped", "after": "skipped"}


async def test_completed_outputs_are_kept_when_stopping(plait_runtime: plait.Runtime) -> None:
    async def first(ctx: plait.StepContext) -> int:
        return 1

    async def stop(ctx: plait.StepContext) -> plait.Stop:
        return plait.Stop("done early", ctx.dep("first"))

    async def last(ctx: plait.StepContext) -> int:
        return 3

    pipe = plait.Pipeline("p", steps={"first": first, "stop": stop, "last": last},
                          deps={"stop": ["first"], "last": ["stop"]})
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.outputs == {"first": 1}
    assert result.stop == plait.Stop("done early", 1)


async def test_a_stop_with_unserializable_data_fails(plait_runtime: plait.Runtime) -> None:
    async def stop(ctx: plait.StepContext) -> plait.Stop:
        return plait.Stop("why", {"handle": object()})

    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"s": stop}).run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.SerializationError)
    assert info.value.cause.path == "$.handle"


# -- nested pipelines -----------------------------------------------------------------------


def inner_pipeline(body: Any) -> plait.Pipeline:
    async def prepare(ctx: plait.StepContext) -> str:
        # a nested pipeline sees the outer inputs and its declared dependencies as inputs
        return f"{ctx.input('topic')}/{ctx.input('outline')}"

    return plait.Pipeline("inner", steps={"prepare": prepare, "body": body},
                          deps={"body": ["prepare"]})


async def outline(ctx: plait.StepContext) -> str:
    return "outline"


def outer_pipeline(inner: plait.Pipeline) -> plait.Pipeline:
    async def publish(ctx: plait.StepContext) -> str:
        return f"published {ctx.dep('write')}"

    return plait.Pipeline("outer", steps={"outline": outline, "write": inner,
                                          "publish": publish},
                          deps={"write": ["outline"], "publish": ["write"]})


async def test_a_nested_pipeline_is_a_step(plait_runtime: plait.Runtime) -> None:
    async def body(ctx: plait.StepContext) -> str:
        return ctx.dep("prepare") + "/body"

    result = await outer_pipeline(inner_pipeline(body)).run({"topic": "tea"},
                                                            runtime=plait_runtime, run_id="r")
    assert result.output == "published tea/outline/body"
    assert result.outputs["write"] == "tea/outline/body"
    record = result.steps["write"]
    assert record.status == "ok"
    assert {sid: r.status for sid, r in record.children.items()} == {
        "prepare": "ok", "body": "ok"}


async def test_nested_steps_have_their_own_paths(plait_runtime: plait.Runtime) -> None:
    async def body(ctx: plait.StepContext) -> list[str]:
        return [ctx.run_id, ctx.step_id, ctx.idempotency_key]

    result = await outer_pipeline(inner_pipeline(body)).run({"topic": "t"},
                                                            runtime=plait_runtime, run_id="r")
    assert result.outputs["write"] == ["r", "body", "r/write/body"]


async def test_a_nested_failure_fails_the_outer_step(plait_runtime: plait.Runtime) -> None:
    async def body(ctx: plait.StepContext) -> str:
        raise ValueError("inner broke")

    with pytest.raises(plait.StepFailed) as info:
        await outer_pipeline(inner_pipeline(body)).run({"topic": "t"}, runtime=plait_runtime)
    outer = info.value  # one StepFailed, named by the path, with the inner step's error
    assert outer.step_id == "write/body"
    assert isinstance(outer.cause, ValueError)
    inner = outer.nested_partials["write"]
    assert inner.outputs == {"prepare": "t/outline"}
    assert outer.partial is not None
    assert outer.partial.outputs == {"outline": "outline"}
    record = outer.partial.steps["write"]
    assert record.status == "failed"
    assert {sid: r.status for sid, r in record.children.items()} == {
        "prepare": "ok", "body": "failed"}
    assert outer.partial.steps["publish"].status == "skipped"


async def test_a_nested_stop_stops_the_outer_run(plait_runtime: plait.Runtime) -> None:
    async def body(ctx: plait.StepContext) -> plait.Stop:
        return plait.Stop("inner says stop", ctx.dep("prepare"))

    result = await outer_pipeline(inner_pipeline(body)).run({"topic": "t"},
                                                            runtime=plait_runtime)
    assert result.stopped_early
    assert result.stop == plait.Stop("inner says stop", "t/outline")
    assert result.steps["write"].status == "stopped"
    assert result.steps["write"].children["body"].status == "stopped"
    assert result.steps["publish"].status == "skipped"
    assert result.outputs == {"outline": "outline"}


async def test_a_nested_pipeline_can_be_retried_by_the_outer_config(
    plait_runtime: plait.Runtime,
) -> None:
    attempts = 0

    async def body(ctx: plait.StepContext) -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("flaky")
        return "fine"

    inner = inner_pipeline(body)
    outer = plait.Pipeline("outer", steps={"outline": outline, "write": inner},
                           deps={"write": ["outline"]},
                           step_config={"write": plait.Config(retries=1, retry_delay=0)})
    result = await outer.run({"topic": "t"}, runtime=plait_runtime)
    assert result.output == "fine"
    assert result.steps["write"].attempts == 2


async def test_a_nested_permanent_failure_is_not_retried(plait_runtime: plait.Runtime) -> None:
    attempts = 0

    async def body(ctx: plait.StepContext) -> str:
        nonlocal attempts
        attempts += 1
        return ctx.input("never given")

    inner = inner_pipeline(body)
    outer = plait.Pipeline("outer", steps={"outline": outline, "write": inner},
                           deps={"write": ["outline"]},
                           step_config={"write": plait.Config(retries=3, retry_delay=0)})
    with pytest.raises(plait.StepFailed) as info:
        await outer.run({"topic": "t"}, runtime=plait_runtime)
    assert attempts == 1
    assert info.value.attempts == 1
