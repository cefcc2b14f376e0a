"""Running one step: wrappers, attempts, timeout, retries with backoff, validation gate."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from ._errors import StepTimeout
from ._events import StepFinished, StepStarted
from ._policy import backoff, gate, should_retry
from ._results import StepRecord, StepStatus, Stop
from ._serialize import check_serializable
from ._timeouts import timeout_scope

if TYPE_CHECKING:
    from ._config import ResolvedConfig
    from ._hooks import Hooks
    from ._scope import StepScope
    from ._step import Step

__all__ = ["attempt_step", "execute_step", "one_plain_attempt", "run_attempts", "runs_directly"]

T = TypeVar("T")


async def execute_step(step: Step, scope: StepScope) -> tuple[StepRecord, Any, Exception | None]:
    """Run a step to completion; never raises except on cancellation (or when a run
    listener raises).

    Returns its record (status ``ok``, ``stopped`` or ``failed``), its output (when it
    succeeded) and its error (when it failed).
    """
    started = time.time()
    t0 = time.perf_counter()
    value: Any = None
    error: Exception | None = None
    hooks = scope.runtime.hooks
    run = scope.run
    if run.durable.steps:  # a resumed run: a step that finished before is not run again
        kept = run.durable.step(scope.path, step.output_type, scope.runtime.converter)
        if kept is not None:
            return kept[0], kept[1], None
    if run.listeners:
        await run.emit(StepStarted(run.info.run_id, scope.path, started))
    try:
        if hooks.wraps("plait_wrap_step"):
            value = await hooks.around(
                "plait_wrap_step", {"step_id": scope.step_id, "step": step,
                                    "ctx": scope.ctx},
                lambda: _checked(step, scope),
            )
        else:  # nothing to wrap it in: the hot path of every step
            value = await attempt_step(step, scope)
            _check(step, scope, value)
    except Exception as exc:
        error = exc
    status: StepStatus = ("failed" if error is not None
                          else "stopped" if isinstance(value, Stop) else "ok")
    record = scope.record(status, started, time.perf_counter() - t0, error)
    if run.listeners:
        await run.emit(StepFinished(run.info.run_id, scope.path, record, value, time.time()))
    return record, value, error


async def _checked(step: Step, scope: StepScope) -> Any:
    """The step's attempts, then its output checked (the work a step wrapper wraps)."""
    value = await attempt_step(step, scope)
    _check(step, scope, value)
    return value


def _check(step: Step, scope: StepScope, value: Any) -> None:
    """A step's output checked for what JSON can hold: walked, unless the step declares a
    type whose every value JSON holds (then the check costs nothing, however much state a
    chain of steps passes along)."""
    if isinstance(value, Stop):
        check_serializable(scope.runtime.converter, value.data, scope.path)
    elif not step.declares_serializable:
        check_serializable(scope.runtime.converter, value, scope.path)


def attempt_step(step: Step, scope: StepScope) -> Awaitable[Any]:
    """Run ``step`` under its scope's config: each attempt (validation gate included) cut
    off at the timeout, failures retried with backoff. A pipeline's steps and a fan-out's
    worker steps both run this. Returns the awaitable, not a coroutine awaiting it."""
    cfg = scope.config
    if one_plain_attempt(cfg) and runs_directly(scope.runtime.hooks):
        return step.run(scope.ctx)  # what one plain attempt would do: the hot path
    for name in cfg.validate:  # a misspelled validator fails before any work
        if isinstance(name, str):
            scope.runtime.validator(name)
    return run_attempts(cfg, scope.path, scope, _attempt, step, scope)


def one_plain_attempt(cfg: ResolvedConfig) -> bool:
    """No timeout, retries or validators: a step runs once, as it is."""
    return cfg.timeout is None and not cfg.retries and not cfg.validate


def runs_directly(hooks: Hooks) -> bool:
    """Whether ``plait_run_step`` would only call ``step.run``: plait's own answer is the
    only one and nobody traces the hooks, so the engine may call it itself."""
    return not hooks.trace and hooks.only_default("plait_run_step")


async def run_attempts(cfg: ResolvedConfig, where: str, scope: StepScope | None,
                       once: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Await ``once(*args)`` under ``cfg``'s policy: each attempt cut off at
    ``cfg.timeout`` (``StepTimeout`` naming ``where``), failures retried with backoff
    while ``retries`` and ``retry_on`` allow; ``scope.attempt`` counts the attempts."""
    attempt = 1
    while True:
        try:
            if cfg.timeout is None:
                return await once(*args)
            with timeout_scope(cfg.timeout, where) as cancel:
                value = await once(*args)
            if cancel.cancel_called:  # also a sync function's thread that ended too late
                raise StepTimeout(where, cfg.timeout)
            return value
        except Exception as exc:
            if attempt > cfg.retries or not should_retry(exc, cfg.retry_on):
                raise
            await anyio.sleep(backoff(attempt, cfg, exc))
            attempt += 1
            if scope is not None:
                scope.attempt = attempt


async def _attempt(step: Step, scope: StepScope) -> Any:
    """One attempt and its validation gate: the step's timeout covers both."""
    ctx = scope.ctx
    value = await scope.runtime.hooks.decide("plait_run_step", step=step, ctx=ctx)
    validators = scope.config.validate
    if validators and not isinstance(value, Stop) and not getattr(step, "validates_itself",
                                                                  False):
        await gate(value, validators, ctx, scope.runtime.validator, scope.path)
    return value
