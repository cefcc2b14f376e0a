"""Retries with exponential backoff and jitter, retry_on, timeouts over the whole step,
and sync steps in a worker thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import plait
import pytest


class Flaky(Exception):
    pass


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the delays plait sleeps between attempts, without waiting for them."""
    recorded: list[float] = []
    real_sleep = anyio.sleep

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    return recorded


def failing_times(n: int, exc: type[Exception] = Flaky) -> tuple[plait.Step, list[int]]:
    attempts: list[int] = []

    async def flaky(ctx: plait.StepContext) -> str:
        attempts.append(ctx.attempt)
        if len(attempts) <= n:
            raise exc(f"failure {len(attempts)}")
        return f"ok after {len(attempts)}"

    return plait.step(flaky), attempts


async def test_retries_until_success(plait_runtime: plait.Runtime, sleeps: list[float]) -> None:
    step, attempts = failing_times(2)
    pipe = plait.Pipeline("p", steps={"s": step}, config=plait.Config(retries=2))
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == "ok after 3"
    assert attempts == [1, 2, 3]
    assert result.steps["s"].attempts == 3
    assert result.steps["s"].status == "ok"
    assert len(sleeps) == 2


async def test_retries_run_out(plait_runtime: plait.Runtime, sleeps: list[float]) -> None:
    step, attempts = failing_times(10)
    pipe = plait.Pipeline("p", steps={"s": step}, config=plait.Config(retries=3))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert attempts == [1, 2, 3, 4]
    assert info.value.attempts == 4
    assert str(info.value.cause) == "failure 4"
    assert len(sleeps) == 3


async def test_backoff_is_exponential_with_jitter_and_capped(
    plait_runtime: plait.Runtime, sleeps: list[float]
) -> None:
    step, _ = failing_times(5)
    pipe = plait.Pipeline("p", steps={"s": step},
                          config=plait.Config(retries=5, retry_delay=1, retry_max_delay=3))
    await pipe.run({}, runtime=plait_runtime)
    caps = [1, 2, 3, 3, 3]  # 1 * 2**(n-1), capped at 3
    assert len(sleeps) == len(caps)
    for delay, cap in zip(sleeps, caps, strict=True):
        assert cap / 2 <= delay <= cap  # equal jitter: never ~0, never above the cap


async def test_retry_delay_zero_retries_at_once(
    plait_runtime: plait.Runtime, sleeps: list[float]
) -> None:
    step, _ = failing_times(2)
    pipe = plait.Pipeline("p", steps={"s": step}, config=plait.Config(retries=2, retry_delay=0))
    await pipe.run({}, runtime=plait_runtime)
    assert sleeps == [0, 0]


async def test_retry_on_filters_which_errors_are_retried(
    plait_runtime: plait.Runtime, sleeps: list[float]
) -> None:
    wanted, wanted_attempts = failing_times(1, Flaky)
    unwanted, unwanted_attempts = failing_times(1, KeyError)
    pipe = plait.Pipeline("p", steps={"wanted": wanted, "unwanted": unwanted}, output="wanted",
                          config=plait.Config(retries=3, retry_on=Flaky))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert info.value.step_id == "unwanted"
    assert unwanted_attempts == [1]
    assert wanted_attempts == [1, 2]
    assert info.value.partial is not None
    assert info.value.partial.outputs == {"wanted": "ok after 2"}


@pytest.mark.parametrize("make_error", [
    lambda ctx: ctx.input("absent"),  # MissingInput
    lambda ctx: ctx.dep("stranger"),  # UndeclaredDependency
])
async def test_permanent_plait_errors_are_not_retried(
    plait_runtime: plait.Runtime, sleeps: list[float], make_error: object
) -> None:
    calls = 0

    @plait.step(retries=3)
    async def broken(ctx: plait.StepContext) -> None:
        nonlocal calls
        calls += 1
        make_error(ctx)  # type: ignore[operator]

    pipe = plait.Pipeline("p", steps={"s": broken})
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.PlaitError)
    assert not info.value.cause.retryable
    assert calls == 1
    assert sleeps == []


async def test_a_timeout_covers_the_whole_step(plait_runtime: plait.Runtime) -> None:
    """Many short awaits add up: no single one is slow, the step as a whole is."""
    ticks = 0

    @plait.step(timeout=0.05)
    async def busy(ctx: plait.StepContext) -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.001)

    pipe = plait.Pipeline("p", steps={"busy": busy})
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    cause = info.value.cause
    assert isinstance(cause, plait.StepTimeout)
    assert (cause.step_id, cause.timeout) == ("busy", 0.05)
    assert str(cause) == "step 'busy' timed out after 0.05s"
    assert ticks > 1
    assert info.value.partial is not None
    assert info.value.partial.steps["busy"].error == plait.ErrorInfo(
        "StepTimeout", "step 'busy' timed out after 0.05s")


async def test_a_timed_out_attempt_is_retried(plait_runtime: plait.Runtime) -> None:
    attempts: list[int] = []

    @plait.step(timeout=0.01, retries=2, retry_delay=0)
    async def slow_then_fast(ctx: plait.StepContext) -> int:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            await anyio.sleep_forever()
        return ctx.attempt

    pipe = plait.Pipeline("p", steps={"s": slow_then_fast})
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == 3
    assert attempts == [1, 2, 3]


