"""plait.Price: what a call costs, and the most it can cost."""

from __future__ import annotations

from decimal import Decimal

import plait
import pytest


@pytest.mark.parametrize("written", [0, 400, 1000])
def test_worst_case_holds_when_writing_the_cache_costs_more_than_input(written: int) -> None:
    # Anthropic's shape: a cache write costs 1.25x the input price, a read 0.1x
    price = plait.Price.per_million("3", "15", cached_input="0.30", cache_write="3.75")
    worst = price.worst_case(1000, 100)
    assert worst == Decimal("0.00525")  # (1000 * 3.75 + 100 * 15) / 1e6: all input written
    usage = plait.TokenCount(input_tokens=1000, output_tokens=100, cache_write_tokens=written)
    assert price.cost(usage) <= worst
