"""How the CLI shows results: a value, a table of step records, a usage line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

    from ._money import Usage
    from ._results import PipelineResult, StepRecord
    from ._runtime import Runtime

__all__ = ["format_cost", "format_value", "step_table", "usage_line"]

_STATUS_STYLE = {"ok": "green", "failed": "red", "skipped": "dim", "cancelled": "yellow",
                 "stopped": "yellow"}


def format_value(value: Any, runtime: Runtime) -> str:
    """A step's output for people: text as it is, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(runtime.converter.unstructure(value), indent=2, ensure_ascii=False,
                      default=str)


def format_cost(cost: Decimal) -> str:
    """Exact dollars, without trailing zeros: ``$0``, ``$0.000014``."""
    return "$0" if cost == 0 else f"${cost.normalize():f}"


def usage_line(usage: Usage, seconds: float | None = None) -> str:
    calls = "call" if usage.calls == 1 else "calls"
    text = (f"{usage.calls} model {calls}, {usage.input_tokens:,} tokens in, "
            f"{usage.output_tokens:,} out, cost {format_cost(usage.cost)}")
    return text if seconds is None else f"{text}, {seconds:.2f} s"


def step_table(result: PipelineResult, title: str | None = None) -> Table:
    """One row per step (nested steps indented under their parent)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("Step")
    table.add_column("Status")
    table.add_column("Attempts", justify="right")
    table.add_column("Latency", justify="right")
    table.add_column("Tokens in/out", justify="right")
    table.add_column("Cost", justify="right")
    _add_rows(table, result.steps, 0)
    return table


def _add_rows(table: Table, records: Mapping[str, StepRecord], depth: int) -> None:
    for sid, record in records.items():
        style = _STATUS_STYLE.get(record.status, "")
        name = ("  " * (depth - 1) + "└ " if depth else "") + sid
        if record.route is not None and record.route not in record.children:
            name += f" → {record.route}"
        status = f"[{style}]{record.status}[/]" if style else record.status
        ran = record.status not in ("skipped", "cancelled")
        table.add_row(
            name, status,
            str(record.attempts) if ran else "-",
            f"{record.latency_s:.2f} s" if record.latency_s is not None else "-",
            f"{record.usage.input_tokens:,}/{record.usage.output_tokens:,}" if ran else "-",
            format_cost(record.usage.cost) if ran else "-",
        )
        if record.children:
            _add_rows(table, record.children, depth + 1)

