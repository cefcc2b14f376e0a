"""``in_context``: a coroutine awaited in a copy of the caller's context, with no task.

A run's first root step is awaited this way (a task cost a third of a ten-step chain), so
it must behave as a task would for what a step can do: set context variables, wait on
anything anyio can wait on, be cancelled, raise. The async tests run on asyncio and trio;
the last ones drive it by hand, as an event loop does.
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Generator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from plait._in_context import in_context

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="caller")


async def test_context_variables_set_inside_stay_inside() -> None:
    VAR.set("before")

    async def sets() -> str:
        seen = VAR.get()
        VAR.set("inside")
        await anyio.lowlevel.checkpoint()  # still its own context after a suspension
        return f"{seen} -> {VAR.get()}"

    assert await in_context(sets()) == "before -> inside"
    assert VAR.get() == "before"


async def test_it_waits_on_what_other_tasks_do() -> None:
    ready, done = anyio.Event(), anyio.Event()
    got = anyio.create_memory_object_stream[int](1)

    async def waits() -> int:
        ready.set()
        await done.wait()
        return await got[1].receive()

    async def other() -> None:
        await ready.wait()
        await got[0].send(42)
        done.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(other)
            assert await in_context(waits()) == 42
    got[0].close()
    got[1].close()


async def test_a_cancellation_reaches_the_coroutine_and_its_cleanup_runs() -> None:
    cleaned: list[str] = []

    async def sleeps() -> None:
        try:
            await anyio.sleep(30)
        finally:
            cleaned.append(VAR.get())

    async def sets_then_sleeps() -> None:
        VAR.set("inside")
        await sleeps()

    with anyio.fail_after(10):
        with anyio.move_on_after(0.05) as scope:
            await in_context(sets_then_sleeps())
    assert scope.cancelled_caught
    assert cleaned == ["inside"]  # the cleanup ran, in the coroutine's own context
    assert VAR.get() == "caller"


async def test_what_the_coroutine_raises_comes_out() -> None:
    async def fails() -> None:
        await anyio.lowlevel.checkpoint()
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        await in_context(fails())


async def test_a_cancelled_coroutine_can_wait_in_a_shielded_cleanup() -> None:
    """The cancellation is thrown into the coroutine where it waits, and a shielded
    cleanup there can still wait on the event loop before the cancellation goes on."""
    cleaned = anyio.Event()

    async def handles() -> str:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.01)
                cleaned.set()
            raise
        return "unreachable"

    with anyio.fail_after(10), anyio.move_on_after(0.05) as scope:
        await in_context(handles())
    assert scope.cancelled_caught
    assert cleaned.is_set()


# -- driven by hand, as an event loop drives a task: what passes through, and how -------


@types.coroutine
def _suspend(what: str) -> Generator[str, Any, Any]:
    """Yields ``what`` to whoever drives the coroutine, as an event loop's trap does."""
    return (yield what)


def test_what_it_waits_on_goes_up_and_what_is_sent_comes_back() -> None:
    async def inner() -> str:
        got = await _suspend("a future")
        return f"woken with {got}"

    async def outer() -> str:
        return await in_context(inner())

    coro = outer()
    assert coro.send(None) == "a future"  # the loop sees the inner coroutine's trap
    with pytest.raises(StopIteration) as done:
        coro.send("a result")
    assert done.value.value == "woken with a result"


def test_what_the_loop_throws_in_is_thrown_into_the_coroutine() -> None:
    """An event loop throws a cancellation into a task waiting at a bare checkpoint (asyncio
    does, trio sends it): the coroutine sees it where it waits, and may handle it."""
    async def inner() -> str:
        try:
            await _suspend("a checkpoint")
        except KeyError as exc:
            return f"handled {exc}"
        return "not thrown in"

    async def outer() -> str:
        return await in_context(inner())

    coro = outer()
    coro.send(None)
    with pytest.raises(StopIteration) as done:
        coro.throw(KeyError("cancel"))
    assert done.value.value == "handled 'cancel'"


def test_closing_the_awaiting_coroutine_closes_the_inner_one() -> None:
    cleaned: list[str] = []

    async def inner() -> None:
        VAR.set("inside")
        try:
            await _suspend("waiting")
        finally:
            cleaned.append(VAR.get())

    async def outer() -> None:
        await in_context(inner())

    coro = outer()
    coro.send(None)
    coro.close()  # a task dropped while it waits
    assert cleaned == ["inside"]
    assert VAR.get() == "caller"
