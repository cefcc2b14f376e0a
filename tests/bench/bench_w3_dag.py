"""W3: a DAG whose best schedule is eager, against a hand-written anyio schedule.

extract(0.1 s) -> classify(0.1 s) -> {fetch_market(1.0 s), fetch_user(0.2 s)};
fetch_user -> enrich_user(0.7 s); {fetch_market, enrich_user} -> calculate(0.1 s).
The critical path is 1.3 s (a level-by-level scheduler needs 2.0 s). Target: at most
1.03x the critical path. The baseline starts each step by hand the moment its inputs are
ready, with anyio events.
"""

from __future__ import annotations

import anyio
import plait
from _harness import alternate, header, line, median, parse_args, verdict

DURATIONS = {"extract": 0.1, "classify": 0.1, "fetch_market": 1.0, "fetch_user": 0.2,
             "enrich_user": 0.7, "calculate": 0.1}
DEPS = {"classify": ["extract"], "fetch_market": ["classify"], "fetch_user": ["classify"],
        "enrich_user": ["fetch_user"], "calculate": ["fetch_market", "enrich_user"]}
CRITICAL_PATH = 1.3


def w3() -> plait.Pipeline:
    def work(name: str) -> plait.FunctionStep:
        @plait.step(name=name)
        async def step(ctx: plait.StepContext) -> str:
            await anyio.sleep(DURATIONS[name])
            return name

        return step

    return plait.Pipeline("w3", steps={name: work(name) for name in DURATIONS}, deps=DEPS)


async def baseline() -> str:
    done = {name: anyio.Event() for name in DURATIONS}

    async def step(name: str) -> None:
        for dep in DEPS.get(name, []):
            await done[dep].wait()
        await anyio.sleep(DURATIONS[name])
        done[name].set()

    async with anyio.create_task_group() as tg:
        for name in DURATIONS:
            tg.start_soon(step, name)
    return "calculate"


async def main(rounds: int) -> None:
    pipe = w3()
    runtime = plait.Runtime(entry_points=False)

    async def run_plait() -> None:
        assert (await pipe.run({}, runtime=runtime)).output == "calculate"

    samples = await alternate({"plait": run_plait, "baseline": baseline}, rounds, warmup=0)
    wall, base = median(samples["plait"]), median(samples["baseline"])
    header(f"W3: eager DAG, critical path {CRITICAL_PATH} s (median of {rounds})")
    line("plait", f"{wall:.3f} s = {wall / CRITICAL_PATH:.3f}x ideal",
         verdict(wall <= 1.03 * CRITICAL_PATH, "<= 1.03x"))
    line("baseline: hand-scheduled anyio", f"{base:.3f} s = {base / CRITICAL_PATH:.3f}x ideal")
    line("ratio to baseline", f"{wall / base:.3f}x")


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=3)
    anyio.run(main, args.rounds, backend=args.backend)
