"""plait-openai streaming from a real OpenAI-compatible server: llama-cpp-python's, with
SmolLM2, through the whole stack (ctx.stream, budgets, pipe.stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import attrs
import plait
import plait_openai
import pytest

pytestmark = pytest.mark.local_model

AGENT = plait.Agent("llamacpp:smollm2", temperature=0, seed=1, max_tokens=32)


@pytest.fixture
async def runtime(llama_server: str) -> AsyncIterator[plait.Runtime]:
    settings = {"llamacpp": {"base_url": llama_server, "timeout": 300}}
    async with plait.Runtime(plugins=[plait_openai], entry_points=False,
                             settings=settings) as rt:
        yield rt


async def test_a_reply_streams_token_by_token_with_usage(runtime: plait.Runtime) -> None:
    with anyio.fail_after(300):
        async with AGENT.stream("Write a long story about a dragon.", runtime=runtime) as s:
            pieces = [text async for text in s]
    assert len(pieces) > 5  # the server sent it in pieces
    reply = s.reply
    assert reply.text == "".join(pieces)
    assert reply.text.strip()
    assert reply.finish_reason == "length"
    # llama.cpp's server sends usage with include_usage, or plait counts from the text
    assert 0 < reply.usage.output_tokens <= max(32, len(reply.text.encode()))


async def test_structured_output_streams_and_parses(runtime: plait.Runtime) -> None:
    @attrs.frozen
    class Capital:
        city: str

    agent = plait.Agent("llamacpp:smollm2", output=Capital, temperature=0, seed=1,
                        max_tokens=64)
    with anyio.fail_after(300):
        async with agent.stream("What is the capital of France? Answer with the city.",
                                runtime=runtime) as s:
            pieces = [text async for text in s]
    assert "".join(pieces) == s.reply.text
    assert isinstance(s.reply.output, Capital)


async def test_a_stream_left_early_in_a_run_settles_and_the_server_serves_on(
        runtime: plait.Runtime) -> None:
    agent = attrs.evolve(AGENT, max_tokens=200)
    pipe = plait.Pipeline("tell", steps={"draft": agent.as_step("Write a long story.",
                                                               stream=True)},
                          config=plait.Config(budget=plait.usd("1")))
    with anyio.fail_after(300):
        async with pipe.stream(runtime=runtime) as events:
            async for event in events:
                if isinstance(event, plait.TextDelta):
                    break
        reply = await AGENT.ask("Say hello.", runtime=runtime)  # the connection was freed
    assert reply.text.strip()
