"""Context windows: a request that may not fit is refused before it is sent, and
``plait.fit`` trims a conversation or a document so that it fits."""

from __future__ import annotations

import plait
import pytest
from plait._calls import TEMPLATE_OVERHEAD_TOKENS, estimate_input_tokens
from plait_testing import FakeProvider, provider_plugin

M = plait.Message
PRICE = plait.Price.per_million("1", "1")


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def runtime(fake: FakeProvider) -> plait.Runtime:
    return plait.Runtime(entry_points=False, plugins=[provider_plugin(
        fake, prices={"*": PRICE}, context_windows={"small": 300, "big": 100_000})])


def tokens(*messages: plait.Message) -> int:
    """What the check counts for a request of these messages (input at worst)."""
    return estimate_input_tokens(plait.ModelRequest("m", messages))


async def test_a_request_that_may_not_fit_is_refused_before_it_is_sent(
    runtime: plait.Runtime, fake: FakeProvider
) -> None:
    agent = plait.Agent("fake:small", max_tokens=100)
    prompt = "x" * 200  # 64 + 208 input at worst, plus 100 for the reply: over 300
    with pytest.raises(plait.ContextTooLong) as info:
        await agent.ask(prompt, runtime=runtime)
    error = info.value
    assert (error.model, error.tokens, error.window) == ("fake:small", 372, 300)
    assert "plait.fit" in str(error)
    assert fake.calls == 0


async def test_in_a_run_nothing_is_spent_or_reserved(
    runtime: plait.Runtime, fake: FakeProvider
) -> None:
    agent = plait.Agent("fake:small", max_tokens=100)

    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "x" * 200)).output

    pipe = plait.Pipeline("p", steps={"s": ask},
                          config=plait.Config(budget=plait.usd("1"), retries=2))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=runtime)
    assert isinstance(info.value.cause, plait.ContextTooLong)
    assert info.value.attempts == 1  # never retried: the same request never fits
    assert info.value.partial is not None
    assert info.value.partial.usage == plait.Usage()
    assert fake.calls == 0


async def test_a_request_that_fits_is_sent_and_unknown_windows_are_not_checked(
    runtime: plait.Runtime, fake: FakeProvider
) -> None:
    fake.script("ok", "ok")
    await plait.Agent("fake:small", max_tokens=10).ask("x" * 200, runtime=runtime)
    await plait.Agent("fake:unlisted").ask("x" * 5_000, runtime=runtime)
    assert fake.calls == 2


async def test_a_bigger_model_in_the_fallback_chain_takes_what_does_not_fit(
    runtime: plait.Runtime, fake: FakeProvider
) -> None:
    fake.script("from the big one")
    agent = plait.Agent("fake:small", fallback=["fake:big"])
    reply = await agent.ask("x" * 400, runtime=runtime)
    assert (reply.output, reply.model) == ("from the big one", "big")
    assert [r.model for r in fake.requests] == ["big"]


def test_fit_drops_the_oldest_turns_first(runtime: plait.Runtime) -> None:
    conversation = [M("system", "Be brief."), M("user", "a" * 60), M("assistant", "b" * 60),
                    M("user", "c" * 60), M("assistant", "d" * 10), M("user", "what now?")]
    fitted = plait.fit(conversation, "fake:small", reserve=60, runtime=runtime)
    assert fitted == [M("system", "Be brief."), M("user", "c" * 60), M("assistant", "d" * 10),
                      M("user", "what now?")]
    assert tokens(*fitted) + 60 <= 300 < tokens(*conversation[:1], *conversation[2:]) + 60


def test_fit_cuts_a_long_document_keeping_its_beginning(runtime: plait.Runtime) -> None:
    document = "Chapter 1. " + "word " * 200
    fitted = plait.fit(document, "fake:small", runtime=runtime)
    assert isinstance(fitted, str)
    assert fitted.startswith("Chapter 1. word")
    assert fitted.endswith("[... cut to fit the context window]")
    assert tokens(M("user", fitted)) == 300  # exactly as much as fits


async def test_what_fit_returns_is_never_refused(runtime: plait.Runtime,
                                                 fake: FakeProvider) -> None:
    """fit counts what the agent adds too: its system prompt, examples and schema."""
    fake.script({"value": 3})
    agent = plait.Agent("fake:big", system="Count the words." * 50, output=int,
                        examples=[("one two", 2)], max_tokens=1_000)
    document = "word " * 40_000  # 200_000 bytes: over the window at worst
    with pytest.raises(plait.ContextTooLong):
        await agent.ask(document, runtime=runtime)
    fitted = plait.fit(document, agent, runtime=runtime)
    assert len(fitted) < len(document)
    assert (await agent.ask(fitted, runtime=runtime)).output == 3


def test_fit_refuses_what_cannot_fit_at_all_and_needs_a_window(runtime: plait.Runtime) -> None:
    with pytest.raises(plait.ContextTooLong):
        plait.fit("hello", plait.Agent("fake:small", system="s" * 400), runtime=runtime)
    with pytest.raises(ValueError, match="no context window is known for 'fake:unlisted'"):
        plait.fit("hello", "fake:unlisted", runtime=runtime)
    assert plait.fit("x" * 1000, "fake:unlisted", window=TEMPLATE_OVERHEAD_TOKENS + 100,
                     runtime=runtime).endswith("window]")


def test_a_provider_declares_context_windows_like_prices() -> None:
    runtime = plait.Runtime(entry_points=False, plugins=[provider_plugin(
        FakeProvider(), context_windows={"m": 1_000, "*": 10})])
    assert runtime.context_window("fake", "m") == 1_000
    assert runtime.context_window("fake", "m-2025-01-01") == 1_000  # a snapshot of m
    assert runtime.context_window("fake", "other") == 10
    with pytest.raises(plait.PluginError, match="context window of 'm' must be an int >= 1"):
        plait.Runtime(entry_points=False, plugins=[provider_plugin(
            FakeProvider(), context_windows={"m": 0})]).load()
