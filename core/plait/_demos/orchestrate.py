"""Orchestrator-worker (the seeds' example): one message, three kinds of task.

A planner agent splits a multi-intent customer message into typed tasks (billing,
return, status); ``plait.Orchestrator`` runs each on the worker for its type, in
parallel; a synthesizer agent writes one reply from the workers' results. Workers check
their task before acting, so a task the planner got wrong is reported as failed (and the
reply says so) instead of being acted on or silently dropped.
"""

from __future__ import annotations

import enum
import json
import re
import zlib
from typing import TYPE_CHECKING, Any

import attrs

import plait

from ._text import complete_sentences, escape

if TYPE_CHECKING:
    from ._session import DemoSession

FAKE_LATENCY = 0.05
PLAN_RETRIES = 3  # re-asks of the planner before the step fails

QUERY = (
    "Hi, I'm writing to you because I have a question about invoice #INV-7890. It seems "
    "higher than I expected. Also, I would like to return the 'SuperWidget 5000' I bought "
    "because it's not compatible with my system. Finally, can you give me an update on my "
    "order #A-12345?"
)

PLANNER_SYSTEM = (
    "Split the customer's message into requests, by kind: billing (reference: the invoice "
    "number), returns (reference: the product name), status (reference: the order id). "
    "details: what the customer says about it. A kind the message does not ask for gets "
    "[]. Reply in JSON."
)
# A small model copies the shape of worked examples far better than it follows rules:
# three messages with all three kinds of request (in different orders), and their plans.
# Their references are not in the customer's message, so a plan that copies one is
# caught by the gate (plan_covers) and re-asked.
EXAMPLES = (
    ("Hello, invoice #INV-1024 charges me twice. I also want to return the 'AquaBottle 2' "
     "because it leaks. And where is my order #B-20481?",
     {"billing": [("INV-1024", "charged twice")], "returns": [("AquaBottle 2", "it leaks")],
      "status": [("B-20481", "wants to know where it is")]}),
    ("Hi, I have a question about invoice #INV-5521, it looks wrong. Also, I would like to "
     "return the 'SoundBox Mini' I bought because it's broken. Finally, can you give me an "
     "update on my order #C-88120?",
     {"billing": [("INV-5521", "it looks wrong")], "returns": [("SoundBox Mini", "it is broken")],
      "status": [("C-88120", "wants an update")]}),
    ("Please return the 'CoffeeMate 3' for me, it stopped working. Invoice #INV-6060 has a "
     "wrong amount. Where is order #E-40400?",
     {"billing": [("INV-6060", "wrong amount")],
      "returns": [("CoffeeMate 3", "it stopped working")],
      "status": [("E-40400", "wants to know where it is")]}),
)
FEW_SHOT = "".join(
    f"Message: {message}\nPlan: " + json.dumps({kind: [{"reference": r, "details": d}
                                                        for r, d in requests]
                                                 for kind, requests in plan.items()}) + "\n\n"
    for message, plan in EXAMPLES)
# What in a message asks for each kind of task: code decides what the plan must cover.
MENTIONS = {
    "billing": re.compile(r"\binvoice\s+#?[A-Z]{2,4}-?\d{3,}|\binvoice|\bbill(?:ed)?\b|"
                          r"\bcharged?\b", re.IGNORECASE),
    "return": re.compile(r"\breturn\s+(?:the|my)\s+'[^']+'|\breturn|\brefund", re.IGNORECASE),
    "status": re.compile(r"\border\s+#?[A-Z]{1,4}-\d{3,}|\btrack", re.IGNORECASE),
}
EXTRACT_PROMPT = (  # the message first: a small model then answers instead of writing on
    "Message: {query}\n\nIn one sentence, what is the customer's concern about invoice "
    "{invoice}?"
)
SYNTHESIZER_SYSTEM = "You write short, friendly emails to customers for a support team."
SYNTHESIZER_PROMPT = (
    "Write the email to the customer from these notes:\n\n{points}\n\n"
    "Start with 'Dear Customer,' and end with 'Best regards'."
)


class TaskType(enum.Enum):
    BILLING = "billing"
    RETURN = "return"
    STATUS = "status"


@attrs.frozen
class Task:
    type: TaskType
    reference: str  # the invoice number, product name or order id
    details: str


@attrs.frozen
class Request:
    reference: str
    details: str


@attrs.frozen
class Plan:
    """The planner's reply: the requests of each kind. One key per worker type is the
    constraint that keeps a small model from dropping or inventing a kind: the grammar
    makes it write all three, in this order, whatever order the message uses."""

    billing: list[Request]
    returns: list[Request]
    status: list[Request]

    @property
    def tasks(self) -> list[Task]:
        """What the Orchestrator runs: one task per request."""
        return [Task(kind, r.reference, r.details) for kind, requests in (
            (TaskType.BILLING, self.billing), (TaskType.RETURN, self.returns),
            (TaskType.STATUS, self.status)) for r in requests]


