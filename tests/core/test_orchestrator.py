"""Orchestrator-worker: the seeds' billing / return / status example on the fake, and every
way a plan goes wrong (unknown task types, failing workers, a runaway plan) reported."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from typing import Any

import anyio.lowlevel
import attrs
import plait
import pytest
from plait_testing import FakeProvider, provider_plugin


class QueryType(enum.Enum):
    BILLING_INQUIRY = "BillingInquiry"
    PRODUCT_RETURN = "ProductReturn"
    STATUS_UPDATE = "StatusUpdate"
    REFUND = "Refund"  # no worker handles it


@attrs.frozen
class Task:
    """A sub-task of the customer's query, with the parameters its type needs."""

    type: QueryType
    invoice_number: str | None = None
    product_name: str | None = None
    reason_for_return: str | None = None
    order_id: str | None = None


@attrs.frozen
class Plan:
    tasks: list[Task]


@attrs.frozen
class BillingTask:
    invoice_number: str
    user_concern: str
    action_taken: str
    resolution_eta: str


@attrs.frozen
class ReturnTask:
    product_name: str
    reason_for_return: str
    rma_number: str
    shipping_instructions: str


@attrs.frozen
class StatusTask:
    order_id: str
    current_status: str
    carrier: str
    tracking_number: str
    expected_delivery: str


QUERY = (
    "Hi, I'm writing to you because I have a question about invoice #INV-7890. It seems "
    "higher than I expected.\nAlso, I would like to return the 'SuperWidget 5000' I bought "
    "because it's not compatible with my system.\nFinally, can you give me an update on my "
    "order #A-12345?"
)

PLAN = {"tasks": [
    {"type": "BillingInquiry", "invoice_number": "INV-7890", "product_name": None,
     "reason_for_return": None, "order_id": None},
    {"type": "ProductReturn", "invoice_number": None, "product_name": "SuperWidget 5000",
     "reason_for_return": "not compatible with my system", "order_id": None},
    {"type": "StatusUpdate", "invoice_number": None, "product_name": None,
     "reason_for_return": None, "order_id": "A-12345"},
]}

EMAIL = "Dear Customer,\n\nThank you for reaching out! ...\n\nBest regards,\nCustomer Support"

PLANNER = plait.Agent(
    model="fake:planner", output=Plan, temperature=0, max_tokens=400,
    system="You are a master orchestrator. Break the user's query down into sub-tasks: "
           "BillingInquiry (invoice_number), ProductReturn (product_name, reason_for_return), "
           "StatusUpdate (order_id).")
EXTRACTOR = plait.Agent(model="fake:extractor", temperature=0, max_tokens=60)
WRITER = plait.Agent(model="fake:writer", max_tokens=400,
                     system="You are a master communicator. Write one friendly email.")


async def handle_billing(ctx: plait.StepContext, task: Task) -> BillingTask:
    assert task.invoice_number is not None
    concern = await ctx.ask(EXTRACTOR, (
        f"A user has a query regarding invoice '{task.invoice_number}'. Extract the concern "
        f"about this invoice from the query.\n<user_query>\n{ctx.input('query')}\n</user_query>"))
    return BillingTask(task.invoice_number, concern.output.strip(),
                       "An investigation (Case ID: INV_CASE_5678) has been opened regarding "
                       "your concern.", "2 business days")


def handle_return(ctx: plait.StepContext, task: Task) -> ReturnTask:  # sync: runs in a thread
    assert task.product_name is not None
    assert task.reason_for_return is not None
    rma = "RMA-12345"
    return ReturnTask(task.product_name, task.reason_for_return, rma,
                      f"Please pack the '{task.product_name}' securely. Write the RMA number "
                      f"({rma}) clearly on the outside of the package.")


@plait.step
async def handle_status(ctx: plait.StepContext) -> StatusTask:
    task: Task = ctx.item
    assert task.order_id is not None
    return StatusTask(task.order_id, "Shipped", "SuperFast Shipping", "SF987654", "Tomorrow")


WORKERS = {QueryType.BILLING_INQUIRY: handle_billing, QueryType.PRODUCT_RETURN: handle_return,
           QueryType.STATUS_UPDATE: handle_status}


