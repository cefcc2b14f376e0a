"""A pipeline is validated when it is built: every mistake is a PipelineDefinitionError."""

from __future__ import annotations

import itertools
from typing import Any

import plait
import pytest


@plait.step
async def a(ctx: plait.StepContext) -> str:
    return "a"


@plait.step
async def b(ctx: plait.StepContext) -> str:
    return "b"


@plait.step
async def c(ctx: plait.StepContext) -> str:
    return "c"


def test_a_valid_pipeline_exposes_its_steps_and_dependencies() -> None:
    pipe = plait.Pipeline("ok", steps={"a": a, "b": b}, deps={"b": "a"})
    assert list(pipe.steps) == ["a", "b"]
    assert pipe.dependencies == {"a": (), "b": ("a",)}
    assert pipe.output == "b"


def test_repeated_dependencies_are_kept_once() -> None:
    pipe = plait.Pipeline("dup", steps={"a": a, "b": b}, deps={"b": ["a", "a"]})
    assert pipe.dependencies["b"] == ("a",)


def test_unknown_step_in_deps_is_named() -> None:
    with pytest.raises(plait.PipelineDefinitionError, match=r"depends on unknown step 'nope'"):
        plait.Pipeline("p", steps={"a": a, "b": b}, deps={"b": ["a", "nope"]})


def test_unknown_step_as_a_deps_key_is_named() -> None:
    with pytest.raises(plait.PipelineDefinitionError, match=r"deps names unknown step 'ghost'"):
        plait.Pipeline("p", steps={"a": a}, deps={"ghost": ["a"]})


def test_a_cycle_is_reported_with_its_path() -> None:
    with pytest.raises(plait.PipelineDefinitionError, match="cycle") as info:
        plait.Pipeline("loop", steps={"a": a, "b": b, "c": c},
                       deps={"a": ["c"], "b": ["a"], "c": ["b"]})
    message = str(info.value)
    path = message.split("cycle: ")[1].split(" -> ")
    assert path[0] == path[-1]  # the path closes on itself
    assert sorted(path[:-1]) == ["a", "b", "c"]
    # each arrow follows a declared dependency: x -> y means y depends on x
    deps = {"a": ["c"], "b": ["a"], "c": ["b"]}
    for x, y in itertools.pairwise(path):
        assert x in deps[y]


def test_a_step_depending_on_itself_is_a_cycle() -> None:
    with pytest.raises(plait.PipelineDefinitionError, match=r"cycle: a -> a"):
        plait.Pipeline("self", steps={"a": a}, deps={"a": ["a"]})


def test_two_final_steps_without_output_are_ambiguous() -> None:
    with pytest.raises(plait.PipelineDefinitionError, match=r"2 final steps \(b, c\)"):
        plait.Pipeline("fork", steps={"a": a, "b": b, "c": c}, deps={"b": ["a"], "c": ["a"]})


def test_output_resolves_the_ambiguity() -> None:
    pipe = plait.Pipeline("fork", steps={"a": a, "b": b, "c": c},
                          deps={"b": ["a"], "c": ["a"]}, output="c")
    assert pipe.output == "c"


def test_output_naming_an_unknown_step() -> None:
    with pytest.raises(plait.PipelineDefinitionError, match=r"output names unknown step 'z'"):
        plait.Pipeline("p", steps={"a": a}, output="z")


def test_step_config_for_an_unknown_step() -> None:
    with pytest.raises(plait.PipelineDefinitionError, match=r"step_config names unknown step 'x'"):
        plait.Pipeline("p", steps={"a": a}, step_config={"x": plait.Config(retries=1)})


def test_step_config_that_is_not_a_config() -> None:
    with pytest.raises(plait.PipelineDefinitionError, match=r"step_config\['a'\] must be a plait"):
        plait.Pipeline("p", steps={"a": a}, step_config={"a": {"retries": 1}})  # type: ignore[dict-item]


def test_pipeline_config_that_is_not_a_config() -> None:
    with pytest.raises(plait.PipelineDefinitionError, match=r"config must be a plait\.Config"):
        plait.Pipeline("p", steps={"a": a}, config={"timeout": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [42, "a string", None, plait.Step, [a]])
def test_values_that_are_not_steps_are_refused(value: Any) -> None:
    with pytest.raises(plait.PipelineDefinitionError, match=r"step 'x': expected a plait.Step"):
        plait.Pipeline("p", steps={"x": value})


def test_plain_functions_become_steps() -> None:
    async def f(ctx: plait.StepContext) -> int:
        return 1

    pipe = plait.Pipeline("p", steps={"f": f})
    assert isinstance(pipe.steps["f"], plait.Step)


@pytest.mark.parametrize("steps", [{}, [a], None])
def test_steps_must_be_a_non_empty_mapping(steps: Any) -> None:
    with pytest.raises(plait.PipelineDefinitionError, match="non-empty mapping"):
        plait.Pipeline("p", steps=steps)


@pytest.mark.parametrize("sid", ["", "a/b", 3])
def test_step_ids_are_non_empty_strings_without_slashes(sid: Any) -> None:
    with pytest.raises(plait.PipelineDefinitionError, match="step ids"):
        plait.Pipeline("p", steps={sid: a})


@pytest.mark.parametrize("name", ["", None])
def test_a_pipeline_needs_a_name(name: Any) -> None:
    with pytest.raises(plait.PipelineDefinitionError, match="non-empty name"):
        plait.Pipeline(name, steps={"a": a})


def test_deps_must_be_a_mapping() -> None:
    with pytest.raises(plait.PipelineDefinitionError, match="deps must be a mapping"):
        plait.Pipeline("p", steps={"a": a}, deps=[("a", "b")])  # type: ignore[arg-type]


def test_definition_errors_are_plait_errors() -> None:
    assert issubclass(plait.PipelineDefinitionError, plait.PlaitError)