@attrs.frozen
class BillingResult:
    invoice_number: str
    user_concern: str
    action_taken: str
    resolution_eta: str


@attrs.frozen
class ReturnResult:
    product_name: str
    reason_for_return: str
    rma_number: str
    shipping_instructions: str


@attrs.frozen
class StatusResult:
    order_id: str
    current_status: str
    carrier: str
    tracking_number: str
    expected_delivery: str


class TaskRejected(ValueError):
    """A worker refused a task it cannot act on (the orchestrator reports it)."""


def planner_prompt(ctx: plait.StepContext) -> str:
    return f"{FEW_SHOT}Message: {ctx.input('query')}\nPlan:"


def plan_covers(query: str, plan: Plan) -> str | None:
    """Validation gate for a plan of ``query``: a task for every kind of request the message
    makes, each referring to something the message says. ``None`` when it passes."""
    tasks = plan.tasks
    if not tasks:
        return "the plan has no tasks"
    planned = {t.type.value for t in tasks}
    for kind, pattern in MENTIONS.items():
        found = pattern.search(query)
        if found and kind not in planned:
            return (f"the message says {found.group(0)!r}, so the plan needs a {kind} "
                    "request for it")
    for task in tasks:
        reference = task.reference.strip(" #'\"")
        if not reference or reference.casefold() not in query.casefold():
            return (f"the {task.type.value} reference {task.reference!r} is not in the "
                    "message; use the invoice number, product name or order id it gives")
    return None


def plan_of(query: str) -> type[Plan]:
    """The planner's output type for ``query``: a ``Plan`` that must pass ``plan_covers``.
    (The Orchestrator asks its planner without the step's validators, so the gate lives in
    the type: a plan that fails it is a malformed reply, and plait re-asks with why.)"""

    @attrs.frozen
    class CheckedPlan(Plan):
        def __attrs_post_init__(self) -> None:
            problem = plan_covers(query, self)
            if problem is not None:
                raise ValueError(problem)

    CheckedPlan.__name__ = CheckedPlan.__qualname__ = "Plan"
    return CheckedPlan


def _code(text: str, prefix: str = r"[A-Za-z]{1,4}") -> str | None:
    """An identifier such as INV-7890 or A-12345 in ``text``."""
    found = re.search(rf"\b{prefix}-?\d{{3,}}", text)
    return found.group(0).upper() if found else None


def _pick(key: str, n: int) -> int:
    """Deterministic stand-in for a database lookup: the same key, the same answer."""
    return zlib.crc32(key.encode()) % n


def describe(report: plait.TaskReport) -> str:
    """One task's outcome as the points of the reply (the seed's synthesizer input)."""
    out = report.output
    if isinstance(out, BillingResult):
        return (f"Regarding invoice {out.invoice_number}:\n- Your concern: {out.user_concern}"
                f"\n- Our action: {out.action_taken}\n- Expected resolution: within "
                f"{out.resolution_eta}.")
    if isinstance(out, ReturnResult):
        return (f"Regarding the return of {out.product_name}:\n- Return authorization: "
                f"{out.rma_number}\n- Instructions: {out.shipping_instructions}")
    if isinstance(out, StatusResult):
        tracking = "" if out.carrier == "N/A" else \
            f"\n- Carrier: {out.carrier}, tracking number {out.tracking_number}"
        return (f"Regarding order {out.order_id}:\n- Status: {out.current_status}{tracking}"
                f"\n- Delivery: {out.expected_delivery}")
    why = report.error.message if report.error else report.status
    return f"Regarding the {report.type} request: we could not handle it ({why})."


