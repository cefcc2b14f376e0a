"""FAQ generation over three renewable-energy pages (the seeds' prompt-chaining example).

Step one asks for a list of questions (structured output); step two answers each one
from the pages and names the pages it used (structured: answer + sources), first one
question after another, then as a fan-out with ``ctx.map``. Sources are checked against
the real page titles by a validation gate, so a made-up title is re-asked, not kept.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import attrs

import plait

if TYPE_CHECKING:
    from ._session import DemoSession

N_QUESTIONS = 4
FAKE_LATENCY = 0.05  # seconds per fake call, so the fan-out's speed-up shows with the fake


@attrs.frozen
class Page:
    title: str
    content: str


PAGES = (
    Page("The Benefits of Solar Energy",
         "Solar energy is a renewable powerhouse, offering numerous environmental and economic "
         "benefits. By converting sunlight into electricity through photovoltaic (PV) panels, "
         "it reduces reliance on fossil fuels, thereby cutting down greenhouse gas emissions. "
         "Homeowners who install solar panels can significantly lower their monthly "
         "electricity bills, and in some cases, sell excess power back to the grid. While the "
         "initial installation cost can be high, government incentives and long-term savings "
         "make it a financially viable option for many. Solar power is also a key component "
         "in achieving energy independence for nations worldwide."),
    Page("Understanding Wind Turbines",
         "Wind turbines are towering structures that capture kinetic energy from the wind and "
         "convert it into electrical power. They are a critical part of the global shift "
         "towards sustainable energy. Turbines can be installed both onshore and offshore, "
         "with offshore wind farms generally producing more consistent power due to stronger, "
         "more reliable winds. The main challenge for wind energy is its intermittency: it "
         "only generates power when the wind blows. This necessitates the use of energy "
         "storage solutions, like large-scale batteries, to ensure a steady supply of "
         "electricity."),
    Page("Energy Storage Solutions",
         "Effective energy storage is the key to unlocking the full potential of renewable "
         "sources like solar and wind. Because these sources are intermittent, storing excess "
         "energy when it's plentiful and releasing it when it's needed is crucial for a stable "
         "power grid. The most common form of large-scale storage is pumped-hydro storage, but "
         "battery technologies, particularly lithium-ion, are rapidly becoming more affordable "
         "and widespread. These batteries can be used in homes, businesses, and at the utility "
         "scale to balance energy supply and demand, making our energy system more resilient "
         "and reliable."),
)
TITLES = tuple(p.title for p in PAGES)
CONTENT = "\n\n".join(f"Source Title: {p.title}\nContent: {p.content}" for p in PAGES)

QUESTIONS_PROMPT = (
    "Based on the content below, write {n} distinct questions a reader might ask.\n\n"
    "<provided_content>\n{content}\n</provided_content>"
)
ANSWER_PROMPT = (
    "Using ONLY the content below, answer the question in one or two sentences, and list "
    "the Source Title of each page you used.\n\n<question>{question}</question>\n\n"
    "<provided_content>\n{content}\n</provided_content>"
)


@attrs.frozen
class Questions:
    questions: list[str]


@attrs.frozen
class Answer:
    answer: str
    sources: list[str]


@attrs.frozen
class FAQ:
    question: str
    answer: str
    sources: list[str]


@attrs.frozen
class FAQs:
    """The answered questions, and the ones that could not be answered (with why)."""

    faqs: list[FAQ]
    failed: list[str] = attrs.field(factory=list)


def agents(model: str) -> tuple[plait.Agent, plait.Agent]:
    questioner = plait.Agent(model=model, output=Questions, temperature=0, max_tokens=160,
                             system="You write FAQ questions about web pages. Reply in JSON.")
    answerer = plait.Agent(model=model, output=Answer, temperature=0, max_tokens=160,
                           system="You answer questions from web pages and cite their Source "
                                  "Titles. Reply in JSON.")
    return questioner, answerer


def page_title(source: str) -> str | None:
    """The page a cited source names, forgiving case, quotes and a partial title."""
    wanted = re.sub(r"[^a-z0-9 ]", "", source.casefold()).strip()
    for title in TITLES:
        folded = title.casefold()
        if wanted and (wanted == folded or wanted in folded or folded in wanted):
            return title
    return None


def has_questions(value: Questions) -> str | None:
    """Validation gate: at least one non-empty question."""
    if not any(q.strip() for q in value.questions):
        return "the list of questions is empty"
    return None


def cites_pages(value: Answer) -> str | None:
    """Validation gate: a non-empty answer citing only real page titles."""
    if not value.answer.strip():
        return "the answer is empty"
    if not value.sources:
        return "no Source Title listed"
    unknown = [s for s in value.sources if page_title(s) is None]
    if unknown:
        return (f"{unknown[0]!r} is not a Source Title; the Source Titles are "
                + ", ".join(repr(t) for t in TITLES))
    return None


def distinct(questions: list[str], n: int) -> list[str]:
    seen: set[str] = set()
    kept = []
    for q in (q.strip() for q in questions):
        if q and q.casefold() not in seen:
            seen.add(q.casefold())
            kept.append(q)
    return kept[:n]


def faq_pipeline(model: str, *, fan_out: bool) -> plait.Pipeline:
    """Questions, then answers: one after another, or all at once with ``ctx.map``."""
    questioner, answerer = agents(model)

    @plait.step
    async def questions(ctx: plait.StepContext) -> list[str]:
        reply = await ctx.ask(questioner, QUESTIONS_PROMPT.format(n=N_QUESTIONS,
                                                                  content=CONTENT),
                              validate=[has_questions])
        return distinct(reply.output.questions, N_QUESTIONS)

    async def answer(ctx: plait.StepContext, question: str) -> FAQ:
        reply = await ctx.ask(answerer, ANSWER_PROMPT.format(question=question,
                                                             content=CONTENT),
                              validate=[cites_pages])
        sources = sorted({t for t in map(page_title, reply.output.sources) if t is not None})
        return FAQ(question, reply.output.answer.strip(), sources)

    @plait.step
    async def answers(ctx: plait.StepContext) -> FAQs:
        asked: list[str] = ctx.dep("questions")
        if fan_out:
            async def one(question: str) -> FAQ:
                return await answer(ctx, question)

            done = await ctx.map(one, asked, on_error="collect")
            return FAQs(list(done.values), [f"{e.item}: {e.error.type}: {e.error.message}"
                                            for e in done.errors])
        faqs, failed = [], []
        for question in asked:
            try:
                faqs.append(await answer(ctx, question))
            except plait.PlaitError as exc:  # one bad answer must not lose the others
                failed.append(f"{question}: {type(exc).__name__}: {exc}")
        return FAQs(faqs, failed)

    name = "faq-fanout" if fan_out else "faq-sequential"
    return plait.Pipeline(name, steps={"questions": questions, "answers": answers},
                          deps={"answers": ["questions"]})


async def main(session: DemoSession) -> None:
    session.heading("FAQ generation: questions, then answers with sources")
    session.say("Pages: " + ", ".join(TITLES))
    timings: dict[str, tuple[float, float | None]] = {}
    final: FAQs | None = None
    for fan_out in (False, True):
        label = "fan-out (ctx.map)" if fan_out else "sequential"
        session.say(f"\n[bold]Run {'2' if fan_out else '1'}: answers {label}[/]")
        t0 = time.perf_counter()
        result = await session.run(faq_pipeline(session.model, fan_out=fan_out), {},
                                   title=label)
        if result is None:
            continue
        final = result.output
        timings[label] = (time.perf_counter() - t0, result.steps["answers"].latency_s)
    if final is not None:
        show_faqs(session, final)
    if len(timings) == 2:
        show_speedup(session, timings)


def show_faqs(session: DemoSession, faqs: FAQs) -> None:
    session.heading("FAQ")
    for i, faq in enumerate(faqs.faqs, 1):
        session.say(f"[bold]Q{i}. {_escape(faq.question)}[/]")
        session.say(f"    {_escape(faq.answer)}")
        session.say(f"    [dim]sources: {_escape(', '.join(faq.sources))}[/]")
    for failure in faqs.failed:
        session.say(f"[red]✗ not answered: {_escape(failure)}[/]")


def show_speedup(session: DemoSession, timings: dict[str, tuple[float, float | None]]) -> None:
    (seq_run, seq_answers), (par_run, par_answers) = timings.values()
    session.heading("Timings")
    session.say(f"sequential:        run {seq_run:6.2f} s, answers step {seq_answers or 0:6.2f} s")
    session.say(f"fan-out (ctx.map): run {par_run:6.2f} s, answers step {par_answers or 0:6.2f} s")
    if seq_answers and par_answers:
        session.say(f"speed-up of the answers step: {seq_answers / par_answers:.2f}x")
    if session.provider == "local":
        session.say("[dim]The local provider runs one generation at a time per loaded model "
                    "(a llama.cpp context is not re-entrant), so the fan-out cannot overlap "
                    "the calls here; with a hosted provider the same code does.[/]")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# -- the scripted model behind `--model fake:...` ---------------------------------------

_FAKE_QUESTIONS = [
    "What are the benefits of solar energy?",
    "How do wind turbines generate electricity?",
    "Why is energy storage important for renewables?",
    "Can homeowners sell solar power back to the grid?",
]
_FAKE_ANSWERS = {
    "solar energy?": ("It cuts greenhouse gas emissions and lowers electricity bills.",
                      ["The Benefits of Solar Energy"]),
    "wind turbines": ("They turn the kinetic energy of the wind into electrical power.",
                      ["Understanding Wind Turbines"]),
    "storage": ("Solar and wind are intermittent, so storage keeps the grid stable.",
                ["Energy Storage Solutions", "understanding wind turbines"]),
    "grid": ("Yes, in some cases excess power can be sold back to the grid.",
             ["The Benefits of Solar Energy"]),
}


def fake_reply(request: plait.ModelRequest) -> Any:
    """Answers like a small model would: the first list of questions comes back cut off,
    and the first answer about wind cites a page that does not exist."""
    users = [m.content for m in request.messages if m.role == "user"]
    reasked = len(users) > 1
    if "<question>" not in users[0]:
        if not reasked:
            return '{"questions": ["What are the benefits of solar energy?", "How do wi'
        return {"questions": _FAKE_QUESTIONS}
    question = users[0].split("<question>", 1)[1].split("</question>", 1)[0]
    for key, (text, sources) in _FAKE_ANSWERS.items():
        if key in question:
            if key == "wind turbines" and not reasked:
                return {"answer": text, "sources": ["Wind Power Basics"]}
            return {"answer": text, "sources": sources}
    return {"answer": "", "sources": []}
