"""plait-openai against a real OpenAI-compatible server: llama-cpp-python's, with SmolLM2."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import plait
import plait_openai
import pytest

pytestmark = pytest.mark.local_model

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 40}},
    "required": ["city"],
    "additionalProperties": False,
}


@pytest.fixture
async def provider(llama_server: str) -> AsyncIterator[plait.Provider]:
    """plait-openai's ``llamacpp:`` profile (no key), built by a Runtime, pointed at the
    test server. A generous timeout: two cores may be busy with other tests."""
    settings = {"llamacpp": {"base_url": llama_server, "timeout": 300}}
    async with plait.Runtime(plugins=[plait_openai], entry_points=False,
                             settings=settings) as runtime:
        yield runtime.provider("llamacpp")


def _ask(prompt: str, **fields: Any) -> plait.ModelRequest:
    return plait.ModelRequest(model="smollm2", messages=(plait.Message("user", prompt),),
                              temperature=0, seed=1, **fields)


async def test_plain_text_with_usage(provider: plait.Provider) -> None:
    response = await provider.complete(_ask("Say hello in one short sentence.", max_tokens=32))
    assert response.text.strip()
    assert response.finish_reason in {"stop", "length"}
    assert response.usage.input_tokens > 0
    assert 0 < response.usage.output_tokens <= 32
    assert response.model == "smollm2"  # the server echoes the model it was asked for


async def test_max_tokens_truncates(provider: plait.Provider) -> None:
    response = await provider.complete(_ask("Write a long story about a dragon.", max_tokens=4))
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 4


async def test_structured_output_is_json_of_the_schema(provider: plait.Provider) -> None:
    # llama.cpp's server refuses response_format json_schema; plait-openai must fall back
    # to JSON mode.
    response = await provider.complete(
        _ask("What is the capital of France? Answer with the city.", json_schema=SCHEMA,
             schema_name="capital", max_tokens=64)
    )
    assert isinstance(response.parsed, dict), response.text
    assert isinstance(response.parsed.get("city"), str), response.parsed
    assert response.usage.output_tokens > 0
