"""The customer-support router (the seeds' routing example).

A classifier agent labels each query with an Enum (Technical Support, Billing Inquiry,
General Question); a ``plait.Router`` sends it to the handler agent for that label. A
label that cannot be parsed even after re-asks routes to the router's fallback branch
instead of failing the query.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

import plait

from ._session import DemoSession, escape

FAKE_LATENCY = 0.0
CLASSIFY_RETRIES = 2


class Intent(enum.Enum):
    TECHNICAL_SUPPORT = "Technical Support"
    BILLING_INQUIRY = "Billing Inquiry"
    GENERAL_QUESTION = "General Question"


QUERIES = (
    ("My internet connection is not working.", Intent.TECHNICAL_SUPPORT),
    ("I think there is a mistake on my last invoice.", Intent.BILLING_INQUIRY),
    ("What are your opening hours?", Intent.GENERAL_QUESTION),
    ("The app crashes every time I open the settings page.", Intent.TECHNICAL_SUPPORT),
    ("I was charged twice for my subscription this month.", Intent.BILLING_INQUIRY),
)

CLASSIFY_PROMPT = (
    "Classify the user's query into one of these categories: {categories}.\n\n"
    "<user_query>\n{query}\n</user_query>"
)
HANDLERS = {
    Intent.TECHNICAL_SUPPORT: (
        "You are a helpful technical support agent.",
        "Give a short first response to this query and ask which troubleshooting steps "
        "they already tried.\n\n<user_query>\n{query}\n</user_query>"),
    Intent.BILLING_INQUIRY: (
        "You are a helpful billing support agent.",
        "Acknowledge the concern in this query in one or two sentences and ask for their "
        "account number.\n\n<user_query>\n{query}\n</user_query>"),
    Intent.GENERAL_QUESTION: (
        "You are a general assistant.",
        "In one sentence, apologize that you are not sure how to help with this query."
        "\n\n<user_query>\n{query}\n</user_query>"),
}


@attrs.frozen
class Classification:
    """The label (``None`` when no reply could be parsed) and how many asks it took."""

    intent: Intent | None
    attempts: int
    problem: str | None = None


def support_pipeline(model: str) -> plait.Pipeline:
    classifier = plait.Agent(model=model, output=Intent, temperature=0, max_tokens=16,
                             system="You classify customer support queries.")

    @plait.step
    async def classify(ctx: plait.StepContext) -> Classification:
        categories = ", ".join(i.value for i in Intent)
        prompt = CLASSIFY_PROMPT.format(categories=categories, query=ctx.input("query"))
        try:
            reply = await ctx.ask(classifier, prompt, retries=CLASSIFY_RETRIES)
        except (plait.OutputParseError, plait.ValidationFailed) as exc:  # the fallback takes it
            return Classification(None, CLASSIFY_RETRIES + 1, str(exc).split("; raw")[0])
        return Classification(reply.output, reply.attempts)

    def route(ctx: plait.StepContext) -> Any:
        intent = ctx.dep("classify").intent
        return intent if intent is not None else "unclassified"

    branches = {
        intent: plait.Agent(model=model, system=system, temperature=0, max_tokens=60,
                            name=intent.value).as_step(prompt)
        for intent, (system, prompt) in HANDLERS.items()
    }
    router = plait.Router("handle", route=route, branches=branches,
                          fallback=Intent.GENERAL_QUESTION)
    return plait.Pipeline("support", steps={"classify": classify, "handle": router},
                          deps={"handle": ["classify"]})


async def main(session: DemoSession) -> None:
    session.heading("Customer-support router: classify, then route to a handler")
    pipeline = support_pipeline(session.model)
    as_expected = 0
    for n, (query, expected) in enumerate(QUERIES, 1):
        session.say(f"\n[bold]Query {n}:[/] {escape(query)}")
        result = await session.run(pipeline, {"query": query}, title=f"query {n}")
        if result is None:
            continue
        got: Classification = result.outputs["classify"]
        if got.intent is None:
            session.say(f"  [yellow]intent: unparseable after {got.attempts} attempts "
                        f"({escape(got.problem or '')}); the router's fallback took it[/]")
        else:
            mark = "[green]✓[/]" if got.intent is expected else \
                f"[red]✗ expected {expected.value}[/]"
            asks = "" if got.attempts == 1 else f" [yellow](after {got.attempts} attempts)[/]"
            session.say(f"  intent: {got.intent.value} {mark}{asks}")
            as_expected += got.intent is expected
        session.say(f"  routed to: {result.steps['handle'].route}")
        session.say(f"  reply: {escape(str(result.output).strip())}")
    session.say(f"\n{as_expected} of {len(QUERIES)} queries got the expected label.")



# -- the scripted model behind `--model fake:...` ---------------------------------------

_FAKE_HANDLER_REPLIES = {
    "technical support agent": "Sorry about that! Which troubleshooting steps have you "
                               "tried so far, such as restarting your router?",
    "billing support agent": "I'm sorry about the invoice; I'll look into it. Could you "
                             "give me your account number?",
    "general assistant": "I apologize, but I'm not sure how to help with that.",
}


def fake_reply(request: plait.ModelRequest) -> Any:
    """Labels like a small model would: the opening-hours query first gets "General" (no
    such label, so plait re-asks), the crashing app never gets a valid label (so the
    router's fallback takes it), and the double charge gets the wrong label."""
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    users = [m.content for m in request.messages if m.role == "user"]
    if request.json_schema is None:
        return next(text for key, text in _FAKE_HANDLER_REPLIES.items() if key in system)
    query = users[0].split("<user_query>", 1)[1].lower()
    if "invoice" in query:
        return "Billing Inquiry"
    if "internet" in query:
        return "Technical Support"
    if "opening hours" in query:
        return "General Question" if len(users) > 1 else "General"
    if "crashes" in query:
        return "Tech"
    return "General Question"
