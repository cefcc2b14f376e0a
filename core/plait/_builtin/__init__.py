"""plait's own behaviour, registered as a plugin that runs last so any plugin can take over.

Registered by every plugin manager, so it imports only what registration needs: the local
executor, the SQLite store and what the tracers check a step's value against load on
first use (``plait --help`` loads no engine).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from plait._money import Price, price_in
from plait.hookspecs import RegisterExecutor, RegisterStore, RegisterTracer, hookimpl

from .metrics import plait_register_metrics as plait_register_metrics
from .progress import ProgressDisplay
from .steplog import StepLog

if TYPE_CHECKING:
    from plait._context import StepContext
    from plait._ensemble import AggregationJob
    from plait._model import ModelResponse
    from plait._results import Aggregation, FanOutJob
    from plait._router import Router
    from plait._sqlite_store import SQLiteStore
    from plait._step import Step


@hookimpl
def plait_register_tracers(register: RegisterTracer) -> None:
    register("steplog", StepLog.from_env(), default=bool(os.environ.get("PLAIT_STEP_LOG")))
    register("progress", ProgressDisplay(), default=False)


@hookimpl
def plait_register_executors(register: RegisterExecutor) -> None:
    register("local", _local)


def _local(job: FanOutJob, ctx: StepContext) -> Any:
    from plait._context import scope_of
    from plait._map import local_executor

    return local_executor(job, scope_of(ctx))


@hookimpl(trylast=True)
def plait_price(model: str, table: Mapping[str, Price]) -> Price | None:
    return price_in(table, model)


@hookimpl
def plait_register_stores(register: RegisterStore) -> None:
    register("sqlite", _sqlite)


def _sqlite(location: str) -> SQLiteStore:
    from plait._sqlite_store import SQLiteStore

    return SQLiteStore(location)


@hookimpl(trylast=True)
def plait_run_step(step: Step, ctx: StepContext) -> Any:
    return step.run(ctx)


@hookimpl(trylast=True)
def plait_choose_route(router: Router, ctx: StepContext) -> Any:
    return _awaitable(router.route(ctx))


@hookimpl(trylast=True)
def plait_execute_fanout(job: FanOutJob, ctx: StepContext) -> Any:
    return ctx.runtime.executor(job.executor)(job, ctx)


@hookimpl(trylast=True)
def plait_answer_model_call(send: Callable[[], Awaitable[ModelResponse]]) -> Any:
    return send()


@hookimpl(trylast=True)
def plait_aggregate(name: str, job: AggregationJob) -> Any:
    return _call_aggregator(name, job)


async def _call_aggregator(name: str, job: AggregationJob) -> Aggregation:
    aggregator = job.runtime.aggregator(name)
    result: Aggregation = await _awaitable(aggregator(job))
    return result


async def _awaitable(value: Any) -> Any:
    return (await value) if inspect.isawaitable(value) else value
