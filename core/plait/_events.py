"""What a run reports as it goes: frozen, JSON-serializable events.

The engine emits them to a run's listeners (``RunScope.emit``) as things finish, so a
stream of a run (``pipe.stream``), a run store or a live display reads one sequence of
facts instead of each adding its own hooks into the engine. A run with no listeners
emits nothing and pays nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

from ._money import Usage
from ._results import ErrorInfo, PipelineResult, StepRecord

__all__ = [
    "ItemFinished",
    "Listener",
    "RunEvent",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "StepFinished",
    "StepStarted",
    "TextDelta",
]


@attrs.frozen
class RunStarted:
    """A top-level run began (nested pipelines report their steps, not a run)."""

    run_id: str
    pipeline: str
    inputs: Mapping[str, Any]
    at: float


@attrs.frozen
class StepStarted:
    """A step began its first attempt; ``step_id`` is its path (``outer/inner``)."""

    run_id: str
    step_id: str
    at: float


@attrs.frozen
class StepFinished:
    """A step that ran is done, however it ended: ``record.status`` is ``ok``, ``failed``
    or ``stopped``. ``output`` is its value (the ``Stop`` of a stopped step), ``None``
    when it failed."""

    run_id: str
    step_id: str
    record: StepRecord
    output: Any
    at: float


@attrs.frozen
class ItemFinished:
    """One fan-out item is done: ``value`` when it succeeded, ``error`` when it failed.
    ``step_id`` is the fan-out step's path; ``total`` the number of items."""

    run_id: str
    step_id: str
    index: int
    total: int
    value: Any
    error: ErrorInfo | None
    usage: Usage
    at: float


@attrs.frozen
class TextDelta:
    """Text a streamed model call produced, as it arrived."""

    run_id: str
    step_id: str
    text: str
    at: float


@attrs.frozen
class RunFinished:
    """The run ended with a result (also when a step stopped it early)."""

    run_id: str
    result: PipelineResult
    at: float


@attrs.frozen
class RunFailed:
    """The run raised; ``partial`` holds what completed, when the error carried it."""

    run_id: str
    error: ErrorInfo
    partial: PipelineResult | None
    at: float


RunEvent = (RunStarted | StepStarted | StepFinished | ItemFinished | TextDelta | RunFinished
            | RunFailed)
# Awaited in order for each event: a listener that waits holds the run back (backpressure),
# one that raises fails the run, as any other error in the engine would.
Listener = Callable[[RunEvent], Awaitable[None]]
