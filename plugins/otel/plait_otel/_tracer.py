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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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
    from opentelemetry.util.types import AttributeValue

__all__ = ["OtelTracer"]


# The step whose span is current, so a router's branch can name the route on its span.
_CURRENT_STEP: contextvars.ContextVar[tuple[Any, Span] | None] = contextvars.ContextVar(
    "plait_otel_step", default=None)

_TRUE = ("1", "true", "yes", "on")
# gen_ai.provider.name has well-known values; plait's prefixes match them except these.
_PROVIDER_NAMES = {"gemini": "gcp.gemini"}


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
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None, *,
                 capture_content: bool | None = None) -> None:
        self.tracer_provider = tracer_provider
        self.capture_content = _content_from_env() if capture_content is None \
            else capture_content
        self._tracer: trace.Tracer | None = None

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
        span, token = self._start(f"plait.run {run.pipeline}", {
            n.RUN_ID: run.run_id, n.PIPELINE: run.pipeline})
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
        span, token = self._start(f"plait.step {ctx.path}")
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
        span, token = self._start(f"chat {request.model}", _request(request, provider, ctx),
                                  SpanKind.CLIENT)
        if self.capture_content and span.is_recording():
            span.set_attributes(_prompt(request))
        try:
            response: plait.ModelResponse = yield
        except BaseException as exc:
            _fail(span, exc)
            raise
        else:
            if span.is_recording():
                span.set_attributes(_response(response, request, call))
                if self.capture_content:
                    span.set_attribute(n.OUTPUT_MESSAGES, json.dumps([{
                        "role": "assistant",
                        "parts": [{"type": "text", "content": response.text}],
                        "finish_reason": response.finish_reason or "stop",
                    }], ensure_ascii=False))
        finally:
            _end(span, token)

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


def _step_end(span: Span, step: plait.Step, ctx: plait.StepContext, status: str) -> None:
    if not span.is_recording():
        return
    attributes: dict[str, AttributeValue] = {
        n.RUN_ID: ctx.run_id, n.STEP_ID: ctx.path, n.STEP_KIND: type(step).__name__,
        n.STEP_ATTEMPTS: ctx.attempt, n.STATUS: status}
    usage = ctx.usage
    if usage.calls:  # a step that asked no model has no usage to report
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
    return {n.USAGE_INPUT: usage.input_tokens, n.USAGE_OUTPUT: usage.output_tokens,
            n.USAGE_CALLS: usage.calls, n.COST: str(usage.cost)}


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
    if usage.cached_tokens:
        out[n.USAGE_CACHE_READ] = usage.cached_tokens
    if call.price is not None and call.usage is not None:  # priced by the engine, exactly
        out[n.COST] = str(call.usage.cost)
    return out


def _prompt(request: plait.ModelRequest) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {n.INPUT_MESSAGES: json.dumps([
        {"role": m.role, "parts": [{"type": "text", "content": m.content}]}
        for m in request.messages if m.role != "system"], ensure_ascii=False)}
    if request.system is not None:
        out[n.SYSTEM_INSTRUCTIONS] = json.dumps([{"type": "text", "content": request.system}],
                                                ensure_ascii=False)
    return out
