"""plait-gemini: generateContent requests and replies, checked against a fake server."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal

import attrs
import httpx
import plait
import plait_gemini
import pytest
from plait_gemini import response_schema
from plait_testing import (
    MockVendor,
    assert_no_secret,
    cut_to_max_tokens,
    registered_providers,
    registration_imports,
)
from plait_testing.contracts import ProviderContract

KEY = "AIzaSyTESTkey0123456789abcdefDoNotLeak"
KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BASE = "https://generativelanguage.googleapis.com/v1beta/models"


@pytest.fixture
def api() -> MockVendor:
    return MockVendor()


@pytest.fixture
def make_provider(api: MockVendor, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """The registered provider, talking to ``api``; no real key in the environment."""
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)

    def make(settings: dict[str, Any] | None = None) -> Any:
        env = api.env("gemini", {"api_key": KEY} if settings is None else settings)
        return registered_providers(plait_gemini)["gemini"]["factory"](env)

    return make


SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
]


def generated(
    text: str | None = "Hello! How can I help you today?",
    *,
    finish_reason: str = "STOP",
    prompt: int = 8,
    candidates: int | None = 9,
    thoughts: int | None = None,
    cached: int | None = None,
    parts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A generateContent reply exactly as generativelanguage.googleapis.com shapes it."""
    content: dict[str, Any] = {"role": "model"}
    if parts is not None:
        content["parts"] = parts
    elif text is not None:
        content["parts"] = [{"text": text}]
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if candidates is not None:
        usage["candidatesTokenCount"] = candidates
    if thoughts is not None:
        usage["thoughtsTokenCount"] = thoughts
    if cached is not None:
        usage["cachedContentTokenCount"] = cached
    usage["totalTokenCount"] = prompt + (candidates or 0) + (thoughts or 0)
    return {
        "candidates": [
            {
                "content": content,
                "finishReason": finish_reason,
                "index": 0,
                "safetyRatings": SAFETY_RATINGS,
            }
        ],
        "usageMetadata": usage,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "ZyFbaPWBE8HNnvgP3_rNkQY",
    }


def google_error(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def user(text: str) -> plait.Message:
    return plait.Message("user", text)


def ask(model: str = "gemini-2.5-flash", **fields: Any) -> plait.ModelRequest:
    fields.setdefault("messages", (user("Say hello."),))
    return plait.ModelRequest(model=model, **fields)


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
    "required": ["city", "celsius"],
    "additionalProperties": False,
}
GEMINI_SCHEMA = {
    "type": "OBJECT",
    "properties": {"city": {"type": "STRING"}, "celsius": {"type": "NUMBER"}},
    "required": ["city", "celsius"],
    "propertyOrdering": ["city", "celsius"],
}


# -- requests ---------------------------------------------------------------------------


