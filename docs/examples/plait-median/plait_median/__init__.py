"""plait-median: the ``median`` aggregator, for ensembles whose answers are numbers.

    result = await ctx.ensemble(agent, "How many moons has Mars?", n=5,
                                vary={"temperature": [0.3, 0.9]}, aggregate="median")

Each candidate's output is read as a number: an int or float as it is, text by the
first number in it ("about 1,200 km" is 1200). The winner is the candidate holding the
median (the lower one for an even count, so the winner is always a real answer), the
agreement is the share of numeric answers within ``tolerance`` of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import plait

__all__ = ["median", "plait_register_aggregators"]

__version__ = "0.1.0"

_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


@plait.hookimpl
def plait_register_aggregators(register: Callable[..., None]) -> None:
    """Register ``median``, used as ``ctx.ensemble(..., aggregate="median")``."""
    register("median", median)


async def median(job: plait.AggregationJob) -> plait.Aggregation:
    """The candidate holding the median of the numeric answers.

    Option ``tolerance`` (default 0.05): how far from the median, relative to it, an
    answer may be and still count as agreeing.
    """
    tolerance = job.options.get("tolerance", 0.05)
    unknown = sorted(set(job.options) - {"tolerance"})
    if unknown:  # refuse typos loudly instead of ignoring them
        raise TypeError(f"median: unknown option(s) {', '.join(unknown)}; median takes "
                        "tolerance")
    numeric = []
    for candidate in await job.candidates():  # draws all n, concurrently
        value = as_number(candidate.output)
        if value is not None:
            numeric.append((value, candidate.index, candidate))
    if not numeric:
        raise plait.AggregationError("median: no candidate answered with a number")
    numeric.sort(key=lambda entry: entry[:2])  # by value, then by index for equal values
    middle, _, winner = numeric[(len(numeric) - 1) // 2]
    close = [i for value, i, _ in numeric if abs(value - middle) <= tolerance * abs(middle)]
    return plait.Aggregation(
        winner.output,
        winner_index=winner.index,
        agreement=len(close) / len(numeric),
        rationale=f"the median of {len(numeric)} numeric answers is {middle:g}",
        details={"values": [{"candidate": i, "value": v} for v, i, _ in numeric],
                 "ignored": sorted({c.index for c in job.drawn} - {i for _, i, _ in numeric})},
    )


def as_number(output: Any) -> float | None:
    """An output as a number: ints and floats as they are, text by its first number."""
    if isinstance(output, int | float) and not isinstance(output, bool):
        return float(output)
    if isinstance(output, str):
        found = _NUMBER.search(output)
        if found:
            return float(found.group().replace(",", ""))
    return None
