"""Agent, agent.ask, ctx.ask and agent.as_step, and how a provider is found."""

from __future__ import annotations

from typing import Any

import attrs
import plait
import pytest
from plait_testing import FakeProvider, provider_plugin


def test_an_agent_names_its_provider_and_model() -> None:
    agent = plait.Agent(model="openai:gpt-4o-mini")
    assert (agent.provider, agent.model_name) == ("openai", "gpt-4o-mini")
    local = plait.Agent(model="local:/models/a:b.gguf")
    assert (local.provider, local.model_name) == ("local", "/models/a:b.gguf")
    moved = attrs.evolve(agent, model="anthropic:claude-haiku-4-5")  # split again, not kept
    assert (moved.provider, moved.model_name) == ("anthropic", "claude-haiku-4-5")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"model": "gpt-4o"}, "model must be '<provider>:<model>'"),
    ({"model": ":gpt-4o"}, "model must be '<provider>:<model>'"),
    ({"model": "openai:"}, "model must be '<provider>:<model>'"),
    ({"temperature": 3}, r"temperature must be a number in \[0, 2\]"),
    ({"temperature": True}, r"temperature must be a number in \[0, 2\]"),
    ({"max_tokens": 0}, "max_tokens must be an int >= 1"),
])
def test_bad_agent_settings_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plait.Agent(**{"model": "fake:m", **kwargs})


async def test_agent_ask_outside_a_pipeline(plait_runtime: plait.Runtime,
                                            fake_provider: FakeProvider) -> None:
    fake_provider.script("Paris is the capital.")
    agent = plait.Agent(model="fake:geo", system="Answer in one sentence.", temperature=0.2,
                        max_tokens=50, stop=["\n\n"], seed=7, extra={"top_k": 3})
    reply = await agent.ask("Capital of France?", runtime=plait_runtime)
    assert reply == plait.Reply("Paris is the capital.", "Paris is the capital.",
                                plait.Usage(input_tokens=7, output_tokens=4, calls=1, requests=1),
                                "geo", 1, "stop")
    [request] = fake_provider.requests
    assert request.model == "geo"
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "Answer in one sentence."), ("user", "Capital of France?")]
    assert (request.temperature, request.max_tokens, request.stop, request.seed) == (
        0.2, 50, ("\n\n",), 7)
    assert request.extra == {"top_k": 3}
    assert request.json_schema is None  # plain text wanted


async def test_ctx_ask_with_per_call_overrides(plait_runtime: plait.Runtime,
                                              fake_provider: FakeProvider) -> None:
    agent = plait.Agent(model="fake:a", system="Default system.", temperature=0)

    async def step(ctx: plait.StepContext) -> list[str]:
        first = await ctx.ask(agent, "plain")
        second = await ctx.ask(agent, "tuned", temperature=1.5, model="fake:b",
                               system="Other system.", max_tokens=9)
        return [first.model, second.model]

    result = await plait.Pipeline("p", steps={"s": step}).run({}, runtime=plait_runtime)
    assert result.output == ["a", "b"]
    first, second = fake_provider.requests
    assert (first.model, first.temperature, first.max_tokens) == ("a", 0, None)
    assert first.messages[0].content == "Default system."
    assert (second.model, second.temperature, second.max_tokens) == ("b", 1.5, 9)
    assert second.messages[0].content == "Other system."


async def test_an_unknown_override_lists_the_valid_ones(plait_runtime: plait.Runtime,
                                                       fake_provider: FakeProvider) -> None:
    agent = plait.Agent(model="fake:a")
    with pytest.raises(TypeError, match=r"unknown override\(s\) tempature; valid: .*temperature"):
        await agent.ask("x", runtime=plait_runtime, tempature=1)
    assert fake_provider.calls == 0


async def test_a_prompt_must_be_text(plait_runtime: plait.Runtime,
                                     fake_provider: FakeProvider) -> None:
    with pytest.raises(TypeError, match=r"a prompt must be a str or a sequence of plait\.Message, "
                                        "got int"):
        await plait.Agent(model="fake:a").ask(42, runtime=plait_runtime)  # type: ignore[arg-type]


async def test_an_unknown_provider_names_the_plugin_to_install(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    with pytest.raises(plait.UnknownPlugin) as info:
        await plait.Agent(model="openai:gpt-4o-mini").ask("hi", runtime=plait_runtime)
    error = info.value
    assert (error.kind, error.name, error.distribution) == ("provider", "openai", "plait-openai")
    assert "fake" in error.installed
    assert str(error) == ("unknown provider 'openai' (installed: fake); "
                          "install plait-openai to add it")
    assert isinstance(error, plait.PluginError)


async def test_an_unheard_of_provider_gets_no_install_hint(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    with pytest.raises(plait.UnknownPlugin) as info:
        await plait.Agent(model="acme:m1").ask("hi", runtime=plait_runtime)
    assert info.value.distribution is None
    assert str(info.value) == "unknown provider 'acme' (installed: fake)"


async def test_an_unknown_provider_inside_a_step_fails_the_step(
    plait_runtime: plait.Runtime,
) -> None:
    agent = plait.Agent(model="anthropic:claude")

    async def step(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "hi")).text

    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"s": step}).run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.UnknownPlugin)
    assert info.value.cause.distribution == "plait-anthropic"