async def test_plain_request_and_reply(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(body=generated(prompt=1200, candidates=9, thoughts=23, cached=1024))
    request = ask(
        messages=(
            plait.Message("system", "Be brief."),
            user("Say hello."),
            plait.Message("assistant", "Hello."),
            user("Again."),
        ),
        temperature=0.4,
        max_tokens=256,
        stop=("END",),
        seed=11,
    )

    response = await make_provider().complete(request)

    sent = api.requests[-1]
    assert sent.method == "POST"
    assert str(sent.url) == f"{BASE}/gemini-2.5-flash:generateContent"
    assert "key=" not in str(sent.url)
    assert api.headers() == {"x-goog-api-key": KEY, "content-type": "application/json"}
    assert api.body() == {
        "contents": [
            {"role": "user", "parts": [{"text": "Say hello."}]},
            {"role": "model", "parts": [{"text": "Hello."}]},
            {"role": "user", "parts": [{"text": "Again."}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "temperature": 0.4,
            "maxOutputTokens": 256,
            "stopSequences": ["END"],
            "seed": 11,
        },
    }
    assert response.text == "Hello! How can I help you today?"
    assert response.finish_reason == "stop"
    assert response.model == "gemini-2.5-flash"
    assert response.parsed is None
    # thinking is billed as output
    assert response.usage == plait.TokenCount(
        input_tokens=1200, output_tokens=32, cached_tokens=1024
    )
    assert response.raw["responseId"] == "ZyFbaPWBE8HNnvgP3_rNkQY"


async def test_unset_fields_are_not_sent(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=generated())
    await make_provider().complete(ask("models/gemini-2.0-flash"))
    assert str(api.requests[-1].url) == f"{BASE}/gemini-2.0-flash:generateContent"
    assert api.body() == {"contents": [{"role": "user", "parts": [{"text": "Say hello."}]}]}


async def test_extra_fields_merge_into_the_body_and_generation_config(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=generated())
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    await make_provider().complete(
        ask(
            temperature=0,
            extra={
                "safetySettings": safety,
                "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}, "topK": 4},
            },
        )
    )
    assert api.body()["safetySettings"] == safety
    assert api.body()["generationConfig"] == {
        "temperature": 0,
        "topK": 4,
        "thinkingConfig": {"thinkingBudget": 0},
    }


async def test_thought_parts_are_not_text(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(
        body=generated(parts=[{"text": "Let me think...", "thought": True}, {"text": "Forty-two."}])
    )
    response = await make_provider().complete(ask())
    assert response.text == "Forty-two."


async def test_structured_output(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(body=generated('{"city": "Paris", "celsius": 21.5}'))
    response = await make_provider().complete(ask(json_schema=SCHEMA, temperature=0))
    assert api.body()["generationConfig"] == {
        "temperature": 0,
        "responseMimeType": "application/json",
        "responseSchema": GEMINI_SCHEMA,
    }
    assert response.parsed == {"city": "Paris", "celsius": 21.5}
    assert response.text == '{"city": "Paris", "celsius": 21.5}'


async def test_schema_gemini_cannot_express_still_asks_for_json(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=generated('{"anything": 1}'))
    schema = {"type": "object", "properties": {"data": {"type": "object"}}, "required": ["data"]}
    response = await make_provider().complete(ask(json_schema=schema))
    assert api.body()["generationConfig"] == {"responseMimeType": "application/json"}
    assert response.parsed == {"anything": 1}


async def test_truncated_reply(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(body=generated('{"city": "Pa', finish_reason="MAX_TOKENS", candidates=5))
    response = await make_provider().complete(ask(json_schema=SCHEMA, max_tokens=5))
    assert response.finish_reason == "length"
    assert response.text == '{"city": "Pa'
    assert response.parsed is None


async def test_thinking_ate_the_whole_budget(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(
        body=generated(None, finish_reason="MAX_TOKENS", prompt=10, candidates=None, thoughts=49)
    )
    response = await make_provider().complete(ask(max_tokens=49))
    assert response.text == ""
    assert response.finish_reason == "length"
    assert response.usage == plait.TokenCount(input_tokens=10, output_tokens=49)


async def test_other_finish_reasons_pass_through_lower_case(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=generated("", finish_reason="MALFORMED_FUNCTION_CALL"))
    response = await make_provider().complete(ask())
    assert response.finish_reason == "malformed_function_call"


# -- schema conversion ------------------------------------------------------------------


def test_schema_conversion_of_plaits_own_schemas() -> None:
    schema = {
        "type": "object",
        "description": "A support ticket.",
        "properties": {
            "priority": {"type": "string", "enum": ["low", "high"], "description": "How urgent."},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "assignee": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "score": {"type": "integer", "enum": [1, 2, 3]},
            "flag": {"type": "boolean"},
            "when": {"type": "string", "format": "date-time"},
            "email": {"type": "string", "format": "email", "pattern": ".+@.+"},
            "either": {
                "anyOf": [{"type": "string", "enum": ["a"]}, {"type": "integer"}, {"type": "null"}],
                "description": "Mixed.",
            },
            "inner": {
                "type": "object",
                "properties": {"x": {"type": "number"}},
                "required": ["x"],
                "additionalProperties": False,
            },
        },
        "required": [
            "priority",
            "tags",
            "assignee",
            "score",
            "flag",
            "when",
            "email",
            "either",
            "inner",
        ],
        "additionalProperties": False,
    }
    assert response_schema(schema) == {
        "type": "OBJECT",
        "description": "A support ticket.",
        "properties": {
            "priority": {
                "type": "STRING",
                "description": "How urgent.",
                "format": "enum",
                "enum": ["low", "high"],
            },
            "tags": {"type": "ARRAY", "minItems": 1, "items": {"type": "STRING"}},
            "assignee": {"type": "STRING", "nullable": True},
            "score": {"type": "INTEGER"},  # Gemini enums are strings only
            "flag": {"type": "BOOLEAN"},
            "when": {"type": "STRING", "format": "date-time"},
            "email": {"type": "STRING"},
            "either": {
                "anyOf": [{"type": "STRING", "format": "enum", "enum": ["a"]}, {"type": "INTEGER"}],
                "description": "Mixed.",
                "nullable": True,
            },
            "inner": {
                "type": "OBJECT",
                "properties": {"x": {"type": "NUMBER"}},
                "required": ["x"],
                "propertyOrdering": ["x"],
            },
        },
        "required": [
            "priority",
            "tags",
            "assignee",
            "score",
            "flag",
            "when",
            "email",
            "either",
            "inner",
        ],
        "propertyOrdering": [
            "priority",
            "tags",
            "assignee",
            "score",
            "flag",
            "when",
            "email",
            "either",
            "inner",
        ],
    }


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": ["string", "null"]}, {"type": "STRING", "nullable": True}),
        ({"const": "yes"}, {"type": "STRING", "format": "enum", "enum": ["yes"]}),
        ({"enum": ["a", "b"]}, {"type": "STRING", "format": "enum", "enum": ["a", "b"]}),
        (
            {"allOf": [{"type": "integer"}], "description": "n"},
            {"type": "INTEGER", "description": "n"},
        ),
        (
            {"type": "number", "format": "double", "minimum": 0, "maximum": 1, "default": 0.5},
            {"type": "NUMBER", "format": "double", "minimum": 0, "maximum": 1},
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "required": ["a", "zz"],
                "title": "T",
                "$schema": "https://json-schema.org/draft/2020-12/schema",
            },
            {
                "type": "OBJECT",
                "properties": {"a": {"type": "STRING"}},
                "required": ["a"],
                "propertyOrdering": ["a"],
            },
        ),
    ],
)
def test_schema_conversion_cases(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert response_schema(schema) == expected


@pytest.mark.parametrize(
    "schema",
    [
        {
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/A"}},
            "$defs": {"A": {"type": "string"}},
        },
        {"type": "object"},
        {"type": "object", "properties": {}},
        {"type": "object", "properties": {"any": {}}},
        {"type": ["string", "integer"]},
        {"type": "array"},
        {"anyOf": [{"type": "null"}]},
        {"allOf": [{"type": "string"}, {"minLength": 1}]},
        {"enum": [1, 2]},
    ],
)
def test_schemas_gemini_cannot_express(schema: dict[str, Any]) -> None:
    assert response_schema(schema) is None


# -- settings and keys ------------------------------------------------------------------


@pytest.mark.parametrize("var", KEY_VARS)
async def test_key_from_environment_at_call_time(
    api: MockVendor, make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    provider = make_provider({})  # built before the key exists: no I/O yet
    monkeypatch.setenv(var, KEY)
    api.queue(body=generated())
    await provider.complete(ask())
    assert api.requests[-1].headers["x-goog-api-key"] == KEY


async def test_gemini_api_key_wins_over_google_api_key(
    api: MockVendor, make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaSyOTHERkeyOTHERkeyOTHERkey00")
    api.queue(body=generated())
    await make_provider({}).complete(ask())
    assert api.requests[-1].headers["x-goog-api-key"] == KEY


async def test_missing_key_fails_before_any_request(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    with pytest.raises(plait.AuthenticationError) as caught:
        await make_provider({}).complete(ask())
    assert "set GEMINI_API_KEY or GOOGLE_API_KEY" in str(caught.value)
    assert "Runtime(settings={'gemini': {'api_key': ...}})" in str(caught.value)
    assert api.requests == []


async def test_settings_base_url_and_timeout(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    provider = make_provider(
        {"api_key": KEY, "base_url": "https://proxy.example/google/", "timeout": 45}
    )
    api.queue(body=generated())
    await provider.complete(ask())
    assert str(api.requests[-1].url) == (
        "https://proxy.example/google/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert api.requests[-1].extensions["timeout"]["read"] == 45.0
    api.queue(body=generated())
    await provider.complete(ask(timeout=1.5))
    assert api.requests[-1].extensions["timeout"]["read"] == 1.5


def test_repr_never_shows_the_key(make_provider: Callable[..., Any]) -> None:
    provider = make_provider()
    assert repr(provider) == (
        "GeminiProvider(name='gemini', base_url='https://generativelanguage.googleapis.com')"
    )
    assert_no_secret(KEY, provider)


# -- replies that are failures ----------------------------------------------------------


async def test_blocked_prompt(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(
        body={
            "promptFeedback": {
                "blockReason": "SAFETY",
                "safetyRatings": [
                    {
                        "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                        "probability": "HIGH",
                        "blocked": True,
                    }
                ],
            },
            "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
            "modelVersion": "gemini-2.5-flash",
        }
    )
    with pytest.raises(plait.ContentRefused) as caught:
        await make_provider().complete(ask())
    assert str(caught.value) == "gemini:gemini-2.5-flash: the prompt was blocked (SAFETY)"


@pytest.mark.parametrize(
    "reason", ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"]
)
async def test_blocked_reply(
    api: MockVendor, make_provider: Callable[..., Any], reason: str
) -> None:
    reply = generated(None, finish_reason=reason, candidates=None)
    reply["candidates"][0]["safetyRatings"][1] = {
        "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
        "probability": "HIGH",
        "blocked": True,
    }
    api.queue(body=reply)
    with pytest.raises(plait.ContentRefused, match=f"the reply was blocked \\({reason}\\)"):
        await make_provider().complete(ask())


async def test_rate_limited_with_retry_after_header(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(
        429,
        google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        headers={"Retry-After": "4"},
    )
    with pytest.raises(plait.RateLimited) as caught:
        await make_provider().complete(ask())
    assert caught.value.retry_after == 4.0
    assert caught.value.retryable


async def test_rate_limited_with_retry_info(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    message = (
        "You exceeded your current quota, please check your plan and billing details. "
        "For more information on this error, head to: "
        "https://ai.google.dev/gemini-api/docs/rate-limits."
    )
    api.queue(
        429,
        google_error(
            429,
            "RESOURCE_EXHAUSTED",
            message,
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/"
                            "generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                            "quotaValue": "10",
                        }
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [
                        {
                            "description": "Learn more about Gemini API quotas",
                            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                        }
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
            ],
        ),
    )
    with pytest.raises(plait.RateLimited) as caught:
        await make_provider().complete(ask())
    assert caught.value.retry_after == 37.0
    assert caught.value.message == message


async def test_bad_key_is_an_authentication_error(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(
        400,
        google_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": "API key not valid. Please pass a valid API key.",
                },
            ],
        ),
    )
    with pytest.raises(plait.AuthenticationError) as caught:
        await make_provider().complete(ask())
    assert str(caught.value) == (
        "gemini:gemini-2.5-flash: API key not valid. Please pass a valid API key. (HTTP 400)"
    )
    assert_no_secret(KEY, caught.value)


@pytest.mark.parametrize(
    ("status", "code", "message", "cls"),
    [
        (
            400,
            "INVALID_ARGUMENT",
            "* GenerateContentRequest.generation_config.max_output_tokens: must be positive\n",
            plait.BadRequest,
        ),
        (
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without "
            "established identity). Please use API Key or other form of API consumer identity to "
            "call this API.",
            plait.AuthenticationError,
        ),
        (
            404,
            "NOT_FOUND",
            "models/gemini-9 is not found for API version v1beta, or is not "
            "supported for generateContent. Call ListModels to see the list of available models "
            "and their supported methods.",
            plait.ModelNotFound,
        ),
        (
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
            plait.ProviderUnavailable,
        ),
        (
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
            plait.ProviderUnavailable,
        ),
    ],
)
async def test_errors_carry_googles_message(
    api: MockVendor,
    make_provider: Callable[..., Any],
    status: int,
    code: str,
    message: str,
    cls: type[plait.ProviderError],
) -> None:
    api.queue(status, google_error(status, code, message))
    with pytest.raises(cls) as caught:
        await make_provider().complete(ask())
    assert type(caught.value) is cls
    assert caught.value.message == message.strip()
    assert caught.value.retryable is (status >= 500)
    assert_no_secret(KEY, caught.value)


async def test_malformed_json_body(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(200, content=b'{"candidates": [{"content": {"parts": [{"text": "Hel')
    with pytest.raises(plait.ProviderUnavailable, match="not valid JSON"):
        await make_provider().complete(ask())


@pytest.mark.parametrize(
    "body",
    [
        {"usageMetadata": {"promptTokenCount": 3}},
        {"candidates": {"0": {}}},
        {"candidates": ["text"], "promptFeedback": "odd"},
        ["not", "an", "object"],
    ],
)
async def test_reply_without_candidates(
    api: MockVendor, make_provider: Callable[..., Any], body: Any
) -> None:
    api.queue(body=body)
    with pytest.raises(plait.ProviderError, match="no candidates"):
        await make_provider().complete(ask())


async def test_candidate_with_odd_content_is_empty_text(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body={"candidates": [{"content": "hi", "finishReason": "STOP"}]})
    response = await make_provider().complete(ask())
    assert (response.text, response.finish_reason) == ("", "stop")


async def test_connection_failure(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )

    api.replies.append(drop)
    with pytest.raises(plait.ProviderUnavailable, match="Server disconnected") as caught:
        await make_provider().complete(ask())
    assert caught.value.retryable
    assert_no_secret(KEY, caught.value)


async def test_the_key_never_leaks_into_errors(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    provider = make_provider()
    for status in (400, 401, 403, 404, 429, 500, 503):
        api.queue(status, google_error(status, "X", f"API key {KEY} rejected"))
        with pytest.raises(plait.ProviderError) as caught:
            await provider.complete(ask())
        assert_no_secret(KEY, caught.value)
        assert KEY not in str(api.requests[-1].url)


# -- registration and prices ------------------------------------------------------------


def test_registration() -> None:
    seen = registered_providers(plait_gemini)
    assert list(seen) == ["gemini"]
    assert seen["gemini"]["factory"] is plait_gemini.GeminiProvider
    assert seen["gemini"]["prices"] is plait_gemini.PRICES
    assert seen["gemini"]["limits"] == plait.Limits(concurrency=64)  # queue in plait, not httpx


def test_price_table() -> None:
    prices = plait_gemini.PRICES
    assert re.fullmatch(r"2026-11-\d\d", plait_gemini.PRICES_AS_OF)
    assert prices["gemini-2.5-flash"] == plait.Price.per_million("0.30", "2.50")
    assert prices["gemini-2.5-pro"] == plait.Price.per_million("1.25", "10.00")
    for model, price in prices.items():
        assert 0 < price.input < price.output, model
    # thinking counts as output: 1M prompt tokens and 1M output tokens on 2.5 Flash
    assert prices["gemini-2.5-flash"].cost(plait.TokenCount(1_000_000, 1_000_000)) == plait.usd(
        "2.80"
    )


def test_import_and_registration_are_light() -> None:
    assert "httpx" not in registration_imports("plait_gemini")


# -- the shared provider contract -------------------------------------------------------


class TestGeminiContract(ProviderContract):
    @pytest.fixture
    def provider(self, api: MockVendor, make_provider: Callable[..., Any]) -> Any:
        self.api = api
        return make_provider()

    @pytest.fixture
    def model(self) -> str:
        return "gemini-2.5-flash-lite"

    @pytest.fixture
    def secret(self) -> str:
        return KEY

    def script(self, provider: Any, reply: str) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            limit = json.loads(request.content).get("generationConfig", {}).get("maxOutputTokens")
            text, tokens, cut = cut_to_max_tokens(reply, limit)
            finish_reason = "MAX_TOKENS" if cut else "STOP"
            return httpx.Response(
                200, json=generated(text, finish_reason=finish_reason, candidates=tokens)
            )

        self.api.replies.append(answer)


# -- keys no pattern recognises (redacted by value) and Retry-After dates ---------------

PASSPHRASE = "my-lab-gpu-passphrase-2026"


async def test_a_key_echoed_in_an_error_is_redacted_by_value(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    invalid = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
    api.queue(400, google_error(400, "INVALID_ARGUMENT", f"API key {PASSPHRASE} not valid.",
                                details=invalid))
    provider = make_provider(settings={"api_key": PASSPHRASE})
    with pytest.raises(plait.AuthenticationError) as caught:
        await provider.complete(ask())
    assert caught.value.message == "API key [redacted] not valid."
    assert PASSPHRASE not in repr(caught.value)
    assert_no_secret(PASSPHRASE, caught.value, provider)


async def test_rate_limited_with_an_http_date_wins_over_retry_delay(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    delay = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]
    api.queue(429, google_error(429, "RESOURCE_EXHAUSTED", "quota", details=delay),
              headers={"retry-after": when})
    with pytest.raises(plait.RateLimited) as caught:
        await make_provider().complete(ask())
    assert caught.value.retry_after is not None
    assert 3 < caught.value.retry_after <= 5


# -- output types end to end ----------------------------------------------------------


@attrs.frozen
class Billing:
    kind: Literal["billing"]
    invoice: str
    due: date


@attrs.frozen
class Return:
    kind: Literal["return"]
    order: int


def _runtime(plugin: Any, name: str, api: MockVendor) -> plait.Runtime:
    return plait.Runtime(plugins=[plugin], entry_points=False,
                         settings={name: {"api_key": KEY}}, transport=httpx.MockTransport(api))


async def test_a_union_plan_is_asked_for_parsed_and_re_asked() -> None:
    api = MockVendor()
    api.queue(body=generated('{"value": [{"kind": "refund"}]}'))
    api.queue(body=generated('{"value": [{"kind": "return", "order": 1}, '
                             '{"kind": "billing", "invoice": "A1", "due": "2026-03-01"}]}'))
    agent = plait.Agent("gemini:gemini-2.5-flash", output=list[Billing | Return])
    reply = await agent.ask("split this", runtime=_runtime(plait_gemini, "gemini", api))
    assert reply.output == [Return("return", 1), Billing("billing", "A1", date(2026, 3, 1))]
    assert reply.attempts == 2
    config = api.body(0)["generationConfig"]
    assert config["responseSchema"] == response_schema(agent.spec.schema)
    members = config["responseSchema"]["properties"]["value"]["items"]["anyOf"]
    assert [m["properties"]["kind"]["enum"] for m in members] == [["billing"], ["return"]]
    assert members[0]["properties"]["due"] == {"type": "STRING"}  # Gemini has no "date"
    contents = api.body(1)["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert '$.value[0].kind: expected one of "billing" | "return"' in \
        contents[2]["parts"][0]["text"]


# -- conversations ---------------------------------------------------------------------

CONVERSATION = (
    plait.Message("system", "Be brief."),
    plait.Message("assistant", "Hi! How can I help?"),
    plait.Message("user", "Refund order 1182."),
    plait.Message("user", "It arrived broken."),
    plait.Message("assistant", "Refunded."),
    plait.Message("user", "Thanks!"),
)


async def test_a_conversation_uses_gemini_roles_and_alternates(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    """Gemini's roles are ``user`` and ``model``, the system prompt is
    ``systemInstruction``, and multi-turn contents must alternate, opening with the user."""
    api.queue(body=generated("You're welcome."))
    await make_provider().complete(ask(messages=CONVERSATION))
    body = api.body()
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "(start of the conversation)"}]},
        {"role": "model", "parts": [{"text": "Hi! How can I help?"}]},
        {"role": "user", "parts": [{"text": "Refund order 1182."},
                                  {"text": "It arrived broken."}]},
        {"role": "model", "parts": [{"text": "Refunded."}]},
        {"role": "user", "parts": [{"text": "Thanks!"}]},
    ]


def test_context_windows_are_registered_next_to_prices() -> None:
    runtime = plait.Runtime(entry_points=False, plugins=[plait_gemini])
    assert runtime.context_window("gemini", "gemini-2.5-flash") == 1_048_576
    assert set(plait_gemini.CONTEXT_WINDOWS) == set(plait_gemini.PRICES)


# -- tools ------------------------------------------------------------------------------

WEATHER = plait.ToolSpec(
    "get_weather", "The weather in a city now.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
     "additionalProperties": False},
)


async def test_function_declarations_sent_and_function_calls_read(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=generated(parts=[
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
         "thoughtSignature": "CiQBVKhc7k"},
    ]))
    response = await make_provider().complete(ask(tools=(WEATHER,)))
    body = api.body()
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "The weather in a city now.",
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}},
                       "required": ["city"], "propertyOrdering": ["city"]}}]}]
    assert response.finish_reason == "tool_calls"  # Gemini says STOP
    assert response.tool_calls == (plait.ToolCall(
        "get_weather", {"city": "Paris"}, "", {"thoughtSignature": "CiQBVKhc7k"}),)


async def test_function_responses_go_back_with_the_signature(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=generated('{"city": "Paris", "celsius": 21.5}'))
    call = plait.ToolCall("get_weather", {"city": "Paris"}, "",
                          {"thoughtSignature": "CiQBVKhc7k"})
    messages = (
        plait.Message("user", "Weather in Paris?"),
        plait.Message("assistant", "", tool_calls=(call,)),
        plait.Message("tool", '{"sky": "sunny", "celsius": 21.5}', name="get_weather"),
        plait.Message("tool", "Error: TimeoutError", name="get_weather"),
    )
    response = await make_provider().complete(
        ask(messages=messages, tools=(WEATHER,), json_schema=SCHEMA))
    body = api.body()
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather",
                                                      "args": {"city": "Paris"}},
                                     "thoughtSignature": "CiQBVKhc7k"}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather",
                                  "response": {"sky": "sunny", "celsius": 21.5}}},
            {"functionResponse": {"name": "get_weather",
                                  "response": {"result": "Error: TimeoutError"}}}]},
    ]
    # JSON mode and function calling do not mix: the schema goes in the instructions
    assert "responseMimeType" not in body.get("generationConfig", {})
    assert "JSON schema" in body["systemInstruction"]["parts"][0]["text"]
    assert response.parsed == {"city": "Paris", "celsius": 21.5}
    assert response.tool_calls == ()
