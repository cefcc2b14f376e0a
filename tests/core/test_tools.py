"""Tools in model calls: schemas from signatures, the bounded loop, errors told to the model,
timeouts, sync tools, budgets across rounds, records in the Reply."""

from __future__ import annotations

import functools
import json
import threading
import time
from decimal import Decimal
from typing import Annotated, Any, Literal

import anyio
import attrs
import plait
import pytest
from plait import ToolCall

pytestmark = pytest.mark.anyio


@attrs.frozen
class Order:
    id: str
    status: Literal["shipped", "pending"]


async def lookup_order(order_id: str, include_items: bool = False) -> Order:
    """Find an order by its id.

    Args:
        order_id: The order's id, such as "A1".
        include_items: Whether to list the items
            too.
    """
    return Order(order_id, "shipped")


def one_step(agent: plait.Agent, prompt: str = "where is A1?") -> plait.Pipeline:
    async def ask(ctx: plait.StepContext) -> plait.Reply:
        return await ctx.ask(agent, prompt)

    return plait.Pipeline("p", steps={"ask": plait.step(ask)})


# -- describing tools ---------------------------------------------------------------------

def test_a_tool_is_described_by_its_signature_and_docstring() -> None:
    spec = plait.Tool(lookup_order).spec
    assert spec.name == "lookup_order"
    assert spec.description == "Find an order by its id."
    assert spec.parameters == {
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "description": 'The order\'s id, such as "A1".'},
            "include_items": {"type": "boolean",
                              "description": "Whether to list the items too."},
        },
        "required": ["order_id"],
        "additionalProperties": False,
    }


def test_parameters_use_the_structured_output_types() -> None:
    def search(kind: Literal["book", "film"], limit: Annotated[int, "at most this many"],
               tags: list[str], since: Order | None = None) -> list[str]:
        """Search the catalogue.

        :param tags: words the results carry
        """
        return []

    params = plait.Tool(search).spec.parameters
    assert params["properties"]["kind"] == {"enum": ["book", "film"], "type": "string"}
    assert params["properties"]["limit"]["description"] == "at most this many"
    assert params["properties"]["tags"] == {"type": "array", "items": {"type": "string"},
                                            "description": "words the results carry"}
    assert params["properties"]["since"]["anyOf"][1] == {"type": "null"}
    assert params["required"] == ["kind", "limit", "tags"]


async def test_a_partial_binds_what_the_model_must_not_give(plait_runtime: plait.Runtime,
                                                            fake_provider: Any) -> None:
    async def find(db: dict[str, str], order_id: str) -> str:
        """Find an order."""
        return db[order_id]

    tool = plait.Tool(functools.partial(find, {"A1": "shipped"}))
    assert (tool.name, tool.description) == ("find", "Find an order.")
    assert list(tool.spec.parameters["properties"]) == ["order_id"]  # db is not shown
    fake_provider.script(ToolCall("find", {"order_id": "A1"}), "shipped")
    reply = await plait.Agent("fake:m", tools=[tool]).ask("A1?", runtime=plait_runtime)
    assert reply.tool_calls[0].result == "shipped"


@pytest.mark.parametrize(("fn", "words"), [
    (lambda x: x, "needs a name"),
    (lambda *args: 1, "needs a name"),
])
def test_a_lambda_needs_a_name(fn: Any, words: str) -> None:
    with pytest.raises(plait.ToolDefinitionError, match=words):
        plait.Agent("fake:m", tools=[fn])


def test_a_tool_that_cannot_be_described_is_refused_naming_it() -> None:
    def untyped(order_id):  # type: ignore[no-untyped-def]
        return order_id

    def star(*ids: str) -> str:
        return ""

    def odd(when: threading.Lock) -> str:
        return ""

    with pytest.raises(plait.ToolDefinitionError, match="'untyped' parameter 'order_id' has "
                                                        "no type annotation"):
        plait.Agent("fake:m", tools=[untyped])
    with pytest.raises(plait.ToolDefinitionError, match=r"'star' takes \*ids"):
        plait.Agent("fake:m", tools=[star])
    with pytest.raises(plait.ToolDefinitionError, match="'odd' cannot be described"):
        plait.Agent("fake:m", tools=[odd])
    with pytest.raises(plait.ToolDefinitionError, match="given twice"):
        plait.Agent("fake:m", tools=[lookup_order, lookup_order])
    with pytest.raises(TypeError, match="a list of functions"):
        plait.Agent("fake:m", tools=lookup_order)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_tool_rounds"):
        plait.Agent("fake:m", tools=[lookup_order], max_tool_rounds=0)
    assert issubclass(plait.ToolDefinitionError, plait.PlaitError)


