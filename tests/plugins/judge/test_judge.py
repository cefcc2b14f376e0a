"""plait-judge with a scripted fake judge: parsing, shuffling, mapping back, rationale."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import plait
import plait_judge
import pytest
from plait_testing import PRICES, FakeProvider, Reply, provider_plugin
from plait_testing.contracts import ScriptedEnsemble

WRITER = plait.Agent(model="fake:priced", system="Answer in one word.", max_tokens=16)
QUESTION = "What is the capital of France?"
REPLIES = ["Lyon", "Paris", "Marseille"]


def shown(request: plait.ModelRequest) -> dict[int, str]:
    """The candidates in a judge prompt (the first user message; later ones are re-asks):
    number -> text."""
    prompt = next(m.content for m in request.messages if m.role == "user")
    return {int(n): text for n, text in
            re.findall(r"<candidate (\d+)>\n(.*?)\n</candidate \1>", prompt, re.DOTALL)}


def favour(best: str, reasoning: str = "Only Paris is the capital.") -> Callable[..., Any]:
    """A judge that scores `best` 9 and everything else 2, wherever it is shown."""
    def answer(request: plait.ModelRequest) -> Reply:
        numbers = shown(request)
        return {"reasoning": reasoning,
                "scores": [{"candidate": n, "score": 9 if t == best else 2}
                           for n, t in numbers.items()],
                "winner": next(n for n, t in numbers.items() if t == best)}
    return answer


def first_listed(request: plait.ModelRequest) -> Reply:
    """A judge with pure position bias: it always prefers candidate 1."""
    numbers = shown(request)
    return {"reasoning": "The first one reads best.",
            "scores": [{"candidate": n, "score": 8 if n == 1 else 4} for n in numbers],
            "winner": 1}


Judge = Callable[..., Any]


@attrs.frozen
class Judged:
    result: plait.EnsembleResult
    script: ScriptedEnsemble
    fake: FakeProvider

    @property
    def judge_requests(self) -> list[plait.ModelRequest]:
        return self.script.other_requests


@pytest.fixture
def judged(plait_runtime: plait.Runtime, register_plugin: Callable[..., Any]) -> Judge:
    """``await judged(answer, replies=REPLIES, **options)``: candidates answer `replies`,
    every judge call is answered by `answer` (a responder or a list of replies)."""
    register_plugin(plait_judge)

    async def run(answer: Callable[..., Any] | Sequence[Reply],
                  replies: Sequence[Reply] = REPLIES, agent: plait.Agent = WRITER,
                  **options: Any) -> Judged:
        if not callable(answer):
            queue = list(answer)
            answer = lambda request: queue.pop(0)  # noqa: E731
        script = ScriptedEnsemble(replies, answer=answer)
        fake = FakeProvider(script)
        results: list[plait.EnsembleResult] = []

        @plait.step
        async def ask(ctx: plait.StepContext) -> None:
            results.append(await ctx.ensemble(agent, QUESTION, n=len(replies),
                                              vary=script.vary, aggregate="judge", **options))

        with plait_runtime.plugin(provider_plugin(fake, prices=PRICES)):
            await plait.Pipeline("j", steps={"ask": ask}).run({}, runtime=plait_runtime)
        return Judged(results[0], script, fake)

    return run


async def test_the_judges_pick_wins_with_scores_by_original_index(judged: Judge) -> None:
    out = await judged(favour("Paris"), seed=1)
    result = out.result
    assert (result.winner, result.aggregation.winner_index) == ("Paris", 1)
    assert result.scores == {0: 2.0, 1: 9.0, 2: 2.0}
    assert result.rationale == "Only Paris is the capital."
    assert result.agreement is None
    assert not result.aggregation.flagged
    [request] = out.judge_requests
    assert request.json_schema is not None  # the verdict is structured output


async def test_the_prompt_holds_question_candidates_and_rubric(judged: Judge) -> None:
    out = await judged(favour("Paris"), rubric="Prefer the official capital.", seed=1)
    [request] = out.judge_requests
    prompt = request.messages[-1].content
    assert "<question>\nWhat is the capital of France?\n</question>" in prompt
    assert sorted(shown(request).values()) == sorted(REPLIES)
    assert "Rubric:\nPrefer the official capital." in prompt
    assert "one sentence" in prompt
    assert prompt == plait_judge.judge_prompt(
        QUESTION, [c for i in out.result.aggregation.details["passes"][0]["order"]
                   for c in out.result.candidates if c.index == i],
        "Prefer the official capital.")


async def test_the_default_judge_is_the_generators_model_with_a_judge_prompt(
    judged: Judge
) -> None:
    out = await judged(favour("Paris"), seed=1)
    [request] = out.judge_requests
    assert request.model == "priced"
    assert request.temperature == 0
    assert request.messages[0] == plait.Message("system", plait_judge.JUDGE_SYSTEM)
    assert plait_judge.DEFAULT_RUBRIC in request.messages[-1].content
    assert out.result.aggregation.details["judge"] == "fake:priced"


async def test_a_given_judge_agent_is_used(judged: Judge) -> None:
    critic = plait.Agent(model="fake:free", system="You are a strict examiner.",
                         temperature=0.2)
    out = await judged(favour("Paris"), judge=critic, seed=1)
    [request] = out.judge_requests
    assert (request.model, request.temperature) == ("free", 0.2)
    assert request.messages[0].content == "You are a strict examiner."


async def test_a_judge_without_a_system_prompt_gets_the_judge_prompt(judged: Judge) -> None:
    out = await judged(favour("Paris"), judge=plait.Agent(model="fake:free"), seed=1)
    assert out.judge_requests[0].messages[0].content == plait_judge.JUDGE_SYSTEM


async def test_judging_with_the_generator_itself_warns(judged: Judge) -> None:
    with pytest.warns(plait_judge.SameJudgeWarning, match="generators' model and system"):
        out = await judged(favour("Paris"), judge=attrs.evolve(WRITER, max_tokens=None),
                           seed=1)
    assert out.result.winner == "Paris"


async def test_same_model_with_another_system_prompt_does_not_warn(judged: Judge) -> None:
    # warnings are errors in this suite: no warning is what lets this pass
    out = await judged(favour("Paris"), judge=attrs.evolve(WRITER, system="Judge fairly.",
                                                        max_tokens=None),
                       seed=1)
    assert out.result.winner == "Paris"


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
async def test_candidates_are_shuffled_by_seed_and_mapped_back(
    judged: Judge, seed: int
) -> None:
    out = await judged(first_listed, replies=["a", "b", "c", "d", "e"], seed=seed)
    order = list(range(5))
    random.Random(seed).shuffle(order)
    [request] = out.judge_requests
    assert list(shown(request).values()) == [["a", "b", "c", "d", "e"][i] for i in order]
    # the judge said "1": that is whichever candidate was shown first
    assert out.result.aggregation.winner_index == order[0]
    assert out.result.aggregation.details["passes"][0]["order"] == order


async def test_different_seeds_show_different_orders(judged: Judge) -> None:
    orders = set()
    for seed in range(6):
        out = await judged(first_listed, replies=["a", "b", "c", "d"], seed=seed)
        orders.add(tuple(shown(out.judge_requests[0]).values()))
    assert len(orders) > 1


async def test_two_orders_that_agree(judged: Judge) -> None:
    out = await judged(favour("Paris"), two_orders=True, seed=2)
    result = out.result
    first, second = (tuple(shown(r).values()) for r in out.judge_requests)
    assert second == first[::-1] or first == second[::-1]  # the passes ran concurrently
    aggregation = result.aggregation
    assert (result.winner, aggregation.agreement, aggregation.flagged) == ("Paris", 1.0, False)
    assert aggregation.scores == {0: 2.0, 1: 9.0, 2: 2.0}  # the mean of the two orders
    assert aggregation.details["orders_agree"] is True
    assert [p["winner"] for p in aggregation.details["passes"]] == [1, 1]


async def test_two_orders_expose_position_bias_and_flag_it(judged: Judge) -> None:
    out = await judged(first_listed, replies=["a", "b", "c"], two_orders=True, seed=5)
    aggregation = out.result.aggregation
    order = aggregation.details["passes"][0]["order"]
    assert [p["winner"] for p in aggregation.details["passes"]] == [order[0], order[-1]]
    assert (aggregation.agreement, aggregation.flagged) == (0.5, True)
    assert aggregation.details["orders_agree"] is False
    # equal totals (8 + 4 each): the first order's pick stands
    assert aggregation.winner_index == order[0]
    assert aggregation.scores[order[0]] == aggregation.scores[order[-1]] == 6.0


async def test_on_disagreement_the_higher_total_wins(judged: Judge) -> None:
    quality = {"a": 5, "b": 9, "c": 1}

    def biased_but_fair_scores(request: plait.ModelRequest) -> Reply:
        numbers = shown(request)  # names the first listed, scores on the merits
        return {"reasoning": "First is best.", "winner": 1,
                "scores": [{"candidate": n, "score": quality[t]} for n, t in numbers.items()]}

    for seed in range(6):
        out = await judged(biased_but_fair_scores, replies=["a", "b", "c"], two_orders=True,
                           seed=seed)
        aggregation = out.result.aggregation
        passes = aggregation.details["passes"]
        picks = [p["winner"] for p in passes]  # the first listed in each order: never equal
        assert picks == [passes[0]["order"][0], passes[0]["order"][-1]]
        assert aggregation.winner_index == max(picks, key=lambda i: quality["abc"[i]])
        assert aggregation.flagged


async def test_an_unparseable_verdict_raises_after_the_re_asks(judged: Judge) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await judged(["I like Paris best.", "Paris!", "Definitely Paris."], seed=1)
    error = failed.value.cause
    assert isinstance(error, plait_judge.JudgeParseError)
    assert isinstance(error, plait.AggregationError)
    assert error.raw == "Definitely Paris."
    assert str(error).startswith("judge: the judge's answer could not be used, even after "
                                 "re-asking")
    assert isinstance(error.__cause__, plait.OutputParseError)


async def test_the_judge_is_re_asked_and_a_later_valid_verdict_is_used(judged: Judge) -> None:
    good = favour("Paris")
    calls: list[int] = []

    def flaky(request: plait.ModelRequest) -> Reply:
        calls.append(1)
        return "not json" if len(calls) == 1 else good(request)

    out = await judged(flaky, seed=1)
    assert out.result.winner == "Paris"
    assert len(out.judge_requests) == 2
    assert out.result.usage.calls == 3 + 2  # candidates, then the judge twice


async def test_a_winner_out_of_range_is_a_parse_failure_and_is_re_asked(judged: Judge) -> None:
    good = favour("Paris")
    calls: list[int] = []

    def out_of_range_once(request: plait.ModelRequest) -> Reply:
        calls.append(1)
        verdict = good(request)
        return {**verdict, "winner": 7} if len(calls) == 1 else verdict

    out = await judged(out_of_range_once, seed=1)
    assert out.result.winner == "Paris"
    reask = out.judge_requests[1].messages[-1].content
    assert "winner 7 is not a candidate number (1 to 3)" in reask


async def test_a_winner_always_out_of_range_raises(judged: Judge) -> None:
    def zero(request: plait.ModelRequest) -> Reply:
        return {"reasoning": "None fits.", "winner": 0,
                "scores": [{"candidate": n, "score": 1} for n in shown(request)]}

    with pytest.raises(plait.StepFailed) as failed:
        await judged(zero, seed=1)
    error = failed.value.cause
    assert isinstance(error, plait_judge.JudgeParseError)
    assert error.problem == "winner 0 is not a candidate number (1 to 3)"


async def test_missing_repeated_and_out_of_scale_scores_are_refused(judged: Judge) -> None:
    def sloppy(request: plait.ModelRequest) -> Reply:
        return {"reasoning": "Hm.", "winner": 1,
                "scores": [{"candidate": 1, "score": 11}, {"candidate": 1, "score": 3},
                           {"candidate": 4, "score": 3}]}

    with pytest.raises(plait.StepFailed) as failed:
        await judged(sloppy, seed=1)
    assert failed.value.cause.problem == (
        "no score for candidate 2, 3; scores name candidate 4, which does not exist; "
        "candidate 1 scored more than once; score 11.0 for candidate 1 is not between 0 "
        "and 10")


async def test_a_lone_surviving_candidate_wins_without_a_judge_call(judged: Judge) -> None:
    failing = plait.BadRequest("no")
    out = await judged([], replies=[failing, "Paris", failing])
    assert (out.result.winner, out.result.aggregation.winner_index) == ("Paris", 1)
    assert out.judge_requests == []
    assert out.result.rationale == "only one candidate answered; nothing to judge"


async def test_the_judge_call_is_counted_and_budgeted(judged: Judge) -> None:
    out = await judged(favour("Paris"), seed=1)
    usage = out.result.usage
    assert usage.calls == 4
    judge_cost = usage.cost - sum(c.usage.cost for c in out.result.candidates)
    assert judge_cost > 0


@pytest.mark.parametrize(("options", "message"), [
    ({"rubrik": "x"}, "judge: unknown option(s) rubrik; judge takes judge, rubric, seed,"),
    ({"judge": "fake:other"}, "judge: judge= must be a plait.Agent, got 'fake:other'"),
    ({"rubric": "  "}, "judge: rubric= must be non-empty text, got '  '"),
])
async def test_bad_options_are_refused(judged: Judge, options: dict[str, Any],
                                       message: str) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await judged([], **options)
    assert message in str(failed.value.cause)


# -- the judge metric --------------------------------------------------------------------------


async def test_the_judge_metric_grades_outputs_against_the_reference() -> None:
    def grade(request: plait.ModelRequest) -> Reply:
        prompt = request.messages[-1].content
        answer = prompt.split("<answer>\n", 1)[1].split("\n</answer>", 1)[0]
        return {"reasoning": "Compared with the reference.",
                "grade": "correct" if "paris" in answer.lower() else "incorrect"}

    judge_model = FakeProvider({"grader": grade})
    rt = plait.Runtime(entry_points=False, settings={"judge": {"model": "fake:grader"}},
                       plugins=[plait_judge, provider_plugin(judge_model, prices=PRICES)])
    answer = plait.step(lambda ctx: ctx.input("reply"))
    cases = [{"inputs": {"reply": "It is Paris."}, "expected": "Paris"},
             {"inputs": {"reply": "Lyon, I think"}, "expected": "Paris"}]
    async with rt:
        report = await plait.evaluate(answer, cases, metrics=["judge"], runtime=rt)
    assert [r.score for r in report.variants[0].results] == [1.0, 0.0]
    assert "<reference>\nParis\n</reference>" in judge_model.requests[0].messages[-1].content


async def test_the_judge_metric_without_a_model_says_how_to_give_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(plait_judge._metric.ENV, raising=False)
    async with plait.Runtime(entry_points=False, plugins=[plait_judge]) as rt:
        report = await plait.evaluate(plait.step(lambda ctx: "x"), [{"inputs": {}}],
                                      metrics=["judge"], runtime=rt)
    error = report.variants[0].results[0].error
    assert error is not None
    assert "needs a model: set PLAIT_JUDGE_MODEL" in error.message
