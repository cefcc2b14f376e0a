"""plait-anthropic streams the Messages API's Server-Sent Events, in the shapes
api.anthropic.com sends them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs
import httpx
import plait
import plait_anthropic
import pytest
from plait_testing import MockVendor

KEY = "sk-ant-api03-TESTkey0123456789abcdefDoNotLeak-AA"
MODEL = "claude-haiku-4-5-20251001"
AGENT = plait.Agent("anthropic:claude-haiku-4-5", max_tokens=200)


def start(input_tokens: int = 25, cache_read: int = 0) -> tuple[str, dict[str, Any]]:
    return ("message_start", {"type": "message_start", "message": {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "content": [], "model": MODEL, "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": cache_read, "output_tokens": 1}}})


def block_start(block: dict[str, Any], index: int = 0) -> tuple[str, dict[str, Any]]:
    return ("content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block})


def delta(kind: str, value: str, index: int = 0) -> tuple[str, dict[str, Any]]:
    field = "text" if kind == "text_delta" else "partial_json"
    return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                    "delta": {"type": kind, field: value}})


def end(stop_reason: str = "end_turn", output_tokens: int = 15) -> list[Any]:
    return [("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                               "usage": {"output_tokens": output_tokens}}),
            ("message_stop", {"type": "message_stop"})]


PING = ("ping", {"type": "ping"})
HELLO = [start(), block_start({"type": "text", "text": ""}), PING,
         delta("text_delta", "Hello"), delta("text_delta", "! Hi"), *end()]


@pytest.fixture
def api() -> MockVendor:
    return MockVendor()


@pytest.fixture
async def runtime(api: MockVendor, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[
        plait.Runtime]:
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    async with plait.Runtime(entry_points=False, plugins=[plait_anthropic],
                             transport=httpx.MockTransport(api),
                             settings={"anthropic": {"api_key": KEY}}) as rt:
        yield rt


async def read(stream: plait.ModelStream, into: list[str]) -> None:
    async with stream:
        async for text in stream:
            into.append(text)


async def test_text_streams_and_usage_joins_start_and_end(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(start(25, cache_read=100), *HELLO[1:])
    pieces: list[str] = []
    stream = AGENT.stream("Say hello.", runtime=runtime)
    with anyio.fail_after(5):
        await read(stream, pieces)
    assert pieces == ["Hello", "! Hi"]
    reply = stream.reply
    assert (reply.text, reply.finish_reason, reply.model) == ("Hello! Hi", "stop", MODEL)
    # input from message_start (cache reads count as input), output from message_delta
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (125, 15)
    assert reply.usage.cached_tokens == 100
    assert api.body()["stream"] is True
    assert api.headers()["x-api-key"] == KEY


async def test_structured_output_streams_the_tool_input(
        api: MockVendor, runtime: plait.Runtime) -> None:
    @attrs.frozen
    class Weather:
        city: str
        celsius: int

    api.queue_sse(start(), block_start({"type": "tool_use", "id": "toolu_01", "name": "Weather",
                                        "input": {}}),
                  delta("input_json_delta", ""), delta("input_json_delta", '{"city": "Os'),
                  delta("input_json_delta", 'lo", "celsius": -3}'), *end("tool_use", 20))
    pieces: list[str] = []
    stream = plait.Agent("anthropic:claude-haiku-4-5", output=Weather).stream(
        "Oslo?", runtime=runtime)
    await read(stream, pieces)
    assert pieces == ['{"city": "Os', 'lo", "celsius": -3}']
    assert stream.reply.output == Weather("Oslo", -3)
    assert stream.reply.finish_reason == "stop"
    assert api.body()["tool_choice"]["type"] == "tool"


async def test_an_overloaded_error_event_mid_stream_keeps_the_text(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(*HELLO[:4], ("error", {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}))
    pieces: list[str] = []
    with pytest.raises(plait.StreamInterrupted) as info:
        await read(AGENT.stream("Say hello.", runtime=runtime), pieces)
    assert info.value.text == "Hello"
    assert isinstance(info.value.cause, plait.ProviderUnavailable)
    assert "Overloaded" in str(info.value)


async def test_an_error_event_before_any_text_is_retried(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(start(), ("error", {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}))
    api.queue_sse(*HELLO)
    stream = AGENT.stream("Say hello.", runtime=runtime, retry_delay=0)
    await read(stream, [])
    assert stream.reply.text == "Hello! Hi"
    assert stream.reply.attempts == 2


async def test_a_dropped_connection_mid_stream_is_typed(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(*HELLO[:5], cut=True)
    with pytest.raises(plait.StreamInterrupted) as info:
        await read(AGENT.stream("Say hello.", runtime=runtime), [])
    assert info.value.text == "Hello! Hi"
    assert isinstance(info.value.cause, plait.ProviderUnavailable)


async def test_a_refusal_is_content_refused(api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(start(), *end("refusal", 0))
    with pytest.raises(plait.ContentRefused, match="the model refused"):
        await read(AGENT.stream("?", runtime=runtime), [])
