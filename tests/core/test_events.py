"""Run events: what a run reports to its listeners, in order, as things finish."""

from __future__ import annotations

import json
from typing import Any

import anyio
import plait
import pytest
from plait import _execution
from plait._serialize import to_json

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, event: Any) -> None:
        self.events.append(event)

    def kinds(self) -> list[tuple[str, str]]:
        return [(type(e).__name__, getattr(e, "step_id", "")) for e in self.events]


class Bad(Exception):
    pass


def shapes() -> plait.Pipeline:
    @plait.step
    async def first(ctx: plait.StepContext) -> str:
        return ctx.input("text").upper()

    @plait.step
    async def fan(ctx: plait.StepContext) -> list[int]:
        async def length(word: str) -> int:
            return len(word)
        return list(await ctx.map(length, ctx.dep("first").split(), limit=1))

    @plait.step
    async def shout(ctx: plait.StepContext) -> str:
        return ctx.input("text") + "!"

    inner = plait.Pipeline("inner", steps={"shout": shout})
    router = plait.Router("pick", route=lambda ctx: "loud",
                          branches={"loud": inner, "quiet": shout})
    return plait.Pipeline("shapes", steps={"first": first, "fan": fan, "route": router},
                          deps={"fan": ["first"], "route": ["fan"]})


async def test_a_run_reports_every_step_item_and_its_end_in_order(
        plait_runtime: plait.Runtime) -> None:
    seen = Recorder()
    result = await shapes()._start({"text": "ab c"}, deps=None, runtime=plait_runtime,
                                   run_id="r1", listeners=(seen,))
    assert seen.kinds() == [
        ("RunStarted", ""),
        ("StepStarted", "first"), ("StepFinished", "first"),
        ("StepStarted", "fan"),
        ("ItemFinished", "fan"), ("ItemFinished", "fan"),
        ("StepFinished", "fan"),
        ("StepStarted", "route"),
        ("StepStarted", "route/loud"),  # the branch, then the nested pipeline's own step
        ("StepStarted", "route/loud/shout"), ("StepFinished", "route/loud/shout"),
        ("StepFinished", "route/loud"),
        ("StepFinished", "route"),
        ("RunFinished", ""),
    ]
    assert {e.run_id for e in seen.events} == {"r1"}
    started, *_, finished = seen.events
    assert started.pipeline == "shapes"
    assert started.inputs == {"text": "ab c"}
    assert finished.result == result
    assert result.output == "ab c!"
    items = [e for e in seen.events if isinstance(e, plait.ItemFinished)]
    assert [(e.index, e.total, e.value, e.error) for e in items] == [(0, 2, 2, None),
                                                                     (1, 2, 1, None)]
    steps = {e.step_id: e for e in seen.events if isinstance(e, plait.StepFinished)}
    assert steps["first"].output == "AB C"
    assert steps["first"].record.status == "ok"
    assert steps["fan"].output == [2, 1]
    assert steps["route"].record.route == "loud"
    times = [e.at for e in seen.events]
    assert times == sorted(times)


async def test_runtime_listeners_hear_every_run(plait_runtime: plait.Runtime) -> None:
    seen = Recorder()
    async with plait.Runtime(entry_points=False, listeners=[seen]) as runtime:
        await shapes().run({"text": "x"}, runtime=runtime)
        await shapes().run({"text": "y"}, runtime=runtime)
    runs = [e.inputs["text"] for e in seen.events if isinstance(e, plait.RunStarted)]
    assert runs == ["x", "y"]


async def test_a_failed_step_and_run_are_reported_with_what_completed(
        plait_runtime: plait.Runtime) -> None:
    async def ok(ctx: plait.StepContext) -> int:
        return 1

    async def bad(ctx: plait.StepContext) -> int:
        raise Bad("no")

    seen = Recorder()
    pipe = plait.Pipeline("p", steps={"ok": ok, "bad": bad}, deps={"bad": ["ok"]})
    with pytest.raises(plait.StepFailed):
        await pipe._start({}, deps=None, runtime=plait_runtime, run_id=None, listeners=(seen,))
    failed = seen.events[-2]
    assert isinstance(failed, plait.StepFinished)
    assert failed.step_id == "bad"
    assert failed.record.status == "failed"
    assert failed.output is None
    assert failed.record.error == plait.ErrorInfo("Bad", "no")
    end = seen.events[-1]
    assert isinstance(end, plait.RunFailed)
    assert end.error.type == "StepFailed"
    assert end.partial is not None
    assert end.partial.outputs == {"ok": 1}


