"""``plait runs``: the runs the run store recorded, one as a tree, resume, remove, prune.

Reads the store the Runtime would record to (``PLAIT_STORE``, else the user data
directory). Tables and trees are drawn with rich on a terminal and as plain text
otherwise (a pipe, a file, a test).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

import anyio
import click

from plait._console import cli_runtime, format_value
from plait._errors import PlaitError
from plait._graph import Format
from plait._money import Usage, format_usd
from plait._results import PipelineResult
from plait._runtime import Runtime
from plait._serialize import to_json
from plait._store import RunRow, RunStore, StoredRun
from plait._targets import load_target, parse_inputs

from .graph import show_graph
from .run import _report

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["list_runs", "prune_runs", "remove_runs", "resume_run", "show_run"]

T = TypeVar("T")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_STYLE = {"ok": "green", "failed": "red", "stopped": "yellow", "running": "cyan"}


def _seconds(text: str, option: str) -> float:
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if found is None:
        raise click.BadParameter(f"{text!r} is not a duration such as 30m, 12h, 7d or 2w",
                                 param_hint=option)
    return float(found[1]) * _UNITS[found[2]]


def _store() -> RunStore:
    store = Runtime(tracers=[]).store  # with plugins: a store plugin may own PLAIT_STORE
    if store is None:
        raise click.UsageError("run recording is off (PLAIT_STORE=off): there are no runs")
    return store


def _call(fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return anyio.run(fn)
    except PlaitError as exc:
        raise click.ClickException(str(exc)) from None


def _find(store: RunStore, run_id: str) -> StoredRun:
    """The run ``run_id``, or the one run whose id starts with it."""
    async def find() -> StoredRun | None:
        found = await store.load(run_id)
        if found is not None:
            return found
        matches = [r.run_id for r in await store.runs() if r.run_id.startswith(run_id)]
        if len(matches) > 1:
            raise click.UsageError(f"run id {run_id!r} is ambiguous: "
                                   f"{', '.join(m[:16] for m in matches[:5])}")
        return await store.load(matches[0]) if matches else None

    stored = _call(find)
    if stored is None:
        raise click.ClickException(f"no run {run_id!r} in {store.location}")
    return stored


def _when(at: float | None) -> str:
    return "-" if at is None else dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _latency(run: RunRow) -> str:
    return "-" if run.ended_at is None else f"{run.ended_at - run.started_at:.2f} s"


def _row(run: RunRow) -> list[str]:
    u = run.usage
    calls = f"{u.calls} + {u.cache_hits} cached" if u.cache_hits else str(u.calls)
    return [run.run_id[:12], run.pipeline, run.status, _when(run.started_at), _latency(run),
            calls, f"{u.input_tokens + u.output_tokens:,}", u.cost_text]


_HEAD = ["ID", "PIPELINE", "STATUS", "STARTED", "LATENCY", "CALLS", "TOKENS", "COST"]


def _terminal() -> Console | None:
    """A rich console when stdout is a terminal (or ``TTY_COMPATIBLE=1`` says to write as to
    one), else None: plain text."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else None


def _table(rows: Sequence[list[str]]) -> None:
    console = _terminal()
    if console is not None:
        from rich.table import Table

        table = Table()
        for name in _HEAD:
            table.add_column(name.title(), overflow="fold", justify="right" if name in (
                "LATENCY", "CALLS", "TOKENS", "COST") else "left")  # narrow: fold, never cut
        for row in rows:
            style = _STYLE.get(row[2])
            table.add_row(*row[:2], f"[{style}]{row[2]}[/]" if style else row[2], *row[3:])
        console.print(table)
        return
    widths = [max(len(r[i]) for r in [_HEAD, *rows]) for i in range(len(_HEAD))]
    for row in [_HEAD, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                   .rstrip())


def list_runs(status: str | None, pipeline: str | None, since: str | None, limit: int,
              as_json: bool) -> None:
    after = None if since is None else time.time() - _seconds(since, "'--since'")
    store = _store()
    found = _call(lambda: store.runs(status=status, pipeline=pipeline, since=after,
                                     limit=limit))
    if as_json:
        click.echo(json.dumps([json.loads(to_json(r)) for r in found], indent=2))
    elif not found:
        click.echo(f"no runs in {store.location}", err=True)
    else:
        _table([_row(r) for r in found])


# -- show ---------------------------------------------------------------------------------


def _usage_text(u: Usage) -> str:
    """Calls (cache hits are not among them: nothing was sent), tokens, cost."""
    hits = f", {u.cache_hits} from cache" if u.cache_hits else ""
    return (f"{u.calls} call{'s' if u.calls != 1 else ''}{hits}, "
            f"{u.input_tokens:,}/{u.output_tokens:,} tokens, {u.cost_text}")


def _step_line(path: str, stored: StoredRun) -> str:
    name = path.rsplit("/", 1)[-1]
    row = stored.steps.get(path)
    if row is None:
        return f"{name}  not finished"
    r = row.record
    u = r.usage
    parts = [name, r.status]
    if r.route is not None:
        parts.append(f"→ {r.route}")
    parts.append(f"{r.attempts} attempt{'s' if r.attempts != 1 else ''}")
    if r.latency_s is not None:
        parts.append(f"{r.latency_s:.2f} s")
    if u.calls or u.cache_hits:
        parts.append(_usage_text(u))
    if r.models:
        parts.append("; ".join(f"{model}: {_usage_text(mu)}" for model, mu in r.models.items()))
    if r.error is not None:
        parts.append(f"{r.error.type}: {r.error.message}")
    return "  ".join(parts)


