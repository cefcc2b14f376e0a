"""W1: a chain of trivial steps, in µs per step, against the same coroutines awaited.

Target: at most 15 µs per step for 100 steps passing a number along. The baseline is the
same work with no engine at all: coroutines awaited one after the other, each adding one
to the last one's result.

With growing state (each step appends to the list it was given, as chains that carry a
conversation or a document do), the target is at most 12 µs per step at 10, 100 and 1,000
steps, for steps that declare their output type (``-> list[int]``): their outputs are
trusted, not walked. Undeclared steps are shown too: each output is walked, so their cost
grows with the state.
"""

from __future__ import annotations

from typing import Any

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


def growing(steps: int, *, declared: bool) -> plait.Pipeline:
    def make(prev: str | None) -> plait.FunctionStep:
        async def append(ctx: plait.StepContext) -> list[int]:
            return [] if prev is None else [*ctx.dep(prev), len(ctx.dep(prev))]

        if not declared:
            del append.__annotations__["return"]
        return plait.step(append)

    ids = [f"s{i}" for i in range(steps)]
    return plait.Pipeline("w1-growing", steps={sid: make(ids[i - 1] if i else None)
                                               for i, sid in enumerate(ids)},
                          deps={sid: [ids[i - 1]] for i, sid in enumerate(ids) if i})


async def add_one(x: int) -> int:
    return x + 1


async def append_one(state: list[int]) -> list[int]:
    return [*state, len(state)]


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
    await growing_state(runtime, rounds)


async def growing_state(runtime: plait.Runtime, rounds: int) -> None:
    header(f"W1, growing state: each step appends to the list (median of {rounds} samples)")
    for steps in (10, 100, 1_000):
        declared, undeclared = growing(steps, declared=True), growing(steps, declared=False)
        runs = max(1, 2_000 // steps)

        def timed(pipe: plait.Pipeline, runs: int = runs, steps: int = steps) -> Any:
            async def run() -> None:
                for _ in range(runs):  # one result alive at a time, as in an application
                    assert len((await pipe.run({}, runtime=runtime)).output) == steps - 1
            return run

        async def baseline(runs: int = runs, steps: int = steps) -> None:
            for _ in range(runs):
                states: dict[int, list[int]] = {0: []}  # every state kept, as a result does
                for i in range(1, steps):
                    states[i] = await append_one(states[i - 1])

        samples = await alternate({"declared": timed(declared),
                                   "undeclared": timed(undeclared), "baseline": baseline},
                                  max(5, rounds // 3))
        per_step = 1e6 / (runs * steps)
        wall = median(samples["declared"]) * per_step
        loose = median(samples["undeclared"]) * per_step
        base = median(samples["baseline"]) * per_step
        line(f"{steps:,} steps, declared -> list[int]", f"{wall:.1f} µs/step",
             verdict(wall <= 12, "<= 12 µs/step"))
        line(f"{steps:,} steps, undeclared (walked)", f"{loose:.1f} µs/step")
        line(f"{steps:,} steps, baseline: awaited coroutines", f"{base:.2f} µs/await")


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=30)
    anyio.run(main, args.rounds, backend=args.backend)
