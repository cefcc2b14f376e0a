"""The tracer: plait's wrapper hooks turned into OpenTelemetry spans.

Each wrapper starts its span and makes it current *before* its ``yield``, in the task that
runs the work, and ends it after. anyio tasks copy the context they are started from, so
the steps of parallel branches, fan-out items and ensemble candidates nest under the span
that was current when they were started: the run, the fan-out, the aggregation.
"""

from __future__ import annotations

import contextvars
import json
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import plait
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from plait.hookspecs import Wrapper

from . import _names as n
from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry import metrics
    from opentelemetry.util.types import AttributeValue

__all__ = ["OtelTracer"]


# The step whose span is current, so a router's branch can name the route on its span.
_CURRENT_STEP: contextvars.ContextVar[tuple[Any, Span] | None] = contextvars.ContextVar(
    "plait_otel_step", default=None)

_TRUE = ("1", "true", "yes", "on")
# gen_ai.provider.name has well-known values; plait's prefixes match them except these.
_PROVIDER_NAMES = {"gemini": "gcp.gemini"}


def _openinference_from_env() -> bool:
    return os.environ.get("PLAIT_OTEL_OPENINFERENCE", "").lower() in _TRUE


def _content_from_env() -> bool:
    return (os.environ.get("PLAIT_OTEL_CAPTURE_CONTENT", "").lower() in _TRUE
            or os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
                              "").lower() in _TRUE)


