"""plait-anthropic: Messages API requests and replies, checked against a fake server."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal

import attrs
import httpx
import plait
import plait_anthropic
import pytest
from plait_testing import (
    MockVendor,
    assert_no_secret,
    cut_to_max_tokens,
    registered_providers,
    registration_imports,
)
from plait_testing.contracts import ProviderContract

KEY = "sk-ant-api03-TESTkey0123456789abcdefDoNotLeak-AA"
SENT_HEADERS = {
    "x-api-key": KEY,
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}
URL = "https://api.anthropic.com/v1/messages"


@pytest.fixture
def api() -> MockVendor:
    return MockVendor()


@pytest.fixture
def make_provider(api: MockVendor, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """The registered provider, talking to ``api``; no real key in the environment."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)

    def make(settings: dict[str, Any] | None = None) -> Any:
        env = api.env("anthropic", {"api_key": KEY} if settings is None else settings)
        return registered_providers(plait_anthropic)["anthropic"]["factory"](env)

    return make


def message(
    content: list[dict[str, Any]] | str = "Hi! My name is Claude.",
    *,
    stop_reason: str = "end_turn",
    input_tokens: int = 21,
    output_tokens: int = 9,
    cache_read: int = 0,
    cache_write: int = 0,
) -> dict[str, Any]:
    """A Messages API reply exactly as api.anthropic.com shapes it."""
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache_write,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        },
    }


