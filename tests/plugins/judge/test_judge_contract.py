"""plait-judge passes the AggregatorContract, judging once and in two orders."""

from __future__ import annotations

import re
from typing import Any

import plait
import plait_judge
import pytest
from plait_testing import Reply
from plait_testing.contracts import AggregatorContract


class TestJudge(AggregatorContract):
    @pytest.fixture
    def aggregator(self) -> str:
        return "judge"

    @pytest.fixture
    def plugin(self) -> object:
        return plait_judge

    @pytest.fixture
    def options(self) -> dict[str, Any]:
        return {"seed": 3}

    def answer(self, request: plait.ModelRequest) -> Reply:
        """A judge that prefers the shortest candidate, then the first listed."""
        listed = re.findall(r"<candidate (\d+)>\n(.*?)\n</candidate \1>",
                            request.messages[-1].content, re.DOTALL)
        best = min(listed, key=lambda nt: (len(nt[1]), int(nt[0])))[0]
        return {"reasoning": "The shortest answer says it all.",
                "scores": [{"candidate": int(n), "score": 10 - len(t)} for n, t in listed],
                "winner": int(best)}


class TestJudgeInTwoOrders(TestJudge):
    @pytest.fixture
    def options(self) -> dict[str, Any]:
        return {"seed": 3, "two_orders": True}
