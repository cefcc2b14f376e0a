"""Pipelines: a DAG of steps, validated at construction, scheduled eagerly.

A step starts the moment its own dependencies are done: there is no level or superstep
barrier, so a slow branch never holds back an unrelated one. A failed step skips only its
dependents; everything else runs to the end and every completed output is kept.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from ._budget import Budget, UsageMeter
from ._config import NOTSET, Config, ResolvedConfig
from ._context import StepContext, scope_of
from ._durable import RunMemory
from ._errors import (
    BudgetExceeded,
    PipelineDefinitionError,
    PlaitError,
    StepFailed,
    did_you_mean,
)
from ._events import Listener, RunFailed, RunFinished, RunStarted
from ._execution import execute_step
from ._graph import render
from ._in_context import in_context
from ._inputs import InputSpec, type_schema
from ._money import Usage
from ._results import ErrorInfo, PipelineResult, RunInfo, StepRecord, Stop
from ._resume import resume_run
from ._run_stream import DEFAULT_BUFFER, RunStream
from ._runtime import Runtime, default_runtime
from ._scope import RunScope, StepScope
from ._step import Step, as_step

__all__ = ["Pipeline"]


class Pipeline(Step):
    """A named DAG of steps.

    ``deps`` maps a step id to the ids it depends on; ``config`` holds the run's defaults
    (including the run ``budget`` and ``max_concurrency``); ``step_config`` overrides per
    step; ``output`` names the step whose value is ``result.output`` (default: the only
    step nothing depends on). A Pipeline is itself a step, so pipelines nest: inside
    another pipeline it sees the outer inputs plus its declared dependencies' outputs
    (by step id) as its inputs. ``inputs`` declares what a run takes (a mapping of name ->
    type, an attrs class, a dataclass or a TypedDict), checked before any step runs.
    """

    def __init__(
        self,
        name: str,
        steps: Mapping[str, Any],
        deps: Mapping[str, Sequence[str] | str] | None = None,
        *,
        config: Config | None = None,
        step_config: Mapping[str, Config] | None = None,
        output: str | None = None,
        inputs: Any = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise PipelineDefinitionError(f"a pipeline needs a non-empty name, got {name!r}")
        self.name = name
        self.config = Config()  # as a nested step, its own settings come from the outer pipeline
        self._steps = _check_steps(name, steps)
        self._deps = _check_deps(name, self._steps, deps or {})
        _check_acyclic(name, self._deps)
        self.run_config = _check_config(f"pipeline {name!r}: config", config)
        step_config = dict(step_config or {})
        for sid, cfg in step_config.items():
            if sid not in self._steps:
                raise PipelineDefinitionError(
                    f"pipeline {name!r}: step_config names unknown step {sid!r}; "
                    f"steps: {', '.join(self._steps)}{did_you_mean(sid, self._steps)}")
            _check_config(f"pipeline {name!r}: step_config[{sid!r}]", cfg)
        self._dependents: dict[str, list[str]] = {sid: [] for sid in self._steps}
        for sid, ds in self._deps.items():
            for d in ds:
                self._dependents[d].append(sid)
        self.output = _check_output(name, self._dependents, output)
        self._roots = [sid for sid in self._steps if not self._deps[sid]]
        self._configs: dict[str, ResolvedConfig] = {}
        self._step_budgets: dict[str, Any] = {}
        for sid, st in self._steps.items():
            own = Config.layered(st.config, step_config.get(sid))
            self._configs[sid] = self.run_config.merge(own).resolve()
            # the run budget belongs to the run; a step budget only when the step sets one
            self._step_budgets[sid] = None if own.budget is NOTSET else own.budget
        self._resolved_run = self.run_config.resolve()
        self._inputs = None if inputs is None else InputSpec.of(name, inputs)

    @property
    def steps(self) -> Mapping[str, Step]:
        return dict(self._steps)

    @property
    def dependencies(self) -> Mapping[str, tuple[str, ...]]:
        return dict(self._deps)

    @property
    def input_types(self) -> Mapping[str, Any] | None:
        """Each input ``inputs=`` declares and its type, or ``None`` for a pipeline that
        declares none (which of them are required: ``input_schema()["required"]``)."""
        if self._inputs is None:
            return None
        return {name: f.type for name, f in self._inputs.fields.items()}

    def input_schema(self) -> dict[str, Any] | None:
        """A JSON schema of the declared inputs, or ``None`` when none are declared."""
        return None if self._inputs is None else self._inputs.schema()

    def to_mermaid(self) -> str:
        """The pipeline as a Mermaid flowchart, every workflow shape drawn as such."""
        return render(self, "mermaid")

    def to_dot(self) -> str:
        """The pipeline as a Graphviz digraph (``dot -Tsvg``), drawn as ``to_mermaid``."""
        return render(self, "dot")

    def output_schema(self) -> dict[str, Any]:
        """A JSON schema of ``result.output``, from the output step's return annotation
        (``{}``, any JSON value, when it has none the schema can describe)."""
        step = self._steps[self.output]
        return step.output_schema() if isinstance(step, Pipeline) else type_schema(
            step.output_type)

    async def run(
        self,
        inputs: Mapping[str, Any] | StepContext | None = None,
        *,
        deps: Any = None,
        runtime: Runtime | None = None,
        run_id: str | None = None,
    ) -> Any:
        """Run the pipeline: ``await pipe.run({"text": ...}, deps=app_deps)``.

        Returns a ``PipelineResult``. Raises ``StepFailed`` (or ``BudgetExceeded``) with
        ``.partial`` holding every completed output when a step failed. Given a
        ``StepContext`` (when nested in another pipeline) it returns the output value.
        """
        if isinstance(inputs, StepContext):
            return await self._run_nested(inputs)
        return await self._start(inputs, deps=deps, runtime=runtime, run_id=run_id)

    async def resume(self, run_id: str, inputs: Mapping[str, Any] | None = None, *,
                     deps: Any = None, runtime: Runtime | None = None,
                     force: bool = False) -> PipelineResult:
        """Continue the recorded run ``run_id`` (crashed, failed or stopped) on ``runtime``'s
        run store: steps and fan-out items recorded as done are restored, not run again;
        the rest runs, under the same run id and idempotency keys, with the run's budget
        already charged with what it spent. ``inputs`` are merged over the recorded ones
        (continuing after a ``plait.Stop`` that asked for more). Raises ``ResumeError``
        for an unknown run, another pipeline's run, or a pipeline whose steps or
        dependencies changed since (``force=True`` restores what still matches by path).
        """
        return await resume_run(self, run_id, inputs, deps=deps, runtime=runtime, force=force)

    def stream(self, inputs: Mapping[str, Any] | None = None, *, deps: Any = None,
               runtime: Runtime | None = None, run_id: str | None = None,
               buffer: int = DEFAULT_BUFFER) -> RunStream:
        """Run the pipeline and read its events as they happen::

            async for event in pipe.stream({"text": ...}, deps=app_deps):
                ...  # RunStarted, StepStarted, TextDelta, StepFinished, ..., RunFinished

        At most ``buffer`` events wait for the reader; then the run waits (backpressure).
        Leaving the loop early cancels the run; inside ``async with pipe.stream(...) as
        events:`` leaving the block also waits for it to unwind.
        """
        return RunStream(self, inputs, deps=deps, runtime=runtime, run_id=run_id,
                         buffer=buffer)

    async def _start(self, inputs: Mapping[str, Any] | None, *, deps: Any,
                     runtime: Runtime | None, run_id: str | None,
                     listeners: tuple[Listener, ...] = (),
                     within: Budget | None = None,
                     memory: RunMemory | None = None) -> PipelineResult:
        """A top-level run, reported to the Runtime's listeners and ``listeners``, its
        budget inside ``within`` when given (an eval's, that every run also spends), and
        continuing what ``memory`` recorded of an earlier attempt (a resume): what ``run``
        and the ways of running built on it share."""
        if inputs is None:
            inputs = {}
        if self._inputs is not None:
            inputs = self._inputs.check(inputs)
        if not isinstance(inputs, Mapping):
            raise TypeError(f"pipeline {self.name!r}: inputs must be a mapping of name -> value, "
                            f"got {type(inputs).__name__}")
        runtime = runtime or default_runtime()
        info = RunInfo(run_id or uuid.uuid4().hex, self.label, dict(inputs))
        limit = self._resolved_run.budget
        budget = within if limit is None else Budget(limit, "run", within)
        if budget is not None and budget is not within and memory is not None:
            budget.spent = memory.base.cost  # a resumed run: what it already spent
        run = RunScope(runtime, info, deps, budget, UsageMeter(), prefix="",
                       listeners=(*runtime.listeners, *listeners), durable=memory)
        work = self._reported if run.listeners else self._execute
        result: PipelineResult = await runtime.hooks.around(
            "plait_wrap_run", {"pipeline": self, "run": info}, lambda: work(run))
        return result

    async def _reported(self, run: RunScope) -> PipelineResult:
        run_id = run.info.run_id
        await run.emit(RunStarted(run_id, run.info.pipeline, run.inputs, time.time()))
        try:
            result = await self._execute(run)
        except Exception as exc:
            partial = exc.partial if isinstance(exc, PlaitError) else None
            await run.emit(RunFailed(run_id, ErrorInfo.of(exc), partial, time.time()))
            raise
        await run.emit(RunFinished(run_id, result, time.time()))
        return result

    async def _run_nested(self, ctx: StepContext) -> Any:
        outer = scope_of(ctx)
        inputs = {**ctx.inputs, **ctx.dependencies}
        if self._inputs is not None:
            inputs = self._inputs.check(inputs, nested=True)
        info = RunInfo(ctx.run_id, self.label, inputs, parent=ctx.path)
        limit = self._resolved_run.budget
        budget = outer.budget if limit is None else Budget(limit, f"pipeline {self.name}",
                                                           outer.budget)
        run = RunScope(ctx.runtime, info, ctx.deps, budget, outer.meter, prefix=ctx.path + "/",
                       listeners=outer.run.listeners, durable=outer.run.durable)
        try:
            result = await self._execute(run)
        except PlaitError as exc:
            if exc.partial is not None:
                outer.adopt(exc.partial.steps)
            raise
        outer.adopt(result.steps)
        return result.stop if result.stopped_early else result.output

    async def _execute(self, state: RunScope) -> PipelineResult:
        outputs: dict[str, Any] = {}
        records: dict[str, StepRecord] = {}
        waiting = {sid: len(ds) for sid, ds in self._deps.items()}
        blocked: set[str] = set()
        started: set[str] = set()
        failures: list[tuple[str, Exception, int]] = []
        stops: list[Stop] = []
        broken: list[Exception] = []  # a run listener that raised
        n = self._resolved_run.max_concurrency
        limiter = anyio.CapacityLimiter(n) if n is not None else None

        async with anyio.create_task_group() as tg:

            async def run_from(sid: str | None) -> None:
                # Run ``sid``, then carry on in this same task with one of the dependents it
                # made ready (a chain of steps costs no task at all); the others get tasks.
                while sid is not None:
                    started.add(sid)
                    scope = self._scope(state, sid, outputs)
                    try:  # execute_step keeps a step's own errors: only a listener raises
                        if limiter is None:
                            record, value, error = await execute_step(self._steps[sid], scope)
                        else:
                            async with limiter:
                                record, value, error = await execute_step(self._steps[sid],
                                                                          scope)
                    except Exception as exc:
                        broken.append(exc)
                        tg.cancel_scope.cancel()
                        return
                    scope.release()
                    if error is not None:
                        records[sid] = record
                        failures.append((sid, error, record.attempts))
                        self._block(sid, blocked)
                        return
                    outputs[sid] = value
                    if isinstance(value, Stop):
                        records[sid] = record
                        stops.append(value)
                        tg.cancel_scope.cancel()
                        return
                    records[sid] = record
                    ready = []
                    for d in self._dependents[sid]:
                        waiting[d] -= 1
                        if waiting[d] == 0 and d not in blocked:
                            ready.append(d)
                    for d in ready[1:]:
                        tg.start_soon(run_from, d)
                    sid = ready[0] if ready else None

            first, *others = self._roots
            for sid in others:
                tg.start_soon(run_from, sid)
            # the first root in this task, and in a context of its own as in a task (context
            # variables steps set stay in the run): a chain starts no task at all
            await in_context(run_from(first))

        if broken:
            raise broken[0]
        steps = {
            sid: records.get(sid) or StepRecord(sid, "cancelled" if sid in started else "skipped")
            for sid in self._steps
        }
        stop = stops[0] if stops else None
        result = PipelineResult(
            self.label, state.info.run_id,
            None if stop is not None else outputs.get(self.output),
            {sid: v for sid, v in outputs.items() if not isinstance(v, Stop)},
            steps, state.meter.usage if state.prefix == "" else _sum_usage(steps),
            stopped_early=stop is not None, stop=stop,
        )
        if failures:
            sid, error, attempts = failures[0]
            budget = _budget_refusal(error)
            if budget is error:
                error.partial = result
                raise error
            if budget is not None:  # the run ran out of money inside, e.g., a fan-out
                raise BudgetExceeded(budget.spent, budget.reserved, budget.limit, budget.scope,
                                     partial=result) from error
            path = state.prefix + sid
            if isinstance(error, StepFailed) and error.step_id.startswith(path + "/"):
                # a nested pipeline's failure (perhaps in a router branch): one StepFailed,
                # named by its path, its partial result kept with the outer levels'
                assert error.partial is not None, "a pipeline's StepFailed carries its partial"
                raise StepFailed(error.step_id, error.attempts, error.cause, result,
                                 {**error.nested_partials, path: error.partial}
                                 ) from error.cause
            raise StepFailed(path, attempts, error, result) from error
        return result

    def _scope(self, run: RunScope, sid: str, outputs: Mapping[str, Any]) -> StepScope:
        deps = {d: outputs[d] for d in self._deps[sid]}
        limit = self._step_budgets[sid]
        budget = run.budget if limit is None else Budget(limit, f"step {sid}", run.budget)
        scope = StepScope(run, sid, deps, self._configs[sid], budget=budget)
        StepContext(scope)  # the face the step and its wrappers see
        return scope

    def _block(self, sid: str, blocked: set[str]) -> None:
        for d in self._dependents[sid]:
            if d not in blocked:
                blocked.add(d)
                self._block(d, blocked)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r} steps={list(self._steps)}>"


def _budget_refusal(error: BaseException) -> BudgetExceeded | None:
    """The budget refusal that caused ``error``, if one did: a run out of money is a
    run-level error, raised as ``BudgetExceeded`` whatever step it surfaced in."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, BudgetExceeded):
            return seen
        seen = seen.__cause__
    return None


def _sum_usage(steps: Mapping[str, StepRecord]) -> Usage:
    return sum((r.usage for r in steps.values()), Usage())


def _check_steps(name: str, steps: Any) -> dict[str, Step]:
    if not isinstance(steps, Mapping) or not steps:
        raise PipelineDefinitionError(
            f"pipeline {name!r}: steps must be a non-empty mapping of id -> step")
    out: dict[str, Step] = {}
    for sid, st in steps.items():
        if not isinstance(sid, str) or not sid or "/" in sid:
            raise PipelineDefinitionError(
                f"pipeline {name!r}: step ids must be non-empty strings without '/', got {sid!r}")
        out[sid] = as_step(st, f"pipeline {name!r}, step {sid!r}")
    return out


def _check_deps(name: str, steps: Mapping[str, Step],
                deps: Mapping[str, Sequence[str] | str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(deps, Mapping):
        raise PipelineDefinitionError(f"pipeline {name!r}: deps must be a mapping of "
                                      "step id -> the ids it depends on")
    known = ", ".join(steps)
    out: dict[str, tuple[str, ...]] = {sid: () for sid in steps}
    for sid, ds in deps.items():
        if sid not in steps:
            raise PipelineDefinitionError(
                f"pipeline {name!r}: deps names unknown step {sid!r}; steps: {known}"
                f"{did_you_mean(sid, steps)}")
        listed = [ds] if isinstance(ds, str) else list(ds)
        for d in listed:
            if d not in steps:
                raise PipelineDefinitionError(
                    f"pipeline {name!r}: step {sid!r} depends on unknown step {d!r}; "
                    f"steps: {known}{did_you_mean(d, steps)}")
        out[sid] = tuple(dict.fromkeys(listed))
    return out


def _check_acyclic(name: str, deps: Mapping[str, tuple[str, ...]]) -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(sid: str) -> None:
        state[sid] = 1
        path.append(sid)
        for d in deps[sid]:
            if state.get(d) == 1:
                cycle = [*path[path.index(d):], d]
                raise PipelineDefinitionError(
                    f"pipeline {name!r} has a cycle: {' -> '.join(reversed(cycle))}")
            if d not in state:
                visit(d)
        path.pop()
        state[sid] = 2

    for sid in deps:
        if sid not in state:
            visit(sid)


def _check_output(name: str, dependents: Mapping[str, list[str]], output: str | None) -> str:
    if output is not None:
        if output not in dependents:
            raise PipelineDefinitionError(
                f"pipeline {name!r}: output names unknown step {output!r}; "
                f"steps: {', '.join(dependents)}{did_you_mean(output, dependents)}")
        return output
    sinks = [sid for sid, ds in dependents.items() if not ds]
    if len(sinks) != 1:
        raise PipelineDefinitionError(
            f"pipeline {name!r} has {len(sinks)} final steps ({', '.join(sinks)}); "
            "name the one whose value is the result with output=")
    return sinks[0]


def _check_config(where: str, config: Any) -> Config:
    if config is None:
        return Config()
    if not isinstance(config, Config):
        raise PipelineDefinitionError(f"{where} must be a plait.Config, got {config!r}")
    return config
