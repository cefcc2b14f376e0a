"""plait-local streams llama-cpp's ``stream=True`` a token at a time, and an abandoned stream
stops generating and gives its instance back only once llama.cpp is out of it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import plait
import plait_local
import pytest
from plait_testing import provider_plugin


class TokenLlama:
    """``create_chat_completion(stream=True)`` as llama-cpp-python answers it: a generator
    of Chat Completions chunks, a word per token. With ``gate``, each token waits for a
    release of it."""

    def __init__(self, words: list[str], *, gate: threading.Semaphore | None = None,
                 fail_after: int | None = None) -> None:
        self.words = words
        self.gate = gate
        self.fail_after = fail_after
        self.calls: list[dict[str, Any]] = []
        self.produced: list[str] = []
        self.closed = threading.Event()
        self.inside = threading.Event()  # a thread is inside a token
        self._lock = threading.Lock()
        self._active = 0
        self.max_active = 0

    def create_chat_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        assert kwargs["stream"] is True
        self.calls.append(kwargs)
        return self._tokens()

    def _tokens(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            self._active += 1
            self.max_active = max(self.max_active, self._active)
        try:
            yield _chunk({"role": "assistant"})
            for i, word in enumerate(self.words):
                if self.fail_after is not None and i == self.fail_after:
                    raise ValueError("Requested tokens exceed context window of 2048")
                if self.gate is not None:
                    self.inside.set()
                    assert self.gate.acquire(timeout=30), "the test never released a token"
                self.produced.append(word)
                yield _chunk({"content": word})
            yield _chunk({}, "stop")
        finally:
            with self._lock:
                self._active -= 1
            self.closed.set()


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "/models/fake.gguf",
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish_reason}]}


def provider(llama: TokenLlama, parallel: int = 1) -> plait_local.LocalProvider:
    def load(path: Path) -> TokenLlama:
        return llama

    return plait_local.LocalProvider(load, parallel=parallel)


def runtime(local: plait_local.LocalProvider) -> plait.Runtime:
    return plait.Runtime(entry_points=False, plugins=[provider_plugin(local, "local")])


AGENT = plait.Agent("local:smollm2", max_tokens=50)


async def read_all(stream: plait.ModelStream) -> list[str]:
    async with stream:
        return [text async for text in stream]


async def test_tokens_stream_as_they_are_generated() -> None:
    llama = TokenLlama(["Hello", ",", " world"])
    async with runtime(provider(llama)) as rt, AGENT.stream("hi", runtime=rt) as stream:
        with anyio.fail_after(10):
            pieces = [text async for text in stream]
    assert pieces == ["Hello", ",", " world"]
    reply = stream.reply
    assert (reply.text, reply.finish_reason) == ("Hello, world", "stop")
    assert reply.model == "SmolLM2-135M-Instruct.Q4_1"  # the GGUF file's name, as complete
    assert reply.usage.output_tokens == len(b"Hello, world")  # no usage from llama.cpp
    assert llama.calls[0]["max_tokens"] == 50
    assert llama.closed.is_set()


async def test_a_stream_left_early_stops_generating_and_frees_its_instance() -> None:
    gate = threading.Semaphore(0)
    llama = TokenLlama([f"w{i} " for i in range(100)], gate=gate)
    async with runtime(provider(llama)) as rt:
        with anyio.fail_after(10):
            gate.release()  # one token: entering the stream reads up to the first text
            async with AGENT.stream("hi", runtime=rt) as stream:
                async for _ in stream:
                    break
            assert await anyio.to_thread.run_sync(llama.closed.wait, 10)
            assert llama.produced == ["w0 "]  # nothing generated after the reader left
            gate.release(2)
            llama.words = ["again"]
            async with AGENT.stream("hi", runtime=rt) as again:
                assert [text async for text in again] == ["again"]
    assert llama.max_active == 1


async def test_an_abandoned_token_keeps_the_instance_until_llama_returns() -> None:
    gate = threading.Semaphore(0)
    llama = TokenLlama(["slow ", "never "], gate=gate)
    local = provider(llama)
    request = plait.ModelRequest("smollm2", (plait.Message("user", "hi"),))
    got: list[str] = []
    async with anyio.create_task_group() as tg:

        async def read() -> None:
            async for chunk in local.stream(request):
                got.append(chunk.text)

        tg.start_soon(read)
        assert await anyio.to_thread.run_sync(llama.inside.wait, 10)  # inside token one
        tg.cancel_scope.cancel()  # the reader is gone; llama.cpp is not
    assert not llama.closed.is_set()
    llama.words = []  # what a new generation on this instance would say

    async def next_request() -> list[str]:
        return [c.text async for c in local.stream(request) if c.text]

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            results: list[list[str]] = []

            async def run() -> None:
                results.append(await next_request())

            tg.start_soon(run)
            await anyio.sleep(0.05)
            assert llama.max_active == 1  # the next request waits for the instance
            assert results == []
            gate.release()  # token one returns; its thread ends the generation
    assert llama.produced == ["slow "]  # the abandoned generation stopped after it
    assert results == [[]]
    assert llama.max_active == 1


async def test_an_error_mid_stream_is_typed_with_the_text() -> None:
    llama = TokenLlama(["one ", "two ", "three"], fail_after=2)
    async with runtime(provider(llama)) as rt:
        stream = AGENT.stream("hi", runtime=rt)
        with pytest.raises(plait.StreamInterrupted) as info:
            await read_all(stream)
    assert info.value.text == "one two "
    assert isinstance(info.value.cause, plait.BadRequest)
    assert "context window" in str(info.value)
    assert stream.text == "one two "
