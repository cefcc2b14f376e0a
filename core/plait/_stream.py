"""Streamed model calls: ``ctx.stream(agent, prompt)`` and ``agent.stream(prompt)``.

A stream is one model call made as ``call_model`` makes it (the same ``prepare``, budget
reservation, limiters, ``plait_wrap_model_call`` wrappers and usage meters), except that
the caller reads the reply piece by piece inside ``async with``:

- entering sends the request and reads up to the first text: a transient error before
  it is retried with backoff, as a whole call would be (never after: the caller has
  seen text);
- each ``async for`` step yields the next text delta (and, inside a run with listeners,
  emits it as a ``TextDelta`` event);
- the last chunk settles the budget with the usage the provider sent, the wrappers get
  the assembled ``ModelResponse``, and the output is parsed and validated: ``.reply``;
- leaving early (``break``), a cancellation, or an error in the stream closes the
  provider's stream and settles the budget with what was received. Without usage from
  the provider that is counted conservatively: the input's upper bound plus one token per
  byte received and ``IN_FLIGHT_TOKENS`` the server may have made after the last chunk
  read, at most ``max_tokens``.

A provider without a ``stream`` method is asked with ``complete`` and streams as one chunk.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ._calls import (
    _complete,
    _spent,
    hold,
    opening,
    prepare,
    price_call,
    request_for,
    settle,
    unwind,
)
from ._errors import PlaitError, ProviderError, StreamInterrupted
from ._events import TextDelta
from ._hooks import Entered
from ._http import json_or_none
from ._model import ModelCall, ModelRequest, ModelResponse, StreamChunk
from ._money import TokenCount
from ._policy import backoff, gate, retryable
from ._results import Reply

if TYPE_CHECKING:
    from ._agent import Agent
    from ._runtime import Runtime
    from ._scope import StepScope

__all__ = ["IN_FLIGHT_TOKENS", "ModelStream"]

# Tokens a server may have generated past the last chunk read when a stream is left.
IN_FLIGHT_TOKENS = 64
_WRAP = "plait_wrap_model_call"


class ModelStream:
    """A model call whose reply is read as it is written.

    ::

        async with ctx.stream(agent, prompt) as stream:
            async for text in stream:     # each new piece of text
                print(text, end="")
        stream.reply                      # the whole plait.Reply: output, text, usage

    ``text`` is everything received so far. ``reply`` is there once the stream was read
    to its end; the output is parsed and validated then (a reply that does not fit raises
    ``OutputParseError`` or ``ValidationFailed`` from the loop: a stream is never re-asked).
    An error after text arrived raises ``StreamInterrupted`` carrying that text.
    """

    __slots__ = ("_call", "_chunks", "_entered", "_finish", "_held", "_limit", "_model",
                 "_opened", "_overrides", "_parts", "_pending", "_plan",
                 "_prompt", "_reply", "_request", "_runtime", "_scope", "_sent", "_state",
                 "_tokens", "agent")

    def __init__(self, runtime: Runtime, agent: Agent, prompt: str,
                 overrides: Mapping[str, Any], *, scope: StepScope | None = None) -> None:
        if agent.tools:  # a tool round needs the whole reply: there is nothing to stream
            raise TypeError(f"agent {agent.model!r} has tools, which a stream does not run: "
                            "use ctx.ask (or agent.ask) for a call with tools")
        self.agent = agent
        self._runtime = runtime
        self._prompt = prompt
        self._overrides = overrides
        self._scope = scope
        self._state = "new"  # -> open -> done | left
        self._parts: list[str] = []
        self._pending: str | None = None  # the first text, read while entering
        self._reply: Reply | None = None
        self._tokens: TokenCount | None = None
        self._finish: str | None = None
        self._model: str | None = None

    # -- the caller's side --------------------------------------------------------------

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    @property
    def reply(self) -> Reply:
        """The whole reply; only once the stream was read to its end."""
        if self._reply is None:
            raise PlaitError("stream.reply is there once the stream was read to its end "
                             f"(this stream is {_STATES[self._state]}); stream.text holds "
                             "what was received")
        return self._reply

    async def __aenter__(self) -> ModelStream:
        if self._state != "new":
            raise PlaitError("a stream is entered once: make a new one with ctx.stream")
        self._plan = prepare(self._runtime, self.agent, self._overrides, self._scope, None)
        messages = opening(self._plan.agent, self._prompt)
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._open(request_for(self._plan, messages), attempt)
                return self
            except ProviderError as exc:
                exc.requests = attempt
                if not retryable(exc):
                    raise
                if attempt > self._plan.retries:
                    raise _spent(exc, attempt)  # noqa: B904  # the same error, marked as spent
                await anyio.sleep(backoff(attempt, self._plan.cfg, exc))

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._state == "open":
            await self._leave(exc)

    def __aiter__(self) -> ModelStream:
        return self

    async def __anext__(self) -> str:
        if self._state != "open":
            if self._state == "new":
                raise PlaitError("read a stream inside `async with ctx.stream(...) as s:`")
            raise StopAsyncIteration
        if self._pending is not None:
            text, self._pending = self._pending, None
            await self._delivered(text)
            return text
        while True:
            chunk = await self._read()
            if chunk is None:
                await self._done()
                raise StopAsyncIteration
            if chunk.text:
                self._parts.append(chunk.text)
                await self._delivered(chunk.text)
                return chunk.text

    # -- one request --------------------------------------------------------------------

    async def _open(self, request: ModelRequest, attempt: int) -> None:
        """Send ``request`` and read up to its first text (or its end)."""
        plan, runtime = self._plan, self._runtime
        self._request = request
        self._held = hold(plan, request)
        self._call = ModelCall(plan.provider_name, plan.model, plan.price, attempt,
                               streamed=True)
        self._sent = False
        self._entered: Entered | None = None
        self._opened = 0.0
        self._limit = contextlib.AsyncExitStack()
        try:
            await self._limit.enter_async_context(
                runtime.limits().acquire(plan.provider_name, plan.model,
                                         self._held.worst_tokens))
            if runtime.hooks.wraps(_WRAP):
                self._entered = await runtime.hooks.enter(_WRAP, {
                    "request": request, "provider": plan.provider_name, "ctx": plan.ctx,
                    "call": self._call})
            self._sent = True
            self._opened = time.perf_counter()
            self._chunks = _chunks_of(plan.provider, request, plan.provider_name)
            self._state = "open"
            while True:
                chunk = await self._read()
                if chunk is None:  # a reply with no text at all
                    self._pending = None
                    return
                if chunk.text:
                    self._parts.append(chunk.text)
                    self._pending = chunk.text
                    return
        except BaseException as exc:
            self._state = "new"
            await self._close_chunks()
            if self._entered is not None:
                await self._entered.throw(exc)
            unwind(runtime, plan, self._held, exc, self._sent)
            with anyio.CancelScope(shield=True):
                await self._limit.aclose()
            raise

    async def _read(self) -> StreamChunk | None:
        """The next chunk, its usage noted; ``None`` at the end. An error after text
        arrived is a ``StreamInterrupted`` (the stream is left first)."""
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            return None
        except Exception as exc:
            error = _typed(exc, self._plan.provider_name, self._request.model)
            if not self._parts:
                raise error from exc
            await self._leave(error)
            raise StreamInterrupted(self.text, error) from exc
        if not isinstance(chunk, StreamChunk):
            raise ProviderError(f"stream yielded {type(chunk).__name__}, not a "
                                "plait.StreamChunk", provider=self._plan.provider_name,
                                model=self._request.model)
        if chunk.usage is not None:
            self._tokens = chunk.usage
        if chunk.finish_reason is not None:
            self._finish = chunk.finish_reason
        if chunk.model is not None:
            self._model = chunk.model
        if chunk.text and self._call.first_token_s is None:
            self._call.first_token_s = time.perf_counter() - self._opened
        return chunk

    async def _delivered(self, text: str) -> None:
        scope = self._scope
        if scope is not None and scope.run.listeners:
            await scope.run.emit(TextDelta(scope.run.info.run_id, scope.path, text,
                                           time.time()))

    async def _done(self) -> None:
        """The stream ended: settle, leave the wrappers, parse and validate."""
        plan = self._plan
        self._state = "done"
        response = self._response(self._finish)
        price_call(plan, self._call, self._usage_received(final=True))
        settle(self._runtime, plan, self._held, self._call)
        try:
            if self._entered is not None:
                await self._entered.send(response)
        finally:
            await self._limit.aclose()
        assert self._call.usage is not None, "priced above"
        spec = plan.agent.spec
        output = spec.parse(response.text, response.parsed, self._runtime.converter)
        if plan.cfg.validate:
            where = "agent.stream" if self._scope is None else self._scope.path
            await gate(output, plan.cfg.validate, plan.ctx, self._runtime.validator, where)
        self._reply = Reply(output, response.text, self._call.usage,
                            response.model or plan.model, self._call.attempt,
                            response.finish_reason)

    async def _leave(self, exc: BaseException | None) -> None:
        """Left before the end: ``exc`` is why (``None``: the caller stopped reading).
        Settles with what was received; the wrappers get ``exc``, or the partial reply."""
        self._state = "left"
        await self._close_chunks()
        price_call(self._plan, self._call, self._usage_received(final=False))
        settle(self._runtime, self._plan, self._held, self._call)
        try:
            if self._entered is not None:
                if exc is None:
                    await self._entered.send(self._response(self._finish or "abandoned"))
                else:
                    await self._entered.throw(exc)
        finally:
            with anyio.CancelScope(shield=True):
                await self._limit.aclose()

    async def _close_chunks(self) -> None:
        chunks = getattr(self, "_chunks", None)
        aclose = getattr(chunks, "aclose", None)
        if aclose is None:
            return
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await aclose()  # a provider failing to close its connection changes nothing

    def _response(self, finish_reason: str | None) -> ModelResponse:
        text = self.text
        parsed = json_or_none(text) if self._request.json_schema is not None else None
        return ModelResponse(text, self._tokens or TokenCount(), finish_reason, parsed,
                             self._model)

    def _usage_received(self, *, final: bool) -> TokenCount:
        """The provider's usage; without it, an upper bound from what was received."""
        if self._tokens is not None:
            return self._tokens
        out = len(self.text.encode()) + (0 if final else IN_FLIGHT_TOKENS)
        if self._plan.max_tokens is not None:
            out = min(out, self._plan.max_tokens)
        return TokenCount(input_tokens=self._held.estimate, output_tokens=out)

    def __repr__(self) -> str:
        return f"<ModelStream {self.agent.model} {_STATES[self._state]}>"


_STATES = {"new": "not entered", "open": "open", "done": "done",
           "left": "left before its end"}


def _chunks_of(provider: Any, request: ModelRequest, name: str) -> AsyncIterator[StreamChunk]:
    stream = getattr(provider, "stream", None)
    if stream is None:
        return _one_chunk(provider, request, name)
    chunks = stream(request)
    if not inspect.isasyncgen(chunks) and not hasattr(chunks, "__anext__"):
        raise ProviderError(f"provider {name!r}: stream(request) returned "
                            f"{type(chunks).__name__}, not an async iterator of "
                            "plait.StreamChunk", provider=name, model=request.model)
    return chunks  # type: ignore[no-any-return]  # checked just above


async def _one_chunk(provider: Any, request: ModelRequest,
                     name: str) -> AsyncIterator[StreamChunk]:
    """A provider that cannot stream: its whole reply as one chunk."""
    response = await _complete(provider, request, name)
    yield StreamChunk(response.text, response.usage, response.finish_reason, response.model)


def _typed(exc: Exception, provider: str, model: str) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    return ProviderError(f"{type(exc).__name__}: {exc}", provider=provider, model=model,
                         retryable=False)
