"""The run store contract: what a store keeps of a run, and the one interface it offers.

A run store records a run as it goes (the run, each finished step with its output, each
finished fan-out item, each ``ctx.once`` result) so ``pipe.resume`` can continue it and
``plait runs`` can show it. Values arrive already turned into JSON data by the Runtime's
converter; a store only keeps and returns them. The embedded SQLite store
(``plait._sqlite_store``) is the default; a plugin can register another
(``plait_register_stores``), and ``plait_testing.contracts.RunStoreContract`` checks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from ._money import Usage
from ._results import ErrorInfo, StepRecord

__all__ = ["CallRow", "ItemRow", "OnceRow", "Row", "RunRow", "RunStatus", "RunStore", "StepRow",
           "StoredRun"]

RunStatus = Literal["running", "ok", "failed", "stopped"]


@attrs.frozen
class RunRow:
    """A run: written when it starts (``running``) and again when it ends.

    ``structure`` maps each step path to the steps it depends on (what ``pipe.resume``
    compares with the pipeline it is given) and ``fingerprint`` is its hash; ``inputs``
    and ``stop`` are JSON data. ``attempt`` counts the run's attempts (one more per
    resume); ``base`` is what earlier attempts spent and ``usage`` the run's total so far.
    ``target`` says where the pipeline lives, for ``plait runs resume``.
    """

    run_id: str
    pipeline: str
    status: RunStatus
    started_at: float
    fingerprint: str = ""
    structure: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    inputs: Mapping[str, Any] = attrs.field(factory=dict)
    ended_at: float | None = None
    usage: Usage = Usage()
    base: Usage = Usage()
    error: ErrorInfo | None = None
    stop: Any = None
    attempt: int = 1
    target: str | None = None  # MODULE:OBJECT of the pipeline, when it could be found


@attrs.frozen
class StepRow:
    """A step that finished (``ok``, ``failed`` or ``stopped``), by its path in the run,
    with its output as JSON data (a stopped step's ``Stop``; ``None`` when it failed)."""

    run_id: str
    path: str
    record: StepRecord
    output: Any = None
    attempt: int = 1
    plain: bool = False  # the output was plain JSON data, restorable without its type


@attrs.frozen
class ItemRow:
    """One finished fan-out item of the step at ``path``: ``value`` (JSON data) when it
    succeeded, ``error`` when it failed."""

    run_id: str
    path: str
    index: int
    total: int
    value: Any = None
    error: ErrorInfo | None = None
    usage: Usage = Usage()
    attempt: int = 1
    plain: bool = False  # the value was plain JSON data, restorable without its type


@attrs.frozen
class OnceRow:
    """The recorded result (JSON data) of ``ctx.once(name, ...)`` in a run."""

    run_id: str
    name: str
    value: Any = None


@attrs.frozen
class CallRow:
    """One request to a model, made by the step (or fan-out item) at ``path``: its usage and
    exact cost, latency, and error when it failed. ``prompt`` (the messages, as
    ``[role, text]`` pairs) and ``reply`` are kept only with ``PLAIT_STORE_CONTENT=1``.
    ``call_id`` is unique in the run."""

    run_id: str
    call_id: str
    path: str
    model: str  # "<provider>:<model>"
    attempt: int
    at: float
    latency_s: float
    usage: Usage = Usage()
    error: ErrorInfo | None = None
    prompt: tuple[tuple[str, str], ...] | None = None
    reply: str | None = None


Row = RunRow | StepRow | ItemRow | OnceRow | CallRow


@attrs.frozen
class StoredRun:
    """Everything a store holds of one run: steps by path, items by fan-out path and index,
    ``once`` results by name, model calls."""

    run: RunRow
    steps: Mapping[str, StepRow] = attrs.field(factory=dict)
    items: Mapping[str, Mapping[int, ItemRow]] = attrs.field(factory=dict)
    once: Mapping[str, Any] = attrs.field(factory=dict)
    calls: tuple[CallRow, ...] = ()  # in the order they started


@runtime_checkable
class RunStore(Protocol):
    """A place runs are recorded. ``write`` is called on the event loop for every record
    and must never block (queue the rows, write them in the background); the rest is
    async and may do I/O. A row replaces an earlier one with the same key (a run by id, a
    step by run and path, an item by run, path and index, a once result by run and name,
    a call by run and call id).
    Many processes and concurrent runs may share one store: none may lose a row."""

    location: str  # the file or URL, for messages

    async def open(self) -> None:
        """Get ready (create or check the schema); called before a run's first write,
        so it must be cheap once done. Raises ``plait.StoreError`` naming the location."""

    def write(self, rows: Sequence[Row]) -> None:
        """Queue ``rows`` to be written, in order; never blocks."""

    async def flush(self) -> None:
        """Return once every row queued so far is durable (a run's end awaits this)."""

    async def load(self, run_id: str) -> StoredRun | None:
        """The run and all its rows, or ``None`` when the store has no such run."""

    async def runs(self, *, status: str | None = None, pipeline: str | None = None,
                   since: float | None = None, limit: int | None = None) -> list[RunRow]:
        """Runs, newest first, filtered by status, pipeline name and start time."""

    async def delete(self, run_ids: Sequence[str]) -> int:
        """Remove these runs and their rows; returns how many runs were removed."""

    async def prune(self, before: float) -> int:
        """Remove every run that started before ``before`` (a Unix time); returns how many."""

    async def aclose(self) -> None:
        """Flush and release the store."""
