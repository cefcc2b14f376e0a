"""StepContext: inputs, declared dependencies only, application deps, ids."""

from __future__ import annotations

from typing import Any

import plait
import pytest


async def run_one(runtime: plait.Runtime, fn: Any, inputs: dict[str, Any] | None = None,
                  **kwargs: Any) -> plait.PipelineResult:
    return await plait.Pipeline("ctx", steps={"s": fn}).run(inputs or {}, runtime=runtime,
                                                           **kwargs)


async def test_input_returns_the_run_input(plait_runtime: plait.Runtime) -> None:
    async def s(ctx: plait.StepContext) -> Any:
        return (ctx.input("text"), ctx.input("absent", None), ctx.input("n", 0))

    result = await run_one(plait_runtime, s, {"text": "hello", "n": 3})
    assert result.output == ("hello", None, 3)


async def test_a_missing_input_names_it_and_what_was_given(
    plait_runtime: plait.Runtime,
) -> None:
    async def s(ctx: plait.StepContext) -> Any:
        return ctx.input("question")

    with pytest.raises(plait.StepFailed) as info:
        await run_one(plait_runtime, s, {"text": "x", "lang": "en"})
    cause = info.value.cause
    assert isinstance(cause, plait.MissingInput)
    assert isinstance(cause, KeyError)  # still catchable as a KeyError
    assert cause.name == "question"
    assert cause.available == ("text", "lang")
    assert str(cause) == "missing input 'question' (inputs given: lang, text)"


async def test_a_missing_input_with_no_inputs_says_none(plait_runtime: plait.Runtime) -> None:
    async def s(ctx: plait.StepContext) -> Any:
        return ctx.input("q")

    with pytest.raises(plait.StepFailed, match=r"inputs given: none"):
        await run_one(plait_runtime, s)


async def test_dep_reads_only_declared_dependencies(plait_runtime: plait.Runtime) -> None:
    async def secret(ctx: plait.StepContext) -> str:
        return "secret"

    async def public(ctx: plait.StepContext) -> str:
        return "public"

    async def nosy(ctx: plait.StepContext) -> str:
        assert ctx.dep("public") == "public"
        return ctx.dep("secret")  # completed, but not declared

    pipe = plait.Pipeline("filter", steps={"secret": secret, "public": public, "nosy": nosy},
                          deps={"nosy": ["public", "secret"][:1]}, output="nosy")
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    cause = info.value.cause
    assert isinstance(cause, plait.UndeclaredDependency)
    assert (cause.step_id, cause.requested, cause.declared) == ("nosy", "secret", ("public",))
    assert "step 'nosy' read 'secret', which is not one of its declared dependencies (public)" in (
        str(cause))
    assert info.value.partial is not None
    assert info.value.partial.outputs["secret"] == "secret"  # it ran; nosy could not see it


async def test_dependencies_maps_only_declared_ids(plait_runtime: plait.Runtime) -> None:
    async def a(ctx: plait.StepContext) -> int:
        return 1

    async def b(ctx: plait.StepContext) -> int:
        return 2

    async def c(ctx: plait.StepContext) -> dict[str, Any]:
        return dict(ctx.dependencies)

    pipe = plait.Pipeline("p", steps={"a": a, "b": b, "c": c}, deps={"c": ["b"]}, output="c")
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == {"b": 2}


async def test_deps_are_the_application_objects(plait_runtime: plait.Runtime) -> None:
    class Services:
        db = {"user": "ada"}

    services = Services()

    seen: list[Any] = []

    async def s(ctx: plait.StepContext) -> Any:
        seen.append(ctx.deps)
        return ctx.deps.db["user"]

    result = await run_one(plait_runtime, s, deps=services)
    assert seen == [services]
    assert result.output == "ada"


async def test_deps_default_to_none(plait_runtime: plait.Runtime) -> None:
    async def s(ctx: plait.StepContext) -> Any:
        return ctx.deps

    assert (await run_one(plait_runtime, s)).output is None


async def test_ids_and_run_id(plait_runtime: plait.Runtime) -> None:
    async def s(ctx: plait.StepContext) -> Any:
        return [ctx.run_id, ctx.step_id, ctx.idempotency_key, ctx.attempt]

    result = await run_one(plait_runtime, s, run_id="run-42")
    assert result.run_id == "run-42"
    assert result.output == ["run-42", "s", "run-42/s", 1]


