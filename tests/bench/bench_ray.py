"""plait-ray against the local executor and a raw anyio baseline, on a local Ray (2 CPUs).

- CPU: 200 items of ~50 ms of pure Python each. The local executor runs sync items in
  threads, so the GIL makes it no faster than a plain loop; Ray runs them in 2 processes.
  Target: Ray at least 1.5x faster than the local executor.
- I/O: 2,000 items that each wait 50 ms (all at once locally): Ray's cost per item.
- Chunking: 100,000 trivial items, one task per item would take minutes.
- Growth: trivial items on Ray at 1,000, 10,000 and 100,000, fitted to
  ``seconds = fixed + n * per_item``, so a bigger run can be predicted; the driver's CPU
  per item is its serial share, which more workers do not divide.

Ray's start-up (seconds) and its workers' first import of plait are paid once, before any
timing. The load average is printed: on a shared machine the CPU comparison only means
something when 2 cores are free. Needs plait-ray (``make``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import plait
import plait_ray.plugin
import ray
from _harness import alternate, header, line, median, parse_args, verdict

CPU_ITEMS, IO_ITEMS, TRIVIAL_ITEMS = 200, 2_000, 100_000
GROWTH = (1_000, 10_000, 100_000)
TARGET = 1.5


def calibrate(seconds: float) -> int:
    """Loop iterations that take about ``seconds`` of CPU here."""
    n, began = 200_000, time.perf_counter()
    spin(n)
    return int(n * seconds / (time.perf_counter() - began))


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def fan_out(rt: plait.Runtime, fn: Callable[[Any], Any], n: int,
            executor: str) -> Callable[[], Awaitable[None]]:
    async def body(ctx: plait.StepContext) -> int:
        return len(await ctx.map(fn, range(n), executor=executor))

    pipe = plait.Pipeline("bench", steps={"fan": body})

    async def run() -> None:
        assert (await pipe.run({}, runtime=rt)).output == n

    return run


async def main(rounds: int) -> None:
    rt = plait.Runtime(entry_points=False, plugins=[plait_ray.plugin])
    iterations = calibrate(0.05)

    def cpu(_i: int) -> int:
        return spin(iterations)

    async def io(_i: int) -> None:
        await anyio.sleep(0.05)

    async def trivial(i: int) -> int:
        return i

    async def raw_cpu() -> None:
        for i in range(CPU_ITEMS):
            cpu(i)

    async def raw_io() -> None:
        async with anyio.create_task_group() as tg:
            for i in range(IO_ITEMS):
                tg.start_soon(io, i)

    async def raw_trivial() -> None:
        for i in range(TRIVIAL_ITEMS):
            await trivial(i)

    await fan_out(rt, trivial, 1_000, "ray")()  # workers started and plait imported in them
    header("plait-ray: 2 CPUs, local Ray")
    for title, n, fn, raw in [("CPU, 50 ms of Python", CPU_ITEMS, cpu, raw_cpu),
                              ("I/O, a 50 ms wait", IO_ITEMS, io, raw_io),
                              ("trivial", TRIVIAL_ITEMS, trivial, raw_trivial)]:
        samples = await alternate({"raw": raw, "local": fan_out(rt, fn, n, "local"),
                                   "ray": fan_out(rt, fn, n, "ray")}, rounds, warmup=0)
        base, local, remote = (median(samples[k]) for k in ("raw", "local", "ray"))
        line(f"{n:,} items, {title}: raw anyio", f"{base:8.3f} s")
        line("  local executor", f"{local:8.3f} s  {local / base:6.2f}x raw")
        line("  ray executor", f"{remote:8.3f} s  {remote / base:6.2f}x raw",
             f"local/ray {local / remote:.2f}x"
             + (f"  {verdict(local / remote >= TARGET, f'>= {TARGET}x')}" if fn is cpu else ""))

    times = {}
    for n in GROWTH:
        samples = await alternate({"ray": fan_out(rt, trivial, n, "ray")}, rounds, warmup=0)
        times[n] = median(samples["ray"])
        driver = median(samples["ray"], 1)  # CPU of this process: the serial share
        line(f"growth: {n:,} trivial items on ray", f"{times[n]:8.3f} s",
             f"{times[n] / n * 1e6:7.1f} µs an item, driver CPU {driver / n * 1e6:5.1f} µs")
    small, big = GROWTH[0], GROWTH[-1]
    per_item = (times[big] - times[small]) / (big - small)
    fixed = times[small] - small * per_item
    line("fit: seconds = fixed + n * per_item", f"{fixed:.3f} s + n * {per_item * 1e6:.1f} µs")
    line("  predicted 10,000,000 items here", f"{fixed + 1e7 * per_item:8.1f} s")
    line("load average (1 min)", f"{os.getloadavg()[0]:8.2f}")


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        anyio.run(main, args.rounds, backend=args.backend)
    finally:
        ray.shutdown()