# -- the loop -------------------------------------------------------------------------------

async def test_one_round_runs_the_tool_and_records_it(plait_runtime: plait.Runtime,
                                                      fake_provider: Any) -> None:
    fake_provider.script(ToolCall("lookup_order", {"order_id": "A1"}), "A1 has shipped.")
    agent = plait.Agent("fake:m", tools=[lookup_order])
    result = await one_step(agent).run(runtime=plait_runtime)
    reply = result.output
    assert reply.output == "A1 has shipped."
    assert fake_provider.calls == 2
    first, second = fake_provider.requests
    assert [t.name for t in first.tools] == ["lookup_order"]
    assert second.messages[-2] == plait.Message(
        "assistant", "", tool_calls=(ToolCall("lookup_order", {"order_id": "A1"}, "call_1"),))
    assert second.messages[-1] == plait.Message(
        "tool", '{"id": "A1", "status": "shipped"}', tool_call_id="call_1", name="lookup_order")
    (record,) = reply.tool_calls
    assert (record.name, record.arguments, record.result, record.error, record.id) == (
        "lookup_order", {"order_id": "A1"}, {"id": "A1", "status": "shipped"}, None, "call_1")
    assert record.latency_s >= 0
    assert json.loads(json.dumps(attrs.asdict(record)))["result"]["status"] == "shipped"
    assert reply.usage.calls == 2  # both requests metered
    assert result.usage.calls == 2


async def test_several_rounds_and_several_calls_in_one(plait_runtime: plait.Runtime,
                                                       fake_provider: Any) -> None:
    seen: list[str] = []
    both_started = anyio.Event()

    async def stock(sku: str) -> int:
        seen.append(sku)
        if len(seen) == 2:
            both_started.set()
        with anyio.fail_after(2):  # run one after the other, the first would wait forever
            await both_started.wait()
        return 3

    fake_provider.script(
        (ToolCall("stock", {"sku": "a"}), ToolCall("stock", {"sku": "b"})),
        ToolCall("lookup_order", {"order_id": "A1"}),
        "done")
    agent = plait.Agent("fake:m", tools=[stock, lookup_order])
    reply = (await one_step(agent).run(runtime=plait_runtime)).output
    assert [r.error for r in reply.tool_calls] == [None, None, None]  # the calls ran together
    assert sorted(seen) == ["a", "b"]
    assert [(r.name, r.result) for r in reply.tool_calls] == [
        ("stock", 3), ("stock", 3), ("lookup_order", {"id": "A1", "status": "shipped"})]
    assert [r.id for r in reply.tool_calls] == ["call_1", "call_2", "call_3"]
    assert fake_provider.calls == 3
    last = fake_provider.requests[-1].messages
    assert [m.role for m in last] == ["user", "assistant", "tool", "tool", "assistant", "tool"]


async def test_the_bound_raises_with_the_conversation(plait_runtime: plait.Runtime,
                                                      fake_provider: Any) -> None:
    again = ToolCall("lookup_order", {"order_id": "A1"})
    fake_provider.script(again, again, again, "never asked")
    agent = plait.Agent("fake:m", tools=[lookup_order], max_tool_rounds=2)
    with pytest.raises(plait.StepFailed) as raised:
        await one_step(agent).run(runtime=plait_runtime)
    error = raised.value.cause
    assert isinstance(error, plait.ToolRoundsExceeded)
    assert fake_provider.calls == 3  # two rounds ran; the third request for tools ends it
    assert len(error.tool_calls) == 2
    assert error.messages[-1].tool_calls[0].name == "lookup_order"
    assert [m.role for m in error.messages] == ["user", "assistant", "tool", "assistant",
                                                "tool", "assistant"]
    assert "max_tool_rounds=2" in str(error)


