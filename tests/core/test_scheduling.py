"""Eager scheduling: a step starts the moment its own dependencies are done.

Every test proves order with anyio.Event handshakes, never with the wall clock: a step
that would only start after an unrelated slow branch finished would deadlock, and the
generous ``fail_after`` turns that deadlock into a failure instead of a hang.
"""

from __future__ import annotations

import contextvars
from typing import Any

import anyio
import plait

DEADLOCK = 10  # seconds; only reached when scheduling is wrong


async def run(pipe: plait.Pipeline, runtime: plait.Runtime, **inputs: Any) -> plait.PipelineResult:
    with anyio.fail_after(DEADLOCK):
        return await pipe.run(inputs, runtime=runtime)


async def test_a_step_does_not_wait_for_an_unrelated_slow_branch(
    plait_runtime: plait.Runtime,
) -> None:
    second_done = anyio.Event()

    @plait.step
    async def slow(ctx: plait.StepContext) -> str:
        await second_done.wait()  # finishes only after the other chain's second step
        return "slow"

    @plait.step
    async def first(ctx: plait.StepContext) -> str:
        return "first"

    @plait.step
    async def second(ctx: plait.StepContext) -> str:
        second_done.set()
        return ctx.dep("first") + "+second"

    @plait.step
    async def join(ctx: plait.StepContext) -> str:
        return f"{ctx.dep('slow')}|{ctx.dep('second')}"

    pipe = plait.Pipeline(
        "eager", steps={"slow": slow, "first": first, "second": second, "join": join},
        deps={"second": ["first"], "join": ["slow", "second"]})
    result = await run(pipe, plait_runtime)
    assert result.output == "slow|first+second"


async def test_the_w3_shape_runs_each_step_as_soon_as_it_can(
    plait_runtime: plait.Runtime,
) -> None:
    """extract -> classify -> {fetch_market, fetch_user}; fetch_user -> enrich_user;
    {fetch_market, enrich_user} -> calculate."""
    log: list[str] = []
    enrich_started = anyio.Event()

    def traced(name: str, *, wait_for: anyio.Event | None = None,
               signal: anyio.Event | None = None) -> plait.Step:
        async def body(ctx: plait.StepContext) -> str:
            log.append(f"start {name}")
            if signal is not None:
                signal.set()
            if wait_for is not None:
                await wait_for.wait()
            await anyio.lowlevel.checkpoint()
            log.append(f"end {name}")
            return name

        return plait.step(name=name)(body)

    pipe = plait.Pipeline(
        "w3",
        steps={
            "extract": traced("extract"),
            "classify": traced("classify"),
            # the slow branch cannot end until enrich_user, two steps down the other
            # branch, has started: a level-by-level scheduler would deadlock here
            "fetch_market": traced("fetch_market", wait_for=enrich_started),
            "fetch_user": traced("fetch_user"),
            "enrich_user": traced("enrich_user", signal=enrich_started),
            "calculate": traced("calculate"),
        },
        deps={
            "classify": ["extract"],
            "fetch_market": ["classify"],
            "fetch_user": ["classify"],
            "enrich_user": ["fetch_user"],
            "calculate": ["fetch_market", "enrich_user"],
        },
    )
    result = await run(pipe, plait_runtime)
    assert result.output == "calculate"
    assert log.index("start enrich_user") < log.index("end fetch_market")
    for dep, step in [("extract", "classify"), ("classify", "fetch_market"),
                      ("classify", "fetch_user"), ("fetch_user", "enrich_user"),
                      ("fetch_market", "calculate"), ("enrich_user", "calculate")]:
        assert log.index(f"end {dep}") < log.index(f"start {step}")
    assert all(r.status == "ok" for r in result.steps.values())


async def test_independent_roots_all_start_before_any_finishes(
    plait_runtime: plait.Runtime,
) -> None:
    n = 8
    started = 0
    all_started = anyio.Event()

    async def root(ctx: plait.StepContext) -> str:
        nonlocal started
        started += 1
        if started == n:
            all_started.set()
        await all_started.wait()  # deadlocks unless every root runs at once
        return ctx.step_id

    async def gather(ctx: plait.StepContext) -> list[str]:
        return sorted(ctx.dependencies.values())

    steps: dict[str, Any] = {f"r{i}": root for i in range(n)}
    steps["gather"] = gather
    pipe = plait.Pipeline("wide", steps=steps, deps={"gather": [f"r{i}" for i in range(n)]})
    result = await run(pipe, plait_runtime)
    assert result.output == sorted(f"r{i}" for i in range(n))


