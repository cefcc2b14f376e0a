"""Fan-out: ctx.map and plait.FanOut, input order, errors side by side, bounded pools."""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
import warnings
from typing import Any

import anyio
import anyio.lowlevel
import plait
import pytest
from plait_testing import FakeProvider

# Seconds. Items here wait on one another; a fan-out that never starts one of them would
# hang the test, and this bound makes that a failure instead.
DEADLOCK = 10


class Bad(Exception):
    pass


async def in_step(runtime: plait.Runtime, body: Any, inputs: dict[str, Any] | None = None,
                  ) -> plait.PipelineResult:
    return await plait.Pipeline("fan", steps={"s": body}).run(inputs or {}, runtime=runtime)


# -- ctx.map --------------------------------------------------------------------------------


async def test_map_keeps_input_order_whatever_the_finishing_order(
    plait_runtime: plait.Runtime,
) -> None:
    n = 10
    done = [anyio.Event() for _ in range(n)]
    finished: list[int] = []

    async def item(i: int) -> int:
        if i + 1 < n:
            await done[i + 1].wait()  # each item finishes after the next one: reverse order
        finished.append(i)
        done[i].set()
        return i * i

    async def body(ctx: plait.StepContext) -> list[int]:
        result = await ctx.map(item, range(n))
        assert result.ok
        assert result.total == n
        assert len(result) == n
        return list(result.values)

    with anyio.fail_after(DEADLOCK):
        result = await in_step(plait_runtime, body)
    assert finished == list(reversed(range(n)))
    assert result.output == [i * i for i in range(n)]


async def test_map_over_a_generator_and_an_empty_list(plait_runtime: plait.Runtime) -> None:
    async def double(x: int) -> int:
        return 2 * x

    async def body(ctx: plait.StepContext) -> Any:
        gen = await ctx.map(double, (x for x in range(3)))
        empty = await ctx.map(double, [])
        return [list(gen.values), list(empty.values), empty.total, empty.ok]

    assert (await in_step(plait_runtime, body)).output == [[0, 2, 4], [], 0, True]


async def test_on_error_raise_attaches_every_value_and_error(
    plait_runtime: plait.Runtime,
) -> None:
    async def item(i: int) -> int:
        if i == 3:
            raise Bad("three")
        return i

    async def body(ctx: plait.StepContext) -> Any:
        return await ctx.map(item, range(6), limit=1)  # one at a time: 0, 1, 2 then 3 fails

    with pytest.raises(plait.StepFailed) as info:
        await in_step(plait_runtime, body)
    error = info.value.cause
    assert isinstance(error, plait.FanOutError)
    assert error.values == [0, 1, 2]  # items after the failure were never started
    [failed] = error.errors
    assert (failed.index, failed.item, failed.error) == (3, 3, plait.ErrorInfo("Bad", "three"))
    assert isinstance(failed.exception, Bad)
    assert isinstance(error.__cause__, Bad)
    assert "fan-out 's': item 3 failed: Bad: three (3 of 6 items finished)" in str(error)


async def test_on_error_raise_stops_items_in_flight(plait_runtime: plait.Runtime) -> None:
    cancelled = 0
    started = 0

    async def item(i: int) -> int:
        nonlocal cancelled, started
        started += 1
        if i == 0:
            await anyio.wait_all_tasks_blocked()  # the other items are in flight
            raise Bad("first")
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled += 1
            raise
        return i

    async def body(ctx: plait.StepContext) -> Any:
        return await ctx.map(item, range(50), limit=5)

    with pytest.raises(plait.StepFailed):
        await in_step(plait_runtime, body)
    assert started == 5
    assert cancelled == 4


async def test_on_error_collect_returns_values_and_errors_side_by_side(
    plait_runtime: plait.Runtime,
) -> None:
    """W4: 100 items, 7 raise, one call returns 93 values and 7 errors."""
    failing = {3, 14, 15, 42, 65, 88, 99}

    async def item(i: int) -> int:
        await anyio.lowlevel.checkpoint()
        if i in failing:
            raise Bad(f"item {i}")
        return i

    async def body(ctx: plait.StepContext) -> Any:
        result = await ctx.map(item, range(100), limit=10, on_error="collect")
        assert not result.ok
        assert result.total == 100
        assert [e.exception.args[0] for e in result.errors] == [
            f"item {i}" for i in sorted(failing)]
        return result

    result = await in_step(plait_runtime, body)
    fan = result.output
    assert isinstance(fan, plait.FanOutResult)
    assert list(fan.values) == [i for i in range(100) if i not in failing]
    assert [(e.index, e.item, e.error.type) for e in fan.errors] == [
        (i, i, "Bad") for i in sorted(failing)]


