"""``plait plugins``: what is installed, what each plugin implements and registered."""

from __future__ import annotations

import json
import warnings
from typing import Any

import click

from plait import hookspecs
from plait._errors import did_you_mean
from plait._plugins import PluginInfo, PluginWarning
from plait._runtime import Runtime

__all__ = ["hook_names", "plugin_rows", "show_plugins"]


def hook_names() -> list[str]:
    """Every hook of the contract, in declaration order."""
    return [name for name in vars(hookspecs) if name.startswith("plait_")]


def plugin_rows(runtime: Runtime, *, show_all: bool, hook: str | None) -> list[PluginInfo]:
    """The plugins to list: broken ones included, filtered to ``hook`` when given."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)  # listed as broken instead
        infos = sorted(runtime.plugin_infos(include_builtins=show_all), key=lambda i: i.name)
    if hook is None:
        return infos
    return [info for info in infos if _full_hook(hook) in info.hooks]


def show_plugins(*, show_all: bool, hook: str | None, as_json: bool) -> None:
    if hook is not None and _full_hook(hook) not in hook_names():
        raise click.BadParameter(f"no hook named {hook!r}; hooks: {', '.join(hook_names())}"
                                 f"{did_you_mean(_full_hook(hook), hook_names())}",
                                 param_hint="'--hook'")
    # Tracers stay off: listing must not register them as plugins of their own.
    infos = plugin_rows(Runtime(tracers=[]), show_all=show_all, hook=hook)
    if as_json:
        click.echo(json.dumps([_as_dict(i) for i in infos], indent=2))
        return
    from rich.console import Console

    console = Console()
    if not infos:
        where = f" implementing {_full_hook(hook)}" if hook else ""
        console.print(f"No plugins{where} installed.")
        return
    if not console.is_terminal:
        for info in infos:  # plain rows, one per plugin, for grep, cut and sort
            click.echo("\t".join(_cells(info, sep=", ")))
    else:
        if _fits(console, infos):
            console.print(_table(infos))
        else:  # too narrow for four columns: one block per plugin, wrapped to the width
            _print_blocks(console, infos)
    broken = sum(1 for i in infos if i.error is not None)
    if broken:
        click.echo(f"{broken} plugin(s) failed to load and were skipped.",
                   err=not console.is_terminal)


_HEADERS = ["Plugin", "Distribution", "Hooks (plait_*)", "Registered"]


def _cells(info: PluginInfo, sep: str) -> list[str]:
    """Plugin, distribution, hooks and what it registered (``sep`` between items)."""
    if info.error is not None:
        return [info.name, _distribution(info), "broken", f"failed to load: {info.error}"]
    hooks = sep.join(h.removeprefix("plait_") for h in info.hooks) or "-"
    registered = "; " if sep == ", " else sep
    return [info.name, _distribution(info), hooks,
            registered.join(f"{kind}: {', '.join(names)}"
                            for kind, names in sorted(info.registered.items())) or "-"]


def _table(infos: list[PluginInfo]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="plait plugins", title_justify="left")
    for header in _HEADERS:
        table.add_column(header, no_wrap=header != _HEADERS[3])
    for info in infos:
        cells = [escape(c) for c in _cells(info, sep="\n")]
        if info.error is not None:
            cells = [f"[red]{c}[/]" for c in cells]
        table.add_row(*cells)
    return table


def _fits(console: Any, infos: list[PluginInfo]) -> bool:
    """Whether the table fits: its first three columns never wrap (a name cut in two
    reads as another name), the last wraps between words."""
    rows = [_cells(info, sep="\n") for info in infos]
    widths = [max(len(line) for cells in [_HEADERS, *rows] for line in cells[i].splitlines())
              for i in range(3)]
    words = max(len(word) for cells in rows for word in cells[3].split())
    width: int = console.width
    return sum(widths) + max(words, len(_HEADERS[3])) + 13 <= width  # 13: the borders


def _print_blocks(console: Any, infos: list[PluginInfo]) -> None:
    from rich.markup import escape
    from rich.padding import Padding

    console.print("[bold]plait plugins[/]")
    for info in infos:
        name, distribution, hooks, registered = (escape(c) for c in _cells(info, sep=", "))
        style = "red" if info.error is not None else "bold"
        console.print(f"[{style}]{name}[/]  {distribution}", highlight=False)
        console.print(Padding(f"hooks: {hooks}", (0, 0, 0, 2)), highlight=False)
        console.print(Padding(registered, (0, 0, 0, 2)), highlight=False)


def _distribution(info: PluginInfo) -> str:
    if info.distribution is None:
        return "-"
    return f"{info.distribution} {info.version}" if info.version else info.distribution


def _full_hook(name: str) -> str:
    return name if name.startswith("plait_") else f"plait_{name}"


def _as_dict(info: PluginInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "distribution": info.distribution,
        "version": info.version,
        "hooks": list(info.hooks),
        "registered": {kind: list(names) for kind, names in sorted(info.registered.items())},
        "error": info.error,
    }
