"""plait.evaluate: what scoring and reporting add per case, over running the cases bare.

The same cases (a one-step pipeline asking an instant fake provider) are run three ways,
alternating: a raw anyio loop awaiting the provider directly; ``pipe.run`` per case in a
task group bounded like the eval's; and ``plait.evaluate`` (run, unstructure, score with
``exact``, summarize). The eval's overhead per case is its time minus the bare runs'.
"""

from __future__ import annotations

import sys

import anyio
import plait
from _harness import alternate, header, line, median, parse_args
from plait_testing import PRICES, FakeProvider, provider_plugin

CASES = 500
LIMIT = 4


async def bench(rounds: int) -> None:
    fake = FakeProvider(lambda request: "yes")
    rt = plait.Runtime(entry_points=False, plugins=[provider_plugin(fake, prices=PRICES)])
    agent = plait.Agent("fake:priced", temperature=0)
    request = plait.ModelRequest("priced", (plait.Message("user", "q"),))

    @plait.step
    async def ask(ctx: plait.StepContext) -> str:
        return str((await ctx.ask(agent, ctx.input("q"))).output)

    pipe = plait.Pipeline("ask", steps={"ask": ask})
    cases = [{"inputs": {"q": f"question {i}"}, "expected": "yes"} for i in range(CASES)]

    async def bounded(one: object) -> None:
        limiter = anyio.CapacityLimiter(LIMIT)

        async def run(case: dict[str, object]) -> None:
            async with limiter:
                await one(case)  # type: ignore[operator]

        async with anyio.create_task_group() as tg:
            for case in cases:
                tg.start_soon(run, case)

    async def raw() -> None:
        await bounded(lambda case: fake.complete(request))

    async def bare() -> None:
        await bounded(lambda case: pipe.run(case["inputs"], runtime=rt))

    async def evaluated() -> None:
        await plait.evaluate(pipe, cases, runtime=rt, limit=LIMIT)

    samples = await alternate({"raw": raw, "bare": bare, "eval": evaluated}, rounds)
    r, b, e = (median(samples[k]) for k in ("raw", "bare", "eval"))
    header(f"{CASES} cases, {LIMIT} at a time, one instant model call each")
    line("raw anyio: await provider.complete", f"{r / CASES * 1e6:8.1f} µs/case")
    line("pipe.run per case", f"{b / CASES * 1e6:8.1f} µs/case", f"{b / r:5.1f}x raw")
    line("plait.evaluate", f"{e / CASES * 1e6:8.1f} µs/case", f"{e / r:5.1f}x raw")
    line("evaluate's own overhead per case", f"{(e - b) / CASES * 1e6:8.1f} µs/case",
         f"{e / b:5.2f}x pipe.run")


def main() -> None:
    args = parse_args(__doc__, rounds=5)
    anyio.run(bench, args.rounds, backend=args.backend)


if __name__ == "__main__":
    sys.exit(main())