async def test_min_success(plait_runtime: plait.Runtime) -> None:
    async def item(i: int) -> int:
        if i % 2:
            raise Bad(str(i))
        return i

    async def enough(ctx: plait.StepContext) -> Any:
        return list((await ctx.map(item, range(10), on_error="collect", min_success=5)).values)

    assert (await in_step(plait_runtime, enough)).output == [0, 2, 4, 6, 8]

    async def too_few(ctx: plait.StepContext) -> Any:
        return await ctx.map(item, range(10), on_error="collect", min_success=6)

    with pytest.raises(plait.StepFailed) as info:
        await in_step(plait_runtime, too_few)
    error = info.value.cause
    assert isinstance(error, plait.FanOutError)
    assert "5 of 10 items succeeded, fewer than min_success=6" in str(error)
    assert error.values == [0, 2, 4, 6, 8]
    assert [e.index for e in error.errors] == [1, 3, 5, 7, 9]


async def test_limit_bounds_items_in_flight(plait_runtime: plait.Runtime) -> None:
    n, limit = 12, 4
    in_flight = 0
    peak = 0
    send, receive = anyio.create_memory_object_stream[None](n)

    async def item(i: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await receive.receive()
        in_flight -= 1
        return i

    seen: list[int] = []

    async def monitor() -> None:
        for _ in range(n):
            await anyio.wait_all_tasks_blocked()
            seen.append(in_flight)
            await send.send(None)

    async def body(ctx: plait.StepContext) -> Any:
        return list((await ctx.map(item, range(n), limit=limit)).values)

    with anyio.fail_after(DEADLOCK):
        async with send, receive, anyio.create_task_group() as tg:
            tg.start_soon(monitor)
            result = await in_step(plait_runtime, body)
    assert result.output == list(range(n))
    assert peak == limit
    assert seen == [4] * 9 + [3, 2, 1]


async def test_sync_mapped_functions_run_in_worker_threads(
    plait_runtime: plait.Runtime,
) -> None:
    loop_thread = threading.get_ident()

    def item(x: int) -> tuple[int, bool]:
        return x + 1, threading.get_ident() != loop_thread

    async def body(ctx: plait.StepContext) -> Any:
        return list((await ctx.map(item, [1, 2, 3], limit=2)).values)

    result = await in_step(plait_runtime, body)
    assert result.output == [(2, True), (3, True), (4, True)]


async def test_a_sync_function_returning_a_coroutine_is_awaited(
    plait_runtime: plait.Runtime,
) -> None:
    """``lambda item: fetch(item)`` is the common way to bind arguments; it is sync but
    hands back a coroutine, which plait awaits instead of returning it as the value."""
    async def fetch(item: int, scale: int) -> int:
        await anyio.lowlevel.checkpoint()
        return item * scale

    async def body(ctx: plait.StepContext) -> Any:
        return list((await ctx.map(lambda item: fetch(item, 10), [1, 2])).values)

    fan = plait.FanOut(lambda ctx, item: fetch(item, 100), over="items")
    pipe = plait.Pipeline("p", steps={"map": body, "fan": fan,
                                      "step": lambda ctx: fetch(ctx.input("n"), 1000)},
                          output="map")
    result = await pipe.run({"items": [3], "n": 4}, runtime=plait_runtime)
    assert result.outputs["map"] == [10, 20]
    assert list(result.outputs["fan"].values) == [300]
    assert result.outputs["step"] == 4000


async def test_twenty_thousand_items_complete(plait_runtime: plait.Runtime) -> None:
    async def item(i: int) -> int:
        await anyio.lowlevel.checkpoint()
        return i

    async def body(ctx: plait.StepContext) -> Any:
        result = await ctx.map(item, range(20_000), limit=2_000)
        assert list(result.values) == list(range(20_000))
        return len(result.values)

    assert (await in_step(plait_runtime, body)).output == 20_000


async def test_per_item_usage_is_counted(plait_runtime: plait.Runtime,
                                         fake_provider: FakeProvider) -> None:
    agent = plait.Agent(model="fake:priced", max_tokens=20)
    fake_provider.script("one", "two words", "three more words")

    async def body(ctx: plait.StepContext) -> Any:
        async def item(prompt: str) -> str:
            return (await ctx.ask(agent, prompt)).text

        result = await ctx.map(item, ["a", "b c", "d e f"], limit=1)
        return result

    result = await in_step(plait_runtime, body)
    fan = result.output
    tokens = [(u.input_tokens, u.output_tokens, u.calls) for u in fan.item_usage]
    assert tokens == [(1, 1, 1), (2, 2, 1), (3, 3, 1)]
    costs = [u.cost for u in fan.item_usage]  # $1 / M in, $2 / M out
    assert costs == [plait.usd("0.000003"), plait.usd("0.000006"), plait.usd("0.000009")]
    assert fan.usage.cost == plait.usd("0.000018")
    assert result.steps["s"].usage.cost == plait.usd("0.000018")
    assert result.usage.cost == plait.usd("0.000018")


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"limit": 0}, ValueError, "limit must be an int >= 1 or None"),
    ({"limit": 2.5}, ValueError, "limit must be an int >= 1 or None"),
    ({"on_error": "ignore"}, ValueError, "on_error must be 'raise' or 'collect'"),
    ({"min_success": -1}, ValueError, "min_success must be an int >= 0 or None"),
    ({"items": "abc"}, TypeError, "fan-out items must be an iterable of items, got str"),
    ({"items": 42}, TypeError, "fan-out items must be an iterable of items, got int"),
    ({"fn": "not callable"}, TypeError, "ctx.map needs a function of the item"),
])
async def test_bad_map_arguments_are_clear(plait_runtime: plait.Runtime, kwargs: dict[str, Any],
                                           error: type[Exception], match: str) -> None:
    async def item(x: Any) -> Any:
        return x

    args: dict[str, Any] = {"fn": item, "items": [1, 2], **kwargs}

    async def body(ctx: plait.StepContext) -> Any:
        return await ctx.map(args.pop("fn"), args.pop("items"), **args)

    with pytest.raises(plait.StepFailed) as info:
        await in_step(plait_runtime, body)
    assert isinstance(info.value.cause, error)
    assert match in str(info.value.cause)


