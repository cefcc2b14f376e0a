"""The provider around an injected fake model: translation, loading, locking, timeouts."""

import threading
import time
from pathlib import Path
from typing import Any

import anyio
import plait
import plait_local
import pytest

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


class FakeLlama:
    """Answers like ``llama_cpp.Llama.create_chat_completion`` and records what it saw."""

    def __init__(self, text: str = "hello", *, error: Exception | None = None,
                 gate: threading.Event | None = None) -> None:
        self.text = text
        self.error = error
        self.gate = gate  # when given, each call waits for it
        self.calls: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.entered = threading.Event()
        self._lock = threading.Lock()
        self._active = 0
        self.max_active = 0

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        name = kwargs["messages"][-1]["content"]
        with self._lock:
            self.calls.append(kwargs)
            self.events.append(f"enter {name}")
            self._active += 1
            self.max_active = max(self.max_active, self._active)
        self.entered.set()
        try:
            if self.gate is not None:
                assert self.gate.wait(timeout=30), "the test never opened the gate"
            else:
                time.sleep(0.002)  # room for another thread to overlap, were it let in
            if self.error is not None:
                raise self.error
            return {
                "id": "chatcmpl-1",
                "model": "/models/fake.gguf",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": self.text}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
            }
        finally:
            with self._lock:
                self._active -= 1
                self.events.append(f"exit {name}")


class CountingLoader:
    def __init__(self, model: FakeLlama) -> None:
        self.model = model
        self.paths: list[Path] = []

    def __call__(self, path: Path) -> FakeLlama:
        self.paths.append(path)
        return self.model


class FreshLoader:
    """A new fake model per load, as llama.cpp gives a new context per instance; the first
    ``gated`` of them wait for ``gate`` on every call."""

    def __init__(self, gate: threading.Event | None = None, gated: int = 0) -> None:
        self.gate = gate
        self.gated = gated
        self.models: list[FakeLlama] = []
        self._loaded = threading.Condition()

    def __call__(self, path: Path) -> FakeLlama:
        with self._loaded:
            model = FakeLlama(gate=self.gate if len(self.models) < self.gated else None)
            self.models.append(model)
            self._loaded.notify_all()
        return model

    def wait_for(self, n: int) -> bool:
        with self._loaded:
            return self._loaded.wait_for(lambda: len(self.models) >= n, timeout=30)


def _request(prompt: str = "hi", **fields: Any) -> plait.ModelRequest:
    return plait.ModelRequest(model=fields.pop("model", "smollm2"),
                              messages=(plait.Message("user", prompt),), **fields)


async def test_a_request_becomes_a_chat_completion_call() -> None:
    fake = FakeLlama()
    provider = plait_local.LocalProvider(CountingLoader(fake))
    request = plait.ModelRequest(
        model="smollm2",
        messages=(plait.Message("system", "Be brief."), plait.Message("user", "hi")),
        temperature=0.3, max_tokens=7, stop=("\n", "END"), seed=42,
        extra={"top_p": 0.9, "repeat_penalty": 1.1},
    )
    await provider.complete(request)
    assert fake.calls == [{
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "hi"}],
        "temperature": 0.3, "max_tokens": 7, "stop": ["\n", "END"], "seed": 42,
        "top_p": 0.9, "repeat_penalty": 1.1,
    }]


async def test_fields_not_given_are_left_to_llama_defaults() -> None:
    fake = FakeLlama()
    await plait_local.LocalProvider(CountingLoader(fake)).complete(_request())
    assert fake.calls == [{"messages": [{"role": "user", "content": "hi"}]}]


async def test_the_reply_carries_text_usage_finish_reason_and_model() -> None:
    provider = plait_local.LocalProvider(CountingLoader(FakeLlama("Hello there")))
    response = await provider.complete(_request())
    assert response.text == "Hello there"
    assert response.usage == plait.TokenCount(input_tokens=12, output_tokens=3)
    assert response.finish_reason == "stop"
    assert response.model == "SmolLM2-135M-Instruct.Q4_1"
    assert response.parsed is None
    assert response.raw["id"] == "chatcmpl-1"


