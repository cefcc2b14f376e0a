"""Ensembles: varied candidates, aggregators found by name, usage and budget, failures."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import anyio
import anyio.lowlevel
import plait
import pytest
from plait_testing import PRICES, FakeProvider, provider_plugin
from plait_testing.contracts import ScriptedEnsemble

ECHO = plait.Agent(model="fake:echo", temperature=0.7)
PRICED = plait.Agent(model="fake:priced", temperature=0.7, max_tokens=10)


class Aggregators:
    """Test aggregators: `first` (every candidate, the first wins; records its jobs),
    `two` (draws two, then stops), `asks` (one model call of its own), `patient` (draws
    one at a time until one answers), `scored` (scores keyed by candidate index), `bad`
    (returns no Aggregation)."""

    def __init__(self) -> None:
        self.jobs: list[plait.AggregationJob] = []

    @plait.hookimpl
    def plait_register_aggregators(self, register: Callable[..., None]) -> None:
        register("first", self.first)
        register("two", self.two)
        register("asks", self.asks)
        register("bad", self.bad)
        register("scored", self.scored)
        register("patient", self.patient)

    async def first(self, job: plait.AggregationJob) -> plait.Aggregation:
        self.jobs.append(job)
        drawn = await job.candidates()
        return plait.Aggregation(drawn[0].output, winner_index=drawn[0].index, agreement=0.5,
                                 rationale="the first")

    async def two(self, job: plait.AggregationJob) -> plait.Aggregation:
        self.jobs.append(job)
        got = await job.draw(2)
        assert await job.draw(0) == []
        return plait.Aggregation(got[0].output, winner_index=got[0].index)

    async def asks(self, job: plait.AggregationJob) -> plait.Aggregation:
        drawn = await job.candidates()
        reply = await job.ask(job.agent, "Pick one of: " + ", ".join(c.text for c in drawn),
                              temperature=0)
        return plait.Aggregation(reply.output)

    async def patient(self, job: plait.AggregationJob) -> plait.Aggregation:
        while True:  # one at a time until one answers; draw raises once none can
            for candidate in await job.draw(1):
                return plait.Aggregation(candidate.output, winner_index=candidate.index)

    async def scored(self, job: plait.AggregationJob) -> plait.Aggregation:
        drawn = await job.candidates()
        return plait.Aggregation(drawn[0].output, winner_index=0, scores={0: 1.0, 1: 0.0})

    async def bad(self, job: plait.AggregationJob) -> Any:
        await job.candidates()
        return "not an aggregation"


@pytest.fixture
def aggregators(register_plugin: Callable[..., Any]) -> Aggregators:
    return register_plugin(Aggregators())


async def in_step(runtime: plait.Runtime, body: Any, *, budget: str | None = None,
                  inputs: dict[str, Any] | None = None) -> plait.PipelineResult:
    config = plait.Config(budget=plait.usd(budget)) if budget else None
    pipe = plait.Pipeline("ens", steps={"s": body}, config=config)
    return await pipe.run(inputs or {}, runtime=runtime)


# -- candidates and how they vary -----------------------------------------------------------


async def test_vary_cycles_temperature_model_and_prompt_per_candidate(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    vary = {"temperature": [0.2, 0.9], "model": ["fake:a", "fake:b", "fake:c"],
            "prompt": ["{prompt}", "Think it through. {prompt}"]}

    async def body(ctx: plait.StepContext) -> Any:
        result = await ctx.ensemble(ECHO, "Name a colour.", n=5, vary=vary, aggregate="first")
        return [(c.index, c.model, c.temperature, c.prompt, c.output)
                for c in result.candidates]

    result = await in_step(plait_runtime, body)
    assert result.output == [
        (0, "fake:a", 0.2, "Name a colour.", "Name a colour."),
        (1, "fake:b", 0.9, "Think it through. Name a colour.", "Think it through. Name a colour."),
        (2, "fake:c", 0.2, "Name a colour.", "Name a colour."),
        (3, "fake:a", 0.9, "Think it through. Name a colour.", "Think it through. Name a colour."),
        (4, "fake:b", 0.2, "Name a colour.", "Name a colour."),
    ]
    sent = sorted((r.model, r.temperature, r.messages[-1].content)
                  for r in fake_provider.requests)
    assert sent == sorted((m[5:], t, p) for _, m, t, p, _ in result.output)


async def test_a_prompt_variant_without_the_placeholder_replaces_the_prompt(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    async def body(ctx: plait.StepContext) -> list[str]:
        result = await ctx.ensemble(ECHO, "Q", n=2, aggregate="first",
                                    vary={"prompt": ["{prompt} (short)", "Another question"]})
        return [c.prompt for c in result.candidates]

    assert (await in_step(plait_runtime, body)).output == ["Q (short)", "Another question"]


async def test_without_vary_every_candidate_uses_the_agent_as_it_is(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    async def body(ctx: plait.StepContext) -> list[Any]:
        result = await ctx.ensemble(ECHO, "Q", n=3, aggregate="first")
        return [(c.model, c.temperature, c.prompt) for c in result.candidates]

    assert (await in_step(plait_runtime, body)).output == [("fake:echo", 0.7, "Q")] * 3


async def test_the_job_carries_question_agent_n_and_options(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    async def body(ctx: plait.StepContext) -> None:
        await ctx.ensemble(ECHO, "Q?", n=3, aggregate="first", rubric="be right", seed=4)

    await in_step(plait_runtime, body)
    [job] = aggregators.jobs
    assert (job.question, job.agent, job.n) == ("Q?", ECHO, 3)
    assert job.options == {"rubric": "be right", "seed": 4}
    assert (len(job.drawn), job.remaining) == (3, 0)


# -- pointless ensembles and bad arguments --------------------------------------------------


async def test_n3_at_temperature_0_is_rejected_unless_forced(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    cold = plait.Agent(model="fake:m", temperature=0)

    async def pointless(ctx: plait.StepContext) -> None:
        await ctx.ensemble(cold, "Q", n=3, aggregate="first")

    with pytest.raises(plait.StepFailed) as failed:
        await in_step(plait_runtime, pointless)
    assert isinstance(failed.value.cause, ValueError)
    assert "n=3 identical calls at temperature 0" in str(failed.value.cause)
    assert "force=True" in str(failed.value.cause)
    assert fake_provider.calls == 0

    async def forced(ctx: plait.StepContext) -> int:
        return len((await ctx.ensemble(cold, "Q", n=3, aggregate="first", force=True))
                   .candidates)

    assert (await in_step(plait_runtime, forced)).output == 3


@pytest.mark.parametrize("vary", [None, {"temperature": [0, 0]}])
def test_the_ensemble_step_rejects_a_pointless_ensemble_at_definition(
    vary: dict[str, Any] | None
) -> None:
    with pytest.raises(ValueError, match="identical calls at temperature 0"):
        plait.Ensemble(plait.Agent(model="fake:m", temperature=0), "Q", n=3, vary=vary)
    plait.Ensemble(plait.Agent(model="fake:m", temperature=0), "Q", n=3, vary=vary, force=True)


@pytest.mark.parametrize("vary", [
    {"temperature": [0, 0.8]},
    {"model": ["fake:a", "fake:b"]},
    {"prompt": ["{prompt}", "Briefly: {prompt}"]},
])
def test_at_temperature_0_any_real_variation_is_enough(vary: dict[str, Any]) -> None:
    plait.Ensemble(plait.Agent(model="fake:m", temperature=0), "Q", n=3, vary=vary)


def test_one_candidate_at_temperature_0_is_allowed() -> None:
    plait.Ensemble(plait.Agent(model="fake:m", temperature=0), "Q", n=1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n": 0}, "ensemble n must be an int >= 1, got 0"),
    ({"n": True}, "ensemble n must be an int >= 1, got True"),
    ({"vary": {"temp": [0.5]}}, "vary takes temperature, model, prompt; unknown: temp"),
    ({"vary": {"temperature": 0.5}}, "vary['temperature'] must be a non-empty list"),
    ({"vary": {"prompt": "{prompt}"}}, "vary['prompt'] must be a non-empty list"),
    ({"vary": {"model": []}}, "vary['model'] must be a non-empty list"),
])
def test_bad_ensembles_are_refused_with_the_reason(kwargs: dict[str, Any],
                                                   message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plait.Ensemble(ECHO, "Q", **kwargs)


# -- finding the aggregator -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "distribution"), [
    ("judge", "plait-judge"), ("vote", "plait-vote"), ("synthesis", "plait-synthesis")])
async def test_a_missing_aggregator_names_its_distribution_before_any_call(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, name: str, distribution: str
) -> None:
    async def body(ctx: plait.StepContext) -> None:
        await ctx.ensemble(ECHO, "Q", n=3, aggregate=name)

    with pytest.raises(plait.StepFailed) as failed:
        await in_step(plait_runtime, body)
    error = failed.value.cause
    assert isinstance(error, plait.UnknownPlugin)
    assert (error.kind, error.name, error.distribution) == ("aggregator", name, distribution)
    assert f"install {distribution} to add it" in str(error)
    assert fake_provider.calls == 0


async def test_an_unknown_custom_aggregator_lists_the_installed_ones(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    async def body(ctx: plait.StepContext) -> None:
        await ctx.ensemble(ECHO, "Q", n=3, aggregate="median")

    with pytest.raises(plait.StepFailed) as failed:
        await in_step(plait_runtime, body)
    error = failed.value.cause
    assert isinstance(error, plait.UnknownPlugin)
    assert error.distribution is None
    assert ("unknown aggregator 'median' (installed: asks, bad, first, patient, scored, two)"
            in str(error))
    assert fake_provider.calls == 0


async def test_an_aggregator_must_return_an_aggregation(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    async def body(ctx: plait.StepContext) -> None:
        await ctx.ensemble(ECHO, "Q", n=2, aggregate="bad")

    with pytest.raises(plait.StepFailed) as failed:
        await in_step(plait_runtime, body)
    assert isinstance(failed.value.cause, plait.AggregationError)
    assert "aggregator 'bad' returned 'not an aggregation', not a plait.Aggregation" in str(
        failed.value.cause)


# -- the result ------------------------------------------------------------------------------


async def test_the_result_carries_winner_candidates_and_aggregation(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], aggregators: Aggregators
) -> None:
    script = ScriptedEnsemble(["red", "blue", "green"])
    register_plugin(provider_plugin(FakeProvider(script), prices=PRICES))
    results: list[plait.EnsembleResult] = []

    async def body(ctx: plait.StepContext) -> None:
        results.append(await ctx.ensemble(PRICED, "Q", n=3, vary=script.vary,
                                          aggregate="first"))

    await in_step(plait_runtime, body)
    [result] = results
    assert result.winner == "red"
    assert [c.output for c in result.candidates] == ["red", "blue", "green"]
    assert [c.text for c in result.candidates] == ["red", "blue", "green"]
    assert result.aggregator == "first"
    assert (result.agreement, result.rationale, dict(result.scores)) == (0.5, "the first", {})
    assert result.failures == ()


async def test_calls_saved_counts_candidates_the_aggregator_never_drew(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    async def body(ctx: plait.StepContext) -> list[int]:
        result = await ctx.ensemble(ECHO, "Q", n=5, aggregate="two")
        return [len(result.candidates), result.aggregation.calls_saved]

    assert (await in_step(plait_runtime, body)).output == [2, 3]
    assert fake_provider.calls == 2


async def test_the_ensemble_step_renders_its_prompt_and_outputs_the_result(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    @plait.step
    async def winner(ctx: plait.StepContext) -> str:
        return str(ctx.dep("vote").winner)

    step = plait.Ensemble(ECHO, "Capital of {country}?", n=2, aggregate="first")
    assert step.name == "ensemble first"
    pipe = plait.Pipeline("p", steps={"vote": step, "winner": winner},
                          deps={"winner": ["vote"]})
    result = await pipe.run({"country": "France"}, runtime=plait_runtime)
    assert result.output == "Capital of France?"
    assert isinstance(result.outputs["vote"], plait.EnsembleResult)
    assert [r.messages[-1].content for r in fake_provider.requests] == [
        "Capital of France?"] * 2


async def test_an_ensemble_step_whose_aggregator_scores_is_serializable(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    pipe = plait.Pipeline("p", steps={"e": plait.Ensemble(ECHO, "Q", n=2, aggregate="scored")})
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.outputs["e"].scores == {0: 1.0, 1: 0.0}
    assert '"scores": {"0": 1.0, "1": 0.0}' in result.to_json()


async def test_the_ensemble_step_passes_its_options_to_the_aggregator(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    step = plait.Ensemble(ECHO, "Q", n=2, aggregate="first", quorum=0.5, name="pick")
    await plait.Pipeline("p", steps={"pick": step}).run({}, runtime=plait_runtime)
    assert aggregators.jobs[0].options == {"quorum": 0.5}


async def test_the_step_validators_do_not_gate_the_ensembles_own_calls(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    checked: list[Any] = []

    def is_the_result(value: Any) -> bool:
        checked.append(value)
        return isinstance(value, plait.EnsembleResult)

    step = plait.Ensemble(ECHO, "Q", n=3, aggregate="first")
    pipe = plait.Pipeline("p", steps={"e": step},
                          step_config={"e": plait.Config(validate=[is_the_result])})
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.outputs["e"].winner == "Q"
    assert len(checked) == 1  # the step's output only, not every candidate


async def test_candidates_run_concurrently_within_limit(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], aggregators: Aggregators
) -> None:
    running = 0
    peak = 0

    class Slow:
        async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            for _ in range(5):  # give every other candidate the chance to start
                await anyio.lowlevel.checkpoint()
            running -= 1
            return plait.ModelResponse(text="x", usage=plait.TokenCount(1, 1))

    register_plugin(provider_plugin(Slow(), "slow"))
    agent = plait.Agent(model="slow:m", temperature=1)

    async def body(ctx: plait.StepContext) -> None:
        await ctx.ensemble(agent, "Q", n=6, aggregate="first", limit=2)

    await in_step(plait_runtime, body)
    assert peak == 2

    async def unbounded(ctx: plait.StepContext) -> None:
        await ctx.ensemble(agent, "Q", n=6, aggregate="first")

    peak = 0
    await in_step(plait_runtime, unbounded)
    assert peak == 6


# -- usage and budget -----------------------------------------------------------------------


async def test_every_candidate_and_the_aggregators_own_call_count_in_usage(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], aggregators: Aggregators
) -> None:
    script = ScriptedEnsemble(["one two", "three", "four five six"], answer=lambda r: "three")
    fake = FakeProvider(script)
    register_plugin(provider_plugin(fake, prices=PRICES))
    results: list[plait.EnsembleResult] = []

    async def body(ctx: plait.StepContext) -> None:
        results.append(await ctx.ensemble(PRICED, "Pick a number", n=3, vary=script.vary,
                                          aggregate="asks"))

    run = await in_step(plait_runtime, body, budget="1")
    [result] = results
    # fake:priced is $1 in / $2 out per million words: candidates read 3 words each
    assert [(c.usage.input_tokens, c.usage.output_tokens) for c in result.candidates] == [
        (3, 2), (3, 1), (3, 3)]
    assert [c.usage.cost for c in result.candidates] == [
        Decimal("0.000007"), Decimal("0.000005"), Decimal("0.000009")]
    # the aggregator's own call: "Pick one of: one two, three, four five six" -> "three"
    assert result.usage == plait.Usage(9 + 9, 6 + 1, 0, 4, Decimal("0.000021") +
                                       Decimal("0.000011"), requests=4)
    assert run.usage == result.usage
    assert run.steps["s"].usage == result.usage
    assert fake.calls == 4


async def test_candidates_count_against_the_run_budget(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, aggregators: Aggregators
) -> None:
    agent = plait.Agent(model="fake:priced", temperature=0.7, max_tokens=1000)
    # each candidate reserves its worst case: 9 tokens in + 1000 out = $0.002009
    async def body(ctx: plait.StepContext) -> None:
        await ctx.ensemble(agent, "Q", n=3, aggregate="first")

    with pytest.raises(plait.BudgetExceeded) as exceeded:
        await in_step(plait_runtime, body, budget="0.005")  # room for two, not three
    error = exceeded.value
    assert error.limit == Decimal("0.005")
    assert fake_provider.calls == 2  # the third was refused before it was sent
    assert error.partial is not None
    assert error.partial.steps["s"].status == "failed"
    assert error.partial.usage.calls == 2
    assert error.partial.usage.cost <= Decimal("0.005")


async def test_a_failing_candidate_is_recorded_and_the_rest_are_aggregated(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], aggregators: Aggregators
) -> None:
    script = ScriptedEnsemble([plait.BadRequest("context too long"), "blue", "green"])
    register_plugin(provider_plugin(FakeProvider(script), prices=PRICES))
    results: list[plait.EnsembleResult] = []

    async def body(ctx: plait.StepContext) -> None:
        results.append(await ctx.ensemble(PRICED, "Q", n=3, vary=script.vary,
                                          aggregate="first"))

    await in_step(plait_runtime, body)
    [result] = results
    assert [c.index for c in result.candidates] == [1, 2]
    assert result.winner == "blue"
    assert result.failures == (plait.ErrorInfo(
        "BadRequest", "context too long", requests=1),)
    assert result.aggregation.calls_saved == 0


async def test_a_draw_that_only_failed_is_not_the_end_while_candidates_remain(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], aggregators: Aggregators
) -> None:
    script = ScriptedEnsemble([plait.BadRequest("no"), plait.BadRequest("no"), "third", "x"])
    register_plugin(provider_plugin(FakeProvider(script), prices=PRICES))
    results: list[plait.EnsembleResult] = []

    async def body(ctx: plait.StepContext) -> None:
        results.append(await ctx.ensemble(PRICED, "Q", n=4, vary=script.vary,
                                          aggregate="patient"))

    await in_step(plait_runtime, body)
    [result] = results
    assert (result.winner, result.aggregation.winner_index) == ("third", 2)
    assert len(result.failures) == 2
    assert result.aggregation.calls_saved == 1


@pytest.mark.parametrize("aggregate", ["first", "patient"])
async def test_when_every_candidate_fails_the_ensemble_fails(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any], aggregators: Aggregators,
    aggregate: str,
) -> None:
    script = ScriptedEnsemble([plait.BadRequest("no")] * 2)
    register_plugin(provider_plugin(FakeProvider(script), prices=PRICES))

    async def body(ctx: plait.StepContext) -> None:
        await ctx.ensemble(PRICED, "Q", n=2, vary=script.vary, aggregate=aggregate)

    with pytest.raises(plait.StepFailed) as failed:
        await in_step(plait_runtime, body)
    error = failed.value.cause
    assert isinstance(error, plait.AggregationError)
    assert str(error) == "every candidate failed; first: BadRequest: no"
    assert isinstance(error.__cause__, plait.BadRequest)
