"""The Chat Completions provider: plait's request in, ``POST {base_url}/chat/completions``.

One class serves OpenAI and every OpenAI-compatible server; a ``Profile`` says where the
server is and where its key comes from, and builds the provider. ``_profiles`` (the known
servers) imports from here, never the other way. Settings and keys are read at call time,
so building the provider does no I/O.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import plait

from ._events import stream_chunk
from ._readers import content_text as _text
from ._readers import usage_of as _usage

if TYPE_CHECKING:
    import httpx

__all__ = ["ChatCompletionsProvider", "Profile"]

OPENAI_HOST = "api.openai.com"


def _lower_names(names: Iterable[str]) -> frozenset[str]:
    return frozenset(name.lower() for name in names)  # header names are case-insensitive


@attrs.frozen
class Profile:
    """Where an OpenAI-compatible server listens and where its API key comes from.

    A profile is a provider factory: ``register(profile.name, profile)``. With
    ``api_key_env`` set a key is required (from settings ``api_key`` or that variable);
    without it the key is optional and read from settings only. ``secret_headers`` names
    the ``headers`` that carry a credential: their values are redacted from error messages,
    like the ``Authorization`` key's.
    """

    name: str
    base_url: str
    api_key_env: str | None = None
    base_url_env: str | None = None  # overrides base_url when set (OPENAI_BASE_URL)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)  # may carry a key
    secret_headers: frozenset[str] = attrs.field(default=frozenset(), converter=_lower_names)

    def __call__(self, env: plait.ProviderEnv) -> ChatCompletionsProvider:
        return ChatCompletionsProvider(self, env)


class ChatCompletionsProvider:
    """``async complete(request)`` and ``stream(request)`` over the Runtime's shared httpx
    client."""

    def __init__(self, profile: Profile, env: plait.ProviderEnv) -> None:
        self._profile = profile
        self._env = env
        # Base URLs whose server rejected ``json_schema``: ask them for JSON mode instead.
        self._json_mode_only: set[str] = set()

    def __repr__(self) -> str:
        return f"ChatCompletionsProvider(name={self._env.name!r}, base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        """Settings ``base_url``, else the profile's environment variable, else its default."""
        env_var = self._profile.base_url_env
        url = (
            self._env.settings.get("base_url")
            or (os.environ.get(env_var) if env_var else None)
            or self._profile.base_url
        )
        return str(url).rstrip("/")

    async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
        base_url = self.base_url
        headers = self._headers(request.model)
        json_mode = request.json_schema is not None and base_url in self._json_mode_only
        try:
            data = await self._post(base_url, headers, request, json_mode=json_mode)
        except plait.ProviderError as exc:
            if not self._falls_back(exc, base_url, request, json_mode):
                raise
            data = await self._post(base_url, headers, request, json_mode=True)
        return self._response(data, request)

    async def stream(self, request: plait.ModelRequest) -> AsyncIterator[plait.StreamChunk]:
        """The reply as Server-Sent Events (``stream``, with ``include_usage`` so the last
        event carries the usage)."""
        import httpx_sse  # with httpx, on first use: registration stays light

        base_url = self.base_url
        headers = self._headers(request.model)
        json_mode = request.json_schema is not None and base_url in self._json_mode_only
        name = self._env.name
        async with contextlib.AsyncExitStack() as stack:
            try:  # a server refusing json_schema says so with the status, before any event
                response = await stack.enter_async_context(
                    self._stream_post(base_url, headers, request, json_mode=json_mode))
            except plait.ProviderError as exc:
                if not self._falls_back(exc, base_url, request, json_mode):
                    raise
                response = await stack.enter_async_context(
                    self._stream_post(base_url, headers, request, json_mode=True))
            # Read to the body's end, past [DONE] and an error event (the server closes
            # after either): httpx's body iterators are generators that warn when left
            # unfinished.
            failed: plait.ProviderError | None = None
            async with contextlib.aclosing(httpx_sse.EventSource(response).aiter_sse()) as events:
                async for event in events:
                    if event.data == "[DONE]" or failed is not None:
                        continue
                    try:
                        chunk = stream_chunk(json.loads(event.data), provider=name,
                                             model=request.model)
                    except plait.ProviderError as exc:
                        failed = exc
                        continue
                    if chunk is not None:
                        yield chunk
        if failed is not None:
            raise failed

    def _falls_back(self, exc: plait.ProviderError, base_url: str,
                    request: plait.ModelRequest, json_mode: bool) -> bool:
        """Did the server refuse ``json_schema`` itself? Then it gets JSON mode from now on."""
        # 400 from most servers; llama.cpp's server answers 500 with pydantic's error
        refused = isinstance(exc, plait.BadRequest) or exc.status in (422, 500)
        if (json_mode or request.json_schema is None or not refused
                or not _rejects_json_schema(exc.message)):
            return False
        self._json_mode_only.add(base_url)
        return True

    def _stream_post(self, base_url: str, headers: Mapping[str, str],
                     request: plait.ModelRequest, *,
                     json_mode: bool) -> contextlib.AbstractAsyncContextManager[httpx.Response]:
        body = _body(request, openai_host=urlsplit(base_url).hostname == OPENAI_HOST,
                     json_mode=json_mode)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        name = self._env.name
        timeout = request.timeout or self._env.settings.get("timeout")
        return plait.stream_post(
            self._env.http, f"{base_url}/chat/completions", json=body, headers=headers,
            timeout=float(timeout) if timeout else None, provider=name, model=request.model,
            error=functools.partial(_error, provider=name, model=request.model,
                                    secret_headers=self._profile.secret_headers),
            secret_headers=self._profile.secret_headers,
        )

    def _headers(self, model: str) -> dict[str, str]:
        settings = self._env.settings
        env_var = self._profile.api_key_env
        key = settings.get("api_key") or (os.environ.get(env_var) if env_var else None)
        if not key and env_var:
            raise plait.AuthenticationError(
                f"no API key: set {env_var} or Runtime(settings={{{self._env.name!r}: "
                "{'api_key': ...}})",
                provider=self._env.name,
                model=model,
            )
        headers = dict(self._profile.headers)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if organization := settings.get("organization"):
            headers["OpenAI-Organization"] = str(organization)
        return headers

    async def _post(
        self,
        base_url: str,
        headers: Mapping[str, str],
        request: plait.ModelRequest,
        *,
        json_mode: bool,
    ) -> Any:
        body = _body(
            request, openai_host=urlsplit(base_url).hostname == OPENAI_HOST, json_mode=json_mode
        )
        name = self._env.name
        timeout = request.timeout or self._env.settings.get("timeout")
        return await plait.post_json(
            self._env.http,
            f"{base_url}/chat/completions",
            json=body,
            headers=headers,
            timeout=float(timeout) if timeout else None,
            provider=name,
            model=request.model,
            error=functools.partial(_error, provider=name, model=request.model,
                                    secret_headers=self._profile.secret_headers),
            secret_headers=self._profile.secret_headers,
        )

    def _response(self, data: Any, request: plait.ModelRequest) -> plait.ModelResponse:
        where: dict[str, Any] = {"provider": self._env.name, "model": request.model}
        choices = data.get("choices") if isinstance(data, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            raise plait.ProviderError(
                f"the reply has no choices: {plait.json_excerpt(data)}", **where
            )
        message = choice.get("message")
        message = message if isinstance(message, dict) else {}
        if refusal := message.get("refusal"):
            raise plait.ContentRefused(f"the model refused: {refusal}", **where)
        finish_reason = choice.get("finish_reason")
        if finish_reason == "content_filter":
            raise plait.ContentRefused("the server's content filter blocked the reply", **where)
        text = _text(message.get("content"))
        return plait.ModelResponse(
            text=text,
            usage=_usage(data.get("usage")),
            finish_reason=finish_reason,
            parsed=plait.json_or_none(text) if request.json_schema is not None else None,
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            raw=data,
            tool_calls=_tool_calls(message.get("tool_calls")),
        )


def _body(request: plait.ModelRequest, *, openai_host: bool, json_mode: bool) -> dict[str, Any]:
    messages = [_message(m) for m in request.messages]
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.tools:
        body["tools"] = [_tool(t) for t in request.tools]
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        # OpenAI renamed the field (reasoning models refuse the old one); servers that copy
        # the API mostly know only the old name.
        body["max_completion_tokens" if openai_host else "max_tokens"] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    if request.json_schema is not None:
        schema = dict(request.json_schema)
        if json_mode:
            body["response_format"] = {"type": "json_object"}
            if not openai_host:  # llama.cpp (and others) enforce a schema given here
                body["response_format"]["schema"] = schema
            body["messages"] = _with_schema_hint(messages, schema)
        else:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(request.schema_name),
                    "schema": schema,
                    "strict": _strict_compatible(schema),
                },
            }
    body.update(request.extra)
    return body


