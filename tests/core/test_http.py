"""plait._http: HTTP replies and httpx failures become plait's typed errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import plait
import pytest
from plait._http import parse_retry_after

KEY = "sk-proj-Zx81TESTKEYdoNotLeak0000aaaa"
URL = "https://api.example.test/v1/chat"


def reply(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request(
        "POST",
        "https://api.example.test/v1/chat",
        headers={"Authorization": f"Bearer {KEY}", "x-api-key": KEY},
    )
    if body is None or isinstance(body, bytes):
        return httpx.Response(status, content=body or b"", headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def error_for(
    status: int,
    body: object = None,
    headers: dict[str, str] | None = None,
    message: str | None = None,
) -> plait.ProviderError:
    return plait.error_for_response(
        reply(status, body, headers), provider="acme", model="m-1", message=message
    )


def assert_no_key(error: BaseException) -> None:
    assert KEY not in str(error)
    assert KEY not in repr(error.args)
    assert "Zx81TESTKEY" not in str(error)


# -- parse_retry_after ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("1.5", 1.5),
        (" 30 ", 30.0),
        ("0", 0.0),
        ("-3", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    seconds = parse_retry_after(format_datetime(when, usegmt=True))
    assert seconds is not None
    assert 100 < seconds <= 120


def test_parse_retry_after_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# -- error_for_response -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, plait.AuthenticationError),
        (403, plait.AuthenticationError),
        (404, plait.ModelNotFound),
        (429, plait.RateLimited),
        (408, plait.ProviderUnavailable),
        (409, plait.ProviderUnavailable),
        (500, plait.ProviderUnavailable),
        (502, plait.ProviderUnavailable),
        (503, plait.ProviderUnavailable),
        (529, plait.ProviderUnavailable),
        (400, plait.BadRequest),
        (413, plait.BadRequest),
        (422, plait.BadRequest),
    ],
)
def test_status_maps_to_typed_error(status: int, cls: type[plait.ProviderError]) -> None:
    error = error_for(status, {"error": {"message": "vendor says no"}})
    assert type(error) is cls
    assert (error.provider, error.model, error.status) == ("acme", "m-1", status)
    assert error.message == "vendor says no"
    assert str(error) == f"acme:m-1: vendor says no (HTTP {status})"


def test_only_transient_failures_are_retryable() -> None:
    assert error_for(500).retryable
    assert error_for(408).retryable
    assert error_for(429).retryable
    assert not error_for(400).retryable
    assert not error_for(401).retryable
    assert not error_for(404).retryable


def test_unexpected_status_is_a_plain_provider_error() -> None:
    error = error_for(302, b"moved")
    assert type(error) is plait.ProviderError
    assert not error.retryable


def test_callers_message_wins() -> None:
    error = error_for(400, {"error": {"message": "generic"}}, message="the real reason")
    assert error.message == "the real reason"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"type": "error", "error": {"type": "invalid_request_error", "message": "anthropic"}},
            "anthropic",
        ),
        ({"error": {"code": 400, "message": "gemini", "status": "INVALID_ARGUMENT"}}, "gemini"),
        ({"error": "ollama"}, "ollama"),
        ({"detail": "fastapi"}, "fastapi"),
        ({"message": "plain"}, "plain"),
    ],
)
def test_vendor_message_shapes(body: object, expected: str) -> None:
    assert error_for(400, body).message == expected


def test_non_json_body_falls_back_to_a_short_excerpt() -> None:
    page = b"<html>\n  <body>Bad   gateway</body>" + b"x" * 1000
    error = error_for(502, page)
    assert error.message.startswith("<html> <body>Bad gateway</body>")
    assert len(error.message) <= 200


def test_empty_body_gets_a_default_message() -> None:
    assert error_for(404).message == "model not found"
    assert error_for(503).message == "service unavailable"


def test_unread_streamed_body_is_not_read() -> None:
    response = httpx.Response(500, stream=httpx.ByteStream(b"boom"))
    error = plait.error_for_response(response, provider="acme", model="m-1")
    assert isinstance(error, plait.ProviderUnavailable)
    assert error.message == "service unavailable"
    assert not response.is_stream_consumed


def test_rate_limited_reads_retry_after_seconds() -> None:
    error = error_for(429, {"error": {"message": "slow down"}}, {"Retry-After": "12"})
    assert isinstance(error, plait.RateLimited)
    assert error.retry_after == 12.0


def test_rate_limited_prefers_retry_after_ms() -> None:
    error = error_for(429, None, {"retry-after-ms": "1500", "retry-after": "2"})
    assert isinstance(error, plait.RateLimited)
    assert error.retry_after == 1.5


def test_rate_limited_reads_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=60)
    error = error_for(429, None, {"Retry-After": format_datetime(when, usegmt=True)})
    assert isinstance(error, plait.RateLimited)
    assert error.retry_after is not None
    assert 40 < error.retry_after <= 60


def test_an_http_date_counts_from_the_replys_own_date() -> None:
    # our clock a minute ahead of the server's: against it the date has already passed
    sent = datetime.now(UTC) - timedelta(minutes=1)
    headers = {
        "Date": format_datetime(sent, usegmt=True),
        "Retry-After": format_datetime(sent + timedelta(seconds=5), usegmt=True),
    }
    error = error_for(429, None, headers)
    assert isinstance(error, plait.RateLimited)
    assert error.retry_after == 5.0


def test_an_unreadable_date_header_falls_back_to_the_local_clock() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    error = error_for(429, None, {"Date": "yesterday", "Retry-After": when})
    assert isinstance(error, plait.RateLimited)
    assert error.retry_after is not None
    assert 3 < error.retry_after <= 5


def test_rate_limited_without_header_has_no_retry_after() -> None:
    error = error_for(429, None, {"retry-after-ms": "garbage"})
    assert isinstance(error, plait.RateLimited)
    assert error.retry_after is None


@pytest.mark.parametrize(
    "echoed",
    [
        KEY,
        "sk-ant-api03-abcdefghijklmnop",
        "AIzaSyA1234567890abcdefghijklmnop",
        "gsk_abcdefghijklmnopqrstuvwxyz012345",
        "a" * 32 + "0123456789ab",
        "sk-proj-abc1********************wxyz",
        "sk-abc***wxyz",
    ],
)
def test_echoed_keys_are_masked(echoed: str) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {echoed}. See docs."}}
    error = error_for(401, body)
    assert echoed not in str(error)
    assert "[redacted]" in error.message
    assert error.message.startswith("Incorrect API key provided:")
    assert_no_key(error)


# A key no pattern recognises: only its value, taken from the request, can hide it.
PASSPHRASE = "my-lab-gpu-passphrase-2026"


@pytest.mark.parametrize(
    ("headers", "url"),
    [
        ({"Authorization": f"Bearer {PASSPHRASE}"}, URL),
        ({"Authorization": PASSPHRASE}, URL),
        ({"x-api-key": PASSPHRASE}, URL),
        ({"api-key": PASSPHRASE}, URL),
        ({"X-Goog-Api-Key": PASSPHRASE}, URL),
        ({}, f"{URL}?alt=json&key={PASSPHRASE}"),
        ({}, f"https://me:{PASSPHRASE}@api.example.test/v1/chat"),
    ],
)
def test_the_secrets_a_request_carried_are_redacted_by_value(
    headers: dict[str, str], url: str
) -> None:
    request = httpx.Request("POST", url, headers=headers)
    body = {"error": {"message": f"invalid api key '{PASSPHRASE}' (or '{PASSPHRASE[:20]}')"}}
    response = httpx.Response(401, json=body, request=request)
    error = plait.error_for_response(response, provider="vllm", model="m")
    assert error.message == f"invalid api key '[redacted]' (or '{PASSPHRASE[:20]}')"
    assert PASSPHRASE not in f"{error!s} {error!r}"


def test_a_header_the_caller_names_secret_is_redacted_by_value() -> None:
    request = httpx.Request("POST", URL, headers={"X-Lab-Token": PASSPHRASE, "X-Title": "lab"})
    body = {"error": {"message": f"token {PASSPHRASE} refused for lab"}}
    response = httpx.Response(403, json=body, request=request)
    assert plait.error_for_response(response, provider="lab", model="m").message == (
        f"token {PASSPHRASE} refused for lab"  # not named: nothing says it is a secret
    )
    error = plait.error_for_response(
        response, provider="lab", model="m", secret_headers=["x-lab-token"]
    )
    assert error.message == "token [redacted] refused for lab"


def test_a_key_in_a_url_is_masked_even_without_its_request() -> None:
    message = "GET https://example.test/v1?key=lab-passphrase&alt=json failed"
    assert error_for(500, message=message).message == (
        "GET https://example.test/v1?key=[redacted]&alt=json failed"
    )


def test_model_names_survive_masking() -> None:
    message = "The model `gpt-4o-mini-2024-07-18` does not exist or you do not have access to it."
    assert error_for(404, {"error": {"message": message}}).message == message


def test_request_headers_never_reach_the_error() -> None:
    for status in (400, 401, 404, 429, 500):
        error = error_for(status, b"oops")
        assert_no_key(error)
        assert "Bearer" not in str(error)


# -- http_errors ------------------------------------------------------------------------


def client_raising(exc: Exception) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def post(client: httpx.AsyncClient) -> None:
    with plait.http_errors("acme", "m-1"):
        await client.post(
            "https://api.example.test/v1/chat", headers={"Authorization": f"Bearer {KEY}"}, json={}
        )


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.PoolTimeout("pool"),
    ],
)
async def test_timeouts_become_retryable_unavailable(exc: Exception) -> None:
    async with client_raising(exc) as client:
        with pytest.raises(plait.ProviderUnavailable) as caught:
            await post(client)
    error = caught.value
    assert error.retryable
    assert error.__cause__ is exc
    assert str(error) == f"acme:m-1: request timed out ({type(exc).__name__})"
    assert_no_key(error)


async def test_connection_errors_become_retryable_unavailable() -> None:
    exc = httpx.ConnectError("[Errno 111] Connection refused")
    async with client_raising(exc) as client:
        with pytest.raises(plait.ProviderUnavailable) as caught:
            await post(client)
    assert caught.value.retryable
    assert caught.value.__cause__ is exc
    assert caught.value.message == "connection failed: [Errno 111] Connection refused"
    assert_no_key(caught.value)


async def test_a_transport_error_naming_the_url_has_its_key_redacted() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    url = f"{URL}?key={PASSPHRASE}"
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(plait.ProviderUnavailable) as caught, plait.http_errors("acme", "m"):
            await client.post(url, headers={"x-goog-api-key": PASSPHRASE}, json={})
    assert caught.value.message == (
        "connection failed: cannot reach https://api.example.test/v1/chat?key=[redacted]"
    )
    assert PASSPHRASE not in repr(caught.value)


async def test_dropped_connection_is_retryable() -> None:
    async with client_raising(httpx.RemoteProtocolError("Server disconnected")) as client:
        with pytest.raises(plait.ProviderUnavailable, match="Server disconnected"):
            await post(client)


def test_malformed_json_reply_is_retryable_unavailable() -> None:
    response = reply(200, b'{"choices": [ <html>')
    with pytest.raises(plait.ProviderUnavailable) as caught, plait.http_errors("acme", "m-1"):
        response.json()
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)
    assert "not valid JSON" in caught.value.message
    assert '{"choices": [ <html>' in caught.value.message


def test_non_utf8_reply_is_retryable_unavailable() -> None:
    response = reply(200, b'{"a": "\xff\xfe\xfa"}')
    with (
        pytest.raises(plait.ProviderUnavailable, match="not valid"),
        plait.http_errors("acme", "m-1"),
    ):
        response.json()


def test_other_errors_pass_through_untouched() -> None:
    with pytest.raises(KeyError), plait.http_errors("acme", "m-1"):
        raise KeyError("not ours")
    with pytest.raises(plait.BadRequest), plait.http_errors("acme", "m-1"):
        raise error_for(400)


# -- post_json --------------------------------------------------------------------------


def client_answering(
    *replies: httpx.Response | Exception, seen: list[httpx.Request] | None = None
) -> httpx.AsyncClient:
    queue = list(replies)

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.AsyncClient(transport=httpx.MockTransport(handler),
                             timeout=httpx.Timeout(60, connect=10))


async def post_json(client: httpx.AsyncClient, **kwargs: Any) -> object:
    kwargs.setdefault("timeout", None)
    return await plait.post_json(client, URL, json={"q": "hi"}, headers={"x-api-key": KEY},
                                 provider="acme", model="m-1", **kwargs)


async def test_post_json_sends_the_body_and_headers_and_returns_the_decoded_reply() -> None:
    seen: list[httpx.Request] = []
    async with client_answering(httpx.Response(200, json={"text": "hello"}), seen=seen) as client:
        assert await post_json(client) == {"text": "hello"}
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", URL)
    assert json.loads(request.content) == {"q": "hi"}
    assert request.headers["x-api-key"] == KEY
    assert request.headers["content-type"] == "application/json"


async def test_post_json_timeout_is_for_this_request_and_none_keeps_the_clients() -> None:
    seen: list[httpx.Request] = []
    ok = httpx.Response(200, json={})
    async with client_answering(ok, ok, seen=seen) as client:
        await post_json(client, timeout=5)
        await post_json(client)
    assert seen[0].extensions["timeout"] == dict.fromkeys(("connect", "read", "write", "pool"), 5)
    assert seen[1].extensions["timeout"] == {"connect": 10, "read": 60, "write": 60, "pool": 60}


async def test_post_json_turns_an_error_status_into_the_typed_error() -> None:
    limited = httpx.Response(429, json={"error": {"message": f"slow down {KEY}"}},
                             headers={"Retry-After": "7"})
    async with client_answering(limited) as client:
        with pytest.raises(plait.RateLimited) as caught:
            await post_json(client)
    assert (caught.value.status, caught.value.retry_after) == (429, 7.0)
    assert (caught.value.provider, caught.value.model) == ("acme", "m-1")
    assert caught.value.message == "slow down [redacted]"


async def test_post_json_redacts_the_secrets_it_sent_from_every_message() -> None:
    echoed = f"key {PASSPHRASE} and token {PASSPHRASE[::-1]}"
    refused = httpx.ConnectError(f"proxy refused {echoed}")
    replies = (httpx.Response(401, json={"error": {"message": echoed}}),
               httpx.Response(200, text=f"<html>{echoed}"), refused)
    async with client_answering(*replies) as client:
        for expected in (plait.AuthenticationError, plait.ProviderUnavailable,
                         plait.ProviderUnavailable):
            with pytest.raises(expected) as caught:
                await plait.post_json(
                    client, URL, json={}, timeout=None, provider="lab", model="m",
                    headers={"Authorization": f"Bearer {PASSPHRASE}",
                             "X-Lab-Token": PASSPHRASE[::-1]},
                    secret_headers=["X-Lab-Token"],
                )
            assert PASSPHRASE not in repr(caught.value)
            assert PASSPHRASE[::-1] not in repr(caught.value)
            assert "[redacted]" in caught.value.message


async def test_post_json_raises_what_error_makes_of_an_error_status() -> None:
    def error(response: httpx.Response) -> plait.ProviderError:
        return plait.ModelNotFound(f"gone ({response.status_code})", provider="acme",
                                   model="m-1")

    async with client_answering(httpx.Response(410)) as client:
        with pytest.raises(plait.ModelNotFound, match=r"gone \(410\)"):
            await post_json(client, error=error)


async def test_post_json_refuses_a_reply_that_is_not_json_as_unavailable() -> None:
    async with client_answering(httpx.Response(200, text="<html>502 Bad Gateway")) as client:
        with pytest.raises(plait.ProviderUnavailable) as caught:
            await post_json(client)
    assert caught.value.retryable
    assert "not valid JSON: '<html>502 Bad Gateway'" in caught.value.message


async def test_post_json_turns_a_timeout_into_retryable_unavailable() -> None:
    async with client_answering(httpx.ReadTimeout("read timed out")) as client:
        with pytest.raises(plait.ProviderUnavailable) as caught:
            await post_json(client, timeout=0.5)
    assert caught.value.retryable
    assert str(caught.value) == "acme:m-1: request timed out (ReadTimeout)"


# -- reading a decoded reply ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(12, 12), (0, 0), (-3, 0), (None, 0), ("7", 0), (2.5, 0)]
)
def test_token_count_is_a_positive_int_or_zero(value: object, expected: int) -> None:
    assert plait.token_count(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"city": "Oslo", "celsius": -3}', {"city": "Oslo", "celsius": -3}),
        ("[1, 2]", [1, 2]),
        ("42", 42),
        ('{"city": "Par', None),  # cut short by max_tokens
        ('```json\n{"a": 1}\n```', None),  # fences and prose are left to plait's own parser
        ("Sure! {}", None),
        ("", None),
    ],
)
def test_json_or_none_is_strict(text: str, expected: object) -> None:
    assert plait.json_or_none(text) == expected


def test_json_excerpt_shows_a_short_reply_whole() -> None:
    assert plait.json_excerpt({"id": "x", "choices": []}) == '{"id": "x", "choices": []}'
    assert plait.json_excerpt(["not", "an", "object"]) == '["not", "an", "object"]'


def test_json_excerpt_cuts_a_long_reply_to_200_characters() -> None:
    shown = plait.json_excerpt({"text": "word  " * 100})
    assert len(shown) == 200
    assert shown.startswith('{"text": "word  word  ')  # the JSON as it is, spaces kept
    assert shown.endswith("…")
