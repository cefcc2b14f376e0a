"""Tracing overhead on W1 (a chain of 100 trivial steps): untraced vs plait-otel.

Target: with plait-otel on an SDK ``TracerProvider`` (spans built, processed and handed to
an exporter that drops them), at most 2x the untraced time per step. Also shown: the
tracer with no SDK configured (the default when an application sets none up), the step
log, and the floor any tracer starts from: a wrapper that makes one bare SDK span per step
and nothing else. CPU time of this process is the overhead itself (a batch processor's
worker thread included); on a busy machine wall time mostly measures the neighbours.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import anyio
import plait
from _harness import alternate, header, line, median, parse_args, verdict
from bench_w1_chain import STEPS, chain
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

RUNS_PER_SAMPLE = 5
TARGET = 2.0


class DropExporter(SpanExporter):
    """Receives every span and keeps none: the SDK's cost without any I/O."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class BareSpans:
    """The floor: one SDK span per step (start, make current, end), nothing on it."""

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


def _sdk(processor: Callable[[], Any]) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(processor())
    return provider


def _runtime(*plugins: object, tracers: Sequence[str] = ()) -> plait.Runtime:
    return plait.Runtime(entry_points=False, tracers=tracers, plugins=plugins)


async def main(rounds: int) -> None:
    pipe = chain()
    providers = {
        "batch": _sdk(lambda: BatchSpanProcessor(DropExporter())),
        "simple": _sdk(lambda: SimpleSpanProcessor(DropExporter())),
        "memory": _sdk(lambda: SimpleSpanProcessor(InMemorySpanExporter())),
    }
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLAIT_STEP_LOG"] = os.path.join(tmp, "steps.jsonl")
        runtimes = {
            "untraced": _runtime(),
            "otel, no SDK configured": _runtime(OtelTracer()),
            "otel, SDK + batch processor": _runtime(OtelTracer(providers["batch"])),
            "otel, SDK + simple processor": _runtime(OtelTracer(providers["simple"])),
            "otel, SDK + in-memory exporter": _runtime(OtelTracer(providers["memory"])),
            "floor: a bare SDK span per step": _runtime(BareSpans(providers["simple"])),
            "steplog to a file": _runtime(tracers=["steplog"]),
        }

        def runs(runtime: plait.Runtime) -> Callable[[], Awaitable[None]]:
            async def sample() -> None:
                for _ in range(RUNS_PER_SAMPLE):
                    result = await pipe.run({}, runtime=runtime)
                assert result.output == STEPS - 1

            return sample

        samples = await alternate({name: runs(rt) for name, rt in runtimes.items()}, rounds,
                                  warmup=2)
    for provider in providers.values():
        provider.shutdown()

    per_step = 1e6 / (RUNS_PER_SAMPLE * STEPS)
    base_cpu = median(samples["untraced"], 1) * per_step
    base_wall = median(samples["untraced"]) * per_step
    header(f"Tracing overhead on W1, {STEPS} trivial steps (median of {rounds} samples, "
           "µs/step, ratio to untraced)")
    for name in runtimes:
        cpu, wall = median(samples[name], 1) * per_step, median(samples[name]) * per_step
        judged = name.startswith("otel, SDK")
        line(name, f"CPU {cpu:6.1f} {cpu / base_cpu:5.2f}x  wall {wall:6.1f} "
             f"{wall / base_wall:5.2f}x",
             verdict(cpu / base_cpu <= TARGET, f"<= {TARGET:g}x CPU") if judged else "")


if __name__ == "__main__":
    args = parse_args(__doc__, rounds=30)
    anyio.run(main, args.rounds, backend=args.backend)
