"""Synthesis: one call reads every candidate and writes the answer they should have been."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import attrs
import plait

__all__ = [
    "SYNTHESIS_SYSTEM",
    "SynthesisOptions",
    "SynthesisParseError",
    "synthesis",
    "synthesis_output",
    "synthesis_prompt",
]

SYNTHESIS_SYSTEM = (
    "You combine several draft answers to one question into the single best answer, "
    "and reply only in the format you are asked for."
)


class SynthesisParseError(plait.AggregationError):
    """The synthesizer's answer could not be used, even after re-asking.

    ``raw`` is its last reply when the failure was a parse error.
    """

    def __init__(self, problem: str, raw: str | None = None) -> None:
        self.problem = problem
        self.raw = raw
        super().__init__(f"synthesis: the synthesizer's answer could not be used, even after "
                         f"re-asking: {problem}")


def _check_synthesizer(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, plait.Agent):
        raise ValueError(f"synthesis: synthesizer= must be a plait.Agent, got {value!r}")


@attrs.frozen
class SynthesisOptions:
    """The keywords ``synthesis`` takes (``ctx.ensemble(..., aggregate="synthesis", ...)``).

    - ``synthesizer``: the agent that writes the synthesis; by default the generator's
      model with a synthesis system prompt at temperature 0. Either way it is asked for
      the generators' output type (plus the sources), so the winner has the type the
      candidates have.
    """

    synthesizer: plait.Agent | None = attrs.field(default=None, validator=_check_synthesizer)


@functools.cache
def synthesis_output(answer_type: Any) -> type:
    """The structured output asked of the synthesizer: ``answer`` (of the generators'
    output type), then ``sources``, the numbers of the candidates it drew on."""
    return attrs.make_class("Synthesis", {
        "answer": attrs.field(type=answer_type, metadata={
            "description": "the best answer to the question"}),
        "sources": attrs.field(type=tuple[int, ...], metadata={
            "description": "the numbers of the candidates the answer draws on"}),
    }, frozen=True)


async def synthesis(job: plait.AggregationJob) -> plait.Aggregation:
    """The ``synthesis`` aggregator: merge every candidate into one better answer."""
    opts = job.options_as(SynthesisOptions, "synthesis")
    candidates = sorted(await job.candidates(), key=lambda c: c.index)
    agent = _synthesizer(job.agent, opts.synthesizer)
    count = len(candidates)

    def sources_check(value: Any) -> str | None:
        return _problem(value.sources, count)

    try:
        reply = await job.ask(agent, synthesis_prompt(job.question, candidates),
                              validate=(sources_check,))
    except plait.OutputParseError as exc:
        raise SynthesisParseError(str(exc), exc.raw) from exc
    except plait.ValidationFailed as exc:
        raise SynthesisParseError(exc.reason) from exc
    problem = _problem(reply.output.sources, count)  # the gate runs only inside a step
    if problem:
        raise SynthesisParseError(problem, reply.text)
    sources = tuple(sorted({candidates[n - 1].index for n in reply.output.sources}))
    return plait.Aggregation(
        reply.output.answer,
        rationale=f"synthesized from {len(sources)} of {count} candidates "
                  f"({', '.join(str(i) for i in sources)})",
        sources=sources,
        calls_saved=job.remaining,
        details={"synthesizer": agent.model, "shown": [c.index for c in candidates]},
    )


def _synthesizer(generator: plait.Agent, given: plait.Agent | None) -> plait.Agent:
    output = synthesis_output(generator.output)
    if given is None:
        return attrs.evolve(generator, system=SYNTHESIS_SYSTEM, output=output, temperature=0,
                            max_tokens=None, stop=())
    return attrs.evolve(given, system=given.system or SYNTHESIS_SYSTEM, output=output)


def synthesis_prompt(question: str, candidates: Sequence[plait.Candidate]) -> str:
    """What the synthesizer is asked: the question and every candidate, numbered."""
    blocks = "\n\n".join(f"<candidate {n}>\n{c.text.strip()}\n</candidate {n}>"
                         for n, c in enumerate(candidates, 1))
    return (
        f"{len(candidates)} candidate answers were written to the question below. Write the "
        f"single best answer.\n\n<question>\n{question}\n</question>\n\n{blocks}\n\n"
        "Merge the strengths of the candidates and correct their errors: keep what is right "
        "and useful in each, fix or drop what is wrong (even when several candidates share "
        "the mistake), and add nothing the question does not need. Reply with\n"
        "- answer: the best answer, in the form the question asks for;\n"
        "- sources: the numbers of the candidates you drew on."
    )


def _problem(sources: Sequence[int], count: int) -> str | None:
    """What makes a sources list unusable (a number out of range counts as unparseable)."""
    if not sources:
        return "sources is empty; name the numbers of the candidates you drew on"
    wrong = sorted({n for n in sources if not 1 <= n <= count})
    if wrong:
        return (f"sources name candidate {', '.join(str(n) for n in wrong)}, which does not "
                f"exist (1 to {count})")
    return None
