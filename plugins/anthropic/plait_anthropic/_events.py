"""Messages API stream events to plait's stream chunks.

A stream is ``message_start`` (the input usage), content blocks (``content_block_delta``
with ``text_delta`` for text, ``input_json_delta`` for a tool call's input: plait's
structured output), ``message_delta`` (the stop reason and the output usage),
``message_stop``; ``ping`` events come at any time, and a failure mid-reply arrives as an
``error`` event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import plait

__all__ = ["EventReader"]

# Error event types that waiting may cure (the others are the request's own fault).
_TRANSIENT = frozenset({"overloaded_error", "api_error", "timeout_error"})


class EventReader:
    """Turns one stream's events into chunks, remembering the usage across them."""

    def __init__(self, request: plait.ModelRequest, provider: str,
                 finish: Mapping[str, str],
                 usage: Callable[[Any], plait.TokenCount]) -> None:
        self._structured = request.json_schema is not None
        self._where: dict[str, Any] = {"provider": provider, "model": request.model}
        self._finish = finish
        self._usage_of = usage
        self._usage: dict[str, Any] = {}
        self._model: str | None = None
        self._failed: plait.ProviderError | None = None
        self._text: list[str] = []

    def read(self, name: str, data: str) -> plait.StreamChunk | None:
        """The chunk an event says, if any; an error event is raised by ``finished``, once
        the server has closed the stream."""
        if self._failed is not None or name == "ping":
            return None
        event = json.loads(data)
        if not isinstance(event, dict):
            raise plait.ProviderError(f"unexpected stream event: {plait.json_excerpt(event)}",
                                      **self._where)
        kind = event.get("type", name)
        if kind == "error":
            self._failed = self._error(event.get("error"))
        elif kind == "message_start":
            message = event.get("message")
            message = message if isinstance(message, dict) else {}
            self._usage.update(message.get("usage") or {})
            model = message.get("model")
            self._model = model if isinstance(model, str) else None
        elif kind == "content_block_delta":
            return self._delta(event.get("delta"))
        elif kind == "message_delta":
            return self._end(event)
        return None

    def finished(self) -> None:
        if self._failed is not None:
            raise self._failed

    def _delta(self, delta: Any) -> plait.StreamChunk | None:
        delta = delta if isinstance(delta, dict) else {}
        if delta.get("type") == "text_delta" and not self._structured:
            text = str(delta.get("text", ""))
        elif delta.get("type") == "input_json_delta" and self._structured:
            text = str(delta.get("partial_json", ""))
        else:
            return None
        self._text.append(text)
        return plait.StreamChunk(text) if text else None

    def _end(self, event: dict[str, Any]) -> plait.StreamChunk | None:
        delta = event.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        reason = delta.get("stop_reason")
        reason = reason if isinstance(reason, str) else None
        if reason == "refusal":
            said = "".join(self._text)
            self._failed = plait.ContentRefused(
                f"the model refused{': ' + said if said else ''}", **self._where)
            return None
        self._usage.update(event.get("usage") or {})
        finish = self._finish.get(reason, reason) if reason is not None else None
        if self._structured and reason == "tool_use":
            finish = "stop"  # the forced tool call is the answer
        return plait.StreamChunk(usage=self._usage_of(self._usage), finish_reason=finish,
                                 model=self._model)

    def _error(self, error: Any) -> plait.ProviderError:
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or "the server sent an error event")
        kind = str(error.get("type") or "")
        if kind == "rate_limit_error":
            return plait.RateLimited(message, status=None, **self._where)
        if kind in _TRANSIENT:
            return plait.ProviderUnavailable(message, **self._where)
        return plait.ProviderError(f"{kind}: {message}" if kind else message, **self._where)