def _message(m: plait.Message) -> dict[str, Any]:
    """A turn in the API's shape: tool calls on the assistant's, a "tool" turn per result."""
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["content"] = m.content or None  # the API's own shape for a turn of calls only
        out["tool_calls"] = [
            {"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in m.tool_calls
        ]
    return out


def _tool(tool: plait.ToolSpec) -> dict[str, Any]:
    schema = dict(tool.parameters)
    return {"type": "function", "function": {
        "name": tool.name, "description": tool.description, "parameters": schema,
        "strict": _strict_compatible(schema)}}


def _tool_calls(calls: Any) -> tuple[plait.ToolCall, ...]:
    """The calls of a reply; arguments that are not JSON are passed on as their text, for
    the engine to tell the model."""
    if not isinstance(calls, list):
        return ()
    out = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        raw = function.get("arguments") or "{}"  # some servers send "" for no arguments
        arguments = plait.json_or_none(raw) if isinstance(raw, str) else raw
        out.append(plait.ToolCall(str(function.get("name", "")),
                                  raw if arguments is None else arguments,
                                  str(call.get("id", ""))))
    return tuple(out)


def _with_schema_hint(
    messages: list[dict[str, Any]], schema: dict[str, Any]
) -> list[dict[str, Any]]:
    """JSON mode does not carry the schema, so tell the model (and say "JSON", which
    OpenAI's JSON mode insists on)."""
    hint = f"Reply with one JSON object that matches this JSON schema:\n{json.dumps(schema)}"
    if messages and messages[0]["role"] == "system":
        first = {"role": "system", "content": f"{messages[0]['content']}\n\n{hint}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": hint}, *messages]


