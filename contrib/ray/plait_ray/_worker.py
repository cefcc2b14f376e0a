"""What runs inside a Ray worker process: rebuild the Runtime and contexts a chunk of
items needs, run the chunk with plait's own local executor, send the outcomes back.

A worker process keeps the Runtimes it built (one per driver Runtime spec), so plugins
load once per process, not once per chunk. Nested fan-outs inside an item run locally.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Mapping
from typing import Any

import anyio
import cloudpickle  # type: ignore[import-untyped]  # no stubs, no py.typed
from plait import ItemOutcome, Runtime, StepContext
from plait._budget import UsageMeter
from plait._context import scope_of
from plait._hooks import Hooks
from plait._map import local_executor
from plait._results import FanOutJob
from plait._scope import RunScope, StepScope

from ._errors import NotPicklable

__all__ = ["LEDGER", "context", "hooks", "run_chunk", "runtime"]

_RUNTIMES: dict[str, Runtime] = {}  # this worker process's, by driver Runtime spec
_KEEP = 8  # Runtimes kept per process (an application has one or two)

# The lent budget of the fan-out whose payload is being unpickled (set around ``loads``).
LEDGER: contextvars.ContextVar[Any] = contextvars.ContextVar("plait_ray_ledger", default=None)


def runtime(token: str, spec: bytes) -> Runtime:
    """The worker's Runtime for the driver Runtime ``spec`` describes (built once)."""
    built = _RUNTIMES.get(token)
    if built is None:
        built = _build(cloudpickle.loads(spec))
        if len(_RUNTIMES) >= _KEEP:
            _RUNTIMES.pop(next(iter(_RUNTIMES)))
        _RUNTIMES[token] = built
    return built


def _build(spec: Mapping[str, Any]) -> Runtime:
    built = Runtime(entry_points=spec["entry_points"], settings=spec["settings"],
                    prices=spec["prices"], limits=spec["limits"], tracers=spec["tracers"],
                    transport=spec["transport"], model_override=spec["model_override"])
    for name, plugin in spec["plugins"]:
        built.register(plugin, name)
    return built


def hooks(token: str, spec: bytes) -> Hooks:
    return runtime(token, spec).hooks


def context(state: tuple[Any, ...]) -> StepContext:
    """A worker-side context for the driver's: same run, step, path, config and item; its
    budget is the lent ledger, its usage metered here and sent back per item."""
    (rt, info, deps, prefix, step_id, path, step_deps, config, item, attempt,
     has_budget) = state
    budget = None
    if has_budget:
        from ._ledger import RemoteBudget

        budget = RemoteBudget(LEDGER.get())
    run = RunScope(rt, info, deps, budget,
                   UsageMeter(), prefix)
    scope = StepScope(run, step_id, step_deps, config, path=path, item=item)
    scope.attempt = attempt
    return StepContext(scope)


def run_chunk(payload: bytes, start: int, items: bytes, ledger: Any,
              fail_fast: bool) -> bytes:
    """Run items ``start, start + 1, ...`` (pickled in ``items``); return the pickled
    ``(seconds, outcomes)`` with driver indexes."""
    token = LEDGER.set(ledger)
    try:
        fn, ctx = cloudpickle.loads(payload)
    finally:
        LEDGER.reset(token)
    chunk = cloudpickle.loads(items)
    began = time.perf_counter()
    outcomes = anyio.run(_run, fn, ctx, start, chunk, fail_fast)
    return _dump(time.perf_counter() - began, outcomes, ctx.path)


async def _run(fn: Any, ctx: StepContext, start: int, chunk: list[Any],
               fail_fast: bool) -> list[ItemOutcome]:
    async def call(i: int, item: Any) -> Any:
        return await fn(start + i, item)  # the driver's index: idempotency keys, paths

    job = FanOutJob(call, chunk, None, fail_fast, ctx.path)
    try:
        outcomes = await local_executor(job, scope_of(ctx))
    finally:
        await ctx.runtime.aclose()  # this chunk's event loop ends here, and its client
    return [ItemOutcome(start + o.index, o.value, o.error, o.usage) for o in outcomes]


def _dump(seconds: float, outcomes: list[ItemOutcome], label: str) -> bytes:
    from ._ship import dump

    try:
        return dump((seconds, outcomes))
    except Exception:  # one value or error cannot travel: only that item fails
        return dump((seconds, [_portable(o, label) for o in outcomes]))


def _portable(outcome: ItemOutcome, label: str) -> ItemOutcome:
    from ._ship import dump, find_unpicklable

    for what, value in (("the result", outcome.value), ("the error", outcome.error)):
        try:
            dump(value)
        except Exception as exc:
            error = NotPicklable(label, f"{what} of item {outcome.index}",
                                 find_unpicklable(value), f"{type(exc).__name__}: {exc}")
            return ItemOutcome(outcome.index, None, error, outcome.usage)
    return outcome