async def test_a_tool_error_is_told_to_the_model(plait_runtime: plait.Runtime,
                                                 fake_provider: Any) -> None:
    def refund(order_id: str, amount: float) -> str:
        raise LookupError(f"no order {order_id}")

    fake_provider.script(ToolCall("refund", {"order_id": "Z9", "amount": "lots"}),
                         ToolCall("refund", {"order_id": "Z9", "amount": 5}),
                         plait.ModelResponse("", tool_calls=(ToolCall("nope", {}, "x"),)),
                         "Sorry, I could not find Z9.")
    agent = plait.Agent("fake:m", tools=[refund])
    reply = (await one_step(agent).run(runtime=plait_runtime)).output
    assert reply.output == "Sorry, I could not find Z9."
    bad_args, raised, unknown = reply.tool_calls
    assert bad_args.error is not None
    assert "$.amount" in bad_args.error
    assert raised.error == "LookupError: no order Z9"
    assert raised.result is None
    assert unknown.error == "there is no tool named 'nope'; the tools are refund"
    told = [m.content for m in fake_provider.requests[-1].messages if m.role == "tool"]
    assert told[1] == "Error: LookupError: no order Z9"


async def test_a_tool_may_raise_its_errors_instead(plait_runtime: plait.Runtime,
                                                   fake_provider: Any) -> None:
    def refund(order_id: str) -> str:
        raise LookupError(f"no order {order_id}")

    fake_provider.script(ToolCall("refund", {"order_id": "Z9"}), "unused")
    agent = plait.Agent("fake:m", tools=[plait.Tool(refund, raise_errors=True)])
    with pytest.raises(plait.StepFailed) as raised:
        await one_step(agent).run(runtime=plait_runtime)
    error = raised.value.cause
    assert isinstance(error, plait.ToolFailed)
    assert isinstance(error.cause, LookupError)
    assert error.tool == "refund"
    assert error.messages[-1].role == "tool"
    assert fake_provider.calls == 1


async def test_a_slow_tool_times_out_and_the_model_is_told(plait_runtime: plait.Runtime,
                                                           fake_provider: Any) -> None:
    async def slow(q: str) -> str:
        await anyio.sleep(5)
        return "late"

    fake_provider.script(ToolCall("slow", {"q": "x"}), "answered without it")
    agent = plait.Agent("fake:m", tools=[plait.Tool(slow, timeout=0.05)])
    with anyio.fail_after(2):
        reply = (await one_step(agent).run(runtime=plait_runtime)).output
    (record,) = reply.tool_calls
    assert record.error == "TimeoutError: the tool 'slow' timed out after 0.05 s"
    assert record.latency_s < 1

    fake_provider.script(ToolCall("slow", {"q": "x"}))
    raising = plait.Agent("fake:m", tools=[plait.Tool(slow, timeout=0.05, raise_errors=True)])
    with anyio.fail_after(2), pytest.raises(plait.StepFailed) as raised:
        await one_step(raising).run(runtime=plait_runtime)
    assert isinstance(raised.value.cause, plait.ToolFailed)
    assert isinstance(raised.value.cause.cause, TimeoutError)


async def test_a_slow_sync_tool_is_abandoned_at_its_timeout(plait_runtime: plait.Runtime,
                                                            fake_provider: Any) -> None:
    def blocking(q: str) -> str:
        time.sleep(0.5)  # its thread finishes in the background
        return "late"

    fake_provider.script(ToolCall("blocking", {"q": "x"}), "answered without it")
    agent = plait.Agent("fake:m", tools=[plait.Tool(blocking, timeout=0.05)])
    started = time.perf_counter()
    reply = (await one_step(agent).run(runtime=plait_runtime)).output
    assert time.perf_counter() - started < 0.4
    assert reply.tool_calls[0].error == "TimeoutError: the tool 'blocking' timed out after 0.05 s"


async def test_a_sync_tool_runs_in_a_worker_thread(plait_runtime: plait.Runtime,
                                                   fake_provider: Any) -> None:
    threads: list[int] = []

    def blocking(path: str) -> dict[str, int]:
        threads.append(threading.get_ident())
        time.sleep(0.01)
        return {"bytes": len(path)}

    fake_provider.script(ToolCall("blocking", {"path": "abc"}), "3 bytes")
    agent = plait.Agent("fake:m", tools=[blocking])
    reply = (await one_step(agent).run(runtime=plait_runtime)).output
    assert reply.tool_calls[0].result == {"bytes": 3}
    assert threads
    assert threads[0] != threading.get_ident()


async def test_tools_with_a_typed_output(plait_runtime: plait.Runtime,
                                         fake_provider: Any) -> None:
    fake_provider.script(ToolCall("lookup_order", {"order_id": "A1"}),
                         {"id": "A1", "status": "shipped"})
    agent = plait.Agent("fake:m", output=Order, tools=[lookup_order])
    reply = await agent.ask("where is A1?", runtime=plait_runtime)  # outside a run too
    assert reply.output == Order("A1", "shipped")
    assert fake_provider.requests[0].json_schema is not None