async def test_a_stopped_step_is_reported_as_stopped(plait_runtime: plait.Runtime) -> None:
    async def ask_for_more(ctx: plait.StepContext) -> plait.Stop:
        return plait.Stop("need an email", {"missing": ["email"]})

    seen = Recorder()
    await plait.Pipeline("p", steps={"form": ask_for_more})._start(
        {}, deps=None, runtime=plait_runtime, run_id=None, listeners=(seen,))
    step = seen.events[-2]
    assert step.record.status == "stopped"
    assert step.output == plait.Stop(
        "need an email", {"missing": ["email"]})
    assert seen.events[-1].result.stopped_early


async def test_failed_items_are_reported_with_their_error(plait_runtime: plait.Runtime) -> None:
    async def picky(x: int) -> int:
        if x == 2:
            raise Bad("two")
        return x

    async def fan(ctx: plait.StepContext) -> int:
        return len(await ctx.map(picky, [1, 2, 3], on_error="collect"))

    seen = Recorder()
    await plait.Pipeline("p", steps={"fan": fan})._start(
        {}, deps=None, runtime=plait_runtime, run_id=None, listeners=(seen,))
    items = sorted((e for e in seen.events if isinstance(e, plait.ItemFinished)),
                   key=lambda e: e.index)
    assert [(e.value, e.error) for e in items] == [
        (1, None), (None, plait.ErrorInfo("Bad", "two")), (3, None)]


async def test_every_event_is_json(plait_runtime: plait.Runtime) -> None:
    seen = Recorder()
    await shapes()._start({"text": "ab"}, deps=None, runtime=plait_runtime, run_id="r",
                          listeners=(seen,))
    for event in seen.events:
        data = json.loads(to_json(event, converter=plait_runtime.converter))
        assert data["run_id"] == "r"


async def test_a_waiting_listener_holds_the_run_back(plait_runtime: plait.Runtime) -> None:
    release = anyio.Event()
    started: list[str] = []

    async def slow_reader(event: Any) -> None:
        if isinstance(event, plait.StepFinished) and event.step_id == "a":
            await release.wait()

    async def a(ctx: plait.StepContext) -> int:
        started.append("a")
        return 1

    async def b(ctx: plait.StepContext) -> int:
        started.append("b")
        return 2

    pipe = plait.Pipeline("p", steps={"a": a, "b": b}, deps={"b": ["a"]})
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: pipe._start({}, deps=None, runtime=plait_runtime,
                                              run_id=None, listeners=(slow_reader,)))
            for _ in range(50):
                await anyio.lowlevel.checkpoint()
            assert started == ["a"]  # b waits for the reader, not only for a
            release.set()
    assert started == ["a", "b"]


async def test_a_listener_that_raises_fails_the_run(plait_runtime: plait.Runtime) -> None:
    async def broken(event: Any) -> None:
        if isinstance(event, plait.StepFinished):
            raise Bad("listener")

    async def a(ctx: plait.StepContext) -> int:
        return 1

    with pytest.raises(Bad, match="listener"):
        await plait.Pipeline("p", steps={"a": a})._start(
            {}, deps=None, runtime=plait_runtime, run_id=None, listeners=(broken,))


async def test_an_executor_plugin_reports_items_through_finish(
        plait_runtime: plait.Runtime) -> None:
    class Backwards:
        @plait.hookimpl
        def plait_execute_fanout(self, job: plait.FanOutJob) -> Any:
            async def run() -> list[plait.ItemOutcome]:
                out = []
                for i in reversed(range(len(job.items))):
                    outcome = plait.ItemOutcome(i, await job.fn(i, job.items[i]))
                    await job.finish(outcome)
                    out.append(outcome)
                return out[::-1]
            return run()

    async def double(x: int) -> int:
        return 2 * x

    async def fan(ctx: plait.StepContext) -> list[int]:
        return list(await ctx.map(double, [1, 2, 3]))

    plait_runtime.register(Backwards())
    seen = Recorder()
    await plait.Pipeline("p", steps={"fan": fan})._start(
        {}, deps=None, runtime=plait_runtime, run_id=None, listeners=(seen,))
    assert [(e.index, e.value) for e in seen.events if isinstance(e, plait.ItemFinished)] == [
        (2, 6), (1, 4), (0, 2)]


async def test_a_run_nobody_listens_to_builds_no_events(
        plait_runtime: plait.Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    def built(*args: Any) -> Any:
        raise AssertionError("an event was built for a run with no listeners")

    monkeypatch.setattr(_execution, "StepStarted", built)
    monkeypatch.setattr(_execution, "StepFinished", built)
    result = await shapes().run({"text": "a b"}, runtime=plait_runtime)
    assert result.output == "a b!"


def test_listeners_must_be_callables() -> None:
    with pytest.raises(TypeError, match="listeners"):
        plait.Runtime(entry_points=False, listeners=["not a function"])  # type: ignore[list-item]
