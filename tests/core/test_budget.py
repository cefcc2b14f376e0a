"""Hard budgets: every call reserves its worst case first, so parallel calls can never
overspend together; reservations settle to the real cost, or are released on failure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio
import plait
import pytest
from plait_testing import HANG, PRICES, FakeProvider, provider_plugin

# fake:priced costs $1 / M input and $2 / M output tokens. With max_tokens=1000 a call's
# worst case is about $0.002 (1,000 output tokens at $2 / M, plus 73 input tokens), so
# $0.021 holds 10 of them at once and never 11. The fake's real reply ("ok" to "q") costs
# 1 input + 1 output token: $0.000003 (the same for the echo "q").
WORST_TEN = plait.usd("0.021")
REAL_COST = Decimal("0.000003")
N_CALLS = 50


class HeldCalls:
    """A fake that holds every call until the test has seen all 50 either held or refused,
    so the budget is tested with every call truly in flight at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.refused = 0
        self.release = anyio.Event()
        self.fake = FakeProvider(self.answer)

    async def answer(self, request: plait.ModelRequest) -> str:
        self.in_flight += 1
        self.check()
        await self.release.wait()
        return "ok"

    def refuse(self) -> None:
        self.refused += 1
        self.check()

    def check(self) -> None:
        if self.in_flight + self.refused == N_CALLS:
            self.release.set()

    def runtime(self) -> plait.Runtime:
        return plait.Runtime(entry_points=False,
                             plugins=[provider_plugin(self.fake, prices=PRICES)])


AGENT = plait.Agent(model="fake:priced", max_tokens=1000)
# AGENT asked "q": 1 byte + 8 for its turn + 64 for the template = 73 input tokens at $1/M,
# and 1,000 out at $2/M
WORST_CASE = Decimal("0.002073")


async def test_fifty_parallel_steps_against_a_budget_for_ten() -> None:
    held = HeldCalls()

    async def ask(ctx: plait.StepContext) -> str:
        try:
            return (await ctx.ask(AGENT, "q")).text
        except plait.BudgetExceeded:
            held.refuse()
            raise

    pipe = plait.Pipeline("budget", steps={f"s{i}": ask for i in range(N_CALLS)}, output="s0",
                          config=plait.Config(budget=WORST_TEN))
    with anyio.fail_after(10), pytest.raises(plait.BudgetExceeded) as info:
        await pipe.run({}, runtime=held.runtime())
    error = info.value
    assert held.fake.calls == 10  # the other 40 never reached the provider
    assert held.refused == 40
    assert (error.spent, error.limit, error.scope) == (0, WORST_TEN, "run")
    assert error.spent + error.reserved > error.limit  # the refused call would not fit
    assert error.reserved <= error.limit + error.limit / 10  # 10 held + the refused one
    assert f"run budget of ${WORST_TEN} exceeded" in str(error)
    partial = error.partial
    assert partial is not None
    assert sorted(partial.outputs.values()) == ["ok"] * 10
    statuses = [r.status for r in partial.steps.values()]
    assert (statuses.count("ok"), statuses.count("failed")) == (10, 40)
    assert {r.error.type for r in partial.steps.values() if r.error} == {"BudgetExceeded"}
    assert partial.usage.cost == 10 * REAL_COST
    assert partial.usage.cost <= WORST_TEN


async def test_fifty_parallel_calls_in_one_fan_out() -> None:
    held = HeldCalls()

    async def fan(ctx: plait.StepContext) -> Any:
        async def call(i: int) -> str:
            try:
                return (await ctx.ask(AGENT, "q")).text
            except plait.BudgetExceeded:
                held.refuse()
                raise

        result = await ctx.map(call, range(N_CALLS), on_error="collect")
        return {"values": list(result.values),
                "errors": [e.error.type for e in result.errors],
                "spent": str(sum((u.cost for u in result.item_usage), Decimal(0)))}

    pipe = plait.Pipeline("budget", steps={"fan": fan}, config=plait.Config(budget=WORST_TEN))
    with anyio.fail_after(10):
        result = await pipe.run({}, runtime=held.runtime())
    assert result.output["values"] == ["ok"] * 10
    assert result.output["errors"] == ["BudgetExceeded"] * 40
    assert Decimal(result.output["spent"]) == 10 * REAL_COST
    assert result.usage.cost == 10 * REAL_COST
    assert held.fake.calls == 10


