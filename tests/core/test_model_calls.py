"""Model calls through the fake provider: typed outputs, re-asks, exact costs, transient
failures and Retry-After, client-side limits."""

from __future__ import annotations

import dataclasses
import enum
import time
from decimal import Decimal
from typing import Any, Literal

import anyio
import attrs
import plait
import pytest
from plait._limits import MonotonicClock
from plait_testing import PRICES, FakeProvider, provider_plugin


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


@attrs.frozen
class Intent:
    label: str
    confidence: float


@dataclasses.dataclass
class Step:
    title: str
    minutes: int


@attrs.frozen
class Plan:
    goal: str
    priority: Priority
    steps: list[Step]
    owner: str | None = None


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Delays plait sleeps between model attempts, recorded instead of waited; the
    limiters' clock moves on by each, as if it had been waited."""
    recorded: list[float] = []
    real_sleep = anyio.sleep
    slept = [0.0]

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)
        slept[0] += delay
        await real_sleep(0)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    monkeypatch.setattr(MonotonicClock, "now", lambda _self: time.monotonic() + slept[0])
    return recorded


# -- typed outputs --------------------------------------------------------------------------


@pytest.mark.parametrize(("output", "reply", "expected"), [
    (str, "plain text, kept as is", "plain text, kept as is"),
    (Intent, {"label": "billing", "confidence": 0.9}, Intent("billing", 0.9)),
    (Step, {"title": "boil", "minutes": 5}, Step("boil", 5)),
    (Priority, {"value": "high"}, Priority.HIGH),
    (Priority, "LOW", Priority.LOW),
    (Literal["billing", "tech"], {"value": "tech"}, "tech"),
    (list[int], {"value": [3, 1, 2]}, [3, 1, 2]),
    (list[Intent], {"value": [{"label": "a", "confidence": 1}]}, [Intent("a", 1.0)]),
    (Plan, {"goal": "tea", "priority": "low", "owner": None,
            "steps": [{"title": "boil", "minutes": 5}, {"title": "steep", "minutes": 3}]},
     Plan("tea", Priority.LOW, [Step("boil", 5), Step("steep", 3)])),
])
async def test_typed_outputs_of_every_kind(plait_runtime: plait.Runtime,
                                           fake_provider: FakeProvider, output: Any,
                                           reply: Any, expected: Any) -> None:
    fake_provider.script(reply)
    agent = plait.Agent(model="fake:typed", output=output)

    async def ask(ctx: plait.StepContext) -> Any:
        return (await ctx.ask(agent, "go")).output

    result = await plait.Pipeline("p", steps={"s": ask}).run({}, runtime=plait_runtime)
    assert result.output == expected
    assert type(result.output) is type(expected)
    [request] = fake_provider.requests
    if output is str:
        assert request.json_schema is None
    else:
        assert request.json_schema is not None
        assert request.json_schema["type"] == "object"


async def test_a_malformed_reply_is_re_asked_with_the_error(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("I think it's billing", {"label": "billing"},
                         {"label": "billing", "confidence": 0.75})
    agent = plait.Agent(model="fake:c", system="Classify.", output=Intent)
    reply = await agent.ask("charged twice", runtime=plait_runtime)
    assert reply.output == Intent("billing", 0.75)
    assert reply.attempts == 3
    assert fake_provider.calls == 3
    first, second, third = fake_provider.requests
    assert [m.role for m in first.messages] == ["system", "user"]
    # each re-ask carries the whole conversation: the bad reply, then what was wrong
    assert second.messages[:2] == first.messages
    assert second.messages[2] == plait.Message("assistant", "I think it's billing")
    reask = second.messages[3]
    assert reask.role == "user"
    assert reask.content.startswith("Your previous reply could not be used:")
    assert "Answer again with" in reask.content
    assert third.messages[4] == plait.Message("assistant", '{"label": "billing"}')
    assert "confidence" in third.messages[5].content  # names the missing field
    assert reply.usage.calls == 3


async def test_output_parse_error_with_the_raw_text_after_the_retries(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("nope", "still nope", "never JSON")
    agent = plait.Agent(model="fake:c", output=Intent)
    with pytest.raises(plait.OutputParseError) as info:
        await agent.ask("x", runtime=plait_runtime)
    assert info.value.raw == "never JSON"
    assert "raw reply: 'never JSON'" in str(info.value)
    assert fake_provider.calls == 3  # 2 retries by default


async def test_retries_bound_the_re_asks(plait_runtime: plait.Runtime,
                                         fake_provider: FakeProvider) -> None:
    fake_provider.script("bad", "bad again")
    agent = plait.Agent(model="fake:c", output=Priority)

    @plait.step(retries=1)
    async def once_more(ctx: plait.StepContext) -> Any:
        return (await ctx.ask(agent, "x")).output

    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"s": once_more}).run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.OutputParseError)
    assert info.value.attempts == 1  # a parse error is not retried again by the step
    assert fake_provider.calls == 2  # the step's retries=1 bounds the call's re-asks

    fake_provider.script("bad")
    with pytest.raises(plait.OutputParseError):
        await agent.ask("x", runtime=plait_runtime, retries=0)
    assert fake_provider.calls == 3


