"""Orchestrator-worker: a planner splits a request into typed tasks, workers run them.

Nothing is dropped silently: a task of an unknown type, a failing worker and tasks past
``max_tasks`` each get a ``TaskReport`` saying so, in the result and in what the
synthesizer is shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ._agent import Agent
from ._context import StepContext, scope_of
from ._errors import OutputParseError, PipelineDefinitionError, did_you_mean
from ._fanout import worker_call
from ._map import map_items
from ._results import ErrorInfo
from ._router import route_key
from ._step import Step, check_runs, render_prompt

__all__ = ["Orchestrator", "OrchestratorResult", "TaskReport"]

TaskStatus = Literal["ok", "failed", "unknown_type", "over_limit"]


@attrs.frozen
class TaskReport:
    """What happened to one planned task."""

    index: int
    type: str
    task: Any
    status: TaskStatus
    output: Any = None
    error: ErrorInfo | None = None


@attrs.frozen
class OrchestratorResult:
    """The plan, a report per task, and the synthesized answer (if a synthesizer ran)."""

    tasks: tuple[TaskReport, ...]
    answer: Any = None

    @property
    def ok(self) -> bool:
        return all(t.status == "ok" for t in self.tasks)


class Orchestrator(Step):
    """Plan with an agent, run each task on the worker for its type, then synthesize.

    - ``planner``: an Agent whose output is a list of tasks (attrs classes or
      dataclasses), or an object with a ``tasks`` list. A task's type is its class, or
      its ``type_field`` (default ``"type"``; a string or Enum) for a tagged union.
    - ``workers``: ``{task type: worker}``, keyed by class or by type name; a worker is a
      step (the task is ``ctx.item``) or a function ``(ctx, task)``.
    - ``synthesizer``: an Agent asked with the request and every task report, or a
      function ``(ctx, reports)``; optional.
    - ``prompt``: the planner's prompt (template or function); default: input ``query``.
    - ``limit``: tasks at once; ``max_tasks``: more than this and the rest are reported
      ``over_limit`` instead of run.
    """

    def __init__(self, planner: Agent, workers: Mapping[Any, Any], synthesizer: Any = None, *,
                 prompt: str | Callable[[StepContext], str] = "{query}",
                 limit: int | None = None, max_tasks: int = 10, type_field: str = "type",
                 name: str | None = None) -> None:
        if not isinstance(planner, Agent):
            raise PipelineDefinitionError(f"Orchestrator: planner must be a plait.Agent, "
                                          f"got {planner!r}")
        if not isinstance(workers, Mapping) or not workers:
            raise PipelineDefinitionError("Orchestrator: workers must be a non-empty mapping "
                                          "of task type -> step or function")
        for key, worker in workers.items():
            if not (isinstance(worker, Step) or callable(worker)):
                raise PipelineDefinitionError(
                    f"Orchestrator: worker for {key!r} must be a step or a function (ctx, task)")
            if isinstance(worker, Step):
                check_runs(worker, f"Orchestrator: worker for {key!r}")
        if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 1:
            raise PipelineDefinitionError(f"Orchestrator: max_tasks must be an int >= 1, "
                                          f"got {max_tasks!r}")
        if synthesizer is not None and not (isinstance(synthesizer, Agent)
                                            or callable(synthesizer)):
            raise PipelineDefinitionError(
                f"Orchestrator: synthesizer must be an Agent or a function, got {synthesizer!r}")
        self.planner = planner
        self.workers = {(k if isinstance(k, type) else route_key(k)): w
                        for k, w in workers.items()}
        self.synthesizer = synthesizer
        self.prompt = prompt
        self.limit = limit
        self.max_tasks = max_tasks
        self.type_field = type_field
        self.name = name or "orchestrator"

    def task_type(self, task: Any) -> Any:
        """The worker key of a task: its class if a worker is keyed by it, else its type."""
        if type(task) in self.workers:
            return type(task)
        return route_key(getattr(task, self.type_field, None) or type(task).__name__)

    async def run(self, ctx: StepContext) -> OrchestratorResult:
        request = await render_prompt(self.prompt, ctx)
        plan = (await ctx.ask(self.planner, request)).output
        tasks = getattr(plan, "tasks", plan)
        if isinstance(tasks, str | bytes | Mapping) or not isinstance(tasks, Iterable):
            raise OutputParseError(
                f"orchestrator {self.name!r}: the planner must return a list of tasks (or an "
                f"object with a `tasks` list), got {type(tasks).__name__}; give the planner "
                "agent output=list[Task]", raw=repr(plan)[:500], expected="list of tasks")
        tasks = list(tasks)
        reports: list[TaskReport | None] = [None] * len(tasks)
        runnable: list[tuple[int, Any, Any]] = []
        for i, task in enumerate(tasks):
            key = self.task_type(task)
            name = key.__name__ if isinstance(key, type) else str(key)
            if i >= self.max_tasks:
                reports[i] = TaskReport(i, name, task, "over_limit", error=ErrorInfo(
                    "OverLimit", f"the plan had {len(tasks)} tasks; max_tasks={self.max_tasks}"))
            elif key not in self.workers:
                reports[i] = TaskReport(i, name, task, "unknown_type", error=ErrorInfo(
                    "UnknownTaskType", f"no worker for task type {name!r}; workers: "
                    f"{', '.join(self._names())}{did_you_mean(name, self._names())}"))
            else:
                runnable.append((i, name, task))

        async def run_task(_slot: int, entry: tuple[int, str, Any]) -> Any:
            i, _name, task = entry
            return await worker_call(self.workers[self.task_type(task)], ctx)(i, task)

        results = await map_items(scope_of(ctx), run_task, runnable, limit=self.limit,
                                  on_error="collect", min_success=None, indexed=True)
        ok = iter(results.values)
        failed = {e.index: e.error for e in results.errors}
        for slot, (i, name, task) in enumerate(runnable):
            if slot in failed:
                reports[i] = TaskReport(i, name, task, "failed", error=failed[slot])
            else:
                reports[i] = TaskReport(i, name, task, "ok", output=next(ok))
        final = tuple(r for r in reports if r is not None)
        answer = await self._synthesize(ctx, request, final) if self.synthesizer else None
        return OrchestratorResult(final, answer)

    async def _synthesize(self, ctx: StepContext, request: str,
                          reports: Sequence[TaskReport]) -> Any:
        if not isinstance(self.synthesizer, Agent):
            result = self.synthesizer(ctx, reports)
            return (await result) if hasattr(result, "__await__") else result
        conv = ctx.runtime.converter
        lines = []
        for r in reports:
            if r.status == "ok":
                shown = json.dumps(conv.unstructure(r.output), default=str)
            else:  # the task itself too, so the reply can say which part was not handled
                problem = r.error.message if r.error else r.status
                shown = (f"{json.dumps(problem)}; the task: "
                         f"{json.dumps(conv.unstructure(r.task), default=str)}")
            lines.append(f"- task {r.index + 1} ({r.type}): {r.status}: {shown}")
        prompt = (f"Request:\n{request}\n\nResults of the tasks it was split into:\n"
                  + "\n".join(lines)
                  + "\n\nWrite the reply to the request from these results. Say plainly "
                    "which parts could not be handled.")
        return (await ctx.ask(self.synthesizer, prompt)).output

    def _names(self) -> list[str]:
        return [k.__name__ if isinstance(k, type) else str(k) for k in self.workers]
