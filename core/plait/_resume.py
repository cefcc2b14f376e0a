"""``pipe.resume(run_id)``: continue a recorded run where it stopped, crashed or failed.

Steps recorded as done are restored, not run (``execute_step`` asks the run's memory);
a fan-out runs only the items not recorded as done (``map_items`` does the same); failed,
stopped and unfinished steps run again, under the same run id, so every idempotency key
is the one of the first attempt. The run's budget starts with what earlier attempts
spent. Delivery is at least once: a step or item whose record had not reached the store
when the process died runs again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._durable import RunMemory, structure_of
from ._errors import ResumeError
from ._events import Listener
from ._money import Usage
from ._runtime import Runtime, default_runtime
from ._store import StoredRun

if TYPE_CHECKING:
    from ._budget import Budget
    from ._pipeline import Pipeline
    from ._results import PipelineResult

__all__ = ["changes", "resume_run", "spent"]


def changes(recorded: Mapping[str, tuple[str, ...]],
            current: Mapping[str, tuple[str, ...]]) -> list[str]:
    """How the pipeline's structure moved away from the recorded one, in a way that
    makes recorded outputs unsafe to restore: a step removed, or its dependencies changed.
    Added steps are fine (they just run)."""
    found = []
    for path, deps in recorded.items():
        if path not in current:
            found.append(f"step {path!r} was removed")
        elif tuple(current[path]) != tuple(deps):
            found.append(f"step {path!r} depends on [{', '.join(current[path])}] now, on "
                         f"[{', '.join(deps)}] when it was recorded")
    return found


def spent(stored: StoredRun) -> Usage:
    """What the run has spent so far over all its attempts. An attempt that ended wrote
    its total; one that died is the sum of what its rows recorded, each counted once
    (a step's row covers the steps and items nested in it)."""
    run = stored.run
    if run.status != "running":
        return run.usage
    steps = {p for p, s in stored.steps.items() if s.attempt == run.attempt}

    def covered(path: str, itself: bool) -> bool:
        parts = path.split("/")
        return any("/".join(parts[:n]) in steps
                   for n in range(1, len(parts) + (1 if itself else 0)))

    total = run.base
    for path in steps:
        if not covered(path, itself=False):
            total = total + stored.steps[path].record.usage
    for path, rows in stored.items.items():
        if not covered(path, itself=True):
            for row in rows.values():
                if row.attempt == run.attempt:
                    total = total + row.usage
    return total


async def resume_run(pipeline: Pipeline, run_id: str, inputs: Mapping[str, Any] | None, *,
                     deps: Any, runtime: Runtime | None, force: bool,
                     listeners: tuple[Listener, ...] = (),
                     within: Budget | None = None) -> PipelineResult:
    runtime = runtime or default_runtime()
    store = runtime.store
    if store is None:
        raise ResumeError(f"cannot resume run {run_id!r}: this Runtime records no runs "
                          "(PLAIT_STORE=off or Runtime(store='off'))")
    if inputs is not None and not isinstance(inputs, Mapping):
        raise TypeError(f"pipeline {pipeline.name!r}: resume inputs must be a mapping of "
                        f"name -> value, got {type(inputs).__name__}")
    await store.open()
    await store.flush()  # rows this process still has queued for the run
    stored = await store.load(run_id)
    if stored is None:
        raise ResumeError(f"no run {run_id!r} in the run store {store.location}")
    row = stored.run
    if row.pipeline != pipeline.label:
        raise ResumeError(f"run {run_id!r} is a run of pipeline {row.pipeline!r}, "
                          f"not of {pipeline.label!r}")
    changed = changes(row.structure, structure_of(pipeline))
    if changed and not force:
        raise ResumeError(f"cannot resume run {run_id!r}: pipeline {pipeline.name!r} changed "
                          f"since it was recorded ({'; '.join(changed)}), so recorded outputs "
                          "may not fit; resume(..., force=True) restores them anyway")
    memory = RunMemory(
        {p: s for p, s in stored.steps.items() if s.record.status == "ok"},
        {p: {i: r for i, r in rows.items() if r.error is None}
         for p, rows in stored.items.items()},
        stored.once, attempt=row.attempt + 1, base=spent(stored))
    recorder = runtime._recorder  # the Runtime's own: it records this attempt
    if recorder is not None:
        recorder.resuming(run_id, memory, row.started_at)
    return await pipeline._start({**row.inputs, **(inputs or {})}, deps=deps,
                                 runtime=runtime, run_id=run_id, listeners=listeners,
                                 memory=memory, within=within)
