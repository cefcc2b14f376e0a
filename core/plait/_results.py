"""What a run produces: frozen records and results, serializable to JSON and back."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._money import Usage

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = [
    "ErrorInfo",
    "FanOutResult",
    "ItemError",
    "ItemOutcome",
    "PipelineResult",
    "StepRecord",
    "StepStatus",
    "Stop",
]

StepStatus = Literal["ok", "failed", "skipped", "cancelled", "stopped"]


@attrs.frozen
class Stop:
    """Return this from a step to end the run early: nothing downstream runs.

    ``reason`` says why; ``data`` carries whatever the caller needs to continue later
    (the missing fields of a form, a partial answer...).
    """

    reason: str
    data: Any = None


@attrs.frozen
class ErrorInfo:
    """An error as data: what a record keeps (the live exception is on the raised error)."""

    type: str
    message: str

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        return cls(type(exc).__name__, str(exc))


@attrs.frozen
class StepRecord:
    """What happened to one step of a run.

    ``started_at`` / ``ended_at`` are Unix timestamps; ``latency_s`` is measured with a
    monotonic clock. ``route`` is the branch a router took; ``children`` holds the records
    of a nested pipeline or router branch.
    """

    step_id: str
    status: StepStatus
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    latency_s: float | None = None
    usage: Usage = Usage()
    error: ErrorInfo | None = None
    route: str | None = None
    children: Mapping[str, StepRecord] = attrs.field(factory=dict)


@attrs.frozen
class ItemError:
    """One failed fan-out item: its index in the input, the item, and the error."""

    index: int
    item: Any
    error: ErrorInfo
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class ItemOutcome:
    """The result of one fan-out item, as an executor reports it."""

    index: int
    value: Any = None
    error: BaseException | None = None
    usage: Usage = Usage()

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.frozen
class FanOutResult:
    """A fan-out's results in input order: successes and errors side by side.

    ``values`` holds successful outputs in input order; ``errors`` the failed items;
    ``usage`` the items' model usage in input order (also for failed items).
    """

    values: Sequence[Any]
    errors: Sequence[ItemError] = ()
    item_usage: Sequence[Usage] = ()
    total: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def usage(self) -> Usage:
        return sum(self.item_usage, Usage())

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[Any]:
        """The successful values, in input order (so fan-outs chain)."""
        return iter(self.values)


@attrs.frozen
class PipelineResult:
    """The result of a pipeline run.

    ``output`` is the output step's value (``None`` when the run stopped early before it);
    ``outputs`` every completed step's value; ``steps`` a record per step, in declaration
    order; ``usage`` every model call of the run summed, cost as an exact Decimal.
    """

    pipeline: str
    run_id: str
    output: Any
    outputs: Mapping[str, Any]
    steps: Mapping[str, StepRecord]
    usage: Usage = Usage()
    stopped_early: bool = False
    stop: Stop | None = None

    @property
    def ok(self) -> bool:
        """True when every step finished (or the run stopped early on purpose)."""
        return all(r.status in ("ok", "stopped") for r in self.steps.values()) or (
            self.stopped_early and not self.failed
        )

    @property
    def failed(self) -> list[str]:
        """Ids of the steps that failed."""
        return [sid for sid, r in self.steps.items() if r.status == "failed"]

    def to_json(self, *, indent: int | None = None, runtime: Runtime | None = None) -> str:
        """This result as JSON, outputs through ``runtime``'s converter (so types that
        plugins taught it serialize too) or a default one."""
        from ._serialize import result_to_json

        return result_to_json(self, indent=indent,
                              converter=None if runtime is None else runtime.converter)

    @classmethod
    def from_json(cls, text: str, *, runtime: Runtime | None = None) -> PipelineResult:
        """Rebuild a result from ``to_json``; outputs come back as plain JSON values."""
        from ._serialize import result_from_json

        return result_from_json(text, None if runtime is None else runtime.converter)
