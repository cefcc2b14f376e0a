"""FakeProvider: scripting, failures, latency, usage, truncation and recording."""

from __future__ import annotations

import json
from typing import Any

import anyio
import plait
import pytest
from plait_testing import HANG, PRICES, FakeProvider, ScriptExhausted, provider_plugin


def ask(text: str, model: str = "any", **fields: Any) -> plait.ModelRequest:
    return plait.ModelRequest(model=model, messages=(plait.Message("user", text),), **fields)


# -- scripting ----------------------------------------------------------------------------


async def test_echoes_the_last_user_message_when_nothing_is_scripted() -> None:
    fake = FakeProvider()
    request = plait.ModelRequest(
        model="echo",
        messages=(plait.Message("system", "be terse"), plait.Message("user", "first"),
                  plait.Message("assistant", "ok"), plait.Message("user", "second one")),
    )
    response = await fake.complete(request)
    assert response.text == "second one"
    assert response.model == "echo"
    assert response.finish_reason == "stop"
    assert response.parsed is None


async def test_a_list_is_consumed_in_order_then_exhausted() -> None:
    fake = FakeProvider(["one", "two"])
    assert (await fake.complete(ask("a"))).text == "one"
    assert (await fake.complete(ask("b"))).text == "two"
    with pytest.raises(ScriptExhausted, match=r"fake:any was called 3 times"):
        await fake.complete(ask("c"))


async def test_script_appends_replies() -> None:
    fake = FakeProvider()
    fake.script("first", "second")
    fake.script("third")
    texts = [(await fake.complete(ask(str(i)))).text for i in range(3)]
    assert texts == ["first", "second", "third"]


async def test_per_model_scripts_with_the_default_as_fallback() -> None:
    fake = FakeProvider({"classifier": ["billing", "tech"], "writer": lambda r: "drafted"})
    fake.script("from the default")
    assert (await fake.complete(ask("q1", "classifier"))).text == "billing"
    assert (await fake.complete(ask("q2", "writer"))).text == "drafted"
    assert (await fake.complete(ask("q3", "other"))).text == "from the default"
    assert (await fake.complete(ask("q4", "classifier"))).text == "tech"
    assert (await fake.complete(ask("q5", "writer"))).text == "drafted"


async def test_per_model_script_added_later() -> None:
    fake = FakeProvider()
    fake.script("judged", model="judge")
    assert (await fake.complete(ask("x", "judge"))).text == "judged"
    assert (await fake.complete(ask("echo me", "writer"))).text == "echo me"


async def test_a_callable_answers_from_the_request() -> None:
    fake = FakeProvider(lambda request: request.messages[-1].content.upper())
    assert (await fake.complete(ask("shout"))).text == "SHOUT"


async def test_an_async_callable_is_awaited() -> None:
    async def answer(request: plait.ModelRequest) -> str:
        await anyio.lowlevel.checkpoint()
        return f"model {request.model}"

    fake = FakeProvider(answer)
    assert (await fake.complete(ask("x", "m1"))).text == "model m1"


async def test_json_replies_come_as_text_and_parsed() -> None:
    fake = FakeProvider([{"intent": "billing", "confidence": 0.9}, ["a", "b"]])
    response = await fake.complete(ask("classify"))
    assert response.parsed == {"intent": "billing", "confidence": 0.9}
    assert json.loads(response.text) == response.parsed
    assert (await fake.complete(ask("list"))).parsed == ["a", "b"]


async def test_a_model_response_is_returned_as_scripted() -> None:
    scripted = plait.ModelResponse(
        text="exact", usage=plait.TokenCount(input_tokens=1000, output_tokens=7),
        finish_reason="content_filter", model="fake-v2",
    )
    fake = FakeProvider([scripted])
    assert await fake.complete(ask("anything at all", max_tokens=1)) is scripted


def test_bad_scripts_are_refused_when_given() -> None:
    with pytest.raises(TypeError, match="cannot reply with 42"):
        FakeProvider(["ok", 42])  # type: ignore[list-item]  # the wrong type is the point
    with pytest.raises(TypeError, match="list of replies or a callable"):
        FakeProvider("a bare string")
    with pytest.raises(TypeError, match="script for model 'm' must be a list"):
        FakeProvider({"m": "not a list"})
    fake = FakeProvider(lambda r: "x")
    with pytest.raises(TypeError, match="scripted with a callable"):
        fake.script("more")


