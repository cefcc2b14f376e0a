"""plait-validators as gates in real runs: names from the plugin, LLM checks, context."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import plait
import plait_validators
import pytest
from plait_testing import FakeProvider
from plait_validators import grounded, json_schema, llm_check, one_of

FAST = plait.Config(retry_delay=0, retry_max_delay=0)
PRICE = plait.Price.per_million("1", "2")


@pytest.fixture
def validators(register_plugin: Callable[..., Any]) -> None:
    register_plugin(plait_validators, name="validators")


def _const(value: Any) -> plait.FunctionStep:
    @plait.step
    async def const(ctx: plait.StepContext) -> Any:
        return value

    return const


def test_the_entry_point_loads_the_plugin() -> None:
    [ep] = [ep for ep in importlib.metadata.entry_points(group="plait")
            if ep.name == "validators"]
    assert ep.load() is plait_validators
    assert ep.dist is not None
    assert ep.dist.name == "plait-validators"


async def test_registered_names(plait_runtime: plait.Runtime, validators: None) -> None:
    assert set(plait_runtime.registry.validators) >= {"non_empty", "json"}
    pipe = plait.Pipeline("p", steps={"a": _const("  "), "b": _const("{}")},
                          step_config={"a": plait.Config(validate=["non_empty"]),
                                       "b": plait.Config(validate=["json"])},
                          output="b")
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    cause = info.value.cause
    assert isinstance(cause, plait.ValidationFailed)
    assert (cause.step_id, cause.validator, cause.reason) == (
        "a", "non_empty", "the output is only whitespace")
    assert info.value.partial is not None
    assert info.value.partial.outputs == {"b": "{}"}


async def test_a_label_outside_the_taxonomy_is_re_asked(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("refund", "Billing")
    agent = plait.Agent(model="fake:classifier")
    step = agent.as_step("Classify: {text}",
                         validate=[one_of(["billing", "returns"], ignore_case=True)])
    result = await plait.Pipeline("p", steps={"label": step}).run(
        {"text": "charged twice"}, runtime=plait_runtime)
    assert result.output == "Billing"
    reask = fake_provider.requests[1].messages[-1].content
    assert "'refund' is not one of the allowed labels: 'billing', 'returns'" in reask


# -- llm_check -------------------------------------------------------------------------


def _verdict(answer: str, reason: str) -> dict[str, str]:
    return {"reason": reason, "answer": answer}


async def test_llm_check_no_re_asks_the_writer_with_the_reason(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("You idiot, press reset.", "Please press reset.", model="writer")
    fake_provider.script(_verdict("no", "it insults the customer"),
                         _verdict("yes", "it is courteous"), model="judge")
    writer = plait.Agent(model="fake:writer", price=PRICE, max_tokens=20)
    judge = plait.Agent(model="fake:judge", price=PRICE, max_tokens=30, temperature=0)
    check = llm_check(judge, "Is the reply polite?")
    pipe = plait.Pipeline("p", steps={"reply": writer.as_step("Help: {q}", validate=[check])},
                          config=plait.Config(budget=plait.usd("1")))
    result = await pipe.run({"q": "my router is stuck"}, runtime=plait_runtime)

    assert result.output == "Please press reset."
    judged = [r for r in fake_provider.requests if r.model == "judge"]
    assert len(judged) == 2
    assert judged[0].json_schema is not None  # structured output: the CheckVerdict
    prompt = judged[0].messages[-1].content
    assert "Question: Is the reply polite?" in prompt
    assert prompt.endswith("You idiot, press reset.")
    second_write = [r for r in fake_provider.requests if r.model == "writer"][1]
    assert ("Is the reply polite? No: it insults the customer"
            in second_write.messages[-1].content)
    # the checks are model calls of the step: counted in its usage and the run's cost
    assert result.usage.calls == 4
    assert result.steps["reply"].usage.calls == 4
    assert result.usage.cost == sum(
        (PRICE.cost(plait.TokenCount(u, o)) for u, o in _tokens(fake_provider)), Decimal(0))


def _tokens(fake: FakeProvider) -> list[tuple[int, int]]:
    # the fake counts words: every message in, the reply out
    replies = ["You idiot, press reset.", json.dumps(_verdict("no", "it insults the customer")),
               "Please press reset.", json.dumps(_verdict("yes", "it is courteous"))]
    return [(sum(len(m.content.split()) for m in r.messages), len(reply.split()))
            for r, reply in zip(fake.requests, replies, strict=True)]


async def test_llm_check_is_held_to_the_run_budget(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("fine", model="writer")
    writer = plait.Agent(model="fake:writer", price=plait.Price.per_million("0", "0"),
                         max_tokens=5)
    judge = plait.Agent(model="fake:judge", price=plait.Price.per_million("1000", "1000"),
                        max_tokens=1000)
    pipe = plait.Pipeline(
        "p", steps={"w": writer.as_step("Write.", validate=[llm_check(judge, "Good?")])},
        config=plait.Config(budget=plait.usd("0.01")))
    with pytest.raises(plait.BudgetExceeded) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert info.value.limit == plait.usd("0.01")
    assert [r.model for r in fake_provider.requests] == ["writer"]  # the check was refused


async def test_llm_check_renders_structured_outputs_as_json(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script(_verdict("yes", "ok"), model="judge")

    @attrs.frozen
    class Plan:
        steps: tuple[str, ...]

    judge = plait.Agent(model="fake:judge")
    pipe = plait.Pipeline("p", steps={"plan": _const(Plan(("a", "b")))},
                          config=plait.Config(validate=[llm_check(judge, "Is it a plan?")]))
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == Plan(("a", "b"))
    prompt = fake_provider.requests[0].messages[-1].content
    assert prompt.endswith(json.dumps({"steps": ["a", "b"]}, indent=2))


async def test_llm_check_without_a_usable_verdict_is_a_plugin_error(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("maybe?", "perhaps", model="judge")
    judge = plait.Agent(model="fake:judge")
    pipe = plait.Pipeline("p", steps={"s": _const("x")},
                          config=plait.Config(validate=[llm_check(judge, "Good?")], retries=1,
                                              retry_delay=0))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    cause = info.value.cause
    assert isinstance(cause, plait.PluginError)
    assert "llm_check('Good?'): the checking agent gave no usable verdict" in str(cause)
    assert isinstance(cause.__cause__, plait.OutputParseError)


def test_llm_check_refuses_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"plait\.Agent"):
        llm_check("fake:judge", "Good?")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="yes/no question"):
        llm_check(plait.Agent(model="fake:judge"), " ")


# -- validators that read the run ------------------------------------------------------


@attrs.frozen
class Doc:
    id: str
    text: str


@attrs.frozen
class Answer:
    text: str
    citations: tuple[str, ...]


async def test_grounded_checks_citations_against_this_runs_sources(
    plait_runtime: plait.Runtime,
) -> None:
    check = grounded(sources=lambda ctx: [d.id for d in ctx.dep("retrieve")],
                     cited="citations")

    def pipe(answer: Answer) -> plait.Pipeline:
        return plait.Pipeline(
            "rag", steps={"retrieve": _const([Doc("d1", "..."), Doc("d2", "...")]),
                          "answer": _const(answer)},
            deps={"answer": ["retrieve"]}, step_config={"answer": plait.Config(validate=check)})

    ok = await pipe(Answer("x", ("d2",))).run({}, runtime=plait_runtime)
    assert ok.output == Answer("x", ("d2",))
    with pytest.raises(plait.StepFailed) as info:
        await pipe(Answer("x", ("d1", "d3"))).run({}, runtime=plait_runtime)
    cause = info.value.cause
    assert isinstance(cause, plait.ValidationFailed)
    assert (cause.validator, cause.reason) == (
        "grounded(cited='citations')",
        "the output cites 'd3', which is not among the sources given: 'd1', 'd2'")


class Cents:
    def __init__(self, n: int) -> None:
        self.n = n


async def test_json_schema_sees_the_output_as_the_runtime_serializes_it(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any]
) -> None:
    class Money:
        @plait.hookimpl
        def plait_register_converter_hooks(self, register: Callable[..., None]) -> None:
            register(Cents, lambda c: f"{c.n / 100:.2f}", lambda s, _t: Cents(round(
                float(s) * 100)))

    register_plugin(Money())
    schema = {"type": "object", "properties": {"price": {"type": "string",
                                                         "pattern": r"^\d+\.\d\d$"}}}
    pipe = plait.Pipeline("p", steps={"s": _const({"price": Cents(1999)})},
                          config=plait.Config(validate=[json_schema(schema)]))
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output["price"].n == 1999
