"""The FastAPI side: an APIRouter that runs pipelines, and a lifespan that owns a Runtime."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import plait
from fastapi import APIRouter, Body, HTTPException, Request, Response

__all__ = ["STATE_KEY", "current_runtime", "lifespan", "router"]

STATE_KEY = "plait_runtime"
"""The name of the Runtime in the app's lifespan state (``request.state.plait_runtime``)."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    402: {"description": "A model call could not be held within the run's budget; "
                         "`detail.partial` is the run so far."},
    404: {"description": "No pipeline of that name; `detail.pipelines` lists them."},
    422: {"description": "A step failed (`detail.step`, `detail.cause`), or the body is not a "
                         "JSON object; `detail.partial` is the run so far."},
}
_RESUME_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    409: {"description": "The run cannot be resumed: unknown run id, another pipeline's run, "
                         "the pipeline changed since, or no run store (`detail.message`)."},
}


def router(pipelines: Mapping[str, plait.Pipeline], *,
           runtime: plait.Runtime | None = None) -> APIRouter:
    """An ``APIRouter`` with ``POST /{name}/runs`` for each pipeline in ``pipelines``, and
    ``POST /{name}/runs/{run_id}/resume`` to continue a recorded run (``pipe.resume``).

    The request body is the run's inputs (a JSON object; for a resume, the inputs merged
    over the recorded ones); the response is the ``PipelineResult`` as JSON. A failed
    step answers 422 and an exceeded budget 402, both with the partial result; an unknown
    name answers 404, a run that cannot be resumed 409. Runs use ``runtime``, else the
    Runtime of ``plait_fastapi.lifespan``, else plait's default Runtime.
    """
    table = _check_pipelines(pipelines)
    api = APIRouter()

    @api.post("/{name}/runs", response_class=Response, responses=_ERRORS,
              summary="Run a pipeline",
              response_description="The PipelineResult as JSON")
    async def run_pipeline(request: Request, name: str,
                           inputs: dict[str, Any] | None = Body(default=None)) -> Response:
        return await _answer(_pipeline(table, name).run(
            inputs or {}, runtime=runtime or current_runtime(request)))

    @api.post("/{name}/runs/{run_id}/resume", response_class=Response,
              responses=_RESUME_ERRORS, summary="Resume a recorded run",
              response_description="The PipelineResult as JSON")
    async def resume_run(request: Request, name: str, run_id: str,
                         inputs: dict[str, Any] | None = Body(default=None)) -> Response:
        return await _answer(_pipeline(table, name).resume(
            run_id, inputs, runtime=runtime or current_runtime(request)))

    return api


def _pipeline(table: Mapping[str, plait.Pipeline], name: str) -> plait.Pipeline:
    pipe = table.get(name)
    if pipe is None:
        raise HTTPException(404, detail={
            "error": "unknown_pipeline", "message": f"no pipeline named {name!r}",
            "pipelines": sorted(table)})
    return pipe


async def _answer(work: Awaitable[plait.PipelineResult]) -> Response:
    """The result of a run as the response, or its error as an ``HTTPException``."""
    try:
        result = await work
    except plait.ResumeError as exc:
        raise HTTPException(409, detail={"error": "cannot_resume",
                                         "message": str(exc)}) from exc
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
