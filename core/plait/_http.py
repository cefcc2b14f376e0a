"""HTTP plumbing every provider plugin shares: vendor failures to plait's typed errors,
and the small readers of a vendor's reply.

``post_json`` is a provider's whole exchange: POST a JSON body, get the decoded reply or a
typed error; ``stream_post`` is the same for a streamed reply (Server-Sent Events), as an
``async with`` around the open response. Under them, ``error_for_response`` turns an
error status into the matching ``ProviderError`` and ``http_errors`` translates what
httpx raises (timeouts, dropped connections) and a reply body that is not JSON. Messages
carry the vendor's own words, never request headers. A vendor may echo a key back, so
every message has the exact secrets its request carried replaced by ``[redacted]`` (the
values of ``Authorization``, ``x-api-key``, ``api-key``, ``x-goog-api-key`` and any header
the caller names in ``secret_headers``, and of key-like URL query parameters such as
``key=``), then any other credential-looking token.

``token_count``, ``json_or_none`` and ``json_excerpt`` read a decoded reply the same way
in every provider: usage fields, structured output sent as text, and the glimpse of an
unexpected reply that goes into an error message.

httpx is imported on first use, not at import time, so ``import plait`` stays light for
plugin registration; by the time these run the caller already holds an httpx client.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._errors import (
    AuthenticationError,
    BadRequest,
    ModelNotFound,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "error_for_response",
    "http_errors",
    "json_excerpt",
    "json_or_none",
    "parse_retry_after",
    "post_json",
    "stream_post",
    "token_count",
]

_EXCERPT = 200

# Vendors sometimes echo a key, whole or partly masked ("sk-abc***wxyz"), in an error.
_CREDENTIAL = re.compile(
    r"\b(?:sk|gsk|xai)[-_][\w*-]{8,}"  # OpenAI, Anthropic, OpenRouter, Groq, xAI style keys
    r"|\bAIza[\w-]{16,}"  # Google API keys
    r"|\b[A-Za-z0-9]{40,}\b"  # long opaque tokens (Together and other bearer keys)
    r"|[\w.-]*\*{3,}[\w*.-]*"  # a key the vendor masked but still partly showed
    r"|(?<=[?&]key=)[^&#\s'\"]+"  # a key in a URL (Google's ?key=)
)
# Headers and URL query parameters whose values are credentials, by name (lower case).
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"}
)
_SECRET_PARAMS = frozenset({"key", "api_key", "apikey", "access_token", "token"})
# A value this short is not worth mangling every message for; the patterns still apply.
_MIN_SECRET = 4


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta seconds or an HTTP date.

    A date is counted from ``now``: pass the reply's own ``Date`` so that a clock out of
    step with the server's does not shorten the wait (to nothing, when ours is ahead);
    the local clock when ``None``. ``None`` when absent or unreadable; never negative.
    """
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = _http_date(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def error_for_response(
    response: httpx.Response,
    *,
    provider: str,
    model: str,
    message: str | None = None,
    secret_headers: Collection[str] = (),
) -> ProviderError:
    """The typed error for an HTTP error reply (raise it: ``raise error_for_response(...)``).

    401/403 ``AuthenticationError``, 404 ``ModelNotFound``, 429 ``RateLimited`` (with
    ``retry_after`` from ``retry-after-ms`` or ``Retry-After``), 408/409/5xx
    ``ProviderUnavailable`` (retryable), other 4xx ``BadRequest``. ``message`` is what the
    caller extracted from the vendor's body; without it the usual ``{"error": {"message":
    ...}}`` shapes are read, then a short excerpt of the body. The secrets of
    ``response.request`` (its key headers, those named in ``secret_headers``, key-like
    query parameters) never show in the message.
    """
    status = response.status_code
    text = _redact(
        message if message is not None else _vendor_message(response),
        _secrets(_request_of(response), secret_headers),
    )
    where: dict[str, Any] = {"provider": provider, "model": model, "status": status}
    if status in (401, 403):
        return AuthenticationError(text or "authentication failed", **where)
    if status == 404:
        return ModelNotFound(text or "model not found", **where)
    if status == 429:
        return RateLimited(text or "rate limited", retry_after=_retry_after(response), **where)
    if status in (408, 409) or status >= 500:
        return ProviderUnavailable(text or "service unavailable", **where)
    if 400 <= status < 500:
        return BadRequest(text or "bad request", **where)
    return ProviderError(text or f"unexpected HTTP status {status}", **where)


def http_errors(
    provider: str, model: str, *, secret_headers: Collection[str] = ()
) -> contextlib.AbstractContextManager[None]:
    """Translate the failures of one HTTP exchange into ``ProviderUnavailable`` (retryable).

    Covers httpx timeouts and transport errors (refused or dropped connections) and a reply
    body that is not JSON, so wrap the request and ``response.json()``::

        with plait.http_errors("openai", request.model):
            response = await client.post(url, json=body, headers=headers)
            if response.is_error:
                raise plait.error_for_response(response, provider="openai", model=...)
            data = response.json()

    A transport error's text has the secrets of its request (see ``error_for_response``)
    redacted; a body that is not JSON carries no request, so only the patterns apply to it.
    """
    return _http_errors(provider, model, secret_headers, None)


@contextlib.contextmanager
def _http_errors(
    provider: str, model: str, secret_headers: Collection[str], request: httpx.Request | None
) -> Iterator[None]:
    import httpx

    def unavailable(message: str) -> ProviderUnavailable:
        return ProviderUnavailable(message, provider=provider, model=model)

    try:
        yield
    except httpx.TimeoutException as exc:
        raise unavailable(f"request timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        text = _redact(str(exc), _secrets(_request_of(exc) or request, secret_headers))
        raise unavailable(f"connection failed: {text or type(exc).__name__}") from exc
    except json.JSONDecodeError as exc:
        text = _redact(_excerpt(exc.doc), _secrets(request, secret_headers))
        raise unavailable(f"the reply is not valid JSON: {text!r}") from exc
    except UnicodeDecodeError as exc:
        raise unavailable("the reply is not valid UTF-8 JSON") from exc


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    json: Any,
    headers: Mapping[str, str],
    timeout: float | None,  # noqa: ASYNC109  # httpx's per-request timeout, not a cancel scope
    provider: str,
    model: str,
    error: Callable[[httpx.Response], ProviderError] | None = None,
    secret_headers: Collection[str] = (),
) -> Any:
    """POST ``json`` to ``url`` and return the decoded JSON reply.

    ``timeout`` is in seconds for this request; ``None`` keeps the client's own timeouts.
    An error status raises ``error(response)``, by default ``error_for_response`` (pass
    your own to read a vendor's error details); a timeout, a failed connection or a reply
    that is not JSON raises ``ProviderUnavailable`` (see ``http_errors``). Name headers
    that carry a secret beyond the usual key headers in ``secret_headers`` (an ``error``
    of your own passes them on to ``error_for_response``)::

        data = await plait.post_json(env.http, f"{base_url}/v1/messages", json=body,
                                     headers=headers, timeout=request.timeout,
                                     provider=env.name, model=request.model)
    """
    request = client.build_request("POST", url, json=json, headers=headers,
                                   timeout=client.timeout if timeout is None else timeout)
    with _http_errors(provider, model, secret_headers, request):
        response = await client.send(request)
        if response.is_error:
            if error is None:
                raise error_for_response(response, provider=provider, model=model,
                                         secret_headers=secret_headers)
            raise error(response)
        return response.json()


@contextlib.asynccontextmanager
async def stream_post(
    client: httpx.AsyncClient,
    url: str,
    *,
    json: Any,
    headers: Mapping[str, str],
    timeout: float | None,  # noqa: ASYNC109  # httpx's per-request timeout, not a cancel scope
    provider: str,
    model: str,
    error: Callable[[httpx.Response], ProviderError] | None = None,
    secret_headers: Collection[str] = (),
) -> AsyncIterator[httpx.Response]:
    """POST ``json`` to ``url`` and hold the response open while its body streams in.

    As ``post_json``: an error status raises ``error(response)`` (its body read first, so
    the vendor's message is in it), and a timeout or a failed connection, when sending or
    while the body is read inside the block, raises ``ProviderUnavailable``. Leaving the
    block closes the response (and the connection, if the body was not read to its end)::

        async with plait.stream_post(env.http, url, json=body, headers=headers,
                                     timeout=request.timeout, provider=env.name,
                                     model=request.model) as response:
            async for event in httpx_sse.EventSource(response).aiter_sse():
                ...
    """
    request = client.build_request("POST", url, json=json, headers=headers,
                                   timeout=client.timeout if timeout is None else timeout)
    with _http_errors(provider, model, secret_headers, request):
        response = await client.send(request, stream=True)
        try:
            if response.is_error:
                await response.aread()
                if error is None:
                    raise error_for_response(response, provider=provider, model=model,
                                             secret_headers=secret_headers)
                raise error(response)
            yield response
        finally:
            await response.aclose()


def token_count(value: Any) -> int:
    """A token count from a vendor's usage field: ``value`` if it is a positive int, else 0.

    Vendors leave usage fields out or send ``null``; a missing count is no reason to fail a
    call, so it counts as nothing::

        plait.TokenCount(input_tokens=plait.token_count(usage.get("prompt_tokens")), ...)
    """
    return value if isinstance(value, int) and value > 0 else 0


def json_or_none(text: str) -> Any:
    """The JSON value ``text`` holds, or ``None`` when it is not JSON.

    For ``ModelResponse.parsed`` when a vendor returns structured output as text. Strict on
    purpose: a reply in a code fence, or with prose around it, gives ``None``, and plait
    then parses ``text`` itself, leniently, and re-asks when it must.
    """
    try:
        return json.loads(text)
    except ValueError:
        return None


def json_excerpt(value: Any) -> str:
    """``value`` (a decoded reply) as JSON, cut to 200 characters, for an error message.

    For a reply that is not the shape the vendor documents::

        raise plait.ProviderError(f"the reply has no choices: {plait.json_excerpt(data)}", ...)
    """
    return _shorten(json.dumps(value))


def _http_date(value: str) -> datetime:
    from email.utils import parsedate_to_datetime  # rare: only HTTP-date values

    when = parsedate_to_datetime(value)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # RFC 9110: GMT


def _retry_after(response: httpx.Response) -> float | None:
    millis = response.headers.get("retry-after-ms")
    if millis is not None:
        try:
            seconds = float(millis) / 1000
        except ValueError:
            pass
        else:
            if math.isfinite(seconds):
                return max(seconds, 0.0)
    try:
        sent = _http_date(response.headers.get("date", ""))
    except (TypeError, ValueError):
        sent = None
    return parse_retry_after(response.headers.get("retry-after"), now=sent)


def _vendor_message(response: httpx.Response) -> str:
    import httpx

    try:
        content = response.content
    except httpx.ResponseNotRead:  # a streamed reply nobody read: say nothing rather than block
        return ""
    try:
        body = json.loads(content)
    except ValueError:  # not JSON (a proxy's HTML page, plain text): show the start of it
        return _excerpt(content.decode("utf-8", "replace"))
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])  # OpenAI, Anthropic, Gemini and most compatibles
        if isinstance(error, str):
            return error  # Ollama's native shape
        for key in ("message", "detail"):  # plain servers, FastAPI
            if isinstance(body.get(key), str):
                return str(body[key])
    return _excerpt(content.decode("utf-8", "replace"))


def _excerpt(text: str) -> str:
    return _shorten(" ".join(text.split()))


def _shorten(text: str) -> str:
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _request_of(source: httpx.Response | httpx.HTTPError) -> httpx.Request | None:
    try:
        return source.request
    except RuntimeError:  # httpx raises when no request was attached (a hand-made Response)
        return None


def _secrets(request: httpx.Request | None, secret_headers: Collection[str]) -> list[str]:
    """The credentials ``request`` carried, longest first (so none is left half-shown)."""
    if request is None:
        return []
    names = _SECRET_HEADERS | {name.lower() for name in secret_headers}
    found: set[str] = set()
    for name, value in request.headers.items():  # httpx lower-cases the names
        if name in names:
            found.add(value)
            found.update(value.split(maxsplit=1)[1:])  # the token of "Bearer <token>"
    found.update(v for k, v in request.url.params.multi_items() if k.lower() in _SECRET_PARAMS)
    if request.url.password:
        found.add(request.url.password)
    return sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True)


def _redact(text: str, secrets: Collection[str] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return _CREDENTIAL.sub("[redacted]", text).strip()
