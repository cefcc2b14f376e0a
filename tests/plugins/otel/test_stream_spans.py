"""A streamed model call is one span, with its time to first token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plait
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from plait_otel import OtelTracer
from plait_testing import Chunks, FakeProvider, provider_plugin

FIRST_TOKEN_AFTER = 0.05  # the fake's latency before its first chunk


@pytest.fixture
def traced(register_plugin: Callable[..., Any], tracer_provider: Any) -> OtelTracer:
    return register_plugin(OtelTracer(tracer_provider=tracer_provider))


async def _stream(runtime: plait.Runtime) -> None:
    async with plait.Agent("fake:writer").stream("q", runtime=runtime) as stream:
        async for _ in stream:
            pass


async def test_a_stream_span_has_its_time_to_first_token(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    fake = FakeProvider(["one two three"], latency=FIRST_TOKEN_AFTER, chunk_delay=0.01)
    register_plugin(provider_plugin(fake))
    await _stream(plait_runtime)
    [span] = [s for s in span_exporter.get_finished_spans() if s.name == "chat writer"]
    attrs = dict(span.attributes or {})
    assert attrs["plait.streamed"] is True
    ttft = attrs["plait.time_to_first_token_s"]
    assert ttft >= FIRST_TOKEN_AFTER
    assert span.end_time is not None
    assert span.start_time is not None
    assert ttft < (span.end_time - span.start_time) / 1e9  # before the last chunk
    assert attrs["gen_ai.usage.output_tokens"] == 3  # the assembled reply's usage


async def test_a_broken_stream_span_fails_with_its_time_to_first_token(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    register_plugin(provider_plugin(FakeProvider([Chunks("a", plait.ProviderUnavailable)])))
    with pytest.raises(plait.StreamInterrupted):
        await _stream(plait_runtime)
    [span] = [s for s in span_exporter.get_finished_spans() if s.name == "chat writer"]
    assert span.status.status_code == StatusCode.ERROR
    assert dict(span.attributes or {})["plait.time_to_first_token_s"] >= 0


async def test_a_call_that_did_not_stream_has_neither(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    register_plugin(provider_plugin(FakeProvider(["x"])))
    await plait.Agent("fake:writer").ask("q", runtime=plait_runtime)
    [span] = span_exporter.get_finished_spans()
    assert "plait.streamed" not in (span.attributes or {})
    assert "plait.time_to_first_token_s" not in (span.attributes or {})
