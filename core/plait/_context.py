"""The StepContext: everything a step may see, and nothing it did not declare."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._budget import Budget, UsageMeter, meter_for
from ._config import ResolvedConfig
from ._errors import MissingInput, UndeclaredDependency
from ._money import Usage

if TYPE_CHECKING:
    from ._agent import Agent, Reply
    from ._ensemble import EnsembleResult
    from ._results import FanOutResult
    from ._runtime import Runtime

__all__ = ["RunInfo", "StepContext"]

_MISSING: Any = object()


@attrs.frozen
class RunInfo:
    """A run as wrappers and tracers see it."""

    run_id: str
    pipeline: str
    inputs: Mapping[str, Any] = attrs.field(repr=False)
    parent: str | None = None  # the enclosing step's path for a nested pipeline


class RunState:
    """Mutable per-run state shared by the contexts of one run (private)."""

    __slots__ = ("budget", "deps", "info", "inputs", "meter", "prefix", "runtime")

    def __init__(self, runtime: Runtime, info: RunInfo, deps: Any, budget: Budget | None,
                 meter: UsageMeter, prefix: str) -> None:
        self.runtime = runtime
        self.info = info
        self.inputs = info.inputs
        self.deps = deps
        self.budget = budget
        self.meter = meter
        self.prefix = prefix  # "" at top level, "outer/" inside a nested pipeline


class StepContext:
    """What a running step gets.

    - ``input(name[, default])``: a run input.
    - ``dep(step_id)``: the output of a *declared* dependency (anything else raises
      ``UndeclaredDependency``: a step cannot see what it did not ask for).
    - ``deps``: your application objects (``pipe.run(inputs, deps=...)``).
    - ``ask`` / ``map`` / ``ensemble``: model calls, fan-outs and ensembles that count
      against the run's budget and usage.
    - ``run_id``, ``step_id``, ``idempotency_key`` (stable across retries of this step),
      ``attempt``, ``usage`` (this step's so far), ``config`` (resolved).
    """

    __slots__ = ("_budget", "_children", "_deps", "_meter", "_route", "_run", "attempt",
                 "config", "item", "path", "step_id")

    def __init__(self, run: RunState, step_id: str, deps: Mapping[str, Any],
                 config: ResolvedConfig, *, budget: Budget | None = None,
                 meter: UsageMeter | None = None, path: str | None = None,
                 item: Any = None) -> None:
        self._run = run
        self.step_id = step_id
        self.path = path if path is not None else run.prefix + step_id
        self._deps = deps
        self.config = config
        self._budget = budget if budget is not None else run.budget
        self._meter = meter if meter is not None else UsageMeter(run.meter)
        self.attempt = 1
        self.item = item  # the current item inside a FanOut worker step
        self._route: str | None = None
        self._children: dict[str, Any] = {}

    # -- data ---------------------------------------------------------------------------

    def input(self, name: str, default: Any = _MISSING) -> Any:
        """A run input; without a default a missing one raises ``MissingInput``."""
        try:
            return self._run.inputs[name]
        except KeyError:
            if default is _MISSING:
                raise MissingInput(name, list(self._run.inputs)) from None
            return default

    def dep(self, step_id: str) -> Any:
        """The output of a declared dependency."""
        try:
            return self._deps[step_id]
        except KeyError:
            raise UndeclaredDependency(self.step_id, step_id, list(self._deps)) from None

    @property
    def dependencies(self) -> Mapping[str, Any]:
        """Outputs of every declared dependency, by step id."""
        return self._deps

    @property
    def deps(self) -> Any:
        """Application objects passed to ``run(..., deps=...)``."""
        return self._run.deps

    @property
    def inputs(self) -> Mapping[str, Any]:
        return self._run.inputs

    @property
    def run_id(self) -> str:
        return self._run.info.run_id

    @property
    def idempotency_key(self) -> str:
        """``<run_id>/<step path>``: the same for every attempt of this step in this run."""
        return f"{self._run.info.run_id}/{self.path}"

    @property
    def usage(self) -> Usage:
        """Model usage of this step so far."""
        return self._meter.usage

    @property
    def budget_left(self) -> Decimal | None:
        """USD left in the tightest budget over this step (``None``: no budget)."""
        if self._budget is None:
            return None
        return min(b.remaining for b in self._budget.chain())

    @property
    def route(self) -> str | None:
        """The branch this step took, when it is a router (set once it chose)."""
        return self._route

    @property
    def runtime(self) -> Runtime:
        return self._run.runtime

    # -- work ---------------------------------------------------------------------------

    async def ask(self, agent: Agent, prompt: str, **overrides: Any) -> Reply:
        """Call a model through ``agent``; counts against the run's budget and usage.

        ``overrides`` change agent settings (``temperature``, ``max_tokens``, ``model``,
        ``system``, ``output``...) or execution settings (``timeout``, ``retries``) for
        this call only.
        """
        from ._calls import ask

        return await ask(self, agent, prompt, overrides)

    async def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *,
                  limit: int | None = None,
                  on_error: Literal["raise", "collect"] = "raise",
                  min_success: int | None = None) -> FanOutResult:
        """Run ``fn(item)`` for every item, at most ``limit`` at once, in input order.

        ``on_error="raise"`` stops at the first failure and raises ``FanOutError`` with
        every finished value and error attached; ``"collect"`` returns them side by side
        (raising only if fewer than ``min_success`` items succeeded).
        """
        from ._fanout import map_items

        return await map_items(self, fn, items, limit=limit, on_error=on_error,
                               min_success=min_success)

    async def ensemble(self, agent: Agent, prompt: str, *, n: int = 3,
                       vary: Mapping[str, Any] | None = None, aggregate: str = "vote",
                       limit: int | None = None, force: bool = False,
                       **options: Any) -> EnsembleResult:
        """Draw ``n`` candidate answers and combine them with the named aggregator."""
        from ._ensemble import run_ensemble

        return await run_ensemble(self, agent, prompt, n=n, vary=vary, aggregate=aggregate,
                                  limit=limit, force=force, options=options)

    # -- engine plumbing ----------------------------------------------------------------

    def child(self, step_id: str, *, item: Any = None, deps: Mapping[str, Any] | None = None,
              config: ResolvedConfig | None = None) -> StepContext:
        """A context for work nested in this step (a router branch, a fan-out item)."""
        meter = UsageMeter(meter_for(self, self._meter))
        return StepContext(self._run, step_id, self._deps if deps is None else deps,
                           config or self.config, budget=self._budget, meter=meter,
                           path=f"{self.path}/{step_id}", item=item)

    def record_route(self, key: str) -> None:
        self._route = key

    def record_children(self, records: Mapping[str, Any]) -> None:
        self._children.update(records)

    def __repr__(self) -> str:
        return f"<StepContext {self.path!r} run={self.run_id!r} attempt={self.attempt}>"