def _call_lines(path: str, stored: StoredRun) -> list[str]:
    lines = []
    for c in stored.calls:
        if c.path != path:
            continue
        u = c.usage
        text = (f"call {c.model}  {c.latency_s:.2f} s  "
                f"{u.input_tokens:,}/{u.output_tokens:,} tokens  {u.cost_text}")
        lines.append(text if c.error is None else f"{text}  {c.error.type}: {c.error.message}")
    return lines


def _fanout_lines(path: str, stored: StoredRun) -> list[str]:
    items = stored.items.get(path)
    if not items:
        return []
    total = max(row.total for row in items.values())
    failed = [row for row in items.values() if row.error is not None]
    calls = [c for c in stored.calls if c.path.startswith(path + "/")]
    head = f"fan-out: {len(items) - len(failed)} of {total} items done, {len(failed)} failed"
    if calls:
        cost = sum((c.usage.cost for c in calls), Decimal(0))
        head += f", {len(calls)} model calls, {format_usd(cost)}"
    lines = [head]
    for row in failed[:10]:
        assert row.error is not None
        lines.append(f"item {row.index}: {row.error.type}: {row.error.message}")
    if len(failed) > 10:
        lines.append(f"... and {len(failed) - 10} more failed items")
    return lines


def _tree(stored: StoredRun) -> list[tuple[int, str]]:
    """(depth, text) lines: the run, then each step with its nested steps and fan-out."""
    run = stored.run
    lines = [(0, f"{run.pipeline} · run {run.run_id}  {run.status}  "
                 f"started {_when(run.started_at)}  {_latency(run)}  "
                 f"attempt {run.attempt}  cost {run.usage.cost_text}")]
    if run.error is not None:
        lines.append((1, f"error: {run.error.type}: {run.error.message}"))
    if run.stop is not None:
        lines.append((1, f"stopped: {run.stop.get('reason')}"))
    paths = list(dict.fromkeys([*run.structure, *stored.steps, *stored.items]))

    def visit(prefix: str, depth: int) -> None:
        here = [p for p in paths if p.startswith(prefix) and "/" not in p[len(prefix):]]
        for path in here:
            if path in stored.steps or path in run.structure:
                lines.append((depth, _step_line(path, stored)))
                lines.extend((depth + 1, text) for text in _call_lines(path, stored))
            lines.extend((depth + 1, text) for text in _fanout_lines(path, stored))
            visit(path + "/", depth + 1)

    visit("", 1)
    return lines


def _print_tree(lines: list[tuple[int, str]]) -> None:
    console = _terminal()
    if console is None:
        for depth, text in lines:
            click.echo("  " * depth + text)
        return
    from rich.markup import escape
    from rich.tree import Tree

    root = Tree(escape(lines[0][1]))
    stack = [root]
    for depth, text in lines[1:]:
        del stack[depth:]
        style = next((s for word, s in _STYLE.items() if f"  {word}" in text), None)
        label = escape(text)
        stack.append(stack[-1].add(f"[{style}]{label}[/]" if style else label))
    console.print(root)


def show_run(run_id: str, as_json: bool, as_graph: bool, fmt: Format) -> None:
    stored = _find(_store(), run_id)
    if as_graph:
        if stored.run.target is None:
            raise click.UsageError(f"run {stored.run.run_id} does not say where its pipeline "
                                   "lives (it was not run from a module): no graph to draw")
        show_graph(stored.run.target, fmt,
                   {path: row.record.status for path, row in stored.steps.items()})
    elif as_json:
        click.echo(to_json(stored, indent=2))
    else:
        _print_tree(_tree(stored))


def resume_run(run_id: str, target: str | None, inputs: tuple[str, ...], force: bool) -> None:
    stored = _find(_store(), run_id)
    spec = target or stored.run.target
    if spec is None:
        raise click.UsageError(f"run {stored.run.run_id} does not say where its pipeline "
                               "lives; pass --target MODULE:OBJECT")
    pipeline = load_target(spec)
    new = parse_inputs(inputs)
    runtime = cli_runtime()

    async def main() -> PipelineResult:
        async with runtime:
            result: PipelineResult = await pipeline.resume(
                stored.run.run_id, new or None, runtime=runtime, force=force)
            return result

    t0 = time.perf_counter()
    try:
        result = anyio.run(main)
    except PlaitError as exc:
        click.echo(f"Error: {exc}", err=True)
        if exc.partial is not None:
            _report(exc.partial, runtime, time.perf_counter() - t0)
        sys.exit(1)
    if result.stopped_early and result.stop is not None:
        click.echo(f"stopped early: {result.stop.reason}", err=True)
    else:
        click.echo(format_value(result.output, runtime))
    _report(result, runtime, time.perf_counter() - t0)


def remove_runs(run_ids: tuple[str, ...]) -> None:
    store = _store()
    ids = [_find(store, run_id).run.run_id for run_id in run_ids]
    removed = _call(lambda: store.delete(ids))
    click.echo(f"removed {removed} run{'s' if removed != 1 else ''}")


def prune_runs(older: str) -> None:
    before = time.time() - _seconds(older, "'--older-than'")
    store = _store()
    removed = _call(lambda: store.prune(before))
    click.echo(f"removed {removed} run{'s' if removed != 1 else ''} from {store.location}")
