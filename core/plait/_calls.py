"""One model call, done right: budget reservation, limits, retries, parsing, re-asks.

Order of events for each request: reserve the worst case in every budget over the call
(refused at once if it does not fit), wait for the provider's limiters, send through the
``plait_wrap_model_call`` wrappers, settle the reservation to the real cost, charge the
usage meters, then parse and validate. A malformed or rejected reply is re-asked with
the problem appended; transient provider errors are retried with backoff (honouring
Retry-After). Both are bounded by the resolved ``retries`` (2 when nothing says otherwise).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ._budget import Budget, UsageMeter, meter_for
from ._config import NOTSET, Config
from ._errors import (
    OutputParseError,
    PlaitError,
    ProviderError,
    UnknownPrice,
    ValidationFailed,
)
from ._execution import backoff, gate
from ._model import Message, ModelRequest, ModelResponse
from ._money import Usage

if TYPE_CHECKING:
    from ._agent import Agent, Reply
    from ._context import StepContext
    from ._runtime import Runtime

__all__ = ["ask", "call_model", "estimate_input_tokens"]

DEFAULT_RETRIES = 2
DEFAULT_MAX_TOKENS_UNDER_BUDGET = 1024  # a budget needs a bound on output to hold
_AGENT_FIELDS = frozenset({"model", "system", "output", "temperature", "max_tokens", "stop",
                           "seed", "price", "extra"})
_POLICY_FIELDS = frozenset({"timeout", "retries", "retry_delay", "retry_max_delay",
                            "retry_on", "validate"})


async def ask(ctx: StepContext, agent: Agent, prompt: str, overrides: Mapping[str, Any]) -> Reply:
    return await call_model(ctx.runtime, agent, prompt, overrides, ctx=ctx)


# Providers send a schema as a tool definition or a system-prompt hint, and vendors add
# their own instructions around it (Anthropic's tool use adds a few hundred tokens).
STRUCTURED_OVERHEAD_TOKENS = 512


def estimate_input_tokens(request: ModelRequest) -> int:
    """An upper bound on input tokens: byte-level tokenizers never make more tokens than
    bytes, plus a few per message for the chat template, plus the schema and the vendors'
    structured-output instructions. Loose, but a budget can trust it."""
    tokens = sum(len(m.content.encode()) + 8 for m in request.messages)
    if request.json_schema is not None:
        tokens += len(json.dumps(request.json_schema).encode()) + STRUCTURED_OVERHEAD_TOKENS
    return tokens


async def call_model(runtime: Runtime, agent: Agent, prompt: str,
                     overrides: Mapping[str, Any], *, ctx: StepContext | None = None,
                     meter: UsageMeter | None = None) -> Reply:
    from ._agent import Reply, split_model

    if not isinstance(prompt, str):
        raise TypeError(f"a prompt must be a str, got {type(prompt).__name__}")
    unknown = set(overrides) - _AGENT_FIELDS - _POLICY_FIELDS
    if unknown:
        raise TypeError(f"unknown override(s) {', '.join(sorted(unknown))}; valid: "
                        f"{', '.join(sorted(_AGENT_FIELDS | _POLICY_FIELDS))}")
    changes = {k: v for k, v in overrides.items() if k in _AGENT_FIELDS}
    if changes:
        agent = attrs.evolve(agent, **changes)
    policy = Config(**{k: v for k, v in overrides.items() if k in _POLICY_FIELDS})
    base = ctx.config if ctx is not None else Config().resolve()
    # A step's validators gate the step's output, not each reply inside it: a call is
    # validated only by what the call itself asks for (agent.as_step passes the step's).
    given = {k: v for k, v in attrs.asdict(policy, recurse=False).items()
             if v is not NOTSET and k != "retries"}
    cfg = attrs.evolve(base, **{"validate": (), **given})
    if policy.retries is not NOTSET:
        retries = policy.retries
    else:
        retries = base.retries if base.retries_given else DEFAULT_RETRIES
    timeout = overrides.get("timeout")  # per request; the step's timeout covers the step

    # A Runtime's model_override wins over the agent's model and per-call overrides; the
    # agent's own price was for its own model, so the override's price applies.
    model_id = runtime.model_override or agent.model
    provider_name, model = split_model(model_id)
    provider = runtime.provider(provider_name)
    spec = agent.spec
    budget: Budget | None = ctx._budget if ctx is not None else None
    own_price = agent.price if runtime.model_override is None else None
    price = own_price or runtime.price(provider_name, model)
    if budget is not None and price is None:
        raise UnknownPrice(model_id)
    max_tokens = agent.max_tokens
    if budget is not None and max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS_UNDER_BUDGET
    if meter is None and ctx is not None:
        meter = meter_for(ctx, ctx._meter)
    limiters = runtime.limits()

    messages: tuple[Message, ...] = (
        *([Message("system", agent.system)] if agent.system else []),
        Message("user", prompt),
    )
    total = Usage()
    attempt = 0
    while True:
        attempt += 1
        request = ModelRequest(
            model, messages, agent.temperature, max_tokens, agent.stop, agent.seed,
            spec.schema, spec.name, timeout, agent.extra)
        estimate = estimate_input_tokens(request)
        reservation = None
        if budget is not None and price is not None:
            reservation = budget.reserve(price.worst_case(estimate, max_tokens or 0))
        try:
            async with limiters.acquire(provider_name, model, estimate + (max_tokens or 0)):
                response = await runtime.around(
                    "plait_wrap_model_call",
                    {"request": request, "provider": provider_name, "ctx": ctx},
                    functools.partial(_complete, provider, request, provider_name),
                )
        except BaseException as exc:
            if reservation is not None:
                reservation.release()
            if not isinstance(exc, ProviderError) or not exc.retryable:
                raise
            if attempt > retries:
                raise _spent(exc)  # noqa: B904  # the same error, re-raised marked as spent
            await anyio.sleep(backoff(attempt, cfg, exc))
            continue
        cost = price.cost(response.usage) if price is not None else Decimal(0)
        if reservation is not None:
            reservation.settle(cost)
        limiters.settle(provider_name, model, estimate + (max_tokens or 0),
                        response.usage.input_tokens + response.usage.output_tokens)
        usage = Usage.of_call(response.usage, cost)
        total = total + usage
        if meter is not None:
            meter.add(usage)
        try:
            output = spec.parse(response.text, response.parsed, runtime.converter)
            if cfg.validate:
                await gate(output, cfg.validate, ctx, runtime)
        except (OutputParseError, ValidationFailed) as exc:
            if attempt > retries:
                raise _spent(exc)  # noqa: B904  # the same error, re-raised marked as spent
            messages = (*messages, Message("assistant", response.text),
                        Message("user", _reask(exc, spec)))
            continue
        return Reply(output, response.text, total, response.model or model, attempt,
                     response.finish_reason)


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


def _spent(exc: PlaitError) -> PlaitError:
    """This call already used its retries: a step retry must not multiply them again."""
    exc.retryable = False
    return exc


def _reask(exc: PlaitError, spec: Any) -> str:
    problem = exc.reason if isinstance(exc, ValidationFailed) else getattr(exc, "message", str(exc))
    return (f"Your previous reply could not be used: {problem}. "
            f"Answer again with {spec.describe()}, and nothing else.")
