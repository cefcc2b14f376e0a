"""Ensembles: n candidate answers, varied on purpose, combined by a pluggable aggregator.

Aggregators are found by name through the plugins (``plait_register_aggregators``). An
aggregator is an async callable ``(job) -> Aggregation``; it pulls candidates from the
job, all at once (``await job.candidates()``) or in rounds (``await job.draw(k)``, which is
how adaptive voting stops early), and may make model calls of its own (``job.ask``).
Every call, candidate or not, counts against the run's budget and usage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs

from ._budget import UsageMeter, meter_for
from ._calls import call_model
from ._errors import AggregationError, BudgetExceeded, did_you_mean
from ._results import Aggregation, Candidate, EnsembleResult, ErrorInfo, Reply
from ._step import Step, render_prompt

if TYPE_CHECKING:
    from ._agent import Agent
    from ._context import StepContext
    from ._runtime import Runtime
    from ._scope import StepScope

__all__ = ["AggregationJob", "Ensemble", "run_ensemble"]

_VARY_KEYS = ("temperature", "model", "prompt")

T = TypeVar("T")


class AggregationJob:
    """What an aggregator works with: the question, and candidates on demand."""

    def __init__(self, scope: StepScope, agent: Agent, question: str, n: int,
                 variants: Sequence[Mapping[str, Any]], limit: int | None,
                 options: Mapping[str, Any], meter: UsageMeter) -> None:
        self.runtime: Runtime = scope.runtime
        self.ctx: StepContext = scope.ctx
        self._scope = scope
        self.agent = agent
        self.question = question
        self.n = n
        self.options = dict(options)
        self.drawn: list[Candidate] = []
        self.failures: list[ErrorInfo] = []
        self._variants = variants
        self._limit = limit
        self._meter = meter
        self._next = 0

    def options_as(self, cls: type[T], aggregator: str) -> T:
        """This job's options (``ctx.ensemble(..., **options)``) as an instance of the attrs
        class ``cls``; a name ``cls`` has no field for raises ``TypeError`` listing them."""
        known = {a.name for a in attrs.fields(cls)}  # type: ignore[arg-type]  # an attrs class
        unknown = sorted(set(self.options) - known)
        if unknown:
            raise TypeError(f"{aggregator}: unknown option(s) {', '.join(unknown)}; "
                            f"{aggregator} takes {', '.join(sorted(known))}")
        return cls(**self.options)

    @property
    def remaining(self) -> int:
        """Candidates not drawn yet (of ``n``)."""
        return self.n - self._next

    async def candidates(self) -> list[Candidate]:
        """Draw every remaining candidate and return all drawn so far."""
        await self.draw(self.remaining)
        return list(self.drawn)

    async def draw(self, k: int) -> list[Candidate]:
        """Draw up to ``k`` more candidates concurrently; returns the new ones."""
        k = max(0, min(k, self.remaining))
        start = self._next
        self._next += k
        made: list[Candidate | None] = [None] * k
        errors: list[BaseException] = []
        over_budget: list[BudgetExceeded] = []
        limiter = anyio.CapacityLimiter(self._limit or max(k, 1))

        async def one(slot: int) -> None:
            async with limiter:
                i = start + slot
                variant = self._variants[i % len(self._variants)]
                prompt = variant["prompt"]
                try:
                    reply = await self.ask(self.agent, prompt, **{
                        k: v for k, v in variant.items() if k != "prompt"})
                except BudgetExceeded as exc:  # not a failed candidate: the run must stop
                    over_budget.append(exc)
                    return
                except Exception as exc:
                    errors.append(exc)
                    self.failures.append(ErrorInfo.of(exc))
                    return
                made[slot] = Candidate(i, reply.output, reply.text, variant.get(
                    "model", self.agent.model), variant.get("temperature", self.agent.temperature),
                    prompt, reply.usage)

        async with anyio.create_task_group() as tg:
            for slot in range(k):
                tg.start_soon(one, slot)
        if over_budget:  # raised here, not in the task group, so it is not wrapped in a group
            raise over_budget[0]
        new = [c for c in made if c is not None]
        self.drawn.extend(new)
        if not self.drawn and errors and not self.remaining:  # others may still answer
            raise AggregationError(f"every candidate failed; first: {type(errors[0]).__name__}: "
                                   f"{errors[0]}") from errors[0]
        return new

    async def ask(self, agent: Agent, prompt: str, **overrides: Any) -> Reply:
        """A model call on behalf of the ensemble (judge, synthesis...), budgeted like any.

        The step's validators judge the step's output, not these calls: they run only when
        ``validate=`` is passed here.
        """
        return await call_model(self.runtime, agent, prompt, {"validate": (), **overrides},
                                scope=self._scope, meter=self._meter)


def _variants(agent: Agent, prompt: str, n: int, vary: Mapping[str, Any] | None,
              force: bool) -> list[dict[str, Any]]:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"ensemble n must be an int >= 1, got {n!r}")
    vary = dict(vary or {})
    unknown = set(vary) - set(_VARY_KEYS)
    if unknown:
        raise ValueError(f"vary takes {', '.join(_VARY_KEYS)}; "
                         f"unknown: {', '.join(sorted(unknown))}"
                         f"{did_you_mean(min(unknown), _VARY_KEYS)}")
    for key, values in vary.items():
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"vary[{key!r}] must be a non-empty list, got {values!r}")
    temps = list(vary.get("temperature", [agent.temperature]))
    if (n > 1 and not force and len(set(temps)) == 1 and temps[0] == 0
            and len(vary.get("model", ())) < 2 and len(vary.get("prompt", ())) < 2):
        raise ValueError(
            f"an ensemble of n={n} identical calls at temperature 0 gives n copies of one "
            "answer; vary temperature, model or prompt (vary={...}), or pass force=True")
    out = []
    for i in range(n):
        variant: dict[str, Any] = {"prompt": prompt}
        for key, values in vary.items():
            value = values[i % len(values)]
            if key == "prompt":
                value = value.replace("{prompt}", prompt) if "{prompt}" in value else value
            variant[key] = value
        out.append(variant)
    return out


async def run_ensemble(scope: StepScope, agent: Agent, prompt: str, *, n: int,
                       vary: Mapping[str, Any] | None, aggregate: str, limit: int | None,
                       force: bool, options: Mapping[str, Any]) -> EnsembleResult:
    runtime = scope.runtime
    hooks = runtime.hooks
    variants = _variants(agent, prompt, n, vary, force)
    if hooks.only_default("plait_aggregate"):  # a missing aggregator fails before spending
        runtime.aggregator(aggregate)
    meter = UsageMeter(meter_for(scope, scope.meter))
    job = AggregationJob(scope, agent, prompt, n, variants, limit, options, meter)
    aggregation: Aggregation = await hooks.around(
        "plait_wrap_aggregate", {"name": aggregate, "job": job},
        lambda: hooks.decide("plait_aggregate", name=aggregate, job=job))
    if not isinstance(aggregation, Aggregation):
        raise AggregationError(f"aggregator {aggregate!r} returned {aggregation!r}, "
                               "not a plait.Aggregation")
    if aggregation.calls_saved == 0 and job.remaining:
        aggregation = attrs.evolve(aggregation, calls_saved=job.remaining)
    return EnsembleResult(aggregation.winner, tuple(job.drawn), aggregation, aggregate,
                          meter.usage, tuple(job.failures))


class Ensemble(Step):
    """A step that asks ``agent`` n times and aggregates (see ``ctx.ensemble``).

    ``prompt`` is a function of the context or a template over the run inputs and
    dependency outputs. The output is an ``EnsembleResult``; ``.winner`` is the answer.
    """

    def __init__(self, agent: Agent, prompt: str | Callable[[StepContext], str], *, n: int = 3,
                 vary: Mapping[str, Any] | None = None, aggregate: str = "vote",
                 limit: int | None = None, force: bool = False, name: str | None = None,
                 **options: Any) -> None:
        _variants(agent, "", n, vary, force)  # refuse a bad ensemble at definition time
        self.agent = agent
        self.prompt = prompt
        self.n = n
        self.vary = vary
        self.aggregate = aggregate
        self.limit = limit
        self.force = force
        self.options = options
        self.name = name or f"ensemble {aggregate}"

    async def run(self, ctx: StepContext) -> EnsembleResult:
        prompt = await render_prompt(self.prompt, ctx)
        return await ctx.ensemble(self.agent, prompt, n=self.n, vary=self.vary,
                                  aggregate=self.aggregate, limit=self.limit, force=self.force,
                                  **self.options)
