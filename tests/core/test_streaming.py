"""Streamed model calls: ctx.stream / agent.stream read a reply as it is written, under the
same budget, limits, retries, wrappers and meters as ctx.ask."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anyio
import attrs
import plait
import pytest
from plait.hookspecs import Wrapper
from plait_testing import HANG, PRICES, Chunks, FakeProvider, provider_plugin

AGENT = plait.Agent(model="fake:priced", max_tokens=1000)
# "q" as the only message: 64 template + 1 byte + 8 for the turn = 73 input tokens ($1/M)
INPUT_ESTIMATE = 73
PER_IN, PER_OUT = Decimal("0.000001"), Decimal("0.000002")


def runtime(fake: FakeProvider, *plugins: Any, **kwargs: Any) -> plait.Runtime:
    return plait.Runtime(entry_points=False,
                         plugins=[provider_plugin(fake, prices=PRICES), *plugins], **kwargs)


async def run_step(fn: Any, rt: plait.Runtime, budget: str = "1") -> plait.PipelineResult:
    pipe = plait.Pipeline("s", steps={"s": fn}, config=plait.Config(budget=plait.usd(budget)))
    with anyio.fail_after(10):
        return await pipe.run({}, runtime=rt)


async def read(stream: plait.ModelStream, into: list[str]) -> None:
    async with stream:
        async for text in stream:
            into.append(text)


def spent(ctx: plait.StepContext, limit: str = "1") -> Decimal:
    assert ctx.budget_left is not None
    return plait.usd(limit) - ctx.budget_left  # spent + still reserved


async def test_text_arrives_in_pieces_and_the_reply_is_whole() -> None:
    fake = FakeProvider(["the quick brown fox"])
    async with runtime(fake) as rt, AGENT.stream("q", runtime=rt) as stream:
        pieces = [text async for text in stream]
    assert pieces == ["the ", "quick ", "brown ", "fox"]
    reply = stream.reply
    assert (reply.output, reply.text, reply.attempts, reply.finish_reason) == (
        "the quick brown fox", "the quick brown fox", 1, "stop")
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (1, 4)
    assert reply.usage.cost == 1 * PER_IN + 4 * PER_OUT


async def test_a_provider_without_stream_streams_one_chunk() -> None:
    class Plain:
        async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
            return plait.ModelResponse("all at once", plait.TokenCount(3, 3), "stop")

    pieces: list[str] = []
    plugins = [provider_plugin(Plain(), "plain")]
    async with plait.Runtime(entry_points=False, plugins=plugins) as rt:
        stream = plait.Agent("plain:m").stream("q", runtime=rt)
        await read(stream, pieces)
    assert pieces == ["all at once"]
    assert stream.reply.usage.output_tokens == 3


async def test_the_whole_stream_settles_to_the_usage_sent() -> None:
    fake = FakeProvider(["a b c"])
    seen: dict[str, Decimal] = {}

    async def step(ctx: plait.StepContext) -> str:
        async with ctx.stream(AGENT, "q") as stream:
            async for _ in stream:
                seen.setdefault("while", spent(ctx))
        seen["after"] = spent(ctx)
        return stream.reply.text

    async with runtime(fake) as rt:
        result = await run_step(step, rt)
    worst = INPUT_ESTIMATE * PER_IN + 1000 * PER_OUT
    assert seen["while"] == worst  # the worst case is held while the text arrives
    assert seen["after"] == 1 * PER_IN + 3 * PER_OUT
    assert result.usage.cost == seen["after"]  # the step's and run's meters were charged
    assert result.steps["s"].usage.output_tokens == 3


async def test_a_stream_left_early_settles_with_what_was_received() -> None:
    # no usage ever arrives: the input's bound, a token per byte, and the in-flight margin
    fake = FakeProvider([Chunks("ab ", "cd ", "ef", usage=False)])
    seen: dict[str, Any] = {}

    async def step(ctx: plait.StepContext) -> str:
        async with ctx.stream(AGENT, "q") as stream:
            async for _ in stream:
                break
        seen["spent"] = spent(ctx)
        with pytest.raises(plait.PlaitError, match="read to its end"):
            stream.reply  # noqa: B018  # the property raises
        return stream.text

    async with runtime(fake) as rt:
        result = await run_step(step, rt)
    assert result.output == "ab "
    out = len(b"ab ") + 64
    assert seen["spent"] == INPUT_ESTIMATE * PER_IN + out * PER_OUT
    assert result.usage.output_tokens == out


async def test_the_conservative_count_never_passes_max_tokens() -> None:
    fake = FakeProvider([Chunks("x" * 50, "y", usage=False)])
    agent = attrs.evolve(AGENT, max_tokens=10)

    async def step(ctx: plait.StepContext) -> int:
        async with ctx.stream(agent, "q") as stream:
            async for _ in stream:
                break
        return ctx.usage.output_tokens

    async with runtime(fake) as rt:
        assert (await run_step(step, rt)).output == 10


async def test_a_cancelled_stream_settles_its_reservation() -> None:
    fake = FakeProvider([Chunks("one ", "two ", HANG, usage=False)])
    seen: dict[str, Any] = {}

    async def step(ctx: plait.StepContext) -> str:
        with anyio.move_on_after(0.2) as scope:
            async with ctx.stream(AGENT, "q") as stream:
                async for text in stream:
                    seen.setdefault("texts", []).append(text)
        assert scope.cancelled_caught
        seen["spent"] = spent(ctx)
        return stream.text

    async with runtime(fake) as rt:
        result = await run_step(step, rt)
    assert seen["texts"] == ["one ", "two "]
    out = len(b"one two ") + 64
    assert seen["spent"] == INPUT_ESTIMATE * PER_IN + out * PER_OUT  # not the worst case
    assert result.usage.output_tokens == out


async def test_an_error_mid_stream_is_typed_and_keeps_the_text() -> None:
    fake = FakeProvider([Chunks("Hel", "lo", plait.ProviderUnavailable)])
    seen: list[str] = []

    async def step(ctx: plait.StepContext) -> str:
        with pytest.raises(plait.StreamInterrupted) as info:
            await read(ctx.stream(AGENT, "q", retries=3, retry_delay=0), seen)
        error = info.value
        assert error.text == "Hello"
        assert isinstance(error.cause, plait.ProviderUnavailable)
        assert error.retryable  # as its cause: a step's retries may run it again
        assert "after 5 characters" in str(error)
        return str(spent(ctx))

    async with runtime(fake) as rt:
        result = await run_step(step, rt)
    assert seen == ["Hel", "lo"]
    assert fake.calls == 1  # never retried once text arrived
    assert Decimal(result.output) == INPUT_ESTIMATE * PER_IN + (5 + 64) * PER_OUT


async def test_errors_before_the_first_text_are_retried() -> None:
    fake = FakeProvider([plait.ProviderUnavailable, Chunks("", plait.RateLimited), "hi there"])
    async with runtime(fake) as rt, AGENT.stream("q", runtime=rt, retry_delay=0) as stream:
        pieces = [text async for text in stream]
    assert pieces == ["hi ", "there"]
    assert (fake.calls, stream.reply.attempts) == (3, 3)


async def test_retries_run_out_before_the_first_text() -> None:
    fake = FakeProvider([plait.ProviderUnavailable] * 3)
    async with runtime(fake) as rt:
        with pytest.raises(plait.ProviderUnavailable) as info:
            async with AGENT.stream("q", runtime=rt, retries=2, retry_delay=0):
                pytest.fail("the stream never opened")
    assert fake.calls == 3
    assert info.value.requests == 3
    assert not info.value.retryable  # it used its retries: a step retry must not add more


async def test_a_refused_request_releases_its_reservation() -> None:
    fake = FakeProvider([plait.BadRequest])

    async def step(ctx: plait.StepContext) -> str:
        with pytest.raises(plait.BadRequest):
            async with ctx.stream(AGENT, "q"):
                pass
        return str(spent(ctx))

    async with runtime(fake) as rt:
        assert Decimal((await run_step(step, rt)).output) == 0


async def test_a_stream_that_does_not_fit_the_budget_is_never_sent() -> None:
    fake = FakeProvider(["x"])

    async def step(ctx: plait.StepContext) -> str:
        async with ctx.stream(AGENT, "q"):
            pytest.fail("opened")
        return ""

    async with runtime(fake) as rt:
        with pytest.raises(plait.BudgetExceeded):
            await run_step(step, rt, budget="0.001")
    assert fake.calls == 0


@attrs.frozen
class City:
    name: str
    population: int


async def test_structured_output_is_parsed_at_the_end() -> None:
    fake = FakeProvider([Chunks('{"name": "Oslo", ', '"population": 700000}')])
    agent = plait.Agent("fake:priced", output=City)
    async with runtime(fake) as rt, agent.stream("q", runtime=rt) as stream:
        pieces = [text async for text in stream]
    assert pieces == ['{"name": "Oslo", ', '"population": 700000}']
    assert stream.reply.output == City("Oslo", 700000)
    assert fake.requests[0].json_schema is not None


async def test_structured_output_that_does_not_parse_raises_at_the_end() -> None:
    fake = FakeProvider([Chunks('{"name": ', '"Oslo"}')])
    agent = plait.Agent("fake:priced", output=City)
    pieces: list[str] = []
    async with runtime(fake) as rt:
        with pytest.raises(plait.OutputParseError):
            await read(agent.stream("q", runtime=rt), pieces)
    assert pieces == ['{"name": ', '"Oslo"}']  # every piece arrived before the error
    assert fake.calls == 1  # a stream is never re-asked


async def test_validators_run_on_the_whole_reply() -> None:
    fake = FakeProvider(["too short"])

    def long_enough(value: str) -> str | None:
        return "under 20 characters" if len(value) < 20 else None

    async with runtime(fake) as rt:
        with pytest.raises(plait.ValidationFailed, match="under 20 characters"):
            await read(AGENT.stream("q", runtime=rt, validate=[long_enough]), [])


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    @plait.hookimpl
    def plait_wrap_model_call(self, request: plait.ModelRequest,
                              call: plait.ModelCall) -> Wrapper:
        try:
            response = yield
        except BaseException as exc:
            self.seen.append(("error", type(exc).__name__, call.usage))
            raise
        self.seen.append((response.text, response.finish_reason, call.usage, call.streamed,
                          call.first_token_s))


async def test_wrappers_see_one_request_and_the_assembled_reply() -> None:
    recorder = Recorder()
    fake = FakeProvider(["a b", Chunks("c ", "d", usage=False)])
    async with runtime(fake, recorder) as rt:
        async with AGENT.stream("q", runtime=rt) as stream:
            async for _ in stream:
                pass
        async with AGENT.stream("q", runtime=rt) as stream:
            async for _ in stream:
                break
    (text, finish, usage, streamed, first), abandoned = recorder.seen
    assert (text, finish, streamed) == ("a b", "stop", True)
    assert usage.output_tokens == 2
    assert first is not None
    assert first >= 0
    assert abandoned[:2] == ("c ", "abandoned")
    assert abandoned[2].output_tokens == 2 + 64


async def test_wrappers_get_the_error_of_a_cancelled_stream() -> None:
    recorder = Recorder()
    fake = FakeProvider([Chunks("c ", HANG)])
    async with runtime(fake, recorder) as rt:
        with anyio.move_on_after(0.1):
            async with AGENT.stream("q", runtime=rt) as stream:
                async for _ in stream:
                    pass
    [(kind, name, usage)] = recorder.seen
    assert kind == "error"
    assert name in ("CancelledError", "Cancelled")
    assert usage.output_tokens == 2 + 64
    assert stream.text == "c "


async def test_a_stream_holds_its_limiter_until_it_is_left() -> None:
    fake = FakeProvider(["one", "two"])
    order: list[str] = []
    async with runtime(fake, limits={"fake": plait.Limits(concurrency=1)}) as rt:
        first_open = anyio.Event()

        async def second() -> None:
            await first_open.wait()
            async with AGENT.stream("q", runtime=rt) as stream:
                order.append("second open")
                async for _ in stream:
                    pass

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(second)
                async with AGENT.stream("q", runtime=rt):
                    first_open.set()
                    await anyio.sleep(0.05)
                    order.append("first still open")
                order.append("first left")
    assert order == ["first still open", "first left", "second open"]


async def test_reading_without_async_with_is_refused() -> None:
    fake = FakeProvider(["x"])
    async with runtime(fake) as rt:
        stream = AGENT.stream("q", runtime=rt)
        with pytest.raises(plait.PlaitError, match="async with"):
            async for _ in stream:
                pass
    assert fake.calls == 0


async def test_a_provider_stream_that_yields_the_wrong_type_is_a_provider_error() -> None:
    class Broken:
        async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
            raise AssertionError("not used")

        async def stream(self, request: plait.ModelRequest) -> AsyncIterator[Any]:
            yield "text"

    async with plait.Runtime(entry_points=False,
                             plugins=[provider_plugin(Broken(), "broken")]) as rt:
        with pytest.raises(plait.ProviderError, match=r"not a plait\.StreamChunk"):
            async with plait.Agent("broken:m").stream("q", runtime=rt):
                pass


async def test_as_step_with_stream_streams_the_call() -> None:
    fake = FakeProvider(["streamed answer"])
    recorder = Recorder()
    pipe = plait.Pipeline("p", steps={"a": AGENT.as_step("q", stream=True)})
    async with runtime(fake, recorder) as rt:
        result = await pipe.run({}, runtime=rt)
    assert result.output == "streamed answer"
    assert recorder.seen[0][3] is True  # made as a stream


async def test_an_agent_with_tools_is_not_streamed_silently_without_them() -> None:
    def lookup(order: int) -> str:
        """Look an order up."""
        return "shipped"

    fake = FakeProvider(["never asked"])
    async with runtime(fake) as rt:
        with pytest.raises(TypeError, match="has tools"):
            plait.Agent("fake:priced", tools=[lookup]).stream("q", runtime=rt)
    assert fake.calls == 0
