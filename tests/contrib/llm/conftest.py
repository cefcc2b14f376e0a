"""A fake llm model, ``fake-echo``, registered with llm's plugin manager for one test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import llm
import pytest


class FakeEcho(llm.AsyncModel):
    """Answers the scripted replies in order, else echoes the prompt; records prompts."""

    model_id = "fake-echo"
    supports_schema = True

    class Options(llm.Options):
        temperature: float | None = None
        max_tokens: int | None = None

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.prompts: list[llm.Prompt] = []

    async def execute(self, prompt: llm.Prompt, stream: bool, response: llm.AsyncResponse,
                      conversation: llm.AsyncConversation | None) -> AsyncIterator[str]:
        self.prompts.append(prompt)
        if self.replies:
            text = self.replies.pop(0)
        elif prompt.schema:
            text = json.dumps({name: "echo" for name in prompt.schema.get("properties", {})})
        else:
            text = prompt.prompt
        if prompt.options.max_tokens is not None:
            text = " ".join(text.split()[: prompt.options.max_tokens])
        response.set_usage(input=len(prompt.prompt.split()), output=len(text.split()))
        yield text


class FakeEchoSync(llm.Model):
    """llm registers a sync model next to every async one."""

    model_id = "fake-echo"

    def execute(self, prompt: llm.Prompt, stream: bool, response: llm.Response,
                conversation: llm.Conversation | None) -> Iterator[str]:
        yield prompt.prompt


class FakeModels:
    def __init__(self, model: FakeEcho) -> None:
        self.model = model

    @llm.hookimpl
    def register_models(self, register: Any) -> None:
        register(FakeEchoSync(), self.model)


@pytest.fixture
def fake_echo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeEcho]:
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))  # no user aliases or keys
    model = FakeEcho()
    plugin = FakeModels(model)
    llm.plugins.pm.register(plugin, name="fake-echo-for-llm-plait-tests")
    yield model
    llm.plugins.pm.unregister(plugin)
