"""A deterministic model provider for tests: scripted replies and failures, latency, usage."""

from __future__ import annotations

import inspect
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeAlias, cast

import anyio
import anyio.lowlevel
import attrs
import plait

__all__ = [
    "HANG",
    "PRICES",
    "Chunks",
    "FakeProvider",
    "Reply",
    "Responder",
    "ScriptExhausted",
    "cut_to_max_tokens",
]

PRICES: Final[Mapping[str, plait.Price]] = {
    "priced": plait.Price.per_million("1", "2"),
    "free": plait.Price.per_million("0", "0"),
}
"""The price table the ``fake`` provider registers, in USD per million tokens.

``fake:priced`` costs $1 per million input and $2 per million output tokens, ``fake:free``
costs nothing, and every other ``fake:`` model has no price at all.
"""


class _Hang:
    def __repr__(self) -> str:
        return "HANG"


HANG: Final = _Hang()
"""A reply that never comes: the call sleeps until it is cancelled (to test timeouts)."""

class Chunks:
    """A streamed reply scripted piece by piece: ``Chunks("Hel", "lo", HANG)``.

    A piece is text, an exception (instance or class) raised at that point of the stream,
    or ``HANG`` (the stream stalls there until cancelled). ``usage=False`` ends the stream
    without usage, as some servers do; ``delay`` (seconds) overrides the fake's
    ``chunk_delay`` between pieces. ``complete`` answers the joined text.
    """

    def __init__(self, *parts: str | BaseException | type[BaseException] | _Hang,
                 usage: bool = True, delay: float | None = None) -> None:
        self.parts = parts
        self.usage = usage
        self.delay = delay

    @property
    def text(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))

    def __repr__(self) -> str:
        return f"Chunks{self.parts!r}"


Reply: TypeAlias = (
    str | dict[str, Any] | list[Any] | plait.ModelResponse | plait.ToolCall
    | tuple[plait.ToolCall, ...] | BaseException | type[BaseException] | _Hang | Chunks
)
Responder: TypeAlias = Callable[[plait.ModelRequest], Reply | Awaitable[Reply]]
_Source: TypeAlias = deque[Reply] | Responder

_WORD = re.compile(r"\S+")
_PIECE = re.compile(r"\s*\S+\s*|\s+")  # a word with the space around it


class ScriptExhausted(AssertionError):
    """The fake was called more often than its script has replies: a bug in the test."""