async def test_a_fan_out_that_runs_out_of_budget_raises_budget_exceeded() -> None:
    held = HeldCalls()

    async def fan(ctx: plait.StepContext) -> Any:
        async def call(i: int) -> str:
            return (await ctx.ask(AGENT, "q")).text

        return await ctx.map(call, range(N_CALLS))

    pipe = plait.Pipeline("budget", steps={"fan": fan}, config=plait.Config(budget=WORST_TEN))
    with anyio.fail_after(10), pytest.raises(plait.BudgetExceeded) as info:
        await pipe.run({}, runtime=held.runtime())
    assert info.value.limit == WORST_TEN
    assert info.value.partial is not None
    assert info.value.partial.steps["fan"].status == "failed"
    fanout = info.value.__cause__  # the fan-out's error keeps every finished value
    assert isinstance(fanout, plait.FanOutError)
    assert isinstance(fanout.__cause__, plait.BudgetExceeded)
    assert held.fake.calls == 10


async def test_reservations_settle_to_the_real_cost(plait_runtime: plait.Runtime,
                                                    fake_provider: FakeProvider) -> None:
    """A budget that holds only two worst cases still pays for many cheap calls in turn."""
    async def sequential(ctx: plait.StepContext) -> list[str]:
        left = []
        for _ in range(20):
            await ctx.ask(AGENT, "q")
            left.append(str(ctx.budget_left))
        return left

    pipe = plait.Pipeline("p", steps={"s": sequential},
                          config=plait.Config(budget=plait.usd("0.0045")))
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output[0] == str(plait.usd("0.0045") - REAL_COST)
    assert result.output[-1] == str(plait.usd("0.0045") - 20 * REAL_COST)
    assert result.usage.cost == 20 * REAL_COST


@pytest.mark.parametrize("failure", [
    plait.BadRequest("bad", provider="fake", model="priced", status=400),
    plait.ProviderUnavailable("down", provider="fake", model="priced", status=503),
    plait.RateLimited("slow down", provider="fake", model="priced", status=429),
])
async def test_a_refused_request_releases_its_reservation(plait_runtime: plait.Runtime,
                                                          fake_provider: FakeProvider,
                                                          failure: plait.ProviderError) -> None:
    """The provider answered with an error: it did not run the request, nothing is billed."""
    fake_provider.script(failure, "ok")
    one_call = plait.usd("0.0025")  # room for exactly one worst case

    async def twice(ctx: plait.StepContext) -> str:
        with pytest.raises(plait.ProviderError):
            await ctx.ask(AGENT, "q", retries=0)
        assert ctx.budget_left == one_call  # nothing spent, nothing held
        return (await ctx.ask(AGENT, "q")).text

    pipe = plait.Pipeline("p", steps={"s": twice}, config=plait.Config(budget=one_call))
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == "ok"
    assert result.usage.cost == REAL_COST
    assert result.usage.requests == 2
    assert result.usage.calls == 1


async def test_a_request_that_got_no_answer_stays_charged_at_its_worst_case(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    """A timeout (no HTTP status): the provider may have run it and may bill it, so under a
    budget of 1.5 worst cases the retry that would put a second request on the wire is
    refused instead of sent."""
    fake_provider.script(plait.ProviderUnavailable("request timed out", provider="fake",
                                                   model="priced"), "ok")

    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(AGENT, "q", retry_delay=0)).text

    budget = WORST_CASE * Decimal("1.5")
    pipe = plait.Pipeline("p", steps={"s": ask}, config=plait.Config(budget=budget))
    with pytest.raises(plait.BudgetExceeded) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert fake_provider.calls == 1  # the retry was never sent
    assert info.value.spent == WORST_CASE  # the unanswered request, charged in full
    assert info.value.partial is not None
    assert info.value.partial.steps["s"].usage.requests == 1


