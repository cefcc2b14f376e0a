"""Fallback chains: ``Agent(model, fallback=[...])`` asks the next model once a model's
retries are spent on a transient error, and never after a permanent one."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import plait
import pytest
from plait_testing import FakeProvider, provider_plugin

CHEAP = plait.Price.per_million("1", "2")
DEAR = plait.Price.per_million("100", "200")
QUICK = {"retries": 1, "retry_delay": 0}  # one retry, no backoff to wait for


@pytest.fixture
def primary() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def backup() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def runtime(primary: FakeProvider, backup: FakeProvider) -> plait.Runtime:
    return plait.Runtime(entry_points=False, plugins=[
        provider_plugin(primary, "primary", prices={"*": CHEAP}),
        provider_plugin(backup, "backup", prices={"*": DEAR})])


AGENT = plait.Agent("primary:fast", fallback=["backup:steady"])


@pytest.mark.parametrize("error", [  # made per test: a raised error is marked as spent
    lambda: plait.ProviderUnavailable("503 overloaded", status=503),
    lambda: plait.ProviderUnavailable("read timed out"),  # a timeout: no status
    lambda: plait.RateLimited("429 slow down", retry_after=0),
])
async def test_a_transient_error_after_the_retries_asks_the_next_model(
    runtime: plait.Runtime, primary: FakeProvider, backup: FakeProvider,
    error: Callable[[], Exception],
) -> None:
    primary.script(error(), error())
    backup.script("steady answer")
    reply = await AGENT.ask("hello there", runtime=runtime, **QUICK)
    assert reply.output == "steady answer"
    assert reply.model == "steady"  # the model that answered
    assert primary.calls == 2  # its own retry first
    assert backup.calls == 1
    # priced at the model that answered: 2 words in, 2 out, at $100 / $200 per million
    assert reply.usage.cost == DEAR.cost(plait.TokenCount(2, 2)) == Decimal("0.0006")


async def test_a_model_that_recovers_within_its_retries_is_kept(
    runtime: plait.Runtime, primary: FakeProvider, backup: FakeProvider
) -> None:
    primary.script(plait.ProviderUnavailable("503", status=503), "fast answer")
    reply = await AGENT.ask("hi", runtime=runtime, **QUICK)
    assert (reply.output, reply.model, backup.calls) == ("fast answer", "fast", 0)


@pytest.mark.parametrize("error", [
    plait.AuthenticationError("401 invalid api key", status=401),
    plait.BadRequest("400 max_tokens is too large", status=400),
    plait.ModelNotFound("404 no such model", status=404),
])
async def test_a_permanent_error_is_raised_without_asking_another_model(
    runtime: plait.Runtime, primary: FakeProvider, backup: FakeProvider, error: Exception
) -> None:
    primary.script(error)
    with pytest.raises(type(error)):
        await AGENT.ask("hi", runtime=runtime, **QUICK)
    assert (primary.calls, backup.calls) == (1, 0)


async def test_when_every_model_fails_the_last_error_names_the_others(
    runtime: plait.Runtime, primary: FakeProvider, backup: FakeProvider
) -> None:
    primary.script(*[plait.ProviderUnavailable("503 primary down", status=503)
                     for _ in range(2)])
    backup.script(*[plait.RateLimited("429 backup busy") for _ in range(2)])
    with pytest.raises(plait.RateLimited) as info:
        await AGENT.ask("hi", runtime=runtime, **QUICK)
    assert info.value.__notes__ == [
        "fallback chain: asked before it, and failed: primary:fast: ProviderUnavailable: "
        "503 primary down (HTTP 503) (after 2 requests)"]


async def test_a_chain_goes_on_down_the_list(
    runtime: plait.Runtime, primary: FakeProvider, backup: FakeProvider
) -> None:
    def down() -> plait.ProviderError:
        return plait.ProviderUnavailable("503", status=503)

    primary.script(down(), down(), "third answers")
    backup.script(down(), down())
    agent = plait.Agent("primary:a", fallback=["backup:b", "primary:c"])
    reply = await agent.ask("hi", runtime=runtime, **QUICK)
    assert (reply.output, reply.model) == ("third answers", "c")
    assert [r.model for r in primary.requests] == ["a", "a", "c"]


async def test_in_a_run_each_model_reserves_its_own_worst_case_in_the_budget(
    runtime: plait.Runtime, primary: FakeProvider, backup: FakeProvider
) -> None:
    """The primary fits the budget; the dear backup's worst case does not, so the run
    stops at the budget instead of spending past it."""
    primary.script(*[plait.ProviderUnavailable("503", status=503) for _ in range(2)])
    backup.script("never sent")
    agent = plait.Agent("primary:fast", fallback=["backup:steady"], max_tokens=100)

    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "hi", **QUICK)).output

    pipe = plait.Pipeline("p", steps={"s": ask},
                          config=plait.Config(budget=plait.usd("0.01"), retries=0))
    with pytest.raises(plait.BudgetExceeded) as info:
        await pipe.run({}, runtime=runtime)
    assert info.value.limit == Decimal("0.01")
    assert (primary.calls, backup.calls) == (2, 0)


async def test_in_a_run_the_usage_counts_every_model_asked(
    runtime: plait.Runtime, primary: FakeProvider, backup: FakeProvider
) -> None:
    primary.script(*[plait.ProviderUnavailable("503", status=503) for _ in range(2)])
    backup.script("ok then")

    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(AGENT, "hi", **QUICK)).output

    result = await plait.Pipeline("p", steps={"s": ask}).run({}, runtime=runtime)
    assert result.output == "ok then"
    assert (result.usage.requests, result.usage.calls) == (3, 1)
    assert result.usage.cost == DEAR.cost(plait.TokenCount(1, 2))


async def test_a_per_call_model_is_the_first_of_the_chain(
    runtime: plait.Runtime, primary: FakeProvider, backup: FakeProvider
) -> None:
    primary.script(*[plait.ProviderUnavailable("503", status=503) for _ in range(2)])
    backup.script("from the backup")
    reply = await AGENT.ask("hi", runtime=runtime, model="primary:other",
                            price=plait.Price.per_million("0", "0"), **QUICK)
    assert [r.model for r in primary.requests] == ["other", "other"]
    assert reply.model == "steady"
    assert reply.usage.cost > 0  # the override's free price was for the first model only


async def test_a_fallback_without_a_price_under_a_budget_is_refused(
    primary: FakeProvider, backup: FakeProvider
) -> None:
    runtime = plait.Runtime(entry_points=False, plugins=[
        provider_plugin(primary, "primary", prices={"*": CHEAP}),
        provider_plugin(backup, "backup")])
    primary.script(*[plait.ProviderUnavailable("503", status=503) for _ in range(2)])

    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(AGENT, "hi", **QUICK)).output

    pipe = plait.Pipeline("p", steps={"s": ask}, config=plait.Config(budget=plait.usd("1"),
                                                                     retries=0))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=runtime)
    assert isinstance(info.value.cause, plait.UnknownPrice)
    assert backup.calls == 0


@pytest.mark.parametrize(("fallback", "error", "words"), [
    ("backup:steady", TypeError, ["a list of models", "fallback=['backup:steady']"]),
    (["steady"], ValueError, ["'<provider>:<model>'", "'steady'"]),
])
def test_a_bad_chain_is_refused_at_construction(fallback: Any, error: type[Exception],
                                                words: list[str]) -> None:
    with pytest.raises(error) as info:
        plait.Agent("primary:fast", fallback=fallback)
    for word in words:
        assert word in str(info.value)
