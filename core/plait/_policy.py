"""Retry and validation policy: when to try again, how long to wait, and the validation gate.

Shared by step attempts (``_execution``) and model calls (``_calls``), so both follow one
rule and neither reaches into the other.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterable
from typing import Any

from ._config import ResolvedConfig, Validator
from ._errors import PlaitError, RateLimited, StepFailed, ValidationFailed

__all__ = ["MAX_RETRY_AFTER", "backoff", "gate", "retryable", "should_retry"]

MAX_RETRY_AFTER = 300.0
"""The longest ``Retry-After`` (seconds) plait waits for; a provider asking for longer
fails the call at once rather than holding the run for hours."""


def retryable(exc: BaseException) -> bool:
    """Whether waiting and trying again could help: a plait error says so itself (and a
    rate limit that asks for more than ``MAX_RETRY_AFTER`` is not worth the wait); any
    other error is the caller's to judge (``retry_on``)."""
    if isinstance(exc, RateLimited) and (exc.retry_after or 0) > MAX_RETRY_AFTER:
        return False
    return exc.retryable if isinstance(exc, PlaitError) else True


def should_retry(exc: BaseException, retry_on: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` is worth another attempt: wanted by ``retry_on`` and not permanent."""
    while isinstance(exc, StepFailed):  # a nested pipeline failed: judge by what broke it
        exc = exc.cause
    return isinstance(exc, retry_on) and retryable(exc)


def backoff(attempt: int, cfg: ResolvedConfig, exc: BaseException | None = None) -> float:
    """Exponential backoff with equal jitter, capped; a provider's Retry-After is honoured."""
    cap = min(cfg.retry_max_delay, cfg.retry_delay * 2 ** (attempt - 1))
    delay = cap / 2 + random.uniform(0, cap / 2)  # equal jitter: spread out, never ~0
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        delay = max(delay, exc.retry_after)
    return float(delay)


async def gate(value: Any, validators: Iterable[Validator], ctx: Any,
               lookup: Callable[[str], Any], where: str) -> None:
    """Run the validation gate; the first rejection raises ``ValidationFailed``.

    ``lookup`` finds a registered validator by name. A validator taking two positional
    parameters is called as ``validator(value, ctx)``, so it can make model calls that
    count against the run's budget (``ctx`` is ``None`` for ``agent.ask`` outside a step).
    """
    for validator in validators:
        if isinstance(validator, str):
            name, check = validator, lookup(validator)
        else:
            name, check = getattr(validator, "__name__", repr(validator)), validator
        try:
            verdict = check(value, ctx) if _takes_context(check) else check(value)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except ValidationFailed as exc:
            raise ValidationFailed(where, exc.validator or name, exc.reason) from exc
        if verdict is None or verdict is True:
            continue
        if verdict is False or isinstance(verdict, str):
            reason = verdict if isinstance(verdict, str) and verdict else "rejected the output"
            raise ValidationFailed(where, name, reason)
        raise TypeError(f"validator {name!r} returned {verdict!r}; return None/True to pass, "
                        "False or a reason string to reject")


def _takes_context(check: Any) -> bool:
    try:
        params = inspect.signature(check).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: they take the value
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in positional for p in params) >= 2