def _schema_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "output"


def _strict_compatible(schema: Any) -> bool:
    """Strict mode needs every object closed and every property required; OpenAI refuses
    anything else with a 400, so such schemas are sent non-strict."""
    if not isinstance(schema, dict):
        return True
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    if (schema.get("type") == "object" or properties) and (
        schema.get("additionalProperties") is not False
        or set(schema.get("required", ())) != set(properties)
    ):
        return False
    children: list[Any] = [*properties.values(), schema.get("items")]
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            children.extend(schema[key].values())
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(schema.get(key), list):
            children.extend(schema[key])
    return all(_strict_compatible(child) for child in children)


def _rejects_json_schema(message: str) -> bool:
    """Does an error say the server cannot do ``response_format`` json_schema at all?"""
    text = message.lower()
    if "invalid schema" in text:  # it can; this schema broke a rule
        return False
    if not any(word in text for word in ("json_schema", "response_format", "response format")):
        return False
    if "json_object" in text and "input should be" in text:  # pydantic: only text/json_object
        return True
    return "support" in text or ("json_object" in text and "json_schema" not in text)


def _error(
    response: httpx.Response, *, provider: str, model: str, secret_headers: frozenset[str]
) -> plait.ProviderError:
    error = plait.error_for_response(
        response, provider=provider, model=model, secret_headers=secret_headers
    )
    if isinstance(error, plait.RateLimited) and _error_code(response) == "insufficient_quota":
        error.retryable = False  # out of credit: waiting will not help
    return error


def _error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None
