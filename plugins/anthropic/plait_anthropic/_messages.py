"""The Messages API provider: plait's request in, ``POST {base_url}/v1/messages``.

Settings and the key are read at call time, so building the provider does no I/O.
Structured output is a forced call to a single tool whose input schema is the requested
JSON schema; the tool call's input is the answer. With tools of the agent's own beside it,
the model must call one of them or that answer tool (``tool_choice: any``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import plait

from ._events import EventReader

__all__ = ["AnthropicProvider"]

API_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 1024  # the API requires max_tokens on every request
KEY_VAR = "ANTHROPIC_API_KEY"
BASE_URL_VAR = "ANTHROPIC_BASE_URL"

# Anthropic's stop reasons in the words plait (and OpenAI) use.
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
}


class AnthropicProvider:
    """``async complete(request)`` and ``stream(request)`` over the Runtime's shared httpx
    client."""

    def __init__(self, env: plait.ProviderEnv) -> None:
        self._env = env

    def __repr__(self) -> str:
        return f"AnthropicProvider(name={self._env.name!r}, base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        """Settings ``base_url``, else ``ANTHROPIC_BASE_URL``, else Anthropic's API."""
        url = self._env.settings.get("base_url") or os.environ.get(BASE_URL_VAR) or DEFAULT_BASE_URL
        return str(url).rstrip("/")

    async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
        data = await plait.post_json(self._env.http, f"{self.base_url}/v1/messages",
                                     **self._exchange(request))
        return self._response(data, request)

    async def stream(self, request: plait.ModelRequest) -> AsyncIterator[plait.StreamChunk]:
        """The reply as Server-Sent Events (``"stream": true``): text deltas (the tool
        input's JSON for structured output), the usage with the final ``message_delta``."""
        exchange = self._exchange(request)
        exchange["json"]["stream"] = True
        reader = EventReader(request, self._env.name, _FINISH, _usage)
        async with plait.stream_post(self._env.http, f"{self.base_url}/v1/messages",
                                     **exchange) as response:
            import httpx_sse  # with httpx, on first use: registration stays light

            # Read to the body's end (the server closes after message_stop or an error):
            # httpx's body iterators are generators that warn when left unfinished.
            async with contextlib.aclosing(httpx_sse.EventSource(response).aiter_sse()) as events:
                async for event in events:
                    chunk = reader.read(event.event, event.data)
                    if chunk is not None:
                        yield chunk
        reader.finished()

    def _exchange(self, request: plait.ModelRequest) -> dict[str, Any]:
        """What ``post_json`` / ``stream_post`` are called with, but the URL."""
        name, settings = self._env.name, self._env.settings
        key = settings.get("api_key") or os.environ.get(KEY_VAR)
        if not key:
            raise plait.AuthenticationError(
                f"no API key: set {KEY_VAR} or Runtime(settings={{{name!r}: {{'api_key': ...}}}})",
                provider=name,
                model=request.model,
            )
        timeout = request.timeout or settings.get("timeout")
        return {
            "json": _body(request, settings.get("max_tokens") or DEFAULT_MAX_TOKENS),
            "headers": {"x-api-key": str(key), "anthropic-version": API_VERSION},
            "timeout": float(timeout) if timeout else None,
            "provider": name,
            "model": request.model,
        }

    def _response(self, data: Any, request: plait.ModelRequest) -> plait.ModelResponse:
        where: dict[str, Any] = {"provider": self._env.name, "model": request.model}
        content = data.get("content") if isinstance(data, dict) else None
        if not isinstance(content, list):
            raise plait.ProviderError(
                f"the reply has no content: {plait.json_excerpt(data)}", **where
            )
        stop_reason = data.get("stop_reason")
        text = "".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
        if stop_reason == "refusal":
            raise plait.ContentRefused(f"the model refused{': ' + text if text else ''}", **where)
        finish_reason = _FINISH.get(stop_reason, stop_reason)
        parsed = None
        if request.json_schema is not None:
            tool = _tool_name(request.schema_name)
            call = next(
                (
                    b
                    for b in content
                    if isinstance(b, dict) and b.get("type") == "tool_use" and b.get("name") == tool
                ),
                None,
            )
            if call is not None:
                text = json.dumps(call.get("input"))
                finish_reason = "stop" if stop_reason == "tool_use" else finish_reason
                # A call cut short by max_tokens carries an incomplete input.
                parsed = call.get("input") if finish_reason == "stop" else None
            else:
                parsed = plait.json_or_none(text)
        answer = _tool_name(request.schema_name) if request.json_schema is not None else None
        calls = tuple(
            plait.ToolCall(str(b.get("name")), b.get("input"), str(b.get("id", "")))
            for b in content
            if isinstance(b, dict) and b.get("type") == "tool_use" and b.get("name") != answer
        )
        return plait.ModelResponse(
            text=text,
            usage=_usage(data.get("usage")),
            finish_reason=finish_reason,
            parsed=parsed,
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            raw=data,
            tool_calls=calls,
        )


def _body(request: plait.ModelRequest, default_max_tokens: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens if request.max_tokens is not None else default_max_tokens,
        # turns alternate and open with the user; a merged turn is one text block per message
        "messages": [
            {"role": role, "content": texts[0] if len(texts) == 1
             else [{"type": "text", "text": t} for t in texts]}
            for role, texts in request.turns()
        ] if not request.tools else [
            {"role": role, "content": [b for m in turn for b in _blocks(m)]}
            for role, turn in request.turn_messages()
        ],
    }
    if request.system is not None:
        body["system"] = request.system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    # ``seed`` has no counterpart in the Messages API.
    if request.json_schema is not None:
        tool = _tool_name(request.schema_name)
        body["tools"] = [
            {
                "name": tool,
                "description": "Record the answer, in exactly this structure.",
                "input_schema": dict(request.json_schema),
            }
        ]
        body["tool_choice"] = {"type": "tool", "name": tool}
        if request.tools:  # a lookup first, or the answer: either way a tool call
            body["tool_choice"] = {"type": "any"}
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
            for t in request.tools
        ] + body.get("tools", [])
    body.update(request.extra)
    return body


def _blocks(m: plait.Message) -> list[dict[str, Any]]:
    """A message as content blocks: its text, the tools it calls, or one tool's result."""
    if m.role == "tool":
        return [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
    return blocks + [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
        for c in m.tool_calls
    ]


def _tool_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "output"


def _usage(usage: Any) -> plait.TokenCount:
    if not isinstance(usage, dict):
        return plait.TokenCount()
    # Anthropic's input_tokens excludes cached tokens; plait counts them as part of the input.
    read = plait.token_count(usage.get("cache_read_input_tokens"))
    written = plait.token_count(usage.get("cache_creation_input_tokens"))
    return plait.TokenCount(
        input_tokens=plait.token_count(usage.get("input_tokens")) + read + written,
        output_tokens=plait.token_count(usage.get("output_tokens")),
        cached_tokens=read,
        cache_write_tokens=written,
    )
