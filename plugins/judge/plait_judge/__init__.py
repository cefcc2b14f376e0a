"""plait-judge: the ``judge`` aggregator, best-of-N with an LLM judge.

    result = await ctx.ensemble(agent, prompt, n=4, vary={"temperature": [0.5, 1.0]},
                                aggregate="judge", judge=judge_agent, two_orders=True)

The judge sees the question, the candidates (shuffled, numbered) and a rubric; it writes
one sentence of reasoning, scores every candidate, then names the winner. Options: see
``JudgeOptions``.

It also registers the evaluation metric ``judge`` (``plait eval --metric judge``): a
judge model grades each output against the case's expected answer.
"""

from __future__ import annotations

from collections.abc import Callable

import plait

from ._judge import (
    DEFAULT_RUBRIC,
    JUDGE_SYSTEM,
    CandidateScore,
    JudgeOptions,
    JudgeParseError,
    SameJudgeWarning,
    Verdict,
    judge,
    judge_prompt,
)
from ._metric import Grade, judge_metric

__all__ = [
    "DEFAULT_RUBRIC",
    "JUDGE_SYSTEM",
    "CandidateScore",
    "Grade",
    "JudgeOptions",
    "JudgeParseError",
    "SameJudgeWarning",
    "Verdict",
    "judge",
    "judge_metric",
    "judge_prompt",
    "plait_register_aggregators",
    "plait_register_metrics",
]

__version__ = "0.1.0"


@plait.hookimpl
def plait_register_aggregators(register: Callable[..., None]) -> None:
    register("judge", judge)


@plait.hookimpl
def plait_register_metrics(register: Callable[..., None]) -> None:
    register("judge", judge_metric)