async def test_a_native_parsed_value_wins_over_the_text(plait_runtime: plait.Runtime,
                                                       fake_provider: FakeProvider) -> None:
    fake_provider.script(plait.ModelResponse(text="(provider chatter)",
                                             parsed={"label": "tech", "confidence": 0.5}))
    reply = await plait.Agent(model="fake:c", output=Intent).ask("x", runtime=plait_runtime)
    assert reply.output == Intent("tech", 0.5)
    assert reply.text == "(provider chatter)"


# -- exact cost ---------------------------------------------------------------------------


async def test_costs_are_exact_decimals_per_call_step_and_run(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    # fake:priced costs $1 per million input and $2 per million output tokens (words)
    fake_provider.script("one two three", "four five", "six")
    agent = plait.Agent(model="fake:priced", max_tokens=10)

    async def two_calls(ctx: plait.StepContext) -> list[str]:
        a = await ctx.ask(agent, "a b")  # 2 in, 3 out: 2 + 6 = 8 micro-dollars
        b = await ctx.ask(agent, "c")  # 1 in, 2 out: 1 + 4 = 5
        assert a.usage.cost == Decimal("0.000008")
        assert b.usage.cost == Decimal("0.000005")
        assert ctx.usage.cost == Decimal("0.000013")
        return [a.text, b.text]

    async def one_call(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "d e f g")).text  # 4 in, 1 out: 4 + 2 = 6

    pipe = plait.Pipeline("cost", steps={"two": two_calls, "one": one_call},
                          deps={"one": ["two"]})
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.steps["two"].usage == plait.Usage(3, 5, 0, 2, Decimal("0.000013"), requests=2)
    assert result.steps["one"].usage == plait.Usage(4, 1, 0, 1, Decimal("0.000006"), requests=1)
    assert result.usage == plait.Usage(7, 6, 0, 3, Decimal("0.000019"), requests=3)
    assert isinstance(result.usage.cost, Decimal)


async def test_costs_add_up_exactly_over_many_calls(plait_runtime: plait.Runtime,
                                                    fake_provider: FakeProvider) -> None:
    """Summing 0.1-like amounts a thousand times stays exact (floats would drift)."""
    agent = plait.Agent(model="fake:odd", max_tokens=5,
                        price=plait.Price.per_million("0.1", "0.2"))

    async def many(ctx: plait.StepContext) -> int:
        async def call(i: int) -> plait.Reply:
            return await ctx.ask(agent, "w")

        result = await ctx.map(call, range(1000), limit=50)
        return len(result.values)

    result = await plait.Pipeline("p", steps={"s": many}).run({}, runtime=plait_runtime)
    # each call: 1 word in at $0.1/M, the echoed word out at $0.2/M
    assert result.usage.cost == Decimal("0.0003")
    assert result.usage.calls == 1000


async def test_cached_tokens_are_priced_at_the_cached_rate(fake_provider: FakeProvider,
                                                           plait_runtime: plait.Runtime) -> None:
    fake_provider.script(plait.ModelResponse(
        text="ok", usage=plait.TokenCount(input_tokens=1000, output_tokens=10,
                                          cached_tokens=800)))
    price = plait.Price.per_million("2", "8", cached_input="0.5")
    reply = await plait.Agent(model="fake:c", price=price).ask("x", runtime=plait_runtime)
    # 200 fresh * 2 + 800 cached * 0.5 + 10 out * 8 = 880 micro-dollars
    assert reply.usage.cost == Decimal("0.00088")
    assert reply.usage.cached_tokens == 800