# -- plait.FanOut ---------------------------------------------------------------------------


async def test_fanout_over_a_dependency_with_a_worker_step(plait_runtime: plait.Runtime) -> None:
    async def questions(ctx: plait.StepContext) -> list[str]:
        return ["q0", "q1", "q2"]

    @plait.step
    async def answer(ctx: plait.StepContext) -> str:
        return f"{ctx.item}: {ctx.step_id} {ctx.idempotency_key}"

    pipe = plait.Pipeline("faq", steps={"questions": questions,
                                        "answers": plait.FanOut(answer, over="questions")},
                          deps={"answers": ["questions"]})
    result = await pipe.run({}, runtime=plait_runtime, run_id="r")
    assert list(result.output.values) == [f"q{i}: {i} r/answers/{i}" for i in range(3)]


async def test_fanout_over_an_input_with_a_context_item_function(
    plait_runtime: plait.Runtime,
) -> None:
    async def shout(ctx: plait.StepContext, item: str) -> str:
        return item.upper() + ctx.input("suffix")

    pipe = plait.Pipeline("p", steps={"f": plait.FanOut(shout, over="words", limit=2)})
    result = await pipe.run({"words": ["a", "b", "c"], "suffix": "!"}, runtime=plait_runtime)
    assert list(result.output.values) == ["A!", "B!", "C!"]


async def test_fanout_over_a_function_with_a_sync_worker(plait_runtime: plait.Runtime) -> None:
    loop_thread = threading.get_ident()

    def square(ctx: plait.StepContext, item: int) -> list[Any]:
        return [item * item, threading.get_ident() != loop_thread]

    fan = plait.FanOut(square, over=lambda ctx: range(ctx.input("n")))
    result = await plait.Pipeline("p", steps={"f": fan}).run({"n": 4}, runtime=plait_runtime)
    assert list(result.output.values) == [[0, True], [1, True], [4, True], [9, True]]


