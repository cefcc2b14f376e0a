"""The StepContext: everything a step may see, and nothing it did not declare."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._calls import call_model
from ._config import Config, ResolvedConfig
from ._ensemble import run_ensemble
from ._errors import MissingInput, UndeclaredDependency
from ._map import OnError, map_items
from ._money import Usage
from ._once import run_once
from ._results import EnsembleResult, FanOutResult, Reply
from ._scope import StepScope
from ._stream import ModelStream

if TYPE_CHECKING:
    from ._agent import Agent
    from ._model import Message
    from ._runtime import Runtime

__all__ = ["ItemContext", "StepContext", "scope_of"]

_MISSING: Any = object()


class StepContext:
    """What a running step gets.

    - ``input(name[, default])``: a run input.
    - ``dep(step_id)``: the output of a *declared* dependency (anything else raises
      ``UndeclaredDependency``: a step cannot see what it did not ask for).
    - ``deps``: your application objects (``pipe.run(inputs, deps=...)``).
    - ``ask`` / ``stream`` / ``map`` / ``ensemble``: model calls, fan-outs and ensembles that count
      against the run's budget and usage.
    - ``run_id``, ``step_id``, ``path``, ``idempotency_key`` (stable across retries of this
      step), ``attempt``, ``usage`` (this step's so far), ``config`` (resolved), ``item``
      (inside a FanOut worker step), ``route`` (a router's branch, once chosen).
    """

    __slots__ = ("__weakref__", "_scope")

    def __init__(self, scope: StepScope) -> None:
        self._scope = scope
        scope.ctx = self

    # -- data ---------------------------------------------------------------------------

    def input(self, name: str, default: Any = _MISSING) -> Any:
        """A run input; without a default a missing one raises ``MissingInput``."""
        inputs = self._scope.run.inputs
        try:
            return inputs[name]
        except KeyError:
            if default is _MISSING:
                raise MissingInput(name, list(inputs)) from None
            return default

    def dep(self, step_id: str) -> Any:
        """The output of a declared dependency."""
        try:
            return self._scope.deps[step_id]
        except KeyError:
            raise UndeclaredDependency(self.step_id, step_id, list(self._scope.deps)) from None

    @property
    def dependencies(self) -> Mapping[str, Any]:
        """Outputs of every declared dependency, by step id."""
        return self._scope.deps

    @property
    def deps(self) -> Any:
        """Application objects passed to ``run(..., deps=...)``."""
        return self._scope.run.deps

    @property
    def inputs(self) -> Mapping[str, Any]:
        return self._scope.run.inputs

    @property
    def run_id(self) -> str:
        return self._scope.run.info.run_id

    @property
    def pipeline(self) -> str:
        """The name of the pipeline running this step."""
        return self._scope.run.info.pipeline

    @property
    def step_id(self) -> str:
        return self._scope.step_id

    @property
    def path(self) -> str:
        """The step's place in the run: ``outer/inner/2`` for item 2 of a nested fan-out."""
        return self._scope.path

    @property
    def idempotency_key(self) -> str:
        """``<run_id>/<step path>``: the same for every attempt of this step in this run."""
        return f"{self.run_id}/{self._scope.path}"

    @property
    def attempt(self) -> int:
        """This step's attempt, from 1."""
        return self._scope.attempt

    @property
    def config(self) -> ResolvedConfig:
        return self._scope.config

    @property
    def item(self) -> Any:
        """The current item inside a FanOut or Orchestrator worker step."""
        return self._scope.item

    @property
    def usage(self) -> Usage:
        """Model usage of this step so far."""
        return self._scope.meter.usage

    @property
    def budget_left(self) -> Decimal | None:
        """USD left in the tightest budget over this step (``None``: no budget)."""
        budget = self._scope.budget
        if budget is None:
            return None
        return min(b.remaining for b in budget.chain())

    @property
    def route(self) -> str | None:
        """The branch this step took, when it is a router (set once it chose)."""
        return self._scope.route

    @property
    def runtime(self) -> Runtime:
        return self._scope.runtime

    # -- work ---------------------------------------------------------------------------

    async def ask(self, agent: Agent, prompt: str | Sequence[Message],
                  **overrides: Any) -> Reply:
        """Call a model through ``agent``; counts against the run's budget and usage.

        ``prompt`` is the user's message, or a conversation: ``plait.Message`` turns.

        ``overrides`` change agent settings (``temperature``, ``max_tokens``, ``model``,
        ``system``, ``output``...) or execution settings (``timeout``, ``retries``) for
        this call only.
        """
        return await call_model(self._scope.runtime, agent, prompt, overrides,
                                scope=self._scope)

    def stream(self, agent: Agent, prompt: str, **overrides: Any) -> ModelStream:
        """Call a model and read its reply as it is written, like ``ask`` otherwise::

            async with ctx.stream(agent, prompt) as stream:
                async for text in stream:
                    ...
            reply = stream.reply
        """
        return ModelStream(self._scope.runtime, agent, prompt, overrides, scope=self._scope)

    async def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *,
                  limit: int | None = None, on_error: OnError = "raise",
                  min_success: int | None = None,
                  timeout: float | None = None,  # noqa: ASYNC109  # per item, not this call
                  retries: int = 0, executor: str | None = None) -> FanOutResult:
        """Run ``fn(item)`` for every item, at most ``limit`` at once, in input order.

        ``on_error="raise"`` stops at the first failure and raises ``FanOutError`` with
        every finished value and error attached; ``"collect"`` returns them side by side
        (raising only if fewer than ``min_success`` items succeeded). ``timeout`` cuts
        off each item's attempt (``StepTimeout``), and ``retries`` retries a failed item
        with backoff, as a step's would. ``executor`` names where the items run
        (``"local"``, ``"ray"`` with plait-ray; default: the Runtime's ``executor``).
        """
        policy = (None if timeout is None and not retries
                  else Config(timeout=timeout, retries=retries))
        return await map_items(self._scope, fn, items, limit=limit, on_error=on_error,
                               min_success=min_success, item_config=policy,
                               executor=executor)

    async def ensemble(self, agent: Agent, prompt: str, *, n: int = 3,
                       vary: Mapping[str, Any] | None = None, aggregate: str = "vote",
                       limit: int | None = None, force: bool = False,
                       **options: Any) -> EnsembleResult:
        """Draw ``n`` candidate answers and combine them with the named aggregator."""
        return await run_ensemble(self._scope, agent, prompt, n=n, vary=vary,
                                  aggregate=aggregate, limit=limit, force=force,
                                  options=options)

    async def once(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn(*args)`` once per run for ``name`` (a charge, an e-mail): a retry of
        this step, another step, or a resumed run gets the recorded result back without
        calling ``fn``. ``fn`` (sync or async) that takes an ``idempotency_key`` keyword
        gets ``<run_id>/once/<name>``, stable across attempts and resumes, for the
        external system to dedupe a crash between ``fn`` returning and the record being
        written (see docs/guide/durability.md)."""
        return await run_once(self._scope, name, fn, args)

    def child(self, step_id: str, *, item: Any = None, deps: Mapping[str, Any] | None = None,
              config: ResolvedConfig | None = None) -> StepContext:
        """A context for work nested in this step (a router branch, a fan-out item)."""
        return StepContext(self._scope.child(step_id, item=item, deps=deps, config=config))

    def __repr__(self) -> str:
        return f"<StepContext {self.path!r} run={self.run_id!r} attempt={self.attempt}>"


class ItemContext(StepContext):
    """A fan-out item's context: ``ctx.child(str(index), item=item)``, its scope made on
    first use. A fan-out makes one per item, and a worker that only reads ``ctx.item``
    (or ignores its context) never needs the scope: then an item costs this object."""

    __slots__ = ("_index", "_made", "_parent", "_value")

    def __init__(self, parent: StepContext, index: int, item: Any) -> None:
        # not StepContext.__init__: there is no scope yet
        self._parent = parent
        self._index = index
        self._value = item
        self._made: StepScope | None = None

    @property
    def _scope(self) -> StepScope:  # type: ignore[override]  # the base's slot, made lazily
        scope = self._made
        if scope is None:
            scope = self._made = self._parent._scope.item_child(self._index, self._value)
            scope.ctx = self
        return scope

    @property
    def item(self) -> Any:
        return self._value


def scope_of(ctx: StepContext) -> StepScope:
    """The engine's bookkeeping behind ``ctx`` (for plait's own workflows and built-ins)."""
    return ctx._scope
