"""Runtime(model_override=...): every model call of a run goes to one model."""

import plait
import pytest
from plait_testing import PRICES, FakeProvider, provider_plugin


def _runtime(fake: FakeProvider, override: str | None) -> plait.Runtime:
    return plait.Runtime(entry_points=False, plugins=[provider_plugin(fake, prices=PRICES)],
                         model_override=override)


async def test_override_replaces_every_agents_model() -> None:
    fake = FakeProvider(lambda request: f"{request.model} says hi")
    first = plait.Agent(model="openai:gpt-4o-mini")
    second = plait.Agent(model="anthropic:claude-haiku", price=plait.Price.per_million("9", "9"))

    @plait.step
    async def both(ctx: plait.StepContext) -> list[str]:
        a = await ctx.ask(first, "one")
        b = await ctx.ask(second, "two", model="gemini:flash")  # the override wins here too
        return [a.output, b.output]

    pipe = plait.Pipeline("p", steps={"both": both},
                          config=plait.Config(budget=plait.usd("1")))
    async with _runtime(fake, "fake:priced") as rt:
        result = await pipe.run({}, runtime=rt)
    assert result.output == ["priced says hi", "priced says hi"]
    assert [r.model for r in fake.requests] == ["priced", "priced"]
    # the agent's own price was for its own model: the override's price table applies
    assert (result.usage.input_tokens, result.usage.output_tokens) == (2, 6)
    assert result.usage.cost == PRICES["priced"].cost(plait.TokenCount(2, 6))


async def test_without_override_agent_model_is_used() -> None:
    fake = FakeProvider(lambda request: request.model)
    agent = plait.Agent(model="fake:free")
    async with _runtime(fake, None) as rt:
        reply = await agent.ask("hello", runtime=rt)
    assert reply.output == "free"


def test_malformed_override_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="provider>:<model>"):
        plait.Runtime(entry_points=False, model_override="smollm2")