async def test_a_retried_call_reserves_again_for_each_attempt(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script(plait.RateLimited(retry_after=0), "ok")
    pipe = plait.Pipeline("p", steps={"s": AGENT.as_step("q", retry_delay=0)},
                          config=plait.Config(budget=plait.usd("0.0025")))
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == "ok"
    assert fake_provider.calls == 2


async def test_a_call_cancelled_in_flight_stays_charged(plait_runtime: plait.Runtime,
                                                       fake_provider: FakeProvider) -> None:
    fake_provider.script(HANG, "ok")
    one_call = plait.usd("0.0025")

    async def give_up_then_ask(ctx: plait.StepContext) -> str:
        with anyio.move_on_after(0.01):
            await ctx.ask(AGENT, "q")
        assert ctx.budget_left == one_call - WORST_CASE  # sent: the provider may bill it
        return (await ctx.ask(AGENT, "q")).text

    pipe = plait.Pipeline("p", steps={"s": give_up_then_ask},
                          config=plait.Config(budget=one_call))
    with pytest.raises(plait.BudgetExceeded):
        await pipe.run({}, runtime=plait_runtime)


async def test_a_call_cancelled_before_it_was_sent_releases_its_reservation(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("ok")
    one_call = plait.usd("0.0025")
    limited = plait.Runtime(entry_points=False,
                            plugins=[provider_plugin(fake_provider, prices=PRICES)],
                            limits={"fake": plait.Limits(concurrency=1)})

    async def hold_the_only_slot(ctx: plait.StepContext) -> str:
        async with limited.limits().acquire("fake", "priced"):  # the call queues behind
            with anyio.move_on_after(0.01):
                await ctx.ask(AGENT, "q")
            assert ctx.budget_left == one_call  # never sent: nothing held, nothing spent
        return (await ctx.ask(AGENT, "q")).text

    pipe = plait.Pipeline("p", steps={"s": hold_the_only_slot},
                          config=plait.Config(budget=one_call))
    assert (await pipe.run({}, runtime=limited)).output == "ok"


async def test_a_step_budget_inside_the_run_budget(plait_runtime: plait.Runtime,
                                                   fake_provider: FakeProvider) -> None:
    async def greedy(ctx: plait.StepContext) -> None:
        await ctx.ask(AGENT, "q", max_tokens=10)  # a small worst case fits
        await ctx.ask(AGENT, "q")  # a worst case of 1,000 tokens does not

    async def other(ctx: plait.StepContext) -> str:
        return (await ctx.ask(AGENT, "q")).text

    pipe = plait.Pipeline("p", steps={"greedy": greedy, "other": other}, output="other",
                          config=plait.Config(budget=plait.usd("1")),
                          step_config={"greedy": plait.Config(budget=plait.usd("0.001"))})
    with pytest.raises(plait.BudgetExceeded) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert info.value.scope == "step greedy"
    assert info.value.spent == REAL_COST
    assert info.value.limit == plait.usd("0.001")
    assert info.value.partial is not None
    assert info.value.partial.outputs == {"other": "q"}  # the other branch ran on (echo)
    assert info.value.partial.usage.cost == 2 * REAL_COST


async def test_the_run_budget_binds_a_step_with_a_larger_budget(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    @plait.step(budget=plait.usd("5"))
    async def rich(ctx: plait.StepContext) -> None:
        await ctx.ask(AGENT, "q")

    pipe = plait.Pipeline("p", steps={"rich": rich},
                          config=plait.Config(budget=plait.usd("0.001")))
    with pytest.raises(plait.BudgetExceeded) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert info.value.scope == "run"
    assert fake_provider.calls == 0


async def test_a_nested_pipeline_budget_inside_the_outer(plait_runtime: plait.Runtime,
                                                         fake_provider: FakeProvider) -> None:
    async def two_calls(ctx: plait.StepContext) -> None:
        await ctx.ask(AGENT, "q", max_tokens=10)
        await ctx.ask(AGENT, "q")

    inner = plait.Pipeline("inner", steps={"calls": two_calls},
                           config=plait.Config(budget=plait.usd("0.001")))
    outer = plait.Pipeline("outer", steps={"inner": inner},
                           config=plait.Config(budget=plait.usd("1")))
    with pytest.raises(plait.BudgetExceeded) as info:
        await outer.run({}, runtime=plait_runtime)
    assert info.value.scope == "pipeline inner"
    assert info.value.partial is not None
    assert info.value.partial.steps["inner"].status == "failed"
    assert info.value.partial.usage.cost == REAL_COST


async def test_a_budget_needs_a_price(plait_runtime: plait.Runtime,
                                      fake_provider: FakeProvider) -> None:
    unpriced = plait.Agent(model="fake:mystery", max_tokens=10)

    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(unpriced, "q")).text

    budgeted = plait.Pipeline("p", steps={"s": ask}, config=plait.Config(budget=plait.usd("1")))
    with pytest.raises(plait.StepFailed) as info:
        await budgeted.run({}, runtime=plait_runtime)
    error = info.value.cause
    assert isinstance(error, plait.UnknownPrice)
    assert error.model == "fake:mystery"
    assert "no price is known for 'fake:mystery' and a budget is set" in str(error)
    assert "Agent(price=plait.Price.per_million(...))" in str(error)
    assert fake_provider.calls == 0

    free = plait.Pipeline("p", steps={"s": ask})  # without a budget, no price is needed
    result = await free.run({}, runtime=plait_runtime)
    assert result.usage.cost == 0
    assert result.usage.calls == 1


async def test_a_price_on_the_agent_or_runtime_lifts_unknown_price(
    fake_provider: FakeProvider,
) -> None:
    price = plait.Price.per_million("1", "2")
    runtime = plait.Runtime(entry_points=False,
                            plugins=[provider_plugin(fake_provider, prices=PRICES)],
                            prices={"fake:listed": price})
    config = plait.Config(budget=plait.usd("1"))
    for agent in (plait.Agent(model="fake:mystery", price=price, max_tokens=10),
                  plait.Agent(model="fake:listed", max_tokens=10)):
        pipe = plait.Pipeline("p", steps={"s": agent.as_step("q")}, config=config)
        fake_provider.script("ok")
        result = await pipe.run({}, runtime=runtime)
        assert result.usage.cost == REAL_COST


async def test_max_tokens_is_bounded_under_a_budget(plait_runtime: plait.Runtime,
                                                    fake_provider: FakeProvider) -> None:
    """A budget needs a bound on output to hold: without one, the call asks for 1024."""
    unbounded = plait.Agent(model="fake:priced")
    pipe = plait.Pipeline("p", steps={"s": unbounded.as_step("q")},
                          config=plait.Config(budget=plait.usd("1")))
    await pipe.run({}, runtime=plait_runtime)
    await plait.Pipeline("p", steps={"s": unbounded.as_step("q")}).run({},
                                                                       runtime=plait_runtime)
    assert [r.max_tokens for r in fake_provider.requests] == [1024, None]


async def test_a_zero_budget_refuses_every_priced_call(plait_runtime: plait.Runtime,
                                                       fake_provider: FakeProvider) -> None:
    pipe = plait.Pipeline("p", steps={"s": AGENT.as_step("q")},
                          config=plait.Config(budget=plait.usd("0")))
    with pytest.raises(plait.BudgetExceeded):
        await pipe.run({}, runtime=plait_runtime)
    free = plait.Agent(model="fake:free", max_tokens=10)
    pipe = plait.Pipeline("p", steps={"s": free.as_step("q")},
                          config=plait.Config(budget=plait.usd("0")))
    assert (await pipe.run({}, runtime=plait_runtime)).usage.calls == 1
    assert fake_provider.calls == 1


def test_budget_exceeded_carries_exact_amounts() -> None:
    error = plait.BudgetExceeded(Decimal("0.01"), Decimal("0.095"), Decimal("0.10"))
    assert (error.spent, error.reserved, error.limit, error.scope, error.partial) == (
        Decimal("0.01"), Decimal("0.095"), Decimal("0.10"), "run", None)
    assert str(error) == ("run budget of $0.10 exceeded: $0.01 spent, $0.095 reserved by "
                          "calls in flight and this call's worst case")
    assert not error.retryable


async def test_a_structured_call_reserves_room_for_its_schema(
        plait_runtime: plait.Runtime, fake_provider: FakeProvider) -> None:
    """Providers send the schema (as a tool or a hint): the worst case must include it."""
    held: list[Decimal] = []

    class Watch:
        @plait.hookimpl
        def plait_wrap_model_call(self, ctx: plait.StepContext) -> Any:
            held.append(plait.usd("1") - ctx.budget_left)  # reserved while the call runs
            yield

    plait_runtime.register(Watch())
    fake_provider.script("plain", '{"value": 3}')
    plain = plait.Agent(model="fake:priced", max_tokens=10)

    async def both(ctx: plait.StepContext) -> None:
        await ctx.ask(plain, "q")
        await ctx.ask(plait.Agent(model="fake:priced", max_tokens=10, output=int), "q")

    pipe = plait.Pipeline("p", {"s": both}, config=plait.Config(budget=plait.usd("1")))
    await pipe.run({}, runtime=plait_runtime)
    input_price = PRICES["priced"].input / 1_000_000
    # the schema's bytes plus 512 tokens of vendor instructions, at the input price
    assert held[1] - held[0] > 512 * input_price
