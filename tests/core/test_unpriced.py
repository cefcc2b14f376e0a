"""Honest prices: a model with no known price costs "unknown", never a silent $0; it is
said once per model, and a budget still refuses it."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import plait
import pytest
from plait_testing import FakeProvider

PRICED = plait.Price.per_million("1", "2")  # fake:priced, as plait-testing registers it


async def test_a_call_to_an_unpriced_model_has_an_unknown_cost(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("hello there")
    reply = await plait.Agent("fake:unlisted").ask("hi", runtime=plait_runtime)
    assert (reply.usage.calls, reply.usage.unpriced, reply.usage.cost) == (1, 1, Decimal(0))
    assert not reply.usage.cost_known
    assert reply.usage.cost_text == "unknown"


async def test_priced_and_unpriced_calls_add_up_to_a_known_part_plus_unknown(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("one two", "three")

    async def both(ctx: plait.StepContext) -> str:
        await ctx.ask(plait.Agent("fake:priced"), "a b")
        return (await ctx.ask(plait.Agent("fake:unlisted"), "c")).output

    result = await plait.Pipeline("p", steps={"s": both}).run({}, runtime=plait_runtime)
    known = PRICED.cost(plait.TokenCount(2, 2))
    assert (result.usage.cost, result.usage.unpriced, result.usage.calls) == (known, 1, 2)
    assert result.usage.cost_text == f"${known.normalize():f} + unknown"
    data = json.loads(result.to_json())
    assert data["usage"]["cost"] is None
    assert data["usage"]["priced_cost"] == str(known)
    assert data["steps"]["s"]["usage"]["unpriced"] == 1
    back = plait.PipelineResult.from_json(result.to_json())
    assert back.usage == result.usage  # nothing lost on the way back


async def test_it_is_said_once_per_model(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="plait")
    for model in ("fake:a", "fake:a", "fake:b", "fake:priced", "fake:a"):
        await plait.Agent(model).ask("hi", runtime=plait_runtime)
    said = [r for r in caplog.records if r.name == "plait"]
    assert [r.getMessage().split(":")[0:2] for r in said] == [
        ["no price is known for 'fake", "a'"], ["no price is known for 'fake", "b'"]]
    assert "reported as unknown, not $0" in said[0].getMessage()
    assert all(r.levelno == logging.WARNING for r in said)


async def test_a_budget_still_refuses_an_unpriced_model(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(plait.Agent("fake:unlisted"), "hi")).output

    pipe = plait.Pipeline("p", steps={"s": ask}, config=plait.Config(budget=plait.usd("1")))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.UnknownPrice)
    assert fake_provider.calls == 0


def test_usage_with_nothing_unpriced_is_as_before() -> None:
    usage = plait.Usage(3, 4, 0, 1, Decimal("0.25"), 1)
    assert usage.cost_known
    assert usage.cost_text == "$0.25"
    assert (usage + plait.Usage(unpriced=1, calls=1)).cost_text == "$0.25 + unknown"
    assert plait.Usage().cost_text == "$0"
