"""plait-otel: the span tree of real runs, its attributes, content capture and errors."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import anyio
import httpx
import plait
import plait_otel
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from plait_otel import OtelTracer
from plait_testing import PRICES, FakeProvider, provider_plugin

FAST = plait.Config(retry_delay=0, retry_max_delay=0)
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")


@pytest.fixture
def tracer(tracer_provider: TracerProvider, monkeypatch: pytest.MonkeyPatch) -> OtelTracer:
    monkeypatch.delenv("PLAIT_OTEL_CAPTURE_CONTENT", raising=False)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    return OtelTracer(tracer_provider=tracer_provider)


@pytest.fixture
def traced(register_plugin: Callable[..., Any], tracer: OtelTracer) -> OtelTracer:
    return register_plugin(tracer)  # type: ignore[no-any-return]


class FirstAnswer:
    """A tiny aggregator: the first candidate wins, agreement is the share that agrees."""

    @plait.hookimpl
    def plait_register_aggregators(self, register: Callable[..., None]) -> None:
        async def first(job: plait.AggregationJob) -> plait.Aggregation:
            candidates = await job.candidates()
            same = sum(c.output == candidates[0].output for c in candidates)
            return plait.Aggregation(candidates[0].output, winner_index=0,
                                     agreement=same / len(candidates))

        register("first", first)


# -- helpers -----------------------------------------------------------------------------


def _tree(spans: Sequence[ReadableSpan]) -> list[Any]:
    """Span names as nested ``(name, [children])``, children sorted (they ran in parallel)."""
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent, []).append(span)

    def build(parent: int | None) -> list[Any]:
        out = []
        for span in children.get(parent, []):
            assert span.context is not None
            sub = build(span.context.span_id)
            out.append((span.name, sub) if sub else span.name)
        return sorted(out, key=lambda x: x if isinstance(x, str) else x[0])

    return build(None)


def _named(spans: Iterable[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _one(spans: Iterable[ReadableSpan], name: str) -> ReadableSpan:
    [span] = _named(spans, name)
    return span


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# -- the pipeline: a router that asks, a fan-out in the branch, an ensemble alongside ------

classifier = plait.Agent(model="fake:priced", system="Classify the request.", temperature=0,
                         max_tokens=5)
worker = plait.Agent(model="fake:priced", max_tokens=10)
voter = plait.Agent(model="fake:free", max_tokens=10)


async def _route(ctx: plait.StepContext) -> str:
    reply = await ctx.ask(classifier, f"Request: {ctx.input('text')}")
    return str(reply.output)


@plait.step
async def billing(ctx: plait.StepContext) -> list[str]:
    async def answer(item: str) -> str:
        return str((await ctx.ask(worker, f"Answer: {item}")).output)

    result = await ctx.map(answer, ["charge", "refund", "invoice"], limit=2)
    return list(result.values)


@plait.step
async def final(ctx: plait.StepContext) -> str:
    return f"{ctx.dep('route')} / {ctx.dep('vote').winner}"


def support_pipeline() -> plait.Pipeline:
    router = plait.Router("route", route=_route,
                          branches={"billing": billing, "other": lambda ctx: ["?"]})
    vote = plait.Ensemble(voter, "Pick a colour.", n=3, vary={"temperature": [0.2, 0.7, 1.0]},
                          aggregate="first")
    return plait.Pipeline(
        "support", steps={"route": router, "vote": vote, "final": final},
        deps={"final": ["route", "vote"]},
        config=plait.Config(budget=plait.usd("1"), max_concurrency=8))


async def _run_support(runtime: plait.Runtime, register_plugin: Callable[..., Any]
                       ) -> plait.PipelineResult:
    fake = FakeProvider({
        "priced": ["billing", "A1", "A2", "A3"],
        # by temperature, not arrival order: candidates are drawn concurrently
        "free": lambda request: "red" if request.temperature == 1.0 else "blue",
    })
    register_plugin(provider_plugin(fake, "fake", prices=PRICES))
    register_plugin(FirstAnswer())
    return await support_pipeline().run({"text": "I was charged twice"}, runtime=runtime,
                                        run_id="run-42")


async def test_span_tree_of_a_router_a_fanout_and_an_ensemble(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    await _run_support(plait_runtime, register_plugin)
    spans = span_exporter.get_finished_spans()
    assert _tree(spans) == [
        ("invoke_workflow support", [
            "invoke_agent final",
            ("invoke_agent route", [
                "chat priced",  # the classifier the route function asked
                ("invoke_agent route/billing", [
                    ("plait.fanout route/billing", ["chat priced", "chat priced", "chat priced"]),
                ]),
            ]),
            ("invoke_agent vote", [
                ("plait.aggregate first", ["chat free", "chat free", "chat free"]),
            ]),
        ]),
    ]
    trace_ids = {s.context.trace_id for s in spans if s.context is not None}
    assert len(trace_ids) == 1


async def test_run_step_fanout_and_aggregation_attributes(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    result = await _run_support(plait_runtime, register_plugin)
    spans = span_exporter.get_finished_spans()

    run = _one(spans, "invoke_workflow support")
    assert _attrs(run) == {
        "gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "support",
        "gen_ai.agent.name": "support",
        "plait.run_id": "run-42", "plait.pipeline": "support", "plait.status": "ok",
        "plait.usage.input_tokens": result.usage.input_tokens,
        "plait.usage.output_tokens": result.usage.output_tokens,
        "plait.usage.calls": 7, "plait.cost_usd": str(result.usage.cost),
    }
    assert run.status.status_code == StatusCode.UNSET

    route = _one(spans, "invoke_agent route")
    assert _attrs(route) == {
        **_attrs(route), "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "route",
        "plait.run_id": "run-42", "plait.step.id": "route",
        "plait.step.kind": "Router", "plait.route": "billing", "plait.status": "ok",
        "plait.step.attempts": 1, "plait.usage.calls": 4,
        "plait.cost_usd": str(result.steps["route"].usage.cost),
    }
    assert Decimal(_attrs(route)["plait.budget.remaining_usd"]) == (
        plait.usd("1") - result.steps["route"].usage.cost - result.steps["vote"].usage.cost)
    assert "plait.route" not in _attrs(_one(spans, "invoke_agent vote"))

    fanout = _one(spans, "plait.fanout route/billing")
    assert _attrs(fanout) == {
        "plait.run_id": "run-42", "plait.step.id": "route/billing", "plait.fanout.items": 3,
        "plait.fanout.ok": 3, "plait.fanout.failed": 0, "plait.fanout.limit": 2,
        "plait.fanout.fail_fast": True,
    }

    aggregate = _one(spans, "plait.aggregate first")
    assert _attrs(aggregate) == {
        "plait.aggregator": "first", "plait.aggregation.n": 3, "plait.run_id": "run-42",
        "plait.step.id": "vote", "plait.aggregation.candidates": 3,
        "plait.aggregation.failures": 0, "plait.aggregation.agreement": pytest.approx(2 / 3),
        "plait.aggregation.winner_index": 0, "plait.aggregation.flagged": False,
        "plait.aggregation.calls_saved": 0,
    }
    assert _attrs(_one(spans, "invoke_agent vote"))["plait.step.kind"] == "Ensemble"


async def test_model_call_spans_follow_the_genai_conventions(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    await _run_support(plait_runtime, register_plugin)
    spans = span_exporter.get_finished_spans()
    route_span = _one(spans, "invoke_agent route")
    assert route_span.context is not None
    [classify] = [s for s in _named(spans, "chat priced")
                  if s.parent is not None and s.parent.span_id == route_span.context.span_id]
    attrs = _attrs(classify)
    cost = plait.Price.per_million("1", "2").cost(plait.TokenCount(
        attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]))
    assert classify.kind == SpanKind.CLIENT
    assert attrs == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "fake", "plait.provider": "fake",
        "gen_ai.request.model": "priced", "gen_ai.request.temperature": 0.0,
        "gen_ai.request.max_tokens": 5, "gen_ai.output.type": "text",
        "gen_ai.response.model": "priced", "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 8, "gen_ai.usage.output_tokens": 1,
        "plait.run_id": "run-42", "plait.step.id": "route", "plait.step.attempt": 1,
        "plait.cost_usd": str(cost),
        "plait.budget.remaining_usd": attrs["plait.budget.remaining_usd"],
    }
    # the remaining budget is what was left when the call went out (its worst case held)
    assert Decimal(attrs["plait.budget.remaining_usd"]) < plait.usd("1")
    free = _named(spans, "chat free")
    assert {_attrs(s)["gen_ai.request.temperature"] for s in free} == {0.2, 0.7, 1.0}
    assert {_attrs(s)["plait.step.id"] for s in free} == {"vote"}
    assert {_attrs(s)["plait.cost_usd"] for s in free} == {"0"}


def _gemini(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Oslo"}]},
                        "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 2,
                          "cachedContentTokenCount": 32},
        "modelVersion": "gemini-2.5-flash"})


async def test_model_call_spans_carry_provider_cache_reads_seed_and_stop(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter, anyio_backend: Any,
) -> None:
    import plait_gemini

    tracer = OtelTracer(tracer_provider=tracer_provider)
    agent = plait.Agent(model="gemini:gemini-2.5-flash", seed=7, stop=["\n\n", "END"])
    async with plait.Runtime(entry_points=False, plugins=[plait_gemini, tracer], tracers=[],
                             settings={"gemini": {"api_key": "test-key"}},
                             transport=httpx.MockTransport(_gemini)) as rt:
        await agent.ask("Capital of Norway?", runtime=rt)
    attrs = _attrs(_one(span_exporter.get_finished_spans(), "chat gemini-2.5-flash"))
    assert attrs["gen_ai.provider.name"] == "gcp.gemini"  # the conventions' name for it
    assert attrs["plait.provider"] == "gemini"
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 32
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.request.stop_sequences"] == ("\n\n", "END")


async def test_content_is_not_captured_by_default(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    await _run_support(plait_runtime, register_plugin)
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 14
    for span in spans:
        assert not set(CONTENT_KEYS) & set(_attrs(span))
        assert not span.events
        for value in _attrs(span).values():
            assert "charged twice" not in str(value)


@pytest.mark.parametrize("switch", ["argument", "PLAIT_OTEL_CAPTURE_CONTENT",
                                    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"])
async def test_content_is_captured_when_enabled(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any],
    tracer_provider: TracerProvider,
    span_exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, switch: str,
) -> None:
    monkeypatch.delenv("PLAIT_OTEL_CAPTURE_CONTENT", raising=False)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    if switch == "argument":
        tracer = OtelTracer(tracer_provider=tracer_provider, capture_content=True)
    else:
        monkeypatch.setenv(switch, "true")
        tracer = OtelTracer(tracer_provider=tracer_provider)
    register_plugin(tracer)
    await _run_support(plait_runtime, register_plugin)

    spans = span_exporter.get_finished_spans()
    route_span = _one(spans, "invoke_agent route")
    assert route_span.context is not None
    [classify] = [s for s in _named(spans, "chat priced")
                  if s.parent is not None and s.parent.span_id == route_span.context.span_id]
    attrs = _attrs(classify)
    assert json.loads(attrs["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Classify the request."}]
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Request: I was charged twice"}]}]
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "billing"}],
         "finish_reason": "stop"}]
    assert all("gen_ai.input.messages" not in _attrs(s) for s in spans
               if not s.name.startswith("chat "))


# -- errors ------------------------------------------------------------------------------


async def test_errors_are_recorded_on_the_failing_spans(
    plait_runtime: plait.Runtime, traced: OtelTracer, span_exporter: InMemorySpanExporter,
) -> None:
    @plait.step(retries=1)
    async def broken(ctx: plait.StepContext) -> None:
        raise ValueError(f"attempt {ctx.attempt} failed")

    @plait.step
    async def fine(ctx: plait.StepContext) -> int:
        return 1

    pipe = plait.Pipeline("p", steps={"broken": broken, "fine": fine, "after": fine},
                          deps={"after": ["broken"]}, output="after", config=FAST)
    with pytest.raises(plait.StepFailed):
        await pipe.run({}, runtime=plait_runtime)

    spans = span_exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["invoke_agent broken", "invoke_agent fine",
                                             "invoke_workflow p"]
    step = _one(spans, "invoke_agent broken")
    assert step.status.status_code == StatusCode.ERROR
    assert step.status.description == "ValueError: attempt 2 failed"
    assert _attrs(step) == {**_attrs(step), "error.type": "ValueError",
                            "plait.status": "failed", "plait.step.attempts": 2}
    [event] = step.events
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.type"] == "ValueError"
    run = _one(spans, "invoke_workflow p")
    assert run.status.status_code == StatusCode.ERROR
    assert _attrs(run)["error.type"] == "StepFailed"
    assert _attrs(run)["plait.usage.calls"] == 0  # from the partial result
    assert _one(spans, "invoke_agent fine").status.status_code == StatusCode.UNSET


async def test_failed_model_calls_and_fanout_items(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    fake_provider.script(plait.ProviderUnavailable, "ok", plait.BadRequest, model="m")
    agent = plait.Agent(model="fake:m")

    @plait.step
    async def items(ctx: plait.StepContext) -> int:
        async def one(item: int) -> str:
            return str((await ctx.ask(agent, f"item {item}", retries=1, retry_delay=0)).output)

        result = await ctx.map(one, [1, 2], limit=1, on_error="collect")
        return len(result.values)

    result = await plait.Pipeline("p", steps={"items": items}).run({}, runtime=plait_runtime)
    assert result.output == 1

    spans = span_exporter.get_finished_spans()
    calls = _named(spans, "chat m")
    assert [s.status.status_code for s in calls] == [
        StatusCode.ERROR, StatusCode.UNSET, StatusCode.ERROR]
    assert [_attrs(s).get("error.type") for s in calls] == [
        "ProviderUnavailable", None, "BadRequest"]
    assert "gen_ai.usage.input_tokens" not in _attrs(calls[0])
    fanout = _one(spans, "plait.fanout items")
    assert _attrs(fanout)["plait.fanout.ok"] == 1
    assert _attrs(fanout)["plait.fanout.failed"] == 1
    assert fanout.status.status_code == StatusCode.UNSET  # "collect": the fan-out succeeded


async def test_a_raising_fanout_is_an_error_with_its_counts(
    plait_runtime: plait.Runtime, traced: OtelTracer, span_exporter: InMemorySpanExporter,
) -> None:
    @plait.step
    async def items(ctx: plait.StepContext) -> None:
        def one(item: int) -> int:
            if item == 2:
                raise KeyError(item)
            return item

        await ctx.map(one, [1, 2, 3], limit=1)

    with pytest.raises(plait.StepFailed):
        await plait.Pipeline("p", steps={"items": items}).run({}, runtime=plait_runtime)
    fanout = _one(span_exporter.get_finished_spans(), "plait.fanout items")
    assert fanout.status.status_code == StatusCode.ERROR
    assert _attrs(fanout) == {**_attrs(fanout), "plait.fanout.items": 3, "plait.fanout.ok": 1,
                              "plait.fanout.failed": 1, "error.type": "FanOutError"}


async def test_cancelled_steps_are_not_errors(
    plait_runtime: plait.Runtime, traced: OtelTracer, span_exporter: InMemorySpanExporter,
) -> None:
    started = anyio.Event()

    @plait.step
    async def stop(ctx: plait.StepContext) -> plait.Stop:
        await started.wait()  # so the stop cancels a running step
        return plait.Stop("enough")

    @plait.step
    async def slow(ctx: plait.StepContext) -> None:
        started.set()
        await anyio.sleep_forever()

    pipe = plait.Pipeline("p", steps={"stop": stop, "slow": slow}, output="stop")
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.stopped_early
    spans = span_exporter.get_finished_spans()
    slow_span = _one(spans, "invoke_agent slow")
    assert slow_span.status.status_code == StatusCode.UNSET
    assert _attrs(slow_span)["plait.status"] == "cancelled"
    assert _attrs(_one(spans, "invoke_agent stop"))["plait.status"] == "stopped"
    run = _attrs(_one(spans, "invoke_workflow p"))
    assert (run["plait.status"], run["plait.stop.reason"]) == ("stopped", "enough")


# -- no API key anywhere ------------------------------------------------------------------

SECRET = "sk-test-0123456789abcdefSECRET"


def _openai(request: httpx.Request) -> httpx.Response:
    assert request.headers["authorization"] == f"Bearer {SECRET}"  # the key was used...
    body = json.loads(request.content)
    if "fail" in body["messages"][-1]["content"]:
        return httpx.Response(401, json={"error": {
            "message": f"Incorrect API key provided: {SECRET}.", "type": "invalid_request"}})
    return httpx.Response(200, json={
        "id": "c1", "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Hello."}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})


async def test_no_api_key_in_any_attribute_or_event(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter, anyio_backend: Any,
) -> None:
    import plait_openai

    tracer = OtelTracer(tracer_provider=tracer_provider, capture_content=True)
    agent = plait.Agent(model="openai:gpt-4o-mini", max_tokens=5)

    @plait.step
    async def hello(ctx: plait.StepContext) -> str:
        return str((await ctx.ask(agent, f"Say hello to {ctx.input('who')}")).output)

    async with plait.Runtime(entry_points=False, plugins=[plait_openai, tracer], tracers=[],
                             settings={"openai": {"api_key": SECRET}},
                             transport=httpx.MockTransport(_openai)) as rt:
        result = await plait.Pipeline("p", steps={"hello": hello}).run({"who": "Ada"},
                                                                       runtime=rt)
        assert result.output == "Hello."
        with pytest.raises(plait.StepFailed):
            await plait.Pipeline("p", steps={"hello": hello}).run({"who": "fail"}, runtime=rt)

    spans = span_exporter.get_finished_spans()
    ok, failed = _named(spans, "chat gpt-4o-mini")
    assert _attrs(ok)["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert _attrs(ok)["gen_ai.provider.name"] == "openai"
    assert _attrs(failed)["error.type"] == "AuthenticationError"
    everything = [str(v) for s in spans for v in _attrs(s).values()]
    everything += [str(v) for s in spans for e in s.events for v in (e.attributes or {}).values()]
    everything += [s.status.description or "" for s in spans]
    assert any("Incorrect API key provided" in text for text in everything)
    assert not [text for text in everything if "SECRET" in text or "sk-test" in text]


PASSPHRASE = "my-lab-gpu-passphrase-2026"  # no key pattern matches it
# Each vendor's answer to a bad key, echoing it back.
_AUTH_FAILURES = {
    "openai": (401, {"error": {"message": f"invalid api key '{PASSPHRASE}'"}}),
    "anthropic": (401, {"type": "error", "error": {"type": "authentication_error",
                                                   "message": f"invalid x-api-key {PASSPHRASE}"}}),
    "gemini": (400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                               "message": f"API key {PASSPHRASE} not valid.",
                               "details": [{"reason": "API_KEY_INVALID"}]}}),
}


@pytest.mark.parametrize("provider", sorted(_AUTH_FAILURES))
async def test_a_key_echoed_after_an_auth_failure_is_in_no_error_or_span(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter, provider: str,
) -> None:
    plugin = importlib.import_module(f"plait_{provider}")
    status, body = _AUTH_FAILURES[provider]
    tracer = OtelTracer(tracer_provider=tracer_provider, capture_content=True)
    async with plait.Runtime(entry_points=False, plugins=[plugin, tracer], tracers=[],
                             settings={provider: {"api_key": PASSPHRASE}},
                             transport=httpx.MockTransport(
                                 lambda request: httpx.Response(status, json=body))) as rt:
        with pytest.raises(plait.AuthenticationError) as caught:
            await plait.Agent(model=f"{provider}:m", max_tokens=5).ask("hi", runtime=rt)
    assert "[redacted]" in str(caught.value)
    assert PASSPHRASE not in f"{caught.value!s} {caught.value!r}"
    [span] = span_exporter.get_finished_spans()
    assert _attrs(span)["error.type"] == "AuthenticationError"
    shown = [str(v) for v in _attrs(span).values()]
    shown += [str(v) for e in span.events for v in (e.attributes or {}).values()]
    shown.append(span.status.description or "")
    assert any("[redacted]" in text for text in shown)
    assert not [text for text in shown if PASSPHRASE in text]


# -- registration --------------------------------------------------------------------------


def test_the_entry_point_registers_a_default_tracer(anyio_backend: Any) -> None:
    [ep] = [ep for ep in importlib.metadata.entry_points(group="plait") if ep.name == "otel"]
    assert ep.load() is plait_otel
    runtime = plait.Runtime(entry_points=False, plugins=[plait_otel])
    tracer, default = runtime.registry.tracers["otel"]
    assert isinstance(tracer, OtelTracer)
    assert default is True
    assert runtime.pm.is_registered(tracer)
    assert tracer.tracer_provider is None  # the application's global provider
    off = plait.Runtime(entry_points=False, plugins=[plait_otel], tracers=[])
    assert not off.pm.is_registered(off.registry.tracers["otel"][0])


async def test_without_an_sdk_spans_go_nowhere_and_runs_work(anyio_backend: Any) -> None:
    @plait.step
    async def one(ctx: plait.StepContext) -> int:
        return 1

    runtime = plait.Runtime(entry_points=False, plugins=[plait_otel])
    result = await plait.Pipeline("p", steps={"one": one}).run({}, runtime=runtime)
    assert result.output == 1
    # no global provider was set: the default tracer stays out of every run
    tracer, _default = runtime.registry.tracers["otel"]
    assert tracer.plait_wrap_run(plait.RunInfo("r", "p", {})) is None


def test_a_tracer_with_its_own_provider_is_always_on(tracer_provider: TracerProvider) -> None:
    wrapper = OtelTracer(tracer_provider=tracer_provider).plait_wrap_run(
        plait.RunInfo("r", "p", {}))
    assert wrapper is not None
    wrapper.close()


async def test_a_model_call_span_costs_what_the_call_was_charged(
    plait_runtime: plait.Runtime, fake_provider: Any, traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    # the agent's own price, not the provider's table: the span must say what was charged
    agent = plait.Agent("fake:priced", price=plait.Price.per_million("30", "60"))
    fake_provider.script(plait.ModelResponse(
        "hi", usage=plait.TokenCount(input_tokens=1000, output_tokens=500)))

    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "hello")).text

    result = await plait.Pipeline("p", {"ask": ask}).run(runtime=plait_runtime)
    [span] = _named(span_exporter.get_finished_spans(), "chat priced")
    assert _attrs(span)["plait.cost_usd"] == str(result.usage.cost)
    assert result.usage.cost == Decimal("0.06")  # 1,000 x $30/M + 500 x $60/M


async def test_a_request_answered_by_a_plugin_shows_on_its_step_span_as_a_cache_hit(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    class Cache:  # what plait-cache does on a hit: answer without sending
        @plait.hookimpl
        def plait_answer_model_call(self) -> Any:
            async def hit() -> plait.ModelResponse:
                return plait.ModelResponse("remembered")
            return hit()

    register_plugin(provider_plugin(FakeProvider(), prices=PRICES))
    register_plugin(Cache())

    @plait.step
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(plait.Agent("fake:priced"), "hi")).text

    await plait.Pipeline("p", steps={"ask": ask}).run(runtime=plait_runtime)
    spans = span_exporter.get_finished_spans()
    assert not _named(spans, "chat priced")  # nothing was sent
    step = _attrs(_one(spans, "invoke_agent ask"))
    assert step["plait.usage.cache_hits"] == 1
    assert step["plait.usage.calls"] == 0
    assert step["plait.cost_usd"] == "0"


async def test_an_unpriced_model_has_an_unknown_cost_not_zero(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    fake_provider.script("hi")

    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(plait.Agent("fake:unlisted"), "hello")).text

    await plait.Pipeline("p", {"ask": ask}).run(runtime=plait_runtime)
    spans = span_exporter.get_finished_spans()
    for name in ("chat unlisted", "invoke_agent ask", "invoke_workflow p"):
        attrs = _attrs(_one(spans, name))
        assert attrs["plait.cost_unknown"] is True, name
        assert "plait.cost_usd" not in attrs, name

async def test_each_tool_call_is_an_execute_tool_span_under_its_step(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], traced: OtelTracer,
    span_exporter: InMemorySpanExporter,
) -> None:
    traced.capture_content = True

    def lookup_order(order_id: str) -> dict[str, str]:
        """Find an order by its id."""
        if order_id == "Z9":
            raise LookupError("no such order")
        return {"status": "shipped"}

    register_plugin(provider_plugin(FakeProvider([
        plait.ToolCall("lookup_order", {"order_id": "A1"}, "call_a"),
        plait.ToolCall("lookup_order", {"order_id": "Z9"}, "call_z"),
        "A1 has shipped."]), "fake", prices=PRICES))
    agent = plait.Agent("fake:priced", tools=[lookup_order])

    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "Where is A1?")).output

    pipe = plait.Pipeline("tools", steps={"ask": plait.step(ask)})
    await pipe.run(runtime=plait_runtime)
    spans = span_exporter.get_finished_spans()
    assert _tree(spans) == [("invoke_workflow tools", [("invoke_agent ask", [
        "chat priced", "chat priced", "chat priced",
        "execute_tool lookup_order", "execute_tool lookup_order"])])]
    ok, failed = _named(spans, "execute_tool lookup_order")
    assert ok.kind == SpanKind.INTERNAL
    assert _attrs(ok) == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order",
        "gen_ai.tool.type": "function", "gen_ai.tool.description": "Find an order by its id.",
        "gen_ai.tool.call.id": "call_a", "plait.run_id": _attrs(ok)["plait.run_id"],
        "plait.step.id": "ask", "gen_ai.tool.call.arguments": '{"order_id": "A1"}',
        "gen_ai.tool.call.result": '{"status": "shipped"}'}
    assert failed.status.status_code == StatusCode.ERROR
    assert _attrs(failed)["error.type"] == "LookupError"
