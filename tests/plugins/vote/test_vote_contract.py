"""plait-vote passes the AggregatorContract, on a clear majority and on a seeded tie."""

from __future__ import annotations

from typing import Any

import plait_vote
import pytest
from plait_testing.contracts import AggregatorContract


class TestVote(AggregatorContract):
    @pytest.fixture
    def aggregator(self) -> str:
        return "vote"

    @pytest.fixture
    def plugin(self) -> object:
        return plait_vote


class TestAdaptiveVote(TestVote):
    @pytest.fixture
    def replies(self) -> list[Any]:
        return ["Paris"] * 5

    @pytest.fixture
    def options(self) -> dict[str, Any]:
        return {"adaptive": True}


class TestVoteWithARandomTieBreak(TestVote):
    @pytest.fixture
    def replies(self) -> list[Any]:
        return ["Paris", "Lyon", "lyon", "Rome", "paris"]

    @pytest.fixture
    def options(self) -> dict[str, Any]:
        return {"tie": "random", "seed": 11}
