"""Running one step: wrappers, attempts, timeout, retries with backoff, validation gate."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio

from ._errors import StepTimeout
from ._policy import backoff, gate, should_retry
from ._results import StepRecord, Stop
from ._serialize import check_serializable

if TYPE_CHECKING:
    from ._scope import StepScope
    from ._step import Step

__all__ = ["execute_step"]


async def execute_step(step: Step, scope: StepScope) -> tuple[StepRecord, Any, Exception | None]:
    """Run a step to completion; never raises except on cancellation.

    Returns its record, its output (when it succeeded) and its error (when it failed).
    """
    started = time.time()
    t0 = time.perf_counter()
    value: Any = None
    error: Exception | None = None
    hooks = scope.runtime.hooks
    try:
        if hooks.wraps("plait_wrap_step"):
            value = await hooks.around(
                "plait_wrap_step", {"step_id": scope.step_id, "step": step,
                                    "ctx": scope.ctx},
                lambda: _attempts(step, scope),
            )
        else:  # nothing to wrap it in: the hot path of every step
            value = await _attempts(step, scope)
    except Exception as exc:
        error = exc
    return scope.record("ok" if error is None else "failed", started,
                        time.perf_counter() - t0, error), value, error


async def _attempts(step: Step, scope: StepScope) -> Any:
    cfg = scope.config
    runtime = scope.runtime
    for name in cfg.validate:  # a misspelled validator fails before any work is paid for
        if isinstance(name, str):
            runtime.validator(name)
    while True:
        try:
            if cfg.timeout is None:
                value = await _attempt(step, scope)
            else:
                with anyio.move_on_after(cfg.timeout) as cancel:
                    value = await _attempt(step, scope)
                if cancel.cancel_called:  # also a sync step's thread that ended too late
                    raise StepTimeout(scope.path, cfg.timeout)
            check_serializable(runtime.converter, value.data if isinstance(value, Stop)
                               else value, scope.path)
            return value
        except Exception as exc:
            if scope.attempt > cfg.retries or not should_retry(exc, cfg.retry_on):
                raise
            await anyio.sleep(backoff(scope.attempt, cfg, exc))
            scope.attempt += 1


async def _attempt(step: Step, scope: StepScope) -> Any:
    """One attempt and its validation gate: the step's timeout covers both."""
    ctx = scope.ctx
    value = await scope.runtime.hooks.decide("plait_run_step", step=step, ctx=ctx)
    validators = scope.config.validate
    if validators and not isinstance(value, Stop) and not getattr(step, "validates_itself",
                                                                  False):
        await gate(value, validators, ctx, scope.runtime.validator, scope.path)
    return value
