"""Best-of-N with an LLM judge: shuffled candidates, a rubric, one sentence, then scores."""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import attrs
import plait

__all__ = [
    "DEFAULT_RUBRIC",
    "JUDGE_SYSTEM",
    "CandidateScore",
    "JudgeOptions",
    "JudgeParseError",
    "SameJudgeWarning",
    "Verdict",
    "judge",
    "judge_prompt",
]

JUDGE_SYSTEM = (
    "You are an impartial judge of answers written by other models. You compare candidate "
    "answers against a rubric and reply only in the format you are asked for."
)

DEFAULT_RUBRIC = """\
- Correct: no factual, logical or arithmetic errors.
- Complete: answers every part of the question.
- Faithful to the question's instructions (format, length, language).
- Clear and concise: nothing padded, nothing irrelevant."""

MAX_SCORE = 10


class JudgeParseError(plait.AggregationError):
    """The judge's answer could not be used, even after re-asking.

    ``raw`` is the judge's last reply when the failure was a parse error.
    """

    def __init__(self, problem: str, raw: str | None = None) -> None:
        self.problem = problem
        self.raw = raw
        super().__init__(f"judge: the judge's answer could not be used, even after "
                         f"re-asking: {problem}")


class SameJudgeWarning(UserWarning):
    """The judge is the generator itself (same model and system prompt): it tends to
    prefer its own answers, so the verdict is weaker evidence."""


@attrs.frozen
class CandidateScore:
    """One candidate's score against the rubric."""

    candidate: int = attrs.field(metadata={"description": "the candidate's number"})
    score: float = attrs.field(metadata={
        "description": f"0 (useless) to {MAX_SCORE} (perfect) against the rubric"})


@attrs.frozen
class Verdict:
    """A judge's verdict on numbered candidate answers, reasoning first."""

    reasoning: str = attrs.field(metadata={
        "description": "one sentence: what sets the best candidate apart from the others"})
    scores: tuple[CandidateScore, ...] = attrs.field(metadata={
        "description": "one score for every candidate"})
    winner: int = attrs.field(metadata={"description": "the number of the best candidate"})


def _check_judge(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, plait.Agent):
        raise ValueError(f"judge: judge= must be a plait.Agent, got {value!r}")


def _check_rubric(_inst: Any, _attr: Any, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"judge: rubric= must be non-empty text, got {value!r}")


@attrs.frozen
class JudgeOptions:
    """The keywords ``judge`` takes (``ctx.ensemble(..., aggregate="judge", **options)``).

    - ``judge``: the judging agent; by default the generator's model with a judge system
      prompt at temperature 0. Its output type is replaced by ``Verdict``.
    - ``rubric``: the criteria, as text (``DEFAULT_RUBRIC`` otherwise).
    - ``seed``: seeds the shuffle of the candidates shown to the judge.
    - ``two_orders``: judge a second time in the reverse order and reconcile.
    """

    judge: plait.Agent | None = attrs.field(default=None, validator=_check_judge)
    rubric: str = attrs.field(default=DEFAULT_RUBRIC, validator=_check_rubric)
    seed: int | None = None
    two_orders: bool = False


@attrs.frozen
class _Pass:
    """One judging: the order shown (candidate indices) and the verdict mapped back."""

    order: tuple[int, ...]
    winner: int
    scores: Mapping[int, float]
    reasoning: str

    def details(self) -> dict[str, Any]:
        return {"order": list(self.order), "winner": self.winner, "reasoning": self.reasoning,
                "scores": [{"candidate": i, "score": self.scores[i]} for i in self.order]}


async def judge(job: plait.AggregationJob) -> plait.Aggregation:
    """The ``judge`` aggregator: an LLM judge picks the best candidate against a rubric."""
    opts = job.options_as(JudgeOptions, "judge")
    candidates = sorted(await job.candidates(), key=lambda c: c.index)
    if len(candidates) == 1:  # the others failed: nothing to compare, no call to pay for
        only = candidates[0]
        return plait.Aggregation(only.output, winner_index=only.index,
                                 rationale="only one candidate answered; nothing to judge",
                                 calls_saved=job.remaining)
    agent = _judge_agent(job.agent, opts.judge)
    if agent.model in {c.model for c in candidates} and agent.system == job.agent.system:
        warnings.warn(SameJudgeWarning(
            f"judge: the judge ({agent.model}) has the generators' model and system prompt; "
            "it will tend to prefer its own answers. Pass judge= a different model or "
            "system prompt."), stacklevel=2)
    order = list(range(len(candidates)))
    random.Random(opts.seed).shuffle(order)
    orders = [order, order[::-1]] if opts.two_orders else [order]
    passes = await _judge_all(job, agent, opts.rubric,
                              [[candidates[i] for i in o] for o in orders])
    return _reconcile(passes, {c.index: c for c in candidates}, agent, opts.rubric,
                      job.remaining)


def _judge_agent(generator: plait.Agent, given: plait.Agent | None) -> plait.Agent:
    if given is None:
        return attrs.evolve(generator, system=JUDGE_SYSTEM, output=Verdict, temperature=0,
                            max_tokens=None, stop=())
    return attrs.evolve(given, system=given.system or JUDGE_SYSTEM, output=Verdict)


