"""The customer-support router (the seeds' routing example).

A classifier agent labels each query with an Enum (Technical Support, Billing Inquiry,
General Question); a ``plait.Router`` sends it to the handler agent for that label. A
label that cannot be parsed even after re-asks routes to the router's fallback branch
instead of failing the query.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

import plait

from ._text import escape

if TYPE_CHECKING:
    from ._session import DemoSession

FAKE_LATENCY = 0.0
CLASSIFY_RETRIES = 2


class Intent(enum.Enum):
    TECHNICAL_SUPPORT = "Technical Support"
    BILLING_INQUIRY = "Billing Inquiry"
    FEATURE_REQUEST = "Feature Request"
    GENERAL_QUESTION = "General Question"  # no handler of its own: the router's fallback


QUERIES = (
    ("My internet connection is not working.", Intent.TECHNICAL_SUPPORT),
    ("I think there is a mistake on my last invoice.", Intent.BILLING_INQUIRY),
    ("Could you add dark mode to the dashboard?", Intent.FEATURE_REQUEST),
    ("What are your opening hours?", Intent.GENERAL_QUESTION),
    ("The app crashes every time I open the settings page.", Intent.TECHNICAL_SUPPORT),
    ("I was charged twice for my subscription this month.", Intent.BILLING_INQUIRY),
)

CLASSIFY_PROMPT = (
    "Classify the user's query into one of these categories: {categories}.\n\n"
    "<user_query>\n{query}\n</user_query>"
)
# Words that give each kind of query away. A small model labels almost everything alike,
# so a label must be supported by the query's own words (a validation gate, re-asked when
# it is not); when the model never gives a supported label, the one label the words
# support decides, and with none the router's fallback answers. Code decides what it can.
CUES = {
    Intent.TECHNICAL_SUPPORT: re.compile(
        r"\b(crash\w*|error\w*|bugs?|not working|broken|fails?|freez\w*)\b", re.I),
    Intent.BILLING_INQUIRY: re.compile(
        r"\b(invoices?|charged?|bill(ed|ing)?|refunds?|payments?|subscriptions?)\b", re.I),
    Intent.FEATURE_REQUEST: re.compile(
        r"\b(could you add|please add|add an?|feature|would be (nice|great))\b", re.I),
}
HANDLERS = {
    Intent.TECHNICAL_SUPPORT: (
        "You are a helpful technical support agent.",
        "Give a short first response to this query and ask which troubleshooting steps "
        "they already tried.\n\n<user_query>\n{query}\n</user_query>"),
    Intent.BILLING_INQUIRY: (
        "You are a helpful billing support agent.",
        "Acknowledge the concern in this query in one or two sentences and ask for their "
        "account number.\n\n<user_query>\n{query}\n</user_query>"),
    Intent.FEATURE_REQUEST: (
        "You are a product manager answering feature requests.",
        "Thank the customer for this suggestion in one or two sentences and say it goes to "
        "the product team.\n\n<user_query>\n{query}\n</user_query>"),
}
GENERAL = (
    "You are a general assistant.",
    "In one sentence, apologize that you are not sure how to help with this query, and "
    "say a colleague will follow up.\n\n<user_query>\n{query}\n</user_query>",
)
FALLBACK = "general (fallback)"


@attrs.frozen
class Classification:
    """The label (``None``: the fallback answers), how many asks it took, and why the
    model's own label was not used (``None`` when it was)."""

    intent: Intent | None
    attempts: int
    overruled: str | None = None


def supported(query: str) -> list[Intent]:
    """The labels the query's words support: General Question when no other's are there."""
    return [intent for intent, cue in CUES.items() if cue.search(query)] or \
        [Intent.GENERAL_QUESTION]


def fits(query: str) -> Callable[[Intent], str | None]:
    """Validation gate: the label is one the query's words support."""

    def label_fits(label: Intent) -> str | None:
        found = supported(query)
        if label in found:
            return None
        cue = CUES.get(found[0])
        word = cue.search(query) if cue else None
        if word is None:
            return f"nothing in the query points to {label.value!r}"
        return (f"{label.value!r} does not fit a query that says {word.group(0)!r}; "
                f"that is a {found[0].value}")

    return label_fits


