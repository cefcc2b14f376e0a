"""plait-openai streams Chat Completions as Server-Sent Events, in the shapes
api.openai.com sends them (role first, content deltas, finish, then usage, then [DONE])."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import plait
import plait_openai
import pytest
from plait_testing import MockVendor

KEY = "sk-proj-TESTkey0123456789abcdefDoNotLeak"
MODEL = "gpt-4o-mini-2024-07-18"
AGENT = plait.Agent("openai:gpt-4o-mini", max_tokens=100)


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None,
          usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk`` as api.openai.com shapes it."""
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
        "choices": [] if usage is not None else [
            {"index": 0, "delta": delta or {}, "logprobs": None,
             "finish_reason": finish_reason}],
        "usage": usage,
    }


def usage(prompt: int = 19, completion: int = 3) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


HELLO = [
    chunk({"role": "assistant", "content": "", "refusal": None}),
    chunk({"content": "Hello"}),
    chunk({"content": "!"}),
    chunk({"content": " Hi"}),
    chunk(finish_reason="stop"),
    chunk(usage=usage()),
    "[DONE]",
]


@pytest.fixture
async def runtime(api: MockVendor, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[
        plait.Runtime]:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    async with plait.Runtime(entry_points=False, plugins=[plait_openai],
                             transport=httpx.MockTransport(api),
                             settings={"openai": {"api_key": KEY}}) as rt:
        yield rt


@pytest.fixture
def api() -> MockVendor:
    return MockVendor()


async def read(stream: plait.ModelStream, into: list[str]) -> None:
    async with stream:
        async for text in stream:
            into.append(text)


async def test_a_reply_streams_with_its_usage_from_the_last_event(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(*HELLO)
    pieces: list[str] = []
    stream = AGENT.stream("Say hello.", runtime=runtime)
    with anyio.fail_after(5):
        await read(stream, pieces)
    assert pieces == ["Hello", "!", " Hi"]
    reply = stream.reply
    assert (reply.text, reply.finish_reason, reply.model) == ("Hello! Hi", "stop", MODEL)
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (19, 3)
    body = api.body()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert api.last.url.path == "/v1/chat/completions"
    assert api.headers()["authorization"] == f"Bearer {KEY}"


async def test_an_error_event_mid_stream_keeps_the_text(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(HELLO[0], HELLO[1],
                  {"error": {"message": "The server had an error while processing your "
                                        "request. Sorry about that!",
                             "type": "server_error", "param": None, "code": None}})
    pieces: list[str] = []
    with pytest.raises(plait.StreamInterrupted) as info:
        await read(AGENT.stream("Say hello.", runtime=runtime), pieces)
    assert pieces == ["Hello"]
    assert info.value.text == "Hello"
    assert isinstance(info.value.cause, plait.ProviderUnavailable)
    assert "The server had an error" in str(info.value)
    assert len(api.requests) == 1  # not retried: the text was already read


async def test_a_connection_dropped_mid_stream_is_a_typed_interruption(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(HELLO[0], HELLO[1], HELLO[2], cut=True)
    pieces: list[str] = []
    with pytest.raises(plait.StreamInterrupted) as info:
        await read(AGENT.stream("Say hello.", runtime=runtime), pieces)
    assert info.value.text == "Hello!"
    assert isinstance(info.value.cause, plait.ProviderUnavailable)
    assert "connection failed" in str(info.value.cause)


async def test_an_error_status_before_the_first_token_is_retried(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue(429, {"error": {"message": "Rate limit reached for gpt-4o-mini",
                              "type": "requests", "code": "rate_limit_exceeded"}},
              headers={"retry-after-ms": "10"})
    api.queue_sse(*HELLO)
    pieces: list[str] = []
    stream = AGENT.stream("Say hello.", runtime=runtime, retry_delay=0)
    with anyio.fail_after(5):
        await read(stream, pieces)
    assert "".join(pieces) == "Hello! Hi"
    assert stream.reply.attempts == 2


async def test_a_refused_key_is_typed_and_never_shown(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue(401, {"error": {"message": f"Incorrect API key provided: {KEY[:8]}***eak.",
                              "type": "invalid_request_error", "code": "invalid_api_key"}})
    with pytest.raises(plait.AuthenticationError) as info:
        await read(AGENT.stream("Say hello.", runtime=runtime), [])
    assert "Incorrect API key" in str(info.value)
    assert KEY not in str(info.value)


async def test_a_refusal_in_the_stream_is_content_refused(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(chunk({"role": "assistant", "content": None, "refusal": ""}),
                  chunk({"refusal": "I'm sorry, I can't help with that."}))
    with pytest.raises(plait.ContentRefused, match="can't help"):
        await read(AGENT.stream("?", runtime=runtime), [])


async def test_a_server_that_sends_no_usage_is_counted_conservatively(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue_sse(*HELLO[:5], "[DONE]")  # include_usage ignored, as some servers do
    stream = AGENT.stream("Say hello.", runtime=runtime)
    await read(stream, [])
    usage_ = stream.reply.usage
    assert usage_.output_tokens == len(b"Hello! Hi")  # a token per byte: an upper bound
    assert usage_.input_tokens >= len(b"Say hello.")


async def test_structured_output_falls_back_to_json_mode_when_streaming(
        api: MockVendor, runtime: plait.Runtime) -> None:
    api.queue(400, {"error": {"message": "response_format json_schema is not supported",
                              "type": "invalid_request_error"}})
    api.queue_sse(chunk({"content": '{"city": '}), chunk({"content": '"Oslo"}'}),
                  chunk(finish_reason="stop"), chunk(usage=usage()), "[DONE]")

    import attrs

    @attrs.frozen
    class Weather:
        city: str

    stream = plait.Agent("openai:gpt-4o-mini", output=Weather).stream("?", runtime=runtime)
    await read(stream, [])
    assert stream.reply.output == Weather("Oslo")
    assert api.body(0)["response_format"]["type"] == "json_schema"
    assert api.body(1)["response_format"]["type"] == "json_object"
    assert api.body(1)["stream"] is True

