"""``plait plugins``: what is installed, what each plugin implements and registered."""

from __future__ import annotations

import json
import warnings
from typing import Any

import click

from plait import hookspecs
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
        raise click.BadParameter(f"no hook named {hook!r}; hooks: {', '.join(hook_names())}",
                                 param_hint="'--hook'")
    # Tracers stay off: listing must not register them as plugins of their own.
    infos = plugin_rows(Runtime(tracers=[]), show_all=show_all, hook=hook)
    if as_json:
        click.echo(json.dumps([_as_dict(i) for i in infos], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not infos:
        where = f" implementing {_full_hook(hook)}" if hook else ""
        console.print(f"No plugins{where} installed.")
        return
    table = Table(title="plait plugins", title_justify="left")
    table.add_column("Plugin", no_wrap=True)
    table.add_column("Distribution", no_wrap=True)
    widest = max((len(h) - len("plait_") for i in infos for h in i.hooks), default=5)
    table.add_column("Hooks (plait_*)", min_width=widest, overflow="fold")
    table.add_column("Registered", overflow="fold")
    for info in infos:
        if info.error is not None:
            table.add_row(f"[red]{info.name}[/]", _distribution(info), "[red]broken[/]",
                          f"[red]failed to load: {info.error}[/]")
            continue
        hooks = "\n".join(h.removeprefix("plait_") for h in info.hooks) or "-"
        registered = "\n".join(f"{kind}: {', '.join(names)}"
                               for kind, names in sorted(info.registered.items())) or "-"
        table.add_row(info.name, _distribution(info), hooks, registered)
    console.print(table)
    broken = sum(1 for i in infos if i.error is not None)
    if broken:
        console.print(f"[red]{broken} plugin(s) failed to load and were skipped.[/]")


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
