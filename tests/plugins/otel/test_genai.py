"""plait-otel and the current GenAI conventions: invoke_workflow / invoke_agent spans, the
server and response id of model calls, the GenAI client metrics, and OpenInference opt-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import plait
import plait_openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from plait_otel import OtelTracer

agent = plait.Agent(model="llamacpp:smollm2", system="Be brief.", max_tokens=5,
                    temperature=0, price=plait.Price.per_million("1", "2"))


@plait.step
async def ask(ctx: plait.StepContext) -> str:
    return str((await ctx.ask(agent, ctx.input("text"))).output)


@plait.step
async def shout(ctx: plait.StepContext) -> str:
    return ctx.dep("ask").upper()


pipe = plait.Pipeline("qa", steps={"ask": ask, "shout": shout}, deps={"shout": ["ask"]})


def _server(request: httpx.Request) -> httpx.Response:
    """llama.cpp's server on another port: the OpenAI chat API, with a reply id."""
    assert str(request.url) == "http://127.0.0.1:8081/v1/chat/completions"
    if "fail" in json.loads(request.content)["messages"][-1]["content"]:
        return httpx.Response(503, json={"error": {"message": "loading model"}})
    return httpx.Response(200, json={
        "id": "chatcmpl-7f3a", "model": "smollm2",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "hello"}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})


@pytest.fixture
def metric_reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    yield reader
    reader.shutdown()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PLAIT_OTEL_CAPTURE_CONTENT", "PLAIT_OTEL_OPENINFERENCE",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "LLAMACPP_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


async def run(tracer: OtelTracer, text: str = "hi") -> plait.PipelineResult:
    async with plait.Runtime(entry_points=False, plugins=[plait_openai, tracer], tracers=[],
                             settings={"llamacpp": {"base_url": "http://127.0.0.1:8081/v1"}},
                             transport=httpx.MockTransport(_server)) as rt:
        result: plait.PipelineResult = await pipe.run({"text": text}, runtime=rt,
                                                      run_id="run-7")
        return result


def attrs_of(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def by_name(spans: Any) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


@pytest.fixture
async def traced(tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter,
                 metric_reader: InMemoryMetricReader) -> dict[str, Any]:
    tracer = OtelTracer(tracer_provider=tracer_provider,
                        meter_provider=MeterProvider(metric_readers=[metric_reader]))
    result = await run(tracer)
    return {"result": result, "spans": by_name(span_exporter.get_finished_spans())}


async def test_the_run_is_an_invoke_workflow_span_and_steps_invoke_agent_spans(
        traced: dict[str, Any]) -> None:
    spans = traced["spans"]
    assert set(spans) == {"invoke_workflow qa", "invoke_agent ask", "invoke_agent shout",
                          "chat smollm2"}
    run_span = spans["invoke_workflow qa"]
    assert run_span.kind == SpanKind.INTERNAL
    assert attrs_of(run_span) == {**attrs_of(run_span),
                                  "gen_ai.operation.name": "invoke_workflow",
                                  "gen_ai.workflow.name": "qa", "gen_ai.agent.name": "qa",
                                  "plait.pipeline": "qa", "plait.run_id": "run-7"}
    step = spans["invoke_agent ask"]
    assert step.kind == SpanKind.INTERNAL
    assert attrs_of(step) == {**attrs_of(step), "gen_ai.operation.name": "invoke_agent",
                              "gen_ai.agent.name": "ask", "plait.step.id": "ask",
                              "plait.step.kind": "FunctionStep", "plait.status": "ok"}
    assert step.parent is not None
    assert run_span.context is not None
    assert step.parent.span_id == run_span.context.span_id
    assert not [k for s in spans.values() for k in attrs_of(s) if k.startswith(("llm.",
                                                                               "openinference"))]


async def test_a_model_call_names_its_server_and_response_and_the_engines_cost(
        traced: dict[str, Any]) -> None:
    call = traced["spans"]["chat smollm2"]
    attributes = attrs_of(call)
    assert call.kind == SpanKind.CLIENT
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == 8081
    assert attributes["gen_ai.response.id"] == "chatcmpl-7f3a"
    assert attributes["gen_ai.provider.name"] == "llamacpp"
    result: plait.PipelineResult = traced["result"]
    assert attributes["plait.cost_usd"] == str(result.usage.cost)  # the engine's, exactly
    assert result.usage.cost == plait.Price.per_million("1", "2").cost(plait.TokenCount(9, 2))


def points(reader: InMemoryMetricReader, name: str) -> list[HistogramDataPoint]:
    data = reader.get_metrics_data()
    assert data is not None
    found = [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
             if m.name == name for p in m.data.data_points]
    return [p for p in found if isinstance(p, HistogramDataPoint)]


async def test_the_genai_client_metrics_are_recorded(
        traced: dict[str, Any], metric_reader: InMemoryMetricReader) -> None:
    labels = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "llamacpp",
              "gen_ai.request.model": "smollm2", "gen_ai.response.model": "smollm2",
              "server.address": "127.0.0.1", "server.port": 8081}
    tokens = {p.attributes["gen_ai.token.type"]: p for p in
              points(metric_reader, "gen_ai.client.token.usage")}  # type: ignore[index]
    assert set(tokens) == {"input", "output"}
    assert (tokens["input"].sum, tokens["output"].sum) == (9, 2)
    assert dict(tokens["input"].attributes or {}) == {**labels, "gen_ai.token.type": "input"}
    assert tokens["input"].explicit_bounds[:3] == (1, 4, 16)  # the conventions' buckets
    [duration] = points(metric_reader, "gen_ai.client.operation.duration")
    assert duration.count == 1
    assert dict(duration.attributes or {}) == labels
    assert 0 <= duration.sum < 60
    assert duration.explicit_bounds[:2] == (0.01, 0.02)


