"""The ``plait`` entry point: adds ``plait serve MODULE:OBJECT`` to the plait CLI.

FastAPI has no plugin entry-point group of its own, so this is the integration's one
plait plugin. Registration stays pure and light: click only; FastAPI and uvicorn are
imported when the command runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click
import plait

__all__ = ["app_for", "plait_register_commands", "serve"]


@click.command()
@click.argument("target", metavar="MODULE:OBJECT")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--model", metavar="PROVIDER:MODEL",
              help="Use this model for every agent (when OBJECT is a pipeline or a mapping).")
@click.option("--set", "settings", multiple=True, metavar="PROVIDER.KEY=VALUE",
              help="A provider setting (repeatable), e.g. llamacpp.base_url=http://...:8081/v1.")
def serve(target: str, host: str, port: int, model: str | None,
          settings: tuple[str, ...]) -> None:
    """Serve pipelines over HTTP with FastAPI and uvicorn.

    OBJECT is a plait.Pipeline (served at POST /<its name>/runs), a mapping of name to
    Pipeline (POST /<name>/runs each), or an ASGI app such as a FastAPI instance (served as
    it is). Needs uvicorn: pip install uvicorn.
    """
    obj = plait.load_target(target, as_pipeline=False)
    try:
        app = app_for(obj, model=model, settings=plait.parse_settings(settings))
    except (TypeError, ValueError) as exc:
        raise click.UsageError(f"{target}: {exc}") from None
    try:
        import uvicorn
    except ImportError:
        raise click.ClickException("plait serve needs uvicorn: pip install uvicorn") from None
    uvicorn.run(app, host=host, port=port)


def app_for(obj: Any, *, model: str | None = None,
            settings: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    """The ASGI app ``plait serve`` runs for ``obj``: a FastAPI app with ``router`` and
    ``lifespan`` around a pipeline or a mapping of them (its Runtime with ``model`` as the
    model override and provider ``settings``); an ASGI app is returned as is."""
    from fastapi import FastAPI

    from ._app import lifespan, router

    if isinstance(obj, plait.Pipeline):
        obj = {obj.name: obj}
    if isinstance(obj, Mapping):
        runtime = (None if model is None and not settings
                   else plait.Runtime(model_override=model, settings=settings))
        app = FastAPI(title="plait", lifespan=lifespan(runtime))
        app.include_router(router(obj))
        return app
    if model is not None or settings:
        flag = "--model" if model is not None else "--set"
        raise ValueError(f"{flag} applies to pipelines, not to an app you built")
    if callable(obj):
        return obj
    raise TypeError(f"expected a plait.Pipeline, a mapping of name -> Pipeline or an ASGI "
                    f"app, got {type(obj).__name__}")


@plait.hookimpl
def plait_register_commands(register: Callable[..., None]) -> None:
    register(serve)


