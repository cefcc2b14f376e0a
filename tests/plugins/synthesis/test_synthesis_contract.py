"""plait-synthesis passes the AggregatorContract; its winner is new, drawn from sources."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plait
import plait_synthesis
import pytest
from plait_testing import Reply
from plait_testing.contracts import AggregatorContract


class TestSynthesis(AggregatorContract):
    @pytest.fixture
    def aggregator(self) -> str:
        return "synthesis"

    @pytest.fixture
    def plugin(self) -> object:
        return plait_synthesis

    def answer(self, request: plait.ModelRequest) -> Reply:
        return {"answer": "Paris, the capital since 987.", "sources": [1, 2]}

    async def test_winner_is_a_candidate(self, run_ensemble: Callable[..., Any]) -> None:
        """A synthesis writes a new answer: it names no candidate, but its sources."""
        outcome = await run_ensemble()
        aggregation = outcome.result.aggregation
        assert aggregation.winner == "Paris, the capital since 987."
        assert aggregation.winner_index is None
        assert aggregation.sources == (0, 1)
