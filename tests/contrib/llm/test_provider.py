"""The ``llm`` provider: plait agents on an llm model (a fake one, registered with llm)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Literal

import attrs
import llm
import llm_plait.provider
import plait
import pytest
from plait_testing.contracts import ProviderContract


class TestLLMProvider(ProviderContract):
    @pytest.fixture
    def provider(self, fake_echo):
        self.fake = fake_echo
        return llm_plait.provider.LLMProvider(plait.ProviderEnv("llm", {}, http=lambda: None))

    @pytest.fixture
    def model(self):
        return "fake-echo"

    def script(self, provider, reply):
        self.fake.replies.append(reply)


def runtime(**kwargs) -> plait.Runtime:
    return plait.Runtime(entry_points=False, plugins=[llm_plait.provider], **kwargs)


async def test_an_agent_runs_on_an_llm_model_with_usage(fake_echo):
    async with runtime() as rt:
        reply = await plait.Agent("llm:fake-echo", system="Repeat.").ask(
            "hello from plait", runtime=rt)
    assert reply.output == "hello from plait"
    assert reply.usage.calls == 1
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (3, 3)
    assert fake_echo.prompts[0].system == "Repeat."


@attrs.frozen
class Verdict:
    label: str
    reason: str


async def test_structured_output_goes_through_llm_schemas(fake_echo):
    async with runtime() as rt:
        reply = await plait.Agent("llm:fake-echo", output=Verdict).ask("Judge it.", runtime=rt)
    assert reply.output == Verdict(label="echo", reason="echo")
    assert set(fake_echo.prompts[0].schema["properties"]) == {"label", "reason"}


async def test_sampling_fields_become_the_models_options(fake_echo):
    provider = llm_plait.provider.LLMProvider(plait.ProviderEnv("llm", {}, http=lambda: None))
    await provider.complete(plait.ModelRequest(
        "fake-echo", (plait.Message("user", "one two three"),), temperature=0.2, max_tokens=2,
        seed=7))  # fake-echo has no seed option: left out, not an error
    options = fake_echo.prompts[0].options
    assert (options.temperature, options.max_tokens) == (0.2, 2)


async def test_earlier_turns_are_sent_as_llm_messages(fake_echo):
    provider = llm_plait.provider.LLMProvider(plait.ProviderEnv("llm", {}, http=lambda: None))
    await provider.complete(plait.ModelRequest("fake-echo", (
        plait.Message("system", "Be brief."), plait.Message("user", "Hi."),
        plait.Message("assistant", "Hello."), plait.Message("user", "Again?"))))
    prompt = fake_echo.prompts[0]
    assert prompt.prompt == "Again?"
    assert [(m.role, m.parts[0].text) for m in prompt.messages] == [
        ("system", "Be brief."), ("user", "Hi."), ("assistant", "Hello."), ("user", "Again?")]


async def test_an_unknown_model_is_model_not_found(fake_echo):
    async with runtime() as rt:
        with pytest.raises(plait.ModelNotFound, match="no-such-model"):
            await plait.Agent("llm:no-such-model").ask("hi", runtime=rt)


async def test_llm_errors_become_plait_errors(fake_echo):
    class Failing(Exception):
        status_code = 429

    async def boom(*args, **kwargs):
        raise Failing("slow down")
        yield ""  # pragma: no cover - makes this an async generator

    fake_echo.execute = boom
    provider = llm_plait.provider.LLMProvider(plait.ProviderEnv("llm", {}, http=lambda: None))
    request = plait.ModelRequest("fake-echo", (plait.Message("user", "hi"),))
    with pytest.raises(plait.RateLimited, match="slow down"):
        await provider.complete(request)

    async def needs_key(*args, **kwargs):
        raise llm.NeedsKeyException("No key found - add one using 'llm keys set fake'")
        yield ""  # pragma: no cover

    fake_echo.execute = needs_key
    with pytest.raises(plait.AuthenticationError, match="llm keys set fake"):
        await provider.complete(request)


async def test_a_budget_needs_prices_from_the_user(fake_echo):
    fake_echo.replies.append("ok")
    price = plait.Price.per_million("1", "2")
    agent = plait.Agent("llm:fake-echo")
    async with runtime(prices={"llm:fake-echo": price}) as rt:
        reply = await agent.ask("two words", runtime=rt)
    assert reply.usage.cost == price.cost(plait.TokenCount(2, 1))


def test_registration_does_not_import_llm():
    code = textwrap.dedent("""
        import sys
        import llm_plait.provider
        calls = []
        llm_plait.provider.plait_register_providers(lambda *a, **k: calls.append((a, k)))
        assert [a[0] for a, _ in calls] == ["llm"], calls
        assert calls[0][1] == {}, calls  # no prices: llm does not know them
        assert "llm" not in sys.modules, "registration imported llm"
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_llm_plugin_module_does_not_import_plait():
    code = textwrap.dedent("""
        import sys
        import llm_plait.commands
        assert "plait" not in sys.modules, "llm's plugin module imported plait"
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_a_literal_output_without_schema_support_is_parsed_by_plait(fake_echo):
    fake_echo.supports_schema = False
    fake_echo.replies.append("positive")
    async with runtime() as rt:
        reply = await plait.Agent("llm:fake-echo", output=Literal["positive", "negative"]).ask(
            "Mood?", runtime=rt)
    assert reply.output == "positive"
    assert fake_echo.prompts[0].schema is None
