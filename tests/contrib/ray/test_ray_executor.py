"""plait-ray on a real local Ray instance: what only crossing processes can show."""

from __future__ import annotations

import os
import pathlib
import threading
import time
from typing import Any

import anyio
import plait
import plait_ray
import pytest
import ray
from plait._calls import estimate_input_tokens
from plait._model import Message, ModelRequest
from plait_ray._executor import ChunkPlan
from plait_testing import PRICES, FakeProvider, provider_plugin

BOUND = 30  # seconds: any Ray round trip here is far shorter; a hang fails instead


async def in_step(runtime: plait.Runtime, body: Any) -> plait.PipelineResult:
    with anyio.fail_after(BOUND):
        return await plait.Pipeline("fan", steps={"s": body}).run({}, runtime=runtime,
                                                                   run_id="r")


def words(n: int) -> str:
    return " ".join(["w"] * n)


async def test_items_run_in_other_processes_with_their_own_keys(
        plait_runtime: plait.Runtime) -> None:
    @plait.step
    async def where(ctx: plait.StepContext) -> tuple[int, str, str]:
        return os.getpid(), ctx.idempotency_key, ctx.path

    pipe = plait.Pipeline("p", steps={"fan": plait.FanOut(where, over="xs")})
    with anyio.fail_after(BOUND):
        result = await pipe.run({"xs": list(range(6))}, runtime=plait_runtime, run_id="r")
    pids = {pid for pid, _, _ in result.output}
    assert os.getpid() not in pids
    assert [key for _, key, _ in result.output] == [f"r/fan/{i}" for i in range(6)]
    assert [path for _, _, path in result.output] == [f"fan/{i}" for i in range(6)]


async def test_remote_model_calls_count_per_item_in_the_run_totals(
        plait_runtime: plait.Runtime) -> None:
    fake = FakeProvider(lambda request: words(len(request.messages[-1].content.split())))
    plait_runtime.register(provider_plugin(fake, "fake", prices=PRICES))
    agent = plait.Agent("fake:priced", max_tokens=20)

    async def body(ctx: plait.StepContext) -> Any:
        return await ctx.map(lambda prompt: ctx.ask(agent, prompt), ["a", "b c", "d e f"])

    result = await in_step(plait_runtime, body)
    fan = result.output
    assert [r.text for r in fan.values] == ["w", "w w", "w w w"]
    assert [(u.input_tokens, u.output_tokens, u.calls) for u in fan.item_usage] == [
        (1, 1, 1), (2, 2, 1), (3, 3, 1)]
    assert [u.cost for u in fan.item_usage] == [  # $1 / M in, $2 / M out
        plait.usd("0.000003"), plait.usd("0.000006"), plait.usd("0.000009")]
    assert result.steps["s"].usage.cost == plait.usd("0.000018")
    assert result.usage.cost == plait.usd("0.000018")
    assert fake.requests == []  # the driver's copy was never asked: the workers' were


async def test_a_budget_of_ten_worst_cases_holds_across_the_cluster(
        plait_runtime: plait.Runtime) -> None:
    """100 remote items, each one call; the budget fits 10 worst cases. However the calls
    interleave over the worker processes, the run never spends past it."""
    fake = FakeProvider(lambda request: words(20))  # every reply as long as max_tokens
    plait_runtime.register(provider_plugin(fake, "fake", prices=PRICES))
    agent = plait.Agent("fake:priced", max_tokens=20)
    request = ModelRequest("priced", [Message("user", "item 10")], max_tokens=20)
    worst = PRICES["priced"].worst_case(estimate_input_tokens(request), 20)
    budget = worst * 10

    async def body(ctx: plait.StepContext) -> Any:
        return await ctx.map(lambda i: ctx.ask(agent, f"item {i:02}"), range(100),
                             on_error="collect")

    pipe = plait.Pipeline("fan", steps={"s": body}, config=plait.Config(budget=budget))
    with anyio.fail_after(BOUND):
        result = await pipe.run({}, runtime=plait_runtime)
    fan = result.output
    assert result.usage.cost <= budget
    assert sum((u.cost for u in fan.item_usage), plait.usd("0")) == result.usage.cost
    assert 10 <= len(fan.values) < 100  # every worst case that fits was allowed...
    assert {e.error.type for e in fan.errors} == {"BudgetExceeded"}  # ...and no more
    assert len(fan.values) + len(fan.errors) == 100
    real = fan.item_usage[fan.errors[0].index - 1 if fan.errors[0].index else 1].cost
    assert result.usage.cost + real > budget - worst  # it stopped only near the limit


