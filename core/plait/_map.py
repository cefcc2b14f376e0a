"""Fan-out / fan-in: N known only at run time, a bounded worker pool, input order kept.

``map_items`` runs a function over items through the ``plait_execute_fanout`` decision
(``local_executor`` is the built-in answer) inside the ``plait_wrap_fanout`` wrappers,
and turns the executor's outcomes into a ``FanOutResult`` or a ``FanOutError``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ._budget import ITEM_METER, ItemMeter
from ._config import Config, ResolvedConfig
from ._errors import FanOutError
from ._events import ItemFinished
from ._execution import run_attempts
from ._money import Usage
from ._results import ErrorInfo, FanOutJob, FanOutResult, ItemError, ItemOutcome
from ._step import is_async_callable, run_in_thread

if TYPE_CHECKING:
    from ._scope import StepScope

__all__ = ["OnError", "check_policy", "local_executor", "map_items"]

OnError = Literal["raise", "collect"]

async def map_items(scope: StepScope, fn: Callable[..., Any], items: Iterable[Any], *,
                    limit: int | None, on_error: OnError, min_success: int | None,
                    indexed: bool = False, item_config: Config | None = None) -> FanOutResult:
    """Run ``fn(item)`` (``fn(index, item)`` when ``indexed``) over ``items``; with
    ``item_config``, each item under its timeout and retries."""
    check_policy(limit, on_error, min_success)
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise TypeError(f"step {scope.step_id!r}: fan-out items must be an iterable of "
                        f"items, got {type(items).__name__}")
    seq = items if isinstance(items, Sequence) else list(items)
    call = fn if indexed else _per_item(fn)
    if item_config is not None:
        call = _with_policy(call, item_config.resolve(), scope.path)
    job = FanOutJob(call, seq, limit, on_error == "raise", scope.path,
                    report=_reporter(scope, len(seq)) if scope.run.listeners else None)
    hooks = scope.runtime.hooks
    ctx = scope.ctx

    async def work() -> FanOutResult:
        outcomes = await hooks.decide("plait_execute_fanout", job=job, ctx=ctx)
        return _collect(outcomes, seq, on_error, min_success, scope.path)

    result: FanOutResult = await hooks.around("plait_wrap_fanout", {"job": job, "ctx": ctx},
                                              work)
    return result


def _reporter(scope: StepScope, total: int) -> Callable[[ItemOutcome], Awaitable[None]]:
    run = scope.run

    async def report(outcome: ItemOutcome) -> None:
        error = None if outcome.error is None else ErrorInfo.of(outcome.error)
        await run.emit(ItemFinished(run.info.run_id, scope.path, outcome.index, total,
                                    outcome.value, error, outcome.usage, time.time()))
    return report


def _with_policy(call: Callable[[int, Any], Awaitable[Any]], cfg: ResolvedConfig,
                 path: str) -> Callable[[int, Any], Awaitable[Any]]:
    def item(i: int, value: Any) -> Awaitable[Any]:
        return run_attempts(cfg, f"{path}/{i}", None, call, i, value)
    return item


def _per_item(fn: Callable[[Any], Any]) -> Callable[[int, Any], Awaitable[Any]]:
    if not callable(fn):
        raise TypeError(f"ctx.map needs a function of the item, got {fn!r}")
    if is_async_callable(fn):
        return lambda _i, item: fn(item)
    returns_awaitable = False

    async def call(_i: int, item: Any) -> Any:
        # Sync work runs in a thread so it never blocks the loop. A function that only
        # hands back an awaitable (``lambda q: ctx.ask(agent, q)``) is called on the loop
        # once its first item has shown that: a thread hop per item would be pure cost.
        nonlocal returns_awaitable
        if returns_awaitable:
            return await fn(item)
        value = await run_in_thread(fn, item, await_result=False)
        if inspect.isawaitable(value):
            returns_awaitable = True
            return await value
        return value

    return call


async def local_executor(job: FanOutJob, scope: StepScope) -> list[ItemOutcome]:
    """The built-in executor: ``limit`` anyio tasks pulling items from a shared queue.

    A fixed pool, not one waiting task per item, so memory stays flat for large N.
    """
    n = len(job.items)
    outcomes: list[ItemOutcome | None] = [None] * n
    pending = iter(range(n))

    async def worker() -> None:
        item = ItemMeter(scope, scope.meter)
        ITEM_METER.set(item)  # in this worker task's own context: never seen outside it
        for i in pending:
            item.next_item()
            try:
                value = await job.fn(i, job.items[i])
            except Exception as exc:
                outcomes[i] = outcome = ItemOutcome(i, None, exc, item.usage)
                await job.finish(outcome)
                if job.fail_fast:
                    tg.cancel_scope.cancel()
                    return
            else:
                outcomes[i] = outcome = ItemOutcome(i, value, None, item.usage)
                await job.finish(outcome)

    async with anyio.create_task_group() as tg:
        for _ in range(n if job.limit is None else min(job.limit, n)):
            tg.start_soon(worker)
    return [o for o in outcomes if o is not None]


def _collect(outcomes: Sequence[ItemOutcome], items: Sequence[Any], on_error: OnError,
             min_success: int | None, label: str) -> FanOutResult:
    values: list[Any] = []
    errors: list[ItemError] = []
    usage = [Usage()] * len(items)  # frozen: items without an outcome share one
    for o in sorted(outcomes, key=lambda o: o.index):
        usage[o.index] = o.usage
        if o.error is None:
            values.append(o.value)
        else:
            errors.append(ItemError(o.index, items[o.index], ErrorInfo.of(o.error), o.error))
    result = FanOutResult(values, errors, usage, len(items))
    if errors and on_error == "raise":
        first = errors[0]
        raise FanOutError(
            f"fan-out {label!r}: item {first.index} failed: {first.error.type}: "
            f"{first.error.message} ({len(values)} of {len(items)} items finished)",
            values, errors) from first.exception
    if min_success is not None and len(values) < min_success:
        raise FanOutError(
            f"fan-out {label!r}: {len(values)} of {len(items)} items succeeded, "
            f"fewer than min_success={min_success}", values, errors
        ) from (errors[0].exception if errors else None)
    return result


def check_policy(limit: Any, on_error: Any, min_success: Any) -> None:
    if on_error not in ("raise", "collect"):
        raise ValueError(f"on_error must be 'raise' or 'collect', got {on_error!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an int >= 1 or None, got {limit!r}")
    if min_success is not None and (isinstance(min_success, bool)
                                    or not isinstance(min_success, int) or min_success < 0):
        raise ValueError(f"min_success must be an int >= 0 or None, got {min_success!r}")