@pytest.fixture
def fake(register_plugin: Callable[..., Any]) -> FakeProvider:
    fake = FakeProvider()
    register_plugin(provider_plugin(fake, prices={"*": plait.Price.per_million("1", "2")}))
    return fake


async def orchestrate(runtime: plait.Runtime, orchestrator: plait.Orchestrator,
                      query: str = QUERY) -> plait.PipelineResult:
    pipe = plait.Pipeline("support", steps={"orchestrate": orchestrator},
                          config=plait.Config(budget=plait.usd("1")))
    return await pipe.run({"query": query}, runtime=runtime)


def synthesizer_prompt(fake: FakeProvider) -> str:
    [request] = [r for r in fake.requests if r.model == "writer"]
    return request.messages[-1].content


def plan_of(*tasks: dict[str, Any]) -> dict[str, Any]:
    keys = ("invoice_number", "product_name", "reason_for_return", "order_id")
    return {"tasks": [{**dict.fromkeys(keys), **t} for t in tasks]}


# -- the seeds' example --------------------------------------------------------------------


async def test_billing_return_and_status_from_the_seeds(
    plait_runtime: plait.Runtime, fake: FakeProvider
) -> None:
    fake.script(PLAN, model="planner")
    fake.script("It seems higher than I expected.", model="extractor")
    fake.script(EMAIL, model="writer")
    orchestrator = plait.Orchestrator(PLANNER, WORKERS, WRITER)

    run = await orchestrate(plait_runtime, orchestrator)
    result = run.output
    assert isinstance(result, plait.OrchestratorResult)
    assert result.ok
    assert [(t.index, t.type, t.status) for t in result.tasks] == [
        (0, "BillingInquiry", "ok"), (1, "ProductReturn", "ok"), (2, "StatusUpdate", "ok")]
    assert result.tasks[0].task == Task(QueryType.BILLING_INQUIRY, invoice_number="INV-7890")
    assert result.tasks[0].output == BillingTask(
        "INV-7890", "It seems higher than I expected.",
        "An investigation (Case ID: INV_CASE_5678) has been opened regarding your concern.",
        "2 business days")
    assert result.tasks[1].output.rma_number == "RMA-12345"
    assert result.tasks[2].output == StatusTask("A-12345", "Shipped", "SuperFast Shipping",
                                                "SF987654", "Tomorrow")
    assert result.answer == EMAIL

    # the planner saw the query; the extractor the query and its invoice
    planner_request = next(r for r in fake.requests if r.model == "planner")
    assert planner_request.messages[-1].content == QUERY
    assert planner_request.json_schema is not None
    extractor_request = next(r for r in fake.requests if r.model == "extractor")
    assert "invoice 'INV-7890'" in extractor_request.messages[-1].content
    assert QUERY in extractor_request.messages[-1].content

    # the synthesizer got the request and every worker's report
    prompt = synthesizer_prompt(fake)
    assert prompt.startswith(f"Request:\n{QUERY}\n")
    for line in (
        '- task 1 (BillingInquiry): ok: {"invoice_number": "INV-7890", "user_concern": '
        '"It seems higher than I expected."',
        '- task 2 (ProductReturn): ok: {"product_name": "SuperWidget 5000", '
        '"reason_for_return": "not compatible with my system", "rma_number": "RMA-12345"',
        '- task 3 (StatusUpdate): ok: {"order_id": "A-12345", "current_status": "Shipped", '
        '"carrier": "SuperFast Shipping", "tracking_number": "SF987654", '
        '"expected_delivery": "Tomorrow"}',
    ):
        assert line in prompt

    # three model calls (planner, extractor, writer), all in the run's usage and cost
    assert run.usage.calls == 3 == fake.calls
    assert run.steps["orchestrate"].usage == run.usage
    assert run.usage.cost > 0
    assert json.loads(run.to_json())["outputs"]["orchestrate"]["tasks"][0]["task"] == {
        "type": "BillingInquiry", "invoice_number": "INV-7890", "product_name": None,
        "reason_for_return": None, "order_id": None}


# -- nothing is dropped silently ------------------------------------------------------------


