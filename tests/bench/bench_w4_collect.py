"""W4: 100 items of which 7 raise, with on_error="collect": 93 values and 7 errors back in
one call, against a raw anyio task group that catches per item.

The target is the shape of the answer (every value and every error, in input order, from a
single call); the time per call is printed next to the baseline's.
"""

from __future__ import annotations

import anyio
import plait
from _harness import alternate, header, line, median, parse_args, verdict

N = 100
FAILING = frozenset({3, 14, 15, 42, 65, 88, 99})
RUNS_PER_SAMPLE = 20


class ItemFailed(Exception):
    pass


async def item(i: int) -> int:
    await anyio.lowlevel.checkpoint()
    if i in FAILING:
        raise ItemFailed(f"item {i}")
    return i


async def baseline() -> tuple[list[int], list[tuple[int, BaseException]]]:
    outcomes: list[tuple[int, int | None, BaseException | None]] = []

    async def one(i: int) -> None:
        try:
            outcomes.append((i, await item(i), None))
        except Exception as exc:
            outcomes.append((i, None, exc))

    async with anyio.create_task_group() as tg:
        for i in range(N):
            tg.start_soon(one, i)
    outcomes.sort(key=lambda o: o[0])
    return ([v for _, v, e in outcomes if e is None],  # type: ignore[misc]
            [(i, e) for i, _, e in outcomes if e is not None])


async def main(rounds: int) -> None:
    runtime = plait.Runtime(entry_points=False)
    last: list[plait.FanOutResult] = []  # only the latest, so no run leaves garbage behind

    async def collect(ctx: plait.StepContext) -> int:
        result = await ctx.map(item, range(N), on_error="collect")
        last[:] = [result]
        return len(result.values)

    pipe = plait.Pipeline("w4", steps={"collect": collect})

    async def run_plait() -> None:
        for _ in range(RUNS_PER_SAMPLE):
            await pipe.run({}, runtime=runtime)

    async def run_baseline() -> None:
        for _ in range(RUNS_PER_SAMPLE):
            values, errors = await baseline()
        assert (len(values), len(errors)) == (N - len(FAILING), len(FAILING))

    samples = await alternate({"plait": run_plait, "baseline": run_baseline}, rounds)
    result = last[0]
    shape_ok = (list(result.values) == [i for i in range(N) if i not in FAILING]
                and [e.index for e in result.errors] == sorted(FAILING)
                and all(e.error.type == "ItemFailed" for e in result.errors)
                and result.total == N and not result.ok)
    per_call = 1e6 / RUNS_PER_SAMPLE
    wall, base = median(samples["plait"]) * per_call, median(samples["baseline"]) * per_call
    cpu, base_cpu = (median(samples["plait"], 1) * per_call,
                     median(samples["baseline"], 1) * per_call)
    header(f"W4: {N} items, {len(FAILING)} raise, on_error='collect' (median of {rounds})")
    line("plait: values and errors from one call",
         f"{len(result.values)} values, {len(result.errors)} errors",
         verdict(shape_ok, "93 values + 7 errors, input order"))
    line("plait, wall per call", f"{wall:.0f} µs ({wall / N:.1f} µs/item)")
    line("baseline: anyio task group, wall per call", f"{base:.0f} µs ({base / N:.1f} µs/item)")
    line("ratio to baseline", f"{wall / base:.2f}x")
    line("CPU of this process per call, plait / baseline",
         f"{cpu:.0f} / {base_cpu:.0f} µs = {cpu / base_cpu:.2f}x")


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=30)
    anyio.run(main, args.rounds, backend=args.backend)
