"""A step's record says which models it called and what each one used."""

from __future__ import annotations

import httpx
import plait
from plait_testing import FakeProvider, provider_plugin

cheap = plait.Agent("fake:priced", system="Classify.")
free = plait.Agent("fake:free", system="Write.")


@plait.step
async def two_models(ctx: plait.StepContext) -> str:
    first = await ctx.ask(cheap, "one two three")
    second = await ctx.ask(free, "four")
    third = await ctx.ask(cheap, "five six")
    return first.output + second.output + third.output


@plait.step
async def none(ctx: plait.StepContext) -> str:
    return "no model"


async def test_a_record_splits_its_usage_by_model(plait_runtime: plait.Runtime,
                                                  fake_provider: FakeProvider) -> None:
    fake_provider.script("a", "b c", "d")
    pipe = plait.Pipeline("p", steps={"two": two_models, "none": none}, output="two")
    result = await pipe.run(runtime=plait_runtime)
    record = result.steps["two"]
    assert list(record.models) == ["fake:priced", "fake:free"]  # in the order first called
    priced, unpriced = record.models["fake:priced"], record.models["fake:free"]
    assert (priced.calls, priced.input_tokens, priced.output_tokens) == (2, 7, 2)
    assert (unpriced.calls, unpriced.input_tokens, unpriced.output_tokens) == (1, 2, 2)
    assert priced.cost > 0
    assert unpriced.cost == 0
    assert priced + unpriced == record.usage
    assert result.steps["none"].models == {}


async def test_models_survive_json(plait_runtime: plait.Runtime,
                                   fake_provider: FakeProvider) -> None:
    fake_provider.script("a", "b c", "d")
    result = await plait.Pipeline("p", steps={"two": two_models}).run(runtime=plait_runtime)
    back = plait.PipelineResult.from_json(result.to_json())
    assert back.steps["two"].models == result.steps["two"].models
    assert '"fake:priced": {' in result.to_json()


async def test_nested_work_counts_for_the_step_it_runs_in(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider,
) -> None:
    inner = plait.Pipeline("inner", steps={"ask": cheap.as_step("{text}")})

    @plait.step
    async def fan(ctx: plait.StepContext) -> list[str]:
        replies = await ctx.map(lambda text: ctx.ask(free, text), ["x", "y"])
        return [r.output for r in replies]

    outer = plait.Pipeline("outer", steps={"nested": inner, "fan": fan}, output="fan")
    result = await outer.run({"text": "hello"}, runtime=plait_runtime)
    nested = result.steps["nested"]
    assert list(nested.models) == ["fake:priced"]
    assert nested.children["ask"].models == nested.models
    assert result.steps["fan"].models["fake:free"].calls == 2


async def test_a_model_override_is_the_model_recorded(no_network: httpx.MockTransport,
                                                      anyio_backend: str) -> None:
    fake = provider_plugin(FakeProvider(["a", "b", "c"]), "fake")
    async with plait.Runtime(entry_points=False, transport=no_network, plugins=[fake],
                             model_override="fake:other") as runtime:
        result = await plait.Pipeline("p", steps={"two": two_models}).run(runtime=runtime)
    assert list(result.steps["two"].models) == ["fake:other"]