async def test_a_task_of_an_unknown_type_is_reported_to_the_result_and_the_synthesizer(
    plait_runtime: plait.Runtime, fake: FakeProvider
) -> None:
    fake.script(plan_of({"type": "Refund", "order_id": "A-99"},
                        {"type": "StatusUpdate", "order_id": "A-12345"}), model="planner")
    fake.script(EMAIL, model="writer")
    run = await orchestrate(plait_runtime, plait.Orchestrator(PLANNER, WORKERS, WRITER))
    result = run.output
    assert not result.ok
    refund, status = result.tasks
    assert (refund.type, refund.status, refund.output) == ("Refund", "unknown_type", None)
    assert refund.task == Task(QueryType.REFUND, order_id="A-99")
    assert refund.error == plait.ErrorInfo(
        "UnknownTaskType", "no worker for task type 'Refund'; workers: BillingInquiry, "
                           "ProductReturn, StatusUpdate")
    assert status.status == "ok"
    prompt = synthesizer_prompt(fake)
    assert ('- task 1 (Refund): unknown_type: "no worker for task type \'Refund\'; workers: '
            'BillingInquiry, ProductReturn, StatusUpdate"; the task: {"type": "Refund", '
            '"invoice_number": null, "product_name": null, "reason_for_return": null, '
            '"order_id": "A-99"}') in prompt
    assert "- task 2 (StatusUpdate): ok:" in prompt
    assert "Say plainly which parts could not be handled." in prompt


async def test_a_failing_worker_is_reported_and_the_others_finish(
    plait_runtime: plait.Runtime, fake: FakeProvider
) -> None:
    @plait.step
    async def broken_status(ctx: plait.StepContext) -> StatusTask:
        raise RuntimeError("tracking service down")

    fake.script(PLAN, model="planner")
    fake.script("It seems higher than I expected.", model="extractor")
    fake.script(EMAIL, model="writer")
    workers = {**WORKERS, QueryType.STATUS_UPDATE: broken_status}
    run = await orchestrate(plait_runtime, plait.Orchestrator(PLANNER, workers, WRITER))
    result = run.output
    assert [t.status for t in result.tasks] == ["ok", "ok", "failed"]
    failed = result.tasks[2]
    assert failed.error == plait.ErrorInfo("RuntimeError", "tracking service down")
    assert failed.task.order_id == "A-12345"
    assert result.tasks[0].output.invoice_number == "INV-7890"
    assert result.answer == EMAIL
    assert ('- task 3 (StatusUpdate): failed: "tracking service down"; the task: '
            '{"type": "StatusUpdate"') in synthesizer_prompt(fake)


async def test_a_runaway_plan_is_cut_at_max_tasks_and_the_rest_reported(
    plait_runtime: plait.Runtime, fake: FakeProvider
) -> None:
    ran: list[str] = []

    async def status(ctx: plait.StepContext, task: Task) -> str:
        assert task.order_id is not None
        ran.append(task.order_id)
        return f"{task.order_id}: shipped"

    orders = [f"A-{i}" for i in range(6)]
    fake.script(plan_of(*({"type": "StatusUpdate", "order_id": o} for o in orders)),
                model="planner")
    fake.script(EMAIL, model="writer")
    orchestrator = plait.Orchestrator(PLANNER, {QueryType.STATUS_UPDATE: status}, WRITER,
                                      max_tasks=4)
    result = (await orchestrate(plait_runtime, orchestrator)).output
    assert sorted(ran) == orders[:4]
    assert [t.status for t in result.tasks] == ["ok"] * 4 + ["over_limit"] * 2
    assert [t.task.order_id for t in result.tasks] == orders  # none dropped
    assert result.tasks[4].error == plait.ErrorInfo(
        "OverLimit", "the plan had 6 tasks; max_tasks=4")
    prompt = synthesizer_prompt(fake)
    assert '- task 6 (StatusUpdate): over_limit: "the plan had 6 tasks; max_tasks=4"' in prompt
    assert '"order_id": "A-5"' in prompt


# -- shapes of planners, workers and synthesizers -------------------------------------------


@attrs.frozen
class Lookup:
    word: str


@attrs.frozen
class Translate:
    word: str
    language: str


