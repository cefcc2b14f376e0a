"""What the benchmarks share: the command line, repeated timing, and the report format.

Each ``bench_*.py`` is a script (``python tests/bench/bench_w1_chain.py``); ``python -m
tests.bench`` runs them all, each in a fresh process. A workload is measured next to a raw
anyio baseline of the same work, in the same process and alternating with it, so load
elsewhere on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sniffio

# The workload benchmarks measure the engine, so they record no runs (and never write to
# the user's run store); bench_store.py measures recording, with stores of its own.
os.environ.setdefault("PLAIT_STORE", "off")


def parse_args(doc: str | None, rounds: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--rounds", type=int, default=rounds,
                        help=f"timed repetitions of each setup (default {rounds})")
    return parser.parse_args()


async def alternate(setups: dict[str, Callable[[], Awaitable[Any]]], rounds: int,
                    warmup: int = 1) -> dict[str, list[tuple[float, float]]]:
    """Run every setup once per round, round-robin; ``(wall s, CPU s)`` per run."""
    for run in setups.values():
        for _ in range(warmup):
            await run()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in setups}
    for _ in range(rounds):
        for name, run in setups.items():
            wall, cpu = time.perf_counter(), time.process_time()
            await run()
            samples[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return samples


def median(samples: list[tuple[float, float]], which: int = 0) -> float:
    """Median wall (``which=0``) or CPU (``which=1``) time."""
    return statistics.median(s[which] for s in samples)


def header(title: str) -> None:
    print(f"\n{title} [{sniffio.current_async_library()}]")


def line(label: str, value: str, verdict: str = "") -> None:
    print(f"  {label:44} {value:>30}  {verdict}")


def verdict(ok: bool, target: str) -> str:
    return f"{'ok  ' if ok else 'MISS'} (target {target})"
