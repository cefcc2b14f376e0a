"""``plait cache stats|clear``, added to the ``plait`` CLI through ``plait_register_commands``."""

from __future__ import annotations

import os

import click

from ._errors import CacheError
from ._store import Store, clear

__all__ = ["cache"]

_PATH = click.option("--path", metavar="FILE", envvar="PLAIT_CACHE", show_envvar=True,
                     help="The cache file (default: $PLAIT_CACHE).")


def _path(path: str | None) -> str:
    if not path:
        raise click.UsageError("no cache file: pass --path FILE or set PLAIT_CACHE")
    return path


@click.group(short_help="Show or clear the model-call cache (plait-cache).")
def cache() -> None:
    """The model-call cache of plait-cache: identical requests answered from a file."""


@cache.command()
@_PATH
def stats(path: str | None) -> None:
    """Entries, hits, dollars saved and size of the cache file."""
    path = _path(path)
    if not os.path.exists(path):
        raise click.ClickException(f"no cache file at {path}")
    store = Store(path)
    try:
        s = store.stats()
    except CacheError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    saved = "$0" if s.saved == 0 else f"${s.saved.normalize():f}"
    click.echo(f"{s.path}\n  entries  {s.entries}\n  hits     {s.hits}\n"
               f"  saved    {saved}\n  size     {s.size_bytes:,} bytes")


@cache.command("clear")
@_PATH
def clear_command(path: str | None) -> None:
    """Remove every entry (a corrupt cache file is deleted)."""
    path = _path(path)
    try:
        removed = clear(path)
    except CacheError as exc:
        raise click.ClickException(str(exc)) from None
    if removed is None:
        click.echo(f"removed the corrupt cache file {path}")
    else:
        click.echo(f"removed {removed} {'entry' if removed == 1 else 'entries'} from {path}")