async def _judge_all(job: plait.AggregationJob, agent: plait.Agent, rubric: str,
                     shown: Sequence[Sequence[plait.Candidate]]) -> list[_Pass]:
    """Every judging at once; the first error is raised as itself, not in a group."""
    passes: list[_Pass | None] = [None] * len(shown)
    errors: list[Exception] = []

    async def one(k: int) -> None:
        try:
            passes[k] = await _judge_once(job, agent, rubric, shown[k])
        except Exception as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for k in range(len(shown)):
            tg.start_soon(one, k)
    if errors:
        raise errors[0]
    return [p for p in passes if p is not None]


async def _judge_once(job: plait.AggregationJob, agent: plait.Agent, rubric: str,
                      shown: Sequence[plait.Candidate]) -> _Pass:
    count = len(shown)

    def verdict_check(verdict: Verdict) -> str | None:
        return "; ".join(_problems(verdict, count)) or None

    try:
        reply = await job.ask(agent, judge_prompt(job.question, shown, rubric),
                              validate=(verdict_check,))
    except plait.OutputParseError as exc:
        raise JudgeParseError(str(exc), exc.raw) from exc
    except plait.ValidationFailed as exc:
        raise JudgeParseError(exc.reason) from exc
    verdict: Verdict = reply.output
    problems = _problems(verdict, count)  # the gate runs only inside a step; check anyway
    if problems:
        raise JudgeParseError("; ".join(problems), reply.text)
    return _Pass(
        order=tuple(c.index for c in shown),
        winner=shown[verdict.winner - 1].index,
        scores={shown[s.candidate - 1].index: float(s.score) for s in verdict.scores},
        reasoning=verdict.reasoning.strip(),
    )


def judge_prompt(question: str, shown: Sequence[plait.Candidate], rubric: str) -> str:
    """What the judge is asked: the question, the numbered candidates, the rubric."""
    blocks = "\n\n".join(f"<candidate {n}>\n{c.text.strip()}\n</candidate {n}>"
                         for n, c in enumerate(shown, 1))
    return (
        f"Judge these {len(shown)} candidate answers to a question.\n\n"
        f"<question>\n{question}\n</question>\n\n{blocks}\n\n"
        f"Rubric:\n{rubric}\n\n"
        f"Judge each candidate on its own merits against the rubric: the order they are "
        f"listed in means nothing, and a longer answer is not a better one. Reply with\n"
        f"- reasoning: one sentence on what sets the best candidate apart, written first;\n"
        f"- scores: one entry per candidate, its number and a score from 0 to {MAX_SCORE};\n"
        f"- winner: the number of the best candidate."
    )


def _problems(verdict: Verdict, count: int) -> list[str]:
    """What makes a verdict unusable (a winner out of range counts as unparseable)."""
    problems = []
    if not 1 <= verdict.winner <= count:
        problems.append(f"winner {verdict.winner} is not a candidate number (1 to {count})")
    numbers = [s.candidate for s in verdict.scores]
    missing = sorted(set(range(1, count + 1)) - set(numbers))
    unknown = sorted(set(numbers) - set(range(1, count + 1)))
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    if missing:
        problems.append(f"no score for candidate {_listed(missing)}")
    if unknown:
        problems.append(f"scores name candidate {_listed(unknown)}, which does not exist")
    if repeated:
        problems.append(f"candidate {_listed(repeated)} scored more than once")
    problems.extend(f"score {s.score} for candidate {s.candidate} is not between 0 and "
                    f"{MAX_SCORE}" for s in verdict.scores if not 0 <= s.score <= MAX_SCORE)
    return problems


def _listed(numbers: Sequence[int]) -> str:
    return ", ".join(str(n) for n in numbers)


def _reconcile(passes: Sequence[_Pass], by_index: Mapping[int, plait.Candidate],
               agent: plait.Agent, rubric: str, remaining: int) -> plait.Aggregation:
    details: dict[str, Any] = {"judge": agent.model, "rubric": rubric,
                               "passes": [p.details() for p in passes]}
    first = passes[0]
    if len(passes) == 1:
        return plait.Aggregation(by_index[first.winner].output, winner_index=first.winner,
                                 scores=dict(first.scores), rationale=first.reasoning,
                                 calls_saved=remaining, details=details)
    totals = {i: sum(p.scores[i] for p in passes) for i in by_index}
    agree = len({p.winner for p in passes}) == 1
    # on disagreement the higher total wins; an equal total keeps the first order's pick
    chosen = max(passes, key=lambda p: totals[p.winner])
    details["orders_agree"] = agree
    details["totals"] = [{"candidate": i, "total": t} for i, t in totals.items()]
    return plait.Aggregation(
        by_index[chosen.winner].output,
        winner_index=chosen.winner,
        agreement=1.0 if agree else 0.5,
        scores={i: t / len(passes) for i, t in totals.items()},
        rationale=chosen.reasoning,
        flagged=not agree,
        calls_saved=remaining,
        details=details,
    )
