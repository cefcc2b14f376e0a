"""plait-synthesis: the ``synthesis`` aggregator, one call that merges every candidate.

    result = await ctx.ensemble(agent, prompt, n=3, vary={"temperature": [0.4, 0.8, 1.2]},
                                aggregate="synthesis")
    result.winner                 # the synthesized answer (the generators' output type)
    result.aggregation.sources    # indices of the candidates it drew on

Options: see ``SynthesisOptions``.
"""

from __future__ import annotations

from collections.abc import Callable

import plait

from ._synthesis import (
    SYNTHESIS_SYSTEM,
    SynthesisOptions,
    SynthesisParseError,
    synthesis,
    synthesis_output,
    synthesis_prompt,
)

__all__ = [
    "SYNTHESIS_SYSTEM",
    "SynthesisOptions",
    "SynthesisParseError",
    "plait_register_aggregators",
    "synthesis",
    "synthesis_output",
    "synthesis_prompt",
]

__version__ = "0.1.0"


@plait.hookimpl
def plait_register_aggregators(register: Callable[..., None]) -> None:
    register("synthesis", synthesis)