def tool_use(name: str, value: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": name, "input": value}


def api_error(kind: str, text: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": kind, "message": text},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }


def user(text: str) -> plait.Message:
    return plait.Message("user", text)


def ask(model: str = "claude-sonnet-4-5", **fields: Any) -> plait.ModelRequest:
    fields.setdefault("messages", (user("Hello, Claude"),))
    return plait.ModelRequest(model=model, **fields)


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
    "required": ["city", "celsius"],
    "additionalProperties": False,
}


# -- requests ---------------------------------------------------------------------------


async def test_plain_request_and_reply(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(body=message(input_tokens=50, output_tokens=9, cache_read=2000, cache_write=300))
    request = ask(
        messages=(
            plait.Message("system", "Be brief."),
            user("Hello, Claude"),
            plait.Message("assistant", "Hello!"),
            user("Who are you?"),
            plait.Message("system", "Answer in English."),
        ),
        temperature=0.3,
        max_tokens=200,
        stop=("\n\nHuman:",),
        seed=7,
    )

    response = await make_provider().complete(request)

    sent = api.requests[-1]
    assert sent.method == "POST"
    assert str(sent.url) == URL
    assert api.headers() == SENT_HEADERS
    assert api.body() == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 200,
        "messages": [
            {"role": "user", "content": "Hello, Claude"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Who are you?"},
        ],
        "system": "Be brief.\n\nAnswer in English.",
        "temperature": 0.3,
        "stop_sequences": ["\n\nHuman:"],
    }  # no seed: the Messages API has none
    assert response.text == "Hi! My name is Claude."
    assert response.finish_reason == "stop"
    assert response.model == "claude-sonnet-4-5-20250929"
    assert response.parsed is None
    # input_tokens counts only uncached tokens; plait's input includes the cache's
    assert response.usage == plait.TokenCount(
        input_tokens=2350, output_tokens=9, cached_tokens=2000, cache_write_tokens=300
    )
    assert response.raw["id"] == "msg_013Zva2CMHLNnXjNJJKqJ2EF"


async def test_max_tokens_defaults_to_1024(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=message())
    await make_provider().complete(ask())
    assert api.body() == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello, Claude"}],
    }


async def test_default_max_tokens_from_settings(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=message())
    await make_provider({"api_key": KEY, "max_tokens": 4096}).complete(ask())
    assert api.body()["max_tokens"] == 4096


async def test_text_blocks_are_joined(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(
        body=message(
            [{"type": "text", "text": "Part one. "}, {"type": "text", "text": "Part two."}]
        )
    )
    response = await make_provider().complete(ask())
    assert response.text == "Part one. Part two."


async def test_extra_fields_are_sent_as_given(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=message())
    await make_provider().complete(ask(extra={"top_k": 5, "metadata": {"user_id": "u-1"}}))
    assert api.body()["top_k"] == 5
    assert api.body()["metadata"] == {"user_id": "u-1"}


async def test_structured_output_is_a_forced_tool_call(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(
        body=message(
            [tool_use("weather_report", {"city": "Paris", "celsius": 21.5})], stop_reason="tool_use"
        )
    )
    response = await make_provider().complete(ask(json_schema=SCHEMA, schema_name="weather report"))
    body = api.body()
    assert body["tools"] == [
        {
            "name": "weather_report",
            "description": "Record the answer, in exactly this structure.",
            "input_schema": SCHEMA,
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "weather_report"}
    assert response.parsed == {"city": "Paris", "celsius": 21.5}
    assert json.loads(response.text) == {"city": "Paris", "celsius": 21.5}
    assert response.finish_reason == "stop"


async def test_structured_output_cut_short(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(
        body=message(
            [tool_use("output", {"city": "Par"})], stop_reason="max_tokens", output_tokens=8
        )
    )
    response = await make_provider().complete(ask(json_schema=SCHEMA, max_tokens=8))
    assert response.finish_reason == "length"
    assert response.parsed is None  # an input cut short is not an answer
    assert response.text == '{"city": "Par"}'


async def test_structured_output_answered_in_text(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=message('{"city": "Oslo", "celsius": -3}'))
    response = await make_provider().complete(ask(json_schema=SCHEMA))
    assert response.parsed == {"city": "Oslo", "celsius": -3}
    assert response.finish_reason == "stop"


async def test_truncated_reply(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(body=message("One, two, three, four", stop_reason="max_tokens", output_tokens=5))
    response = await make_provider().complete(ask(max_tokens=5))
    assert response.finish_reason == "length"
    assert response.text == "One, two, three, four"
    assert response.usage.output_tokens == 5


async def test_other_tool_use_is_reported_as_tool_calls(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(
        body=message(
            [{"type": "text", "text": "Checking."}, tool_use("get_weather", {"city": "Rome"})],
            stop_reason="tool_use",
        )
    )
    response = await make_provider().complete(ask(extra={"tools": []}))
    assert response.finish_reason == "tool_calls"
    assert response.text == "Checking."


# -- settings and keys ------------------------------------------------------------------


async def test_key_from_environment_at_call_time(
    api: MockVendor, make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider({})  # built before the key exists: no I/O yet
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api.queue(body=message())
    await provider.complete(ask())
    assert api.headers() == SENT_HEADERS


async def test_missing_key_fails_before_any_request(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    with pytest.raises(plait.AuthenticationError) as caught:
        await make_provider({}).complete(ask())
    assert "ANTHROPIC_API_KEY" in str(caught.value)
    assert "Runtime(settings={'anthropic': {'api_key': ...}})" in str(caught.value)
    assert api.requests == []


async def test_settings_base_url_and_timeout(
    api: MockVendor, make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://env.example")
    provider = make_provider(
        {"api_key": KEY, "base_url": "https://gateway.example/anthropic/", "timeout": 30}
    )
    api.queue(body=message())
    await provider.complete(ask())
    assert str(api.requests[-1].url) == "https://gateway.example/anthropic/v1/messages"
    assert api.requests[-1].extensions["timeout"]["read"] == 30.0
    api.queue(body=message())
    await provider.complete(ask(timeout=2))
    assert api.requests[-1].extensions["timeout"]["read"] == 2.0


async def test_base_url_from_environment(
    api: MockVendor, make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://localhost:4000")
    api.queue(body=message())
    await make_provider().complete(ask())
    assert str(api.requests[-1].url) == "http://localhost:4000/v1/messages"


def test_repr_never_shows_the_key(make_provider: Callable[..., Any]) -> None:
    provider = make_provider()
    assert repr(provider) == (
        "AnthropicProvider(name='anthropic', base_url='https://api.anthropic.com')"
    )
    assert_no_secret(KEY, provider)


# -- replies that are failures ----------------------------------------------------------


async def test_refusal_raises_content_refused(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=message("I can't help with that.", stop_reason="refusal"))
    with pytest.raises(plait.ContentRefused) as caught:
        await make_provider().complete(ask())
    assert str(caught.value) == (
        "anthropic:claude-sonnet-4-5: the model refused: I can't help with that."
    )


async def test_silent_refusal(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(body=message([], stop_reason="refusal"))
    with pytest.raises(plait.ContentRefused, match=r"the model refused$"):
        await make_provider().complete(ask(json_schema=SCHEMA))


async def test_rate_limited_with_retry_after(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    text = (
        "Number of request tokens has exceeded your per-minute rate limit "
        "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for "
        "current usage."
    )
    api.queue(
        429,
        api_error("rate_limit_error", text),
        headers={"retry-after": "15", "anthropic-ratelimit-tokens-remaining": "0"},
    )
    with pytest.raises(plait.RateLimited) as caught:
        await make_provider().complete(ask())
    assert caught.value.retry_after == 15.0
    assert caught.value.retryable
    assert caught.value.message == text


@pytest.mark.parametrize(
    ("status", "kind", "text"),
    [(500, "api_error", "Internal server error"), (529, "overloaded_error", "Overloaded")],
)
async def test_server_errors_are_retryable(
    api: MockVendor, make_provider: Callable[..., Any], status: int, kind: str, text: str
) -> None:
    api.queue(status, api_error(kind, text))
    with pytest.raises(plait.ProviderUnavailable) as caught:
        await make_provider().complete(ask())
    assert caught.value.retryable
    assert str(caught.value) == f"anthropic:claude-sonnet-4-5: {text} (HTTP {status})"


@pytest.mark.parametrize(
    ("status", "kind", "text", "cls"),
    [
        (
            400,
            "invalid_request_error",
            "max_tokens: 100000 > 64000, which is the maximum allowed "
            "number of output tokens for claude-sonnet-4-5-20250929",
            plait.BadRequest,
        ),
        (401, "authentication_error", "invalid x-api-key", plait.AuthenticationError),
        (
            403,
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
            plait.AuthenticationError,
        ),
        (404, "not_found_error", "model: claude-9", plait.ModelNotFound),
        (
            413,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
            plait.BadRequest,
        ),
    ],
)
async def test_client_errors_carry_the_vendor_message(
    api: MockVendor,
    make_provider: Callable[..., Any],
    status: int,
    kind: str,
    text: str,
    cls: type[plait.ProviderError],
) -> None:
    api.queue(status, api_error(kind, text))
    with pytest.raises(cls) as caught:
        await make_provider().complete(ask())
    assert type(caught.value) is cls
    assert caught.value.message == text
    assert not caught.value.retryable
    assert_no_secret(KEY, caught.value)


async def test_malformed_json_body(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(200, content=b'{"id": "msg_01", "content": [{"type": "te')
    with pytest.raises(plait.ProviderUnavailable, match="not valid JSON"):
        await make_provider().complete(ask())


async def test_reply_without_content(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(body={"id": "msg_01", "type": "message"})
    with pytest.raises(plait.ProviderError, match="no content"):
        await make_provider().complete(ask())


async def test_connection_failure(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    api.replies.append(drop)
    with pytest.raises(plait.ProviderUnavailable, match="timed out") as caught:
        await make_provider().complete(ask())
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert_no_secret(KEY, caught.value)


async def test_the_key_never_leaks_into_errors(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    provider = make_provider()
    for status in (400, 401, 403, 404, 429, 500, 529):
        api.queue(status, api_error("some_error", f"rejected key {KEY}"))
        with pytest.raises(plait.ProviderError) as caught:
            await provider.complete(ask())
        assert_no_secret(KEY, caught.value)


# -- registration and prices ------------------------------------------------------------


def test_registration() -> None:
    seen = registered_providers(plait_anthropic)
    assert list(seen) == ["anthropic"]
    assert seen["anthropic"]["factory"] is plait_anthropic.AnthropicProvider
    assert seen["anthropic"]["prices"] is plait_anthropic.PRICES
    assert seen["anthropic"]["limits"] == plait.Limits(concurrency=64)  # queue in plait, not httpx


def test_price_table() -> None:
    prices = plait_anthropic.PRICES
    assert re.fullmatch(r"2026-11-\d\d", plait_anthropic.PRICES_AS_OF)
    assert prices["claude-haiku-4-5"] == plait.Price.per_million("1", "5", "0.10", "1.25")
    assert prices["claude-sonnet-4-5"] == plait.Price.per_million("3", "15", "0.30", "3.75")
    for model, price in prices.items():
        assert price.cached_input is not None, model
        assert price.cache_write is not None, model
        assert price.cached_input < price.input < price.cache_write < price.output, model
    # a cache hit of 1M tokens, a 1M-token cache write, 1M fresh input and 1M output
    tokens = plait.TokenCount(
        input_tokens=3_000_000,
        output_tokens=1_000_000,
        cached_tokens=1_000_000,
        cache_write_tokens=1_000_000,
    )
    assert prices["claude-sonnet-4-5"].cost(tokens) == plait.usd("22.05")


def test_import_and_registration_are_light() -> None:
    assert "httpx" not in registration_imports("plait_anthropic")


# -- the shared provider contract -------------------------------------------------------


class TestAnthropicContract(ProviderContract):
    @pytest.fixture
    def provider(self, api: MockVendor, make_provider: Callable[..., Any]) -> Any:
        self.api = api
        return make_provider()

    @pytest.fixture
    def model(self) -> str:
        return "claude-haiku-4-5"

    @pytest.fixture
    def secret(self) -> str:
        return KEY

    def script(self, provider: Any, reply: str) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content)
            if "tool_choice" in body:
                call = tool_use(body["tool_choice"]["name"], json.loads(reply))
                return httpx.Response(200, json=message([call], stop_reason="tool_use"))
            text, tokens, cut = cut_to_max_tokens(reply, body["max_tokens"])
            stop_reason = "max_tokens" if cut else "end_turn"
            return httpx.Response(
                200, json=message(text, stop_reason=stop_reason, output_tokens=tokens)
            )

        self.api.replies.append(answer)


# -- keys no pattern recognises (redacted by value) and Retry-After dates ---------------

PASSPHRASE = "my-lab-gpu-passphrase-2026"


async def test_a_key_echoed_in_a_401_is_redacted_by_value(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(401, api_error("authentication_error", f"invalid x-api-key '{PASSPHRASE}'"))
    provider = make_provider(settings={"api_key": PASSPHRASE})
    with pytest.raises(plait.AuthenticationError) as caught:
        await provider.complete(ask())
    assert caught.value.message == "invalid x-api-key '[redacted]'"
    assert PASSPHRASE not in repr(caught.value)
    assert_no_secret(PASSPHRASE, caught.value, provider)


async def test_rate_limited_with_an_http_date(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    api.queue(429, api_error("rate_limit_error", "slow"), headers={"retry-after": when})
    with pytest.raises(plait.RateLimited) as caught:
        await make_provider().complete(ask())
    assert caught.value.retry_after is not None
    assert 3 < caught.value.retry_after <= 5


# -- output types end to end ----------------------------------------------------------


@attrs.frozen
class Billing:
    kind: Literal["billing"]
    invoice: str
    due: date


@attrs.frozen
class Return:
    kind: Literal["return"]
    order: int


def _runtime(plugin: Any, name: str, api: MockVendor) -> plait.Runtime:
    return plait.Runtime(plugins=[plugin], entry_points=False,
                         settings={name: {"api_key": KEY}}, transport=httpx.MockTransport(api))


async def test_a_union_plan_is_asked_for_parsed_and_re_asked() -> None:
    api = MockVendor()
    api.queue(body=message([tool_use("Billing_list", {"value": [{"kind": "refund"}]})],
                           stop_reason="tool_use"))
    api.queue(body=message([tool_use("Billing_list", {"value": [
        {"kind": "return", "order": 1},
        {"kind": "billing", "invoice": "A1", "due": "2026-03-01"}]})], stop_reason="tool_use"))
    agent = plait.Agent("anthropic:claude-haiku-4-5", output=list[Billing | Return],
                        max_tokens=200)
    reply = await agent.ask("split this", runtime=_runtime(plait_anthropic, "anthropic", api))
    assert reply.output == [Return("return", 1), Billing("billing", "A1", date(2026, 3, 1))]
    assert reply.attempts == 2
    [tool] = api.body(0)["tools"]
    assert tool["name"] == "Billing_list"
    assert tool["input_schema"] == agent.spec.schema
    # the re-ask: the bad answer as the assistant's turn, then the problem as the user's
    first, bad, reask = api.body(1)["messages"]
    assert first == {"role": "user", "content": "split this"}
    assert bad["role"] == "assistant"
    assert json.loads(bad["content"]) == {"value": [{"kind": "refund"}]}
    assert reask["role"] == "user"
    assert '$.value[0].kind: expected one of "billing" | "return"' in reask["content"]


# -- conversations ---------------------------------------------------------------------

CONVERSATION = (
    plait.Message("system", "Be brief."),
    plait.Message("assistant", "Hi! How can I help?"),
    plait.Message("user", "Refund order 1182."),
    plait.Message("user", "It arrived broken."),
    plait.Message("assistant", "Refunded."),
    plait.Message("user", "Thanks!"),
)


async def test_a_conversation_alternates_and_opens_with_the_user(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    """The Messages API refuses an opening assistant turn ("first message must use the
    user role"); consecutive user messages become one turn of text blocks."""
    api.queue(body=message("You're welcome."))
    await make_provider().complete(ask(messages=CONVERSATION))
    body = api.body()
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {"role": "user", "content": "(start of the conversation)"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": [{"type": "text", "text": "Refund order 1182."},
                                     {"type": "text", "text": "It arrived broken."}]},
        {"role": "assistant", "content": "Refunded."},
        {"role": "user", "content": "Thanks!"},
    ]


def test_context_windows_are_registered_next_to_prices() -> None:
    runtime = plait.Runtime(entry_points=False, plugins=[plait_anthropic])
    assert runtime.context_window("anthropic", "claude-haiku-4-5-20251001") == 200_000
    assert set(plait_anthropic.CONTEXT_WINDOWS) == set(plait_anthropic.PRICES)


# -- tools ------------------------------------------------------------------------------

WEATHER = plait.ToolSpec(
    "get_weather", "The weather in a city now.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
     "additionalProperties": False},
)


async def test_tools_are_sent_and_tool_use_blocks_read(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=message([
        {"type": "text", "text": "I'll check the weather."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
         "input": {"city": "Paris"}},
    ], stop_reason="tool_use"))
    response = await make_provider().complete(ask(tools=(WEATHER,)))
    body = api.body()
    assert body["tools"] == [{"name": "get_weather", "description": "The weather in a city now.",
                              "input_schema": dict(WEATHER.parameters)}]
    assert "tool_choice" not in body  # auto: the model may answer in text
    assert body["messages"] == [{"role": "user",
                                 "content": [{"type": "text", "text": "Hello, Claude"}]}]
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == (plait.ToolCall("get_weather", {"city": "Paris"}, "toolu_01A"),)


async def test_tool_results_go_back_as_tool_result_blocks(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=message("Sunny in Paris and Rome."))
    calls = (plait.ToolCall("get_weather", {"city": "Paris"}, "toolu_01A"),
             plait.ToolCall("get_weather", {"city": "Rome"}, "toolu_01B"))
    messages = (
        plait.Message("system", "Be brief."),
        user("Weather in Paris and Rome?"),
        plait.Message("assistant", "Checking both.", tool_calls=calls),
        plait.Message("tool", "sunny", tool_call_id="toolu_01A", name="get_weather"),
        plait.Message("tool", "Error: TimeoutError", tool_call_id="toolu_01B", name="get_weather"),
    )
    response = await make_provider().complete(ask(messages=messages, tools=(WEATHER,)))
    body = api.body()
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking both."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
             "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_01B", "name": "get_weather",
             "input": {"city": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_01B",
             "content": "Error: TimeoutError"}]},
    ]
    assert response.text == "Sunny in Paris and Rome."
    assert response.tool_calls == ()


async def test_tools_beside_a_typed_output(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=message([tool_use("weather_report", {"city": "Paris", "celsius": 21.5})],
                           stop_reason="tool_use"))
    response = await make_provider().complete(
        ask(json_schema=SCHEMA, schema_name="weather report", tools=(WEATHER,)))
    body = api.body()
    assert [t["name"] for t in body["tools"]] == ["get_weather", "weather_report"]
    assert body["tool_choice"] == {"type": "any"}  # a lookup or the answer
    assert response.tool_calls == ()  # the answer tool is the answer, not a lookup
    assert response.parsed == {"city": "Paris", "celsius": 21.5}
