"""The cache key: a request reduced to what decides its answer, hashed canonically.

Provider, model, messages, sampling settings, stop sequences, seed, output schema and
vendor extras go in; the per-request timeout does not (it cannot change the answer).
The JSON is canonical (sorted keys, no spaces, floats as Python's shortest repr), so
the key is the same in every process and on every machine.
"""

from __future__ import annotations

import json

import plait

__all__ = ["KEY_VERSION", "request_key"]

KEY_VERSION = 1  # bump when what goes into a key changes: old entries simply miss


def request_key(provider: str, request: plait.ModelRequest) -> str | None:
    """The hex SHA-256 key of ``request``, or ``None`` when its ``extra`` fields are not
    plain JSON (such a request is not cached)."""
    payload = {
        "v": KEY_VERSION,
        "provider": provider,
        "model": request.model,
        "messages": [[m.role, m.content] for m in request.messages],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "seed": request.seed,
        "schema": request.json_schema,
        "schema_name": request.schema_name,
        "extra": dict(request.extra),
    }
    try:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError):
        return None
    import hashlib  # OpenSSL's 3 ms, at the first cached call: `plait --help` loads plugins

    return hashlib.sha256(text.encode()).hexdigest()
