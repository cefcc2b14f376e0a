"""The progress tracer: runs, steps and fan-outs on a terminal; silent anywhere else."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import plait
import pytest
from plait_testing import PRICES, FakeProvider, provider_plugin
from rich.console import Console

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _display(runtime: plait.Runtime, *, terminal: bool = True) -> io.StringIO:
    """Point the runtime's progress tracer at a console writing to a buffer."""
    out = io.StringIO()
    display, _default = runtime.registry.tracers["progress"]
    display.console = Console(file=out, force_terminal=terminal, width=120)
    return out


def _lines(out: io.StringIO) -> list[str]:
    """The finished lines: the live part is redrawn with cursor moves and erased at the end."""
    text = _ANSI.sub("", out.getvalue())
    return [line.strip() for line in re.split(r"[\r\n]", text)
            if line.strip().startswith(("✓", "✗", "■", "»", "-"))]


@plait.step
async def items(ctx: plait.StepContext) -> int:
    def double(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        return 2 * n

    result = await ctx.map(double, range(5), limit=2, on_error="collect")
    return len(result.values)


@plait.step
async def total(ctx: plait.StepContext) -> int:
    return int(ctx.dep("items"))


async def test_steps_and_fanout_items_are_shown_on_a_terminal(anyio_backend: Any) -> None:
    runtime = plait.Runtime(entry_points=False, tracers=["progress"])
    out = _display(runtime)
    pipe = plait.Pipeline("numbers", steps={"items": items, "total": total},
                          deps={"total": ["items"]})
    result = await pipe.run({}, runtime=runtime)
    assert result.output == 4

    lines = _lines(out)
    assert [line.split("  ")[0] for line in lines] == [
        "» items fan-out", "✓ items", "✓ total", "✓ run numbers"]
    assert lines[0].endswith("5/5 items finished")  # the failed item counts as finished
    assert out.getvalue().endswith("\x1b[?25h\r")  # the live display ended, cursor back


async def test_failures_stops_and_usage_are_shown(anyio_backend: Any) -> None:
    runtime = plait.Runtime(entry_points=False, tracers=["progress"])
    runtime.register(provider_plugin(FakeProvider(["two words"]), "fake", prices=PRICES))
    out = _display(runtime)
    agent = plait.Agent(model="fake:priced", max_tokens=5)

    @plait.step(retries=1, retry_delay=0)
    async def broken(ctx: plait.StepContext) -> None:
        raise ValueError("boom [red]not markup[/red]")

    @plait.step
    async def asks(ctx: plait.StepContext) -> plait.Stop:
        reply = await ctx.ask(agent, "Say two words.")
        return plait.Stop(f"said {reply.output}")

    pipe = plait.Pipeline("mixed", steps={"[b]asks": asks, "broken": broken},
                          deps={"broken": ["[b]asks"]})
    result = await pipe.run({}, runtime=runtime)
    assert result.stopped_early

    lines = _lines(out)
    assert lines[0].startswith("■ [b]asks  ")
    assert lines[0].endswith("1 call, 3+2 tokens, $0.000007  stopped: said two words")
    assert lines[-1].startswith("✓ run mixed")
    assert "call" not in lines[-1]  # a run's usage is the command's summary, printed once
    assert lines[-1].endswith("stopped: said two words")

    pipe = plait.Pipeline("bad", steps={"broken": broken})
    with pytest.raises(plait.StepFailed):
        await pipe.run({}, runtime=runtime)
    lines = _lines(out)[2:]
    assert lines[0].startswith("✗ broken  ")
    assert lines[0].endswith("ValueError: boom [red]not markup[/red] after 2 attempts")
    assert lines[1].startswith("✗ run bad  ")
    assert "StepFailed: step 'broken' failed after 2 attempts" in lines[1]


async def test_silent_when_not_on_a_terminal(anyio_backend: Any) -> None:
    runtime = plait.Runtime(entry_points=False, tracers=["progress"])
    out = _display(runtime, terminal=False)
    pipe = plait.Pipeline("numbers", steps={"items": items, "total": total},
                          deps={"total": ["items"]})
    assert (await pipe.run({}, runtime=runtime)).output == 4
    assert out.getvalue() == ""


def test_off_unless_named() -> None:
    runtime = plait.Runtime(entry_points=False)
    display, default = runtime.registry.tracers["progress"]
    assert default is False
    assert not runtime.pm.is_registered(display)
    named = plait.Runtime(entry_points=False, tracers=["progress"])
    assert named.pm.is_registered(named.registry.tracers["progress"][0])


# -- the executor's per-item callback the display counts on -------------------------------


class ItemRecorder:
    """A wrapper that listens to item completions the way the progress display does."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self.listeners_after: list[int] = []

    @plait.hookimpl
    def plait_wrap_fanout(self, job: plait.FanOutJob) -> Any:
        job.on_item_done.append(self.done.append)
        try:
            yield
        finally:
            job.on_item_done.remove(self.done.append)
            self.listeners_after.append(len(job.on_item_done))


async def test_the_local_executor_reports_every_finished_item(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any]
) -> None:
    recorder = register_plugin(ItemRecorder())
    result = await plait.Pipeline("p", steps={"items": items}).run({}, runtime=plait_runtime)
    assert result.output == 4
    assert sorted(recorder.done) == [0, 1, 2, 3, 4]
    assert recorder.listeners_after == [0]


async def test_items_never_started_after_a_failure_are_not_reported(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any]
) -> None:
    recorder = register_plugin(ItemRecorder())

    @plait.step
    async def fail_fast(ctx: plait.StepContext) -> None:
        async def one(n: int) -> int:
            if n == 1:
                raise ValueError("one")
            return n

        await ctx.map(one, range(10), limit=1)

    with pytest.raises(plait.StepFailed):
        await plait.Pipeline("p", steps={"s": fail_fast}).run({}, runtime=plait_runtime)
    assert recorder.done == [0, 1]
