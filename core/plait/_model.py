"""The provider seam: plain request / response values and a one-method protocol.

A provider plugin translates a ``ModelRequest`` into one vendor's API and the answer
back into a ``ModelResponse``. It needs no base class: any object with
``async def complete(self, request) -> ModelResponse`` is a provider. A provider that can
stream adds ``stream(self, request)``, an async generator of ``StreamChunk`` values (see
``StreamingProvider``); plait streams any other provider as one chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

from ._money import Price, TokenCount, Usage

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Limits",
    "Message",
    "ModelCall",
    "ModelRequest",
    "ModelResponse",
    "Provider",
    "ProviderEnv",
    "ProviderFactory",
    "ProviderSpec",
    "StreamChunk",
    "StreamingProvider",
    "ToolCall",
    "ToolSpec",
    "split_model",
]

Role = Literal["system", "user", "assistant"]
CONVERSATION_START = "(start of the conversation)"  # the user turn before an opening assistant's


def split_model(model: str) -> tuple[str, str]:
    """``"openai:gpt-4o"`` -> ``("openai", "gpt-4o")``; a path may follow ``local:``."""
    if not isinstance(model, str) or ":" not in model:
        raise ValueError(f"model must be '<provider>:<model>' such as 'openai:gpt-4o-mini', "
                         f"got {model!r}")
    provider, name = model.split(":", 1)
    if not provider or not name:
        raise ValueError(f"model must be '<provider>:<model>', got {model!r}")
    return provider, name


def _as_tuple(value: Iterable[ToolCall]) -> tuple[ToolCall, ...]:
    return tuple(value)


@attrs.frozen
class ToolCall:
    """A model's request to run one tool: ``arguments`` as the model wrote them (a JSON
    object, decoded; a provider passes on a text it could not decode as it is, and the
    engine tells the model). ``id`` pairs the call with its result."""

    name: str
    arguments: Any = attrs.field(factory=dict)
    id: str = ""
    # what the provider must send back with the call (Gemini's thoughtSignature)
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ToolSpec:
    """A tool as a provider sends it: a name, what it does, its arguments' JSON schema."""

    name: str
    description: str
    parameters: Mapping[str, Any]  # an object schema


@attrs.frozen
class Message:
    """One turn. An assistant turn may carry ``tool_calls`` (its text is often empty); a
    ``"tool"`` turn is one call's result: ``content`` is what the tool returned (or its
    error), ``tool_call_id`` and ``name`` say which call it answers."""

    role: Role | Literal["tool"]  # "tool" turns are the tool loop's own
    content: str
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=_as_tuple)
    tool_call_id: str | None = None
    name: str | None = None  # the tool's, on a "tool" turn


