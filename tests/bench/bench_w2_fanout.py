"""W2: fan-out of N items, each awaiting a 50 ms fake call, against a raw anyio pool.

Targets: 2,000 items at limit 200 within 1.05x the ideal 0.5 s; 20,000 items at limit
2,000 within 1.2x the ideal 0.5 s; a FanOut item's CPU within 1.1x a ctx.map item's (it
also makes the item's own context, whose scope waits until it is used); under 1 KB of
peak memory per item (tracemalloc, measured in a separate untimed run, since tracing
allocations slows everything down). The baseline is the same work with no engine:
``limit`` anyio tasks pulling items.
"""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import anyio
import plait
from _harness import alternate, header, line, median, parse_args, verdict

CALL = 0.05  # seconds per fake call


async def fake_call(item: int) -> int:
    await anyio.sleep(CALL)
    return item


def fanout_pipeline(n: int, limit: int) -> plait.Pipeline:
    async def fan(ctx: plait.StepContext) -> int:
        result = await ctx.map(fake_call, range(n), limit=limit)
        return len(result.values)

    return plait.Pipeline("w2", steps={"fan": fan})


def declarative_pipeline(n: int, limit: int) -> plait.Pipeline:
    async def worker(ctx: plait.StepContext, item: int) -> int:
        return await fake_call(item)

    return plait.Pipeline("w2", steps={"fan": plait.FanOut(worker, over="items", limit=limit)})


async def baseline(n: int, limit: int) -> list[Any]:
    results: list[Any] = [None] * n
    pending = iter(range(n))

    async def worker() -> None:
        for i in pending:
            results[i] = await fake_call(i)

    async with anyio.create_task_group() as tg:
        for _ in range(min(limit, n)):
            tg.start_soon(worker)
    return results


async def measure(n: int, limit: int, target: float, rounds: int) -> None:
    runtime = plait.Runtime(entry_points=False)
    mapped, declarative = fanout_pipeline(n, limit), declarative_pipeline(n, limit)

    async def run_map() -> None:
        assert (await mapped.run({}, runtime=runtime)).output == n

    async def run_fanout() -> None:
        result = await declarative.run({"items": range(n)}, runtime=runtime)
        assert len(result.output.values) == n

    async def run_baseline() -> None:
        assert len(await baseline(n, limit)) == n

    samples = await alternate({"ctx.map": run_map, "plait.FanOut": run_fanout,
                               "baseline": run_baseline}, rounds)
    ideal = math.ceil(n / limit) * CALL
    header(f"W2: {n:,} items x {CALL * 1000:.0f} ms, limit {limit:,} "
           f"(ideal {ideal:.2f} s, median of {rounds})")
    base = median(samples["baseline"])
    for name in ("ctx.map", "plait.FanOut"):
        wall = median(samples[name])
        line(f"plait {name}", f"{wall:.3f} s = {wall / ideal:.3f}x ideal",
             verdict(wall <= target * ideal, f"<= {target}x"))
        line("  ratio to baseline", f"{wall / base:.3f}x")
    line("baseline: raw anyio pool", f"{base:.3f} s = {base / ideal:.3f}x ideal")
    cpu = {name: median(samples[name], 1) / n * 1e6 for name in samples}
    for name in samples:
        line(f"CPU per item: {name}", f"{cpu[name]:.1f} µs")
    ratio = cpu["plait.FanOut"] / cpu["ctx.map"]
    line("  FanOut to ctx.map", f"{ratio:.2f}x", verdict(ratio <= 1.1, "<= 1.1x"))

    if n >= 20_000:  # memory, untimed
        tracemalloc.start()
        await run_map()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        tracemalloc.start()
        await run_baseline()
        _, base_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        line("plait ctx.map peak memory", f"{peak / n:.0f} B/item",
             verdict(peak / n < 1024, "< 1 KB/item"))
        line("baseline peak memory", f"{base_peak / n:.0f} B/item")


async def main(rounds: int) -> None:
    await measure(2_000, 200, 1.05, rounds)
    await measure(20_000, 2_000, 1.2, rounds)


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=5)
    anyio.run(main, args.rounds, backend=args.backend)
