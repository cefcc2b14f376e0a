"""``plait run MODULE:OBJECT``: import a pipeline or step, run it, show what happened.

Every mistake on the command line is a one-line ``click.UsageError`` (exit code 2); a
run that fails prints the failing step and the partial table (exit code 1).
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import IO, Any

import anyio
import click

from plait._console import (
    check_model,
    check_settings,
    cli_runtime,
    format_value,
    step_table,
    usage_line,
)
from plait._errors import PlaitError, StepFailed, UnknownInput
from plait._events import RunEvent, TextDelta
from plait._results import PipelineResult
from plait._runtime import Runtime
from plait._targets import load_target, parse_inputs, parse_settings

__all__ = ["run_target"]


def run_target(target: str, pairs: tuple[str, ...], input_json: IO[str] | None,
               model: str | None, *, as_json: bool, show_traceback: bool = False,
               settings: tuple[str, ...] = (), stream: bool = False) -> None:
    """``plait run``: ``pairs`` are the ``--input`` options, ``settings`` the ``--set``."""
    provider_settings = parse_settings(settings)
    pipeline = load_target(target)
    inputs = parse_inputs(pairs, input_json)
    _check_input_names(pipeline, inputs)
    try:
        runtime = cli_runtime(model_override=model, settings=provider_settings)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--model'") from None
    check_model(model, runtime)
    check_settings(provider_settings, runtime)

    printer = _OutputText(pipeline.output) if stream and not as_json else None

    async def main() -> PipelineResult:
        async with runtime:
            result: PipelineResult
            if printer is not None:
                result = await pipeline._start(inputs, deps=None, runtime=runtime, run_id=None,
                                               listeners=(printer,))
            else:
                result = await pipeline.run(inputs, runtime=runtime)
            return result

    t0 = time.perf_counter()
    try:
        result = anyio.run(main)
    except PlaitError as exc:
        partial = exc.partial
        if as_json and partial is not None:
            click.echo(partial.to_json(indent=2))
        if show_traceback:  # what the step raised, with the traceback of where it broke
            cause = exc.cause if isinstance(exc, StepFailed) else exc
            click.echo("".join(traceback.format_exception(cause)).rstrip(), err=True)
        click.echo(f"Error: {exc}", err=True)
        if partial is not None and not as_json:
            _report(partial, runtime, time.perf_counter() - t0)
        sys.exit(1)
    if as_json:
        click.echo(result.to_json(indent=2))
        return

    if printer is not None and printer.text:
        click.echo()  # the streamed text is the output; end its line
    if result.stopped_early and result.stop is not None:
        click.echo(f"stopped early: {result.stop.reason}", err=True)
    elif printer is None or result.output != printer.text:
        click.echo(format_value(result.output, runtime))
    _report(result, runtime, time.perf_counter() - t0)


def _check_input_names(pipeline: Any, inputs: dict[str, Any]) -> None:
    """A name the pipeline does not declare is a usage error, before anything runs."""
    declared = pipeline.input_types
    for name in inputs if declared is not None else ():
        if name not in declared:
            raise click.BadParameter(str(UnknownInput(pipeline.name, name, list(declared))),
                                     param_hint="'--input'")


class _OutputText:
    """A run listener printing the output step's streamed text as it arrives (``--stream``):
    what its ``ctx.stream`` calls, or ``agent.as_step(..., stream=True)``, receive."""

    def __init__(self, output: str) -> None:
        self._output = output
        self.text = ""

    async def __call__(self, event: RunEvent) -> None:
        if isinstance(event, TextDelta) and (event.step_id == self._output or
                                             event.step_id.startswith(self._output + "/")):
            self.text += event.text
            click.echo(event.text, nl=False)


def _report(result: PipelineResult, runtime: Runtime, seconds: float) -> None:
    from rich.console import Console

    table = step_table(result, title=f"{result.pipeline} · run {result.run_id[:12]}")
    table.caption, table.caption_justify = usage_line(result.usage, seconds), "left"
    Console(stderr=True).print(table)  # the run's one summary: its steps, then its usage

