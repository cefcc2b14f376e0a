"""plait-cache: a hit against a miss and against no cache, on an instant fake provider.

- ``agent.ask`` with no cache, a miss (a new prompt each time: lookup, send, write) and a
  hit (the same prompt: lookup only), per call; the raw baseline is awaiting the fake
  provider's ``complete`` directly. A hit skips the budget, the limiter and the provider,
  so it should cost about what the lookup does.
- The store alone: stdlib sqlite3 (what plait-cache uses) against diskcache (when it is
  installed), 1 KB entries, per get and per set. This decided the choice.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from pathlib import Path

import anyio
import plait
import plait_cache
from _harness import header, line, parse_args
from plait_testing import PRICES, FakeProvider, provider_plugin

N = 2000
TEXT = "x" * 1000


def per_call(seconds: float, n: int = N) -> str:
    return f"{seconds / n * 1e6:8.1f} µs/call"


async def calls(tmp: Path) -> None:
    fake = FakeProvider(lambda request: TEXT)
    agent = plait.Agent("fake:priced", temperature=0)
    request = plait.ModelRequest("priced", (plait.Message("user", "hi"),))

    def rt(**cache: object) -> plait.Runtime:
        return plait.Runtime(entry_points=False, settings={"cache": cache},
                             plugins=[plait_cache, provider_plugin(fake, prices=PRICES)])

    async def timed(runtime: plait.Runtime, prompts: object) -> float:
        started = time.perf_counter()
        for prompt in itertools.islice(prompts, N):  # type: ignore[call-overload]
            await agent.ask(prompt, runtime=runtime)
        return time.perf_counter() - started

    started = time.perf_counter()
    for _ in range(N):
        await fake.complete(request)
    raw = time.perf_counter() - started
    plain = await timed(rt(path=None), itertools.repeat("hi"))
    cached = rt(path=str(tmp / "calls.db"))
    miss = await timed(cached, (f"prompt {i}" for i in itertools.count()))
    hit = await timed(cached, itertools.repeat("prompt 0"))
    header("agent.ask on an instant fake provider (1 KB replies)")
    line("raw: await provider.complete", per_call(raw))
    line("agent.ask, no cache", per_call(plain), f"{plain / raw:5.1f}x raw")
    line("agent.ask, cache miss (lookup + send + write)", per_call(miss), f"{miss / raw:5.1f}x raw")
    line("agent.ask, cache hit", per_call(hit), f"{hit / raw:5.1f}x raw")


def stores(tmp: Path) -> None:
    print("\nthe store alone, 1 KB entries")
    store = plait_cache.Store(tmp / "store.db")
    response = plait.ModelResponse(TEXT)
    started = time.perf_counter()
    for i in range(N):
        store.put(f"k{i}", "fake", "m", response, plait.usd("0.001"))
    put = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(N):
        store.get(f"k{i}")
    get = time.perf_counter() - started
    line("sqlite3 (WAL): set", per_call(put))
    line("sqlite3 (WAL): get (and count the hit)", per_call(get))
    try:
        import diskcache  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        line("diskcache", "not installed")
        return
    dc = diskcache.Cache(str(tmp / "diskcache"))
    value = {"text": TEXT, "parsed": None, "finish_reason": None, "model": None}
    started = time.perf_counter()
    for i in range(N):
        dc.set(f"k{i}", value)
    put = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(N):
        dc.get(f"k{i}")
    get = time.perf_counter() - started
    line("diskcache: set", per_call(put))
    line("diskcache: get", per_call(get))


def main() -> None:
    args = parse_args(__doc__, rounds=1)
    with tempfile.TemporaryDirectory() as tmp:
        anyio.run(calls, Path(tmp), backend=args.backend)
        stores(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
