"""plait-fastapi: serve plait pipelines from FastAPI, through FastAPI's own extension points.

- ``router(pipelines, runtime=None)``: an ``APIRouter`` with ``POST /{name}/runs`` (the
  result as JSON, or the run's events as Server-Sent Events: ``EventStreamResponse``).
- ``lifespan(runtime=None, **options)``: a lifespan that owns a ``plait.Runtime``.
- ``current_runtime``: a dependency giving that Runtime to your own endpoints.
- ``plait serve MODULE:OBJECT``: the CLI command this distribution's plait plugin adds.

The names load FastAPI on first use, not on import: plait imports this package (for its
``plugin`` module) whenever it loads plugins, and FastAPI is slow to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import STATE_KEY, EventStreamResponse, current_runtime, lifespan, router

__all__ = ["STATE_KEY", "EventStreamResponse", "current_runtime", "lifespan", "router"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import _app

        return getattr(_app, name)
    raise AttributeError(f"module 'plait_fastapi' has no attribute {name!r}")
