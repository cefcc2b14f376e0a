"""Client-side limits on model calls, shared by every run on a Runtime.

A ``RateLimiter`` enforces one ``Limits``: a concurrency cap, and two token buckets (requests
and tokens per minute) that refill continuously and hold one minute's worth. Callers queue in
arrival order and only the head of the queue may be admitted, so a large request is never
starved by a stream of small ones. Only the head ever sleeps, for exactly as long as its
buckets need to refill; a refund from ``settle`` wakes it early.

The limiter keeps plain Python state and creates its anyio primitives inside the task that
waits, so one instance serves asyncio and trio, and any number of event loops in turn.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from typing import Protocol

import anyio
import attrs

from ._model import Limits

__all__ = ["Clock", "LimiterRegistry", "MonotonicClock", "RateLimiter"]

_EPSILON = 1e-9  # float refill arithmetic must not leave a waiter a hair short forever


class Clock(Protocol):
    """Where the limiter reads the time and how it waits; tests inject a virtual one."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


@attrs.frozen
class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``anyio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class _Bucket:
    """A token bucket with continuous refill; the level may go below zero (debt)."""

    def __init__(self, per_minute: float, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = self.capacity / 60.0
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` fits; a request larger than the bucket needs it full."""
        missing = min(amount, self.capacity) - self.level
        return 0.0 if missing <= _EPSILON else missing / self.rate


class _Waiter:
    __slots__ = ("tokens", "wake")

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.wake: anyio.Event | None = None


class RateLimiter:
    """Admits calls within one ``Limits``, first come first served.

    ``async with limiter.acquire(tokens):`` waits for a concurrency slot and for room in the
    request and token buckets, then holds the slot until the block exits. ``tokens`` is the
    call's estimate; ``settle(estimated, actual)`` corrects the token bucket afterwards.
    Cancelled while waiting, a call takes nothing.
    """

    def __init__(self, limits: Limits, clock: Clock | None = None) -> None:
        self.limits = limits
        self._clock: Clock = clock or MonotonicClock()
        now = self._clock.now()
        rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        self._requests = None if rpm is None else _Bucket(rpm, now)
        self._tokens = None if tpm is None else _Bucket(tpm, now)
        self._queue: deque[_Waiter] = deque()
        self._in_flight = 0
        self._nap: anyio.CancelScope | None = None  # the head's sleep, while it refills
        self._cool_until = 0.0  # no call is admitted before this (a provider's Retry-After)

    @property
    def in_flight(self) -> int:
        """Calls admitted and not yet finished."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Calls queued for admission."""
        return len(self._queue)

    @asynccontextmanager
    async def acquire(self, tokens: int = 0) -> AsyncIterator[None]:
        """Hold a place for one call of about ``tokens`` tokens (input + output)."""
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        await self._admit(tokens)
        try:
            yield
        finally:
            self._in_flight -= 1
            self._wake_head()

    def settle(self, estimated: int, actual: int) -> None:
        """The call that reserved ``estimated`` tokens used ``actual``: refund or charge."""
        if self._tokens is None or estimated == actual:
            return
        self._tokens.refill(self._clock.now())
        self._tokens.level = min(self._tokens.capacity,
                                 self._tokens.level + estimated - actual)
        if actual < estimated and self._nap is not None:
            self._nap.cancel()  # the head may fit now: let it look again

    def cool_down(self, seconds: float) -> None:
        """Admit no call for ``seconds`` (a provider said ``Retry-After``); a waiting call
        looks again and waits for the rest."""
        self._cool_until = max(self._cool_until, self._clock.now() + seconds)
        if self._nap is not None:
            self._nap.cancel()

    async def _admit(self, tokens: int) -> None:
        if not self._queue and self._slot_free() and self._delay(tokens) <= 0:
            self._in_flight += 1  # nobody waiting and room now: no queue entry to make
            self._spend(tokens)
            return
        me = _Waiter(tokens)
        self._queue.append(me)
        try:
            while True:
                if self._queue[0] is me and self._slot_free():
                    delay = self._delay(tokens)
                    if delay <= 0:
                        self._take(tokens)
                        return
                    with anyio.CancelScope() as nap:
                        self._nap = nap
                        try:
                            await self._clock.sleep(delay)
                        finally:
                            self._nap = None
                else:  # not our turn, or no free slot: a release or a new head wakes us
                    me.wake = anyio.Event()
                    await me.wake.wait()
        except BaseException:
            was_head = self._queue[0] is me
            self._queue.remove(me)
            if was_head:
                self._wake_head()
            raise

    def _slot_free(self) -> bool:
        limit = self.limits.concurrency
        return limit is None or self._in_flight < limit

    def _delay(self, tokens: int) -> float:
        now = self._clock.now()
        delay = max(0.0, self._cool_until - now)
        if self._requests is not None:
            self._requests.refill(now)
            delay = self._requests.wait_for(1)
        if self._tokens is not None and tokens:
            self._tokens.refill(now)
            delay = max(delay, self._tokens.wait_for(tokens))
        return delay

    def _take(self, tokens: int) -> None:
        self._queue.popleft()
        self._in_flight += 1
        self._spend(tokens)
        self._wake_head()  # the next caller may fit as well

    def _spend(self, tokens: int) -> None:
        if self._requests is not None:
            self._requests.level -= 1
        if self._tokens is not None:
            self._tokens.level -= tokens

    def _wake_head(self) -> None:
        if self._queue and (wake := self._queue[0].wake) is not None:
            wake.set()


@asynccontextmanager
async def _hold_all(chain: list[RateLimiter], tokens: int) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for limiter in chain:
            await stack.enter_async_context(limiter.acquire(tokens))
        yield


_UNLIMITED = nullcontext()  # no limiter over a call: nothing to wait for


class LimiterRegistry:
    """The limiters of one Runtime: one per provider, and one per model where configured.

    ``limits`` maps ``"provider"`` or ``"provider:model"`` to ``Limits``; a key given there
    replaces the default for that key as a whole (``defaults``: the providers' registered
    limits, as a mapping or a lookup called with the same keys, for plugins loaded lazily).
    Limiters are built on first use and shared by every call after.
    """

    def __init__(
        self,
        limits: Mapping[str, Limits] | None = None,
        *,
        defaults: Mapping[str, Limits] | Callable[[str], Limits | None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._limits = dict(limits or {})
        for key, value in self._limits.items():
            if not isinstance(value, Limits):
                raise TypeError(f"limits[{key!r}] must be a plait.Limits, "
                                f"got {type(value).__name__}")
        if defaults is None:
            self._defaults: Callable[[str], Limits | None] = lambda _key: None
        elif callable(defaults):
            self._defaults = defaults
        else:
            self._defaults = dict(defaults).get
        self._clock = clock
        self._built: dict[str, RateLimiter | None] = {}
        self._chains: dict[tuple[str, str], list[RateLimiter]] = {}

    def get(self, provider: str, model: str | None = None) -> RateLimiter | None:
        """The shared limiter for a provider, or for one of its models; ``None``: unlimited."""
        key = provider if model is None else f"{provider}:{model}"
        if key not in self._built:
            limits = self._limits.get(key) or self._defaults(key)
            if limits is None or limits == Limits():  # unlimited: nothing to wait for
                self._built[key] = None
            else:
                self._built[key] = RateLimiter(limits, self._clock)
        return self._built[key]

    def _chain(self, provider: str, model: str) -> list[RateLimiter]:
        # Narrow before wide, always: a call never holds a provider-wide slot while it
        # waits on its own model's limit, and one order for everyone rules out deadlock.
        key = (provider, model)
        if key not in self._chains:  # asked for on every call: worked out once
            chain = (self.get(provider, model), self.get(provider))
            self._chains[key] = [limiter for limiter in chain if limiter is not None]
        return self._chains[key]

    def acquire(self, provider: str, model: str,
                tokens: int = 0) -> AbstractAsyncContextManager[None]:
        """Hold the model's limiter (if any), then the provider's, for one call."""
        chain = self._chain(provider, model)
        if not chain:
            return _UNLIMITED
        if len(chain) == 1:
            return chain[0].acquire(tokens)
        return _hold_all(chain, tokens)

    def cool_down(self, provider: str, model: str, seconds: float) -> None:
        """Hold every call to ``provider:model`` for ``seconds``, limited or not."""
        key = f"{provider}:{model}"
        limiter = self.get(provider, model)
        if limiter is None:  # unlimited until now: a limiter of no limits can still wait
            limiter = self._built[key] = RateLimiter(Limits(), self._clock)
            self._chains.pop((provider, model), None)
        limiter.cool_down(seconds)

    def settle(self, provider: str, model: str, estimated: int, actual: int) -> None:
        """Correct both token buckets once the call's real token count is known."""
        for limiter in self._chain(provider, model):
            limiter.settle(estimated, actual)
