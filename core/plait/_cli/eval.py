"""``plait eval MODULE:OBJECT --data cases.jsonl``: score a workflow on labelled cases.

Mistakes on the command line (a malformed ``--vary``, a cases file that is not JSON
Lines, an unknown metric) are one-line usage errors, exit code 2. The report goes to
stdout (a table, or JSON with ``--json``, then the table on stderr).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import IO, Any

import anyio
import click

from plait._console import check_model, cli_runtime
from plait._errors import EvalError, PlaitError
from plait._eval import evaluate, parse_cases
from plait._eval_report import EvalReport
from plait._eval_view import EvalProgress, show_report
from plait._money import usd
from plait._plot import plot_curve
from plait._targets import load_target

__all__ = ["eval_command", "parse_vary"]


def eval_command(target: str | None, targets: Sequence[str], data: IO[str],
                 metrics: Sequence[str], vary: Sequence[str], model: str | None, limit: int,
                 budget: str | None, as_json: bool, plot: str | None,
                 resume: str | None = None) -> None:
    specs = [*([target] if target else []), *targets]
    if not specs:
        raise click.UsageError("name what to evaluate: MODULE:OBJECT or --target MODULE:OBJECT")
    pipelines = {spec: load_target(spec) for spec in specs}
    try:
        cases = parse_cases(data, getattr(data, "name", "--data"))
    except EvalError as exc:
        raise click.BadParameter(str(exc), param_hint="'--data'") from None
    variants = parse_vary(vary)
    limit_usd = _budget(budget)
    try:
        runtime = cli_runtime(model_override=model)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--model'") from None
    check_model(model, runtime)
    for spec in variants.get("model", []):
        check_model(spec, runtime)
    from rich.console import Console

    err = Console(stderr=True)
    eval_id = resume or uuid.uuid4().hex[:12]

    async def main() -> EvalReport:
        async with runtime:
            err.print(f"eval {eval_id}" + (" (resumed)" if resume else ""))
            with EvalProgress(err) as progress:
                return await evaluate(pipelines if len(pipelines) > 1 else pipelines[specs[0]],
                                      cases, metrics=list(metrics) or ["exact"],
                                      runtime=runtime, vary=variants, limit=limit,
                                      budget=limit_usd, progress=progress, resume=resume,
                                      eval_id=eval_id)

    try:
        report = anyio.run(main)
    except EvalError as exc:
        raise click.UsageError(str(exc)) from None
    except PlaitError as exc:  # an unknown metric, a broken plugin
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(report.to_json(indent=2))
    show_report(report, err if as_json else Console())
    if plot is not None:
        try:
            plot_curve(report, plot)
        except EvalError as exc:
            raise click.ClickException(str(exc)) from None
        err.print(f"curve saved to {plot}")
    if report.stopped:
        sys.exit(1)


def parse_vary(options: Sequence[str]) -> dict[str, list[Any]]:
    """``--vary KEY=V1,V2`` options: each value as JSON when it parses (``3``, ``true``),
    else as a string (``openai:gpt-4o``)."""
    out: dict[str, list[Any]] = {}
    for option in options:
        key, sep, values = option.partition("=")
        key = key.strip()
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not items:
            raise click.BadParameter(f"{option!r} is not KEY=VALUE,VALUE... (e.g. n=1,3,5)",
                                     param_hint="'--vary'")
        if key in out:
            raise click.BadParameter(f"{key!r} is varied twice", param_hint="'--vary'")
        out[key] = [_value(v) for v in items]
    return out


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _budget(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return usd(text.removeprefix("$"))
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="'--budget'") from None
