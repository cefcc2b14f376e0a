"""A failure deep inside nested workflows is one StepFailed named by its path, and a Step
class that cannot run is refused when the workflow is built."""

from __future__ import annotations

from typing import Any

import plait
import pytest


class Boom(Exception):
    pass


@plait.step
async def bad(ctx: plait.StepContext) -> str:
    raise Boom("inner broke")


@plait.step
async def fine(ctx: plait.StepContext) -> str:
    return "fine"


def inner() -> plait.Pipeline:
    return plait.Pipeline("inner", steps={"inner_ok": fine, "inner_step": bad},
                          output="inner_step")


async def test_a_nested_failure_is_one_step_failed_named_by_its_path(
    plait_runtime: plait.Runtime,
) -> None:
    outer = plait.Pipeline("outer", steps={"raising": inner(), "beside": fine},
                           output="raising")
    with pytest.raises(plait.StepFailed) as info:
        await outer.run({}, runtime=plait_runtime)
    failed = info.value
    assert failed.step_id == "raising/inner_step"
    assert isinstance(failed.cause, Boom)  # the original error, not another StepFailed
    assert failed.__cause__ is failed.cause
    assert str(failed).startswith("step 'raising/inner_step' failed after 1 attempt: Boom")
    # every level's partial result: the outer run's, and the nested pipeline's
    assert failed.partial is not None
    assert failed.partial.outputs == {"beside": "fine"}
    record = failed.partial.steps["raising"]
    assert record.status == "failed"
    assert {k: r.status for k, r in record.children.items()} == {
        "inner_ok": "ok", "inner_step": "failed"}
    assert set(failed.nested_partials) == {"raising"}
    assert failed.nested_partials["raising"].outputs == {"inner_ok": "fine"}


async def test_three_levels_keep_every_partial(plait_runtime: plait.Runtime) -> None:
    middle = plait.Pipeline("middle", steps={"mid_ok": fine, "deeper": inner()},
                            output="deeper")
    outer = plait.Pipeline("outer", steps={"top": middle})
    with pytest.raises(plait.StepFailed) as info:
        await outer.run({}, runtime=plait_runtime)
    failed = info.value
    assert failed.step_id == "top/deeper/inner_step"
    assert isinstance(failed.cause, Boom)
    assert failed.nested_partials["top"].outputs == {"mid_ok": "fine"}
    assert failed.nested_partials["top/deeper"].outputs == {"inner_ok": "fine"}
    deeper = failed.partial.steps["top"].children["deeper"]  # type: ignore[union-attr]
    assert deeper.children["inner_step"].error == plait.ErrorInfo("Boom", "inner broke")


async def test_a_nested_pipeline_in_a_router_branch_is_named_by_its_path(
    plait_runtime: plait.Runtime,
) -> None:
    router = plait.Router("route", route=lambda ctx: "deep", branches={"deep": inner()})
    outer = plait.Pipeline("outer", steps={"answer": router})
    with pytest.raises(plait.StepFailed) as info:
        await outer.run({}, runtime=plait_runtime)
    assert info.value.step_id == "answer/deep/inner_step"
    assert isinstance(info.value.cause, Boom)
    assert info.value.partial is not None
    assert info.value.partial.steps["answer"].route == "deep"


async def test_a_nested_pipeline_in_a_fan_out_fails_the_fan_out_with_item_paths(
    plait_runtime: plait.Runtime,
) -> None:
    fan = plait.FanOut(inner(), over="items")
    outer = plait.Pipeline("outer", steps={"fan": fan})
    with pytest.raises(plait.StepFailed) as info:
        await outer.run({"items": [1]}, runtime=plait_runtime)
    # a fan-out fails as a whole; each item's error is the nested pipeline's, by its path
    assert info.value.step_id == "fan"
    error = info.value.cause
    assert isinstance(error, plait.FanOutError)
    [item] = error.errors
    assert isinstance(item.exception, plait.StepFailed)
    assert item.exception.step_id == "fan/0/inner_step"
    assert isinstance(item.exception.cause, Boom)


async def test_a_step_calling_another_pipeline_keeps_that_run_s_own_names(
    plait_runtime: plait.Runtime,
) -> None:
    @plait.step
    async def calls_a_run(ctx: plait.StepContext) -> Any:
        return (await inner().run({}, runtime=ctx.runtime)).output

    outer = plait.Pipeline("outer", steps={"caller": calls_a_run})
    with pytest.raises(plait.StepFailed) as info:
        await outer.run({}, runtime=plait_runtime)
    # a separate run, not a nested pipeline: its failure is this step's error
    assert info.value.step_id == "caller"
    assert isinstance(info.value.cause, plait.StepFailed)
    assert info.value.cause.step_id == "inner_step"


class NoRun(plait.Step):
    pass


def test_a_step_class_without_run_is_refused_when_the_pipeline_is_built() -> None:
    with pytest.raises(plait.PipelineDefinitionError,
                       match=r"pipeline 'p', step 'lazy': NoRun does not implement "
                             r"`async def run\(self, ctx\)`"):
        plait.Pipeline("p", steps={"ok": fine, "lazy": NoRun()})


@pytest.mark.parametrize("build", [
    lambda: plait.Router("r", route=lambda ctx: "a", branches={"a": NoRun()}),
    lambda: plait.FanOut(NoRun(), over="items"),
    lambda: plait.Orchestrator(plait.Agent("fake:x"), workers={"t": NoRun()}),
], ids=["router branch", "fan-out worker", "orchestrator worker"])
def test_a_step_class_without_run_is_refused_everywhere_a_step_goes(build: Any) -> None:
    with pytest.raises(plait.PipelineDefinitionError, match="NoRun does not implement"):
        build()


def test_a_step_class_that_implements_run_is_accepted() -> None:
    class Runs(NoRun):
        async def run(self, ctx: plait.StepContext) -> str:
            return "ran"

    plait.Pipeline("p", steps={"s": Runs()})