async def test_max_concurrency_bounds_running_steps(plait_runtime: plait.Runtime) -> None:
    n, bound = 10, 3
    running = 0
    peak = 0
    send, receive = anyio.create_memory_object_stream[None](n)

    async def worker(ctx: plait.StepContext) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await receive.receive()  # held until the monitor lets one go
        running -= 1
        return ctx.step_id

    pipe = plait.Pipeline("bounded", steps={f"s{i}": worker for i in range(n)},
                          output="s0", config=plait.Config(max_concurrency=bound))
    seen: list[int] = []

    async def monitor() -> None:
        for left in range(n, 0, -1):
            await anyio.wait_all_tasks_blocked()
            seen.append(running)
            assert running == min(bound, left)
            await send.send(None)

    async with send, receive, anyio.create_task_group() as tg:
        tg.start_soon(monitor)
        result = await run(pipe, plait_runtime)
    assert peak == bound
    assert seen == [3, 3, 3, 3, 3, 3, 3, 3, 2, 1]
    assert result.output == "s0"
    assert len(result.outputs) == n


async def test_without_a_bound_every_ready_step_runs_at_once(
    plait_runtime: plait.Runtime,
) -> None:
    n = 20
    running = 0
    gate = anyio.Event()

    async def worker(ctx: plait.StepContext) -> None:
        nonlocal running
        running += 1
        await gate.wait()

    async def monitor() -> None:
        await anyio.wait_all_tasks_blocked()
        assert running == n
        gate.set()

    pipe = plait.Pipeline("free", steps={f"s{i}": worker for i in range(n)}, output="s0")
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor)
        await run(pipe, plait_runtime)


async def test_a_step_sees_exactly_its_dependencies_outputs(
    plait_runtime: plait.Runtime,
) -> None:
    async def one(ctx: plait.StepContext) -> int:
        return 1

    async def two(ctx: plait.StepContext) -> int:
        return 2

    async def total(ctx: plait.StepContext) -> dict[str, int]:
        return dict(ctx.dependencies)

    pipe = plait.Pipeline("sum", steps={"one": one, "two": two, "total": total},
                          deps={"total": ["one", "two"]})
    result = await run(pipe, plait_runtime)
    assert result.output == {"one": 1, "two": 2}
    assert result.outputs == {"one": 1, "two": 2, "total": {"one": 1, "two": 2}}
    assert list(result.steps) == ["one", "two", "total"]


async def test_context_variables_set_by_steps_stay_in_the_run(
    plait_runtime: plait.Runtime,
) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="caller")

    async def setter(ctx: plait.StepContext) -> str:
        var.set("step")
        return var.get()

    async def reader(ctx: plait.StepContext) -> str:
        return var.get()

    pipe = plait.Pipeline("vars", steps={"set": setter, "read": reader}, deps={"read": ["set"]})
    result = await run(pipe, plait_runtime)
    assert result.outputs["set"] == "step"
    assert var.get() == "caller"


async def test_one_pipeline_runs_many_times_at_once(plait_runtime: plait.Runtime) -> None:
    both_running = anyio.Event()
    running = 0

    async def first(ctx: plait.StepContext) -> str:
        nonlocal running
        running += 1
        if running == 2:
            both_running.set()
        await both_running.wait()  # deadlocks unless the two runs overlap
        return ctx.input("who")

    async def second(ctx: plait.StepContext) -> str:
        return f"{ctx.dep('first')} in {ctx.run_id}"

    pipe = plait.Pipeline("shared", steps={"first": first, "second": second},
                          deps={"second": ["first"]})
    outputs: dict[str, str] = {}

    async def one(who: str) -> None:
        outputs[who] = (await run(pipe, plait_runtime, who=who)).output

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "ann")
        tg.start_soon(one, "bob")
    assert outputs["ann"].startswith("ann in ")
    assert outputs["bob"].startswith("bob in ")
    assert outputs["ann"] != outputs["bob"].replace("bob", "ann")  # separate run ids
