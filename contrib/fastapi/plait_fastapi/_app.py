"""The FastAPI side: an APIRouter that runs pipelines, and a lifespan that owns a Runtime."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import plait
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import PydanticSchemaGenerationError, TypeAdapter, ValidationError

__all__ = ["STATE_KEY", "EventStreamResponse", "current_runtime", "lifespan", "router"]

STATE_KEY = "plait_runtime"
"""The name of the Runtime in the app's lifespan state (``request.state.plait_runtime``)."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    402: {"description": "A model call could not be held within the run's budget; "
                         "`detail.partial` is the run so far."},
    404: {"description": "No pipeline of that name; `detail.pipelines` lists them."},
    422: {"description": "The inputs do not match the pipeline's (FastAPI's validation "
                         "errors, `detail` a list), or a step failed (`detail.step`, "
                         "`detail.cause`, `detail.partial`: the run so far)."},
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
    over the recorded ones); the response is the ``PipelineResult`` as JSON, or, asked
    with ``Accept: text/event-stream`` or ``?stream=true``, the run's events as
    Server-Sent Events (``EventStreamResponse``). Each pipeline gets its own routes, whose
    OpenAPI request schema is ``pipe.input_schema()`` (a pipeline that declares no inputs
    takes any object) and whose response schema has ``output`` as ``pipe.output_schema()``.
    Inputs that do not match the declaration answer 422 in FastAPI's own validation shape;
    a failed step answers 422 and an exceeded budget 402, both with the partial result; an
    unknown name answers 404, a run that cannot be resumed 409. Runs use ``runtime``, else
    the Runtime of ``plait_fastapi.lifespan``, else plait's default Runtime.
    """
    table = _check_pipelines(pipelines)
    api = APIRouter()
    for name, pipe in table.items():
        _add_route(api, name, pipe, runtime)

    @api.post("/{name}/runs", include_in_schema=False)
    @api.post("/{name}/runs/{run_id}/resume", include_in_schema=False)
    async def unknown_pipeline(name: str) -> Response:  # each pipeline has routes of its own
        raise HTTPException(404, detail={
            "error": "unknown_pipeline", "message": f"no pipeline named {name!r}",
            "pipelines": sorted(table)})

    return api


def _add_route(api: APIRouter, name: str, pipe: plait.Pipeline,
               runtime: plait.Runtime | None) -> None:
    check = _InputCheck(pipe)

    async def run_pipeline(request: Request, stream: bool = False) -> Response:
        inputs = check(await request.body())
        if stream or "text/event-stream" in request.headers.get("accept", ""):
            return EventStreamResponse(pipe.stream(
                inputs, runtime=runtime or current_runtime(request)))
        return await _answer(pipe.run(inputs, runtime=runtime or current_runtime(request)))

    async def resume_run(request: Request, run_id: str) -> Response:
        raw = await request.body()  # the inputs to change; none: the recorded ones
        inputs = check(raw, partial=True) if raw.strip() else None
        return await _answer(pipe.resume(run_id, inputs,
                                         runtime=runtime or current_runtime(request)))

    schema = pipe.input_schema()
    body = {"type": "object", "title": f"{pipe.name} inputs"} if schema is None else schema
    api.add_api_route(
        f"/{name}/runs", run_pipeline, methods=["POST"], response_class=Response,
        summary=f"Run the {pipe.name} pipeline", operation_id=f"run_{name}",
        responses={200: {"description": "The PipelineResult as JSON, or the run's events "
                                        "(?stream=true or Accept: text/event-stream)",
                         "content": {"application/json": {"schema": _result_schema(pipe)},
                                     "text/event-stream": {}}},
                   **_ERRORS},
        openapi_extra={"requestBody": {
            "required": bool(schema and schema["required"]),
            "content": {"application/json": {"schema": body}}}})
    api.add_api_route(
        f"/{name}/runs/{{run_id}}/resume", resume_run, methods=["POST"],
        response_class=Response, summary=f"Resume a recorded run of the {pipe.name} pipeline",
        operation_id=f"resume_{name}",
        responses={200: {"description": "The PipelineResult as JSON",
                         "content": {"application/json": {"schema": _result_schema(pipe)}}},
                   **_RESUME_ERRORS},
        openapi_extra={"requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {
                "type": "object", "title": f"{pipe.name} inputs over the recorded ones"}}}}})


class _InputCheck:
    """A request body turned into a run's inputs, or a ``RequestValidationError`` (FastAPI's
    422) listing every problem: not JSON, not an object, a declared input missing, an
    undeclared one, or a value that is not of the declared type (checked by pydantic where
    it knows the type, as FastAPI checks its own bodies; the pipeline checks the rest)."""

    def __init__(self, pipe: plait.Pipeline) -> None:
        self.types = pipe.input_types
        schema = pipe.input_schema()
        self.required = () if schema is None else tuple(schema["required"])
        self.adapters: dict[str, TypeAdapter[Any]] = {}
        for input_name, tp in (self.types or {}).items():
            # pydantic does not know an attrs class, say: the pipeline gets the JSON then
            with contextlib.suppress(PydanticSchemaGenerationError):
                self.adapters[input_name] = TypeAdapter(tp)

    def __call__(self, raw: bytes, *, partial: bool = False) -> dict[str, Any]:
        """``partial``: the inputs a resume merges over the recorded ones, none required."""
        if not raw.strip():
            data: Any = {}
        else:
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise RequestValidationError([{
                    "type": "json_invalid", "loc": ("body", getattr(exc, "pos", 0)),
                    "msg": "JSON decode error", "input": {},
                    "ctx": {"error": getattr(exc, "msg", str(exc))}}]) from None
        if not isinstance(data, dict):
            raise RequestValidationError([{
                "type": "model_attributes_type", "loc": ("body",),
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": data}])
        if self.types is None:
            return data
        errors: list[dict[str, Any]] = [
            {"type": "missing", "loc": ("body", key), "msg": "Field required", "input": data}
            for key in self.required if key not in data and not partial]
        inputs = {}
        for key, value in data.items():
            if key not in self.types:
                errors.append({"type": "extra_forbidden", "loc": ("body", key),
                               "msg": "Extra inputs are not permitted", "input": value})
            elif key in self.adapters:
                try:
                    inputs[key] = self.adapters[key].validate_python(value)
                except ValidationError as exc:
                    errors.extend({**e, "loc": ("body", key, *e["loc"])}
                                  for e in exc.errors(include_url=False))
            else:
                inputs[key] = value
        if errors:
            raise RequestValidationError(errors)
        return inputs


def _result_schema(pipe: plait.Pipeline) -> dict[str, Any]:
    """The 200 body: a ``PipelineResult`` as JSON, its ``output`` described (``null`` when
    the run stopped early)."""
    output = pipe.output_schema()
    return {
        "type": "object", "title": f"{pipe.name} result",
        "properties": {
            "pipeline": {"type": "string"}, "run_id": {"type": "string"},
            "output": {"anyOf": [output, {"type": "null"}]} if output else {},
            "outputs": {"type": "object", "description": "every step's output, by step id"},
            "steps": {"type": "object", "description": "every step's record, by step id"},
            "usage": {"type": "object", "description": "tokens and exact cost (a decimal "
                                                       "string) of every call"},
            "stopped_early": {"type": "boolean"},
            "stop": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        },
        "required": ["pipeline", "run_id", "output", "outputs", "steps", "usage",
                     "stopped_early", "stop"],
    }


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
