"""Fan-out / fan-in: N known only at run time, a bounded worker pool, input order kept."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import anyio
import attrs

from ._budget import ITEM_METER, ItemMeter
from ._config import Config
from ._errors import FanOutError, PipelineDefinitionError
from ._money import Usage
from ._results import ErrorInfo, FanOutResult, ItemError, ItemOutcome
from ._step import Step, is_async_callable, run_in_thread

if TYPE_CHECKING:
    from ._context import StepContext

__all__ = ["FanOut", "FanOutJob", "local_executor", "map_items", "worker_call"]

OnError = Literal["raise", "collect"]

@attrs.frozen
class FanOutJob:
    """A fan-out as executors see it: ``await fn(index, item)`` for every item.

    An executor calls ``job.item_done(index)`` as each item finishes (succeeded or
    failed). That is a plain call, not a hook: progress displays append a callback to
    ``on_item_done`` in their ``plait_wrap_fanout`` to count items without a hook per item.
    """

    fn: Callable[[int, Any], Awaitable[Any]]
    items: Sequence[Any]
    limit: int | None
    fail_fast: bool  # stop starting items after the first error
    label: str  # the step path, for traces and progress displays
    on_item_done: list[Callable[[int], None]] = attrs.field(
        init=False, factory=list, eq=False, repr=False)

    def item_done(self, index: int) -> None:
        """Tell whoever listens that item ``index`` finished."""
        for callback in self.on_item_done:
            callback(index)


async def map_items(ctx: StepContext, fn: Callable[..., Any], items: Iterable[Any], *,
                    limit: int | None, on_error: OnError, min_success: int | None,
                    indexed: bool = False) -> FanOutResult:
    _check_policy(limit, on_error, min_success)
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise TypeError(f"step {ctx.step_id!r}: fan-out items must be an iterable of items, "
                        f"got {type(items).__name__}")
    seq = items if isinstance(items, Sequence) else list(items)
    call = fn if indexed else _per_item(fn)
    job = FanOutJob(call, seq, limit, on_error == "raise", ctx.path)
    runtime = ctx.runtime

    async def work() -> FanOutResult:
        outcomes = await runtime.execute_fanout(job, ctx)
        return _collect(outcomes, seq, on_error, min_success, ctx.path)

    result: FanOutResult = await runtime.around(
        "plait_wrap_fanout", {"job": job, "ctx": ctx}, work)
    return result


def _per_item(fn: Callable[[Any], Any]) -> Callable[[int, Any], Awaitable[Any]]:
    if not callable(fn):
        raise TypeError(f"ctx.map needs a function of the item, got {fn!r}")
    if is_async_callable(fn):
        return lambda _i, item: fn(item)

    async def in_thread(_i: int, item: Any) -> Any:  # sync work never blocks the loop
        return await run_in_thread(fn, item)

    return in_thread


async def local_executor(job: FanOutJob, ctx: StepContext) -> list[ItemOutcome]:
    """The built-in executor: ``limit`` anyio tasks pulling items from a shared queue.

    A fixed pool, not one waiting task per item, so memory stays flat for large N.
    """
    n = len(job.items)
    outcomes: list[ItemOutcome | None] = [None] * n
    pending = iter(range(n))

    async def worker() -> None:
        item = ItemMeter(ctx)
        ITEM_METER.set(item)  # in this worker task's own context: never seen outside it
        for i in pending:
            item.next_item()
            try:
                value = await job.fn(i, job.items[i])
            except Exception as exc:
                outcomes[i] = ItemOutcome(i, None, exc, item.usage)
                job.item_done(i)
                if job.fail_fast:
                    tg.cancel_scope.cancel()
                    return
            else:
                outcomes[i] = ItemOutcome(i, value, None, item.usage)
                job.item_done(i)

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


def _check_policy(limit: Any, on_error: Any, min_success: Any) -> None:
    if on_error not in ("raise", "collect"):
        raise ValueError(f"on_error must be 'raise' or 'collect', got {on_error!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an int >= 1 or None, got {limit!r}")
    if min_success is not None and (isinstance(min_success, bool)
                                    or not isinstance(min_success, int) or min_success < 0):
        raise ValueError(f"min_success must be an int >= 0 or None, got {min_success!r}")


class FanOut(Step):
    """A declarative fan-out step: run ``worker`` for every item of ``over``.

    ``over`` is a dependency's step id, an input name, or a function of the context
    returning the items. ``worker`` is a step (it sees the item as ``ctx.item``) or a
    function ``(ctx, item)``, async or sync; each item gets its own context, so
    ``ctx.idempotency_key`` differs per item. The output is a ``FanOutResult``.
    """

    def __init__(self, worker: Any, *, over: str | Callable[[StepContext], Iterable[Any]],
                 limit: int | None = None, on_error: OnError = "raise",
                 min_success: int | None = None, name: str | None = None,
                 config: Config | None = None) -> None:
        try:
            _check_policy(limit, on_error, min_success)
        except ValueError as exc:
            raise PipelineDefinitionError(f"FanOut: {exc}") from None
        if not (isinstance(over, str) or callable(over)):
            raise PipelineDefinitionError(
                f"FanOut: over= takes a step id, an input name or a function of the context, "
                f"got {over!r}")
        if not (isinstance(worker, Step) or callable(worker)):
            raise PipelineDefinitionError(
                f"FanOut: worker must be a plait.Step or a function (ctx, item), got {worker!r}")
        self.worker = worker
        self.over = over
        self.limit = limit
        self.on_error: OnError = on_error
        self.min_success = min_success
        self.name = name
        self.config = config or Config()

    def items(self, ctx: StepContext) -> Iterable[Any]:
        if callable(self.over):
            return self.over(ctx)
        if self.over in ctx.dependencies:
            return ctx.dep(self.over)  # type: ignore[no-any-return]
        return ctx.input(self.over)  # type: ignore[no-any-return]

    async def run(self, ctx: StepContext) -> FanOutResult:
        return await map_items(ctx, worker_call(self.worker, ctx), self.items(ctx),
                               limit=self.limit, on_error=self.on_error,
                               min_success=self.min_success, indexed=True)


def worker_call(worker: Any, ctx: StepContext) -> Callable[[int, Any], Awaitable[Any]]:
    """``(index, item) -> output`` for a worker step or ``(ctx, item)`` function; each item
    runs with its own child context (so its own idempotency key)."""
    runtime = ctx.runtime
    if isinstance(worker, Step):
        async def call(i: int, item: Any) -> Any:
            return await runtime.run_step(worker, ctx.child(f"{i}", item=item))
    elif inspect.iscoroutinefunction(worker):
        async def call(i: int, item: Any) -> Any:
            return await worker(ctx.child(f"{i}", item=item), item)
    else:
        async def call(i: int, item: Any) -> Any:
            return await run_in_thread(worker, ctx.child(f"{i}", item=item), item)
    return call
