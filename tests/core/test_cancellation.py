"""Cancelling a run from outside cancels everything cleanly: no step keeps running, no task
is left behind, nothing is mistaken for a failure or a timeout."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import plait
import pytest
import sniffio
from plait_testing import HANG, FakeProvider


class Probe:
    """Counts steps that started, were cancelled, finished, or made progress afterwards."""

    def __init__(self, expected: int) -> None:
        self.started = 0
        self.cancelled = 0
        self.finished = 0
        self.ticks = 0
        self.expected = expected
        self.all_started = anyio.Event()

    def start(self) -> None:
        self.started += 1
        if self.started == self.expected:
            self.all_started.set()

    def step(self) -> Callable[[plait.StepContext], Any]:
        async def slow(ctx: plait.StepContext) -> str:
            self.start()
            try:
                while True:
                    await anyio.sleep(0.001)
                    self.ticks += 1
            except anyio.get_cancelled_exc_class():
                self.cancelled += 1
                raise
            finally:
                self.finished += 1

        return slow


def tasks_now() -> set[Any]:
    if sniffio.current_async_library() == "asyncio":
        import asyncio

        return set(asyncio.all_tasks())
    return set()  # trio cannot leak a task: every task lives in a nursery that must close


async def assert_quiet(probe: Probe) -> None:
    """Give any survivor plenty of chances to run; none may."""
    ticks = probe.ticks
    for _ in range(20):
        await anyio.lowlevel.checkpoint()
    await anyio.sleep(0.01)
    assert probe.ticks == ticks


async def cancel_when(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def test_cancelling_a_run_cancels_every_running_step(
    plait_runtime: plait.Runtime,
) -> None:
    probe = Probe(expected=3)
    after_ran = False

    async def after(ctx: plait.StepContext) -> None:
        nonlocal after_ran
        after_ran = True

    pipe = plait.Pipeline("slow", steps={"a": probe.step(), "b": probe.step(),
                                         "c": probe.step(), "after": after},
                          deps={"after": ["a", "b", "c"]})
    before = tasks_now()
    result = None
    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as scope:
            tg.start_soon(cancel_when, probe.all_started, scope)
            result = await pipe.run({}, runtime=plait_runtime)
    assert scope.cancelled_caught
    assert result is None
    assert (probe.started, probe.cancelled, probe.finished) == (3, 3, 3)
    assert not after_ran
    await assert_quiet(probe)
    assert tasks_now() <= before


async def test_move_on_after_around_a_run(plait_runtime: plait.Runtime) -> None:
    probe = Probe(expected=2)
    pipe = plait.Pipeline("slow", steps={"a": probe.step(), "b": probe.step()}, output="a",
                          config=plait.Config(timeout=None, retries=3))
    with anyio.move_on_after(0.05) as scope:
        await pipe.run({}, runtime=plait_runtime)
    assert scope.cancelled_caught
    assert (probe.started, probe.cancelled, probe.finished) == (2, 2, 2)  # not retried
    await assert_quiet(probe)


async def test_cancellation_is_not_a_step_timeout(plait_runtime: plait.Runtime) -> None:
    probe = Probe(expected=1)
    pipe = plait.Pipeline("t", steps={"a": probe.step()},
                          config=plait.Config(timeout=30, retries=2))
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_when, probe.all_started, scope)
            await pipe.run({}, runtime=plait_runtime)
    assert scope.cancelled_caught
    assert probe.started == 1  # cancelled, not timed out and retried


async def test_cancelling_a_fan_out_cancels_items_in_flight(
    plait_runtime: plait.Runtime,
) -> None:
    probe = Probe(expected=5)
    slow = probe.step()

    async def fan(ctx: plait.StepContext) -> Any:
        async def item(i: int) -> Any:
            return await slow(ctx)

        return await ctx.map(item, range(100), limit=5)

    pipe = plait.Pipeline("fan", steps={"fan": fan})
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_when, probe.all_started, scope)
            await pipe.run({}, runtime=plait_runtime)
    assert (probe.started, probe.cancelled) == (5, 5)  # no item started after the cancel
    await assert_quiet(probe)


async def test_cancelling_a_nested_pipeline(plait_runtime: plait.Runtime) -> None:
    probe = Probe(expected=2)
    inner = plait.Pipeline("inner", steps={"x": probe.step(), "y": probe.step()}, output="x")
    outer = plait.Pipeline("outer", steps={"inner": inner, "z": probe.step()}, output="z")
    probe.expected = 3
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_when, probe.all_started, scope)
            await outer.run({}, runtime=plait_runtime)
    assert (probe.started, probe.cancelled, probe.finished) == (3, 3, 3)
    await assert_quiet(probe)


async def test_cancelling_during_a_retry_backoff(plait_runtime: plait.Runtime) -> None:
    failed = anyio.Event()
    attempts = 0

    @plait.step(retries=5, retry_delay=60)
    async def flaky(ctx: plait.StepContext) -> None:
        nonlocal attempts
        attempts += 1
        failed.set()
        raise ConnectionError("down")

    pipe = plait.Pipeline("p", steps={"flaky": flaky})
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_when, failed, scope)
            await pipe.run({}, runtime=plait_runtime)
    assert scope.cancelled_caught
    assert attempts == 1


async def test_a_sync_step_finishes_its_thread_then_nothing_else_runs(
    plait_runtime: plait.Runtime,
) -> None:
    entered = threading.Event()
    leave = threading.Event()
    in_thread = anyio.Event()
    after_ran = False

    def blocking(ctx: plait.StepContext) -> str:
        entered.set()
        leave.wait(timeout=10)
        return "done"

    async def after(ctx: plait.StepContext) -> None:
        nonlocal after_ran
        after_ran = True

    async def watch() -> None:
        await anyio.to_thread.run_sync(entered.wait, 10)
        in_thread.set()

    pipe = plait.Pipeline("p", steps={"blocking": blocking, "after": after},
                          deps={"after": ["blocking"]})
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            tg.start_soon(cancel_when, in_thread, scope)

            async def release_later() -> None:
                await in_thread.wait()
                leave.set()

            tg.start_soon(release_later)
            await pipe.run({}, runtime=plait_runtime)
    assert scope.cancelled_caught
    assert not after_ran


async def test_cancelling_a_model_call(plait_runtime: plait.Runtime,
                                       fake_provider: FakeProvider) -> None:
    fake_provider.script(HANG, HANG)
    agent = plait.Agent(model="fake:priced", max_tokens=10)
    asked = anyio.Event()

    async def ask(ctx: plait.StepContext) -> Any:
        asked.set()
        return await ctx.ask(agent, "q")

    pipe = plait.Pipeline("p", steps={"a": ask, "b": ask}, output="a",
                          config=plait.Config(budget=plait.usd("1")))
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            async def cancel_once_both_asked() -> None:
                await asked.wait()
                await anyio.wait_all_tasks_blocked()
                scope.cancel()

            tg.start_soon(cancel_once_both_asked)
            await pipe.run({}, runtime=plait_runtime)
    assert scope.cancelled_caught
    assert fake_provider.calls == 2


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_no_task_is_left_behind_on_asyncio(plait_runtime: plait.Runtime,
                                                 anyio_backend: str) -> None:
    import asyncio

    probe = Probe(expected=10)
    pipe = plait.Pipeline("wide", steps={f"s{i}": probe.step() for i in range(10)},
                          output="s0")
    before = set(asyncio.all_tasks())
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_when, probe.all_started, scope)
            await pipe.run({}, runtime=plait_runtime)
    assert set(asyncio.all_tasks()) == before
