"""The worked example of docs/guide/write-an-aggregator.md, installed like any plugin."""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import plait
import plait_median
import pytest
from plait_testing import PRICES, FakeProvider, provider_plugin
from plait_testing.contracts import AggregatorContract, ScriptedEnsemble

ROOT = Path(__file__).resolve().parents[3]
AGENT = plait.Agent(model="fake:priced", system="Answer with a number only.", max_tokens=8)


# -- installed through its entry point --------------------------------------------------------


def test_the_distribution_is_installed_with_its_entry_point() -> None:
    [entry] = [ep for ep in importlib.metadata.entry_points(group="plait")
               if ep.name == "median"]
    assert entry.value == "plait_median"
    assert entry.dist is not None
    assert (entry.dist.name, entry.dist.version) == ("plait-median", "0.1.0")


async def test_an_ensemble_runs_through_the_installed_plugin(
    monkeypatch: pytest.MonkeyPatch, no_network: httpx.MockTransport
) -> None:
    monkeypatch.delenv("PLAIT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "plait-median,plait-testing")
    script = ScriptedEnsemble(["465", "About 470 km.", "392", "466 km", "1,200"])
    async with plait.Runtime(transport=no_network,
                             settings={"fake": {"replies": script}}) as runtime:
        assert runtime.aggregator("median") is plait_median.median
        [info] = [p for p in runtime.plugin_infos() if p.name == "median"]
        assert (info.distribution, info.registered) == ("plait-median",
                                                        {"aggregator": ("median",)})

        @plait.step
        async def distance(ctx: plait.StepContext) -> str:
            result = await ctx.ensemble(AGENT, "Road distance Paris-Lyon in km?", n=5,
                                        vary=script.vary, aggregate="median")
            return str(result.winner)

        run = await plait.Pipeline("d", steps={"distance": distance}).run({}, runtime=runtime)
    assert run.output == "466 km"
    assert run.usage.calls == 5


# -- what it decides --------------------------------------------------------------------------


Median = Callable[..., Any]


@pytest.fixture
def median(plait_runtime: plait.Runtime, register_plugin: Callable[..., Any]) -> Median:
    register_plugin(plait_median)

    async def run(replies: Sequence[Any], agent: plait.Agent = AGENT,
                  **options: Any) -> plait.EnsembleResult:
        script = ScriptedEnsemble(replies)
        results: list[plait.EnsembleResult] = []

        @plait.step
        async def ask(ctx: plait.StepContext) -> None:
            results.append(await ctx.ensemble(agent, "How many?", n=len(replies),
                                              vary=script.vary, aggregate="median", **options))

        with plait_runtime.plugin(provider_plugin(FakeProvider(script), prices=PRICES)):
            await plait.Pipeline("m", steps={"ask": ask}).run({}, runtime=plait_runtime)
        return results[0]

    return run


async def test_the_median_candidate_wins_and_an_outlier_does_not_drag_it(
    median: Median
) -> None:
    result = await median(["12", "13", "9000", "14", "13"])
    aggregation = result.aggregation
    assert (result.winner, aggregation.winner_index) == ("13", 4)  # the middle of the sort
    assert aggregation.agreement == pytest.approx(2 / 5)  # within 5 % of 13: the two 13s
    assert aggregation.rationale == "the median of 5 numeric answers is 13"
    assert aggregation.details["values"] == [
        {"candidate": 0, "value": 12.0}, {"candidate": 1, "value": 13.0},
        {"candidate": 4, "value": 13.0}, {"candidate": 3, "value": 14.0},
        {"candidate": 2, "value": 9000.0}]


async def test_an_even_count_picks_the_lower_median_a_real_answer(median: Median) -> None:
    result = await median(["10", "40", "20", "30"])
    assert (result.winner, result.aggregation.winner_index) == ("20", 2)


async def test_tolerance_sets_what_counts_as_agreeing(median: Median) -> None:
    replies = ["100", "104", "110", "96"]  # lower median 100
    assert (await median(replies)).agreement == pytest.approx(3 / 4)
    assert (await median(replies, tolerance=0.1)).agreement == 1.0
    assert (await median(replies, tolerance=0)).agreement == pytest.approx(1 / 4)


async def test_numbers_inside_text_count_and_other_answers_are_ignored(median: Median) -> None:
    result = await median(["About 1,200 km.", "no idea", "-3.5 degrees", "1200"])
    assert result.winner == "About 1,200 km."
    assert result.aggregation.details["ignored"] == [1]


async def test_numeric_outputs_are_used_as_they_are(median: Median) -> None:
    result = await median(["2.5", "3", "1"], agent=plait.Agent(
        model="fake:priced", output=float, max_tokens=8))
    assert (result.winner, result.aggregation.winner_index) == (2.5, 0)


async def test_no_number_at_all_is_an_aggregation_error(median: Median) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await median(["many", "a few"])
    assert isinstance(failed.value.cause, plait.AggregationError)
    assert str(failed.value.cause) == "median: no candidate answered with a number"


async def test_an_unknown_option_is_refused(median: Median) -> None:
    with pytest.raises(plait.StepFailed) as failed:
        await median(["1", "2"], tolerence=0.1)
    assert str(failed.value.cause) == ("median: unknown option(s) tolerence; median takes "
                                       "tolerance")


@pytest.mark.parametrize(("output", "number"), [
    (3, 3.0), (2.5, 2.5), ("42", 42.0), ("-7 C", -7.0), ("+3.25%", 3.25),
    ("1,234,567 people", 1234567.0), ("between 5 and 9", 5.0), (True, None), ("none", None),
    (None, None), (["1"], None),
])
def test_as_number(output: Any, number: float | None) -> None:
    assert plait_median.as_number(output) == number


def test_the_guide_shows_the_module_as_it_is() -> None:
    """docs/guide/write-an-aggregator.md lists the whole module: it must not drift."""
    guide = (ROOT / "docs" / "guide" / "write-an-aggregator.md").read_text()
    listing = re.search(r"The whole plugin, `plait_median/__init__.py`:\n\n<!--[^\n]*-->\n"
                        r"```python\n(.*?)```\n", guide, re.DOTALL)
    assert listing is not None
    source = Path(plait_median.__file__).read_text()
    assert listing.group(1) == source


# -- and the contract every aggregator passes ---------------------------------------------------


class TestMedian(AggregatorContract):
    @pytest.fixture
    def aggregator(self) -> str:
        return "median"

    @pytest.fixture
    def plugin(self) -> object:
        return plait_median

    @pytest.fixture
    def replies(self) -> list[Any]:
        return ["465", "470 km", "392"]