async def test_fanout_collect_and_raise(plait_runtime: plait.Runtime) -> None:
    async def worker(ctx: plait.StepContext, item: int) -> int:
        if item == 2:
            raise Bad("two")
        return item

    collect = plait.FanOut(worker, over="items", on_error="collect")
    result = await plait.Pipeline("p", steps={"f": collect}).run(
        {"items": [1, 2, 3]}, runtime=plait_runtime)
    assert list(result.output.values) == [1, 3]
    assert [e.index for e in result.output.errors] == [1]
    assert result.steps["f"].status == "ok"

    fail = plait.FanOut(worker, over="items")
    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"f": fail}).run({"items": [1, 2, 3]},
                                                         runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.FanOutError)
    assert [e.item for e in info.value.cause.errors] == [2]


async def test_fanout_min_success(plait_runtime: plait.Runtime) -> None:
    async def worker(ctx: plait.StepContext, item: int) -> int:
        raise Bad("all fail")

    fan = plait.FanOut(worker, over="items", on_error="collect", min_success=1)
    with pytest.raises(plait.StepFailed, match="0 of 2 items succeeded"):
        await plait.Pipeline("p", steps={"f": fan}).run({"items": [1, 2]},
                                                        runtime=plait_runtime)


async def test_fanout_result_serializes_to_json(plait_runtime: plait.Runtime) -> None:
    async def worker(ctx: plait.StepContext, item: int) -> int:
        if item == 1:
            raise Bad("one")
        return item

    fan = plait.FanOut(worker, over="items", on_error="collect")
    result = await plait.Pipeline("p", steps={"f": fan}).run({"items": [0, 1]},
                                                             runtime=plait_runtime)
    back = plait.PipelineResult.from_json(result.to_json())
    assert back.output["values"] == [0]
    assert back.output["errors"] == [
        {"index": 1, "item": 1, "error": {"type": "Bad", "message": "one", "requests": None}}]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"over": 42}, "over= takes a step id, an input name or a function"),
    ({"worker": 42}, "worker must be a plait.Step or a function"),
    ({"limit": 0}, "FanOut: limit must be an int >= 1"),
    ({"on_error": "skip"}, "FanOut: on_error must be 'raise' or 'collect'"),
    ({"min_success": -2}, "FanOut: min_success must be an int >= 0"),
])
def test_fanout_definition_errors(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"worker": lambda ctx, item: item, "over": "items", **kwargs}
    with pytest.raises(plait.PipelineDefinitionError, match=match):
        plait.FanOut(args.pop("worker"), **args)


async def test_fanout_over_a_missing_input_names_it(plait_runtime: plait.Runtime) -> None:
    fan = plait.FanOut(lambda ctx, item: item, over="items")
    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"f": fan}).run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.MissingInput)
    assert info.value.cause.name == "items"


async def test_a_fan_out_can_run_over_an_earlier_fan_out(plait_runtime: plait.Runtime) -> None:
    first = plait.FanOut(lambda ctx, x: x * 2, over="xs")
    second = plait.FanOut(lambda ctx, x: x + 1, over="first")
    pipe = plait.Pipeline("p", {"first": first, "second": second}, {"second": ["first"]})
    result = await pipe.run({"xs": [1, 2, 3]}, runtime=plait_runtime)
    assert list(result.output) == [3, 5, 7]


# -- per-item timeout and retries ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Job:
    n: int


class SlowOnce(plait.Step):
    """A worker step with its own config: item 0 hangs on its first attempt, item 1 fails
    once; each recovers on a second attempt. An item is a number or a planned ``Job``."""

    config = plait.Config(timeout=0.1, retries=2, retry_delay=0)

    def __init__(self) -> None:
        self.attempts: list[tuple[int, int]] = []

    async def run(self, ctx: plait.StepContext) -> int:
        n = ctx.item.n if isinstance(ctx.item, Job) else int(ctx.item)
        self.attempts.append((n, ctx.attempt))
        if ctx.attempt == 1 and n == 0:
            await anyio.sleep(5)
        if ctx.attempt == 1 and n == 1:
            raise ConnectionError("reset")
        return n * 10


async def test_a_worker_step_keeps_its_own_timeout_and_retries(
        plait_runtime: plait.Runtime) -> None:
    worker = SlowOnce()
    pipe = plait.Pipeline("p", steps={"fan": plait.FanOut(worker, over="items")})
    with anyio.fail_after(DEADLOCK):
        result = await pipe.run({"items": [0, 1, 2]}, runtime=plait_runtime)
    assert list(result.output) == [0, 10, 20]
    assert sorted(worker.attempts) == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1)]