async def test_limit_bounds_items_in_flight_across_processes(
        plait_runtime: plait.Runtime) -> None:
    def busy(i: int) -> tuple[float, float]:
        began = time.time()
        time.sleep(0.1)
        return began, time.time()

    async def body(ctx: plait.StepContext) -> Any:
        return list(await ctx.map(busy, range(12), limit=3))

    spans = (await in_step(plait_runtime, body)).output
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak <= 3


async def test_cancelling_the_run_cancels_the_ray_tasks(plait_runtime: plait.Runtime,
                                                         tmp_path: pathlib.Path) -> None:
    started, finished = tmp_path / "started", tmp_path / "finished"
    started.mkdir()
    finished.mkdir()

    def slow(i: int) -> int:
        (started / str(i)).touch()
        time.sleep(1.5)
        (finished / str(i)).touch()
        return i

    async def body(ctx: plait.StepContext) -> Any:
        return await ctx.map(slow, range(4), limit=2)

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(in_step, plait_runtime, body)
            while not any(started.iterdir()):  # noqa: ASYNC110  # a file, set by another process
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    await anyio.sleep(2.5)  # past when the items would have finished
    assert list(started.iterdir())
    assert not list(finished.iterdir())


async def test_a_worker_that_cannot_be_pickled_is_named_with_the_piece_at_fault(
        plait_runtime: plait.Runtime) -> None:
    lock = threading.Lock()

    def guarded(i: int) -> int:
        with lock:
            return i

    async def body(ctx: plait.StepContext) -> Any:
        return await ctx.map(guarded, [1, 2])

    with pytest.raises(plait.StepFailed) as info:
        await in_step(plait_runtime, body)
    error = info.value.cause
    assert isinstance(error, plait_ray.NotPicklable)
    assert error.what.startswith("the worker ")
    assert "guarded" in error.what
    assert error.part == ("closure variable 'lock' of test_a_worker_that_cannot_be_pickled_"
                          "is_named_with_the_piece_at_fault.<locals>.guarded (_thread.lock)")
    assert "cannot pickle '_thread.lock' object" in error.cause
    assert str(error).startswith("fan-out 's': cannot ship the worker ")


async def test_items_that_cannot_be_pickled_are_named(plait_runtime: plait.Runtime) -> None:
    async def body(ctx: plait.StepContext) -> Any:
        return await ctx.map(lambda x: x, [1, 2, {"guard": threading.Lock()}, 4])

    with pytest.raises(plait.StepFailed) as info:
        await in_step(plait_runtime, body)
    error = info.value.cause
    assert isinstance(error, plait_ray.NotPicklable)
    assert error.what == "item 2"
    assert error.part == "['guard'] (_thread.lock)"
    assert str(error).startswith("fan-out 's': cannot ship item 2 to Ray: ['guard'] "
                                 "(_thread.lock) cannot be pickled (TypeError: ")


async def test_a_result_that_cannot_be_pickled_fails_only_its_item(
        plait_runtime: plait.Runtime) -> None:
    def make(i: int) -> Any:
        return threading.Lock() if i == 1 else i

    async def body(ctx: plait.StepContext) -> Any:
        return await ctx.map(make, range(3), on_error="collect")

    fan = (await in_step(plait_runtime, body)).output
    assert list(fan.values) == [0, 2]
    [error] = fan.errors
    assert (error.index, error.error.type) == (1, "NotPicklable")
    assert "cannot ship the result of item 1 to Ray" in error.error.message


async def test_progress_sees_every_remote_item(plait_runtime: plait.Runtime) -> None:
    done: list[int] = []

    class Counter:
        @plait.hookimpl
        def plait_wrap_fanout(self, job: plait.FanOutJob) -> Any:
            job.on_item_done.append(done.append)
            yield

    plait_runtime.register(Counter())

    async def body(ctx: plait.StepContext) -> Any:
        return len(await ctx.map(lambda x: x, range(500)))

    assert (await in_step(plait_runtime, body)).output == 500
    assert sorted(done) == list(range(500))


@pytest.mark.parametrize(("n", "limit", "slots"), [(10, None, 4), (100_000, None, 4),
                                                   (12, 3, 4), (50, 10, 4), (7, 1, 4)])
def test_chunks_stay_within_the_window(n: int, limit: int | None, slots: int) -> None:
    plan = ChunkPlan(n, limit, slots)
    in_flight: list[int] = []
    sent = 0
    while sent < n:
        while plan.fits(sum(in_flight), len(in_flight)):
            size = plan.next(sum(in_flight))
            assert size >= 1
            in_flight.append(size)
            sent += size
        assert sum(in_flight) <= (limit or n)
        assert len(in_flight) <= (slots if limit is None else limit)
        plan.observe(in_flight[0], 0.00001 * in_flight[0])  # 10 µs an item
        in_flight.pop(0)
    assert sent == n


