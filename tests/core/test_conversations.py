"""Conversations and few-shot examples: ``ctx.ask(agent, [plait.Message, ...])`` and
``Agent(examples=...)``, as the fake provider receives them, and through JSON."""

from __future__ import annotations

import enum
import json
from typing import Any

import attrs
import plait
import pytest
from plait_testing import FakeProvider

M = plait.Message


class Intent(enum.Enum):
    BILLING = "billing"
    TECH = "tech"


@attrs.frozen
class Ticket:
    intent: Intent
    urgent: bool


CONVERSATION = [M("user", "My card was charged twice."), M("assistant", "Which order?"),
                M("user", "Order 1182.")]


async def test_a_conversation_is_sent_turn_by_turn_after_the_system_prompt(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("I have refunded the second charge.")
    agent = plait.Agent("fake:support", system="You are a support agent.")

    async def answer(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, ctx.input("conversation"))).output

    result = await plait.Pipeline("chat", steps={"answer": answer}).run(
        {"conversation": CONVERSATION}, runtime=plait_runtime)
    assert result.output == "I have refunded the second charge."
    [request] = fake_provider.requests
    assert request.messages == (M("system", "You are a support agent."), *CONVERSATION)


async def test_examples_become_few_shot_turns_with_typed_outputs_as_json(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script({"intent": "tech", "urgent": False})
    agent = plait.Agent("fake:triage", system="Triage the message.", output=Ticket, examples=[
        ("I was charged twice!", Ticket(Intent.BILLING, urgent=True)),
        ("The app crashes on start", Ticket(Intent.TECH, urgent=False)),
    ])
    reply = await agent.ask("How do I reset my password?", runtime=plait_runtime)
    assert reply.output == Ticket(Intent.TECH, urgent=False)
    [request] = fake_provider.requests
    assert request.messages == (
        M("system", "Triage the message."),
        M("user", "I was charged twice!"),
        M("assistant", '{"intent": "billing", "urgent": true}'),
        M("user", "The app crashes on start"),
        M("assistant", '{"intent": "tech", "urgent": false}'),
        M("user", "How do I reset my password?"),
    )


async def test_examples_are_written_as_the_schema_asks_wrapped_or_plain(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script({"value": "tech"}, "Bonjour")
    wrapped = plait.Agent("fake:a", output=Intent, examples=[("charged twice", Intent.BILLING)])
    plain = plait.Agent("fake:b", examples=[("hello", "bonjour")])
    await wrapped.ask("crash", runtime=plait_runtime)
    await plain.ask("good day", runtime=plait_runtime)
    first, second = fake_provider.requests
    assert first.messages[1] == M("assistant", '{"value": "billing"}')
    assert second.messages == (M("user", "hello"), M("assistant", "bonjour"),
                               M("user", "good day"))


async def test_examples_and_a_conversation_together_and_a_re_ask_keeps_it_all(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("not json", {"value": "billing"})
    agent = plait.Agent("fake:a", output=Intent, examples=[("crash", Intent.TECH)])
    reply = await agent.ask(CONVERSATION, runtime=plait_runtime)
    assert reply.output is Intent.BILLING
    first, second = fake_provider.requests
    assert first.messages == (M("user", "crash"), M("assistant", '{"value": "tech"}'),
                              *CONVERSATION)
    assert second.messages[:len(first.messages)] == first.messages
    assert second.messages[-2] == M("assistant", "not json")


@pytest.mark.parametrize(("examples", "error", "words"), [
    ([("hi", 3)], TypeError, ["examples[0] output 3", "a JSON object {\"value\": \"billing\""]),
    ([("hi",)], TypeError, ["examples[0] must be an (input, output) pair"]),
    ([("ok", Intent.TECH), (42, Intent.TECH)], TypeError, ["examples[1] input must be a str"]),
])
def test_a_bad_example_is_refused_when_the_agent_is_built(
    examples: list[Any], error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(error) as info:
        plait.Agent("fake:a", output=Intent, examples=examples)
    for word in words:
        assert word in str(info.value)


def test_a_text_agent_wants_text_examples() -> None:
    with pytest.raises(TypeError, match=r"examples\[0\] output must be a str"):
        plait.Agent("fake:a", examples=[("hi", {"greeting": "hello"})])


@pytest.mark.parametrize(("prompt", "error", "words"), [
    ([M("user", "hi"), "and this"], TypeError, ["conversation turn 1 must be a plait.Message"]),
    ([M("tool", "x")], ValueError, ["turn 0 has role 'tool'", "'system', 'user', 'assistant'"]),
    ([M("user", 3)], TypeError, ["turn 0 content must be a str, got int"]),
    ([M("system", "Be brief."), M("assistant", "Hello")], ValueError, ["at least one user turn"]),
    ([], ValueError, ["at least one user turn"]),
    (b"bytes", TypeError, ["a prompt must be a str or a sequence of plait.Message, got bytes"]),
])
async def test_a_bad_conversation_fails_before_any_request(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider, prompt: Any,
    error: type[Exception], words: list[str],
) -> None:
    with pytest.raises(error) as info:
        await plait.Agent("fake:a").ask(prompt, runtime=plait_runtime)
    for word in words:
        assert word in str(info.value)
    assert fake_provider.calls == 0


async def test_a_conversation_round_trips_through_json(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    fake_provider.script("Refunded.")
    agent = plait.Agent("fake:support")

    async def chat(ctx: plait.StepContext) -> list[plait.Message]:
        history = list(ctx.input("conversation"))
        reply = await ctx.ask(agent, history)
        return [*history, M("assistant", reply.text)]

    result = await plait.Pipeline("chat", steps={"chat": chat}).run(
        {"conversation": CONVERSATION}, runtime=plait_runtime)
    text = result.to_json(runtime=plait_runtime)
    data = json.loads(text)["outputs"]["chat"]
    assert data[-1] == {"role": "assistant", "content": "Refunded."}
    again = plait_runtime.converter.structure(data, list[plait.Message])
    assert again == [*CONVERSATION, M("assistant", "Refunded.")]
    assert [M(**turn) for turn in json.loads(json.dumps([attrs.asdict(m) for m in again]))] \
        == again


def test_turns_alternate_for_the_apis_that_need_it() -> None:
    request = plait.ModelRequest("m", (
        M("system", "Be brief."), M("assistant", "Hi! How can I help?"), M("user", "Refund"),
        M("user", "order 1182"), M("assistant", "Done."), M("system", "Say thanks."),
        M("user", "Thanks")))
    assert request.turns() == [
        ("user", ["(start of the conversation)"]), ("assistant", ["Hi! How can I help?"]),
        ("user", ["Refund", "order 1182"]), ("assistant", ["Done."]), ("user", ["Thanks"])]
    assert request.system == "Be brief.\n\nSay thanks."