class FakeProvider:
    """A provider for ``fake:<anything>`` models that answers only what a test scripted.

    ``replies`` is one of:

    - a list, consumed one reply per call, in order;
    - a dict ``{model: list or callable}`` scripting each model separately (models without
      an entry use the replies given to ``script()`` without a model, else echo);
    - a callable ``(request) -> reply`` (or an async one), asked on every call.

    A reply is a ``str``; a JSON-able ``dict`` or ``list`` (sent as JSON text, and as
    ``parsed``); a ``plait.ModelResponse``, returned as it is (script exact ``usage`` or
    ``finish_reason`` this way); an exception instance or class to raise, such as
    ``plait.RateLimited(retry_after=2)`` or ``plait.ProviderUnavailable`` (a class is
    instantiated per call, naming the model); or ``HANG``, which never answers.

    A ``plait.ToolCall("lookup_order", {"order_id": "A1"})`` (or a tuple of them, run
    together in one round) is the model asking for tools: script the final answer after
    it. Calls without an ``id`` get ``call_1``, ``call_2``... in the order of the run.

    With nothing scripted it echoes the last user message. A scripted list that runs out
    raises ``ScriptExhausted``. Every request is recorded in ``requests``, failures included.

    Usage is counted deterministically in whitespace-separated words: every message of the
    request in, the reply out. ``request.stop`` cuts the reply at the first stop sequence;
    ``request.max_tokens`` truncates it to that many words with ``finish_reason="length"``.

    ``latency`` (seconds, or ``(request) -> seconds``) is slept with ``sleep`` before each
    reply: ``anyio.sleep`` by default, so a slow call can be cancelled; pass a fake clock's
    sleep to test latency without waiting. A request's ``timeout`` (``ctx.ask(...,
    timeout=0.05)``) is honoured like a real provider's: a reply slower than it (or
    ``HANG``) fails after ``timeout`` seconds with ``plait.ProviderUnavailable`` ("request
    timed out"), which a model call retries like any transient failure.

    ``stream(request)`` streams the same reply a word per chunk, ``chunk_delay`` seconds
    apart, the usage and finish reason on a last chunk of its own; script a ``Chunks``
    reply to choose the pieces, break the stream or stall it.
    """

    def __init__(
        self,
        replies: Sequence[Reply] | Mapping[str, Sequence[Reply] | Responder] | Responder
        | None = None,
        *,
        latency: float | Callable[[plait.ModelRequest], float] = 0.0,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        chunk_delay: float = 0.0,
    ) -> None:
        self.requests: list[plait.ModelRequest] = []
        self._latency = latency
        self._chunk_delay = chunk_delay
        self._sleep = sleep
        self._default: _Source | None = None
        self._by_model: dict[str, _Source] = {}
        if isinstance(replies, Mapping):
            for model, source in replies.items():
                self._by_model[model] = _as_source(source, f"the script for model {model!r}")
        elif replies is not None:
            self._default = _as_source(replies, "replies")

    @property
    def calls(self) -> int:
        """How many requests the fake received."""
        return len(self.requests)

    def script(self, *replies: Reply, model: str | None = None) -> None:
        """Queue more replies, for every model or for one (name without ``fake:``)."""
        current = self._default if model is None else self._by_model.get(model)
        if current is None:
            current = deque()
            if model is None:
                self._default = current
            else:
                self._by_model[model] = current
        if not isinstance(current, deque):
            where = "the fake" if model is None else f"model {model!r}"
            raise TypeError(f"{where} is scripted with a callable; replies cannot be queued")
        current.extend(_check_reply(r) for r in replies)

    async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
        return _respond(request, await self._arrive(request))

    async def stream(self, request: plait.ModelRequest) -> AsyncIterator[plait.StreamChunk]:
        reply = await self._arrive(request)
        if not isinstance(reply, Chunks):
            response = _respond(request, reply)
            for piece in _PIECE.findall(response.text):
                yield plait.StreamChunk(piece)
                await self._pause(self._chunk_delay)
            yield plait.StreamChunk(usage=response.usage,
                                    finish_reason=response.finish_reason, model=request.model)
            return
        delay = self._chunk_delay if reply.delay is None else reply.delay
        for part in reply.parts:
            if isinstance(part, _Hang):
                await anyio.sleep_forever()
            elif isinstance(part, str):
                yield plait.StreamChunk(part)
                await self._pause(delay)
            else:
                raise _raised(part, request)
        usage = _usage(request, reply.text) if reply.usage else None
        yield plait.StreamChunk(usage=usage, finish_reason="stop", model=request.model)

    async def _arrive(self, request: plait.ModelRequest) -> Reply:
        """Record the request and decide its reply (on arrival, so concurrent calls consume
        the script in call order), then wait out the latency."""
        self.requests.append(request)
        reply = await self._next_reply(request)
        latency = self._latency(request) if callable(self._latency) else self._latency
        limit = request.timeout  # a per-call timeout=, as a real provider's HTTP client has
        if limit is not None and (isinstance(reply, _Hang) or latency > limit):
            await self._sleep(limit)
            raise plait.ProviderUnavailable(f"request timed out after {limit:g} s",
                                            provider="fake", model=request.model)
        await self._pause(latency)
        if isinstance(reply, _Hang):
            await anyio.sleep_forever()
        return reply

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            await self._sleep(seconds)
        else:
            await anyio.lowlevel.checkpoint()  # a real provider always yields to the loop

    async def _next_reply(self, request: plait.ModelRequest) -> Reply:
        source = self._by_model.get(request.model, self._default)
        if source is None:
            return _last_user_message(request)
        if isinstance(source, deque):
            if not source:
                raise ScriptExhausted(
                    f"fake:{request.model} was called {self.calls} times, more than its "
                    "script has replies; script more replies or expect fewer calls"
                )
            return source.popleft()
        reply = source(request)
        return _check_reply(await reply if inspect.isawaitable(reply) else reply)

    def __repr__(self) -> str:
        return f"FakeProvider(calls={self.calls})"


def _as_source(value: object, what: str) -> _Source:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return deque(_check_reply(r) for r in value)
    if callable(value) and not isinstance(value, type):
        return value
    raise TypeError(
        f"{what} must be a list of replies or a callable (request) -> reply, got {value!r}"
    )


