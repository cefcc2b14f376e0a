"""The plait plugin contract: every hook a plugin can implement.

A plugin is a module (or object) of functions marked ``@plait.hookimpl`` and named after
the hooks below, installed with one entry point in group ``plait``. Implementations may
accept any subset of a hook's arguments (pluggy prunes the rest), so new arguments can be
added without breaking plugins.

Three kinds of hook, by phase:

- **Registration** hooks run once per Runtime, when plugins load. They receive a
  ``register`` callback and must be pure: no I/O, no network, no heavy imports (import
  heavy libraries inside the factories and functions you register instead).
- **Decision** hooks answer "who handles this?". They are ``firstresult``: the first
  implementation to return something other than ``None`` wins. plait's built-in
  behaviour is itself a plugin registered to run last, so any plugin can take over.
  They return an *awaitable*, which the engine awaits.
- **Wrapper** hooks surround the real ``await`` of a run, a step, a fan-out, an
  aggregation, a model call and a tool call. Return a generator that yields exactly once (or
  ``None`` to stay out): the engine runs it up to the ``yield``, awaits the work, then
  ``send``s the result into it (the value of the ``yield`` expression) or ``throw``s
  the error at the ``yield``. The wrapper is entered and left in the same task, so
  context variables (and OpenTelemetry's current span) set before the ``yield`` are
  current during the work. A wrapper must not swallow the error it is thrown.
  Wrappers are never called per token or per item of a fan-out.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from ._context import StepContext
    from ._ensemble import AggregationJob
    from ._model import (
        Limits,
        ModelCall,
        ModelRequest,
        ModelResponse,
        ProviderFactory,
        ToolCall,
    )
    from ._money import Price
    from ._results import Aggregation, FanOutJob, ItemOutcome, RunInfo
    from ._router import Router
    from ._runtime import Runtime
    from ._step import Step
    from ._store import RunStore
    from ._tools import Tool

__all__ = [
    "RegisterAggregator",
    "RegisterCommand",
    "RegisterConverterHook",
    "RegisterExecutor",
    "RegisterMetric",
    "RegisterProvider",
    "RegisterStore",
    "RegisterTracer",
    "RegisterValidator",
    "Wrapper",
    "hookimpl",
    "hookspec",
]

hookspec = pluggy.HookspecMarker("plait")
hookimpl = pluggy.HookimplMarker("plait")

Wrapper = Generator[None, Any, None]
"""What a wrapper hook returns: a generator that yields exactly once (or an ``AsyncWrapper``)."""

AsyncWrapper = AsyncGenerator[None, Any]
"""What a wrapper hook may return instead: an async generator that yields exactly once, so
it may ``await`` before and after its ``yield`` (a quota check, a moderation call)."""


# The ``register`` callbacks the registration hooks receive. Keyword arguments may be
# added later; a plugin that passes only what it needs keeps working.


class RegisterProvider(Protocol):
    def __call__(self, name: str, factory: ProviderFactory, *,
                 prices: Mapping[str, Price] | None = None,
                 limits: Limits | None = None,
                 context_windows: Mapping[str, int] | None = None) -> None: ...


class RegisterAggregator(Protocol):
    def __call__(self, name: str,
                 aggregator: Callable[[AggregationJob], Awaitable[Aggregation]]) -> None: ...


class RegisterValidator(Protocol):
    def __call__(self, name: str, validator: Callable[..., Any]) -> None: ...


class RegisterTracer(Protocol):
    def __call__(self, name: str, tracer: object, *, default: bool = True) -> None: ...


class RegisterCommand(Protocol):
    def __call__(self, command: Any) -> None: ...  # a click.Command (click is the CLI's)


class RegisterConverterHook(Protocol):
    def __call__(self, cls: Any, unstructure: Callable[[Any], Any],
                 structure: Callable[[Any, Any], Any]) -> None: ...


class RegisterMetric(Protocol):
    def __call__(self, name: str, metric: Callable[..., Any]) -> None: ...


class RegisterExecutor(Protocol):
    def __call__(self, name: str, executor: Callable[[FanOutJob, StepContext],
                                                     Awaitable[list[ItemOutcome]]]) -> None: ...


class RegisterStore(Protocol):
    def __call__(self, scheme: str, factory: Callable[[str], RunStore]) -> None: ...


# --------------------------------------------------------------------------------------
# Registration: pure, once per Runtime
# --------------------------------------------------------------------------------------


@hookspec
def plait_register_providers(register: RegisterProvider) -> None:
    """Register model providers.

    ``register(name, factory, *, prices=None, limits=None, context_windows=None)``:

    - ``name``: the prefix in ``Agent(model="<name>:<model>")``.
    - ``factory(env: plait.ProviderEnv) -> provider``: called once per Runtime on first
      use; the provider is any object with ``async def complete(request) -> ModelResponse``.
      It may also stream: ``stream(request)``, an async generator of ``plait.StreamChunk``
      (text deltas, then a last chunk with ``usage`` and ``finish_reason``); without it
      ``ctx.stream`` gets the ``complete`` reply as one chunk.
      ``env.http`` is the Runtime's shared ``httpx.AsyncClient``; ``env.settings`` holds
      ``Runtime(settings={name: {...}})``.
    - ``prices``: ``{model: plait.Price}`` in USD per million tokens (users can override).
    - ``limits``: default ``plait.Limits`` for the provider.
    - ``context_windows``: ``{model: tokens}``, input and output together; a request that
      may not fit is refused with ``plait.ContextTooLong`` before it is sent. Models are
      matched like prices (a snapshot falls back to its base, then ``"*"``).

    Called for every plugin.
    """


@hookspec
def plait_register_aggregators(register: RegisterAggregator) -> None:
    """Register ensemble aggregation strategies.

    ``register(name, aggregator)``: ``aggregator`` is an async callable
    ``(job: plait.AggregationJob) -> plait.Aggregation``, used by
    ``ctx.ensemble(..., aggregate=name)``.

    Called for every plugin.
    """


@hookspec
def plait_register_validators(register: RegisterValidator) -> None:
    """Register named validators for validation gates.

    ``register(name, validator)``: ``validator(value)`` (sync or async) passes by returning
    ``None`` or ``True`` and rejects by returning ``False`` or a reason string, or by
    raising ``plait.ValidationFailed``. Used as ``Config(validate=[name])``. A validator
    whose signature takes two positional parameters is called ``validator(value, ctx)``
    with the step's ``plait.StepContext``, so it can read the run (``ctx.dep``,
    ``ctx.input``) or ask a model (``ctx.ask``, charged to the run's budget). The gate
    runs inside the step's timeout; for ``agent.as_step`` and ``ctx.ask(...,
    validate=...)`` a rejection re-asks the model with the reason appended.

    Called for every plugin.
    """


@hookspec
def plait_register_tracers(register: RegisterTracer) -> None:
    """Register tracers: plugin objects that implement wrapper hooks.

    ``register(name, tracer, *, default=True)``: a Runtime enables the tracers named in
    ``Runtime(tracers=[...])``, or every ``default`` one when that is not given.

    Called for every plugin.
    """


@hookspec
def plait_register_commands(register: RegisterCommand) -> None:
    """Add commands to the ``plait`` CLI.

    ``register(command)``: a ``click.Command`` (or group), added under its own name.

    Called for every plugin.
    """


@hookspec
def plait_register_converter_hooks(register: RegisterConverterHook) -> None:
    """Teach the Runtime's private cattrs converter about more types.

    ``register(cls, unstructure, structure)``: ``unstructure(value) -> JSON-able`` and
    ``structure(data, cls) -> value``; used whenever outputs cross a step boundary
    (results to JSON, traces, remote executors).

    Called for every plugin.
    """


@hookspec
def plait_register_metrics(register: RegisterMetric) -> None:
    """Register evaluation metrics for ``plait.evaluate`` and ``plait eval --metric``.

    ``register(name, metric)``: ``metric(output, expected)`` (sync or async) scores one
    case: ``True``/``False`` or a number from 0 to 1 (1 is right). A metric whose
    signature takes three positional parameters is called ``metric(output, expected,
    mctx)`` with a ``plait.MetricContext`` (the case's inputs and the Runtime), so it can
    ask a model. Raising ``plait.MetricError`` marks the case as failed to score.

    Called for every plugin.
    """


@hookspec
def plait_register_executors(register: RegisterExecutor) -> None:
    """Register named fan-out executors.

    ``register(name, executor)``: ``executor(job, ctx)`` returns an awaitable of one
    ``plait.ItemOutcome`` per item, with the contract of ``plait_execute_fanout``. Chosen
    by name: ``ctx.map(..., executor=name)``, ``plait.FanOut(..., executor=name)`` or
    ``plait.Runtime(executor=name)``; plait registers ``"local"`` (its bounded pool of
    anyio tasks). Import heavy libraries when the executor is called, not here.

    Called for every plugin.
    """


@hookspec
def plait_register_stores(register: RegisterStore) -> None:
    """Register run stores by the scheme of their location.

    ``register(scheme, factory)``: ``factory(location) -> plait.RunStore`` builds the store
    for ``PLAIT_STORE`` (or ``Runtime(store=...)``) values that start with
    ``<scheme>://``; it is called once per Runtime, on the first run, and must not do I/O
    itself (the store's ``open`` does). plait registers ``sqlite`` (also used for a plain
    file path). Check a store with ``plait_testing.contracts.RunStoreContract``.

    Called for every plugin.
    """


# --------------------------------------------------------------------------------------
# Decisions: firstresult, built-in default runs last
# --------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def plait_price(provider: str, model: str, table: Mapping[str, Price]) -> Price | None:
    """Decide what ``provider:model`` costs: a ``plait.Price`` (USD per million tokens), or
    ``None`` to leave it to the next plugin.

    ``table`` is the price table the provider registered. The default looks ``model`` up
    in it (a dated snapshot falls back to its base, then ``"*"``), so a plugin with
    maintained price data answers first and the built-in tables stay the fallback. A
    ``Runtime(prices=...)`` entry and an ``Agent(price=...)`` win over every plugin. Asked
    once per model per Runtime (the answer is kept), and synchronously: no I/O here, load
    price data when the plugin is imported or on its first answer. When nothing answers,
    the model's calls are reported with an unknown cost, and a budget refuses them
    (``plait.UnknownPrice``).

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def plait_run_step(step: Step, ctx: StepContext) -> Awaitable[Any] | None:
    """Run one attempt of a step and return an awaitable of its output.

    The default awaits ``step.run(ctx)``. Retries, timeouts and validation gates stay
    with the engine, around whatever this returns.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def plait_choose_route(router: Router, ctx: StepContext) -> Awaitable[Any] | None:
    """Decide which branch a router takes; return an awaitable of the branch key.

    The default calls ``router.route(ctx)`` (sync or async).

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def plait_execute_fanout(job: FanOutJob, ctx: StepContext) -> Awaitable[list[ItemOutcome]] | None:
    """Execute a fan-out: run ``job.fn`` over ``job.items``, at most ``job.limit`` at a time.

    Return an awaitable of one ``plait.ItemOutcome`` per item, in input order; when
    ``job.fail_fast`` is true, items not yet started may be left out after the first
    error. Await ``job.finish(outcome)`` as each item finishes, so progress displays can
    count items without a hook per item and the run's listeners (a stream, a run store)
    see each outcome. The default calls the executor named by ``job.executor`` (see
    ``plait_register_executors``; ``"local"`` runs a bounded pool of anyio tasks in this
    process); a plugin can take over every fan-out here instead.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def plait_aggregate(name: str, job: AggregationJob) -> Awaitable[Aggregation] | None:
    """Combine ensemble candidates into one answer; return an awaitable ``Aggregation``.

    The default looks ``name`` up among the aggregators registered through
    ``plait_register_aggregators`` and calls it.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def plait_answer_model_call(
    request: ModelRequest, provider: str, call: ModelCall, runtime: Runtime,
    send: Callable[[], Awaitable[ModelResponse]],
) -> Awaitable[ModelResponse] | None:
    """Decide who answers one model request; return an awaitable ``ModelResponse``.

    Consulted before the request reserves any budget or waits for a limiter. ``send()``
    sends it for real (reserve, limit, ``plait_wrap_model_call``, settle) and returns
    the provider's response, with ``call.usage`` set by then. An implementation that
    returns a response without awaiting ``send()`` answered the request itself: the
    engine charges nothing for it and counts it as a cache hit (``Usage.cache_hits``,
    ``Reply.cached``). The default awaits ``send()``.

    Stops at first non-None result.
    """


# --------------------------------------------------------------------------------------
# Wrappers: around the real await, driven by the engine
# --------------------------------------------------------------------------------------


@hookspec
def plait_wrap_run(pipeline: Any, run: RunInfo) -> Wrapper | None:
    """Wrap a whole pipeline run; the result sent in is the ``PipelineResult``.

    Called for every plugin; wrappers are entered in hook order and left in reverse.
    """


@hookspec
def plait_wrap_step(step_id: str, step: Step, ctx: StepContext) -> Wrapper | None:
    """Wrap a step, all its attempts included; the result sent in is its output.

    ``ctx.attempt`` tells how many attempts ran. Called for every plugin.
    """


@hookspec
def plait_wrap_fanout(job: FanOutJob, ctx: StepContext) -> Wrapper | None:
    """Wrap a fan-out; the result sent in is the ``FanOutResult``.

    Called once per fan-out, never per item. Called for every plugin.
    """


@hookspec
def plait_wrap_aggregate(name: str, job: AggregationJob) -> Wrapper | None:
    """Wrap an ensemble's aggregation; the result sent in is the ``Aggregation``.

    Called for every plugin.
    """


@hookspec
def plait_wrap_model_call(
    request: ModelRequest, provider: str, ctx: StepContext | None, call: ModelCall
) -> Wrapper | None:
    """Wrap one request to a model provider; the result sent in is the ``ModelResponse``.

    ``provider`` is the prefix (``"openai"``); ``ctx`` is ``None`` outside a step;
    ``call`` carries the price the request is charged at and its attempt number, and
    by the time the response is sent in, ``call.usage`` holds its tokens and exact cost
    (so a tracer never prices a call itself). Called once per request (re-asks and
    retries are separate requests), never per token: for a stream (``call.streamed``) the
    response sent in is the assembled reply, ``call.first_token_s`` the seconds to its
    first text, and a stream the reader left early is sent in with ``finish_reason``
    ``"abandoned"``. Called for every plugin.
    """


@hookspec
def plait_wrap_tool_call(call: ToolCall, tool: Tool, ctx: StepContext | None) -> Wrapper | None:
    """Wrap one run of a tool a model called; the result sent in is what the tool returned.

    ``call`` is the model's request (name, decoded arguments, id); ``tool`` the
    ``plait.Tool`` that answers it; ``ctx`` is ``None`` outside a step. A tool's error,
    and the ``TimeoutError`` of one that ran past its ``timeout``, is thrown at the
    ``yield`` (the model is then told, unless the tool raises its errors). Called once
    per tool call. Called for every plugin.
    """