@attrs.frozen
class ModelRequest:
    """One call to a model, independent of any vendor.

    ``json_schema`` (an object schema) asks for structured output; providers with native
    support pass it on, the others may ignore it (plait parses and re-asks either way).
    """

    model: str  # without the provider prefix: "gpt-4o-mini", not "openai:gpt-4o-mini"
    messages: tuple[Message, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: Mapping[str, Any] | None = None
    schema_name: str = "output"
    timeout: float | None = None  # seconds for this one request
    extra: Mapping[str, Any] = attrs.field(factory=dict)  # vendor-specific request fields
    tools: tuple[ToolSpec, ...] = ()  # what the model may call instead of answering

    @property
    def system(self) -> str | None:
        """The system prompt, joined, for APIs that take it as a separate field."""
        parts = [m.content for m in self.messages if m.role == "system"]
        return "\n\n".join(parts) if parts else None

    def turns(self) -> list[tuple[Literal["user", "assistant"], list[str]]]:
        """The conversation without its system prompt, for APIs whose turns must alternate
        and open with the user (Anthropic, Gemini): each turn is a role and its texts, in
        order, consecutive messages of one role merged into one turn; a conversation that
        opens with the assistant gets a short user turn first."""
        return [(role, [m.content for m in messages]) for role, messages in self.turn_messages()]

    def turn_messages(self) -> list[tuple[Literal["user", "assistant"], list[Message]]]:
        """``turns`` with the messages themselves, for a conversation with tool calls: a
        ``"tool"`` result is part of the user's turn, as Anthropic and Gemini want it."""
        turns: list[tuple[Literal["user", "assistant"], list[Message]]] = []
        for m in self.messages:
            if m.role == "system":
                continue
            side: Literal["user", "assistant"] = "assistant" if m.role == "assistant" else "user"
            if turns and turns[-1][0] == side:
                turns[-1][1].append(m)
            else:
                turns.append((side, [m]))
        if turns and turns[0][0] == "assistant":
            turns.insert(0, ("user", [Message("user", CONVERSATION_START)]))
        return turns


@attrs.frozen
class ModelResponse:
    """What a provider returns. ``parsed`` is the JSON value when the API returned one."""

    text: str
    usage: TokenCount = TokenCount()
    finish_reason: str | None = None  # "stop", "length", "refusal", "content_filter", ...
    parsed: Any = None
    model: str | None = None  # the model the provider says answered
    raw: Any = attrs.field(default=None, repr=False, eq=False)
    tool_calls: tuple[ToolCall, ...] = ()  # the tools the model asks to run first


@attrs.define(slots=True)
class ModelCall:
    """One request as ``plait_wrap_model_call`` wrappers see it, priced by the engine.

    ``price`` is the price the call is charged at (the agent's own, a Runtime override or
    the provider's table; ``None`` when unknown); ``attempt`` counts the requests of this
    model call (re-asks and retries included). ``usage`` is set, with its exact cost, when
    the reply arrives and before it is sent into the wrappers: tracers read the cost
    here instead of pricing the call again.
    """

    provider: str
    model: str  # without the provider prefix, as in the request
    price: Price | None
    attempt: int
    usage: Usage | None = None
    streamed: bool = False  # made through ctx.stream / agent.stream
    first_token_s: float | None = None  # a stream's seconds from sending to its first text


@attrs.frozen
class StreamChunk:
    """One piece of a streamed reply, as a provider's ``stream`` yields it.

    ``text`` is the new text only (a delta, possibly empty). The last chunk carries the
    reply's ``usage`` and ``finish_reason``; a vendor that reports usage in pieces (input
    first, output at the end) may send it more than once, and the last one given wins.
    """

    text: str = ""
    usage: TokenCount | None = None
    finish_reason: str | None = None
    model: str | None = None  # the model the provider says answered, when it says


@runtime_checkable
class Provider(Protocol):
    """A model provider: one async method."""

    async def complete(self, request: ModelRequest) -> ModelResponse: ...


@runtime_checkable
class StreamingProvider(Provider, Protocol):
    """A provider that can also stream: ``stream`` is an async generator of chunks.

    It raises the same typed errors as ``complete``, before its first chunk (the request
    was refused: plait may retry it) or after (the stream broke: plait reports it as
    ``StreamInterrupted`` with the text received). plait closes the generator early when
    the caller stops reading, so release the connection in ``finally`` or ``async with``.
    """

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]: ...


def _check_concurrency(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ValueError(f"Limits.{attr.name} must be an int >= 1 or None, got {value!r}")


def _check_rate(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not value > 0):
        raise ValueError(f"Limits.{attr.name} must be a number > 0 or None, got {value!r}")


@attrs.frozen
class Limits:
    """Client-side limits for a provider or one model; ``None`` means unlimited.

    Shared by every run on a Runtime: calls wait until they fit. Limits that could never
    admit a call (zero, negative, not numbers) are refused when they are built.
    """

    concurrency: int | None = attrs.field(default=None, validator=_check_concurrency)
    requests_per_minute: float | None = attrs.field(default=None, validator=_check_rate)
    tokens_per_minute: float | None = attrs.field(default=None, validator=_check_rate)


@attrs.frozen
class ProviderEnv:
    """What a provider factory receives from the Runtime that builds it."""

    name: str  # the prefix the provider was registered under
    # Runtime(settings={name: {...}}), e.g. api keys and base urls: never shown in a repr
    settings: Mapping[str, Any] = attrs.field(repr=False)
    _http: Callable[[], httpx.AsyncClient] = attrs.field(alias="http")

    @property
    def http(self) -> httpx.AsyncClient:
        """The Runtime's shared client (connection pooling; tests inject a transport)."""
        return self._http()


ProviderFactory = Callable[[ProviderEnv], Provider]


@attrs.frozen
class ProviderSpec:
    """A registered provider: how to build it, what it costs, how much each model holds."""

    name: str
    factory: ProviderFactory
    prices: Mapping[str, Price] = attrs.field(factory=dict)
    limits: Limits = Limits()
    context_windows: Mapping[str, int] = attrs.field(factory=dict)  # {model: tokens}
