"""Routers: code picks one branch (perhaps after asking a classifier), the branch runs."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

from ._config import Config
from ._context import StepContext, scope_of
from ._errors import PipelineDefinitionError, UnknownRoute
from ._execution import execute_step
from ._fallback import budget_spent
from ._pipeline import Pipeline
from ._runtime import Runtime
from ._step import Step, as_step

__all__ = ["Router", "route_key"]


def route_key(key: Any) -> Any:
    """Enum members route by value, so ``Intent.BILLING`` and ``"billing"`` agree."""
    return key.value if isinstance(key, enum.Enum) else key


class Router(Step):
    """Choose a branch with ``route(ctx)`` (sync or async) and run it.

    ``branches`` maps keys (strings or Enum members) to steps. A key naming no branch
    raises ``UnknownRoute`` listing the valid keys, unless ``fallback`` names a branch to
    take instead. ``on_error`` names a branch to run when the chosen one fails (a model
    down after its retries and fallbacks, say); a spent budget is raised, never rerouted.
    The branch taken is recorded as the step record's ``route``, and each branch's own
    record under ``children``.
    """

    def __init__(self, name: str, route: Callable[[StepContext], Any],
                 branches: Mapping[Any, Any], fallback: Any = None, *,
                 config: Config | None = None, on_error: Any = None) -> None:
        if not isinstance(name, str) or not name:
            raise PipelineDefinitionError(f"a router needs a non-empty name, got {name!r}")
        if not callable(route):
            raise PipelineDefinitionError(f"router {name!r}: route must be a function of the "
                                          f"context returning a branch key, got {route!r}")
        if not isinstance(branches, Mapping) or not branches:
            raise PipelineDefinitionError(
                f"router {name!r}: branches must be a non-empty mapping of key -> step")
        self.name = name
        self.route = route
        self.branches: dict[Any, Step] = {
            route_key(k): as_step(v, f"router {name!r}, branch {k!r}") for k, v in branches.items()
        }
        self.fallback = None if fallback is None else route_key(fallback)
        if self.fallback is not None and self.fallback not in self.branches:
            raise PipelineDefinitionError(
                f"router {name!r}: fallback {fallback!r} is not a branch; "
                f"branches: {', '.join(map(repr, self.branches))}")
        self.on_error = None if on_error is None else route_key(on_error)
        if self.on_error is not None and self.on_error not in self.branches:
            raise PipelineDefinitionError(
                f"router {name!r}: on_error {on_error!r} is not a branch; "
                f"branches: {', '.join(map(repr, self.branches))}")
        self.config = config or Config()
        self._alone: Pipeline | None = None  # the one-step pipeline of router.run(inputs)

    async def run(self, ctx: StepContext | Mapping[str, Any] | None = None, *,
                  deps: Any = None, runtime: Runtime | None = None,
                  run_id: str | None = None) -> Any:
        """Route and run the branch. Inside a pipeline it is given its ``StepContext`` and
        returns the branch's output; on its own, ``await router.run({"text": ...},
        deps=app_deps)`` runs it as a one-step pipeline and returns a ``PipelineResult``."""
        if not isinstance(ctx, StepContext):
            if self._alone is None:  # its one step is the router, under the router's name
                name = self.label
                self._alone = Pipeline(name, steps={name.replace("/", "_"): self})
            return await self._alone.run(ctx, deps=deps, runtime=runtime, run_id=run_id)
        chosen = route_key(await ctx.runtime.hooks.decide("plait_choose_route", router=self,
                                                          ctx=ctx))
        if chosen not in self.branches:
            if self.fallback is None:
                raise UnknownRoute(self.name or "router", chosen, [str(k) for k in self.branches])
            chosen = self.fallback
        value, error = await self._take(ctx, chosen)
        if error is not None and self.on_error not in (None, chosen) and not budget_spent(error):
            value, error = await self._take(ctx, self.on_error)
        if error is not None:
            raise error
        return value

    async def _take(self, ctx: StepContext, chosen: Any) -> tuple[Any, Exception | None]:
        key = str(chosen)
        scope = scope_of(ctx)
        scope.route = key
        branch = self.branches[chosen]
        branch_ctx = ctx.child(key, config=Config.layered(branch.config).resolve())
        record, value, error = await execute_step(branch, scope_of(branch_ctx))
        scope.adopt({key: record})
        return value, error
