"""Recording a Runtime's runs in its run store, as one more listener of the run events.

The recorder turns each event into a row (values through the Runtime's converter, on the
loop, so the row is a snapshot) and hands it to ``store.write``, which only queues it; the
store writes in the background and a run's end awaits ``store.flush``. Its one hook, a
``plait_wrap_run`` wrapper, notes the pipeline of each top-level run, whose structure
the run's row keeps so ``pipe.resume`` can tell whether recorded outputs still fit; a
``plait_wrap_model_call`` wrapper records each model call (usage, cost, latency; prompt
and reply only with ``PLAIT_STORE_CONTENT=1``).
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
import weakref
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import attrs

from ._durable import RunMemory, fingerprint, recorded_output, structure_of, target_of
from ._errors import StoreError
from ._events import ItemFinished, RunEvent, RunFailed, RunFinished, RunStarted, StepFinished
from ._money import Usage
from ._results import ErrorInfo
from ._store import CallRow, ItemRow, RunRow, RunStore, StepRow
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from ._context import StepContext
    from ._model import ModelCall, ModelRequest
    from ._results import RunInfo
    from ._runtime import Runtime

__all__ = ["Recorder", "StoreWarning"]


class StoreWarning(UserWarning):
    """A run finished but the run store could not record all of it (a full disk...)."""


@attrs.define
class _Live:
    """A run being recorded: its row so far and the store it goes to."""

    row: RunRow
    store: RunStore


class Recorder:
    """Records the runs of one Runtime (a listener in ``Runtime.listeners``)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._pipelines: dict[str, Any] = {}  # run id -> pipeline, until the run starts
        self._resumed: dict[str, tuple[RunMemory, float]] = {}  # set by pipe.resume
        self._live: dict[str, _Live] = {}
        self._content = os.environ.get("PLAIT_STORE_CONTENT", "").lower() in ("1", "true", "yes")
        # per pipeline: its structure, fingerprint and target (a pipeline does not change)
        self._shapes: weakref.WeakKeyDictionary[Any, tuple[dict[str, tuple[str, ...]], str,
                                                           str | None]] = (
            weakref.WeakKeyDictionary())

    def resuming(self, run_id: str, memory: RunMemory, started_at: float) -> None:
        """The next start of ``run_id`` continues a recorded run (attempt, spend, start)."""
        self._resumed[run_id] = (memory, started_at)

    @hookimpl
    def plait_wrap_run(self, pipeline: Any, run: RunInfo) -> Generator[None, Any, None] | None:
        return None if run.parent is not None else self._noting(pipeline, run.run_id)

    def _noting(self, pipeline: Any, run_id: str) -> Generator[None, Any, None]:
        self._pipelines[run_id] = pipeline
        try:
            yield
        finally:  # the run is over (or never reported a start)
            self._pipelines.pop(run_id, None)
            self._resumed.pop(run_id, None)

    @hookimpl
    def plait_wrap_model_call(self, request: ModelRequest, provider: str,
                              ctx: StepContext | None,
                              call: ModelCall) -> Generator[None, Any, None] | None:
        live = None if ctx is None else self._live.get(ctx.run_id)
        if live is None or ctx is None:
            return None
        return self._timing(live, request, f"{provider}:{call.model}", ctx.path, call)

    def _timing(self, live: _Live, request: ModelRequest, model: str, path: str,
                call: ModelCall) -> Generator[None, Any, None]:
        at, t0 = time.time(), time.perf_counter()
        error: ErrorInfo | None = None
        reply: str | None = None
        try:
            response = yield
            reply = response.text
        except BaseException as exc:
            error = ErrorInfo.of(exc)
            raise
        finally:
            prompt = (tuple((m.role, m.content) for m in request.messages)
                      if self._content else None)
            live.store.write([CallRow(
                live.row.run_id, uuid.uuid4().hex, path, model, call.attempt, at,
                time.perf_counter() - t0, call.usage or Usage(), error, prompt,
                reply if self._content else None)])

    async def __call__(self, event: RunEvent) -> None:
        kind = type(event)
        if kind is StepFinished or kind is ItemFinished:
            live = self._live.get(event.run_id)
            if live is not None:
                row = (self._step(event, live.row.attempt) if kind is StepFinished  # type: ignore[arg-type]
                       else self._item(event, live.row.attempt))  # type: ignore[arg-type]
                if row is not None:
                    live.store.write([row])
        elif kind is RunStarted:
            await self._started(event)  # type: ignore[arg-type]
        elif kind is RunFinished or kind is RunFailed:
            await self._ended(event)  # type: ignore[arg-type]

    async def _started(self, event: RunStarted) -> None:
        store = self._runtime.store
        pipeline = self._pipelines.get(event.run_id)
        if store is None or pipeline is None:
            return
        await store.open()
        memory, started = self._resumed.pop(event.run_id, (None, event.at))
        shape = self._shapes.get(pipeline)
        if shape is None:
            structure = structure_of(pipeline)
            shape = self._shapes[pipeline] = (structure, fingerprint(structure),
                                              target_of(pipeline))
        structure, print_, target = shape
        row = RunRow(event.run_id, event.pipeline, "running", started, print_,
                     structure, self._runtime.converter.unstructure(event.inputs),
                     attempt=1 if memory is None else memory.attempt,
                     base=Usage() if memory is None else memory.base,
                     usage=Usage() if memory is None else memory.base,
                     target=target)
        self._live[event.run_id] = _Live(row, store)
        store.write([row])

    def _step(self, event: StepFinished, attempt: int) -> StepRow | None:
        record = event.record
        if record.status == "failed":
            return StepRow(event.run_id, event.step_id, record, None, attempt)
        try:
            data, plain = recorded_output(event.output, self._runtime.converter)
        except Exception:  # not JSON after all: unrecorded, so a resume runs it again
            return None
        return StepRow(event.run_id, event.step_id, record, data, attempt, plain)

    def _item(self, event: ItemFinished, attempt: int) -> ItemRow | None:
        if event.error is not None:
            return ItemRow(event.run_id, event.step_id, event.index, event.total, None,
                           event.error, event.usage, attempt)
        try:
            data, plain = recorded_output(event.value, self._runtime.converter)
        except Exception:
            return None
        return ItemRow(event.run_id, event.step_id, event.index, event.total, data, None,
                       event.usage, attempt, plain)

    async def _ended(self, event: RunFinished | RunFailed) -> None:
        live = self._live.pop(event.run_id, None)
        if live is None:
            return
        row = live.row
        if isinstance(event, RunFinished):
            result = event.result
            conv = self._runtime.converter
            row = attrs.evolve(row, status="stopped" if result.stopped_early else "ok",
                               ended_at=event.at, usage=row.base + result.usage,
                               stop=None if result.stop is None else conv.unstructure(
                                   result.stop))
        else:
            spent = Usage() if event.partial is None else event.partial.usage
            row = attrs.evolve(row, status="failed", ended_at=event.at,
                               usage=row.base + spent, error=event.error)
        live.store.write([row])
        try:
            await live.store.flush()
        except StoreError as exc:  # the run's result matters more than its record
            warnings.warn(f"run {event.run_id} was not fully recorded: {exc}", StoreWarning,
                          stacklevel=2)