async def test_workers_keyed_by_class_and_a_plan_that_is_a_plain_list(
    plait_runtime: plait.Runtime, fake: FakeProvider
) -> None:
    planner = plait.Agent(model="fake:planner", output=list[Lookup], max_tokens=100)
    fake.script([{"word": "plait"}, {"word": "weave"}], model="planner")

    async def lookup(ctx: plait.StepContext, task: Lookup) -> str:
        return task.word.upper()

    orchestrator = plait.Orchestrator(planner, {Lookup: lookup, Translate: lookup},
                                      prompt="Words in: {query}")
    result = (await orchestrate(plait_runtime, orchestrator, "plait and weave")).output
    assert [(t.type, t.output) for t in result.tasks] == [("Lookup", "PLAIT"),
                                                          ("Lookup", "WEAVE")]
    assert result.answer is None  # no synthesizer
    assert fake.requests[0].messages[-1].content == "Words in: plait and weave"


@pytest.mark.parametrize("sync", [True, False])
async def test_a_function_synthesizer_gets_every_report(
    plait_runtime: plait.Runtime, fake: FakeProvider, sync: bool
) -> None:
    fake.script(plan_of({"type": "StatusUpdate", "order_id": "A-1"},
                        {"type": "Refund", "order_id": "A-2"}), model="planner")
    seen: list[Sequence[plait.TaskReport]] = []

    def summary(ctx: plait.StepContext, reports: Sequence[plait.TaskReport]) -> str:
        seen.append(reports)
        return ", ".join(f"{r.type}={r.status}" for r in reports)

    async def async_summary(ctx: plait.StepContext,
                            reports: Sequence[plait.TaskReport]) -> str:
        return summary(ctx, reports)

    orchestrator = plait.Orchestrator(PLANNER, WORKERS, summary if sync else async_summary)
    result = (await orchestrate(plait_runtime, orchestrator)).output
    assert result.answer == "StatusUpdate=ok, Refund=unknown_type"
    assert seen[0] == result.tasks


async def test_workers_run_in_parallel_up_to_limit(
    plait_runtime: plait.Runtime, fake: FakeProvider
) -> None:
    running = 0
    peak = 0

    async def status(ctx: plait.StepContext, task: Task) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        running -= 1
        return "ok"

    fake.script(plan_of(*({"type": "StatusUpdate", "order_id": str(i)} for i in range(5))),
                model="planner")
    orchestrator = plait.Orchestrator(PLANNER, {QueryType.STATUS_UPDATE: status}, limit=2)
    result = (await orchestrate(plait_runtime, orchestrator)).output
    assert result.ok
    assert peak == 2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"planner": "fake:planner"}, "planner must be a plait.Agent"),
    ({"workers": {}}, "workers must be a non-empty mapping"),
    ({"workers": {"Lookup": 42}}, "worker for 'Lookup' must be a step or a function"),
    ({"max_tasks": 0}, "max_tasks must be an int >= 1, got 0"),
    ({"synthesizer": "write an email"}, "synthesizer must be an Agent or a function"),
])
def test_definition_errors(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"planner": PLANNER, "workers": WORKERS, **kwargs}
    with pytest.raises(plait.PipelineDefinitionError, match=message):
        plait.Orchestrator(**args)


async def test_a_plan_that_is_not_a_list_is_refused_clearly(
        plait_runtime: plait.Runtime, fake_provider: Any) -> None:
    fake_provider.script("just some text")
    orch = plait.Orchestrator(plait.Agent("fake:m"), {"billing": lambda ctx, t: t})
    with pytest.raises(plait.StepFailed) as info:
        await plait.Pipeline("p", {"o": orch}).run({"query": "hi"}, runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.OutputParseError)
    assert "must return a list of tasks" in str(info.value.cause)


async def test_the_task_type_field_is_configurable(
        plait_runtime: plait.Runtime, fake_provider: Any) -> None:
    @attrs.frozen
    class Query:
        query_type: str
        text: str

    fake_provider.script([{"query_type": "status", "text": "where is it"}])
    orch = plait.Orchestrator(plait.Agent("fake:m", output=list[Query]),
                              {"status": lambda ctx, t: f"status of {t.text}"},
                              type_field="query_type")
    result = await plait.Pipeline("p", {"o": orch}).run({"query": "q"}, runtime=plait_runtime)
    assert [(t.type, t.status, t.output) for t in result.output.tasks] == [
        ("status", "ok", "status of where is it")]
