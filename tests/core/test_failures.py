"""A failed step skips only its dependents; independent branches finish; nothing is lost."""

from __future__ import annotations

import anyio
import plait
import pytest


class Boom(Exception):
    pass


@plait.step
async def ok_a(ctx: plait.StepContext) -> str:
    return "a"


@plait.step
async def failing(ctx: plait.StepContext) -> str:
    raise Boom("the step broke")


@plait.step
async def after_failure(ctx: plait.StepContext) -> str:
    raise AssertionError("a dependent of a failed step must not run")


def diamond() -> plait.Pipeline:
    """a -> {bad, good}; bad -> bad_child -> bad_grandchild; good -> good_child;
    {good_child, bad_grandchild} -> join. Only the bad branch and join are skipped."""

    @plait.step
    async def good(ctx: plait.StepContext) -> str:
        return ctx.dep("a") + "+good"

    @plait.step
    async def good_child(ctx: plait.StepContext) -> str:
        await anyio.lowlevel.checkpoint()
        return ctx.dep("good") + "+child"

    return plait.Pipeline(
        "diamond",
        steps={"a": ok_a, "bad": failing, "bad_child": after_failure,
               "bad_grandchild": after_failure, "good": good, "good_child": good_child,
               "join": after_failure},
        deps={"bad": ["a"], "good": ["a"], "bad_child": ["bad"],
              "bad_grandchild": ["bad_child"], "good_child": ["good"],
              "join": ["good_child", "bad_grandchild"]},
    )


async def test_a_failure_skips_only_its_dependents(plait_runtime: plait.Runtime) -> None:
    with pytest.raises(plait.StepFailed) as info:
        await diamond().run({}, runtime=plait_runtime)
    exc = info.value
    assert exc.step_id == "bad"
    assert exc.attempts == 1
    assert isinstance(exc.cause, Boom)
    assert exc.__cause__ is exc.cause
    assert "step 'bad' failed after 1 attempt: Boom: the step broke" in str(exc)
    partial = exc.partial
    assert partial is not None
    assert {sid: r.status for sid, r in partial.steps.items()} == {
        "a": "ok", "bad": "failed", "bad_child": "skipped", "bad_grandchild": "skipped",
        "good": "ok", "good_child": "ok", "join": "skipped"}
    assert partial.outputs == {"a": "a", "good": "a+good", "good_child": "a+good+child"}
    assert partial.output is None
    assert partial.failed == ["bad"]
    assert not partial.ok
    record = partial.steps["bad"]
    assert record.error == plait.ErrorInfo("Boom", "the step broke")
    assert record.attempts == 1
    assert record.latency_s is not None
    assert record.latency_s >= 0
    assert partial.steps["join"].attempts == 0


async def test_every_completed_output_survives_a_failure_in_a_slow_race(
    plait_runtime: plait.Runtime,
) -> None:
    """The failure happens while an independent branch is still running; that branch
    still finishes and its output is in ``partial``."""
    failed = anyio.Event()

    @plait.step
    async def fail_first(ctx: plait.StepContext) -> None:
        failed.set()
        raise Boom("early")

    @plait.step
    async def slow(ctx: plait.StepContext) -> str:
        await failed.wait()  # still running when the other branch fails
        await anyio.lowlevel.checkpoint()
        return "slow done"

    @plait.step
    async def after_slow(ctx: plait.StepContext) -> str:
        return ctx.dep("slow") + "!"

    pipe = plait.Pipeline("race", steps={"fail": fail_first, "slow": slow, "after": after_slow},
                          deps={"after": ["slow"]}, output="after")
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert info.value.partial is not None
    assert info.value.partial.outputs == {"slow": "slow done", "after": "slow done!"}


async def test_attempts_count_retries(plait_runtime: plait.Runtime) -> None:
    @plait.step(retries=2, retry_delay=0)
    async def always(ctx: plait.StepContext) -> None:
        raise Boom(f"attempt {ctx.attempt}")

    pipe = plait.Pipeline("p", steps={"s": always})
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert info.value.attempts == 3
    assert str(info.value.cause) == "attempt 3"
    assert info.value.partial is not None
    assert info.value.partial.steps["s"].attempts == 3


async def test_a_sync_step_failure_is_the_same(plait_runtime: plait.Runtime) -> None:
    def broken(ctx: plait.StepContext) -> None:
        raise Boom("sync")

    pipe = plait.Pipeline("p", steps={"s": broken})
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, Boom)


async def test_the_first_failure_is_raised_and_the_others_are_recorded(
    plait_runtime: plait.Runtime,
) -> None:
    first_failed = anyio.Event()

    @plait.step
    async def one(ctx: plait.StepContext) -> None:
        first_failed.set()
        raise Boom("one")

    @plait.step
    async def two(ctx: plait.StepContext) -> None:
        await first_failed.wait()
        raise ValueError("two")

    pipe = plait.Pipeline("p", steps={"one": one, "two": two}, output="one")
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert info.value.step_id == "one"
    assert info.value.partial is not None
    assert info.value.partial.failed == ["one", "two"]
    assert info.value.partial.steps["two"].error == plait.ErrorInfo("ValueError", "two")


async def test_step_failed_is_a_plait_error_with_a_readable_cause() -> None:
    cause = KeyError("k")
    exc = plait.StepFailed("s", 2, cause)
    assert isinstance(exc, plait.PlaitError)
    assert (exc.step_id, exc.attempts, exc.cause, exc.partial) == ("s", 2, cause, None)
    assert str(exc) == "step 's' failed after 2 attempts: KeyError: 'k'"


async def test_a_successful_run_is_ok(plait_runtime: plait.Runtime) -> None:
    pipe = plait.Pipeline("p", steps={"a": ok_a})
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.ok
    assert result.failed == []
    assert result.output == "a"
    assert len(result.run_id) == 32
    assert result.pipeline == "p"
