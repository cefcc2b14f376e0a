"""plait-vote: normalization, ties, quorum, adaptive stop counts, through real ensembles."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import plait
import plait_vote
import pytest
from plait_testing import PRICES, FakeProvider, provider_plugin
from plait_testing.contracts import ScriptedEnsemble

TEXT = plait.Agent(model="fake:priced", system="Answer in one word.", max_tokens=16)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Label:
    name: str
    urgent: bool


Vote = Callable[..., Any]


@pytest.fixture
def vote(plait_runtime: plait.Runtime, register_plugin: Callable[..., Any]) -> Vote:
    """``await vote(replies, agent=TEXT, **options)``: an ensemble of len(replies)
    candidates, candidate i answering replies[i]; returns (result, script)."""
    register_plugin(plait_vote)

    async def run(replies: Sequence[Any], agent: plait.Agent = TEXT,
                  **options: Any) -> tuple[plait.EnsembleResult, ScriptedEnsemble]:
        script = ScriptedEnsemble(replies)
        results: list[plait.EnsembleResult] = []

        @plait.step
        async def ask(ctx: plait.StepContext) -> None:
            results.append(await ctx.ensemble(agent, "Which?", n=len(replies),
                                              vary=script.vary, aggregate="vote", **options))

        fake = provider_plugin(FakeProvider(script), prices=PRICES)
        with plait_runtime.plugin(fake):
            await plait.Pipeline("v", steps={"ask": ask}).run({}, runtime=plait_runtime)
        return results[0], script

    return run


async def test_the_most_common_answer_wins_with_its_share_as_agreement(vote: Vote) -> None:
    result, _ = await vote(["Paris", "Lyon", "Paris", "Rome", "Paris"])
    aggregation = result.aggregation
    assert (result.winner, aggregation.winner_index) == ("Paris", 0)
    assert result.agreement == pytest.approx(0.6)
    assert aggregation.scores == {0: 0.6, 1: 0.2, 2: 0.6, 3: 0.2, 4: 0.6}
    assert aggregation.details["counts"] == [
        {"answer": "Paris", "count": 3, "candidates": [0, 2, 4]},
        {"answer": "Lyon", "count": 1, "candidates": [1]},
        {"answer": "Rome", "count": 1, "candidates": [3]},
    ]
    assert aggregation.details["votes"] == 5
    assert aggregation.rationale == "3 of 5 candidates answered 'Paris'"
    assert (aggregation.flagged, aggregation.calls_saved) == (False, 0)


async def test_text_is_compared_stripped_and_casefolded(vote: Vote) -> None:
    result, _ = await vote(["Lyon", "  paris\n", "PARIS", "Straße", "STRASSE", "strasse"])
    assert result.winner == "Straße"  # casefold, not lower: ß folds to ss
    assert result.agreement == pytest.approx(0.5)
    assert [c["count"] for c in result.aggregation.details["counts"]] == [3, 2, 1]


async def test_a_key_function_decides_what_is_compared(vote: Vote) -> None:
    result, _ = await vote(["The answer is 4.", "4", "It's 5.", "Four: 4"],
                           key=lambda text: text.rstrip(".")[-1])
    assert (result.winner, result.agreement) == ("The answer is 4.", 0.75)


async def test_a_key_function_is_exact_not_casefolded(vote: Vote) -> None:
    result, _ = await vote(["A", "a", "a"], key=lambda text: text)
    assert result.aggregation.details["counts"][0] == {
        "answer": "a", "count": 2, "candidates": [1, 2]}


async def test_enums_are_compared_by_value(vote: Vote) -> None:
    agent = attrs.evolve(TEXT, output=Colour)
    result, _ = await vote(["blue", "red", "BLUE"], agent=agent)
    assert (result.winner, result.agreement) == (Colour.BLUE, pytest.approx(2 / 3))


async def test_structured_outputs_are_compared_by_value(vote: Vote) -> None:
    agent = attrs.evolve(TEXT, output=Label)
    result, _ = await vote([{"name": "Billing", "urgent": True},
                            {"name": "tech", "urgent": True},
                            {"name": " billing", "urgent": True},
                            {"name": "billing", "urgent": False}], agent=agent)
    # text inside is normalized like plain text; every other field must be equal
    assert result.winner == Label("Billing", True)
    assert result.aggregation.details["counts"][0]["candidates"] == [0, 2]


async def test_unhashable_key_results_are_compared_by_value(vote: Vote) -> None:
    result, _ = await vote(["a b", "b a", "c"], key=lambda text: {"words": sorted(text.split())})
    assert (result.winner, result.agreement) == ("a b", pytest.approx(2 / 3))


async def test_an_answer_that_cannot_be_compared_is_refused_clearly(vote: Vote) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await vote(["a", "b"], key=lambda text: bytearray(text.encode()))
    assert str(failed.value.cause) == (
        "vote: cannot compare answers of type bytearray; pass key= a function returning "
        "something hashable")


async def test_all_different_answers_tie_and_the_first_seen_wins(vote: Vote) -> None:
    result, _ = await vote(["red", "green", "blue"])
    aggregation = result.aggregation
    assert (result.winner, aggregation.winner_index) == ("red", 0)
    assert aggregation.agreement == pytest.approx(1 / 3)
    assert aggregation.details["tied"] == ["red", "green", "blue"]
    assert aggregation.rationale == (
        "1 of 3 candidates answered 'red'; a 3-way tie broken by tie='first'")


async def test_a_random_tie_break_is_seeded(vote: Vote) -> None:
    replies = ["red", "green", "blue", "green", "red", "blue"]
    winners = {(await vote(replies, tie="random", seed=seed))[0].winner for seed in range(8)}
    assert winners == {"red", "green", "blue"}  # every tied answer can win...
    again = [(await vote(replies, tie="random", seed=3))[0].winner for _ in range(3)]
    assert len(set(again)) == 1  # ...and a seed always picks the same one


async def test_a_tie_can_raise(vote: Vote) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await vote(["yes", "no", "No", "YES", "maybe"], tie="raise")
    tie = failed.value.cause
    assert isinstance(tie, plait_vote.Tie)
    assert isinstance(tie, plait.AggregationError)
    assert (tie.tied, tie.count, tie.votes) == (("yes", "no"), 2, 5)
    assert "a tie between 'yes', 'no' (2 of 5 votes each)" in str(tie)


async def test_no_tie_no_raise(vote: Vote) -> None:
    result, _ = await vote(["yes", "no", "yes"], tie="raise")
    assert result.winner == "yes"


async def test_below_quorum_raises_low_agreement_carrying_the_result(vote: Vote) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await vote(["a", "b", "a", "c", "d"], quorum=0.5)
    low = failed.value.cause
    assert isinstance(low, plait_vote.LowAgreement)
    assert isinstance(low, plait.AggregationError)
    assert (low.aggregation.winner, low.aggregation.agreement) == ("a", 0.4)
    assert low.aggregation.flagged
    assert low.quorum == 0.5
    assert "agreement 0.40 is below the quorum 0.50" in str(low)


async def test_below_quorum_can_be_flagged_instead(vote: Vote) -> None:
    result, _ = await vote(["a", "b", "a", "c", "d"], quorum=0.5, on_low_agreement="flag")
    assert (result.winner, result.agreement, result.aggregation.flagged) == ("a", 0.4, True)


async def test_meeting_the_quorum_exactly_passes(vote: Vote) -> None:
    result, _ = await vote(["a", "b", "a", "c"], quorum=0.5)
    assert (result.winner, result.aggregation.flagged) == ("a", False)


async def test_adaptive_unanimous_n7_makes_4_calls_and_saves_3(vote: Vote) -> None:
    result, script = await vote(["42"] * 7, adaptive=True)
    # 4 is the fewest that can settle 7 votes (4 > 0 + 3 remaining), drawn in one round
    assert len(script.candidate_requests) == 4
    assert len(result.candidates) == 4
    aggregation = result.aggregation
    assert (aggregation.calls_saved, aggregation.details["rounds"]) == (3, 1)
    assert (result.winner, result.agreement) == ("42", 1.0)
    assert result.usage.calls == 4


@pytest.mark.parametrize(("n", "made"), [(1, 1), (2, 2), (3, 2), (5, 3), (7, 4), (9, 5)])
async def test_adaptive_unanimous_votes_stop_at_a_bare_majority(
    vote: Vote, n: int, made: int
) -> None:
    result, script = await vote(["yes"] * n, adaptive=True)  # the table in docs/plugins/vote.md
    assert len(script.candidate_requests) == made
    assert result.aggregation.calls_saved == n - made


async def test_adaptive_draws_more_rounds_while_the_winner_is_open(vote: Vote) -> None:
    result, script = await vote(["a", "b", "a", "a", "b", "a", "a"], adaptive=True)
    # round 1: 4 drawn, a=3 b=1, 3 left: open. round 2: batch of 2, a=4 b=2, 1 left: settled
    assert [c.index for c in result.candidates] == [0, 1, 2, 3, 4, 5]
    assert len(script.candidate_requests) == 6
    assert result.aggregation.calls_saved == 1
    assert result.aggregation.details["rounds"] == 2
    assert result.agreement == pytest.approx(4 / 6)


@pytest.mark.parametrize(("batch", "drawn"), [(1, 5), (2, 6)])
async def test_adaptive_batch_sets_the_round_size_once_a_majority_is_in(
    vote: Vote, batch: int, drawn: int
) -> None:
    result, _ = await vote(["a", "a", "b", "a", "a", "b", "b"], adaptive=True, batch=batch)
    # round 1: the fewest that could settle 7 votes, 4 (a=3 b=1, 3 left); one more a settles
    # it (4 > 1 + 2), and the second round draws that one, or a batch of 2
    assert len(result.candidates) == drawn
    assert result.aggregation.details["rounds"] == 2
    assert result.aggregation.calls_saved == 7 - drawn


async def test_adaptive_on_a_split_vote_draws_everything(vote: Vote) -> None:
    result, script = await vote(["a", "b", "a", "b", "a"], adaptive=True)
    assert len(script.candidate_requests) == 5
    assert result.aggregation.calls_saved == 0
    assert (result.winner, result.agreement) == ("a", 0.6)


async def test_adaptive_does_not_stop_while_the_last_draw_could_tie(vote: Vote) -> None:
    result, script = await vote(["b", "a", "a", "b"], adaptive=True)
    # after 3, a=2 b=1 with 1 left: a last "b" ties 2-2, and tie="first" then picks b
    assert len(script.candidate_requests) == 4
    assert result.aggregation.calls_saved == 0
    assert result.aggregation.details["rounds"] == 2
    assert (result.winner, result.agreement) == ("b", 0.5)


async def test_adaptive_keeps_drawing_until_the_quorum_verdict_is_settled(vote: Vote) -> None:
    result, _ = await vote(["x"] * 7, adaptive=True, quorum=0.8)
    # after 4 the winner is settled, but 4/7 < 0.8 could still fail; after 6, 6/7 >= 0.8
    assert len(result.candidates) == 6
    assert result.aggregation.calls_saved == 1
    assert not result.aggregation.flagged


async def test_adaptive_stops_when_the_quorum_cannot_be_met(vote: Vote) -> None:
    result, _ = await vote(["a", "b", "c", "d", "a", "a", "a"], adaptive=True, quorum=0.9,
                           on_low_agreement="flag")
    # round 1: a b c d, open; round 2: a a, so a=3 > 1 + 1 left, and even a last a gives
    # 4/7 < 0.9: the verdict (a, below quorum) is settled without the seventh call
    assert len(result.candidates) == 6
    assert result.aggregation.calls_saved == 1
    assert (result.winner, result.agreement, result.aggregation.flagged) == ("a", 0.5, True)


async def test_a_failed_candidate_does_not_vote(vote: Vote) -> None:
    result, _ = await vote(["a", plait.BadRequest("no"), "b", "b"])
    assert result.winner == "b"
    assert result.aggregation.details["votes"] == 3
    assert [f.type for f in result.failures] == ["BadRequest"]


async def test_adaptive_goes_on_when_a_whole_round_failed(vote: Vote) -> None:
    failed = plait.BadRequest("no")
    result, _ = await vote([failed, failed, failed, "a", "a"], adaptive=True)
    # round 1 (3 candidates) all failed: nothing is settled, and 2 candidates remain
    assert (result.winner, result.agreement) == ("a", 1.0)
    assert len(result.failures) == 3
    assert result.aggregation.details["rounds"] == 2


async def test_adaptive_fails_only_when_every_candidate_failed(vote: Vote) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await vote([plait.BadRequest("no")] * 3, adaptive=True)
    assert isinstance(failed.value.cause, plait.AggregationError)
    assert str(failed.value.cause).startswith("every candidate failed")


@pytest.mark.parametrize(("options", "message"), [
    ({"quorom": 0.5}, "vote: unknown option(s) quorom; vote takes adaptive, batch, key,"),
    ({"tie": "last"}, "'tie' must be in ('first', 'random', 'raise')"),
    ({"quorum": 1.5}, "vote: quorum must be a number in (0, 1] or None, got 1.5"),
    ({"batch": 0}, "vote: batch must be an int >= 1, got 0"),
    ({"key": "label"}, "vote: key must be a function of the output, got 'label'"),
])
async def test_bad_options_are_refused_before_any_call(
    vote: Vote, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await vote(["a", "a", "b"], **options)
    assert message in str(failed.value.cause)