async def test_tool_rounds_spend_no_retries(plait_runtime: plait.Runtime,
                                            fake_provider: Any) -> None:
    call = ToolCall("lookup_order", {"order_id": "A1"})
    fake_provider.script(call, call, call, "not json", '{"id": "A1", "status": "shipped"}')
    agent = plait.Agent("fake:m", output=Order, tools=[lookup_order])
    reply = await agent.ask("where?", runtime=plait_runtime, retries=1)
    assert reply.output.status == "shipped"
    assert reply.attempts == 5


# -- budgets and wrappers -----------------------------------------------------------------

async def test_every_round_is_reserved_a_budget_for_two_refuses_the_third(
        plait_runtime: plait.Runtime, fake_provider: Any) -> None:
    call = ToolCall("lookup_order", {"order_id": "A1"})
    spent = plait.TokenCount(input_tokens=0, output_tokens=10)
    asking = plait.ModelResponse("", spent, "tool_calls", tool_calls=(call,))
    fake_provider.script(asking, asking, "never sent")
    # $0.001 per output token: each request's worst case and real cost are both $0.01
    price = plait.Price.per_million("0", "1000")
    agent = plait.Agent("fake:m", tools=[lookup_order], price=price, max_tokens=10)

    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(agent, "where?")).output

    pipe = plait.Pipeline("p", steps={"ask": plait.step(ask)},
                          config=plait.Config(budget=plait.usd("0.025")))
    with pytest.raises(plait.BudgetExceeded) as raised:
        await pipe.run(runtime=plait_runtime)
    assert fake_provider.calls == 2  # the third round was refused before it was sent
    partial = raised.value.partial
    assert partial is not None
    assert partial.usage.cost == Decimal("0.02")


async def test_model_call_wrappers_see_every_round(plait_runtime: plait.Runtime,
                                                   fake_provider: Any) -> None:
    seen: list[tuple[int, int]] = []

    class Counter:
        @plait.hookimpl
        def plait_wrap_model_call(self, request: plait.ModelRequest,
                                  call: plait.ModelCall) -> Any:
            response = yield
            seen.append((call.attempt, len(response.tool_calls)))

    plait_runtime.register(Counter())
    fake_provider.script(ToolCall("lookup_order", {"order_id": "A1"}), "ok")
    await one_step(plait.Agent("fake:m", tools=[lookup_order])).run(runtime=plait_runtime)
    assert seen == [(1, 1), (2, 0)]


async def test_hook_wrap_tool_call(plait_runtime: plait.Runtime, fake_provider: Any) -> None:
    log: list[Any] = []

    class Audit:
        @plait.hookimpl
        def plait_wrap_tool_call(self, call: ToolCall, tool: plait.Tool,
                                 ctx: plait.StepContext | None) -> Any:
            log.append(("enter", call.name, call.arguments, ctx.path if ctx else None))
            try:
                result = yield
            except Exception as exc:
                log.append(("error", type(exc).__name__))
                raise
            log.append(("exit", result))

    def broken(x: int) -> int:
        raise ValueError("broken")

    plait_runtime.register(Audit())
    fake_provider.script(ToolCall("lookup_order", {"order_id": "A1"}),
                         ToolCall("broken", {"x": 1}), "ok")
    agent = plait.Agent("fake:m", tools=[lookup_order, broken])
    await one_step(agent).run(runtime=plait_runtime)
    assert log == [("enter", "lookup_order", {"order_id": "A1"}, "ask"),
                   ("exit", Order("A1", "shipped")),
                   ("enter", "broken", {"x": 1}, "ask"),
                   ("error", "ValueError")]


def test_the_worst_case_counts_tool_definitions_and_calls() -> None:
    from plait._calls import estimate_input_tokens

    spec = plait.Tool(lookup_order).spec
    plain = plait.ModelRequest("m", (plait.Message("user", "where is A1?"),))
    offered = attrs.evolve(plain, tools=(spec,))
    call = ToolCall("lookup_order", {"order_id": "A1" * 100}, "call_1")
    asked = attrs.evolve(offered, messages=(*plain.messages,
                                            plait.Message("assistant", "", tool_calls=(call,))))
    definitions = len(json.dumps(attrs.asdict(spec)).encode())
    assert estimate_input_tokens(offered) > estimate_input_tokens(plain) + definitions
    assert estimate_input_tokens(asked) > estimate_input_tokens(offered) + 200
