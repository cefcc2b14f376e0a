"""An LLM check: a second agent answers a yes/no question about the output, with a reason."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import attrs
import plait

from ._naming import named, show

__all__ = ["CheckVerdict", "llm_check"]


@attrs.frozen
class CheckVerdict:
    """What the checking agent answers (its structured output)."""

    reason: str  # first, so the model explains before it decides
    answer: Literal["yes", "no"]


def llm_check(agent: plait.Agent, question: str
              ) -> Callable[[Any, plait.StepContext], Awaitable[str | None]]:
    """Ask ``agent`` a yes/no ``question`` about the output; "no" rejects with its reason.

    The check is a model call made through the step's context: it counts against the
    run's budget and the step's usage, and sees the step's retries. The question should
    be answered "yes" by a good output ("Does the answer address the customer's
    question?"). If the checking agent gives no usable verdict, the step fails with a
    ``plait.PluginError`` (the output was not judged either way).
    """
    if not isinstance(agent, plait.Agent):
        raise TypeError(f"llm_check() needs a plait.Agent to ask, got {agent!r}")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("llm_check() needs a yes/no question about the output")

    async def check(value: Any, ctx: plait.StepContext) -> str | None:
        prompt = (f"Answer yes or no, and give a one-sentence reason.\n\nQuestion: {question}"
                  f"\n\nOutput to check:\n{_render(value, ctx)}")
        try:
            # validate=[]: the step's own validators are for the step's output, not this one
            reply = await ctx.ask(agent, prompt, output=CheckVerdict, validate=[])
        except plait.OutputParseError as exc:
            raise plait.PluginError(f"llm_check({show(question)}): the checking agent gave "
                                    f"no usable verdict: {exc}") from exc
        verdict: CheckVerdict = reply.output
        return None if verdict.answer == "yes" else f"{question} No: {verdict.reason}"

    return named(f"llm_check({show(question)})", check)


def _render(value: Any, ctx: plait.StepContext) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(ctx.runtime.converter.unstructure(value), indent=2, ensure_ascii=False,
                      default=str)
