"""The engine's bookkeeping for a run and for each step: what a ``StepContext`` shows.

A ``RunScope`` is shared by every step of one run (a nested pipeline gets its own);
a ``StepScope`` belongs to one step, router branch or fan-out item. The engine reads and
writes these; the ``StepContext`` a step sees is a read-only face over its scope, and
``record`` turns a finished scope into its ``StepRecord``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._budget import NO_USAGE, Budget, UsageMeter, meter_for
from ._config import ResolvedConfig
from ._durable import RunMemory
from ._events import Listener, RunEvent
from ._money import Usage
from ._results import ErrorInfo, RunInfo, StepRecord, StepStatus

if TYPE_CHECKING:
    from ._context import StepContext
    from ._runtime import Runtime

__all__ = ["RunScope", "StepScope"]

_new_scope = object.__new__


class RunScope:
    """Per-run state shared by the steps of one run."""

    __slots__ = ("budget", "deps", "durable", "info", "inputs", "listeners", "meter", "prefix",
                 "runtime")

    def __init__(self, runtime: Runtime, info: RunInfo, deps: Any, budget: Budget | None,
                 meter: UsageMeter, prefix: str, listeners: tuple[Listener, ...] = (),
                 durable: RunMemory | None = None) -> None:
        self.runtime = runtime
        self.info = info
        self.inputs = info.inputs
        self.deps = deps
        self.budget = budget
        self.meter = meter
        self.prefix = prefix  # "" at top level, "outer/" inside a nested pipeline
        self.listeners = listeners  # a nested pipeline's run shares its outer run's
        # what a resumed run restores, and ctx.once results; a nested run shares its outer's
        self.durable = durable if durable is not None else RunMemory()

    async def emit(self, event: RunEvent) -> None:
        """Hand ``event`` to each listener in turn (callers check ``listeners`` first, so a
        run nobody listens to builds no events)."""
        for listener in self.listeners:
            await listener(event)


class StepScope:
    """One step's state: its dependencies' outputs, config, budget, meter and attempt
    count, the route it took and the records of work nested in it."""

    __slots__ = ("_ctx", "_ctx_weak", "_meter", "_parent", "attempt", "budget", "children",
                 "config", "deps", "item", "path", "route", "run", "step_id")

    def __init__(self, run: RunScope, step_id: str, deps: Mapping[str, Any],
                 config: ResolvedConfig, *, budget: Budget | None = None,
                 parent: StepScope | None = None, path: str | None = None,
                 item: Any = None) -> None:
        self.run = run
        self.step_id = step_id
        self.path = path if path is not None else run.prefix + step_id
        self.deps = deps
        self.config = config
        self.budget = budget if budget is not None else run.budget
        self._parent = parent  # the step this scope's work is nested in, if any
        self._meter: UsageMeter | None = None
        self.attempt = 1
        self.item = item  # the current item inside a FanOut worker step
        self.route: str | None = None
        self.children: dict[str, StepRecord] | None = None  # most scopes never get any
        self._ctx: StepContext | None  # the face a step sees: StepContext(scope) sets it

    @property
    def ctx(self) -> StepContext:
        """The context over this scope: the one its step got."""
        ctx = self._ctx
        if ctx is None:  # released: whoever still reaches this scope holds the context
            ctx = self._ctx_weak()
            assert ctx is not None, "a released scope is reached only through its context"
        return ctx

    @ctx.setter
    def ctx(self, face: StepContext) -> None:
        self._ctx = face

    def release(self) -> None:
        """Its step is over: hold the context weakly from now on. The context holds this
        scope, so while both held each other only the cycle collector could free them, and
        a chain of steps carrying growing state spent a third of its time there (W1 at
        1,000 steps). A context kept past its step still finds itself here."""
        ctx = self._ctx
        if ctx is not None:
            self._ctx_weak = weakref.ref(ctx)
            self._ctx = None

    @property
    def runtime(self) -> Runtime:
        return self.run.runtime

    @property
    def meter(self) -> UsageMeter:
        """This scope's usage meter, made on first use (most fan-out items never charge):
        nested work charges the step it runs in, or that step's fan-out item."""
        if self._meter is None:
            parent = self._parent
            self._meter = UsageMeter(self.run.meter if parent is None
                                     else meter_for(parent, parent.meter))
        return self._meter

    def child(self, step_id: str, *, item: Any = None, deps: Mapping[str, Any] | None = None,
              config: ResolvedConfig | None = None) -> StepScope:
        """The scope of work nested in this step (a router branch, a fan-out item): its
        usage charges this step, or the fan-out item running it."""
        return StepScope(self.run, step_id, self.deps if deps is None else deps,
                         config or self.config, budget=self.budget, parent=self,
                         path=f"{self.path}/{step_id}", item=item)

    def item_child(self, index: int, item: Any) -> StepScope:
        """``child(str(index), item=item)`` for a fan-out item, without the keyword
        handling: a fan-out makes one per item."""
        scope = _new_scope(StepScope)
        scope.run = self.run
        scope.step_id = step_id = str(index)
        scope.path = f"{self.path}/{step_id}"
        scope.deps = self.deps
        scope.config = self.config
        scope.budget = self.budget
        scope._parent = self
        scope._meter = None
        scope.attempt = 1
        scope.item = item
        scope.route = None
        scope.children = None
        return scope

    def adopt(self, records: Mapping[str, StepRecord]) -> None:
        """Keep the records of work nested in this step (a branch, a nested pipeline)."""
        if self.children is None:
            self.children = {}
        self.children.update(records)

    def record(self, status: StepStatus, started: float, latency: float,
               error: BaseException | None) -> StepRecord:
        meter = self._meter  # a step that never charged has no meter: nothing to make
        return StepRecord(self.step_id, status, self.attempt, started, started + latency,
                          latency, NO_USAGE if meter is None else meter.usage,
                          None if error is None else ErrorInfo.of(error), self.route,
                          {} if self.children is None else dict(self.children),
                          self._models())

    def _models(self) -> dict[str, Usage]:
        models = None if self._meter is None else self._meter.models
        return {} if models is None else dict(models)
