"""plait-vote: the ``vote`` aggregator, majority vote over an ensemble's candidates.

    result = await ctx.ensemble(agent, prompt, n=7, vary={"temperature": [0.4, 0.8]},
                                aggregate="vote", adaptive=True, quorum=0.6)

Answers are compared after normalization (text stripped and casefolded, Enums and
structured outputs by value, or ``key=``); the winner's share of the votes is the
agreement. Options: see ``VoteOptions``.
"""

from __future__ import annotations

from collections.abc import Callable

import plait

from ._vote import LowAgreement, Tie, VoteOptions, vote

__all__ = ["LowAgreement", "Tie", "VoteOptions", "plait_register_aggregators", "vote"]

__version__ = "0.1.0"


@plait.hookimpl
def plait_register_aggregators(register: Callable[..., None]) -> None:
    register("vote", vote)
