"""Validation gates: a rejected output never reaches a dependent, and says why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import plait
import pytest
from plait_testing import FakeProvider, provider_plugin

FAST = plait.Config(retry_delay=0, retry_max_delay=0)


def short(value: Any) -> str | None:
    return None if len(value) <= 5 else f"{len(value)} characters, more than 5"


def _step(value: Any, calls: list[str] | None = None, name: str = "s") -> plait.FunctionStep:
    @plait.step(name=name)
    async def produce(ctx: plait.StepContext) -> Any:
        if calls is not None:
            calls.append(ctx.step_id)
        return value

    return produce


async def test_a_rejection_stops_dependents_and_keeps_independent_branches(
    plait_runtime: plait.Runtime,
) -> None:
    ran: list[str] = []

    @plait.step
    async def uses(ctx: plait.StepContext) -> str:
        ran.append("uses")
        return str(ctx.dep("draft"))

    pipe = plait.Pipeline(
        "gate", steps={"draft": _step("much too long"), "uses": uses, "side": _step("ok"),
                       "end": _step("end")},
        deps={"uses": ["draft"], "end": ["uses", "side"]},
        step_config={"draft": plait.Config(validate=[short])})
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)

    err = info.value
    assert err.step_id == "draft"
    assert isinstance(err.cause, plait.ValidationFailed)
    assert (err.cause.step_id, err.cause.validator, err.cause.reason) == (
        "draft", "short", "13 characters, more than 5")
    assert "step 'draft': validator 'short' rejected the output: 13 characters" in str(err)
    assert ran == []  # the dependent never saw the bad output
    assert err.partial is not None
    assert "draft" not in err.partial.outputs
    assert err.partial.outputs == {"side": "ok"}
    steps = err.partial.steps
    assert (steps["draft"].status, steps["uses"].status, steps["end"].status) == (
        "failed", "skipped", "skipped")
    assert steps["draft"].error == plait.ErrorInfo("ValidationFailed", str(err.cause))


@pytest.mark.parametrize("verdict", [None, True])
async def test_none_and_true_pass(plait_runtime: plait.Runtime, verdict: Any) -> None:
    pipe = plait.Pipeline("p", steps={"s": _step("x")},
                          config=plait.Config(validate=[lambda _v: verdict]))
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == "x"


@pytest.mark.parametrize(("verdict", "reason"), [
    (False, "rejected the output"),
    ("", "rejected the output"),
    ("no digits allowed", "no digits allowed"),
])
async def test_false_or_a_reason_string_rejects(
    plait_runtime: plait.Runtime, verdict: Any, reason: str
) -> None:
    def digits(_value: Any) -> Any:
        return verdict

    pipe = plait.Pipeline("p", steps={"s": _step("x1")}, config=plait.Config(validate=digits))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    cause = info.value.cause
    assert isinstance(cause, plait.ValidationFailed)
    assert (cause.step_id, cause.validator, cause.reason) == ("s", "digits", reason)


async def test_a_validator_raising_validation_failed_is_named_for_the_step(
    plait_runtime: plait.Runtime,
) -> None:
    def strict(_value: Any) -> None:
        raise plait.ValidationFailed("", "", "missing a title")

    def custom(_value: Any) -> None:
        raise plait.ValidationFailed("elsewhere", "title_check", "no title")

    for validator, name, reason in [(strict, "strict", "missing a title"),
                                    (custom, "title_check", "no title")]:
        pipe = plait.Pipeline("p", steps={"s": _step({})},
                              config=plait.Config(validate=[validator]))
        with pytest.raises(plait.StepFailed) as info:
            await pipe.run({}, runtime=plait_runtime)
        cause = info.value.cause
        assert isinstance(cause, plait.ValidationFailed)
        assert (cause.step_id, cause.validator, cause.reason) == ("s", name, reason)


async def test_async_validators_and_order(plait_runtime: plait.Runtime) -> None:
    seen: list[str] = []

    async def first(value: Any) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append("first")

    def second(value: Any) -> str:
        seen.append("second")
        return "second says no"

    def third(value: Any) -> None:
        seen.append("third")

    pipe = plait.Pipeline("p", steps={"s": _step("x")},
                          config=plait.Config(validate=[first, second, third]))
    with pytest.raises(plait.StepFailed, match="second says no"):
        await pipe.run({}, runtime=plait_runtime)
    assert seen == ["first", "second"]  # the first rejection ends the gate


async def test_a_plain_step_is_retried_after_a_rejection(plait_runtime: plait.Runtime) -> None:
    outputs = iter(["far too long", "fine"])
    attempts: list[int] = []

    @plait.step(retries=2, validate=[short])
    async def write(ctx: plait.StepContext) -> str:
        attempts.append(ctx.attempt)
        return next(outputs)

    pipe = plait.Pipeline("p", steps={"write": write}, config=FAST)
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == "fine"
    assert attempts == [1, 2]
    assert result.steps["write"].attempts == 2


async def test_retries_exhausted_report_the_last_rejection(plait_runtime: plait.Runtime) -> None:
    calls: list[str] = []
    pipe = plait.Pipeline("p", steps={"s": _step("always too long", calls)},
                          config=plait.Config(retries=1, retry_delay=0, validate=[short]))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert info.value.attempts == 2
    assert calls == ["s", "s"]
    assert isinstance(info.value.cause, plait.ValidationFailed)


async def test_a_named_validator_comes_from_a_plugin(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any]
) -> None:
    class Validators:
        @plait.hookimpl
        def plait_register_validators(self, register: Callable[..., None]) -> None:
            register("no_shouting", lambda v: not v.isupper() or "it is all capitals")

    register_plugin(Validators())
    pipe = plait.Pipeline("p", steps={"s": _step("HELLO")},
                          config=plait.Config(validate=["no_shouting"]))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    cause = info.value.cause
    assert isinstance(cause, plait.ValidationFailed)
    assert (cause.validator, cause.reason) == ("no_shouting", "it is all capitals")


async def test_an_unknown_validator_name_fails_before_the_step_runs(
    plait_runtime: plait.Runtime,
) -> None:
    calls: list[str] = []
    pipe = plait.Pipeline("p", steps={"s": _step("x", calls)},
                          config=plait.Config(validate=["no_such_check"], retries=3))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    cause = info.value.cause
    assert isinstance(cause, plait.UnknownPlugin)
    assert (cause.kind, cause.name) == ("validator", "no_such_check")
    assert info.value.attempts == 1
    assert calls == []  # nothing was paid for


@pytest.mark.parametrize("verdict", [0, 1, b"yes", ["reason"], 0.5])
async def test_a_bad_verdict_is_a_type_error(plait_runtime: plait.Runtime, verdict: Any) -> None:
    def sloppy(_value: Any) -> Any:
        return verdict

    pipe = plait.Pipeline("p", steps={"s": _step("x")},
                          config=plait.Config(validate=[sloppy]))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    cause = info.value.cause
    assert isinstance(cause, TypeError)
    assert f"validator 'sloppy' returned {verdict!r}" in str(cause)


async def test_a_two_parameter_validator_gets_the_step_context(
    plait_runtime: plait.Runtime,
) -> None:
    seen: list[tuple[str, str, Any]] = []

    def matches_source(value: Any, ctx: plait.StepContext) -> str | None:
        seen.append((ctx.step_id, ctx.run_id, ctx.dep("source")))
        return None if value == ctx.dep("source").upper() else "does not match the source"

    @plait.step(validate=[matches_source])
    async def shout(ctx: plait.StepContext) -> str:
        return str(ctx.dep("source")).upper()

    pipe = plait.Pipeline("p", steps={"source": _step("abc"), "shout": shout},
                          deps={"shout": ["source"]})
    result = await pipe.run({}, runtime=plait_runtime, run_id="r1")
    assert result.output == "ABC"
    assert seen == [("shout", "r1", "abc")]


async def test_the_step_timeout_covers_the_gate(plait_runtime: plait.Runtime) -> None:
    async def slow(_value: Any) -> None:
        await anyio.sleep_forever()

    pipe = plait.Pipeline("p", steps={"s": _step("x")},
                          config=plait.Config(timeout=0.05, validate=[slow]))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.StepTimeout)


async def test_stop_is_not_validated(plait_runtime: plait.Runtime) -> None:
    def never(_value: Any) -> str:
        return "never"

    pipe = plait.Pipeline("p", steps={"s": _step(plait.Stop("done"))},
                          config=plait.Config(validate=[never]))
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.stopped_early


async def test_step_config_overrides_the_pipeline_validators(
    plait_runtime: plait.Runtime,
) -> None:
    pipe = plait.Pipeline("p", steps={"a": _step("long text"), "b": _step("tiny")},
                          deps={"b": ["a"]}, config=plait.Config(validate=[short]),
                          step_config={"a": plait.Config(validate=[])})
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.outputs == {"a": "long text", "b": "tiny"}


# -- model steps: re-ask with the reason -------------------------------------------------


def _user_messages(request: plait.ModelRequest) -> list[str]:
    return [m.content for m in request.messages if m.role == "user"]


async def test_ctx_ask_re_asks_with_the_reason(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("a very long answer", "brief")
    agent = plait.Agent(model="fake:m")

    @plait.step
    async def answer(ctx: plait.StepContext) -> str:
        reply = await ctx.ask(agent, "Answer briefly.", validate=[short])
        assert reply.attempts == 2
        return str(reply.output)

    result = await plait.Pipeline("p", steps={"answer": answer}).run({}, runtime=plait_runtime)
    assert result.output == "brief"
    first, second = fake_provider.requests
    assert _user_messages(first) == ["Answer briefly."]
    assert second.messages[-2] == plait.Message("assistant", "a very long answer")
    assert "18 characters, more than 5" in second.messages[-1].content
    assert result.usage.calls == 2


async def test_as_step_re_asks_then_fails_naming_step_validator_and_reason(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any]
) -> None:
    fake = FakeProvider(lambda request: f"too long, reply {len(request.messages)}")
    register_plugin(provider_plugin(fake, "fake2"))
    agent = plait.Agent(model="fake2:m")
    ran: list[str] = []

    @plait.step
    async def after(ctx: plait.StepContext) -> None:
        ran.append("after")

    pipe = plait.Pipeline(
        "p", steps={"write": agent.as_step("Write {topic}", retries=1, validate=[short]),
                    "after": after},
        deps={"after": ["write"]}, config=FAST)
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({"topic": "x"}, runtime=plait_runtime)
    cause = info.value.cause
    assert isinstance(cause, plait.ValidationFailed)
    assert (cause.step_id, cause.validator, cause.reason) == (
        "write", "short", "17 characters, more than 5")
    assert ran == []
    first, second = fake.requests[:2]
    assert _user_messages(first) == ["Write x"]
    assert second.messages[-2] == plait.Message("assistant", "too long, reply 1")
    assert "17 characters, more than 5" in second.messages[-1].content


async def test_a_context_validator_can_ask_a_model_charged_to_the_run(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("draft", model="priced")
    fake_provider.script("yes", model="free")
    checker = plait.Agent(model="fake:free", max_tokens=5)

    async def approved(value: Any, ctx: plait.StepContext) -> str | None:
        reply = await ctx.ask(checker, f"Is {value!r} fine?", validate=[])
        return None if reply.output == "yes" else "the checker said no"

    writer = plait.Agent(model="fake:priced", max_tokens=5)
    pipe = plait.Pipeline("p", steps={"w": writer.as_step("Write.", validate=[approved])},
                          config=plait.Config(budget=plait.usd("1")))
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == "draft"
    assert result.usage.calls == 2
    assert result.steps["w"].usage.calls == 2


async def test_step_validators_check_the_step_output_not_each_reply(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("one")
    agent = plait.Agent(model="fake:m")

    def is_record(value: Any) -> str | None:
        return None if isinstance(value, dict) else "not a record"

    @plait.step(validate=[is_record])
    async def build(ctx: plait.StepContext) -> dict[str, str]:
        return {"text": (await ctx.ask(agent, "Say one word.")).output}

    result = await plait.Pipeline("p", steps={"build": build}).run({}, runtime=plait_runtime)
    assert result.output == {"text": "one"}
    assert fake_provider.calls == 1


async def test_a_model_step_that_used_its_re_asks_is_not_run_again_by_step_retries(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script(*["nope"] * 10)
    step = plait.Agent("fake:m").as_step("Say yes.", retries=2,
                                         validate=[lambda v: v == "yes" or "say yes"])
    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", {"s": step}).run({}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.ValidationFailed)
    assert fake_provider.calls == 3  # 1 + 2 re-asks, not (1 + 2) * 3
    assert info.value.attempts == 1


async def test_validators_apply_to_agent_ask_outside_a_step(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("no", "yes")
    reply = await plait.Agent("fake:m").ask(
        "Say yes.", runtime=plait_runtime, validate=[lambda v: v == "yes" or "say yes"])
    assert reply.output == "yes"
    assert reply.attempts == 2
    assert "say yes" in fake_provider.requests[1].messages[-1].content
    fake_provider.script("no", "no")
    with pytest.raises(plait.ValidationFailed, match=r"agent\.ask"):
        await plait.Agent("fake:m").ask("Say yes.", runtime=plait_runtime, retries=1,
                                        validate=[lambda v: v == "yes" or "say yes"])
