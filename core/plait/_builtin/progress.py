"""A live progress display for the CLI: runs and steps as they start and finish, and a bar
per fan-out counting items as they finish.

It is a tracer (``"progress"``, off unless named in ``Runtime(tracers=[...])``) and stays
out entirely when its console is not a terminal, so piping the CLI's output gives clean
text. Fan-out items are counted through ``FanOutJob.on_item_done``, a plain callback the
executor calls, so no hook runs per item. rich is imported on the first run shown.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import anyio

from plait.hookspecs import Wrapper, hookimpl

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from plait._context import StepContext
    from plait._money import Usage
    from plait._results import FanOutJob, RunInfo

__all__ = ["ProgressDisplay"]


class ProgressDisplay:
    """Show runs, steps and fan-outs on ``console`` (default: stderr) while they run.

    Every finished step leaves a line (status, latency, calls, cost), a finished run a line
    without its usage (the command that ran it prints that, once); the live part (a
    spinner per running step, a bar per fan-out) disappears when the last run ends.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._runs: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def _shown(self) -> bool:
        if self.console is None:
            from rich.console import Console

            self.console = Console(stderr=True)
        return self.console.is_terminal

    @hookimpl
    def plait_wrap_run(self, pipeline: Any, run: RunInfo) -> Wrapper | None:
        return self._run(pipeline, run) if self._shown() else None

    @hookimpl
    def plait_wrap_step(self, ctx: StepContext) -> Wrapper | None:
        return self._step(ctx) if self._progress is not None else None

    @hookimpl
    def plait_wrap_fanout(self, job: FanOutJob, ctx: StepContext) -> Wrapper | None:
        return self._fanout(job) if self._progress is not None else None

    # -- the wrappers -------------------------------------------------------------------

    def _run(self, pipeline: Any, run: RunInfo) -> Wrapper:
        progress = self._start()
        steps = getattr(pipeline, "steps", None)
        name = f"[bold]{escape(run.pipeline)}[/]"
        task = progress.add_task(f"{name} {run.run_id[:8]}",
                                 total=len(steps) if steps is not None else None)
        self._runs[run.run_id] = task
        t0 = time.perf_counter()
        try:
            result = yield
        except BaseException as exc:
            # the run's usage is the summary the command prints after it, once
            _print(progress, _mark(exc), f"run {name}", t0, None, _why(exc))
            raise
        else:
            _print(progress, "[green]✓[/]", f"run {name}", t0, None,
                   escape(f"stopped: {result.stop.reason}") if result.stopped_early else "")
        finally:
            del self._runs[run.run_id]
            progress.remove_task(task)
            self._stop()

    def _step(self, ctx: StepContext) -> Wrapper:
        from plait._results import Stop  # at use: every plugin manager registers this one

        progress = self._progress
        assert progress is not None
        path = escape(ctx.path)
        task = progress.add_task(path, total=None)
        t0 = time.perf_counter()
        try:
            value = yield
        except BaseException as exc:
            attempts = "" if ctx.attempt == 1 else f" after {ctx.attempt} attempts"
            _print(progress, _mark(exc), path, t0, ctx.usage, _why(exc) + attempts)
            raise
        else:
            if isinstance(value, Stop):
                _print(progress, "[yellow]■[/]", path, t0, ctx.usage,
                       escape(f"stopped: {value.reason}"))
            else:
                _print(progress, "[green]✓[/]", path, t0, ctx.usage, "")
        finally:
            progress.remove_task(task)
            run_task = self._runs.get(ctx.run_id)
            if run_task is not None and "/" not in ctx.path:  # a top-level step of the run
                progress.advance(run_task)

    def _fanout(self, job: FanOutJob) -> Wrapper:
        progress = self._progress
        assert progress is not None
        label = f"{escape(job.label)} [dim]fan-out[/]"
        task = progress.add_task(label, total=len(job.items))
        done = 0

        def advance(_index: int) -> None:
            nonlocal done
            done += 1
            progress.advance(task)

        job.on_item_done.append(advance)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            job.on_item_done.remove(advance)
            _print(progress, "[cyan]»[/]", label, t0, None,
                   f"{done}/{len(job.items)} items finished")
            progress.remove_task(task)

    # -- the live display ---------------------------------------------------------------

    def _start(self) -> Progress:
        with self._lock:
            if self._progress is None:
                from rich.progress import Progress

                self._progress = Progress(*_columns(), console=self.console, transient=True)
                self._progress.start()
            return self._progress

    def _stop(self) -> None:
        with self._lock:
            if self._progress is not None and not self._runs:
                self._progress.stop()
                self._progress = None



def _columns() -> list[Any]:
    """Spinner, description, then a bar and a count for what has a total (runs: steps,
    fan-outs: items); a running step is only a spinner and its name."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class Counted(ProgressColumn):
        def __init__(self, column: ProgressColumn) -> None:
            super().__init__()
            self.column = column

        def render(self, task: Task) -> Any:
            return self.column.render(task) if task.total is not None else Text("")

    return [SpinnerColumn(), TextColumn("{task.description}"), Counted(BarColumn()),
            Counted(MofNCompleteColumn()), TimeElapsedColumn()]


def _print(progress: Progress, mark: str, what: str, t0: float, usage: Usage | None,
           note: str) -> None:
    """One finished line above the live display (``what`` and ``note`` are markup)."""
    parts = [f"{mark} {what}", f"{time.perf_counter() - t0:.2f}s"]
    if usage is not None and usage.calls:
        parts.append(f"{usage.calls} call{'s' if usage.calls != 1 else ''}, "
                     f"{usage.input_tokens}+{usage.output_tokens} tokens, {usage.cost_text}")
    if note:
        parts.append(note)
    progress.console.print("  ".join(parts), highlight=False)


def _mark(exc: BaseException) -> str:
    return "[dim]-[/]" if isinstance(exc, anyio.get_cancelled_exc_class()) else "[red]✗[/]"


def _why(exc: BaseException) -> str:
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return "cancelled"
    return escape(f"{type(exc).__name__}: {exc}")


def escape(text: str) -> str:
    """Text shown as is, never read as rich markup (step ids, reasons, errors)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