async def test_any_object_with_complete_is_a_provider() -> None:
    class Echo:
        async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
            return plait.ModelResponse(text=request.messages[-1].content.upper())

    runtime = plait.Runtime(entry_points=False, plugins=[provider_plugin(Echo(), "echo")])
    reply = await plait.Agent(model="echo:any").ask("loud", runtime=runtime)
    assert reply.text == "LOUD"
    assert reply.model == "any"  # the provider did not say; the asked model is reported


async def test_a_provider_returning_the_wrong_type_is_a_provider_error() -> None:
    class Wrong:
        async def complete(self, request: plait.ModelRequest) -> Any:
            return {"text": "not a ModelResponse"}

    runtime = plait.Runtime(entry_points=False, plugins=[provider_plugin(Wrong(), "wrong")])
    with pytest.raises(plait.ProviderError, match="provider returned dict, not a plait"):
        await plait.Agent(model="wrong:m").ask("x", runtime=runtime)


async def test_a_providers_own_bug_is_translated_and_not_retried() -> None:
    calls = 0

    class Buggy:
        async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
            nonlocal calls
            calls += 1
            raise KeyError("choices")

    runtime = plait.Runtime(entry_points=False, plugins=[provider_plugin(Buggy(), "buggy")])
    with pytest.raises(plait.ProviderError) as info:
        await plait.Agent(model="buggy:m").ask("x", runtime=runtime)
    assert str(info.value) == "buggy:m: KeyError: 'choices'"
    assert isinstance(info.value.__cause__, KeyError)
    assert not info.value.retryable
    assert calls == 1


async def test_a_provider_without_complete_is_a_plugin_error() -> None:
    runtime = plait.Runtime(entry_points=False, plugins=[provider_plugin(object(), "bad")])
    with pytest.raises(plait.PluginError, match="has no async complete"):
        await plait.Agent(model="bad:m").ask("x", runtime=runtime)


# -- agent.as_step ----------------------------------------------------------------------------


async def test_as_step_with_a_template(plait_runtime: plait.Runtime,
                                       fake_provider: FakeProvider) -> None:
    fake_provider.script("A summary.")
    agent = plait.Agent(model="fake:writer", name="summarizer")

    async def extract(ctx: plait.StepContext) -> str:
        return "the extracted facts"

    summarize = agent.as_step("Summarize {extract} for {audience}.")
    assert summarize.name == "summarizer"
    pipe = plait.Pipeline("p", steps={"extract": extract, "summarize": summarize},
                          deps={"summarize": ["extract"]})
    result = await pipe.run({"audience": "kids"}, runtime=plait_runtime)
    assert result.output == "A summary."
    assert fake_provider.requests[0].messages[-1].content == (
        "Summarize the extracted facts for kids.")
    assert result.steps["summarize"].usage.calls == 1


async def test_as_step_with_a_missing_template_field(plait_runtime: plait.Runtime,
                                                     fake_provider: FakeProvider) -> None:
    step = plait.Agent(model="fake:w").as_step("About {topic}")
    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", steps={"s": step}).run({"subject": "x"},
                                                         runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.MissingInput)
    assert info.value.cause.name == "topic"
    assert fake_provider.calls == 0


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_as_step_with_a_prompt_function(plait_runtime: plait.Runtime,
                                              fake_provider: FakeProvider,
                                              asynchronous: bool) -> None:
    def prompt(ctx: plait.StepContext) -> str:
        return f"Translate {ctx.input('word')!r}"

    async def async_prompt(ctx: plait.StepContext) -> str:
        return prompt(ctx)

    step = plait.Agent(model="fake:t").as_step(async_prompt if asynchronous else prompt)
    result = await plait.Pipeline("p", steps={"s": step}).run({"word": "tea"},
                                                              runtime=plait_runtime)
    assert result.output == "Translate 'tea'"  # the fake echoes the prompt


async def test_as_step_config_keywords(plait_runtime: plait.Runtime,
                                       fake_provider: FakeProvider) -> None:
    fake_provider.script(plait.ProviderUnavailable("down", provider="fake", model="t"), "up")
    step = plait.Agent(model="fake:t").as_step("x", retries=1, retry_delay=0, timeout=5)
    assert step.config == plait.Config(retries=1, retry_delay=0, timeout=5)
    result = await plait.Pipeline("p", steps={"s": step}).run({}, runtime=plait_runtime)
    assert result.output == "up"
    assert fake_provider.calls == 2


def test_as_step_refuses_a_prompt_that_is_neither_text_nor_function() -> None:
    with pytest.raises(TypeError, match="as_step takes a prompt string or a function"):
        plait.Agent(model="fake:t").as_step(42)  # type: ignore[arg-type]