async def test_idempotency_key_is_stable_across_retries(plait_runtime: plait.Runtime) -> None:
    keys: list[str] = []

    @plait.step(retries=2, retry_delay=0)
    async def flaky(ctx: plait.StepContext) -> str:
        keys.append(ctx.idempotency_key)
        if ctx.attempt < 3:
            raise ConnectionError("try again")
        return ctx.idempotency_key

    result = await run_one(plait_runtime, flaky)
    assert len(keys) == 3
    assert len(set(keys)) == 1
    assert result.output == keys[0]


async def test_idempotency_key_differs_per_step_and_per_run(
    plait_runtime: plait.Runtime,
) -> None:
    async def key(ctx: plait.StepContext) -> str:
        return ctx.idempotency_key

    pipe = plait.Pipeline("k", steps={"a": key, "b": key}, output="a")
    first = await pipe.run({}, runtime=plait_runtime)
    second = await pipe.run({}, runtime=plait_runtime)
    keys = {first.outputs["a"], first.outputs["b"], second.outputs["a"], second.outputs["b"]}
    assert len(keys) == 4
    assert first.run_id != second.run_id


async def test_usage_and_budget_without_model_calls(plait_runtime: plait.Runtime) -> None:
    async def s(ctx: plait.StepContext) -> Any:
        return (ctx.usage, ctx.budget_left)

    result = await run_one(plait_runtime, s)
    assert result.output == (plait.Usage(), None)

    pipe = plait.Pipeline("b", steps={"s": s}, config=plait.Config(budget=plait.usd("0.25")))
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == (plait.Usage(), plait.usd("0.25"))


@pytest.mark.parametrize("inputs", [["text"], "text", 3])
async def test_inputs_must_be_a_mapping(plait_runtime: plait.Runtime, inputs: Any) -> None:
    async def s(ctx: plait.StepContext) -> None:
        return None

    pipe = plait.Pipeline("p", steps={"s": s})
    with pytest.raises(TypeError, match="inputs must be a mapping"):
        await pipe.run(inputs, runtime=plait_runtime)


async def test_inputs_may_be_omitted(plait_runtime: plait.Runtime) -> None:
    async def s(ctx: plait.StepContext) -> Any:
        return dict(ctx.inputs)

    result = await plait.Pipeline("p", steps={"s": s}).run(runtime=plait_runtime)
    assert result.output == {}


async def test_the_run_keeps_a_copy_of_the_inputs(plait_runtime: plait.Runtime) -> None:
    inputs = {"x": 1}

    async def s(ctx: plait.StepContext) -> Any:
        inputs["x"] = 2  # the caller changing its dict mid-run does not change the run
        return ctx.input("x")

    result = await run_one(plait_runtime, s, inputs)
    assert result.output == 1


async def test_a_function_step_can_be_called_directly_with_a_context(
    plait_runtime: plait.Runtime,
) -> None:
    @plait.step
    async def double(ctx: plait.StepContext) -> int:
        return 2 * ctx.input("n")

    @plait.step
    async def outer(ctx: plait.StepContext) -> int:
        return await double(ctx)  # a unit-testable function, reused with the same context

    result = await plait.Pipeline("p", steps={"outer": outer}).run({"n": 21},
                                                                  runtime=plait_runtime)
    assert result.output == 42


async def test_a_finished_steps_context_is_freed_without_the_cycle_collector(
        plait_runtime: plait.Runtime) -> None:
    """A step's scope lets go of its context when the step ends, so the two are freed by
    reference counting (a chain of steps otherwise fed the cycle collector two objects a
    step); a context kept past its step still works and still finds itself."""
    import gc
    import weakref

    from plait._context import scope_of

    seen: list[weakref.ref[plait.StepContext]] = []
    kept: list[plait.StepContext] = []

    async def first(ctx: plait.StepContext) -> int:
        seen.append(weakref.ref(ctx))
        return 1

    async def second(ctx: plait.StepContext) -> int:
        kept.append(ctx)
        return 2

    pipe = plait.Pipeline("p", steps={"a": first, "b": second}, deps={"b": ["a"]})
    enabled = gc.isenabled()
    gc.disable()
    try:
        result = await pipe.run({}, runtime=plait_runtime)
        assert seen[0]() is None  # freed at once, the collector off
    finally:
        if enabled:
            gc.enable()
    assert result.output == 2
    ctx = kept[0]
    assert ctx.path == "b"
    assert scope_of(ctx).ctx is ctx