async def test_an_orchestrator_worker_step_keeps_its_own_timeout_and_retries(
        plait_runtime: plait.Runtime, fake_provider: Any) -> None:
    fake_provider.script([{"n": 0}, {"n": 1}])
    worker = SlowOnce()
    orchestrator = plait.Orchestrator(plait.Agent("fake:m", output=list[Job]), {Job: worker})
    with anyio.fail_after(DEADLOCK):
        result = await plait.Pipeline("p", steps={"o": orchestrator}).run(
            {"query": "q"}, runtime=plait_runtime)
    assert [t.output for t in result.output.tasks] == [0, 10]
    assert [t.status for t in result.output.tasks] == ["ok", "ok"]
    assert sorted(worker.attempts) == [(0, 1), (0, 2), (1, 1), (1, 2)]


async def test_map_takes_a_timeout_and_retries_per_item(plait_runtime: plait.Runtime) -> None:
    tries: dict[int, int] = {}

    async def flaky(i: int) -> int:
        tries[i] = tries.get(i, 0) + 1
        if i == 0 and tries[i] == 1:
            await anyio.sleep(5)  # cut off by the item timeout, then retried
        return i

    async def fan(ctx: plait.StepContext) -> list[int]:
        return list(await ctx.map(flaky, [0, 1], timeout=0.1, retries=1))

    with anyio.fail_after(DEADLOCK):
        result = await plait.Pipeline("p", steps={"fan": fan}).run(runtime=plait_runtime)
    assert result.output == [0, 1]
    assert tries == {0: 2, 1: 1}


async def test_an_item_past_its_timeout_is_a_step_timeout_naming_it(
        plait_runtime: plait.Runtime) -> None:
    async def slow(i: int) -> int:
        await anyio.sleep(5)
        return i

    async def fan(ctx: plait.StepContext) -> Any:
        return await ctx.map(slow, [0], timeout=0.05, on_error="collect")

    with anyio.fail_after(DEADLOCK):
        result = await plait.Pipeline("p", steps={"fan": fan}).run(runtime=plait_runtime)
    [error] = result.output.errors
    assert error.error.type == "StepTimeout"
    assert "'fan/0' timed out after 0.05s" in error.error.message


# -- sync functions that hand back awaitables --------------------------------------------


async def test_a_function_returning_an_awaitable_leaves_the_thread_after_one_item(
        plait_runtime: plait.Runtime) -> None:
    threads: list[int] = []

    async def work(i: int) -> int:
        await anyio.lowlevel.checkpoint()
        return i

    def fn(i: int) -> Any:  # sync, but only hands back a coroutine
        threads.append(threading.get_ident())
        return work(i)

    async def fan(ctx: plait.StepContext) -> list[int]:
        return list(await ctx.map(fn, range(6), limit=1))

    result = await plait.Pipeline("p", steps={"fan": fan}).run(runtime=plait_runtime)
    assert result.output == list(range(6))
    loop_thread = threading.get_ident()
    assert threads[0] != loop_thread  # the first item could not know: it went to a thread
    assert threads[1:] == [loop_thread] * 5  # then no thread hop per item


async def test_a_coroutine_handed_back_after_a_fail_fast_cancel_is_closed(
        plait_runtime: plait.Runtime) -> None:
    async def fails() -> int:
        raise ValueError("boom")

    async def never() -> int:
        raise AssertionError("a cancelled item's coroutine must not run")

    def fn(i: int) -> Any:
        if i == 1:
            time.sleep(0.2)  # still in its thread when item 0 fails and the rest are cancelled
            return never()
        return fails()

    async def fan(ctx: plait.StepContext) -> Any:
        return await ctx.map(fn, [0, 1], limit=2)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(plait.StepFailed), anyio.fail_after(DEADLOCK):
            await plait.Pipeline("p", steps={"fan": fan}).run(runtime=plait_runtime)
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


async def test_an_item_scope_has_everything_a_child_scope_has(
        plait_runtime: plait.Runtime) -> None:
    """``item_child`` builds a fan-out item's scope without ``__init__``: a field added to
    ``StepScope`` must be set there too."""
    from plait._context import scope_of
    from plait._scope import StepScope

    seen: list[tuple[StepScope, StepScope]] = []

    async def look(ctx: plait.StepContext) -> int:
        scope = scope_of(ctx)
        seen.append((scope.item_child(3, "x"), scope.child("3", item="x")))
        return 1

    await in_step(plait_runtime, look)
    fast, slow = seen[0]
    for slot in StepScope.__slots__:
        if slot not in ("_ctx", "_ctx_weak"):  # set by the StepContext made over the scope
            assert getattr(fast, slot) == getattr(slow, slot), slot