async def test_runtime_price_overrides_the_plugin_table(fake_provider: FakeProvider) -> None:
    runtime = plait.Runtime(entry_points=False,
                            plugins=[provider_plugin(fake_provider, prices=PRICES)],
                            prices={"fake:priced": plait.Price.per_million("10", "10")})
    fake_provider.script("x")
    reply = await plait.Agent(model="fake:priced").ask("a b", runtime=runtime)
    assert reply.usage.cost == Decimal("0.00003")  # (2 + 1) * 10 / 1e6


async def test_a_fan_out_worker_step_charges_its_item(plait_runtime: plait.Runtime,
                                                      fake_provider: FakeProvider) -> None:
    agent = plait.Agent(model="fake:priced", max_tokens=20)

    @plait.step
    async def answer(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, ctx.item)).text  # echoes: n words in, n out

    fan = plait.FanOut(answer, over="questions", limit=2)
    result = await plait.Pipeline("p", steps={"f": fan}).run(
        {"questions": ["a", "a b", "a b c"]}, runtime=plait_runtime)
    costs = [u.cost for u in result.output.item_usage]
    assert costs == [Decimal("0.000003"), Decimal("0.000006"), Decimal("0.000009")]
    assert result.usage.cost == Decimal("0.000018")


# -- transient failures -----------------------------------------------------------------


async def test_rate_limited_honours_retry_after(plait_runtime: plait.Runtime,
                                                fake_provider: FakeProvider,
                                                sleeps: list[float]) -> None:
    fake_provider.script(plait.RateLimited(retry_after=7, provider="fake", model="m"),
                         plait.RateLimited(retry_after=0.25, provider="fake", model="m"), "ok")
    reply = await plait.Agent(model="fake:m").ask("x", runtime=plait_runtime, retry_delay=0)
    assert reply.text == "ok"
    assert reply.attempts == 3
    assert sleeps == [7, 0.25]


async def test_retry_after_is_a_floor_over_the_backoff(plait_runtime: plait.Runtime,
                                                       fake_provider: FakeProvider,
                                                       sleeps: list[float]) -> None:
    fake_provider.script(plait.RateLimited(retry_after=0.01), plait.RateLimited(), "ok")
    await plait.Agent(model="fake:m").ask("x", runtime=plait_runtime, retry_delay=4,
                                          retry_max_delay=4)
    assert len(sleeps) == 2
    assert 2 <= sleeps[0] <= 4  # the backoff was longer than the provider asked
    assert 2 <= sleeps[1] <= 4  # no Retry-After: backoff with jitter


async def test_server_errors_retry_with_backoff_then_fail(plait_runtime: plait.Runtime,
                                                          fake_provider: FakeProvider,
                                                          sleeps: list[float]) -> None:
    fake_provider.script(*[plait.ProviderUnavailable] * 3)
    with pytest.raises(plait.ProviderUnavailable) as info:
        await plait.Agent(model="fake:m").ask("x", runtime=plait_runtime, retry_delay=1)
    assert fake_provider.calls == 3
    assert (info.value.provider, info.value.model) == ("fake", "m")
    assert 0.5 <= sleeps[0] <= 1
    assert 1 <= sleeps[1] <= 2


@pytest.mark.parametrize("error", [
    plait.BadRequest("max_tokens is too large", provider="fake", model="m", status=400),
    plait.AuthenticationError("invalid key", provider="fake", model="m", status=401),
    plait.ModelNotFound("no such model", provider="fake", model="m", status=404),
    plait.ContentRefused("refused", provider="fake", model="m"),
])
async def test_client_errors_fail_at_once_with_the_providers_message(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, sleeps: list[float],
    error: plait.ProviderError,
) -> None:
    fake_provider.script(error, "never reached")
    agent = plait.Agent(model="fake:m")

    @plait.step(retries=3)
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "x")).text

    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"s": ask}).run({}, runtime=plait_runtime)
    assert info.value.cause is error
    assert info.value.attempts == 1
    assert fake_provider.calls == 1
    assert sleeps == []
    assert str(error).startswith("fake:m: ")
    assert error.message in str(info.value)


