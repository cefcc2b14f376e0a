"""The Gemini API provider: ``POST {base_url}/v1beta/models/{model}:generateContent``.

The key travels in the ``x-goog-api-key`` header, never in the URL (URLs end up in logs
and traces). Settings and the key are read at call time, so building the provider does no
I/O.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import plait

from ._schema import response_schema

if TYPE_CHECKING:
    import httpx

__all__ = ["GeminiProvider"]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
# Finish reasons that mean a filter withheld the reply.
_BLOCKED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}


class GeminiProvider:
    """``async complete(request)`` and ``stream(request)`` over the Runtime's shared httpx
    client."""

    def __init__(self, env: plait.ProviderEnv) -> None:
        self._env = env

    def __repr__(self) -> str:
        return f"GeminiProvider(name={self._env.name!r}, base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        return str(self._env.settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
        url, exchange = self._exchange(request, "generateContent")
        data = await plait.post_json(self._env.http, url, **exchange)
        return self._response(data, request)

    async def stream(self, request: plait.ModelRequest) -> AsyncIterator[plait.StreamChunk]:
        """``streamGenerateContent?alt=sse``: each event is a partial reply of the same
        shape as a whole one; the one with a finish reason carries the final usage."""
        url, exchange = self._exchange(request, "streamGenerateContent")
        failed: plait.ProviderError | None = None
        async with plait.stream_post(self._env.http, f"{url}?alt=sse",
                                     **exchange) as response:
            import httpx_sse  # with httpx, on first use: registration stays light

            # Read to the body's end (the server closes after an error event): httpx's
            # body iterators are generators that warn when left unfinished.
            async with contextlib.aclosing(httpx_sse.EventSource(response).aiter_sse()) as events:
                async for event in events:
                    if failed is not None:
                        continue
                    try:
                        chunk = self._chunk(json.loads(event.data), request)
                    except plait.ProviderError as exc:
                        failed = exc
                        continue
                    if chunk is not None:
                        yield chunk
        if failed is not None:
            raise failed

    def _chunk(self, data: Any, request: plait.ModelRequest) -> plait.StreamChunk | None:
        where: dict[str, Any] = {"provider": self._env.name, "model": request.model}
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise _event_error(data["error"], where)
        if isinstance(data, dict) and not data.get("candidates") and "promptFeedback" not in data:
            return None  # usage alone, before the last event says it again
        response = self._response(data, request)
        finished = response.finish_reason is not None
        if not (response.text or finished):
            return None
        return plait.StreamChunk(response.text, response.usage if finished else None,
                                 response.finish_reason, response.model)

    def _exchange(self, request: plait.ModelRequest, method: str) -> tuple[str, dict[str, Any]]:
        """The URL of ``method`` for the model and what ``post_json`` / ``stream_post``
        are called with."""
        name, settings = self._env.name, self._env.settings
        key = settings.get("api_key") or next(
            (os.environ[v] for v in KEY_VARS if os.environ.get(v)), None
        )
        if not key:
            raise plait.AuthenticationError(
                f"no API key: set {' or '.join(KEY_VARS)} or Runtime(settings={{{name!r}: "
                "{'api_key': ...}})",
                provider=name,
                model=request.model,
            )
        model = request.model.removeprefix("models/")
        url = f"{self.base_url}/v1beta/models/{quote(model, safe='')}:{method}"
        timeout = request.timeout or settings.get("timeout")
        return url, {
            "json": _body(request),
            "headers": {"x-goog-api-key": str(key)},
            "timeout": float(timeout) if timeout else None,
            "provider": name,
            "model": request.model,
            "error": functools.partial(_error, provider=name, model=request.model),
        }

    def _response(self, data: Any, request: plait.ModelRequest) -> plait.ModelResponse:
        where: dict[str, Any] = {"provider": self._env.name, "model": request.model}
        if not isinstance(data, dict):
            raise plait.ProviderError(
                f"the reply has no candidates: {plait.json_excerpt(data)}", **where
            )
        feedback = data.get("promptFeedback")
        blocked = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if blocked:
            raise plait.ContentRefused(f"the prompt was blocked ({blocked})", **where)
        candidates = data.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else None
        if not isinstance(candidate, dict):
            raise plait.ProviderError(
                f"the reply has no candidates: {plait.json_excerpt(data)}", **where
            )
        reason = candidate.get("finishReason")
        if reason in _BLOCKED:
            raise plait.ContentRefused(f"the reply was blocked ({reason})", **where)
        finish_reason = _FINISH.get(reason, reason.lower()) if isinstance(reason, str) else None
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        parts = parts if isinstance(parts, list) else []
        text = "".join(
            str(p.get("text", "")) for p in parts if isinstance(p, dict) and not p.get("thought")
        )
        calls = _function_calls(parts)
        return plait.ModelResponse(
            text=text,
            usage=_usage(data.get("usageMetadata")),
            finish_reason="tool_calls" if calls else finish_reason,
            parsed=plait.json_or_none(text) if request.json_schema is not None else None,
            model=data.get("modelVersion") if isinstance(data.get("modelVersion"), str) else None,
            raw=data,
            tool_calls=calls,
        )


def _body(request: plait.ModelRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        # turns alternate and open with the user; a merged turn is one part per message
        "contents": [
            {"role": "model" if role == "assistant" else "user",
             "parts": [{"text": t} for t in texts]}
            for role, texts in request.turns()
        ] if not request.tools else [
            {"role": "model" if role == "assistant" else "user",
             "parts": [p for m in turn for p in _parts(m)]}
            for role, turn in request.turn_messages()
        ]
    }
    system = request.system
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
        if request.json_schema is not None:  # JSON mode and function calls do not mix
            hint = ("When you answer (not calling a function), reply with one JSON object "
                    f"that matches this JSON schema:\n{json.dumps(request.json_schema)}")
            system = f"{system}\n\n{hint}" if system else hint
    if system is not None:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.seed is not None:
        config["seed"] = request.seed
    if request.json_schema is not None and not request.tools:
        config["responseMimeType"] = "application/json"
        schema = response_schema(request.json_schema)
        if schema is not None:
            config["responseSchema"] = schema
    extra = dict(request.extra)
    config.update(extra.pop("generationConfig", None) or {})  # thinkingConfig, topK, ...
    if config:
        body["generationConfig"] = config
    body.update(extra)
    return body


def _declaration(tool: plait.ToolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name, "description": tool.description}
    if tool.parameters.get("properties"):  # a function without parameters declares none
        schema = response_schema(tool.parameters)
        if schema is not None:
            out["parameters"] = schema
        else:  # beyond the OpenAPI subset: the API also takes plain JSON Schema
            out["parametersJsonSchema"] = dict(tool.parameters)
    return out


def _parts(m: plait.Message) -> list[dict[str, Any]]:
    """A message as parts: its text, the functions it calls, or one function's response."""
    if m.role == "tool":
        result = plait.json_or_none(m.content)
        response = {"name": m.name, "response": result if isinstance(result, dict)
                    else {"result": m.content}}
        if m.tool_call_id:  # newer models number their calls; older ones pair them in order
            response["id"] = m.tool_call_id
        return [{"functionResponse": response}]
    parts: list[dict[str, Any]] = [{"text": m.content}] if m.content else []
    for c in m.tool_calls:
        call: dict[str, Any] = {"name": c.name, "args": c.arguments}
        if c.id:
            call["id"] = c.id
        parts.append({"functionCall": call, **c.extra})  # thoughtSignature goes back as given
    return parts


