"""The fake driving real agents and pipelines: what plait-testing is for."""

from __future__ import annotations

import attrs
import httpx
import plait
import pytest
from plait_testing import HANG, FakeProvider


@attrs.frozen
class Intent:
    label: str
    confidence: float


async def test_agent_ask_answers_from_the_script(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("Blue.")
    agent = plait.Agent(model="fake:writer", system="Be brief.", temperature=0)
    reply = await agent.ask("Name a colour.", runtime=plait_runtime)
    assert (reply.text, reply.output, reply.model) == ("Blue.", "Blue.", "writer")
    [request] = fake_provider.requests
    assert request.model == "writer"
    assert request.temperature == 0
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "Be brief."), ("user", "Name a colour.")]


async def test_structured_output_from_a_json_reply(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script({"label": "billing", "confidence": 0.9})
    agent = plait.Agent(model="fake:classifier", output=Intent)
    reply = await agent.ask("I was charged twice.", runtime=plait_runtime)
    assert reply.output == Intent("billing", 0.9)
    assert fake_provider.requests[0].json_schema is not None


async def test_a_malformed_reply_is_re_asked(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("not json", {"label": "tech", "confidence": 0.5})
    agent = plait.Agent(model="fake:classifier", output=Intent)
    reply = await agent.ask("My screen is black.", runtime=plait_runtime)
    assert reply.output == Intent("tech", 0.5)
    assert reply.attempts == 2
    assert fake_provider.requests[1].messages[-2] == plait.Message("assistant", "not json")


async def test_scripted_rate_limit_is_retried(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script(plait.RateLimited(retry_after=0), "ok")
    agent = plait.Agent(model="fake:m")
    reply = await agent.ask("hi", runtime=plait_runtime, retry_delay=0)
    assert reply.text == "ok"
    assert fake_provider.calls == 2


async def test_cost_is_accounted_exactly_from_the_price_table(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("Blue is nice", model="priced")
    fake_provider.script("Free answer", model="free")
    priced = plait.Agent(model="fake:priced", system="Be brief.", max_tokens=10)
    free = plait.Agent(model="fake:free", max_tokens=10)

    @plait.step
    async def colour(ctx: plait.StepContext) -> str:
        return (await ctx.ask(priced, "Name a colour.")).text

    @plait.step
    async def other(ctx: plait.StepContext) -> str:
        return (await ctx.ask(free, "Anything.")).text

    pipe = plait.Pipeline("costs", steps={"colour": colour, "other": other},
                          deps={"other": ["colour"]}, config=plait.Config(budget=plait.usd("1")))
    result = await pipe.run({}, runtime=plait_runtime)
    # fake:priced is $1 / $2 per million tokens: 5 words in, 3 words out
    assert result.steps["colour"].usage.cost == plait.usd("0.000011")
    assert result.steps["other"].usage.cost == 0
    assert result.usage.cost == plait.usd("0.000011")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (6, 5)


async def test_an_unpriced_fake_model_cannot_run_under_a_budget(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    agent = plait.Agent(model="fake:unpriced")

    @plait.step
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "hi")).text

    pipe = plait.Pipeline("p", steps={"ask": ask}, config=plait.Config(budget=plait.usd("1")))
    with pytest.raises(plait.StepFailed) as failed:
        await pipe.run({}, runtime=plait_runtime)
    assert isinstance(failed.value.cause, plait.UnknownPrice)
    assert fake_provider.calls == 0  # refused before anything was sent


async def test_a_hanging_model_times_the_step_out(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script(HANG)
    agent = plait.Agent(model="fake:slow")

    @plait.step(timeout=0.01)
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "hi")).text

    with pytest.raises(plait.StepFailed) as failed:
        await plait.Pipeline("p", steps={"ask": ask}).run({}, runtime=plait_runtime)
    assert isinstance(failed.value.cause, plait.StepTimeout)
    assert fake_provider.calls == 1


async def test_settings_script_the_entry_point_fake(
    monkeypatch: pytest.MonkeyPatch, no_network: httpx.MockTransport
) -> None:
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-testing")
    settings = {"fake": {"replies": ["from settings"]}}
    async with plait.Runtime(settings=settings, transport=no_network) as runtime:
        provider = runtime.provider("fake")  # loaded through the installed entry point
        assert isinstance(provider, FakeProvider)
        reply = await plait.Agent(model="fake:any").ask("hi", runtime=runtime)
        assert reply.text == "from settings"
        assert runtime.price("fake", "priced") == plait.Price.per_million("1", "2")