async def test_an_explicit_timeout_none_lifts_the_pipeline_timeout(
    plait_runtime: plait.Runtime,
) -> None:
    release = anyio.Event()

    @plait.step(timeout=None)
    async def patient(ctx: plait.StepContext) -> str:
        await release.wait()
        return "done"

    @plait.step
    async def releaser(ctx: plait.StepContext) -> None:
        await anyio.sleep(0.1)  # longer than the pipeline's timeout
        release.set()

    pipe = plait.Pipeline("p", steps={"patient": patient, "releaser": releaser},
                          output="patient",
                          config=plait.Config(timeout=0.05),
                          step_config={"releaser": plait.Config(timeout=None)})
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == "done"


async def test_a_sync_step_runs_in_a_worker_thread(plait_runtime: plait.Runtime) -> None:
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}

    def in_thread(ctx: plait.StepContext) -> str:
        seen["thread"] = threading.get_ident()
        return "sync " + ctx.input("x")

    pipe = plait.Pipeline("p", steps={"s": in_thread})
    result = await pipe.run({"x": "value"}, runtime=plait_runtime)
    assert result.output == "sync value"
    assert seen["thread"] != loop_thread


async def test_a_sync_step_does_not_block_the_loop(plait_runtime: plait.Runtime) -> None:
    """The sync step waits for an async step to run; that can only happen if the loop
    keeps going while the sync step blocks its thread."""
    unblocked = threading.Event()

    def blocking(ctx: plait.StepContext) -> bool:
        return unblocked.wait(timeout=10)

    async def unblocker(ctx: plait.StepContext) -> None:
        await anyio.lowlevel.checkpoint()
        unblocked.set()

    pipe = plait.Pipeline("p", steps={"blocking": blocking, "unblocker": unblocker},
                          output="blocking")
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output is True


async def test_a_sync_step_past_its_timeout_times_out(plait_runtime: plait.Runtime) -> None:
    """A thread cannot be interrupted, but the step's result after the deadline is not
    accepted: the step times out like an async one."""
    @plait.step(timeout=0.01)
    def slow(ctx: plait.StepContext) -> str:
        time.sleep(0.2)  # always far longer than the timeout
        return "too late"

    pipe = plait.Pipeline("p", steps={"slow": slow})
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.StepTimeout)


async def test_sync_callable_objects_and_async_callable_objects(
    plait_runtime: plait.Runtime,
) -> None:
    loop_thread = threading.get_ident()

    class SyncCallable:
        def __call__(self, ctx: plait.StepContext) -> bool:
            return threading.get_ident() != loop_thread

    class AsyncCallable:
        async def __call__(self, ctx: plait.StepContext) -> bool:
            return threading.get_ident() == loop_thread

    pipe = plait.Pipeline("p", steps={"s": SyncCallable(), "a": AsyncCallable()}, output="s")
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.outputs == {"s": True, "a": True}


async def test_jitter_varies_the_delays(plait_runtime: plait.Runtime,
                                        sleeps: list[float]) -> None:
    step, _ = failing_times(8)
    pipe = plait.Pipeline("p", steps={"s": step},
                          config=plait.Config(retries=8, retry_delay=1, retry_max_delay=1))
    await pipe.run({}, runtime=plait_runtime)
    assert len(sleeps) == 8
    assert len(set(sleeps)) > 1  # eight equal delays would mean no jitter at all


# -- step retries around model calls ----------------------------------------------------


async def test_a_call_with_no_retries_of_its_own_is_retried_by_its_step(
        plait_runtime: plait.Runtime, fake_provider: Any, sleeps: list[float]) -> None:
    """``retries=0`` on the call: it used no retries, so the step's retry runs it again."""
    fake_provider.script(plait.ProviderUnavailable("busy", status=503), "ok")

    @plait.step(retries=1)
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(plait.Agent("fake:m"), "hi", retries=0)).text

    result = await plait.Pipeline("p", steps={"ask": ask}).run(runtime=plait_runtime)
    assert result.output == "ok"
    assert result.steps["ask"].attempts == 2
    assert fake_provider.calls == 2
    assert result.steps["ask"].usage.requests == 2


async def test_a_call_that_used_its_retries_is_not_multiplied_by_the_step(
        plait_runtime: plait.Runtime, fake_provider: Any, sleeps: list[float]) -> None:
    """The step's retries=2 reach the call (3 requests); the step does not run it 3 x 3."""
    fake_provider.script(*[plait.ProviderUnavailable("down", status=503)] * 9)

    @plait.step(retries=2)
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(plait.Agent("fake:m"), "hi")).text

    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"ask": ask}).run(runtime=plait_runtime)
    assert fake_provider.calls == 3
    assert info.value.attempts == 1
    assert isinstance(info.value.cause, plait.ProviderUnavailable)
    assert info.value.cause.requests == 3
    assert "(after 3 requests)" in str(info.value)
    record = info.value.partial.steps["ask"] if info.value.partial else None
    assert record is not None
    assert record.usage.requests == 3
    assert record.error is not None
    assert record.error.requests == 3
    assert '"requests": 3' in info.value.partial.to_json()  # type: ignore[union-attr]


async def test_a_fanout_item_error_says_how_many_requests_it_made(
        plait_runtime: plait.Runtime, fake_provider: Any, sleeps: list[float]) -> None:
    fake_provider.script(*[plait.ProviderUnavailable("down", status=503)] * 3)

    async def fan(ctx: plait.StepContext) -> Any:
        return await ctx.map(lambda q: ctx.ask(plait.Agent("fake:m"), q), ["a"],
                             on_error="collect")

    result = await plait.Pipeline("p", steps={"fan": fan}).run(runtime=plait_runtime)
    [error] = result.output.errors
    assert error.error.requests == 3
    assert error.error.message.endswith("(after 3 requests)")