async def test_a_schema_becomes_a_json_grammar_and_the_reply_is_parsed() -> None:
    fake = FakeLlama('{"n": 3}')
    provider = plait_local.LocalProvider(CountingLoader(fake))
    response = await provider.complete(_request(json_schema=SCHEMA))
    assert fake.calls[0]["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert response.parsed == {"n": 3}


async def test_a_structured_reply_that_is_not_json_parses_to_none() -> None:
    provider = plait_local.LocalProvider(CountingLoader(FakeLlama('{"n": 3')))
    response = await provider.complete(_request(json_schema=SCHEMA))
    assert response.text == '{"n": 3'
    assert response.parsed is None


async def test_json_text_is_not_parsed_unless_a_schema_was_asked_for() -> None:
    provider = plait_local.LocalProvider(CountingLoader(FakeLlama('{"n": 3}')))
    assert (await provider.complete(_request())).parsed is None


async def test_the_model_loads_once_and_aliases_share_it() -> None:
    loader = CountingLoader(FakeLlama())
    provider = plait_local.LocalProvider(loader, parallel=1)
    async with anyio.create_task_group() as tg:
        for name in ["smollm2", "smollm2", "SmolLM2-135M-Instruct", "SMOLLM2"]:
            tg.start_soon(provider.complete, _request(model=name))
    await provider.complete(_request())
    assert loader.paths == [plait_local.bundled_model_path()]


async def test_each_gguf_file_loads_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a.gguf", tmp_path / "b.gguf"
    first.write_bytes(b"GGUF")
    second.write_bytes(b"GGUF")
    loader = CountingLoader(FakeLlama())
    provider = plait_local.LocalProvider(loader)
    for path in [first, second, first, second]:
        response = await provider.complete(_request(model=str(path)))
    assert loader.paths == [first, second]
    assert response.model == "b"


async def test_an_unknown_model_raises_before_anything_loads() -> None:
    loader = CountingLoader(FakeLlama())
    provider = plait_local.LocalProvider(loader)
    with pytest.raises(plait.ModelNotFound, match="smollm2"):
        await provider.complete(_request(model="llama3"))
    with pytest.raises(plait.ModelNotFound, match="no GGUF file"):
        await provider.complete(_request(model="/nowhere/model.gguf"))
    assert loader.paths == []


async def test_with_parallel_1_requests_to_one_model_never_overlap() -> None:
    fake = FakeLlama()
    provider = plait_local.LocalProvider(CountingLoader(fake), parallel=1)
    replies: list[plait.ModelResponse] = []

    async def ask(i: int) -> None:
        replies.append(await provider.complete(_request(f"q{i}")))

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(ask, i)
    assert len(replies) == 8
    assert fake.max_active == 1


async def test_a_pool_runs_up_to_parallel_generations_at_once_one_per_instance() -> None:
    gate = threading.Event()
    loader = FreshLoader(gate, gated=3)
    provider = plait_local.LocalProvider(loader, parallel=3)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(7):
                tg.start_soon(provider.complete, _request(f"q{i}"))
            await _loaded(loader, 3)
            for model in loader.models:  # three generations under way at the same time
                await _until(model.entered)
            gate.set()
    assert len(loader.models) == 3
    assert sum(len(m.calls) for m in loader.models) == 7
    assert [m.max_active for m in loader.models] == [1, 1, 1]


async def test_a_second_instance_loads_only_when_the_first_is_busy() -> None:
    loader = FreshLoader()
    provider = plait_local.LocalProvider(loader, parallel=4)
    for i in range(3):
        await provider.complete(_request(f"q{i}"))
    assert len(loader.models) == 1


async def test_a_request_goes_to_the_idle_instance_holding_its_prefix() -> None:
    gate = threading.Event()
    loader = FreshLoader(gate, gated=2)
    provider = plait_local.LocalProvider(loader, parallel=2)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:  # one prompt on each instance
            tg.start_soon(provider.complete, _request("pages about solar. q1"))
            tg.start_soon(provider.complete, _request("pages about wind. q1"))
            await _loaded(loader, 2)
            gate.set()
    for prompt in ["pages about wind. q2", "pages about solar. q2", "pages about wind. q3"]:
        await provider.complete(_request(prompt))
    for model in loader.models:
        topics = {call["messages"][-1]["content"].split(".")[0] for call in model.calls}
        assert len(topics) == 1, topics


async def test_value_and_type_errors_are_bad_requests() -> None:
    overflow = ValueError("Requested tokens (3000) exceed context window of 2048")
    provider = plait_local.LocalProvider(CountingLoader(FakeLlama(error=overflow)))
    with pytest.raises(plait.BadRequest, match="exceed context window") as raised:
        await provider.complete(_request())
    assert raised.value.provider == "local"
    assert raised.value.__cause__ is overflow
    assert not raised.value.retryable


async def test_other_llama_failures_are_provider_errors() -> None:
    provider = plait_local.LocalProvider(CountingLoader(FakeLlama(error=RuntimeError("boom"))))
    failed = r"llama\.cpp failed: RuntimeError: boom"
    with pytest.raises(plait.ProviderError, match=failed) as raised:
        await provider.complete(_request())
    assert type(raised.value) is plait.ProviderError


async def test_a_timeout_raises_provider_unavailable_at_once() -> None:
    gate = threading.Event()
    provider = plait_local.LocalProvider(CountingLoader(FakeLlama(gate=gate)))
    with pytest.raises(plait.ProviderUnavailable, match=r"no reply within 0.05s") as raised:
        await provider.complete(_request("slow", timeout=0.05))
    assert raised.value.retryable
    assert raised.value.provider == "local"
    gate.set()
    assert (await provider.complete(_request("after"))).text == "hello"


async def test_an_abandoned_generation_keeps_the_model_until_it_ends() -> None:
    gate = threading.Event()
    fake = FakeLlama(gate=gate)
    provider = plait_local.LocalProvider(CountingLoader(fake), parallel=1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(provider.complete, _request("slow"))
        await _until(fake.entered)
        tg.cancel_scope.cancel()
    assert fake.events == ["enter slow"]  # the caller is gone, the generation is not
    async with anyio.create_task_group() as tg:
        tg.start_soon(provider.complete, _request("next"))
        await anyio.sleep(0.05)  # room for "next" to get in, were it let in
        assert fake.events == ["enter slow"]
        gate.set()
    assert fake.events == ["enter slow", "exit slow", "enter next", "exit next"]
    assert fake.max_active == 1


async def test_an_abandoned_generation_keeps_its_instance_while_another_serves() -> None:
    gate = threading.Event()
    loader = FreshLoader(gate, gated=1)
    provider = plait_local.LocalProvider(loader, parallel=2)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(provider.complete, _request("slow"))
            await _loaded(loader, 1)
            await _until(loader.models[0].entered)
            tg.cancel_scope.cancel()
        for prompt in ["next", "slower"]:  # never the busy instance, whatever the prefix
            assert (await provider.complete(_request(prompt))).text == "hello"
        busy, other = loader.models
        assert busy.events == ["enter slow"]
        assert [c["messages"][-1]["content"] for c in other.calls] == ["next", "slower"]
        gate.set()
        await provider.complete(_request("slow again"))
    assert busy.events[:2] == ["enter slow", "exit slow"]
    assert busy.max_active == other.max_active == 1


async def test_a_request_that_gives_up_while_queued_never_runs() -> None:
    gate = threading.Event()
    fake = FakeLlama(gate=gate)
    provider = plait_local.LocalProvider(CountingLoader(fake), parallel=1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(provider.complete, _request("first"))
        await _until(fake.entered)
        with pytest.raises(plait.ProviderUnavailable):
            await provider.complete(_request("impatient", timeout=0.05))
        gate.set()
    await provider.complete(_request("last"))
    assert [call["messages"][-1]["content"] for call in fake.calls] == ["first", "last"]


async def _loaded(loader: FreshLoader, n: int) -> None:
    # instances load in worker threads
    assert await anyio.to_thread.run_sync(loader.wait_for, n), f"{n} instances never loaded"


async def _until(event: threading.Event) -> None:
    assert await anyio.to_thread.run_sync(event.wait, 30), "the fake model was never called"


def test_a_file_llama_cpp_cannot_load_is_a_provider_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(plait.ProviderError, match="could not load") as raised:
        plait_local.LlamaLoader()(bogus)
    assert str(bogus) in str(raised.value)


WEATHER = plait.ToolSpec("get_weather", "The weather in a city now.",
                         {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"], "additionalProperties": False})


async def test_tools_become_a_json_choice_of_a_call_or_an_answer() -> None:
    fake = FakeLlama('{"tool": "get_weather", "arguments": {"city": "Oslo"}}')
    provider = plait_local.LocalProvider(CountingLoader(fake))
    response = await provider.complete(_request("Weather in Oslo?", tools=(WEATHER,)))
    sent = fake.calls[0]
    assert sent["response_format"] == {"type": "json_object", "schema": {"anyOf": [
        {"type": "object", "properties": {"tool": {"const": "get_weather"},
                                          "arguments": dict(WEATHER.parameters)},
         "required": ["tool", "arguments"], "additionalProperties": False},
        {"type": "object", "properties": {"answer": {"type": "string"}},
         "required": ["answer"], "additionalProperties": False},
    ]}}
    assert sent["messages"][0]["role"] == "system"
    assert "get_weather: The weather in a city now." in sent["messages"][0]["content"]
    assert response.tool_calls == (plait.ToolCall("get_weather", {"city": "Oslo"}),)
    assert response.finish_reason == "tool_calls"
    assert response.text == ""


async def test_a_tool_conversation_goes_back_in_turns_every_template_knows() -> None:
    fake = FakeLlama('{"answer": {"n": 3}}')
    provider = plait_local.LocalProvider(CountingLoader(fake))
    request = plait.ModelRequest("smollm2", (
        plait.Message("system", "Be brief."),
        plait.Message("user", "Weather in Oslo?"),
        plait.Message("assistant", "", tool_calls=(plait.ToolCall("get_weather",
                                                                  {"city": "Oslo"}),)),
        plait.Message("tool", "snow", name="get_weather"),
    ), json_schema=SCHEMA, tools=(WEATHER,))
    response = await provider.complete(request)
    messages = fake.calls[0]["messages"]
    assert messages[0]["content"].startswith("Be brief.\n\nYou can call a tool")
    assert messages[1:] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": '{"tool": "get_weather", "arguments": {"city": "Oslo"}}'},
        {"role": "user", "content": 'Result of get_weather: snow\n'
                                    'If that is enough, reply with {"answer": ...}.'},
    ]
    assert fake.calls[0]["response_format"]["schema"]["anyOf"][1]["properties"]["answer"] \
        == SCHEMA
    assert response.parsed == {"n": 3}
    assert response.text == '{"n": 3}'
    assert response.tool_calls == ()
