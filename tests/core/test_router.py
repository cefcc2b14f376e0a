"""Routers: code picks a branch, the branch runs, and the choice is recorded."""

from __future__ import annotations

import enum
from typing import Any

import plait
import pytest


class Intent(enum.Enum):
    BILLING = "billing"
    TECH = "tech"
    OTHER = "other"


def branch(name: str) -> plait.Step:
    async def answer(ctx: plait.StepContext) -> str:
        return f"{name}: {ctx.dep('classify')}"

    return plait.step(name=name)(answer)


async def classify(ctx: plait.StepContext) -> str:
    return ctx.input("intent")


def support(router: plait.Router) -> plait.Pipeline:
    return plait.Pipeline("support", steps={"classify": classify, "route": router},
                          deps={"route": ["classify"]})


async def test_the_chosen_branch_runs_and_is_recorded(plait_runtime: plait.Runtime) -> None:
    ran: list[str] = []

    def tracked(name: str) -> plait.Step:
        async def answer(ctx: plait.StepContext) -> str:
            ran.append(name)
            return f"{name}: {ctx.dep('classify')}"

        return plait.step(name=name)(answer)

    router = plait.Router("route", route=lambda ctx: ctx.dep("classify"),
                          branches={"billing": tracked("billing"), "tech": tracked("tech")})
    result = await support(router).run({"intent": "tech"}, runtime=plait_runtime)
    assert result.output == "tech: tech"
    assert ran == ["tech"]
    record = result.steps["route"]
    assert record.route == "tech"
    assert list(record.children) == ["tech"]
    child = record.children["tech"]
    assert (child.step_id, child.status, child.attempts) == ("tech", "ok", 1)


async def test_enum_keys_route_by_member_or_value(plait_runtime: plait.Runtime) -> None:
    branches = {Intent.BILLING: branch("billing"), Intent.TECH: branch("tech")}
    by_member = plait.Router("route", route=lambda ctx: Intent(ctx.dep("classify")),
                             branches=branches)
    by_value = plait.Router("route", route=lambda ctx: ctx.dep("classify"), branches=branches)
    for router in (by_member, by_value):
        result = await support(router).run({"intent": "billing"}, runtime=plait_runtime)
        assert result.output == "billing: billing"
        assert result.steps["route"].route == "billing"


async def test_an_async_route_function(plait_runtime: plait.Runtime) -> None:
    async def route(ctx: plait.StepContext) -> Intent:
        return Intent.TECH

    router = plait.Router("route", route=route,
                          branches={Intent.BILLING: branch("billing"), Intent.TECH: branch("tech")})
    result = await support(router).run({"intent": "whatever"}, runtime=plait_runtime)
    assert result.output == "tech: whatever"


async def test_an_unknown_key_lists_the_valid_keys(plait_runtime: plait.Runtime) -> None:
    router = plait.Router("route", route=lambda ctx: "refund",
                          branches={"billing": branch("billing"), "tech": branch("tech")})
    with pytest.raises(plait.StepFailed) as info:
        await support(router).run({"intent": "x"}, runtime=plait_runtime)
    cause = info.value.cause
    assert isinstance(cause, plait.UnknownRoute)
    assert (cause.router, cause.key, cause.valid) == ("route", "refund", ("billing", "tech"))
    assert str(cause) == ("router 'route' chose 'refund', which is not a branch; "
                          "valid keys: 'billing', 'tech'")
    assert info.value.attempts == 1  # a wrong key is not retried
    assert info.value.partial is not None
    assert info.value.partial.outputs == {"classify": "x"}


async def test_an_unknown_enum_member_lists_the_valid_keys(
    plait_runtime: plait.Runtime,
) -> None:
    router = plait.Router("route", route=lambda ctx: Intent.OTHER,
                          branches={Intent.BILLING: branch("billing"), Intent.TECH: branch("tech")})
    with pytest.raises(plait.StepFailed) as info:
        await support(router).run({"intent": "x"}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.UnknownRoute)
    assert info.value.cause.key == "other"
    assert info.value.cause.valid == ("billing", "tech")


