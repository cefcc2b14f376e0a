"""The engine's bookkeeping for a run and for each step: what a ``StepContext`` shows.

A ``RunScope`` is shared by every step of one run (a nested pipeline gets its own);
a ``StepScope`` belongs to one step, router branch or fan-out item. The engine reads and
writes these; the ``StepContext`` a step sees is a read-only face over its scope, and
``record`` turns a finished scope into its ``StepRecord``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._budget import Budget, UsageMeter, meter_for
from ._config import ResolvedConfig
from ._events import Listener, RunEvent
from ._results import ErrorInfo, RunInfo, StepRecord, StepStatus

if TYPE_CHECKING:
    from ._context import StepContext
    from ._runtime import Runtime

__all__ = ["RunScope", "StepScope"]


class RunScope:
    """Per-run state shared by the steps of one run."""

    __slots__ = ("budget", "deps", "info", "inputs", "listeners", "meter", "prefix", "runtime")

    def __init__(self, runtime: Runtime, info: RunInfo, deps: Any, budget: Budget | None,
                 meter: UsageMeter, prefix: str, listeners: tuple[Listener, ...] = ()) -> None:
        self.runtime = runtime
        self.info = info
        self.inputs = info.inputs
        self.deps = deps
        self.budget = budget
        self.meter = meter
        self.prefix = prefix  # "" at top level, "outer/" inside a nested pipeline
        self.listeners = listeners  # a nested pipeline's run shares its outer run's

    async def emit(self, event: RunEvent) -> None:
        """Hand ``event`` to each listener in turn (callers check ``listeners`` first, so a
        run nobody listens to builds no events)."""
        for listener in self.listeners:
            await listener(event)


class StepScope:
    """One step's state: its dependencies' outputs, config, budget, meter and attempt
    count, the route it took and the records of work nested in it."""

    __slots__ = ("_meter", "_parent", "attempt", "budget", "children", "config", "ctx",
                 "deps", "item", "path", "route", "run", "step_id")

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
        self.ctx: StepContext  # the face a step sees: StepContext(scope) sets it

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

    def adopt(self, records: Mapping[str, StepRecord]) -> None:
        """Keep the records of work nested in this step (a branch, a nested pipeline)."""
        if self.children is None:
            self.children = {}
        self.children.update(records)

    def record(self, status: StepStatus, started: float, latency: float,
               error: BaseException | None) -> StepRecord:
        return StepRecord(self.step_id, status, self.attempt, started, started + latency,
                          latency, self.meter.usage,
                          None if error is None else ErrorInfo.of(error), self.route,
                          {} if self.children is None else dict(self.children))