async def test_an_item_context_shows_what_a_child_context_shows(
        plait_runtime: plait.Runtime) -> None:
    """A FanOut item's context makes its scope on first use; what it shows is what
    ``ctx.child(str(index), item=item)`` shows, and one nobody reads makes no scope."""
    from plait._context import ItemContext

    public = ("step_id", "path", "idempotency_key", "attempt", "config", "item", "usage",
              "budget_left", "route", "run_id", "pipeline", "inputs", "dependencies", "deps")
    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []
    untouched: list[ItemContext] = []

    async def look(ctx: plait.StepContext) -> int:
        lazy, child = ItemContext(ctx, 3, "x"), ctx.child("3", item="x")
        assert lazy.item == "x"
        assert lazy._made is None
        seen.append(({n: getattr(lazy, n) for n in public},
                     {n: getattr(child, n) for n in public}))
        return 1

    async def ignore(ctx: plait.StepContext, item: int) -> int:
        assert isinstance(ctx, ItemContext)
        untouched.append(ctx)
        return item

    await in_step(plait_runtime, look, {"q": 1})
    assert seen[0][0] == seen[0][1]
    assert seen[0][0]["path"] == "s/3"
    pipe = plait.Pipeline("p", steps={"fan": plait.FanOut(ignore, over="items")})
    assert (await pipe.run({"items": [1, 2]}, runtime=plait_runtime)).output.values == [1, 2]
    assert [c._made for c in untouched] == [None, None]
    assert [c.path for c in untouched] == ["fan/0", "fan/1"]  # made now, when asked

# -- named executors -----------------------------------------------------------------------


async def test_an_unknown_executor_names_the_installed_ones_and_the_distribution(
        plait_runtime: plait.Runtime) -> None:
    async def fan(ctx: plait.StepContext) -> Any:
        return await ctx.map(lambda x: x, [1], executor="ray")

    with pytest.raises(plait.StepFailed) as info:
        await in_step(plait_runtime, fan)
    error = info.value.cause
    assert isinstance(error, plait.UnknownExecutor)
    assert isinstance(error, plait.UnknownPlugin)
    assert (error.name, error.installed, error.distribution) == ("ray", ("local",), "plait-ray")
    assert str(error) == "unknown executor 'ray' (installed: local); install plait-ray to add it"


async def test_the_runtime_names_the_default_executor_and_a_fan_out_may_override_it(
        no_network: Any) -> None:
    ran: list[str] = []

    def named(name: str) -> Any:
        async def run(job: plait.FanOutJob, ctx: plait.StepContext) -> list[plait.ItemOutcome]:
            ran.append(f"{name}:{job.label}")
            return [plait.ItemOutcome(i, await job.fn(i, x)) for i, x in enumerate(job.items)]
        return run

    class Executors:
        @plait.hookimpl
        def plait_register_executors(self, register: Any) -> None:
            register("a", named("a"))
            register("b", named("b"))

    async def mapped(ctx: plait.StepContext) -> list[int]:
        return list(await ctx.map(lambda x: x + 1, [1, 2]))

    steps = {"mapped": mapped, "fan": plait.FanOut(lambda ctx, x: x * 2, over="xs",
                                                   executor="b")}
    async with plait.Runtime(entry_points=False, transport=no_network, executor="a",
                             plugins=[Executors()]) as runtime:
        result = await plait.Pipeline("p", steps, output="mapped").run({"xs": [4]},
                                                                       runtime=runtime)
    assert result.outputs["mapped"] == [2, 3]
    assert list(result.outputs["fan"]) == [8]
    assert sorted(ran) == ["a:mapped", "b:fan"]


@pytest.mark.parametrize("bad", ["", 3])
def test_an_executor_name_must_be_a_name(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"Runtime\(executor=\.\.\.\) must be an executor's name"):
        plait.Runtime(entry_points=False, executor=bad)
    with pytest.raises(plait.PipelineDefinitionError, match="FanOut: executor= takes"):
        plait.FanOut(lambda ctx, x: x, over="xs", executor=bad)
