"""Readers of the fields a whole reply and a stream event share."""

from __future__ import annotations

from typing import Any

import plait

__all__ = ["content_text", "usage_of"]


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some compatible servers answer with content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def usage_of(usage: Any) -> plait.TokenCount:
    if not isinstance(usage, dict):
        return plait.TokenCount()
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return plait.TokenCount(
        input_tokens=plait.token_count(usage.get("prompt_tokens")),
        output_tokens=plait.token_count(usage.get("completion_tokens")),
        cached_tokens=plait.token_count(cached),
    )
