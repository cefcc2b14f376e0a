"""Chat Completions stream events (``chat.completion.chunk``) to plait's stream chunks.

Each event holds a delta of the first choice; with ``stream_options.include_usage`` the
last event before ``[DONE]`` has no choices and carries the whole reply's usage. A server
that fails mid-reply sends ``{"error": {...}}`` as an event instead of a status code.
"""

from __future__ import annotations

from typing import Any

import plait

from ._readers import content_text, usage_of

__all__ = ["stream_chunk"]


def stream_chunk(data: Any, *, provider: str, model: str) -> plait.StreamChunk | None:
    """The chunk one event says, ``None`` for an event with nothing in it (the role)."""
    try:  # nearly every event: one piece of text and nothing else (its cost is per token)
        choice = data["choices"][0]
        delta = choice["delta"]
        text = delta["content"]
        if (type(text) is str and text and choice["finish_reason"] is None
                and data.get("usage") is None and not delta.get("refusal")):
            return plait.StreamChunk(text)  # the model comes with the last event's usage
    except (KeyError, IndexError, TypeError):
        pass  # not that shape: read it in full
    where: dict[str, Any] = {"provider": provider, "model": model}
    if not isinstance(data, dict):
        raise plait.ProviderError(f"unexpected stream event: {plait.json_excerpt(data)}",
                                  **where)
    if "error" in data:
        raise _stream_error(data["error"], where)
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    delta = choice.get("delta")
    delta = delta if isinstance(delta, dict) else {}
    if refusal := delta.get("refusal"):
        raise plait.ContentRefused(f"the model refused: {refusal}", **where)
    finish_reason = choice.get("finish_reason")
    if finish_reason == "content_filter":
        raise plait.ContentRefused("the server's content filter blocked the reply", **where)
    usage = data.get("usage")
    chunk = plait.StreamChunk(
        text=content_text(delta.get("content")),
        usage=usage_of(usage) if isinstance(usage, dict) else None,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        model=data.get("model") if isinstance(data.get("model"), str) else None,
    )
    if not (chunk.text or chunk.usage or chunk.finish_reason):
        return None
    return chunk


def _stream_error(error: Any, where: dict[str, Any]) -> plait.ProviderError:
    """An error event: rate limits and overloads are transient, the rest are not."""
    error = error if isinstance(error, dict) else {"message": str(error)}
    message = str(error.get("message") or "the server sent an error event")
    kind = " ".join(str(error.get(k) or "") for k in ("type", "code")).lower()
    if "rate_limit" in kind:
        return plait.RateLimited(message, status=None, **where)
    if any(word in kind for word in ("server_error", "overloaded", "unavailable")):
        return plait.ProviderUnavailable(message, **where)
    return plait.ProviderError(message, **where)
