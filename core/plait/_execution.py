"""Running one step: wrappers, attempts, timeout, retries with backoff, validation gate."""

from __future__ import annotations

import inspect
import random
import time
from typing import TYPE_CHECKING, Any

import anyio

from ._config import ResolvedConfig
from ._errors import PlaitError, RateLimited, StepFailed, StepTimeout, ValidationFailed
from ._results import ErrorInfo, StepRecord, Stop
from ._serialize import check_serializable

if TYPE_CHECKING:
    from ._context import StepContext
    from ._runtime import Runtime
    from ._step import Step

__all__ = ["backoff", "execute_step", "should_retry"]


async def execute_step(step: Step, ctx: StepContext) -> tuple[StepRecord, Any, Exception | None]:
    """Run a step to completion; never raises except on cancellation.

    Returns its record, its output (when it succeeded) and its error (when it failed).
    """
    started = time.time()
    t0 = time.perf_counter()
    value: Any = None
    error: Exception | None = None
    runtime = ctx.runtime
    try:
        if runtime.wraps("plait_wrap_step"):
            value = await runtime.around(
                "plait_wrap_step", {"step_id": ctx.step_id, "step": step, "ctx": ctx},
                lambda: _attempts(step, ctx),
            )
        else:  # nothing to wrap it in: the hot path of every step
            value = await _attempts(step, ctx)
    except Exception as exc:
        error = exc
    latency = time.perf_counter() - t0
    record = StepRecord(
        ctx.step_id, "ok" if error is None else "failed", ctx.attempt, started,
        started + latency, latency, ctx.usage,
        None if error is None else ErrorInfo.of(error), ctx._route, dict(ctx._children),
    )
    return record, value, error


async def _attempts(step: Step, ctx: StepContext) -> Any:
    cfg = ctx.config
    runtime = ctx.runtime
    for name in cfg.validate:  # a misspelled validator fails before any work is paid for
        if isinstance(name, str):
            runtime.validator(name)
    while True:
        try:
            if cfg.timeout is None:
                value = await _attempt(step, ctx)
            else:
                with anyio.move_on_after(cfg.timeout) as scope:
                    value = await _attempt(step, ctx)
                if scope.cancel_called:  # also a sync step's thread that ended too late
                    raise StepTimeout(ctx.path, cfg.timeout)
            check_serializable(runtime.converter, value.data if isinstance(value, Stop)
                               else value, ctx.path)
            return value
        except Exception as exc:
            if ctx.attempt > cfg.retries or not should_retry(exc, cfg.retry_on):
                raise
            await anyio.sleep(backoff(ctx.attempt, cfg, exc))
            ctx.attempt += 1


async def _attempt(step: Step, ctx: StepContext) -> Any:
    """One attempt and its validation gate: the step's timeout covers both."""
    value = await ctx.runtime.run_step(step, ctx)
    if (ctx.config.validate and not isinstance(value, Stop)
            and not getattr(step, "validates_itself", False)):
        await gate(value, ctx.config.validate, ctx)
    return value


def should_retry(exc: BaseException, retry_on: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` is worth another attempt: wanted by ``retry_on`` and not permanent."""
    while isinstance(exc, StepFailed):  # a nested pipeline failed: judge by what broke it
        exc = exc.cause
    if not isinstance(exc, retry_on):
        return False
    return exc.retryable if isinstance(exc, PlaitError) else True


def backoff(attempt: int, cfg: ResolvedConfig, exc: BaseException | None = None) -> float:
    """Exponential backoff with jitter, capped; a provider's Retry-After is honoured."""
    cap = min(cfg.retry_max_delay, cfg.retry_delay * 2 ** (attempt - 1))
    delay = cap / 2 + random.uniform(0, cap / 2)  # equal jitter: spread out, never ~0
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        delay = max(delay, exc.retry_after)
    return float(delay)


async def gate(value: Any, validators: Any, ctx: StepContext | None,
               runtime: Runtime | None = None, where: str = "agent.ask") -> None:
    """Run the validation gate; the first rejection raises ``ValidationFailed``.

    A validator taking two positional parameters is called as ``validator(value, ctx)``,
    so it can make model calls that count against the run's budget (``ctx`` is ``None``
    for ``agent.ask`` outside a step).
    """
    if ctx is not None:
        runtime, where = ctx.runtime, ctx.path
    assert runtime is not None, "gate needs a context or a runtime"
    for validator in validators:
        if isinstance(validator, str):
            name, check = validator, runtime.validator(validator)
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