def test_chunks_grow_to_the_target_time_and_shrink_for_the_last_items() -> None:
    plan = ChunkPlan(100_000, None, 4)
    first = plan.next(0)
    assert first == 64  # small at first: results come back soon
    plan.observe(first, first * 0.0001)  # 100 µs an item: 0.2 s is 2,000 items
    assert plan.next(first) == 2000
    plan.left = 100
    assert plan.next(0) == 25  # an even share of what is left, over the slots
    fixed = ChunkPlan(1000, None, 4, chunk_size=300)
    assert [fixed.next(0) for _ in range(4)] == [300, 300, 300, 100]


def test_the_executor_is_registered_and_ray_is_only_imported_when_used() -> None:
    import subprocess
    import sys

    code = ("import sys, plait; rt = plait.Runtime(); rt.executor('ray'); "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=BOUND)
    assert out.stdout.strip() == "False"
    assert ray.is_initialized()


async def test_the_runs_listeners_see_every_remote_item_as_its_chunk_returns(
        plait_runtime: plait.Runtime) -> None:
    events: list[Any] = []

    async def listen(event: Any) -> None:
        events.append(event)

    def picky(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x * 10

    async def fan(ctx: plait.StepContext) -> int:
        return len(await ctx.map(picky, range(5), on_error="collect"))

    with anyio.fail_after(BOUND):
        await plait.Pipeline("p", steps={"fan": fan})._start(
            {}, deps=None, runtime=plait_runtime, run_id="r", listeners=(listen,))
    items = sorted((e for e in events if isinstance(e, plait.ItemFinished)),
                   key=lambda e: e.index)
    assert [(e.step_id, e.index, e.total, e.value, e.error) for e in items] == [
        ("fan", 0, 5, 0, None), ("fan", 1, 5, 10, None),
        ("fan", 2, 5, None, plait.ErrorInfo("ValueError", "two")),
        ("fan", 3, 5, 30, None), ("fan", 4, 5, 40, None)]
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("StepFinished") > max(i for i, k in enumerate(kinds)
                                             if k == "ItemFinished")


async def test_remote_items_run_inside_the_fan_outs_trace_context(
        plait_runtime: plait.Runtime, tracer_provider: Any, span_exporter: Any) -> None:
    """The driver's OtelTracer (an SDK provider: it cannot be pickled) stays on the driver;
    the trace context crosses, so spans the workers start nest under the fan-out's span."""
    from opentelemetry import trace
    from plait_otel import OtelTracer

    plait_runtime.register(OtelTracer(tracer_provider=tracer_provider))

    def where(_i: int) -> tuple[str, str]:
        span = trace.get_current_span().get_span_context()
        return f"{span.trace_id:032x}", f"{span.span_id:016x}"

    async def body(ctx: plait.StepContext) -> Any:
        return list(await ctx.map(where, range(4)))

    seen = (await in_step(plait_runtime, body)).output
    [fanout] = [s for s in span_exporter.get_finished_spans() if "fanout" in s.name]
    expected = (f"{fanout.context.trace_id:032x}", f"{fanout.context.span_id:016x}")
    assert seen == [expected] * 4


async def test_outcomes_stream_back_while_other_chunks_still_run(
        no_network: Any, tmp_path: pathlib.Path) -> None:
    """Item 1 waits for a file the driver writes when item 0's outcome reaches the run's
    listener: it only finishes if outcomes come back chunk by chunk, not at the end."""
    signal = tmp_path / "item 0 reported"

    async def listen(event: Any) -> None:
        if isinstance(event, plait.ItemFinished) and event.index == 0:
            signal.touch()

    def item(i: int) -> int:
        while i == 1 and not signal.exists():
            time.sleep(0.02)
        return i

    async def fan(ctx: plait.StepContext) -> list[int]:
        return list(await ctx.map(item, range(2), limit=2))

    async with plait.Runtime(entry_points=False, transport=no_network, executor="ray",
                             plugins=[plait_ray.plugin],
                             settings={"ray": {"chunk_size": 1}}) as runtime:
        with anyio.fail_after(BOUND):
            result = await plait.Pipeline("p", steps={"fan": fan})._start(
                {}, deps=None, runtime=runtime, run_id="r", listeners=(listen,))
    assert result.output == [0, 1]
