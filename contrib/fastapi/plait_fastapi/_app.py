"""The FastAPI side: an APIRouter that runs pipelines, and a lifespan that owns a Runtime."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import plait
from fastapi import APIRouter, Body, HTTPException, Request, Response

__all__ = ["STATE_KEY", "EventStreamResponse", "current_runtime", "lifespan", "router"]

STATE_KEY = "plait_runtime"
"""The name of the Runtime in the app's lifespan state (``request.state.plait_runtime``)."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    402: {"description": "A model call could not be held within the run's budget; "
                         "`detail.partial` is the run so far."},
    404: {"description": "No pipeline of that name; `detail.pipelines` lists them."},
    422: {"description": "A step failed (`detail.step`, `detail.cause`), or the body is not a "
                         "JSON object; `detail.partial` is the run so far."},
}


def router(pipelines: Mapping[str, plait.Pipeline], *,
           runtime: plait.Runtime | None = None) -> APIRouter:
    """An ``APIRouter`` with ``POST /{name}/runs`` for each pipeline in ``pipelines``.

    The request body is the run's inputs (a JSON object); the response is the
    ``PipelineResult`` as JSON, or, asked with ``Accept: text/event-stream`` or
    ``?stream=true``, the run's events as Server-Sent Events (``EventStreamResponse``). A
    failed step answers 422 and an exceeded budget 402, both with the partial result; an
    unknown name answers 404. Runs use ``runtime``, else the Runtime of
    ``plait_fastapi.lifespan``, else plait's default Runtime.
    """
    table = _check_pipelines(pipelines)
    api = APIRouter()

    @api.post("/{name}/runs", response_class=Response, responses=_ERRORS,
              summary="Run a pipeline",
              response_description="The PipelineResult as JSON")
    async def run_pipeline(request: Request, name: str,
                           inputs: dict[str, Any] | None = Body(default=None),
                           stream: bool = False) -> Response:
        pipe = table.get(name)
        if pipe is None:
            raise HTTPException(404, detail={
                "error": "unknown_pipeline", "message": f"no pipeline named {name!r}",
                "pipelines": sorted(table)})
        if stream or "text/event-stream" in request.headers.get("accept", ""):
            return EventStreamResponse(pipe.stream(
                inputs or {}, runtime=runtime or current_runtime(request)))
        try:
            result = await pipe.run(inputs or {},
                                    runtime=runtime or current_runtime(request))
        except plait.BudgetExceeded as exc:
            raise HTTPException(402, detail={
                "error": "budget_exceeded", "message": str(exc), "spent": str(exc.spent),
                "reserved": str(exc.reserved), "limit": str(exc.limit), "scope": exc.scope,
                "partial": _as_data(exc.partial)}) from exc
        except plait.StepFailed as exc:
            raise HTTPException(422, detail={
                "error": "step_failed", "message": str(exc), "step": exc.step_id,
                "attempts": exc.attempts,
                "cause": {"type": type(exc.cause).__name__, "message": str(exc.cause)},
                "partial": _as_data(exc.partial)}) from exc
        return Response(result.to_json(), media_type="application/json")

    return api


class EventStreamResponse(Response):
    """A run's events as Server-Sent Events: ``event: <type>`` (``RunStarted``,
    ``StepFinished``, ``TextDelta``...) and ``data: <the event as JSON>``, one per run event,
    the last ``RunFinished`` or ``RunFailed``.

    The run goes while the response is sent, at the client's pace (a slow client holds it
    back); a client that disconnects cancels it.
    """

    media_type = "text/event-stream"

    def __init__(self, events: plait.RunStream) -> None:  # no body: no Content-Length
        self.events = events
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-store", "x-accel-buffering": "no"})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        converter = self.events.runtime.converter
        async with anyio.create_task_group() as tg:

            async def watch() -> None:  # the body was read: what comes next is the end
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            try:
                async with self.events as events:
                    async for event in events:
                        data = json.dumps(converter.unstructure(event))
                        block = f"event: {type(event).__name__}\ndata: {data}\n\n"
                        await send({"type": "http.response.body", "body": block.encode(),
                                    "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                pass  # the client is gone (ASGI 2.4 servers raise on send): the run stopped
            tg.cancel_scope.cancel()


def lifespan(runtime: plait.Runtime | None = None, **options: Any,
             ) -> Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]:
    """A FastAPI ``lifespan`` that owns a ``plait.Runtime`` for the app's whole life.

    ``FastAPI(lifespan=plait_fastapi.lifespan(settings=..., limits=...))``: the keywords
    build the Runtime (or pass a ``runtime`` to hand over). Its plugins load at start-up,
    so a broken plugin shows before the first request; it is closed at shutdown. Routers
    and ``current_runtime`` find it in the lifespan state.
    """
    if runtime is not None and options:
        raise TypeError("lifespan() takes a Runtime or the keywords to build one, not both")

    @asynccontextmanager
    async def own_runtime(_app: Any) -> AsyncIterator[dict[str, Any]]:
        owned = runtime if runtime is not None else plait.Runtime(**options)
        async with owned:
            owned.load()
            yield {STATE_KEY: owned}

    return own_runtime


def current_runtime(request: Request) -> plait.Runtime | None:
    """The Runtime of ``plait_fastapi.lifespan`` (a FastAPI dependency), or ``None`` without
    one, which ``pipe.run(..., runtime=None)`` takes as plait's default Runtime."""
    found = getattr(request.state, STATE_KEY, None)
    return found if isinstance(found, plait.Runtime) else None


def _check_pipelines(pipelines: Mapping[str, plait.Pipeline]) -> dict[str, plait.Pipeline]:
    if not isinstance(pipelines, Mapping):
        raise TypeError(f"router() takes a mapping of name -> plait.Pipeline, got {pipelines!r}")
    for name, pipe in pipelines.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"a pipeline's name in the URL must be non-empty text without "
                             f"'/', got {name!r}")
        if not isinstance(pipe, plait.Pipeline):
            raise TypeError(f"router(): {name!r} is {pipe!r}, not a plait.Pipeline")
    return dict(pipelines)


def _as_data(result: plait.PipelineResult | None) -> Any:
    return None if result is None else json.loads(result.to_json())