def _function_calls(parts: list[Any]) -> tuple[plait.ToolCall, ...]:
    calls = []
    for p in parts:
        call = p.get("functionCall") if isinstance(p, dict) else None
        if isinstance(call, dict):
            extra = {"thoughtSignature": p["thoughtSignature"]} if "thoughtSignature" in p else {}
            calls.append(plait.ToolCall(str(call.get("name", "")), call.get("args") or {},
                                        str(call.get("id") or ""), extra))
    return tuple(calls)


def _error(response: httpx.Response, *, provider: str, model: str) -> plait.ProviderError:
    error = plait.error_for_response(response, provider=provider, model=model)
    details = _details(response)
    if isinstance(error, plait.BadRequest) and any(
        d.get("reason") == "API_KEY_INVALID" for d in details
    ):  # Google answers a bad key with 400, not 401
        return plait.AuthenticationError(
            error.message, provider=provider, model=model, status=error.status
        )
    if isinstance(error, plait.RateLimited) and error.retry_after is None:
        delays = (d.get("retryDelay") for d in details if "retryDelay" in d)
        error.retry_after = next((s for s in map(_seconds, delays) if s is not None), None)
    return error


def _event_error(error: dict[str, Any], where: dict[str, Any]) -> plait.ProviderError:
    """An error sent as a stream event (``{"error": {"code", "message", "status"}}``)."""
    message = str(error.get("message") or "the server sent an error event")
    code, status = error.get("code"), str(error.get("status") or "")
    if code == 429 or status == "RESOURCE_EXHAUSTED":
        return plait.RateLimited(message, status=None, **where)
    if (isinstance(code, int) and code >= 500) or status in ("UNAVAILABLE", "INTERNAL"):
        return plait.ProviderUnavailable(message, **where)
    return plait.ProviderError(message, **where)


def _details(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        details = response.json()["error"]["details"]
    except (ValueError, KeyError, TypeError):
        return []
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _seconds(duration: Any) -> float | None:
    """A protobuf Duration in JSON ("37s", "1.5s") as seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", duration) if isinstance(duration, str) else None
    return float(match.group(1)) if match else None


def _usage(usage: Any) -> plait.TokenCount:
    if not isinstance(usage, dict):
        return plait.TokenCount()
    return plait.TokenCount(
        input_tokens=plait.token_count(usage.get("promptTokenCount")),
        # Thinking is billed as output, but counted apart from the candidates.
        output_tokens=plait.token_count(usage.get("candidatesTokenCount"))
        + plait.token_count(usage.get("thoughtsTokenCount")),
        cached_tokens=plait.token_count(usage.get("cachedContentTokenCount")),
    )