def support_pipeline(model: str) -> plait.Pipeline:
    classifier = plait.Agent(model=model, output=Intent, temperature=0, max_tokens=16,
                             system="You classify customer support queries.")

    @plait.step
    async def classify(ctx: plait.StepContext) -> Classification:
        categories = ", ".join(i.value for i in Intent)
        query = ctx.input("query")
        prompt = CLASSIFY_PROMPT.format(categories=categories, query=query)
        try:
            reply = await ctx.ask(classifier, prompt, retries=CLASSIFY_RETRIES,
                                  validate=[fits(query)])
        except (plait.OutputParseError, plait.ValidationFailed) as exc:
            found = supported(query)  # one: it decides; several: the fallback answers
            why = getattr(exc, "reason", None) or str(exc).split("; raw")[0]
            return Classification(found[0] if len(found) == 1 else None, CLASSIFY_RETRIES + 1,
                                  why)
        return Classification(reply.output, reply.attempts)

    def route(ctx: plait.StepContext) -> Any:
        intent = ctx.dep("classify").intent
        return intent if intent in HANDLERS else FALLBACK

    def handler(name: str, system: str, prompt: str) -> plait.AgentStep:
        return plait.Agent(model=model, system=system, temperature=0, max_tokens=60,
                           name=name).as_step(prompt)

    branches: dict[Any, plait.Step] = {
        intent: handler(intent.value, *texts) for intent, texts in HANDLERS.items()}
    branches[FALLBACK] = handler("General", *GENERAL)
    router = plait.Router("handle", route=route, branches=branches, fallback=FALLBACK)
    return plait.Pipeline("support", steps={"classify": classify, "handle": router},
                          deps={"handle": ["classify"]})


async def main(session: DemoSession) -> None:
    session.heading("Customer-support router: classify, then route to a handler")
    pipeline = support_pipeline(session.model)
    as_expected = 0
    routes: dict[str, int] = {}
    for n, (query, expected) in enumerate(QUERIES, 1):
        session.say(f"\n[bold]Query {n}:[/] {escape(query)}")
        result = await session.run(pipeline, {"query": query}, title=f"query {n}")
        if result is None:
            continue
        got: Classification = result.outputs["classify"]
        asks = "" if got.attempts == 1 else f" [yellow](after {got.attempts} attempts)[/]"
        if got.overruled is None:
            session.say(f"  model's label: {got.intent.value if got.intent else '-'}{asks}")
        else:
            session.say(f"  model's label: [yellow]none accepted in {got.attempts} attempts "
                        f"(last: {escape(got.overruled)})[/]")
        if got.intent is None:
            session.say("  label: none fits; the router's fallback takes it")
        else:
            mark = "[green]✓[/]" if got.intent is expected else \
                f"[red]✗ expected {expected.value}[/]"
            by = "" if got.overruled is None else " [yellow](decided by the query's words)[/]"
            session.say(f"  label: {got.intent.value} {mark}{by}")
            as_expected += got.intent is expected
        route = str(result.steps["handle"].route)
        routes[route] = routes.get(route, 0) + 1
        session.say(f"  routed to: {escape(route)}")
        session.say(f"  reply: {escape(str(result.output).strip())}")
    session.say(f"\n{as_expected} of {len(QUERIES)} queries got the expected label.")
    every = [*(i.value for i in HANDLERS), FALLBACK]
    missed = [r for r in every if r not in routes]
    session.say("routes taken: " + ", ".join(f"{r} x{routes[r]}" for r in every if r in routes)
                + (f" [yellow](not taken: {', '.join(missed)})[/]" if missed
                   else " (all four handlers answered)"))



# -- the scripted model behind `--model fake:...` ---------------------------------------

_FAKE_HANDLER_REPLIES = {
    "technical support agent": "Sorry about that! Which troubleshooting steps have you "
                               "tried so far, such as restarting your router?",
    "billing support agent": "I'm sorry about the invoice; I'll look into it. Could you "
                             "give me your account number?",
    "product manager": "Thank you for the suggestion! I've passed it to our product team.",
    "general assistant": "I apologize, I'm not sure how to help with that; a colleague "
                         "will follow up.",
}


def fake_reply(request: plait.ModelRequest) -> Any:
    """Labels like a small model would: the opening-hours query first gets "General" (no
    such label, so plait re-asks), the crashing app never gets a valid label (so the
    router's fallback takes it), and the double charge is first labelled Technical
    Support, which the label gate rejects ("charged" is a billing word)."""
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    users = [m.content for m in request.messages if m.role == "user"]
    if request.json_schema is None:
        return next(text for key, text in _FAKE_HANDLER_REPLIES.items() if key in system)
    query = users[0].split("<user_query>", 1)[1].lower()
    if "invoice" in query:
        return "Billing Inquiry"
    if "internet" in query:
        return "Technical Support"
    if "dark mode" in query:
        return "Feature Request"
    if "opening hours" in query:
        return "General Question" if len(users) > 1 else "General"
    if "crashes" in query:
        return "Tech"
    return "Billing Inquiry" if len(users) > 1 else "Technical Support"