async def test_a_callable_returning_a_non_reply_fails_clearly() -> None:
    fake = FakeProvider(lambda r: None)  # type: ignore[arg-type,return-value]  # the point
    with pytest.raises(TypeError, match="cannot reply with None"):
        await fake.complete(ask("x"))


# -- scripted failures --------------------------------------------------------------------


async def test_scripted_exception_instances_are_raised_then_the_script_goes_on() -> None:
    fake = FakeProvider([plait.RateLimited(retry_after=2.5), "recovered"])
    with pytest.raises(plait.RateLimited) as caught:
        await fake.complete(ask("x"))
    assert caught.value.retry_after == 2.5
    assert caught.value.retryable
    assert (await fake.complete(ask("x"))).text == "recovered"


async def test_scripted_provider_error_classes_name_the_fake_and_model() -> None:
    fake = FakeProvider([plait.ProviderUnavailable, plait.RateLimited])
    with pytest.raises(plait.ProviderUnavailable) as unavailable:
        await fake.complete(ask("x", "slow-model"))
    assert (unavailable.value.provider, unavailable.value.model) == ("fake", "slow-model")
    assert str(unavailable.value) == "fake:slow-model: scripted ProviderUnavailable"
    with pytest.raises(plait.RateLimited) as limited:
        await fake.complete(ask("x"))
    assert limited.value.status == 429


async def test_other_exception_classes_are_raised_too() -> None:
    fake = FakeProvider([TimeoutError])
    with pytest.raises(TimeoutError):
        await fake.complete(ask("x"))


# -- latency ------------------------------------------------------------------------------


async def test_latency_uses_the_injected_clock() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    fake = FakeProvider(["a", "b"], latency=lambda r: 10.0 if r.model == "slow" else 0.5,
                        sleep=fake_sleep)
    await fake.complete(ask("x", "slow"))
    await fake.complete(ask("y", "fast"))
    assert slept == [10.0, 0.5]


async def test_no_latency_still_yields_to_the_loop() -> None:
    fake = FakeProvider()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await fake.complete(ask("x"))
    assert scope.cancelled_caught
    assert fake.calls == 1


async def test_a_slow_call_is_cancellable() -> None:
    fake = FakeProvider(["never seen"], latency=3600)
    with anyio.move_on_after(0.01) as scope:
        await fake.complete(ask("x"))
    assert scope.cancelled_caught
    assert fake.calls == 1  # received, then cancelled


async def test_hang_waits_until_cancelled() -> None:
    fake = FakeProvider([HANG, "after"])
    with anyio.move_on_after(0.01) as scope:
        await fake.complete(ask("x"))
    assert scope.cancelled_caught
    assert (await fake.complete(ask("y"))).text == "after"


async def test_a_request_timeout_cuts_a_slow_reply_short_like_a_real_provider() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    fake = FakeProvider(["late", HANG, "in time"], latency=lambda r: 0.5, sleep=fake_sleep)
    for _ in range(2):  # slower than the timeout, then never
        with pytest.raises(plait.ProviderUnavailable, match=r"request timed out after 0.05 s"):
            await fake.complete(ask("x", timeout=0.05))
    assert slept == [0.05, 0.05]  # it waited the timeout, not the latency
    assert (await fake.complete(ask("y", timeout=1.0))).text == "in time"
    assert slept == [0.05, 0.05, 0.5]


async def test_a_per_call_timeout_fails_the_call_in_a_run(
    plait_runtime: plait.Runtime, register_plugin: Any,
) -> None:
    register_plugin(provider_plugin(FakeProvider(["late"], latency=0.5), "fake"))

    @plait.step
    async def slow(ctx: plait.StepContext) -> str:
        return (await ctx.ask(plait.Agent("fake:m"), "q", timeout=0.05, retries=0)).output

    with anyio.fail_after(0.4), pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"slow": slow}).run(runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.ProviderUnavailable)
    assert "timed out" in str(info.value.cause)


async def test_concurrent_calls_consume_the_script_in_arrival_order() -> None:
    fake = FakeProvider(["first", "second"], latency=lambda r: 0.02 if r.model == "a" else 0)
    texts: dict[str, str] = {}

    async def call(model: str) -> None:
        texts[model] = (await fake.complete(ask("x", model))).text

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "a")
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(call, "b")
    assert texts == {"a": "first", "b": "second"}


