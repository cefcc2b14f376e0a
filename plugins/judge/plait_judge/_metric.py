"""The ``judge`` evaluation metric: a model grades an output against the expected answer.

For outputs that no string rule can score (a summary, an explanation, an answer in other
words), ``plait eval --metric judge``: the judge model sees the case's inputs, the
reference answer and the output, reasons in one sentence, and grades it correct or not.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

import attrs
import plait

__all__ = ["ENV", "METRIC_SYSTEM", "Grade", "judge_metric"]

ENV = "PLAIT_JUDGE_MODEL"
METRIC_SYSTEM = (
    "You grade answers. Compare the answer with the reference answer: it is correct when "
    "it says the same thing, in any words, and does not contradict it. Reason in one "
    "sentence, then grade.")


@attrs.frozen
class Grade:
    reasoning: str
    grade: Literal["correct", "incorrect"]


async def judge_metric(output: Any, expected: Any, mctx: plait.MetricContext) -> bool:
    """Whether the judge model grades ``output`` correct. The model is the Runtime's
    ``settings={"judge": {"model": ...}}``, else ``PLAIT_JUDGE_MODEL``."""
    settings = mctx.runtime.settings.get("judge", {})
    model = settings.get("model") or os.environ.get(ENV)
    if not model:
        raise plait.EvalError(f"the judge metric needs a model: set {ENV} or "
                              'Runtime(settings={"judge": {"model": "provider:model"}})')
    agent = plait.Agent(model, system=METRIC_SYSTEM, output=Grade, temperature=0,
                        max_tokens=256)
    prompt = (f"<inputs>\n{_text(mctx.inputs)}\n</inputs>\n"
              f"<reference>\n{_text(expected)}\n</reference>\n"
              f"<answer>\n{_text(output)}\n</answer>")
    reply = await agent.ask(prompt, runtime=mctx.runtime)
    return bool(reply.output.grade == "correct")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)
