"""An evaluation in the terminal: the variants' table, the cases that differed, and a
progress bar while cases run (``plait eval`` and ``plait demo eval``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._eval_report import EvalReport
from ._money import format_usd

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table

__all__ = ["EvalProgress", "differing_table", "eval_table", "show_report"]

SHOWN_DIFFERENCES = 10
CELL = 60  # characters of an output shown in a cell


def eval_table(report: EvalReport, title: str | None = None) -> Table:
    """One row per variant: accuracy and its interval, money, calls, latency, failures
    (and the calls answered from a cache, when there were any)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    cached = any(v.usage.cache_hits for v in report.variants)
    columns = ["Variant", "Accuracy", "95% CI", "Cost", "Calls",
               *(["Cached"] if cached else []), "p50", "p95", "Failed"]
    for name in columns:
        table.add_column(name, justify="left" if name == "Variant" else "right")
    for v in report.variants:
        low, high = v.interval
        table.add_row(v.name, f"{v.accuracy:.0%}", f"{low:.0%}-{high:.0%}",
                      format_usd(v.cost), str(v.calls),
                      *([str(v.usage.cache_hits)] if cached else []),
                      f"{v.latency_p50:.2f}s", f"{v.latency_p95:.2f}s",
                      f"[red]{v.failures}[/]" if v.failures else "0")
    return table


def differing_table(report: EvalReport, limit: int = SHOWN_DIFFERENCES) -> Table | None:
    """The first cases whose outputs differed between variants, one column per variant."""
    if not report.differing:
        return None
    from rich.markup import escape
    from rich.table import Table

    table = Table()
    table.add_column("Case")
    table.add_column("Expected")
    names = [v.name for v in report.variants]
    for name in names:
        table.add_column(name)
    for diff in report.differing[:limit]:
        table.add_row(escape(diff.id), escape(_cell(diff.expected)),
                      *(escape(_cell(diff.outputs.get(n, "-"))) for n in names))
    return table


def show_report(report: EvalReport, console: Console, title: str | None = None) -> None:
    """The variants' table, the cases that differed, and why the eval stopped, if it did."""
    console.print(eval_table(report, title))
    diffs = differing_table(report)
    if diffs is not None:
        shown = min(len(report.differing), SHOWN_DIFFERENCES)
        console.print(f"{len(report.differing)} case(s) where the outputs differed"
                      + (f" (the first {shown})" if shown < len(report.differing) else ""))
        console.print(diffs)
    if report.restored:
        console.print(f"{report.restored} case result(s) restored from eval {report.eval_id}")
    if report.stopped:
        console.print(f"[red]stopped early: {report.stopped}[/]")
        if report.eval_id:
            console.print(f"continue with --resume {report.eval_id}")


class EvalProgress:
    """A progress bar per variant on stderr; silent when stderr is not a terminal."""

    def __init__(self, console: Console) -> None:
        from rich.progress import Progress

        self._progress: Progress = Progress(console=console, transient=True,
                                            disable=not console.is_terminal)
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, variant: str, done: int, total: int) -> None:
        if variant not in self._tasks:
            self._tasks[variant] = self._progress.add_task(variant, total=total)
        self._progress.update(self._tasks[variant], completed=done)

    def __enter__(self) -> EvalProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)
    text = " ".join(text.split())
    return text if len(text) <= CELL else text[: CELL - 1] + "…"