async def test_a_fallback_takes_unknown_keys(plait_runtime: plait.Runtime) -> None:
    router = plait.Router("route", route=lambda ctx: ctx.dep("classify"),
                          branches={"billing": branch("billing"), "human": branch("human")},
                          fallback="human")
    result = await support(router).run({"intent": "refund"}, runtime=plait_runtime)
    assert result.output == "human: refund"
    assert result.steps["route"].route == "human"
    known = await support(router).run({"intent": "billing"}, runtime=plait_runtime)
    assert known.output == "billing: billing"


async def test_an_enum_fallback(plait_runtime: plait.Runtime) -> None:
    router = plait.Router("route", route=lambda ctx: "nonsense",
                          branches={Intent.BILLING: branch("billing"), Intent.OTHER: branch("o")},
                          fallback=Intent.OTHER)
    result = await support(router).run({"intent": "x"}, runtime=plait_runtime)
    assert result.steps["route"].route == "other"


async def test_a_failing_branch_fails_the_router_with_its_record(
    plait_runtime: plait.Runtime,
) -> None:
    @plait.step(retries=1, retry_delay=0)
    async def broken(ctx: plait.StepContext) -> None:
        raise ValueError(f"branch attempt {ctx.attempt}")

    router = plait.Router("route", route=lambda ctx: "b", branches={"b": broken})
    with pytest.raises(plait.StepFailed) as info:
        await support(router).run({"intent": "x"}, runtime=plait_runtime)
    assert info.value.step_id == "route"
    assert isinstance(info.value.cause, ValueError)
    assert str(info.value.cause) == "branch attempt 2"  # the branch's own retries ran
    assert info.value.partial is not None
    record = info.value.partial.steps["route"]
    assert (record.status, record.route) == ("failed", "b")
    child = record.children["b"]
    assert (child.status, child.attempts) == ("failed", 2)
    assert child.error == plait.ErrorInfo("ValueError", "branch attempt 2")


async def test_a_branch_has_its_own_idempotency_key(plait_runtime: plait.Runtime) -> None:
    async def key(ctx: plait.StepContext) -> list[str]:
        return [ctx.step_id, ctx.idempotency_key]

    router = plait.Router("route", route=lambda ctx: "k", branches={"k": key})
    result = await support(router).run({"intent": "x"}, runtime=plait_runtime, run_id="r")
    assert result.output == ["k", "r/route/k"]


async def test_a_router_runs_outside_a_pipeline_too(plait_runtime: plait.Runtime) -> None:
    router = plait.Router("route", route=lambda ctx: ctx.input("go"),
                          branches={"x": lambda ctx: "took x", "y": lambda ctx: "took y"})
    pipe = plait.Pipeline("solo", steps={"route": router})
    result = await pipe.run({"go": "y"}, runtime=plait_runtime)
    assert result.output == "took y"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"name": ""}, "a router needs a non-empty name"),
    ({"route": "billing"}, "route must be a function of the context"),
    ({"branches": {}}, "branches must be a non-empty mapping"),
    ({"branches": {"a": 42}}, r"router 'r', branch 'a': expected a plait.Step"),
    ({"fallback": "missing"}, r"fallback 'missing' is not a branch; branches: 'a'"),
])
def test_definition_errors(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"name": "r", "route": lambda ctx: "a",
                            "branches": {"a": lambda ctx: 1}, **kwargs}
    with pytest.raises(plait.PipelineDefinitionError, match=match):
        plait.Router(args.pop("name"), **args)


async def test_the_route_taken_is_visible_on_the_context(plait_runtime: plait.Runtime) -> None:
    seen: list[Any] = []

    class Watch:
        @plait.hookimpl
        def plait_wrap_step(self, ctx: plait.StepContext) -> Any:
            yield
            seen.append((ctx.step_id, ctx.route))

    plait_runtime.register(Watch())
    router = plait.Router("r", route=lambda ctx: "b", branches={"a": lambda c: 1, "b": lambda c: 2})
    await plait.Pipeline("p", {"r": router}).run({}, runtime=plait_runtime)
    assert ("r", "b") in seen
