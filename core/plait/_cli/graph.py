"""``plait graph MODULE:OBJECT``: a pipeline drawn as Mermaid or Graphviz DOT."""

from __future__ import annotations

from collections.abc import Mapping

import click

from plait._graph import Format, render
from plait._targets import load_target

__all__ = ["show_graph"]


def show_graph(target: str, fmt: Format, status: Mapping[str, str] | None = None) -> None:
    """Print the graph of the pipeline (or step) ``target`` names, in ``fmt``, its steps
    coloured by ``status`` when given."""
    click.echo(render(load_target(target), fmt, status), nl=False)