# -- usage, truncation, stop ----------------------------------------------------------------


async def test_usage_counts_words_in_and_out() -> None:
    fake = FakeProvider(["three word reply"])
    request = plait.ModelRequest(
        model="m",
        messages=(plait.Message("system", "be brief"),
                  plait.Message("user", "hello  there\nfriend")),
    )
    response = await fake.complete(request)
    assert response.usage == plait.TokenCount(input_tokens=5, output_tokens=3)


async def test_max_tokens_truncates_with_finish_reason_length() -> None:
    fake = FakeProvider(["one two\nthree four five", "one two", {"k": "a b c"}])
    cut = await fake.complete(ask("x", max_tokens=3))
    assert (cut.text, cut.finish_reason, cut.usage.output_tokens) == ("one two\nthree", "length", 3)
    whole = await fake.complete(ask("x", max_tokens=2))
    assert (whole.text, whole.finish_reason) == ("one two", "stop")
    cut_json = await fake.complete(ask("x", max_tokens=2))
    assert (cut_json.text, cut_json.parsed, cut_json.finish_reason) == ('{"k": "a', None, "length")


async def test_max_tokens_zero_returns_nothing() -> None:
    response = await FakeProvider(["words"]).complete(ask("x", max_tokens=0))
    assert (response.text, response.finish_reason, response.usage.output_tokens) == (
        "", "length", 0)


async def test_stop_sequences_cut_the_reply() -> None:
    fake = FakeProvider(["alpha END beta STOP gamma"])
    response = await fake.complete(ask("x", stop=("STOP", "END")))
    assert (response.text, response.finish_reason) == ("alpha ", "stop")
    assert response.usage.output_tokens == 1


# -- recording ----------------------------------------------------------------------------


async def test_every_request_is_recorded_failures_included() -> None:
    fake = FakeProvider(["ok", plait.ProviderUnavailable("down")])
    first, second = ask("one", "m1", temperature=0.2), ask("two", "m2", max_tokens=9)
    await fake.complete(first)
    with pytest.raises(plait.ProviderUnavailable):
        await fake.complete(second)
    assert fake.requests == [first, second]
    assert fake.calls == 2
    assert repr(fake) == "FakeProvider(calls=2)"


# -- prices -------------------------------------------------------------------------------


def test_price_table() -> None:
    assert set(PRICES) == {"priced", "free"}
    tokens = plait.TokenCount(input_tokens=3, output_tokens=2)
    assert PRICES["priced"].cost(tokens) == plait.usd("0.000007")
    assert PRICES["free"].cost(tokens) == 0


WEATHER = plait.ToolSpec("get_weather", "The weather.",
                         {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"], "additionalProperties": False})


async def test_a_scripted_tool_call_is_the_model_asking_for_tools() -> None:
    fake = FakeProvider([
        plait.ToolCall("get_weather", {"city": "Oslo"}),
        (plait.ToolCall("get_weather", {"city": "Rome"}),
         plait.ToolCall("get_weather", {"city": "Bonn"}, "mine")),
    ])
    first = await fake.complete(ask("weather?", tools=(WEATHER,)))
    assert first.tool_calls == (plait.ToolCall("get_weather", {"city": "Oslo"}, "call_1"),)
    assert first.finish_reason == "tool_calls"
    assert first.text == ""
    assert first.usage.output_tokens == 2  # the arguments' JSON, in words
    asked = plait.Message("assistant", "", tool_calls=first.tool_calls)
    second = await fake.complete(plait.ModelRequest(
        "any", (plait.Message("user", "weather?"), asked,
                plait.Message("tool", "snow", tool_call_id="call_1")), tools=(WEATHER,)))
    assert [c.id for c in second.tool_calls] == ["call_2", "mine"]


async def test_a_scripted_call_to_a_tool_not_offered_fails_the_test() -> None:
    fake = FakeProvider([plait.ToolCall("get_weather", {"city": "Oslo"})])
    with pytest.raises(AssertionError, match="offers no tools"):
        await fake.complete(ask("weather?"))
    with pytest.raises(TypeError, match=r"a plait\.ToolCall"):
        fake.script(("not a call",))  # type: ignore[arg-type]
