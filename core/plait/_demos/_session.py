"""What every demo shares: its Runtime, its console, a log of what was caught, the totals.

A demo runs its pipelines through ``DemoSession.run``, which prints each run's step
table and keeps the usage. Re-asks and failed model calls are seen by a small wrapper
plugin (``CaughtLog``) on ``plait_wrap_model_call``: a request carrying more than one user
message is plait re-asking after a malformed or rejected reply, and the re-ask text says
why. ``finish`` prints what was caught and the usage and cost of the whole demo.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import click

from plait._agent import Agent
from plait._console import cli_runtime, step_table, usage_line
from plait._errors import PlaitError
from plait._money import Price, Usage
from plait.hookspecs import Wrapper, hookimpl

from ._text import escape

if TYPE_CHECKING:
    from plait._context import StepContext
    from plait._model import ModelRequest
    from plait._pipeline import Pipeline
    from plait._results import PipelineResult, Reply

__all__ = ["Caught", "CaughtLog", "DemoSession"]

@attrs.frozen
class Caught:
    """A model reply plait did not accept, or a call that failed and was retried."""

    where: str
    what: str


class CaughtLog:
    """A plugin noting every re-ask and every failed model call."""

    def __init__(self) -> None:
        self.caught: list[Caught] = []
        self.runs: dict[str, str] = {}  # run id -> what the demo calls that run

    @hookimpl
    def plait_wrap_model_call(self, request: ModelRequest,
                              ctx: StepContext | None) -> Wrapper:
        where = "-" if ctx is None else f"{self.runs.get(ctx.run_id, ctx.run_id)} > {ctx.path}"
        users = [m.content for m in request.messages if m.role == "user"]
        if len(users) > 1:  # plait appended the rejected reply and what was wrong with it
            self.caught.append(Caught(where, f"re-asked: {_reason(users[-1])}"))
        try:
            yield
        except Exception as exc:
            self.caught.append(Caught(where, f"call failed: {type(exc).__name__}: "
                                             f"{_first_line(str(exc))}"))
            raise


class DemoSession:
    """One demo: a Runtime for ``model``, where output goes, and the running totals.

    ``fake_replies`` scripts the ``fake`` provider (from plait-testing) when the model is
    ``fake:...``, so the demo runs deterministically without a model; ``fake_latency``
    makes each fake call take that long, so timings mean something.
    """

    def __init__(self, model: str, *, fake_replies: Callable[[ModelRequest], Any] | None = None,
                 fake_latency: float = 0.0,
                 settings: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        from rich.console import Console

        self.model = model
        self.provider = model.split(":", 1)[0]
        self.console = Console(highlight=False)
        self.log = CaughtLog()
        given: dict[str, Mapping[str, Any]] = dict(settings or {})
        prices: dict[str, Price] = {}
        if self.provider == "fake" and fake_replies is not None:
            given["fake"] = {"replies": fake_replies, "latency": fake_latency,
                             **given.get("fake", {})}
            prices[model] = Price.per_million("0", "0")  # scripted replies cost nothing
        self.runtime = cli_runtime(plugins=[self.log], settings=given, prices=prices)
        self.usage = Usage()
        self._t0 = time.perf_counter()

    def heading(self, text: str) -> None:
        self.console.rule(f"[bold]{text}")

    def say(self, text: str = "", **kwargs: Any) -> None:
        self.console.print(text, **kwargs)

    async def run(self, pipeline: Pipeline, inputs: Mapping[str, Any], *,
                  title: str | None = None) -> PipelineResult | None:
        """Run ``pipeline``; print its step table; ``None`` (after saying why) if it failed."""
        run_id = uuid.uuid4().hex
        self.log.runs[run_id] = title or pipeline.label
        try:
            result: PipelineResult = await pipeline.run(inputs, runtime=self.runtime,
                                                        run_id=run_id)
        except PlaitError as exc:
            if exc.partial is not None:
                self.usage = self.usage + exc.partial.usage
                self.console.print(step_table(exc.partial, title or pipeline.label))
            self.say(f"[red]✗ {escape(str(exc))}[/]")
            return None
        self.usage = self.usage + result.usage
        self.console.print(step_table(result, title or pipeline.label))
        return result

    async def warm_up(self) -> None:
        """One tiny call before the demo: a model that cannot be used (not installed, no
        API key, unknown name) stops the demo at once with why, and a model that loads on
        first use (plait-local) is loaded before anything is timed: as many calls at once
        as the provider runs in parallel, so that every instance of it is loaded. Their
        usage counts."""
        agent = Agent(model=self.model, max_tokens=1)
        replies: list[Reply] = []

        async def hello() -> None:
            replies.append(await agent.ask("Hi", runtime=self.runtime))

        try:
            async with anyio.create_task_group() as tg:
                for _ in range(self.parallel or 1):
                    tg.start_soon(hello)
        except* PlaitError as group:
            exc = group.exceptions[0]
            raise click.ClickException(f"the demo cannot use its model: {exc}") from exc
        for reply in replies:
            self.usage = self.usage + reply.usage

    @property
    def parallel(self) -> int | None:
        """How many calls the provider runs at once, when it says (plait-local does)."""
        try:
            provider = self.runtime.provider(self.provider)
        except PlaitError:
            return None  # the warm-up's call says why
        parallel = getattr(provider, "parallel", None)
        return parallel if isinstance(parallel, int) else None

    def finish(self) -> None:
        """What validation and retries caught, then usage and cost of the whole demo."""
        self.heading("Caught by validation and retries")
        if not self.log.caught:
            self.say("Nothing this time: every reply parsed and passed its checks first time.")
        for c in self.log.caught:
            self.say(f"[yellow]•[/] {escape(c.where)}: {escape(c.what)}")
        self.heading("Usage")
        self.say(f"{self.model}: {usage_line(self.usage, time.perf_counter() - self._t0)}")
        if self.provider == "local":
            self.say("(local models cost nothing; with a priced provider the cost is exact "
                     "decimal dollars)")


def _reason(reask: str) -> str:
    """The problem a re-ask message states, without plait's standard framing."""
    text = _first_line(reask).removeprefix("Your previous reply could not be used: ")
    return text.split(". Answer again with ", 1)[0]


def _first_line(text: str, limit: int = 400) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
