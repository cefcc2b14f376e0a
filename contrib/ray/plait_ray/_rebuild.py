"""In a Ray worker process: rebuild what ``_ship`` reduced, the Runtime and contexts.

A worker process keeps the Runtimes it built (one per driver Runtime spec), so plugins
load once per process, not once per chunk. Nested fan-outs inside an item run locally.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

import cloudpickle  # type: ignore[import-untyped]  # no stubs, no py.typed
from plait import Runtime, StepContext
from plait._budget import UsageMeter
from plait._hooks import Hooks
from plait._scope import RunScope, StepScope

from ._ledger import RemoteBudget

__all__ = ["LEDGER", "context", "hooks", "restore_error", "runtime"]

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
                    transport=spec["transport"], model_override=spec["model_override"],
                    store="off")  # the driver records the run, remote items included
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
    budget = RemoteBudget(LEDGER.get()) if has_budget else None
    run = RunScope(rt, info, deps, budget, UsageMeter(), prefix)
    scope = StepScope(run, step_id, step_deps, config, path=path, item=item)
    scope.attempt = attempt
    return StepContext(scope)


def restore_error(cls: type[BaseException], args: tuple[Any, ...],
                  state: dict[str, Any]) -> BaseException:
    """An error as ``_ship`` reduced it: its args and attributes, without its __init__."""
    error = cls.__new__(cls, *args)
    error.args = args
    vars(error).update(state)
    return error
