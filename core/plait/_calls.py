"""One model call, done right: budget reservation, limits, retries, parsing, re-asks.

A call runs in three parts:

- ``prepare``: apply per-call overrides, resolve the policy, route to the provider and
  model (a Runtime's ``model_override`` wins), price it and find its budget and meter;
- ``send_once``, for each request: reserve the worst case in every budget over the call
  (refused at once if it does not fit), wait for the provider's limiters, send through
  the ``plait_wrap_model_call`` wrappers, settle the reservation to the real cost and
  charge the usage meters;
- ``call_model``'s loop: parse and validate the reply, re-ask a malformed or rejected
  one with the problem appended, retry transient provider errors with backoff
  (honouring Retry-After). Both are bounded by the resolved ``retries`` (2 when nothing
  says otherwise).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ._answer import HOOK as ANSWER_HOOK
from ._answer import answer
from ._budget import Budget, Reservation, UsageMeter, meter_for
from ._config import NOTSET, Config, ResolvedConfig
from ._conversation import as_turns
from ._errors import (
    ContextTooLong,
    OutputParseError,
    PlaitError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnknownPrice,
    ValidationFailed,
)
from ._fallback import with_fallback
from ._model import Message, ModelCall, ModelRequest, ModelResponse, ToolSpec, split_model
from ._money import Price, TokenCount, Usage
from ._policy import MAX_RETRY_AFTER, backoff, gate, retryable
from ._results import Reply
from ._tools import ToolLoop

if TYPE_CHECKING:
    from ._agent import Agent
    from ._context import StepContext
    from ._runtime import Runtime
    from ._scope import StepScope

__all__ = ["call_model", "estimate_input_tokens"]

DEFAULT_RETRIES = 2
DEFAULT_MAX_TOKENS_UNDER_BUDGET = 1024  # a budget needs a bound on output to hold
# Providers send a schema as a tool definition or a system-prompt hint, and vendors add
# their own instructions around it (Anthropic's tool use adds a few hundred tokens).
STRUCTURED_OVERHEAD_TOKENS = 512
# A chat template adds a default system prompt when a request has none (SmolLM2's is 21
# tokens, Llama 3's knowledge-date preamble about 25) and the assistant's opening turn.
TEMPLATE_OVERHEAD_TOKENS = 64
_AGENT_FIELDS = frozenset({"model", "system", "output", "temperature", "max_tokens", "stop",
                           "seed", "price", "extra"})
_POLICY_FIELDS = frozenset({"timeout", "retries", "retry_delay", "retry_max_delay",
                            "retry_on", "validate"})
_UNANSWERED = Usage(requests=1)  # a request sent that brought back no usage
_OUTSIDE_A_STEP = Config().resolve()  # agent.ask outside a run: the defaults


def estimate_input_tokens(request: ModelRequest) -> int:
    """An upper bound on input tokens: byte-level tokenizers never make more tokens than
    bytes, plus a few per message for the chat template's turn markers, plus what a
    template adds on its own, plus the schema and the vendors' structured-output
    instructions. Loose, but a budget can trust it."""
    tokens = TEMPLATE_OVERHEAD_TOKENS + sum(len(m.content.encode()) + 8
                                            for m in request.messages)
    if request.tools:  # definitions, and the calls the model made (results are content)
        tokens += len(json.dumps([attrs.asdict(t) for t in request.tools]).encode()) + \
            sum(len(json.dumps(attrs.asdict(c)).encode()) + 8
                for m in request.messages for c in m.tool_calls) + STRUCTURED_OVERHEAD_TOKENS
    if request.json_schema is not None:
        tokens += len(json.dumps(request.json_schema).encode()) + STRUCTURED_OVERHEAD_TOKENS
    return tokens


@attrs.frozen
class _Plan:
    """A model call with everything decided before its first request."""

    agent: Agent  # with the call's overrides applied
    cfg: ResolvedConfig  # backoff and the call's own validators
    retries: int
    timeout: float | None  # per request; the step's timeout covers the step
    provider_name: str
    model: str
    provider: Any
    price: Price | None
    max_tokens: int | None
    budget: Budget | None
    meter: UsageMeter | None
    ctx: StepContext | None
    window: int | None  # the model's context window, when its provider declares one


def prepare(runtime: Runtime, agent: Agent, overrides: Mapping[str, Any],
            scope: StepScope | None, meter: UsageMeter | None) -> _Plan:
    unknown = set(overrides) - _AGENT_FIELDS - _POLICY_FIELDS
    if unknown:
        raise TypeError(f"unknown override(s) {', '.join(sorted(unknown))}; valid: "
                        f"{', '.join(sorted(_AGENT_FIELDS | _POLICY_FIELDS))}")
    changes = {k: v for k, v in overrides.items() if k in _AGENT_FIELDS}
    if changes:
        agent = attrs.evolve(agent, **changes)
    base = scope.config if scope is not None else _OUTSIDE_A_STEP
    # A step's validators gate the step's output, not each reply inside it: a call is
    # validated only by what the call itself asks for (agent.as_step passes the step's).
    cfg = base if not base.validate else attrs.evolve(base, validate=())
    retries = base.retries if base.retries_given else DEFAULT_RETRIES
    if any(k in _POLICY_FIELDS for k in overrides):  # most calls override nothing
        policy = Config(**{k: v for k, v in overrides.items() if k in _POLICY_FIELDS})
        given = {k: v for k, v in attrs.asdict(policy, recurse=False).items()
                 if v is not NOTSET and k != "retries"}
        cfg = attrs.evolve(cfg, **given)
        if policy.retries is not NOTSET:
            retries = policy.retries

    # A Runtime's model_override wins over the agent's model and per-call overrides; the
    # agent's own price was for its own model, so the override's price applies.
    model_id = runtime.model_override or agent.model
    if runtime.model_override is None:
        provider_name, model = agent.provider, agent.model_name
    else:
        provider_name, model = split_model(model_id)
    provider = runtime.provider(provider_name)
    own_price = agent.price if runtime.model_override is None else None
    price = own_price or runtime.price(provider_name, model)
    budget = scope.budget if scope is not None else None
    if price is None:
        if budget is not None:
            raise UnknownPrice(model_id)
        runtime.warn_unpriced(model_id)
    max_tokens = agent.max_tokens
    if budget is not None and max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS_UNDER_BUDGET
    if meter is None and scope is not None:
        meter = meter_for(scope, scope.meter)
    return _Plan(agent, cfg, retries, overrides.get("timeout"), provider_name, model, provider,
                 price, max_tokens, budget, meter, None if scope is None else scope.ctx,
                 runtime.context_window(provider_name, model))


async def send_once(runtime: Runtime, plan: _Plan, request: ModelRequest,
                    attempt: int) -> tuple[ModelResponse, Usage]:
    """One request, unless a plugin answers it first (``_answer``), before any budget."""
    if runtime.hooks.only_default(ANSWER_HOOK):  # no plugin answers: the hot path
        return await _send_once(runtime, plan, request, attempt)
    return await answer(runtime, plan, request, attempt, _send_once)


@attrs.frozen
class Held:
    """What one request holds while it runs: its worst case in the budgets and, in
    tokens, in the limiters (``estimate`` is its input's upper bound)."""

    estimate: int
    worst_tokens: int
    reservation: Reservation | None


def hold(plan: _Plan, request: ModelRequest) -> Held:
    """Reserve ``request``'s worst case in every budget over the call (or raise
    ``BudgetExceeded`` at once)."""
    estimate = estimate_input_tokens(request)
    reservation = None
    if plan.budget is not None and plan.price is not None:
        reservation = plan.budget.reserve(plan.price.worst_case(estimate, plan.max_tokens or 0))
    return Held(estimate, estimate + (plan.max_tokens or 0), reservation)


def price_call(plan: _Plan, call: ModelCall, tokens: TokenCount) -> None:
    """Set ``call.usage``: the tokens and their exact cost, unknown for an unpriced model
    (before wrappers see it)."""
    cost = plan.price.cost(tokens) if plan.price is not None else None
    call.usage = Usage.of_call(tokens, cost)


def settle(runtime: Runtime, plan: _Plan, held: Held, call: ModelCall) -> None:
    """An answered request: swap the reservations for its real cost and tokens, charge."""
    assert call.usage is not None, "priced when the response arrived"
    if held.reservation is not None:
        held.reservation.settle(call.usage.cost)
    runtime.limits().settle(plan.provider_name, plan.model, held.worst_tokens,
                            call.usage.input_tokens + call.usage.output_tokens)
    if plan.meter is not None:
        plan.meter.add(call.usage, f"{plan.provider_name}:{plan.model}")


def unwind(runtime: Runtime, plan: _Plan, held: Held, exc: BaseException, sent: bool) -> None:
    """A request that failed with ``exc``: keep what it may be billed, free the rest."""
    if sent and plan.meter is not None:
        plan.meter.add(_UNANSWERED, f"{plan.provider_name}:{plan.model}")
    if held.reservation is not None:
        if sent and _may_be_billed(exc):
            held.reservation.keep()
        else:
            held.reservation.release()
    if isinstance(exc, RateLimited) and exc.retry_after:  # every call to it waits
        runtime.limits().cool_down(plan.provider_name, plan.model,
                                   min(exc.retry_after, MAX_RETRY_AFTER))


async def _send_once(runtime: Runtime, plan: _Plan, request: ModelRequest,
                     attempt: int) -> tuple[ModelResponse, Usage]:
    """One request: reserve -> limit -> wrap -> settle -> meter."""
    held = hold(plan, request)
    call = ModelCall(plan.provider_name, plan.model, plan.price, attempt)
    sent = False

    async def complete() -> ModelResponse:
        nonlocal sent
        sent = True
        response = await _complete(plan.provider, request, plan.provider_name)
        price_call(plan, call, response.usage)
        return response

    try:
        async with runtime.limits().acquire(plan.provider_name, plan.model, held.worst_tokens):
            if runtime.hooks.wraps("plait_wrap_model_call"):
                response = await runtime.hooks.around(
                    "plait_wrap_model_call",
                    {"request": request, "provider": plan.provider_name, "ctx": plan.ctx,
                     "call": call},
                    complete)
            else:  # nothing to wrap it in: the hot path of every call
                response = await complete()
    except BaseException as exc:
        unwind(runtime, plan, held, exc, sent)
        raise
    settle(runtime, plan, held, call)
    assert call.usage is not None, "set when the response arrived"
    return response, call.usage


async def call_model(runtime: Runtime, agent: Agent, prompt: str | Sequence[Message],
                     overrides: Mapping[str, Any], *, scope: StepScope | None = None,
                     meter: UsageMeter | None = None, fallback: bool = True) -> Reply:
    """Ask ``agent``; charged to ``scope``'s budget and meter (or ``meter``) when given.
    ``fallback``: go down the agent's fallback chain (``_fallback``) when it has one."""
    if fallback and agent.fallback and runtime.model_override is None:
        return await with_fallback(call_model, runtime, agent, prompt, overrides,
                                   scope=scope, meter=meter)
    plan = prepare(runtime, agent, overrides, scope, meter)
    agent, spec = plan.agent, plan.agent.spec
    messages = opening(agent, prompt)
    where = "agent.ask" if scope is None else scope.path
    total = Usage()
    attempt = 0
    tools = ToolLoop(runtime, agent.tools, agent.max_tool_rounds, plan.ctx) \
        if agent.tools else None
    rounds = 0  # tool rounds: requests that spend no retries
    while True:
        attempt += 1
        request = request_for(plan, messages, tools.specs if tools is not None else ())
        try:
            response, usage = await send_once(runtime, plan, request, attempt)
        except ProviderError as exc:
            exc.requests = attempt
            if not retryable(exc):
                raise
            if attempt - rounds > plan.retries:
                raise _spent(exc, attempt)  # noqa: B904  # the same error, marked as spent
            await anyio.sleep(backoff(attempt, plan.cfg, exc))
            continue
        total = total + usage
        if tools is not None and response.tool_calls:  # run them, then ask again (_tools)
            messages = await tools.answer(messages, response)
            rounds += 1
            continue
        try:
            output = spec.parse(response.text, response.parsed, runtime.converter)
            if plan.cfg.validate:
                await gate(output, plan.cfg.validate, plan.ctx, runtime.validator, where)
        except (OutputParseError, ValidationFailed) as exc:
            exc.requests = attempt
            if attempt - rounds > plan.retries:
                raise _spent(exc, attempt)  # noqa: B904  # the same error, marked as spent
            messages = (*messages, Message("assistant", response.text),
                        Message("user", _reask(exc, spec)))
            continue
        return Reply(output, response.text, total, response.model or plan.model, attempt,
                     response.finish_reason,
                     tuple(tools.records) if tools is not None else ())


def opening(agent: Agent, prompt: str | Sequence[Message]) -> tuple[Message, ...]:
    """The first request's messages: the agent's system prompt and few-shot turns, then
    the prompt (a string, or the turns of a conversation)."""
    return (*([Message("system", agent.system)] if agent.system else []), *agent.shots,
            *as_turns(prompt))


def request_for(plan: _Plan, messages: tuple[Message, ...],
                tools: tuple[ToolSpec, ...] = ()) -> ModelRequest:
    """The request for ``messages`` (offering ``tools``); refused with ``ContextTooLong``
    before anything is sent or reserved when it may not fit the model's window."""
    agent = plan.agent
    request = ModelRequest(plan.model, messages, agent.temperature, plan.max_tokens,
                           agent.stop, agent.seed, agent.spec.schema, agent.spec.name,
                           plan.timeout, agent.extra, tools=tools)
    if plan.window is not None:
        needed = estimate_input_tokens(request) + (plan.max_tokens or 0)
        if needed > plan.window:
            raise ContextTooLong(f"{plan.provider_name}:{plan.model}", needed, plan.window)
    return request


async def _complete(provider: Any, request: ModelRequest, name: str) -> ModelResponse:
    try:
        result = provider.complete(request)
        response = await result if inspect.isawaitable(result) else result
    except PlaitError:
        raise
    except Exception as exc:  # a provider's own bug or an untranslated library error
        raise ProviderError(f"{type(exc).__name__}: {exc}", provider=name,
                            model=request.model, retryable=False) from exc
    if not isinstance(response, ModelResponse):
        raise ProviderError(f"provider returned {type(response).__name__}, not a "
                            "plait.ModelResponse", provider=name, model=request.model)
    return response


def _spent(exc: PlaitError, requests: int) -> PlaitError:
    """A call that retried (or re-asked) and still failed used its retries: a step retry
    must not multiply them. A call that sent one request (its own ``retries`` was 0) used
    none, so its error stays as retryable as it was and the step's retries apply."""
    if requests > 1:
        exc.retryable = False
    return exc


def _may_be_billed(exc: BaseException) -> bool:
    """Whether a request that failed may still have run on the provider: one that got no
    answer (it timed out, the connection dropped, the call was cancelled in flight).
    An error the provider answered with (a refusal, a 4xx or
    5xx status, a rate limit) means it did not run the request, and is not billed."""
    if isinstance(exc, ProviderUnavailable):
        return exc.status is None
    return not isinstance(exc, PlaitError)


def _reask(exc: PlaitError, spec: Any) -> str:
    problem = exc.reason if isinstance(exc, ValidationFailed) else getattr(exc, "message", str(exc))
    return (f"Your previous reply could not be used: {problem}. "
            f"Answer again with {spec.describe()}, and nothing else.")
