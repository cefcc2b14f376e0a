"""Fallback chains: ``Agent(model, fallback=[...])`` asks the next model when one is down.

A model is given up on only after its own retries are spent on a transient error (it is
unavailable, rate limited, or timed out), or when the request does not fit its context
window (a model with a larger one may hold it); a permanent error (a bad key, a bad
request, a refusal) is raised at once, since another model would not make it right. Each
model is asked as its own call: priced at its own price, reserving its own worst case in
the run's budget, and the reply's ``model`` says which one answered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import (
    BudgetExceeded,
    ContextTooLong,
    ProviderUnavailable,
    RateLimited,
    StepFailed,
)

if TYPE_CHECKING:
    from ._agent import Agent
    from ._results import Reply
    from ._runtime import Runtime

__all__ = ["NEXT_MODEL_ON", "budget_spent", "with_fallback"]

NEXT_MODEL_ON = (ProviderUnavailable, RateLimited, ContextTooLong)
"""The errors after which the next model of a chain is asked (timeouts are
``ProviderUnavailable`` with no status)."""

_FOR_THE_FIRST = frozenset({"model", "price"})  # overrides that name the first model only

Ask = Callable[..., Awaitable["Reply"]]


async def with_fallback(ask: Ask, runtime: Runtime, agent: Agent, prompt: Any,
                        overrides: Mapping[str, Any], **where: Any) -> Reply:
    """``ask`` (one model's whole call) down ``agent``'s chain until a model answers."""
    models = (agent.model, *agent.fallback)
    rest = {k: v for k, v in overrides.items() if k not in _FOR_THE_FIRST}
    failed: list[str] = []
    for i, model in enumerate(models):
        # a fallback is priced from its provider's table: the agent's price is its own model's
        current = agent if i == 0 else attrs.evolve(agent, model=model, price=None)
        try:
            return await ask(runtime, current, prompt, rest if i else overrides,
                             fallback=False, **where)
        except NEXT_MODEL_ON as exc:
            failed.append(f"{current.model}: {type(exc).__name__}: {exc}")
            if i == len(models) - 1:
                for earlier in failed[:-1]:
                    exc.add_note(f"fallback chain: asked before it, and failed: {earlier}")
                raise
    raise AssertionError("unreachable: the last model's error is raised")


def budget_spent(error: BaseException) -> bool:
    """Whether a failure is a run's budget running out, which no other branch escapes."""
    while isinstance(error, StepFailed):
        error = error.cause
    return isinstance(error, BudgetExceeded)
