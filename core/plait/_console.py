"""What the terminal commands (``plait run``, ``plait demo``) share: the Runtime a command
runs on, checking ``--model``, and showing results (a value, a table of step records, a
usage line)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from ._errors import UnknownPlugin
from ._model import split_model
from ._plugins import KNOWN_DISTRIBUTIONS, PluginWarning
from ._runtime import Runtime

if TYPE_CHECKING:
    from rich.table import Table

    from ._money import Usage
    from ._results import PipelineResult, StepRecord

__all__ = ["check_model", "check_settings", "cli_runtime", "format_value",
           "step_table", "usage_line"]

_STATUS_STYLE = {"ok": "green", "failed": "red", "skipped": "dim", "cancelled": "yellow",
                 "stopped": "yellow"}


def cli_runtime(**kwargs: Any) -> Runtime:
    """A Runtime with its default tracers plus the live ``progress`` display (which stays
    silent when stderr is not a terminal)."""
    with warnings.catch_warnings():  # the Runtime returned reports broken plugins itself
        warnings.simplefilter("ignore", PluginWarning)
        tracers = Runtime(**kwargs).registry.tracers
    defaults = [name for name, (_, default) in tracers.items() if default and name != "progress"]
    return Runtime(**kwargs, tracers=[*defaults, "progress"])


def check_model(model: str | None, runtime: Runtime) -> None:
    """Fail on the command line, not mid-run, for a malformed or unknown ``--model``."""
    if model is None:
        return
    try:
        provider, _ = split_model(model)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--model'") from None
    installed = runtime.registry.providers
    if provider not in installed:
        error = UnknownPlugin("provider", provider, list(installed),
                              KNOWN_DISTRIBUTIONS["provider"].get(provider))
        raise click.BadParameter(str(error), param_hint="'--model'")


def check_settings(settings: Mapping[str, Any], runtime: Runtime) -> None:
    """Fail on the command line for ``--set`` naming a provider that is not installed."""
    installed = runtime.registry.providers
    for provider in settings:
        if provider not in installed:
            error = UnknownPlugin("provider", provider, list(installed),
                                  KNOWN_DISTRIBUTIONS["provider"].get(provider))
            raise click.BadParameter(str(error), param_hint="'--set'")


def format_value(value: Any, runtime: Runtime) -> str:
    """A step's output for people: text as it is, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(runtime.converter.unstructure(value), indent=2, ensure_ascii=False,
                      default=str)


def usage_line(usage: Usage, seconds: float | None = None) -> str:
    calls = "call" if usage.calls == 1 else "calls"
    text = (f"{usage.calls} model {calls}, {usage.input_tokens:,} tokens in, "
            f"{usage.output_tokens:,} out, cost {usage.cost_text}")
    if usage.unpriced:
        text += f" ({usage.unpriced} unpriced)"
    if usage.cache_hits:
        text += f", {usage.cache_hits} from cache"
    return text if seconds is None else f"{text}, {seconds:.2f} s"


def step_table(result: PipelineResult, title: str | None = None) -> Table:
    """One row per step (nested steps indented under their parent)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("Step")
    table.add_column("Status")
    table.add_column("Attempts", justify="right")
    table.add_column("Latency", justify="right")
    table.add_column("Model")
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
            ", ".join(record.models) or "-",
            f"{record.usage.input_tokens:,}/{record.usage.output_tokens:,}" if ran else "-",
            record.usage.cost_text if ran else "-",
        )
        if record.children:
            _add_rows(table, record.children, depth + 1)

