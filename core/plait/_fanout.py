"""FanOut: the declarative fan-out step, a worker run for every item of a list."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ._config import Config
from ._context import ItemContext, StepContext, scope_of
from ._errors import PipelineDefinitionError
from ._execution import attempt_step, one_plain_attempt, runs_directly
from ._map import OnError, check_policy, map_items
from ._results import FanOutResult
from ._serialize import check_serializable, serializable_type
from ._step import Step, check_runs, declared_return, run_in_thread

__all__ = ["FanOut", "worker_call"]


class FanOut(Step):
    """A declarative fan-out step: run ``worker`` for every item of ``over``.

    ``over`` is a dependency's step id, an input name, or a function of the context
    returning the items. ``worker`` is a step (it sees the item as ``ctx.item``) or a
    function ``(ctx, item)``, async or sync; each item gets its own context, so
    ``ctx.idempotency_key`` differs per item. The output is a ``FanOutResult``.
    ``executor`` names where the items run (default: the Runtime's ``executor``).
    """

    def __init__(self, worker: Any, *, over: str | Callable[[StepContext], Iterable[Any]],
                 limit: int | None = None, on_error: OnError = "raise",
                 min_success: int | None = None, name: str | None = None,
                 config: Config | None = None, executor: str | None = None) -> None:
        try:
            check_policy(limit, on_error, min_success)
        except ValueError as exc:
            raise PipelineDefinitionError(f"FanOut: {exc}") from None
        if not (isinstance(over, str) or callable(over)):
            raise PipelineDefinitionError(
                f"FanOut: over= takes a step id, an input name or a function of the context, "
                f"got {over!r}")
        if not (isinstance(worker, Step) or callable(worker)):
            raise PipelineDefinitionError(
                f"FanOut: worker must be a plait.Step or a function (ctx, item), got {worker!r}")
        if isinstance(worker, Step):
            check_runs(worker, "FanOut: worker")
        self.worker = worker
        self.over = over
        self.limit = limit
        self.on_error: OnError = on_error
        self.min_success = min_success
        self.name = name
        self.config = config or Config()
        if executor is not None and (not isinstance(executor, str) or not executor):
            raise PipelineDefinitionError(
                f"FanOut: executor= takes an executor's name, got {executor!r}")
        self.executor = executor

    def items(self, ctx: StepContext) -> Iterable[Any]:
        if callable(self.over):
            return self.over(ctx)
        if self.over in ctx.dependencies:
            return ctx.dep(self.over)  # type: ignore[no-any-return]
        return ctx.input(self.over)  # type: ignore[no-any-return]

    @functools.cached_property
    def declares_serializable(self) -> bool:
        """A result's values are the worker's outputs, so JSON holds them when the worker
        declares a type it always holds: then only the failed items are walked (in ``run``),
        not one value per item."""
        if isinstance(self.worker, Step):
            return self.worker.declares_serializable
        try:
            return serializable_type(declared_return(self.worker))
        except TypeError:  # an annotation that cannot be a cache key
            return False

    async def run(self, ctx: StepContext) -> FanOutResult:
        result = await map_items(scope_of(ctx), worker_call(self.worker, ctx), self.items(ctx),
                                 limit=self.limit, on_error=self.on_error,
                                 min_success=self.min_success, indexed=True,
                                 executor=self.executor, item_type=self.item_type)
        if result.errors and self.declares_serializable:  # items are inputs of any type
            check_serializable(ctx.runtime.converter, FanOutResult((), result.errors), ctx.path)
        return result

    @functools.cached_property
    def item_type(self) -> Any:
        """The type the worker returns for an item (what a resumed run restores)."""
        worker = self.worker
        return worker.output_type if isinstance(worker, Step) else declared_return(worker)


def worker_call(worker: Any, ctx: StepContext) -> Callable[[int, Any], Awaitable[Any]]:
    """``(index, item) -> output`` for a worker step or ``(ctx, item)`` function; each item
    runs with its own child context (so its own idempotency key). A worker step runs under
    its own config (``timeout``, ``retries``, ``validate``), per item."""
    # Each returns the item's awaitable rather than awaiting it in a coroutine of its own:
    # one coroutine less per item. They close over ``ctx``, not its scope: a remote
    # executor ships a context by what it is, a scope only with everything it holds.
    hooks = ctx.runtime.hooks
    call: Callable[[int, Any], Awaitable[Any]]
    if isinstance(worker, Step):
        own = Config.layered(worker.config).resolve()
        if one_plain_attempt(own):  # the fast path: no attempt loop, a lazy item context
            if runs_directly(hooks):  # what the default would do, per item
                def call(i: int, item: Any) -> Awaitable[Any]:
                    return worker.run(ItemContext(ctx, i, item))
            else:
                def call(i: int, item: Any) -> Awaitable[Any]:
                    return hooks.decide("plait_run_step", step=worker,
                                        ctx=ItemContext(ctx, i, item))
        else:
            def call(i: int, item: Any) -> Awaitable[Any]:
                return attempt_step(worker, scope_of(ctx.child(f"{i}", item=item, config=own)))
    elif inspect.iscoroutinefunction(worker):
        def call(i: int, item: Any) -> Awaitable[Any]:
            return worker(ItemContext(ctx, i, item), item)  # type: ignore[no-any-return]
    else:
        def call(i: int, item: Any) -> Awaitable[Any]:
            return run_in_thread(worker, ItemContext(ctx, i, item), item)
    return call