async def test_a_hanging_call_is_bounded_by_the_step_timeout(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    from plait_testing import HANG

    fake_provider.script(HANG)
    agent = plait.Agent(model="fake:slow")

    @plait.step(timeout=0.02)
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "x")).text

    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"s": ask}).run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.StepTimeout)


async def test_a_per_call_timeout_reaches_the_request(plait_runtime: plait.Runtime,
                                                      fake_provider: FakeProvider) -> None:
    await plait.Agent(model="fake:m").ask("x", runtime=plait_runtime, timeout=12.5)
    assert fake_provider.requests[0].timeout == 12.5


# -- client-side limits -------------------------------------------------------------------


async def test_a_concurrency_limit_caps_calls_in_flight(fake_provider: FakeProvider) -> None:
    n, cap = 8, 2
    in_flight = 0
    peak = 0
    send, receive = anyio.create_memory_object_stream[None](n)

    async def held(request: plait.ModelRequest) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await receive.receive()
        in_flight -= 1
        return "done"

    fake = FakeProvider(held)
    runtime = plait.Runtime(entry_points=False, plugins=[provider_plugin(fake)],
                            limits={"fake": plait.Limits(concurrency=cap)})
    agent = plait.Agent(model="fake:m")
    seen: list[int] = []

    async def monitor() -> None:
        for _ in range(n):
            await anyio.wait_all_tasks_blocked()
            seen.append(in_flight)
            await send.send(None)

    async def fan(ctx: plait.StepContext) -> int:
        async def call(i: int) -> plait.Reply:
            return await ctx.ask(agent, "x")

        return len((await ctx.map(call, range(n))).values)

    async with send, receive, anyio.create_task_group() as tg:
        tg.start_soon(monitor)
        result = await plait.Pipeline("p", steps={"s": fan}).run({}, runtime=runtime)
    assert result.output == n
    assert peak == cap
    assert seen == [2] * 7 + [1]
    assert fake.calls == n


async def test_limits_are_shared_by_every_run_on_a_runtime(fake_provider: FakeProvider) -> None:
    in_flight = 0
    peak = 0
    release = anyio.Event()

    async def held(request: plait.ModelRequest) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await release.wait()
        in_flight -= 1
        return "done"

    runtime = plait.Runtime(entry_points=False, plugins=[provider_plugin(FakeProvider(held))],
                            limits={"fake:m": plait.Limits(concurrency=1)})
    pipe = plait.Pipeline("p", steps={"s": plait.Agent(model="fake:m").as_step("x")})

    async def run() -> None:
        await pipe.run({}, runtime=runtime)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        assert in_flight == 1
        release.set()
    assert peak == 1


async def test_a_retry_after_holds_every_call_to_that_model(plait_runtime: plait.Runtime,
                                                           fake_provider: FakeProvider,
                                                           sleeps: list[float]) -> None:
    """The 429 cools the limiter it came through: the next call waits too, not only the
    call that was told."""
    fake_provider.script(plait.RateLimited(retry_after=5, provider="fake", model="m"), "ok")
    agent = plait.Agent(model="fake:m")
    with pytest.raises(plait.RateLimited):
        await agent.ask("x", runtime=plait_runtime, retries=0)
    assert sleeps == []  # it was not retried, so it did not wait
    reply = await agent.ask("y", runtime=plait_runtime)
    assert reply.text == "ok"
    assert len(sleeps) == 1
    assert 4.5 <= sleeps[0] <= 5  # the other call waited out the rest of the cool-down


async def test_a_retry_after_past_the_cap_fails_the_call_at_once(
        plait_runtime: plait.Runtime, fake_provider: FakeProvider, sleeps: list[float]) -> None:
    fake_provider.script(plait.RateLimited(retry_after=86_400, provider="fake", model="m"),
                         "ok", "ok")

    @plait.step(retries=2)
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(plait.Agent(model="fake:m"), "x")).text

    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"ask": ask}).run(runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.RateLimited)
    assert fake_provider.calls == 1
    assert info.value.attempts == 1
    assert all(s <= 300 for s in sleeps)  # never a day's sleep
