"""The ensemble-size experiment of the seeds, measured: does a vote beat one call?

A labelled set of product reviews (``sentiment.jsonl``, shipped in the package) is
labelled positive or negative by one greedy call (``n=1``, temperature 0) and by a
majority vote over 3 and 5 sampled calls (temperature 0.8, one seed each), all through
``plait.evaluate``: accuracy with its 95% interval, cost, calls and latency per variant,
the reviews on which the variants disagreed, and the accuracy-against-cost curve.
"""

from __future__ import annotations

import collections
import enum
import importlib.resources
from typing import TYPE_CHECKING, Any

import plait
from plait._errors import EvalError
from plait._eval import evaluate, parse_cases
from plait._eval_view import EvalProgress, show_report
from plait._plot import EXTRA, plot_curve

from ._text import escape

if TYPE_CHECKING:
    from ._session import DemoSession

FAKE_LATENCY = 0.0
SIZES = (1, 3, 5)
SAMPLED = 0.8  # the votes' temperature: candidates must be able to differ
PROMPT = ("Is this product review positive or negative?\n\n"
          "<review>\n{review}\n</review>")


class Sentiment(enum.Enum):
    POSITIVE = "positive"
    NEGATIVE = "negative"


def cases() -> list[plait.EvalCase]:
    data = importlib.resources.files(__package__).joinpath("sentiment.jsonl")
    return parse_cases(data.read_text(encoding="utf-8").splitlines(), "sentiment.jsonl")


def sentiment_pipeline(model: str) -> plait.Pipeline:
    agent = plait.Agent(model, system="You label the sentiment of product reviews.",
                        output=Sentiment, temperature=0, max_tokens=16)

    @plait.step
    async def label(ctx: plait.StepContext) -> Sentiment:
        prompt = PROMPT.format(review=ctx.input("review"))
        n = ctx.input("n", 1)
        if n == 1:
            return (await ctx.ask(agent, prompt)).output  # type: ignore[no-any-return]
        votes = await ctx.map(lambda seed: ctx.ask(agent, prompt, temperature=SAMPLED,
                                                   seed=seed), range(n), on_error="collect",
                              min_success=1)
        counted = collections.Counter(reply.output for reply in votes.values)
        return counted.most_common(1)[0][0]  # type: ignore[no-any-return]

    return plait.Pipeline("sentiment", steps={"label": label})


async def main(session: DemoSession, plot: str | None = None) -> None:
    labelled = cases()
    session.heading(f"One call against a 3- and a 5-vote, on {len(labelled)} labelled reviews")
    session.say("n=1 is one greedy call (temperature 0); n=3 and n=5 take the majority of "
                f"that many calls sampled at temperature {SAMPLED}.\n")
    from rich.console import Console

    with EvalProgress(Console(stderr=True)) as progress:
        report = await evaluate(sentiment_pipeline(session.model), labelled,
                                runtime=session.runtime, vary={"n": list(SIZES)}, limit=2,
                                progress=progress)
    session.usage = session.usage + report.usage
    show_report(report, session.console, title="sentiment · accuracy by ensemble size")
    one, *votes = report.variants
    for v in votes:
        gain = v.accuracy - one.accuracy
        session.say(f"{v.name}: {gain:+.0%} accuracy over one call for "
                    f"{v.calls / max(one.calls, 1):.1f}x the calls")
    overlap = all(v.interval[0] <= one.interval[1] for v in votes)
    if overlap:
        session.say(f"[yellow]The 95% intervals overlap: {len(labelled)} cases cannot tell "
                    "these apart; label more before believing a winner.[/]")
    if plot is None:
        session.say(f"\nDraw the curve with --plot curve.png ({escape(EXTRA)}).")
        return
    try:
        plot_curve(report, plot)
    except EvalError as exc:
        session.say(f"\n[yellow]No curve: {escape(str(exc))}[/]")
        return
    session.say(f"\nAccuracy against cost, per variant: {escape(plot)}")


# -- the scripted model behind `--model fake:...` ---------------------------------------

_TRICKY = ("melts", "did not expect much", "not bad")  # read wrong by a keyword reader
_NEGATIVE = ("stopped working", "cheap", "loud", "subscription", "melts")


def fake_reply(request: plait.ModelRequest) -> Any:
    """A small model's labels: the greedy call reads words, so it gets the sarcastic and
    the grudging reviews wrong; a sampled call gets every review right except when its
    seed is 2 mod 3, so a 3- or 5-vote fixes what one call got wrong."""
    review = request.messages[-1].content.split("<review>", 1)[1].lower()
    truth = "negative" if any(w in review for w in _NEGATIVE) else "positive"
    if "melts" in review:
        truth = "negative"
    flipped = "positive" if truth == "negative" else "negative"
    if not request.temperature:
        return flipped if any(w in review for w in _TRICKY) else truth
    return flipped if (request.seed or 0) % 3 == 2 else truth
