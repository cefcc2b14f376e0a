"""The ``llm`` entry point: ``llm plait run MODULE:OBJECT``, plait pipelines from llm.

llm imports this module for every ``llm`` command, so plait is imported only when
``llm plait ...`` runs.
"""

from __future__ import annotations

import json
from typing import Any

import click
import llm

__all__ = ["register_commands"]


@llm.hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.group(name="plait")
    def plait_group() -> None:
        """Run plait pipelines (multi-step LLM workflows)."""

    @plait_group.command(name="run")
    @click.argument("target", metavar="MODULE:OBJECT")
    @click.option("-i", "--input", "pairs", multiple=True, metavar="KEY=VALUE",
                  help="A run input (repeatable).")
    @click.option("-m", "--model", "model_id", metavar="MODEL_ID",
                  help="Run every agent on this llm model (as llm:MODEL_ID).")
    def run(target: str, pairs: tuple[str, ...], model_id: str | None) -> None:
        """Run a plait.Pipeline or plait.Step and print its output.

        \b
        llm plait run flows:summarize -i url=https://example.com -m gpt-4o-mini
        """
        import plait

        click.echo(run_target(target, plait.parse_inputs(pairs), model_id))


def run_target(target: str, inputs: dict[str, Any], model_id: str | None) -> str:
    """Run ``target`` on a fresh Runtime and return its output as text (JSON if it is
    not a string); a failed run is a ``click.ClickException``, llm's idiom for errors."""
    import anyio
    import plait

    pipeline = plait.load_target(target)
    override = None if model_id is None else f"llm:{model_id}"

    async def main() -> str:
        async with plait.Runtime(model_override=override) as runtime:
            result = await pipeline.run(inputs, runtime=runtime)
            if isinstance(result.output, str):
                return result.output
            return json.dumps(runtime.converter.unstructure(result.output), indent=2)

    try:
        return anyio.run(main)
    except plait.PlaitError as exc:
        raise click.ClickException(str(exc)) from None
