"""plait-synthesis: what the synthesizer is shown, and how its answer comes back."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import plait
import plait_synthesis
import pytest
from plait_testing import PRICES, FakeProvider, Reply, provider_plugin
from plait_testing.contracts import ScriptedEnsemble

WRITER = plait.Agent(model="fake:priced", system="Explain briefly.", max_tokens=64)
QUESTION = "Why is the sky blue?"
DRAFTS = ["Rayleigh scattering of sunlight.",
          "Because it reflects the ocean.",
          "Air molecules scatter short (blue) wavelengths more than long ones."]
MERGED = "Air molecules scatter blue light more than red (Rayleigh scattering)."


@attrs.frozen
class Ticket:
    team: str
    summary: str


Synthesize = Callable[..., Any]


@attrs.frozen
class Synthesized:
    result: plait.EnsembleResult
    script: ScriptedEnsemble

    @property
    def request(self) -> plait.ModelRequest:
        return self.script.other_requests[0]

    @property
    def prompt(self) -> str:
        return self.request.messages[-1].content


@pytest.fixture
def synthesize(plait_runtime: plait.Runtime, register_plugin: Callable[..., Any]) -> Synthesize:
    """``await synthesize(answers, replies=DRAFTS, **options)``: the synthesizer's replies
    come from `answers`, in order."""
    register_plugin(plait_synthesis)

    async def run(answers: Sequence[Reply], replies: Sequence[Reply] = DRAFTS,
                  agent: plait.Agent = WRITER, **options: Any) -> Synthesized:
        queue = list(answers)
        script = ScriptedEnsemble(replies, answer=lambda request: queue.pop(0))
        results: list[plait.EnsembleResult] = []

        @plait.step
        async def ask(ctx: plait.StepContext) -> None:
            results.append(await ctx.ensemble(agent, QUESTION, n=len(replies),
                                              vary=script.vary, aggregate="synthesis",
                                              **options))

        with plait_runtime.plugin(provider_plugin(FakeProvider(script), prices=PRICES)):
            await plait.Pipeline("s", steps={"ask": ask}).run({}, runtime=plait_runtime)
        return Synthesized(results[0], script)

    return run


async def test_the_synthesis_is_the_winner_and_its_sources_are_reported(
    synthesize: Synthesize
) -> None:
    out = await synthesize([{"answer": MERGED, "sources": [3, 1, 3]}])
    result = out.result
    aggregation = result.aggregation
    assert result.winner == MERGED
    assert aggregation.winner_index is None
    assert aggregation.sources == (0, 2)  # numbers 1 and 3, deduplicated, as indices
    assert aggregation.rationale == "synthesized from 2 of 3 candidates (0, 2)"
    assert (aggregation.agreement, dict(aggregation.scores)) == (None, {})
    assert aggregation.details == {"synthesizer": "fake:priced", "shown": [0, 1, 2]}


async def test_the_prompt_has_the_question_every_candidate_and_the_instructions(
    synthesize: Synthesize
) -> None:
    out = await synthesize([{"answer": MERGED, "sources": [1]}])
    prompt = out.prompt
    assert "<question>\nWhy is the sky blue?\n</question>" in prompt
    numbered = re.findall(r"<candidate (\d+)>\n(.*?)\n</candidate \1>", prompt, re.DOTALL)
    assert numbered == [("1", DRAFTS[0]), ("2", DRAFTS[1]), ("3", DRAFTS[2])]
    assert "Merge the strengths of the candidates and correct their errors" in prompt
    assert "sources: the numbers of the candidates you drew on" in prompt
    assert prompt == plait_synthesis.synthesis_prompt(QUESTION, out.result.candidates)


async def test_the_answer_and_sources_are_structured_output(synthesize: Synthesize) -> None:
    out = await synthesize([{"answer": MERGED, "sources": [1]}])
    schema = out.request.json_schema
    assert schema is not None
    assert list(schema["properties"]) == ["answer", "sources"]
    assert schema["properties"]["sources"]["type"] == "array"


async def test_the_default_synthesizer_is_the_generators_model_at_temperature_0(
    synthesize: Synthesize
) -> None:
    out = await synthesize([{"answer": MERGED, "sources": [1]}])
    request = out.request
    # not the generators' max_tokens=64: a synthesis is longer than any one candidate
    assert (request.model, request.temperature, request.max_tokens) == ("priced", 0, None)
    assert request.messages[0] == plait.Message("system", plait_synthesis.SYNTHESIS_SYSTEM)


async def test_a_given_synthesizer_is_used(synthesize: Synthesize) -> None:
    editor = plait.Agent(model="fake:free", system="You are an editor.", temperature=0.3)
    out = await synthesize([{"answer": MERGED, "sources": [1]}], synthesizer=editor)
    request = out.request
    assert (request.model, request.temperature) == ("free", 0.3)
    assert request.messages[0].content == "You are an editor."
    assert out.result.aggregation.details["synthesizer"] == "fake:free"


async def test_a_structured_synthesis_has_the_generators_output_type(
    synthesize: Synthesize
) -> None:
    agent = attrs.evolve(WRITER, output=Ticket)
    out = await synthesize(
        [{"answer": {"team": "billing", "summary": "Charged twice in May."}, "sources": [1, 2]}],
        replies=[{"team": "billing", "summary": "Double charge."},
                 {"team": "billing", "summary": "Charged twice, May invoice."}],
        agent=agent)
    assert out.result.winner == Ticket("billing", "Charged twice in May.")
    assert out.request.json_schema["properties"]["answer"]["properties"].keys() == {
        "team", "summary"}


async def test_a_failed_candidate_is_not_shown_and_numbers_map_to_indices(
    synthesize: Synthesize
) -> None:
    out = await synthesize([{"answer": MERGED, "sources": [2]}],
                           replies=[plait.BadRequest("no"), DRAFTS[0], DRAFTS[2]])
    assert "Because it reflects" not in out.prompt
    assert out.prompt.count("<candidate ") == 2
    assert out.result.aggregation.sources == (2,)  # number 2 is the candidate at index 2


async def test_sources_out_of_range_are_re_asked(synthesize: Synthesize) -> None:
    out = await synthesize([{"answer": MERGED, "sources": [0, 4]},
                            {"answer": MERGED, "sources": [3]}])
    assert out.result.aggregation.sources == (2,)
    reask = out.script.other_requests[1].messages[-1].content
    assert "sources name candidate 0, 4, which does not exist (1 to 3)" in reask


async def test_empty_sources_are_re_asked(synthesize: Synthesize) -> None:
    out = await synthesize([{"answer": MERGED, "sources": []},
                            {"answer": MERGED, "sources": [1]}])
    assert out.result.aggregation.sources == (0,)
    assert "sources is empty" in out.script.other_requests[1].messages[-1].content


async def test_an_unusable_answer_raises_after_the_re_asks(synthesize: Synthesize) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await synthesize(["Blue, because of scattering."] * 3)
    error = failed.value.cause
    assert isinstance(error, plait_synthesis.SynthesisParseError)
    assert isinstance(error, plait.AggregationError)
    assert error.raw == "Blue, because of scattering."
    assert isinstance(error.__cause__, plait.OutputParseError)


async def test_sources_always_out_of_range_raise(synthesize: Synthesize) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await synthesize([{"answer": MERGED, "sources": [9]}] * 3)
    assert failed.value.cause.problem == (
        "sources name candidate 9, which does not exist (1 to 3)")


async def test_the_synthesis_call_is_counted(synthesize: Synthesize) -> None:
    out = await synthesize([{"answer": MERGED, "sources": [1]}])
    assert out.result.usage.calls == 4
    assert out.result.usage.cost > sum(c.usage.cost for c in out.result.candidates)


async def test_bad_options_are_refused(synthesize: Synthesize) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await synthesize([], synthesiser=WRITER)
    assert "synthesis: unknown option(s) synthesiser; synthesis takes synthesizer" in str(
        failed.value.cause)
    with pytest.raises(plait.StepFailed) as failed:
        await synthesize([], synthesizer="fake:free")
    assert "synthesis: synthesizer= must be a plait.Agent, got 'fake:free'" in str(
        failed.value.cause)
