"""Tests of plait-example. In the plait repository they live in tests/plugins/example/."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plait
import plait_example
import pytest


@pytest.mark.parametrize("value", ["text", [0], {"k": "v"}, 0, False])
def test_non_empty_passes_values_with_content(value: object) -> None:
    assert plait_example.non_empty(value) is True


@pytest.mark.parametrize(("value", "reason"), [
    (None, "the output is None"),
    ("", "the output is blank"),
    (" \n", "the output is blank"),
    ([], "the output is an empty list"),
    ({}, "the output is an empty dict"),
])
def test_non_empty_rejects_empty_values_saying_why(value: object, reason: str) -> None:
    assert plait_example.non_empty(value) == reason


async def test_the_registered_gate_rejects_a_blank_step_output(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any]
) -> None:
    register_plugin(plait_example)

    @plait.step(validate=["non_empty"])
    async def blank(ctx: plait.StepContext) -> str:
        return "   "

    with pytest.raises(plait.StepFailed) as failed:
        await plait.Pipeline("p", steps={"blank": blank}).run({}, runtime=plait_runtime)
    cause = failed.value.cause
    assert isinstance(cause, plait.ValidationFailed)
    assert (cause.validator, cause.reason) == ("non_empty", "the output is blank")