def _check_reply(value: object) -> Reply:
    if isinstance(
        value, str | dict | list | plait.ModelResponse | plait.ToolCall | BaseException | _Hang
        | Chunks
    ) or (isinstance(value, type) and issubclass(value, BaseException)) or (
        isinstance(value, tuple) and value and all(isinstance(v, plait.ToolCall) for v in value)
    ):
        return cast(Reply, value)
    raise TypeError(
        f"the fake cannot reply with {value!r}: a reply is a str, a JSON dict or list, "
        "a plait.ModelResponse, a plait.ToolCall (or a tuple of them), an exception "
        "(instance or class), HANG or Chunks"
    )


def _last_user_message(request: plait.ModelRequest) -> str:
    users = [m.content for m in request.messages if m.role == "user"]
    return users[-1] if users else ""


def _raised(reply: BaseException | type[BaseException],
            request: plait.ModelRequest) -> BaseException:
    return reply if isinstance(reply, BaseException) else _instantiate(reply, request)


def _usage(request: plait.ModelRequest, text: str) -> plait.TokenCount:
    return plait.TokenCount(input_tokens=sum(_count_words(m.content) for m in request.messages),
                            output_tokens=_count_words(text))


def _respond(request: plait.ModelRequest, reply: Reply) -> plait.ModelResponse:
    if isinstance(reply, BaseException) or (
            isinstance(reply, type) and issubclass(reply, BaseException)):
        raise _raised(reply, request)
    if isinstance(reply, plait.ModelResponse):
        return reply
    if isinstance(reply, plait.ToolCall | tuple):
        return _ask_tools(request, reply if isinstance(reply, tuple) else (reply,))
    if isinstance(reply, Chunks):
        for part in reply.parts:
            if not isinstance(part, str | _Hang):
                raise _raised(part, request)
        reply = reply.text
    parsed: Any
    if isinstance(reply, str):
        text, parsed = reply, None
    else:
        text, parsed = json.dumps(reply), reply
    kept, tokens_out, truncated = cut_to_max_tokens(_cut_at_stop(text, request.stop),
                                                    request.max_tokens)
    if kept != text:
        parsed = None  # a cut JSON text no longer means the scripted value
    tokens_in = sum(_count_words(m.content) for m in request.messages)
    return plait.ModelResponse(
        text=kept,
        usage=plait.TokenCount(input_tokens=tokens_in, output_tokens=tokens_out),
        finish_reason="length" if truncated else "stop",
        parsed=parsed,
        model=request.model,
    )


def _ask_tools(request: plait.ModelRequest,
               calls: tuple[plait.ToolCall, ...]) -> plait.ModelResponse:
    offered = {t.name for t in request.tools}
    for call in calls:
        if call.name not in offered:  # a real model only calls what it was offered
            raise AssertionError(f"the fake was scripted to call tool {call.name!r}, but "
                                 f"the request offers {sorted(offered) or 'no tools'}")
    asked = sum(len(m.tool_calls) for m in request.messages)
    calls = tuple(c if c.id else attrs.evolve(c, id=f"call_{asked + i}")
                  for i, c in enumerate(calls, 1))
    return plait.ModelResponse(
        text="",
        usage=plait.TokenCount(
            input_tokens=sum(_count_words(m.content) for m in request.messages),
            output_tokens=sum(_count_words(json.dumps(c.arguments)) for c in calls)),
        finish_reason="tool_calls",
        model=request.model,
        tool_calls=calls,
    )


def _instantiate(cls: type[BaseException], request: plait.ModelRequest) -> BaseException:
    if issubclass(cls, plait.ProviderError):
        return cls(f"scripted {cls.__name__}", provider="fake", model=request.model)
    return cls()


def _count_words(text: str) -> int:
    return len(_WORD.findall(text))


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    found = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(found)] if found else text


def cut_to_max_tokens(text: str, max_tokens: int | None) -> tuple[str, int, bool]:
    """``text`` as a model limited to ``max_tokens`` returns it, counting words as tokens.

    Returns the text kept, its tokens, and whether it was cut. ``FakeProvider`` answers
    this way, and so should a mocked vendor API in a ``ProviderContract``::

        text, tokens, cut = cut_to_max_tokens(reply, body.get("max_tokens"))
    """
    words = list(_WORD.finditer(text))
    if max_tokens is None or len(words) <= max_tokens:
        return text, len(words), False
    return (text[: words[max_tokens - 1].end()] if max_tokens > 0 else ""), max_tokens, True
