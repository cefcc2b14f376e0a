"""Run store: the same runs with the store on (the default) and off, as ratios.

W1 (a chain of 100 trivial steps, µs per step) and W2 (20,000 items x 50 ms fake calls,
limit 2,000) from ``bench_w1_chain`` and ``bench_w2_fanout``, each run alternately on a
Runtime that records to a fresh SQLite file and on one with ``store="off"``. Target: W2
with the store on within 1.3x of the same run with it off; the W1 figure is reported.
Every run's end waits for its rows to be committed, so the time includes the writes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio
import plait
from _harness import alternate, header, line, median, parse_args, verdict
from bench_w1_chain import STEPS, chain
from bench_w2_fanout import fanout_pipeline

RUNS_PER_SAMPLE = 20


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        on = plait.Runtime(entry_points=False, store=Path(tmp) / "runs.db")
        off = plait.Runtime(entry_points=False, store="off")
        await w1(on, off, rounds)
        await w2(on, off, max(5, rounds // 3))
        assert on.store is not None
        recorded = len(await on.store.runs(limit=100_000))
        line("runs recorded in the store", f"{recorded:,}")
        await on.aclose()


async def w1(on: plait.Runtime, off: plait.Runtime, rounds: int) -> None:
    pipe = chain()

    def runs(runtime: plait.Runtime) -> object:
        async def run() -> None:
            for _ in range(RUNS_PER_SAMPLE):
                result = await pipe.run({}, runtime=runtime)
            assert result.output == STEPS - 1
        return run

    samples = await alternate({"on": runs(on), "off": runs(off)}, rounds)  # type: ignore[dict-item]
    per_step = 1e6 / (RUNS_PER_SAMPLE * STEPS)
    with_store, without = median(samples["on"]) * per_step, median(samples["off"]) * per_step
    header(f"W1 + store: chain of {STEPS} trivial steps (median of {rounds} samples)")
    line("store on, wall", f"{with_store:.1f} µs/step")
    line("store off, wall", f"{without:.1f} µs/step")
    line("store on / off", f"{with_store / without:.2f}x",
         f"(+{with_store - without:.1f} µs/step to record each step)")


async def w2(on: plait.Runtime, off: plait.Runtime, rounds: int) -> None:
    n, limit = 20_000, 2_000
    pipe = fanout_pipeline(n, limit)

    def run(runtime: plait.Runtime) -> object:
        async def once() -> None:
            assert (await pipe.run({}, runtime=runtime)).output == n
        return once

    samples = await alternate({"on": run(on), "off": run(off)}, rounds)  # type: ignore[dict-item]
    with_store, without = median(samples["on"]), median(samples["off"])
    cpu_on, cpu_off = median(samples["on"], 1), median(samples["off"], 1)
    header(f"W2 + store: {n:,} items x 50 ms, limit {limit:,} (median of {rounds})")
    line("store on, wall", f"{with_store:.3f} s")
    line("store off, wall", f"{without:.3f} s")
    line("store on / off, wall", f"{with_store / without:.3f}x",
         verdict(with_store / without <= 1.3, "<= 1.3x"))
    line("store on / off, CPU of this process", f"{cpu_on / cpu_off:.2f}x")


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=18)
    anyio.run(main, args.rounds, backend=args.backend)
