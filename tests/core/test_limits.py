"""RateLimiter and LimiterRegistry on virtual time: counts and virtual timestamps, no wall time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import plait
import pytest
from plait._limits import LimiterRegistry, MonotonicClock, RateLimiter
from plait_testing import PRICES, FakeProvider, provider_plugin

# Seconds. Every test here finishes at once on virtual time; a waiter the limiter never
# lets in would hang the task group, and this bound makes that a failure instead.
DEADLOCK = 10


class FakeClock:
    """Virtual time. With ``autojump`` a sleep moves time to its own deadline at once;
    without it, sleepers wait until the test calls ``advance``."""

    def __init__(self, autojump: bool = True) -> None:
        self.t = 0.0
        self.autojump = autojump
        self.sleeps: list[float] = []
        self._wakers: list[tuple[float, anyio.Event]] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        deadline = self.t + seconds
        if self.autojump:
            self.t = max(self.t, deadline)
            await anyio.lowlevel.checkpoint()
            return
        while self.t < deadline:
            event = anyio.Event()
            entry = (deadline, event)
            self._wakers.append(entry)
            try:
                await event.wait()
            finally:
                self._wakers.remove(entry)

    @property
    def sleeping(self) -> int:
        return len(self._wakers)

    async def advance(self, seconds: float) -> None:
        self.t += seconds
        for deadline, event in list(self._wakers):
            if deadline <= self.t:
                event.set()
        await anyio.wait_all_tasks_blocked()


def stamp(limiter: RateLimiter, clock: FakeClock, log: list[tuple[str, float]], name: str,
          tokens: int = 0) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        async with limiter.acquire(tokens):
            log.append((name, clock.now()))

    return call


async def test_concurrency_cap_holds_and_queues_the_rest() -> None:
    limiter = RateLimiter(plait.Limits(concurrency=3))
    release = anyio.Event()
    running = peak = done = 0

    async def call() -> None:
        nonlocal running, peak, done
        async with limiter.acquire():
            running += 1
            peak = max(peak, running)
            await release.wait()
            running -= 1
        done += 1

    with anyio.fail_after(DEADLOCK):
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(call)
            await anyio.wait_all_tasks_blocked()
            assert (limiter.in_flight, limiter.waiting) == (3, 7)
            release.set()
    assert (peak, done) == (3, 10)
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


async def test_concurrency_cap_with_work_of_uneven_length() -> None:
    limiter = RateLimiter(plait.Limits(concurrency=2))
    running = peak = 0

    async def call(i: int) -> None:
        nonlocal running, peak
        async with limiter.acquire():
            running += 1
            peak = max(peak, running)
            for _ in range(i % 4):
                await anyio.lowlevel.checkpoint()
            running -= 1

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(call, i)
    assert peak == 2


async def test_requests_per_minute_spaces_calls_on_virtual_time() -> None:
    clock = FakeClock()
    limiter = RateLimiter(plait.Limits(requests_per_minute=3), clock=clock)
    starts = []
    for _ in range(6):
        async with limiter.acquire():
            starts.append(clock.now())
    # a full bucket of 3, then one more every 60/3 = 20 virtual seconds
    assert starts == pytest.approx([0, 0, 0, 20, 40, 60])


async def test_concurrent_callers_are_spaced_the_same_way() -> None:
    clock = FakeClock()
    limiter = RateLimiter(plait.Limits(requests_per_minute=3), clock=clock)
    starts: list[float] = []

    async def call() -> None:
        async with limiter.acquire():
            starts.append(clock.now())

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(call)
    assert sorted(starts) == pytest.approx([0, 0, 0, 20, 40])


async def test_tokens_per_minute_and_both_buckets() -> None:
    clock = FakeClock()
    limiter = RateLimiter(plait.Limits(tokens_per_minute=600), clock=clock)  # 10 tokens/s
    starts = []
    for tokens in (300, 300, 300, 100, 0):
        async with limiter.acquire(tokens):
            starts.append(clock.now())
    # 300 + 300 empty the bucket; 300 more take 30 s, 100 more 10 s; 0 tokens never waits
    assert starts == pytest.approx([0, 0, 30, 40, 40])

    clock = FakeClock()
    both = RateLimiter(plait.Limits(requests_per_minute=60, tokens_per_minute=600), clock=clock)
    starts = []
    for tokens in (600, 10, 10):
        async with both.acquire(tokens):
            starts.append(clock.now())
    # the token bucket decides the second call (1 s for 10 tokens), then both allow at 2 s
    assert starts == pytest.approx([0, 1, 2])


async def test_waiters_are_served_in_arrival_order() -> None:
    clock = FakeClock(autojump=False)
    limiter = RateLimiter(plait.Limits(tokens_per_minute=100), clock=clock)
    log: list[tuple[str, float]] = []
    with anyio.fail_after(DEADLOCK):
        async with anyio.create_task_group() as tg:
            tg.start_soon(stamp(limiter, clock, log, "small-1", 60))
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(stamp(limiter, clock, log, "big", 100))  # needs the whole bucket
            await anyio.wait_all_tasks_blocked()
            for name in ("small-2", "small-3"):  # 40 tokens are left: these would fit now
                tg.start_soon(stamp(limiter, clock, log, name, 10))
                await anyio.wait_all_tasks_blocked()
            assert log == [("small-1", 0.0)]
            assert (limiter.waiting, clock.sleeping) == (3, 1)  # only the head sleeps
            await clock.advance(36)  # 60 tokens back at 100/60 per second
            await clock.advance(6)  # 10 more for small-2
            await clock.advance(6)  # and small-3
    assert [name for name, _ in log] == ["small-1", "big", "small-2", "small-3"]
    assert [t for _, t in log] == pytest.approx([0, 36, 42, 48])


async def test_request_larger_than_the_bucket_goes_when_it_is_full() -> None:
    clock = FakeClock()
    limiter = RateLimiter(plait.Limits(tokens_per_minute=100), clock=clock)
    starts = []
    for tokens in (50, 250, 10):
        async with limiter.acquire(tokens):
            starts.append(clock.now())
    # 250 > capacity: it waits for a full bucket (30 s), not forever, and leaves a debt of
    # 150 that the next call waits out (160 tokens at 100/60 per second = 96 s)
    assert starts == pytest.approx([0, 30, 126])


async def test_fractional_request_rate_needs_a_full_bucket_too() -> None:
    clock = FakeClock()
    limiter = RateLimiter(plait.Limits(requests_per_minute=0.5), clock=clock)
    starts = []
    for _ in range(3):
        async with limiter.acquire():
            starts.append(clock.now())
    assert starts == pytest.approx([0, 120, 240])


async def test_settle_refund_wakes_the_head_early() -> None:
    clock = FakeClock(autojump=False)
    limiter = RateLimiter(plait.Limits(tokens_per_minute=100), clock=clock)
    log: list[tuple[str, float]] = []
    async with limiter.acquire(100):
        pass
    with anyio.fail_after(DEADLOCK):
        async with anyio.create_task_group() as tg:
            tg.start_soon(stamp(limiter, clock, log, "next", 50))
            await anyio.wait_all_tasks_blocked()
            assert (log, clock.sleeping) == ([], 1)  # asleep for 30 s of refill
            limiter.settle(100, 20)  # the first call used 20: 80 come back
            await anyio.wait_all_tasks_blocked()
            assert log == [("next", 0.0)]
    assert clock.t == 0


async def test_settle_charges_what_the_estimate_missed() -> None:
    clock = FakeClock()
    limiter = RateLimiter(plait.Limits(tokens_per_minute=100), clock=clock)
    async with limiter.acquire(10):
        pass
    limiter.settle(10, 70)  # 60 more than reserved: 30 left
    async with limiter.acquire(50):
        assert clock.now() == pytest.approx(12)  # 20 missing at 100/60 per second
    limiter.settle(50, 500)  # can go into debt
    async with limiter.acquire(1):
        assert clock.now() == pytest.approx(12 + 451 * 0.6)


async def test_refunds_never_overfill_the_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(plait.Limits(tokens_per_minute=100), clock=clock)
    limiter.settle(1000, 0)
    starts = []
    for _ in range(2):
        async with limiter.acquire(100):
            starts.append(clock.now())
    assert starts == pytest.approx([0, 60])


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    limiter = RateLimiter(plait.Limits(concurrency=1))
    release = anyio.Event()
    admitted: list[str] = []

    async def call(name: str) -> None:
        async with limiter.acquire():
            admitted.append(name)
            await release.wait()

    with anyio.fail_after(DEADLOCK):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "holder")
            await anyio.wait_all_tasks_blocked()
            victim = anyio.CancelScope()
            tg.start_soon(_in_scope, victim, lambda: call("victim"))
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(call, "after")
            await anyio.wait_all_tasks_blocked()
            assert limiter.waiting == 2
            victim.cancel()  # the way a step timeout would
            await anyio.wait_all_tasks_blocked()
            assert (limiter.waiting, limiter.in_flight) == (1, 1)
            release.set()
    assert admitted == ["holder", "after"]
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


async def test_cancelling_the_sleeping_head_takes_no_tokens_and_wakes_the_next() -> None:
    clock = FakeClock(autojump=False)
    limiter = RateLimiter(plait.Limits(tokens_per_minute=100), clock=clock)
    log: list[tuple[str, float]] = []
    async with limiter.acquire(100):
        pass
    with anyio.fail_after(DEADLOCK):
        async with anyio.create_task_group() as tg:
            head_scope = anyio.CancelScope()
            tg.start_soon(_in_scope, head_scope, stamp(limiter, clock, log, "head", 80))
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(stamp(limiter, clock, log, "next", 50))
            await anyio.wait_all_tasks_blocked()
            assert (limiter.waiting, clock.sleeping) == (2, 1)
            head_scope.cancel()
            await anyio.wait_all_tasks_blocked()
            assert (limiter.waiting, clock.sleeping) == (1, 1)  # "next" is the sleeping head now
            await clock.advance(30)  # exactly what 50 tokens need: the head took none
    assert [name for name, _ in log] == ["next"]
    assert log[0][1] == pytest.approx(30)


async def _in_scope(scope: anyio.CancelScope, call: Callable[[], Awaitable[None]]) -> None:
    with scope:
        await call()


async def test_cancellation_inside_the_block_releases_the_slot() -> None:
    limiter = RateLimiter(plait.Limits(concurrency=1))
    with anyio.move_on_after(0):
        async with limiter.acquire():
            await anyio.sleep_forever()
    assert limiter.in_flight == 0
    async with limiter.acquire():
        assert limiter.in_flight == 1


async def test_real_clock_and_unlimited_limits_do_not_wait() -> None:
    limiter = RateLimiter(plait.Limits(requests_per_minute=1000, tokens_per_minute=10**6))
    for _ in range(5):
        async with limiter.acquire(100):
            pass
    unlimited = RateLimiter(plait.Limits())
    async with unlimited.acquire(10**9), unlimited.acquire(10**9):
        assert unlimited.in_flight == 2
    clock = MonotonicClock()
    first = clock.now()
    await clock.sleep(0)
    assert clock.now() >= first


@pytest.mark.parametrize(("fields", "message"), [
    ({"concurrency": 0}, "Limits.concurrency must be an int >= 1 or None, got 0"),
    ({"concurrency": 2.5}, "Limits.concurrency must be an int >= 1"),
    ({"concurrency": True}, "Limits.concurrency must be an int >= 1"),
    ({"requests_per_minute": 0}, "Limits.requests_per_minute must be a number > 0"),
    ({"tokens_per_minute": -5}, "Limits.tokens_per_minute must be a number > 0"),
    ({"tokens_per_minute": float("nan")}, "Limits.tokens_per_minute must be a number > 0"),
])
def test_limits_that_could_never_admit_are_refused_when_built(
        fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plait.Limits(**fields)


async def test_negative_token_estimates_are_refused() -> None:
    with pytest.raises(ValueError, match="tokens must be >= 0"):
        async with RateLimiter(plait.Limits()).acquire(-1):
            pass


# --------------------------------------------------------------------------- the registry

def test_registry_shares_one_limiter_per_provider_and_model() -> None:
    registry = LimiterRegistry(
        {"openai": plait.Limits(concurrency=2), "openai:gpt-4o": plait.Limits(concurrency=1)},
        defaults={"openai": plait.Limits(concurrency=50, requests_per_minute=500),
                  "anthropic": plait.Limits(concurrency=4)},
    )
    provider = registry.get("openai")
    assert provider is not None
    assert provider is registry.get("openai")
    # the user's entry replaces the default as a whole
    assert provider.limits == plait.Limits(concurrency=2)
    model = registry.get("openai", "gpt-4o")
    assert model is not None
    assert model is registry.get("openai", "gpt-4o")
    assert model is not provider
    assert registry.get("openai", "gpt-4o-mini") is None
    anthropic = registry.get("anthropic")
    assert anthropic is not None
    assert anthropic.limits == plait.Limits(concurrency=4)
    assert registry.get("gemini") is None


def test_registry_defaults_may_be_a_lookup_and_empty_limits_cost_nothing() -> None:
    asked: list[str] = []

    def lookup(key: str) -> plait.Limits | None:
        asked.append(key)
        return plait.Limits(concurrency=3) if key == "local" else plait.Limits()

    registry = LimiterRegistry(defaults=lookup)
    assert registry.get("local") is registry.get("local")
    assert registry.get("openai") is None
    assert asked == ["local", "openai"]  # each key looked up once


def test_registry_refuses_what_is_not_limits_naming_the_key() -> None:
    with pytest.raises(TypeError, match=r"limits\['openai:gpt-4o'\] must be a plait.Limits"):
        LimiterRegistry({"openai:gpt-4o": {"concurrency": 1}})  # type: ignore[dict-item]


async def test_registry_applies_model_and_provider_limits_together() -> None:
    registry = LimiterRegistry(
        {"openai": plait.Limits(concurrency=3), "openai:gpt-4o": plait.Limits(concurrency=1)})
    release = anyio.Event()
    running: dict[str, int] = {"gpt-4o": 0, "gpt-4o-mini": 0}
    peak: dict[str, int] = {"gpt-4o": 0, "gpt-4o-mini": 0, "all": 0}

    async def call(model: str) -> None:
        async with registry.acquire("openai", model, 10):
            running[model] += 1
            peak[model] = max(peak[model], running[model])
            peak["all"] = max(peak["all"], sum(running.values()))
            await release.wait()
            running[model] -= 1

    with anyio.fail_after(DEADLOCK):
        async with anyio.create_task_group() as tg:
            for model in ["gpt-4o"] * 4 + ["gpt-4o-mini"] * 4:
                tg.start_soon(call, model)
                await anyio.wait_all_tasks_blocked()  # arrive in this order
            # gpt-4o waiters hold no provider slot: the mini calls fill the other two
            assert running == {"gpt-4o": 1, "gpt-4o-mini": 2}
            release.set()
    assert (peak["gpt-4o"], peak["all"]) == (1, 3)


async def test_registry_charges_and_settles_both_token_buckets() -> None:
    clock = FakeClock()
    registry = LimiterRegistry(
        {"openai": plait.Limits(tokens_per_minute=1000),
         "openai:gpt-4o": plait.Limits(tokens_per_minute=100)},
        clock=clock,
    )
    async with registry.acquire("openai", "gpt-4o", 100):
        pass
    registry.settle("openai", "gpt-4o", 100, 40)  # 60 back in both buckets
    async with registry.acquire("openai", "gpt-4o", 60):
        assert clock.now() == 0
    async with registry.acquire("openai", "gpt-4o-mini", 960):  # provider has 900 left
        assert clock.now() == pytest.approx(60 / (1000 / 60))
    async with registry.acquire("anthropic", "claude", 10**6):  # unlimited
        pass
    registry.settle("anthropic", "claude", 1, 2)


async def test_a_call_settles_the_token_bucket_to_its_real_usage() -> None:
    """A call reserves its estimate in the tokens-per-minute bucket and gives back what it
    did not use: the second call fits at once. Without the settlement it would wait ~45 s
    for a refill (and this test would fail on its deadline)."""
    fake = FakeProvider()
    fake.script("ok", "ok")  # 1 token in, 1 out, each
    runtime = plait.Runtime(entry_points=False, plugins=[provider_plugin(fake, prices=PRICES)],
                            limits={"fake": plait.Limits(tokens_per_minute=200)})
    agent = plait.Agent("fake:m", max_tokens=100)  # estimate: 73 in + 100 out = 173 tokens
    with anyio.fail_after(2):
        for _ in range(2):
            assert (await agent.ask("q", runtime=runtime)).text == "ok"
    assert fake.calls == 2
