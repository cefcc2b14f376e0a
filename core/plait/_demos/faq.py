"""FAQ generation over three renewable-energy pages (the seeds' prompt-chaining example).

For each page, ask for a question (structured output); for each question, ask for an
answer, then for the pages it came from (structured: one yes/no per page). The workflow
runs twice: one call after another, then with every independent call fanned out with
``ctx.map``; both timings and the speed-up are printed. Validation gates catch what small
models get wrong (a statement instead of a question, a page the answer did not use), and
plait re-asks with the reason.

The output shapes are bounded on purpose: a small model asked for an open-ended list
keeps adding items until ``max_tokens`` cuts the JSON, so each call asks for one question,
one answer, or a fixed yes/no per page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

import plait

from ._text import complete_sentences, escape

if TYPE_CHECKING:
    from ._session import DemoSession

T = TypeVar("T")
U = TypeVar("U")

FAKE_LATENCY = 0.05  # seconds per fake call, so the fan-out's speed-up shows with the fake

@attrs.frozen
class Page:
    key: str  # its field in PagesUsed
    title: str
    content: str


PAGES = (
    Page("solar_energy", "The Benefits of Solar Energy",
         "Solar energy is a renewable powerhouse, offering numerous environmental and economic "
         "benefits. By converting sunlight into electricity through photovoltaic (PV) panels, "
         "it reduces reliance on fossil fuels, thereby cutting down greenhouse gas emissions. "
         "Homeowners who install solar panels can significantly lower their monthly "
         "electricity bills, and in some cases, sell excess power back to the grid. While the "
         "initial installation cost can be high, government incentives and long-term savings "
         "make it a financially viable option for many. Solar power is also a key component "
         "in achieving energy independence for nations worldwide."),
    Page("wind_turbines", "Understanding Wind Turbines",
         "Wind turbines are towering structures that capture kinetic energy from the wind and "
         "convert it into electrical power. They are a critical part of the global shift "
         "towards sustainable energy. Turbines can be installed both onshore and offshore, "
         "with offshore wind farms generally producing more consistent power due to stronger, "
         "more reliable winds. The main challenge for wind energy is its intermittency: it "
         "only generates power when the wind blows. This necessitates the use of energy "
         "storage solutions, like large-scale batteries, to ensure a steady supply of "
         "electricity."),
    Page("energy_storage", "Energy Storage Solutions",
         "Effective energy storage is the key to unlocking the full potential of renewable "
         "sources like solar and wind. Because these sources are intermittent, storing excess "
         "energy when it's plentiful and releasing it when it's needed is crucial for a stable "
         "power grid. The most common form of large-scale storage is pumped-hydro storage, but "
         "battery technologies, particularly lithium-ion, are rapidly becoming more affordable "
         "and widespread. These batteries can be used in homes, businesses, and at the utility "
         "scale to balance energy supply and demand, making our energy system more resilient "
         "and reliable."),
)
CONTENT = "\n\n".join(f"Source Title: {p.title}\nContent: {p.content}" for p in PAGES)

QUESTION_PROMPT = (
    "<page>\nSource Title: {title}\nContent: {content}\n</page>\n\n"
    "Write one question a reader might ask about {angle}."
)
# The n-th question is about page n % 3, from angle n // 3: with greedy decoding, the same
# prompt twice would give the same question twice.
ANGLES = ("this page", "a cost, limit or challenge this page mentions",
          "how something on this page works")
QUESTIONS = 4  # as many as the seeds ask for
MAX_QUESTIONS = len(PAGES) * len(ANGLES)


@attrs.frozen
class Topic:
    """What one question is asked about."""

    page: Page
    angle: str

    def __str__(self) -> str:
        return f"{self.page.title} ({self.angle})"


def topics(n: int) -> list[Topic]:
    if not 1 <= n <= MAX_QUESTIONS:
        raise ValueError(f"the FAQ demo asks 1 to {MAX_QUESTIONS} questions, not {n}")
    return [Topic(PAGES[i % len(PAGES)], ANGLES[i // len(PAGES)]) for i in range(n)]
# The pages come first and the system prompt is shared, so consecutive calls share a
# prefix that an in-process model (llama.cpp) does not evaluate again.
PAGES_SYSTEM = "You answer questions about the web pages below, using only them."
ANSWER_PROMPT = (
    "<provided_content>\n{content}\n</provided_content>\n\n<question>{question}</question>"
    "\n\nAnswer the question in one or two sentences."
)
SOURCES_PROMPT = (
    "<provided_content>\n{content}\n</provided_content>\n\n<question>{question}</question>\n"
    "<answer>{answer}</answer>\n\nFor each page, say whether the answer used it. Reply in JSON."
)


@attrs.frozen
class Question:
    question: str


@attrs.frozen
class PagesUsed:
    """Which pages an answer came from, one yes/no per page."""

    solar_energy: bool
    wind_turbines: bool
    energy_storage: bool

    def titles(self) -> list[str]:
        return [p.title for p in PAGES if getattr(self, p.key)]


@attrs.frozen
class FAQ:
    question: str
    answer: str
    sources: list[str]
    dropped: list[str] = attrs.field(factory=list)  # marked as used, but the answer is not


@attrs.frozen
class FAQs:
    """The answered questions, and what could not be done (with why)."""

    faqs: list[FAQ]
    failed: list[str] = attrs.field(factory=list)


def is_question(value: Question) -> str | None:
    """Validation gate: a real question, not a statement or a page title."""
    text = value.question.strip()
    if not text.endswith("?") or len(text.split()) < 3:
        return f"{text!r} is not a question; write one ending with '?'"
    return None


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]{5,}", text.casefold()))  # long enough to mean something


# Words only one page uses: what tells the pages apart.
_OWN_WORDS = {p.title: _words(p.content) - set().union(*(_words(o.content) for o in PAGES
                                                          if o is not p)) for p in PAGES}


def supported(answer: str, titles: list[str]) -> list[str]:
    """The pages among ``titles`` that ``answer`` draws on: it shares words with them that
    no other page has. All of ``titles`` when the answer has no such words at all."""
    words = _words(answer)
    if not any(words & own for own in _OWN_WORDS.values()):
        return titles
    return [t for t in titles if words & _OWN_WORDS[t]]


def used_by(answer: str) -> Callable[[PagesUsed], str | None]:
    """Validation gate: at least one page the answer draws on is marked. (Marking extra
    pages is not rejected; the step keeps only the supported ones.)"""

    def pages_used(value: PagesUsed) -> str | None:
        marked = value.titles()
        if not marked:
            return "no page is marked as used; mark the page the answer came from"
        if supported(answer, marked):
            return None
        best = supported(answer, [p.title for p in PAGES])
        return (f"the answer uses nothing from {' or '.join(map(repr, marked))}; it draws "
                f"on {' and '.join(map(repr, best))}")

    return pages_used


async def each(ctx: plait.StepContext, fn: Callable[[T], Awaitable[U]], items: Sequence[T],
               *, fan_out: bool) -> tuple[list[U], list[str]]:
    """``fn`` over ``items``: one after another, or all at once through ``ctx.map``. A
    failed item is reported (with why) and the others still finish, both ways."""
    if fan_out:
        done = await ctx.map(fn, items, on_error="collect")
        return list(done.values), [f"{e.item}: {e.error.type}: {e.error.message}"
                                   for e in done.errors]
    values, failed = [], []
    for item in items:
        try:
            values.append(await fn(item))
        except plait.PlaitError as exc:
            failed.append(f"{item}: {type(exc).__name__}: {exc}")
    return values, failed


def faq_pipeline(model: str, *, fan_out: bool, n_questions: int = QUESTIONS) -> plait.Pipeline:
    """``n_questions`` questions (taking the pages in turn), then an answer and its pages
    for each question."""
    questioner = plait.Agent(model=model, output=Question, temperature=0, max_tokens=48,
                             system="You write FAQ questions about web pages. Reply in JSON.")
    answerer = plait.Agent(model=model, system=PAGES_SYSTEM, temperature=0, max_tokens=48)
    attributor = plait.Agent(model=model, system=PAGES_SYSTEM, output=PagesUsed,
                             temperature=0, max_tokens=48)

    @plait.step
    async def questions(ctx: plait.StepContext) -> FAQs:
        async def ask(topic: Topic) -> str:
            reply = await ctx.ask(questioner, QUESTION_PROMPT.format(
                title=topic.page.title, content=topic.page.content, angle=topic.angle),
                validate=[is_question])
            return str(reply.output.question.strip())

        asked, failed = await each(ctx, ask, topics(n_questions), fan_out=fan_out)
        return FAQs([FAQ(q, "", []) for q in asked], failed)

    @plait.step
    async def answers(ctx: plait.StepContext) -> FAQs:
        async def answer(question: str) -> FAQ:
            reply = await ctx.ask(answerer, ANSWER_PROMPT.format(question=question,
                                                                 content=CONTENT))
            text = complete_sentences(reply)
            pages = await ctx.ask(attributor, SOURCES_PROMPT.format(
                content=CONTENT, question=question, answer=text), validate=[used_by(text)])
            marked = pages.output.titles()
            kept = supported(text, marked)
            return FAQ(question, text, kept, [t for t in marked if t not in kept])

        asked: FAQs = ctx.dep("questions")
        faqs, failed = await each(ctx, answer, [f.question for f in asked.faqs],
                                  fan_out=fan_out)
        return FAQs(faqs, [*asked.failed, *failed])

    name = "faq-fanout" if fan_out else "faq-sequential"
    return plait.Pipeline(name, steps={"questions": questions, "answers": answers},
                          deps={"answers": ["questions"]})


async def main(session: DemoSession, questions: int = QUESTIONS) -> None:
    session.heading("FAQ generation: questions, then answers with sources")
    session.say("Pages: " + ", ".join(p.title for p in PAGES))
    session.say(f"Questions: {questions}, taking the pages in turn")
    timings: list[float] = []
    final: FAQs | None = None
    for n, (fan_out, label) in enumerate(((False, "sequential"), (True, "fan-out (ctx.map)")), 1):
        session.say(f"\n[bold]Run {n}: {label}[/]")
        t0 = time.perf_counter()
        result = await session.run(faq_pipeline(session.model, fan_out=fan_out,
                                                n_questions=questions), {}, title=label)
        if result is not None:
            final = result.output
            timings.append(time.perf_counter() - t0)
    if final is not None:
        show_faqs(session, final)
    if len(timings) == 2:
        session.heading("Timings")
        session.say(f"sequential:        {timings[0]:6.2f} s")
        session.say(f"fan-out (ctx.map): {timings[1]:6.2f} s")
        session.say(f"speed-up: {timings[0] / timings[1]:.2f}x")
        parallel = session.parallel
        if session.provider == "local" and parallel is not None:
            session.say(f"[dim]plait-local ran up to {parallel} generations at once, one "
                        "model instance each (settings local.parallel); the fan-out "
                        "overlaps them and evaluates the pages its answers share once, on "
                        "every core; the sequential run uses one instance at a time.[/]")


def show_faqs(session: DemoSession, faqs: FAQs) -> None:
    session.heading("FAQ")
    for i, faq in enumerate(faqs.faqs, 1):
        session.say(f"[bold]Q{i}. {escape(faq.question)}[/]")
        session.say(f"    {escape(faq.answer)}")
        session.say(f"    [dim]sources: {escape(', '.join(faq.sources))}[/]")
        if faq.dropped:
            session.say(f"    [yellow]not a source (the answer uses nothing from it): "
                        f"{escape(', '.join(faq.dropped))}[/]")
    for failure in faqs.failed:
        session.say(f"[red]✗ {escape(failure)}[/]")



# -- the scripted model behind `--model fake:...` ---------------------------------------

# page key (or page key and angle) -> question, answer, pages used
_FAKE: dict[str | tuple[str, str], tuple[str, str, set[str]]] = {
    "solar_energy": ("What are the benefits of solar energy?",
                     "Solar panels lower electricity bills and cut greenhouse gas emissions.",
                     {"solar_energy"}),
    "wind_turbines": ("How do wind turbines generate electricity?",
                      "They capture kinetic energy from the wind and convert it into power.",
                      {"wind_turbines"}),
    "energy_storage": ("Why is energy storage important for renewables?",
                       "Solar and wind are intermittent, so storage such as lithium-ion "
                       "batteries keeps the grid stable.",
                       {"energy_storage"}),
    ("solar_energy", ANGLES[1]): ("Why can installing solar panels be costly?",
                                  "The initial installation cost can be high, though "
                                  "incentives and long-term savings help.",
                                  {"solar_energy"}),
}


def fake_reply(request: plait.ModelRequest) -> Any:
    """Answers like a small model would: the first question about wind comes back as a
    statement, the first attribution of the solar answer marks only the wind page, and
    the storage answer is said to use the solar page too."""
    users = [m.content for m in request.messages if m.role == "user"]
    reasked = len(users) > 1
    prompt = users[0]
    if "<page>" in prompt:
        key = next(p.key for p in PAGES if p.title in prompt)
        angle = next(a for a in ANGLES if f"about {a}." in prompt)
        question = _FAKE[key if angle == ANGLES[0] else (key, angle)][0]
        if key == "wind_turbines" and not reasked:
            return {"question": "Wind turbines generate electricity."}
        return {"question": question}
    about, (_, answer, used) = next((k, v) for k, v in _FAKE.items() if v[0] in prompt)
    if "<answer>" not in prompt:
        return answer
    if about == "solar_energy" and not reasked:
        used = {"wind_turbines"}
    if about == "energy_storage":
        used = {"energy_storage", "solar_energy"}  # one page too many: kept out by the step
    return {p.key: p.key in used for p in PAGES}
