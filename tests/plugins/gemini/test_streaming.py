"""plait-gemini streams ``streamGenerateContent?alt=sse``, in the shapes
generativelanguage.googleapis.com sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import plait
import plait_gemini
import pytest
from plait_testing import MockVendor

KEY = "AIzaSyTESTkey0123456789abcdefDoNotLeak"
AGENT = plait.Agent("gemini:gemini-2.5-flash", max_tokens=200)


def part(text: str, finish: str | None = None,
         usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """One streamed GenerateContentResponse, as the API shapes it."""
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"},
                                 "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate],
            "usageMetadata": usage or {"promptTokenCount": 8, "totalTokenCount": 8},
            "modelVersion": "gemini-2.5-flash", "responseId": "mZzAaLq5Ko-Bz7IP_OaUyAc"}


FINAL_USAGE = {"promptTokenCount": 8, "candidatesTokenCount": 5, "thoughtsTokenCount": 2,
               "totalTokenCount": 15,
               "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]}
HELLO = [part("Hello"), part("! Hi"), part("", "STOP", FINAL_USAGE)]


@pytest.fixture
def api() -> MockVendor:
    return MockVendor()


@pytest.fixture
async def runtime(api: MockVendor) -> AsyncIterator[plait.Runtime]:
    async with plait.Runtime(entry_points=False, plugins=[plait_gemini],
                             transport=httpx.MockTransport(api),
                             settings={"gemini": {"api_key": KEY}}) as rt:
        yield rt


async def read(stream: plait.ModelStream, into: list[str]) -> None:
    async with stream:
        async for text in stream:
            into.append(text)


async def test_text_streams_and_the_last_event_has_the_usage(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(*HELLO)
    pieces: list[str] = []
    stream = AGENT.stream("Say hello.", runtime=runtime)
    with anyio.fail_after(5):
        await read(stream, pieces)
    assert pieces == ["Hello", "! Hi"]
    reply = stream.reply
    assert (reply.text, reply.finish_reason, reply.model) == (
        "Hello! Hi", "stop", "gemini-2.5-flash")
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (8, 7)  # thoughts: output
    request = api.last
    assert request.url.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert request.url.params["alt"] == "sse"
    assert "key" not in request.url.params  # the key travels in a header only
    assert api.headers()["x-goog-api-key"] == KEY


async def test_an_error_event_mid_stream_keeps_the_text(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(HELLO[0], {"error": {"code": 503, "message": "The model is overloaded.",
                                       "status": "UNAVAILABLE"}})
    with pytest.raises(plait.StreamInterrupted) as info:
        await read(AGENT.stream("Say hello.", runtime=runtime), [])
    assert info.value.text == "Hello"
    assert isinstance(info.value.cause, plait.ProviderUnavailable)
    assert "overloaded" in str(info.value)


async def test_a_dropped_connection_mid_stream_is_typed(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(*HELLO[:2], cut=True)
    with pytest.raises(plait.StreamInterrupted) as info:
        await read(AGENT.stream("Say hello.", runtime=runtime), [])
    assert info.value.text == "Hello! Hi"
    assert isinstance(info.value.cause, plait.ProviderUnavailable)


async def test_a_blocked_reply_is_content_refused(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(part("", "SAFETY"))
    with pytest.raises(plait.ContentRefused, match="SAFETY"):
        await read(AGENT.stream("?", runtime=runtime), [])


async def test_a_rate_limit_before_the_stream_is_retried(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue(429, {"error": {"code": 429, "message": "Resource has been exhausted",
                              "status": "RESOURCE_EXHAUSTED", "details": [
                                  {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                   "retryDelay": "0s"}]}})
    api.queue_sse(*HELLO)
    stream = AGENT.stream("Say hello.", runtime=runtime, retry_delay=0)
    await read(stream, [])
    assert stream.reply.attempts == 2