class OtelTracer:
    """Spans for runs, steps, fan-outs, aggregations, model calls and tool calls.

    - ``tracer_provider``: where spans go (default: the global provider the application
      configured; while none is, every hook stays out and costs next to nothing).
    - ``capture_content``: record prompts and completions on model-call spans
      (``gen_ai.input.messages``, ``gen_ai.output.messages``, ``gen_ai.system_instructions``).
      Off unless ``True`` here or ``PLAIT_OTEL_CAPTURE_CONTENT=1`` (or the OpenTelemetry
      ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``) is set.
    - ``meter_provider``: where the GenAI metrics ``gen_ai.client.token.usage`` and
      ``gen_ai.client.operation.duration`` go (default: the global one), recorded for every
      model call of a traced run.
    - ``openinference``: also set OpenInference attributes (``openinference.span.kind``,
      ``llm.*``; ``input.value`` / ``output.value`` with ``capture_content``) so Phoenix
      and other OpenInference backends render the spans. Off unless ``True`` here or
      ``PLAIT_OTEL_OPENINFERENCE=1``.
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None, *,
                 capture_content: bool | None = None,
                 meter_provider: metrics.MeterProvider | None = None,
                 openinference: bool | None = None) -> None:
        self.tracer_provider = tracer_provider
        self.capture_content = _content_from_env() if capture_content is None \
            else capture_content
        self.meter_provider = meter_provider
        self.openinference = _openinference_from_env() if openinference is None \
            else openinference
        self._tracer: trace.Tracer | None = None
        self._instruments: tuple[metrics.Histogram, metrics.Histogram] | None = None

    def _on(self) -> bool:
        """Whether spans can go anywhere: a provider of our own, or a real global one."""
        return self.tracer_provider is not None or not isinstance(
            trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)

    def _traced(self) -> bool:
        """Inside a run: whether it is traced, i.e. a span (its own or the application's)
        is current. Cheaper than ``_on``, which steps would pay for a hundred times a run."""
        return (self.tracer_provider is not None
                or trace.get_current_span().get_span_context().is_valid)

    @property
    def tracer(self) -> trace.Tracer:
        if self._tracer is None:  # a proxy until the application sets a global provider
            self._tracer = trace.get_tracer("plait_otel", __version__, self.tracer_provider)
        return self._tracer

    @property
    def instruments(self) -> tuple[metrics.Histogram, metrics.Histogram]:
        """The token-usage and operation-duration histograms, made on first use."""
        if self._instruments is None:
            from opentelemetry import metrics  # 4 ms, left out of `plait --help`

            meter = metrics.get_meter("plait_otel", __version__, self.meter_provider)
            self._instruments = (
                meter.create_histogram(n.TOKEN_USAGE, "{token}", "Number of input and "
                                       "output tokens used.",
                                       explicit_bucket_boundaries_advisory=n.TOKEN_BUCKETS),
                meter.create_histogram(n.OPERATION_DURATION, "s", "GenAI operation duration.",
                                       explicit_bucket_boundaries_advisory=n.DURATION_BUCKETS))
        return self._instruments

    # -- hooks: each stays out (None) while spans could go nowhere -------------------

    @plait.hookimpl
    def plait_wrap_run(self, run: plait.RunInfo) -> Wrapper | None:
        return self._run(run) if self._on() else None

    @plait.hookimpl
    def plait_wrap_step(self, step: plait.Step, ctx: plait.StepContext) -> Wrapper | None:
        return self._step(step, ctx) if self._traced() else None

    @plait.hookimpl
    def plait_wrap_fanout(self, job: plait.FanOutJob, ctx: plait.StepContext
                          ) -> Wrapper | None:
        return self._fanout(job, ctx) if self._traced() else None

    @plait.hookimpl
    def plait_wrap_aggregate(self, name: str, job: plait.AggregationJob) -> Wrapper | None:
        return self._aggregate(name, job) if self._on() else None

    @plait.hookimpl
    def plait_wrap_model_call(self, request: plait.ModelRequest, provider: str,
                              ctx: plait.StepContext | None,
                              call: plait.ModelCall) -> Wrapper | None:
        return self._model_call(request, provider, ctx, call) if self._on() else None

    @plait.hookimpl
    def plait_wrap_tool_call(self, call: plait.ToolCall, tool: plait.Tool,
                             ctx: plait.StepContext | None) -> Wrapper | None:
        return self._tool_call(call, tool, ctx) if self._on() else None

    # -- the wrappers -------------------------------------------------------------------

    def _run(self, run: plait.RunInfo) -> Wrapper:
        attributes: dict[str, AttributeValue] = {
            n.OPERATION: n.INVOKE_WORKFLOW, n.WORKFLOW_NAME: run.pipeline,
            n.AGENT_NAME: run.pipeline, n.RUN_ID: run.run_id, n.PIPELINE: run.pipeline}
        if self.openinference:
            attributes[n.OI_SPAN_KIND] = "CHAIN"
        span, token = self._start(f"{n.INVOKE_WORKFLOW} {run.pipeline}", attributes)
        try:
            result: plait.PipelineResult = yield
        except BaseException as exc:
            partial = getattr(exc, "partial", None)
            if partial is not None and span.is_recording():
                span.set_attributes(_usage(partial.usage))
            _fail(span, exc)
            raise
        else:
            if span.is_recording():
                span.set_attributes(_usage(result.usage))
                span.set_attribute(n.STATUS, "stopped" if result.stopped_early else "ok")
                if result.stop is not None:
                    span.set_attribute(n.STOP_REASON, result.stop.reason)
        finally:
            _end(span, token)

    def _step(self, step: plait.Step, ctx: plait.StepContext) -> Wrapper:
        parent = _CURRENT_STEP.get()
        if parent is not None and isinstance(parent[0], plait.Router):
            parent[1].set_attribute(n.ROUTE, ctx.step_id)  # the branch the router took
        # the hot path of a traced run: attributes are set once, at the end (the SDK checks
        # attributes given at the start twice, for the sampler and for the span)
        # but the conventions' sampling-relevant ones belong at the start
        attributes: dict[str, AttributeValue] = {n.OPERATION: n.INVOKE_AGENT,
                                                 n.AGENT_NAME: ctx.path}
        if self.openinference:
            attributes[n.OI_SPAN_KIND] = "AGENT" if isinstance(step, plait.AgentStep) else "CHAIN"
        span, token = self._start(f"{n.INVOKE_AGENT} {ctx.path}", attributes)
        current = _CURRENT_STEP.set((step, span))
        try:
            value = yield
        except BaseException as exc:
            _step_end(span, step, ctx, _status(exc))
            _fail(span, exc)
            raise
        else:
            _step_end(span, step, ctx, "stopped" if isinstance(value, plait.Stop) else "ok")
        finally:
            _CURRENT_STEP.reset(current)
            _end(span, token)

    def _fanout(self, job: plait.FanOutJob, ctx: plait.StepContext) -> Wrapper:
        attributes: dict[str, AttributeValue] = {
            n.RUN_ID: ctx.run_id, n.STEP_ID: ctx.path, n.FANOUT_ITEMS: len(job.items),
            n.FANOUT_FAIL_FAST: job.fail_fast}
        if job.limit is not None:
            attributes[n.FANOUT_LIMIT] = job.limit
        span, token = self._start(f"plait.fanout {job.label}", attributes)
        try:
            result: plait.FanOutResult = yield
        except BaseException as exc:
            if isinstance(exc, plait.FanOutError):
                span.set_attributes({n.FANOUT_OK: len(exc.values),
                                     n.FANOUT_FAILED: len(exc.errors)})
            _fail(span, exc)
            raise
        else:
            span.set_attributes({n.FANOUT_OK: len(result.values),
                                 n.FANOUT_FAILED: len(result.errors)})
        finally:
            _end(span, token)

    def _aggregate(self, name: str, job: plait.AggregationJob) -> Wrapper:
        attributes: dict[str, AttributeValue] = {n.AGGREGATOR: name, n.AGG_N: job.n}
        if job.ctx is not None:
            attributes.update({n.RUN_ID: job.ctx.run_id, n.STEP_ID: job.ctx.path})
        span, token = self._start(f"plait.aggregate {name}", attributes)
        try:
            aggregation: plait.Aggregation = yield
        except BaseException as exc:
            span.set_attribute(n.AGG_CANDIDATES, len(job.drawn))
            _fail(span, exc)
            raise
        else:
            if span.is_recording():
                span.set_attributes(_aggregation(aggregation, job))
        finally:
            _end(span, token)

    def _model_call(self, request: plait.ModelRequest, provider: str,
                    ctx: plait.StepContext | None, call: plait.ModelCall) -> Wrapper:
        attributes = _request(request, provider, ctx)
        if self.openinference:
            attributes.update(_oi_request(request, provider))
        span, token = self._start(f"chat {request.model}", attributes, SpanKind.CLIENT)
        if self.capture_content and span.is_recording():
            span.set_attributes(_prompt(request))
            if self.openinference:
                span.set_attributes({n.OI_INPUT: _oi_input(request),
                                     n.OI_INPUT_MIME: "application/json"})
        t0 = time.perf_counter()
        try:
            response: plait.ModelResponse = yield
        except BaseException as exc:
            _streamed(span, call)
            self._measure(attributes, time.perf_counter() - t0, None, exc)
            _fail(span, exc)
            raise
        else:
            self._measure(attributes, time.perf_counter() - t0, response, None)
            if span.is_recording():
                _streamed(span, call)
                span.set_attributes(_response(response, request, call))
                if self.openinference:
                    span.set_attributes(_oi_response(response, self.capture_content))
                if self.capture_content:
                    span.set_attribute(n.OUTPUT_MESSAGES, json.dumps([{
                        "role": "assistant",
                        "parts": [{"type": "text", "content": response.text}],
                        "finish_reason": response.finish_reason or "stop",
                    }], ensure_ascii=False))
        finally:
            _end(span, token)

    def _measure(self, request: Mapping[str, AttributeValue], seconds: float,
                 response: plait.ModelResponse | None, error: BaseException | None) -> None:
        """The GenAI client metrics of one model call (a cancelled call is not measured)."""
        if isinstance(error, anyio.get_cancelled_exc_class()):
            return
        tokens, duration = self.instruments
        labels = {k: request[k] for k in _METRIC_LABELS if k in request}
        if response is not None:
            labels[n.RESPONSE_MODEL] = response.model or str(request[n.REQUEST_MODEL])
        if error is not None:
            labels[n.ERROR_TYPE] = type(error).__qualname__
        duration.record(seconds, labels)
        if response is not None:
            tokens.record(response.usage.input_tokens, {**labels, n.TOKEN_TYPE: "input"})
            tokens.record(response.usage.output_tokens, {**labels, n.TOKEN_TYPE: "output"})

    def _tool_call(self, call: plait.ToolCall, tool: plait.Tool,
                   ctx: plait.StepContext | None) -> Wrapper:
        attributes: dict[str, AttributeValue] = {
            n.OPERATION: "execute_tool", n.TOOL_NAME: tool.name, n.TOOL_TYPE: "function",
            n.TOOL_DESCRIPTION: tool.description}
        if call.id:
            attributes[n.TOOL_CALL_ID] = call.id
        if ctx is not None:
            attributes.update({n.RUN_ID: ctx.run_id, n.STEP_ID: ctx.path})
        if self.capture_content:
            attributes[n.TOOL_ARGUMENTS] = json.dumps(call.arguments, ensure_ascii=False)
        span, token = self._start(f"execute_tool {tool.name}", attributes)
        try:
            result = yield
        except BaseException as exc:
            _fail(span, exc)
            raise
        else:
            if self.capture_content and span.is_recording():
                span.set_attribute(n.TOOL_RESULT, json.dumps(result, ensure_ascii=False,
                                                             default=str))
        finally:
            _end(span, token)

    # -- helpers ----------------------------------------------------------------------

    def _start(self, name: str, attributes: Mapping[str, AttributeValue] | None = None,
               kind: SpanKind = SpanKind.INTERNAL) -> tuple[Span, contextvars.Token[Context]]:
        span = self.tracer.start_span(name, kind=kind, attributes=attributes)
        return span, otel_context.attach(trace.set_span_in_context(span))

    def __repr__(self) -> str:
        return f"<plait_otel.OtelTracer capture_content={self.capture_content}>"


def _streamed(span: Span, call: plait.ModelCall) -> None:
    if call.streamed and span.is_recording():
        span.set_attribute(n.STREAMED, True)
        if call.first_token_s is not None:
            span.set_attribute(n.TIME_TO_FIRST_TOKEN, call.first_token_s)


def _step_end(span: Span, step: plait.Step, ctx: plait.StepContext, status: str) -> None:
    if not span.is_recording():
        return
    attributes: dict[str, AttributeValue] = {
        n.RUN_ID: ctx.run_id, n.STEP_ID: ctx.path, n.STEP_KIND: type(step).__name__,
        n.STEP_ATTEMPTS: ctx.attempt, n.STATUS: status}
    usage = ctx.usage
    if usage.calls or usage.cache_hits:  # a step that asked no model has no usage to report
        attributes.update(_usage(usage))
    left = ctx.budget_left
    if left is not None:
        attributes[n.BUDGET_LEFT] = str(left)
    span.set_attributes(attributes)


def _end(span: Span, token: contextvars.Token[Context]) -> None:
    otel_context.detach(token)
    span.end()


def _status(exc: BaseException) -> str:
    return "cancelled" if isinstance(exc, anyio.get_cancelled_exc_class()) else "failed"


def _fail(span: Span, exc: BaseException) -> None:
    """Errors as OpenTelemetry records them; a cancellation is not an error."""
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        span.set_attribute(n.STATUS, "cancelled")
        return
    span.record_exception(exc)
    span.set_attribute(n.ERROR_TYPE, type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.set_attribute(n.STATUS, "failed")


def _usage(usage: plait.Usage) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {n.USAGE_INPUT: usage.input_tokens,
                                      n.USAGE_OUTPUT: usage.output_tokens,
                                      n.USAGE_CALLS: usage.calls}
    if usage.cost_known:  # an unpriced call makes the cost unknown, not $0
        out[n.COST] = str(usage.cost)
    else:
        out[n.COST_UNKNOWN] = True
    if usage.cache_hits:
        out[n.USAGE_CACHE_HITS] = usage.cache_hits
    return out


def _aggregation(agg: plait.Aggregation, job: plait.AggregationJob
                 ) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {
        n.AGG_CANDIDATES: len(job.drawn), n.AGG_FAILURES: len(job.failures)}
    agreement = getattr(agg, "agreement", None)  # checked by the engine after the wrapper
    if agreement is not None:
        out[n.AGG_AGREEMENT] = float(agreement)
    winner = getattr(agg, "winner_index", None)
    if winner is not None:
        out[n.AGG_WINNER] = winner
    out[n.AGG_FLAGGED] = bool(getattr(agg, "flagged", False))
    out[n.AGG_SAVED] = int(getattr(agg, "calls_saved", 0))
    return out


def _request(request: plait.ModelRequest, provider: str, ctx: plait.StepContext | None
             ) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {
        n.OPERATION: "chat",
        n.PROVIDER_NAME: _PROVIDER_NAMES.get(provider, provider),
        n.PROVIDER: provider,
        n.REQUEST_MODEL: request.model,
        n.OUTPUT_TYPE: "json" if request.json_schema is not None else "text",
    }
    if request.temperature is not None:
        out[n.REQUEST_TEMPERATURE] = float(request.temperature)
    if request.max_tokens is not None:
        out[n.REQUEST_MAX_TOKENS] = request.max_tokens
    if request.seed is not None:
        out[n.REQUEST_SEED] = request.seed
    if request.stop:
        out[n.REQUEST_STOP] = list(request.stop)
    if ctx is not None:
        out.update(_server(ctx.runtime, provider))
        out.update({n.RUN_ID: ctx.run_id, n.STEP_ID: ctx.path, n.STEP_ATTEMPT: ctx.attempt})
        left = ctx.budget_left  # this call's worst case is held already
        if left is not None:
            out[n.BUDGET_LEFT] = str(left)
    return out


def _response(response: plait.ModelResponse, request: plait.ModelRequest,
              call: plait.ModelCall) -> dict[str, AttributeValue]:
    usage = response.usage
    out: dict[str, AttributeValue] = {
        n.RESPONSE_MODEL: response.model or request.model,
        n.USAGE_INPUT_TOKENS: usage.input_tokens,
        n.USAGE_OUTPUT_TOKENS: usage.output_tokens,
    }
    if response.finish_reason is not None:
        out[n.FINISH_REASONS] = [response.finish_reason]
    response_id = _response_id(response.raw)
    if response_id is not None:
        out[n.RESPONSE_ID] = response_id
    if usage.cached_tokens:
        out[n.USAGE_CACHE_READ] = usage.cached_tokens
    if call.price is not None and call.usage is not None:  # priced by the engine, exactly
        out[n.COST] = str(call.usage.cost)
    elif call.price is None:
        out[n.COST_UNKNOWN] = True
    return out


def _prompt(request: plait.ModelRequest) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {n.INPUT_MESSAGES: json.dumps([
        {"role": m.role, "parts": [{"type": "text", "content": m.content}]}
        for m in request.messages if m.role != "system"], ensure_ascii=False)}
    if request.system is not None:
        out[n.SYSTEM_INSTRUCTIONS] = json.dumps([{"type": "text", "content": request.system}],
                                                ensure_ascii=False)
    return out


# what the GenAI metrics are broken down by: the call's, not its step's or run's
_METRIC_LABELS = (n.OPERATION, n.PROVIDER_NAME, n.REQUEST_MODEL, n.SERVER_ADDRESS,
                  n.SERVER_PORT)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _server(runtime: plait.Runtime, provider: str) -> dict[str, AttributeValue]:
    """``server.address`` / ``server.port`` of a provider that talks HTTP to a
    ``base_url`` (every provider of this repository but the in-process one)."""
    try:
        base_url = getattr(runtime.provider(provider), "base_url", None)
    except Exception:  # a provider that cannot be built fails the call itself, not here
        return {}
    if not isinstance(base_url, str):
        return {}
    url = urlsplit(base_url)
    if not url.hostname:
        return {}
    port = url.port or _DEFAULT_PORTS.get(url.scheme)
    return {n.SERVER_ADDRESS: url.hostname, **({n.SERVER_PORT: port} if port else {})}


def _response_id(raw: Any) -> str | None:
    """The provider's id of the reply: ``id`` (OpenAI, Anthropic, llama.cpp) or
    ``responseId`` (Gemini) in the raw JSON."""
    if isinstance(raw, Mapping):
        found = raw.get("id") or raw.get("responseId")
        return found if isinstance(found, str) and found else None
    return None


def _oi_request(request: plait.ModelRequest, provider: str) -> dict[str, AttributeValue]:
    parameters = {k: v for k, v in (("temperature", request.temperature),
                                    ("max_tokens", request.max_tokens),
                                    ("seed", request.seed)) if v is not None}
    return {n.OI_SPAN_KIND: "LLM", n.OI_LLM_SYSTEM: _PROVIDER_NAMES.get(provider, provider),
            n.OI_LLM_PROVIDER: provider, n.OI_LLM_MODEL: request.model,
            n.OI_LLM_PARAMETERS: json.dumps(parameters)}


def _oi_response(response: plait.ModelResponse, content: bool) -> dict[str, AttributeValue]:
    usage = response.usage
    out: dict[str, AttributeValue] = {
        n.OI_PROMPT_TOKENS: usage.input_tokens, n.OI_COMPLETION_TOKENS: usage.output_tokens,
        n.OI_TOTAL_TOKENS: usage.input_tokens + usage.output_tokens}
    if content:
        out.update({n.OI_OUTPUT: response.text, n.OI_OUTPUT_MIME: "text/plain"})
    return out


def _oi_input(request: plait.ModelRequest) -> str:
    """The messages of a request (its system message among them) as OpenInference's
    ``input.value``: JSON."""
    return json.dumps({"messages": [{"role": m.role, "content": m.content}
                                    for m in request.messages]}, ensure_ascii=False)
