"""Tracing overhead on W1 (a chain of 100 trivial steps): untraced vs plait-otel.

Run on demand, never as a test: ``.venv/bin/python tests/bench/bench_tracing.py
[--backend asyncio|trio] [--rounds 40]``. The target: at most 2x the untraced per-step
time with plait-otel on an SDK ``TracerProvider`` (spans built, processed and handed to an
exporter that drops them).

Setups run round-robin, one W1 run each per round, so a burst of load elsewhere on the
machine hits them all alike. Each run is timed twice: CPU time of this process (every
thread, so a batch processor's worker counts) and wall time. The CPU time is the
overhead itself; on a busy machine wall time mostly measures the neighbours. Prints the
median per setup and its ratio to untraced, and the floor any tracer starts from: a
wrapper that makes one bare SDK span per step and nothing else.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import anyio
import plait
from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from plait_otel import OtelTracer

STEPS = 100


class DropExporter(SpanExporter):
    """Receives every span and keeps none: the SDK's cost without any I/O."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def w1() -> plait.Pipeline:
    """W1: step i adds one to step i-1; nothing but the engine's own work."""

    def make(prev: str | None) -> plait.FunctionStep:
        @plait.step
        async def add_one(ctx: plait.StepContext) -> int:
            return 0 if prev is None else int(ctx.dep(prev)) + 1

        return add_one

    ids = [f"s{i}" for i in range(STEPS)]
    return plait.Pipeline("w1", steps={sid: make(ids[i - 1] if i else None)
                                       for i, sid in enumerate(ids)},
                          deps={sid: [ids[i - 1]] for i, sid in enumerate(ids) if i})


def _sdk(processor: Callable[[], Any]) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(processor())
    return provider


def _traced(provider: TracerProvider) -> plait.Runtime:
    return plait.Runtime(entry_points=False, tracers=[],
                         plugins=[OtelTracer(tracer_provider=provider)])


class BareSpans:
    """The floor of any tracer: one SDK span per step (start, make current, end), no
    attributes, no run span."""

    def __init__(self, provider: TracerProvider) -> None:
        self.tracer = provider.get_tracer("bench")

    @plait.hookimpl
    def plait_wrap_step(self) -> Iterator[None]:
        span = self.tracer.start_span("bare")
        token = context.attach(trace.set_span_in_context(span))
        try:
            yield
        finally:
            context.detach(token)
            span.end()


async def _time(run: Callable[[], Any]) -> tuple[float, float]:
    """(CPU µs, wall µs) per step of one run."""
    cpu, wall = time.process_time(), time.perf_counter()
    await run()
    return ((time.process_time() - cpu) / STEPS * 1e6,
            (time.perf_counter() - wall) / STEPS * 1e6)


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        providers = {
            "batch": _sdk(lambda: BatchSpanProcessor(DropExporter())),
            "simple": _sdk(lambda: SimpleSpanProcessor(DropExporter())),
            "memory": _sdk(lambda: SimpleSpanProcessor(InMemorySpanExporter())),
        }
        os.environ["PLAIT_STEP_LOG"] = os.path.join(tmp, "steps.jsonl")
        pipe = w1()
        runtimes: dict[str, plait.Runtime] = {
            "untraced": plait.Runtime(entry_points=False, tracers=[]),
            "otel, no SDK configured": plait.Runtime(
                entry_points=False, tracers=[], plugins=[OtelTracer()]),
            "otel, SDK + batch processor": _traced(providers["batch"]),
            "otel, SDK + simple processor": _traced(providers["simple"]),
            "otel, SDK + in-memory exporter": _traced(providers["memory"]),
            "floor: a bare SDK span per step": plait.Runtime(
                entry_points=False, tracers=[], plugins=[BareSpans(providers["simple"])]),
            "steplog to a file": plait.Runtime(entry_points=False, tracers=["steplog"]),
        }
        runs: dict[str, Callable[[], Any]] = {
            name: (lambda rt=rt: pipe.run({}, runtime=rt)) for name, rt in runtimes.items()}

        for run in runs.values():  # warm up: plugins load, converters build, caches fill
            for _ in range(3):
                await run()
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for _ in range(rounds):
            for name, run in runs.items():
                samples[name].append(await _time(run))

        def median(name: str, i: int) -> float:
            return statistics.median(s[i] for s in samples[name])

        import sniffio

        print(f"W1: {STEPS}-step chain, {rounds} rounds, {sniffio.current_async_library()}; "
              "median µs per step")
        print(f"{'setup':34} {'CPU':>7} {'ratio':>6} {'wall':>8} {'ratio':>6}")
        base_cpu, base_wall = median("untraced", 0), median("untraced", 1)
        for name in runs:
            cpu, wall = median(name, 0), median(name, 1)
            print(f"{name:34} {cpu:7.1f} {cpu / base_cpu:5.2f}x {wall:8.1f} "
                  f"{wall / base_wall:5.2f}x")
        for provider in providers.values():
            provider.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    anyio.run(main, args.rounds, backend=args.backend)