async def test_a_failed_call_is_timed_with_its_error_type(
        tracer_provider: TracerProvider, metric_reader: InMemoryMetricReader) -> None:
    tracer = OtelTracer(tracer_provider=tracer_provider,
                        meter_provider=MeterProvider(metric_readers=[metric_reader]))
    with pytest.raises(plait.StepFailed):
        await run(tracer, "fail now")
    durations = points(metric_reader, "gen_ai.client.operation.duration")
    assert {p.attributes["error.type"] for p in durations} == {  # type: ignore[index]
        "ProviderUnavailable"}
    assert points(metric_reader, "gen_ai.client.token.usage") == []  # no reply, no tokens


@pytest.mark.parametrize("capture", [False, True])
async def test_openinference_attributes_are_an_opt_in(
        tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch, capture: bool) -> None:
    monkeypatch.setenv("PLAIT_OTEL_OPENINFERENCE", "1")
    await run(OtelTracer(tracer_provider=tracer_provider, capture_content=capture))
    spans = by_name(span_exporter.get_finished_spans())
    assert attrs_of(spans["invoke_workflow qa"])["openinference.span.kind"] == "CHAIN"
    assert attrs_of(spans["invoke_agent shout"])["openinference.span.kind"] == "CHAIN"
    call = attrs_of(spans["chat smollm2"])
    assert call == {**call, "openinference.span.kind": "LLM", "llm.system": "llamacpp",
                    "llm.provider": "llamacpp", "llm.model_name": "smollm2",
                    "llm.token_count.prompt": 9, "llm.token_count.completion": 2,
                    "llm.token_count.total": 11}
    assert json.loads(call["llm.invocation_parameters"]) == {"temperature": 0,
                                                             "max_tokens": 5}
    assert call["gen_ai.operation.name"] == "chat"  # the GenAI attributes stay
    if capture:
        assert json.loads(call["input.value"]) == {"messages": [
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}
        assert call["output.value"] == "hello"
    else:
        assert "input.value" not in call
        assert "output.value" not in call