def orchestrate_pipeline(model: str, query: str) -> plait.Pipeline:
    """The orchestrator for ``query`` (its plan is checked against that message)."""
    extractor = plait.Agent(model=model, temperature=0, max_tokens=40,
                            system="You quote customers' concerns in one sentence.")
    writer = plait.Agent(model=model, system=SYNTHESIZER_SYSTEM, temperature=0,
                         max_tokens=160)

    async def billing(ctx: plait.StepContext, task: Task) -> BillingResult:
        invoice = _code(task.reference, "INV")
        if invoice is None:
            raise TaskRejected(f"no invoice number in the task (reference {task.reference!r})")
        concern = await ctx.ask(extractor, EXTRACT_PROMPT.format(invoice=invoice,
                                                                 query=ctx.input("query")))
        case = 1000 + _pick(invoice, 9000)
        return BillingResult(invoice, complete_sentences(concern),
                             f"An investigation (case INV_CASE_{case}) has been opened.",
                             "2 business days")

    def product_return(ctx: plait.StepContext, task: Task) -> ReturnResult:
        product = task.reference.strip(" '\"#")
        if _code(product) is not None:
            raise TaskRejected(f"{product!r} is an order or invoice number, not a product")
        if not product or product.casefold() not in ctx.input("query").casefold():
            raise TaskRejected(f"the customer did not mention a product {product!r}")
        rma = f"RMA-{10000 + _pick(product, 90000)}"
        return ReturnResult(product, task.details, rma,
                            f"Pack the '{product}' with its accessories, write {rma} on the "
                            "box and ship it to Returns, 123 Automation Lane, Tech City.")

    def status(ctx: plait.StepContext, task: Task) -> StatusResult:
        order = _code(task.reference)
        if order is None or order.startswith("INV"):
            raise TaskRejected(f"no order id in the task (reference {task.reference!r})")
        current, carrier, eta = (
            ("Processing", "N/A", "3-5 business days"),
            ("Shipped", "SuperFast Shipping", "Tomorrow"),
            ("Delivered", "Local Courier", "Delivered yesterday"),
            ("Delayed", "Standard Post", "2-3 more days"),
        )[_pick(order, 4)]
        tracking = "N/A" if carrier == "N/A" else f"{carrier[:2].upper()}{_pick(order, 10**6):06d}"
        return StatusResult(order, current, carrier, tracking, eta)

    async def synthesize(ctx: plait.StepContext, reports: list[plait.TaskReport]) -> str:
        points = "\n\n".join(describe(r) for r in reports)
        reply = await ctx.ask(writer, SYNTHESIZER_PROMPT.format(points=points))
        return complete_sentences(reply)

    orchestrator = plait.Orchestrator(
        planner=plait.Agent(model=model, system=PLANNER_SYSTEM, output=plan_of(query),
                            temperature=0, max_tokens=200),
        workers={TaskType.BILLING: billing, TaskType.RETURN: product_return,
                 TaskType.STATUS: status},
        synthesizer=synthesize,
        prompt=planner_prompt,
        max_tasks=6,
    )
    return plait.Pipeline("orchestrate", steps={"orchestrate": orchestrator},
                          step_config={"orchestrate": plait.Config(retries=PLAN_RETRIES)})


async def main(session: DemoSession) -> None:
    session.heading("Orchestrator-worker: plan typed tasks, run workers, synthesize")
    session.say(f"[bold]Customer:[/] {escape(QUERY)}\n")
    result = await session.run(orchestrate_pipeline(session.model, QUERY), {"query": QUERY},
                               title="orchestrate")
    if result is None:
        return
    done: plait.OrchestratorResult = result.output
    converter = session.runtime.converter
    session.heading("Tasks and workers")
    for report in done.tasks:
        task = report.task
        session.say(f"[bold]task {report.index + 1}[/] {report.type}: "
                    f"{escape(task.reference)!s} [dim]({escape(task.details)})[/]")
        if report.status == "ok":
            session.say("  [green]ok[/]")
            for key, value in converter.unstructure(report.output).items():
                session.say(f"    {key}: {escape(str(value))}")
        else:
            why = report.error.message if report.error else ""
            session.say(f"  [red]{report.status}[/]: {escape(why)}")
    planned = {r.type for r in done.tasks}
    missing = [t.value for t in TaskType if t.value not in planned]
    session.say(f"\nplanned {len(done.tasks)} task(s); "
                + (f"[yellow]missing: {', '.join(missing)}[/]" if missing
                   else "billing, return and status all present"))
    session.heading("Reply")
    session.say(escape(str(done.answer).strip()))



# -- the scripted model behind `--model fake:...` ---------------------------------------

_FAKE_PLAN = {
    "billing": [{"reference": "#INV-7890", "details": "It seems higher than expected."}],
    "returns": [{"reference": "SuperWidget 5000", "details": "not compatible with my system"}],
    "status": [{"reference": "#A-12345", "details": "wants an update"}],
}


def fake_reply(request: plait.ModelRequest) -> Any:
    """Plans like a small model would: the first plan copies an order id from the
    planner's examples, so the gate re-asks; the second is right."""
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    users = [m.content for m in request.messages if m.role == "user"]
    if request.json_schema is not None:
        if len(users) == 1:
            wrong = json.loads(json.dumps(_FAKE_PLAN))
            wrong["status"][0]["reference"] = "#C-88120"
            return wrong
        return _FAKE_PLAN
    if "concerns" in system:
        return "The invoice seems higher than I expected."
    codes = re.findall(r"(?:INV_CASE_\d+|RMA-\d+|A-12345|Shipped|Processing|Delivered|Delayed)",
                       users[0])
    return ("Dear Customer,\n\nThank you for writing. Here is where things stand: "
            + "; ".join(dict.fromkeys(codes)) + ".\n\nBest regards,\nCustomer Support")
