"""W1: a chain of 100 trivial steps, in µs per step, against 100 awaited coroutines.

Target: at most 15 µs per step. The baseline is the same work with no engine at all: 100
coroutines awaited one after the other, each adding one to the last one's result.
"""

from __future__ import annotations

import anyio
import plait
from _harness import alternate, header, line, median, parse_args, verdict

STEPS = 100
RUNS_PER_SAMPLE = 20  # one sample times 20 runs: a single run is too short to time well


def chain() -> plait.Pipeline:
    def make(prev: str | None) -> plait.FunctionStep:
        @plait.step
        async def add_one(ctx: plait.StepContext) -> int:
            return 0 if prev is None else ctx.dep(prev) + 1

        return add_one

    ids = [f"s{i}" for i in range(STEPS)]
    return plait.Pipeline("w1", steps={sid: make(ids[i - 1] if i else None)
                                       for i, sid in enumerate(ids)},
                          deps={sid: [ids[i - 1]] for i, sid in enumerate(ids) if i})


async def add_one(x: int) -> int:
    return x + 1


async def main(rounds: int) -> None:
    pipe = chain()
    runtime = plait.Runtime(entry_points=False)

    async def plait_runs() -> None:
        for _ in range(RUNS_PER_SAMPLE):
            result = await pipe.run({}, runtime=runtime)
        assert result.output == STEPS - 1

    async def baseline_runs() -> None:
        for _ in range(RUNS_PER_SAMPLE):
            x = -1
            for _ in range(STEPS):
                x = await add_one(x)
        assert x == STEPS - 1

    samples = await alternate({"plait": plait_runs, "baseline": baseline_runs}, rounds)
    per_step = 1e6 / (RUNS_PER_SAMPLE * STEPS)
    wall, cpu = median(samples["plait"]) * per_step, median(samples["plait"], 1) * per_step
    base = median(samples["baseline"]) * per_step
    header(f"W1: chain of {STEPS} trivial steps (median of {rounds} samples)")
    line("plait, wall", f"{wall:.1f} µs/step", verdict(wall <= 15, "<= 15 µs/step"))
    line("plait, CPU of this process", f"{cpu:.1f} µs/step")
    line("baseline: awaited coroutines, wall", f"{base:.2f} µs/await")
    line("ratio to baseline", f"{wall / base:.0f}x")


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=30)
    anyio.run(main, args.rounds, backend=args.backend)
