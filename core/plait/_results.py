"""What a run produces: frozen records and results, serializable to JSON and back.

Every type a hook passes or a run returns lives here (runs, steps, replies, fan-outs,
ensembles), so plugins and every layer of the engine can use them without importing it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._money import Usage
from ._serialize import LOCAL, SAFE, check_serializable, from_json, to_json

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = [
    "Aggregation",
    "Candidate",
    "EnsembleResult",
    "ErrorInfo",
    "FanOutJob",
    "FanOutResult",
    "ItemError",
    "ItemOutcome",
    "PipelineResult",
    "Reply",
    "RunInfo",
    "StepRecord",
    "StepStatus",
    "Stop",
    "ToolRecord",
]

StepStatus = Literal["ok", "failed", "skipped", "cancelled", "stopped"]


@attrs.frozen
class RunInfo:
    """A run as wrappers and tracers see it."""

    run_id: str
    pipeline: str
    inputs: Mapping[str, Any] = attrs.field(repr=False)
    parent: str | None = None  # the enclosing step's path for a nested pipeline


@attrs.frozen
class ToolRecord:
    """One tool call a model made, as JSON data: its ``arguments``, then the ``result``
    the tool returned (as the JSON sent back to the model) or the ``error`` it was told
    instead, and how long the tool ran."""

    name: str
    arguments: Any
    result: Any = None
    error: str | None = None
    latency_s: float = 0.0
    id: str = ""


@attrs.frozen
class Reply:
    """A model's answer: the typed ``output``, the raw ``text`` and what it cost.

    ``tool_calls`` records every tool the model called on the way, in order."""

    output: Any
    text: str
    usage: Usage
    model: str
    attempts: int = 1
    finish_reason: str | None = None
    tool_calls: tuple[ToolRecord, ...] = ()

    @property
    def cached(self) -> bool:
        """Whether every request of this reply was answered from a cache (it cost $0)."""
        return self.usage.cache_hits > 0 and self.usage.requests == 0


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
    requests: int | None = None  # model requests the failing call sent, when one failed

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        return cls(type(exc).__name__, str(exc), getattr(exc, "requests", None))


@attrs.frozen
class StepRecord:
    """What happened to one step of a run.

    ``started_at`` / ``ended_at`` are Unix timestamps; ``latency_s`` is measured with a
    monotonic clock. ``route`` is the branch a router took; ``children`` holds the records
    of a nested pipeline or router branch. ``models`` splits ``usage`` by the model called
    (``"openai:gpt-4o-mini"``: the provider and model the requests went to, a Runtime's
    ``model_override`` applied), nested work included.
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
    models: Mapping[str, Usage] = attrs.field(factory=dict)


@attrs.frozen
class ItemError:
    """One failed fan-out item: its index in the input, the item, and the error."""

    index: int
    item: Any
    error: ErrorInfo
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False,
                                                  metadata={LOCAL: True})


@attrs.frozen
class FanOutJob:
    """A fan-out as executors see it: ``await fn(index, item)`` for every item.

    An executor awaits ``job.finish(outcome)`` as each item finishes (succeeded or
    failed): that counts it for progress displays (which append a callback to
    ``on_item_done`` in their ``plait_wrap_fanout``, so there is no hook per item) and
    reports its outcome to the run's listeners (``plait.ItemFinished``: a stream of the
    run, a run store). ``item_done(index)`` alone only counts it.
    """

    fn: Callable[[int, Any], Awaitable[Any]]
    items: Sequence[Any]
    limit: int | None
    fail_fast: bool  # stop starting items after the first error
    label: str  # the step path, for traces and progress displays
    executor: str = "local"  # the registered executor that runs it (plait_register_executors)
    # set by the engine when the run has listeners; None costs an item nothing
    report: Callable[[ItemOutcome], Awaitable[None]] | None = attrs.field(
        default=None, kw_only=True, eq=False, repr=False)
    on_item_done: list[Callable[[int], None]] = attrs.field(
        init=False, factory=list, eq=False, repr=False)

    def item_done(self, index: int) -> None:
        """Tell whoever counts items that item ``index`` finished."""
        for callback in self.on_item_done:
            callback(index)

    async def finish(self, outcome: ItemOutcome) -> None:
        """Item ``outcome.index`` finished: count it and report its outcome."""
        self.item_done(outcome.index)
        if self.report is not None:
            await self.report(outcome)


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
    ``item_usage`` the items' model usage in input order (also for failed items), and
    ``usage`` their sum; ``total`` the number of items.
    """

    values: Sequence[Any]
    errors: Sequence[ItemError] = ()
    item_usage: Sequence[Usage] = attrs.field(default=(), metadata={SAFE: True})
    total: int = attrs.field(default=0, metadata={SAFE: True})

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
        conv = None if runtime is None else runtime.converter
        try:
            return to_json(self, indent=indent, converter=conv)
        except Exception:  # name the step and the path, as the run would have
            for step_id, value in self.outputs.items():
                check_serializable(conv, value, step_id)
            raise

    @classmethod
    def from_json(cls, text: str, *, runtime: Runtime | None = None) -> PipelineResult:
        """Rebuild a result from ``to_json``; outputs come back as plain JSON values."""
        return from_json(text, cls, None if runtime is None else runtime.converter)


@attrs.frozen
class Candidate:
    """One generated answer and how it was made."""

    index: int
    output: Any
    text: str
    model: str
    temperature: float | None
    prompt: str
    usage: Usage = Usage()


@attrs.frozen
class Aggregation:
    """An aggregator's decision.

    ``winner`` is the chosen (or synthesized) answer; ``winner_index`` the candidate it
    came from, if one; ``agreement`` in [0, 1]; ``scores`` per candidate index;
    ``rationale`` why; ``flagged`` marks a low-confidence result the caller should check;
    ``calls_saved`` counts candidates never drawn (adaptive strategies); ``sources`` the
    candidates a synthesis drew on.
    """

    winner: Any
    winner_index: int | None = None
    agreement: float | None = None
    scores: Mapping[int, float] = attrs.field(factory=dict)
    rationale: str | None = None
    flagged: bool = False
    calls_saved: int = 0
    sources: tuple[int, ...] = ()
    details: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class EnsembleResult:
    """An ensemble's outcome: the winner, every candidate, and the aggregation."""

    winner: Any
    candidates: tuple[Candidate, ...]
    aggregation: Aggregation
    aggregator: str
    usage: Usage = Usage()
    failures: tuple[ErrorInfo, ...] = ()  # candidate calls that failed

    @property
    def agreement(self) -> float | None:
        return self.aggregation.agreement

    @property
    def rationale(self) -> str | None:
        return self.aggregation.rationale

    @property
    def scores(self) -> Mapping[int, float]:
        return self.aggregation.scores
