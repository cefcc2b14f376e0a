"""pipe.stream: a run's events as they happen, through a bounded buffer, cancelled when the
reader leaves early."""

from __future__ import annotations

import json
from typing import Any

import anyio
import plait
import pytest
from plait._serialize import to_json
from plait_testing import HANG, PRICES, Chunks, FakeProvider, provider_plugin

AGENT = plait.Agent("fake:priced", max_tokens=100)


def runtime(fake: FakeProvider, *plugins: Any) -> plait.Runtime:
    return plait.Runtime(entry_points=False,
                         plugins=[provider_plugin(fake, prices=PRICES), *plugins])


def kinds(events: list[Any]) -> list[tuple[str, str]]:
    return [(type(e).__name__, getattr(e, "step_id", "")) for e in events]


async def test_a_run_streams_its_steps_text_and_result_in_order() -> None:
    fake = FakeProvider(["the answer is here"])

    @plait.step
    async def shout(ctx: plait.StepContext) -> str:
        return ctx.dep("ask").upper()

    pipe = plait.Pipeline("p", steps={"ask": AGENT.as_step("{q}", stream=True),
                                      "shout": shout}, deps={"shout": ["ask"]})
    async with runtime(fake) as rt:
        with anyio.fail_after(10):
            events = [e async for e in pipe.stream({"q": "?"}, runtime=rt, run_id="r1")]
        for event in events:  # every event is JSON through the Runtime's converter
            assert json.loads(to_json(event, converter=rt.converter))["run_id"] == "r1"
    assert kinds(events) == [
        ("RunStarted", ""), ("StepStarted", "ask"),
        *[("TextDelta", "ask")] * 4,
        ("StepFinished", "ask"), ("StepStarted", "shout"), ("StepFinished", "shout"),
        ("RunFinished", ""),
    ]
    assert "".join(e.text for e in events if isinstance(e, plait.TextDelta)) == \
        "the answer is here"
    assert events[-1].result.output == "THE ANSWER IS HERE"


async def test_text_from_ctx_stream_carries_the_steps_path() -> None:
    fake = FakeProvider(["a b"])

    @plait.step
    async def inner(ctx: plait.StepContext) -> str:
        async with ctx.stream(AGENT, "q") as stream:
            async for _ in stream:
                pass
        return stream.reply.text

    pipe = plait.Pipeline("outer", steps={"nest": plait.Pipeline("in", steps={"w": inner})})
    async with runtime(fake) as rt:
        with anyio.fail_after(10):
            deltas = [e async for e in pipe.stream(runtime=rt)
                      if isinstance(e, plait.TextDelta)]
    assert [(d.step_id, d.text) for d in deltas] == [("nest/w", "a "), ("nest/w", "b")]


def fanout(done: list[int], n: int) -> plait.Pipeline:
    @plait.step
    async def many(ctx: plait.StepContext) -> int:
        async def work(i: int) -> int:
            done.append(i)
            return i

        return len((await ctx.map(work, range(n), limit=1)).values)

    return plait.Pipeline("fan", steps={"many": many})


async def test_a_slow_reader_holds_the_run_back() -> None:
    done: list[int] = []
    async with plait.Runtime(entry_points=False) as rt, \
            fanout(done, 100).stream(runtime=rt, buffer=2) as events:
        first = await events.__anext__()
        assert isinstance(first, plait.RunStarted)
        await anyio.sleep(0.2)  # the run gets as far as it can without the reader
        # the buffer (2) plus the one event a listener is waiting to hand over, plus the
        # item in progress: nowhere near the 100 an unbounded buffer would let through
        assert len(done) <= 5
        with anyio.fail_after(10):
            rest = [e async for e in events]
    items = [e for e in rest if isinstance(e, plait.ItemFinished)]
    assert [e.index for e in items] == list(range(100))  # none dropped, in order
    assert isinstance(rest[-1], plait.RunFinished)
    assert rest[-1].result.output == 100


async def test_leaving_early_cancels_the_run_and_settles_its_stream() -> None:
    fake = FakeProvider([Chunks("first ", HANG, usage=False)])
    left: list[str] = []

    @plait.step
    async def slow(ctx: plait.StepContext) -> str:
        try:
            async with ctx.stream(AGENT, "q") as stream:
                async for _ in stream:
                    pass
            return stream.reply.text
        finally:
            left.append(f"{ctx.usage.output_tokens}")

    pipe = plait.Pipeline("p", steps={"slow": slow},
                          config=plait.Config(budget=plait.usd("1")))
    async with runtime(fake) as rt:
        with anyio.fail_after(10):
            async with pipe.stream(runtime=rt) as events:
                async for event in events:
                    if isinstance(event, plait.TextDelta):
                        break
    assert left == [str(len(b"first ") + 64)]  # the step unwound, its stream settled


async def test_a_failed_run_ends_with_run_failed() -> None:
    @plait.step
    async def boom(ctx: plait.StepContext) -> str:
        raise ValueError("no")

    pipe = plait.Pipeline("p", steps={"boom": boom})
    async with plait.Runtime(entry_points=False) as rt:
        events = [e async for e in pipe.stream(runtime=rt)]
    assert kinds(events) == [("RunStarted", ""), ("StepStarted", "boom"),
                             ("StepFinished", "boom"), ("RunFailed", "")]
    assert events[-1].error.type == "StepFailed"
    assert events[-1].partial.steps["boom"].status == "failed"


async def test_an_error_before_the_run_began_is_raised() -> None:
    pipe = plait.Pipeline("p", steps={"s": plait.step(lambda ctx: 1)})
    with pytest.raises(TypeError, match="inputs must be a mapping"):
        async for _ in pipe.stream(["not", "a", "mapping"]):  # type: ignore[arg-type]
            pass


async def test_a_stream_is_read_once_and_its_buffer_is_checked() -> None:
    pipe = plait.Pipeline("p", steps={"s": plait.step(lambda ctx: 1)})
    with pytest.raises(ValueError, match="buffer must be an int >= 1"):
        pipe.stream(buffer=0)
    async with plait.Runtime(entry_points=False) as rt:
        events = pipe.stream(runtime=rt)
        assert [type(e).__name__ async for e in events][-1] == "RunFinished"
        with pytest.raises(plait.PlaitError, match="read once"):
            await events.__aenter__()


async def test_aclose_cancels_a_run_read_without_async_with() -> None:
    started = anyio.Event()
    cancelled: list[bool] = []

    @plait.step
    async def forever(ctx: plait.StepContext) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(True)

    events = plait.Pipeline("p", steps={"s": forever}).stream()
    with anyio.fail_after(10):
        async for event in events:
            if isinstance(event, plait.StepStarted):
                break
        await events.aclose()
    assert cancelled == [True]


async def test_breaking_out_of_a_bare_loop_cancels_the_run() -> None:
    cancelled = anyio.Event()

    @plait.step
    async def forever(ctx: plait.StepContext) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    pipe = plait.Pipeline("p", steps={"s": forever})
    with anyio.fail_after(10):
        async for event in pipe.stream():
            if isinstance(event, plait.StepStarted):
                break  # no async with, no aclose: the dropped stream cancels its run
        await cancelled.wait()
    # leaving fail_after's scope works: the stream left no scope of its own in this task
