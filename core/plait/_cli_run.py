"""``plait run MODULE:OBJECT``: import a pipeline or step, run it, show what happened.

Every mistake on the command line is a one-line ``click.UsageError`` (exit code 2); a
run that fails prints the failing step and the partial table (exit code 1).
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import IO, Any

import anyio
import click

from ._agent import split_model
from ._errors import PlaitError, UnknownPlugin
from ._results import PipelineResult
from ._runtime import KNOWN_DISTRIBUTIONS, PluginWarning, Runtime
from ._targets import load_target, parse_inputs

__all__ = ["cli_runtime", "run_target"]


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


def run_target(target: str, pairs: tuple[str, ...], input_json: IO[str] | None,
               model: str | None, *, as_json: bool) -> None:
    pipeline = load_target(target)
    inputs = parse_inputs(pairs, input_json)
    try:
        runtime = cli_runtime(model_override=model)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--model'") from None
    check_model(model, runtime)

    async def main() -> PipelineResult:
        async with runtime:
            result: PipelineResult = await pipeline.run(inputs, runtime=runtime)
            return result

    t0 = time.perf_counter()
    try:
        result = anyio.run(main)
    except PlaitError as exc:
        partial = exc.partial
        if as_json and partial is not None:
            click.echo(partial.to_json(indent=2))
        click.echo(f"Error: {exc}", err=True)
        if partial is not None and not as_json:
            _report(partial, runtime, time.perf_counter() - t0)
        sys.exit(1)
    if as_json:
        click.echo(result.to_json(indent=2))
        return
    from ._cli_output import format_value

    if result.stopped_early and result.stop is not None:
        click.echo(f"stopped early: {result.stop.reason}", err=True)
    else:
        click.echo(format_value(result.output, runtime))
    _report(result, runtime, time.perf_counter() - t0)


def _report(result: PipelineResult, runtime: Runtime, seconds: float) -> None:
    from rich.console import Console

    from ._cli_output import step_table, usage_line

    console = Console(stderr=True)
    console.print(step_table(result, title=f"{result.pipeline} · run {result.run_id[:12]}"))
    console.print(usage_line(result.usage, seconds))

