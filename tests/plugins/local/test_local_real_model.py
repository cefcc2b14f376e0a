"""plait-local with the real SmolLM2-135M-Instruct model, loaded once per session."""

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import plait
import plait_local
import pytest
from plait_testing.contracts import ProviderContract

pytestmark = pytest.mark.local_model

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 30},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def _ask(prompt: str, **fields: Any) -> plait.ModelRequest:
    return plait.ModelRequest(model="smollm2", messages=(plait.Message("user", prompt),),
                              temperature=0, seed=1, **fields)


class TestLocalProviderContract(ProviderContract):
    @pytest.fixture
    def provider(self, smollm2: plait_local.LocalProvider) -> plait_local.LocalProvider:
        return smollm2

    @pytest.fixture
    def model(self) -> str:
        return "smollm2"


async def test_the_tool_grammar_makes_a_call_or_an_answer(
        smollm2: plait_local.LocalProvider) -> None:
    weather = plait.ToolSpec("get_weather", "The weather in a city now.", {
        "type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"], "additionalProperties": False})
    response = await smollm2.complete(_ask("What is the weather in Paris?", tools=(weather,),
                                           max_tokens=64))
    assert response.finish_reason in {"tool_calls", "stop"}, response.text
    if response.tool_calls:  # the grammar allows only a known tool, with its arguments
        (call,) = response.tool_calls
        assert call.name == "get_weather"
        assert isinstance(call.arguments["city"], str)
    else:
        assert response.text.strip()


async def test_an_agent_with_a_tool_looks_up_then_answers(local_runtime: plait.Runtime) -> None:
    def get_weather(city: str) -> str:
        """The weather in a city now."""
        return f"sunny in {city}"

    agent = plait.Agent("local:smollm2", tools=[get_weather], temperature=0, seed=1,
                        max_tokens=64)
    with anyio.fail_after(120):
        reply = await agent.ask("What is the weather in Paris? Use the tool.",
                                runtime=local_runtime)
    assert [(r.name, r.arguments) for r in reply.tool_calls] == [("get_weather",
                                                                  {"city": "Paris"})]
    assert reply.output == "sunny in Paris"


async def test_plain_text_reply_with_usage(smollm2: plait_local.LocalProvider) -> None:
    response = await smollm2.complete(_ask("Say hello in one short sentence.", max_tokens=32))
    assert response.text.strip()
    assert response.finish_reason in {"stop", "length"}
    assert response.usage.input_tokens > 0
    assert 0 < response.usage.output_tokens <= 32
    assert response.model == "SmolLM2-135M-Instruct.Q4_1"


async def test_structured_output_follows_the_schema(smollm2: plait_local.LocalProvider) -> None:
    response = await smollm2.complete(_ask(
        "Invent a person. Reply with their name and age as JSON.",
        json_schema=PERSON, max_tokens=64,
    ))
    assert response.finish_reason == "stop", response.text
    assert isinstance(response.parsed, dict), response.text
    assert set(response.parsed) == {"name", "age"}
    assert isinstance(response.parsed["name"], str)
    assert len(response.parsed["name"]) <= 30
    assert type(response.parsed["age"]) is int
    assert 0 <= response.parsed["age"] <= 150


async def test_max_tokens_truncates_with_finish_reason_length(
    smollm2: plait_local.LocalProvider,
) -> None:
    response = await smollm2.complete(_ask("Write a long story about a dragon.", max_tokens=4))
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 4


async def test_concurrent_requests_share_the_pool_and_keep_their_grammars(
    smollm2: plait_local.LocalProvider,
) -> None:
    prompts = ["Name a colour.", "Name a fruit.", "Invent a person.", "Invent another person."]
    replies: dict[str, plait.ModelResponse] = {}

    async def ask(prompt: str) -> None:
        schema = PERSON if "person" in prompt else None
        replies[prompt] = await smollm2.complete(_ask(prompt, max_tokens=32, json_schema=schema))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for prompt in prompts:
                tg.start_soon(ask, prompt)
    assert set(replies) == set(prompts)
    for prompt, reply in replies.items():
        assert reply.text.strip()
        assert reply.usage.output_tokens > 0
        if "person" in prompt:  # each instance samples with its own request's grammar
            assert isinstance(reply.parsed, dict), reply.text
            assert set(reply.parsed) == {"name", "age"}


class Timed:
    """A real model instance that records when each generation was inside llama.cpp."""

    def __init__(self, llama: plait_local.ChatModel, spans: list[tuple[int, float, float]]):
        self.llama = llama
        self.spans = spans

    def create_chat_completion(self, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.llama.create_chat_completion(**kwargs)
        finally:
            self.spans.append((id(self), started, time.perf_counter()))


async def test_two_instances_generate_at_the_same_time() -> None:
    spans: list[tuple[int, float, float]] = []
    lock = threading.Lock()

    def load(path: Path) -> Timed:
        with lock:
            return Timed(plait_local.LlamaLoader()(path), spans)

    provider = plait_local.LocalProvider(load, parallel=2)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for prompt in ["Count from one to twenty.", "Name ten animals."]:
                tg.start_soon(provider.complete, _ask(prompt, max_tokens=24))
    (first, a0, a1), (second, b0, b1) = spans
    assert first != second  # two instances, each its own llama.cpp context...
    assert max(a0, b0) < min(a1, b1)  # ...both generating at once (whatever the load)


def test_instances_loading_at_once_leave_the_process_output_alone() -> None:
    # A fresh interpreter: pytest's own capture would hide a lost stdout.
    script = """
import anyio, plait, plait_local
provider = plait_local.LocalProvider(parallel=4)
async def main():
    async with anyio.create_task_group() as tg:  # four requests at once: four loads at once
        for i in range(4):
            tg.start_soon(provider.complete, plait.ModelRequest(
                model="smollm2", messages=(plait.Message("user", f"Hi {i}"),), max_tokens=1))
anyio.run(main)
print("still here")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout == "still here\n"


async def test_a_prompt_over_the_context_size_is_a_bad_request(
    smollm2: plait_local.LocalProvider,
) -> None:
    with pytest.raises(plait.BadRequest, match="context window"):
        await smollm2.complete(_ask("word " * 3000, max_tokens=4))


async def test_a_stream_yields_tokens_as_the_model_writes_them(
    smollm2: plait_local.LocalProvider,
) -> None:
    request = _ask("Write a long story about a dragon.", max_tokens=24)
    chunks = [c async for c in smollm2.stream(request)]
    pieces = [c.text for c in chunks if c.text]
    assert len(pieces) > 5  # token by token, not one reply
    assert "".join(pieces).strip()
    assert chunks[-1].finish_reason == "length"


async def test_a_stream_left_early_frees_the_model_for_the_next_request(
    smollm2: plait_local.LocalProvider,
) -> None:
    request = _ask("Write a long story about a dragon.", max_tokens=200)
    with anyio.fail_after(60):
        stream = smollm2.stream(request)
        async for chunk in stream:
            if chunk.text:
                break
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
        response = await smollm2.complete(_ask("Say hello.", max_tokens=8))
    assert response.text.strip()
