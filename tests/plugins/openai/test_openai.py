"""plait-openai: Chat Completions requests and replies, checked against a fake server."""

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
import plait_openai
import pytest
from plait_testing import (
    MockVendor,
    assert_no_secret,
    cut_to_max_tokens,
    registered_providers,
    registration_imports,
)
from plait_testing.contracts import ProviderContract

KEY = "sk-proj-TESTkey0123456789abcdefDoNotLeak"
KEY_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
    "TOGETHER_API_KEY",
    "LAB_API_KEY",
    *(f"{name.upper()}_BASE_URL" for name in ("ollama", "lmstudio", "vllm", "llamacpp",
                                              "openrouter", "groq", "together")),
)


@pytest.fixture
def api() -> MockVendor:
    return MockVendor()


@pytest.fixture
def make_provider(api: MockVendor, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Build a registered provider by name, talking to ``api``; no real key in the env."""
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)

    def make(
        name: str = "openai", settings: dict[str, Any] | None = None, factory: Any = None
    ) -> Any:
        factory = factory or registered_providers(plait_openai)[name]["factory"]
        env = api.env(name, {"api_key": KEY} if settings is None else settings)
        return factory(env)

    return make


def completion(
    content: str | None = "Hello! How can I help?",
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    model: str = "gpt-4o-mini-2024-07-18",
    prompt_tokens: int = 19,
    completion_tokens: int = 10,
    cached_tokens: int = 0,
) -> dict[str, Any]:
    """A Chat Completions reply exactly as api.openai.com shapes it."""
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": refusal,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }


def api_error(
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def user(text: str) -> plait.Message:
    return plait.Message("user", text)


def ask(model: str = "gpt-4o-mini", **fields: Any) -> plait.ModelRequest:
    fields.setdefault("messages", (user("Say hello."),))
    return plait.ModelRequest(model=model, **fields)


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
    "required": ["city", "celsius"],
    "additionalProperties": False,
}


# -- requests ---------------------------------------------------------------------------


async def test_plain_request_and_reply(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(body=completion(prompt_tokens=1200, completion_tokens=10, cached_tokens=1024))
    provider = make_provider()
    request = ask(
        messages=(
            plait.Message("system", "Be brief."),
            user("Say hello."),
            plait.Message("assistant", "Hello."),
            user("Again."),
        ),
        temperature=0.2,
        max_tokens=50,
        stop=("END", "\n\n"),
        seed=7,
    )

    response = await provider.complete(request)

    sent = api.last
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.openai.com/v1/chat/completions"
    assert api.headers() == {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    assert api.body() == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello."},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again."},
        ],
        "temperature": 0.2,
        "max_completion_tokens": 50,  # OpenAI's own host: the current field name
        "stop": ["END", "\n\n"],
        "seed": 7,
    }
    assert response.text == "Hello! How can I help?"
    assert response.finish_reason == "stop"
    assert response.model == "gpt-4o-mini-2024-07-18"
    assert response.parsed is None
    assert response.usage == plait.TokenCount(
        input_tokens=1200, output_tokens=10, cached_tokens=1024
    )
    assert response.raw["id"] == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"


async def test_unset_fields_are_not_sent(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=completion())
    await make_provider().complete(ask())
    assert api.body() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello."}],
    }


async def test_extra_fields_are_sent_as_given(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=completion())
    await make_provider().complete(ask(extra={"top_p": 0.5, "user": "u-1"}))
    assert api.body()["top_p"] == 0.5
    assert api.body()["user"] == "u-1"


async def test_structured_output_asks_for_a_strict_json_schema(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=completion('{"city": "Paris", "celsius": 21.5}'))
    response = await make_provider().complete(
        ask(json_schema=SCHEMA, schema_name="weather report", temperature=0)
    )
    assert api.body()["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "weather_report", "schema": SCHEMA, "strict": True},
    }
    assert response.parsed == {"city": "Paris", "celsius": 21.5}
    assert response.text == '{"city": "Paris", "celsius": 21.5}'


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": []},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["a"],
            "properties": {
                "a": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"b": {"type": "integer"}},
                        "additionalProperties": False,
                    },
                }
            },
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["a"],
            "properties": {"a": {"$ref": "#/$defs/A"}},
            "$defs": {"A": {"type": "object", "properties": {"x": {"type": "string"}}}},
        },
    ],
)
async def test_schema_strict_mode_would_refuse_is_sent_non_strict(
    api: MockVendor, make_provider: Callable[..., Any], schema: dict[str, Any]
) -> None:
    api.queue(body=completion('{"a": "x"}'))
    await make_provider().complete(ask(json_schema=schema))
    assert api.body()["response_format"]["json_schema"]["strict"] is False
    assert api.body()["response_format"]["json_schema"]["schema"] == schema


async def test_reply_that_is_not_json_leaves_parsed_empty(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=completion('Sure! ```json\n{"city": "Paris"}\n```'))
    response = await make_provider().complete(ask(json_schema=SCHEMA))
    assert response.parsed is None  # the core parses leniently and re-asks
    assert response.text.startswith("Sure!")


async def test_truncated_reply(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(body=completion('{"city": "Par', finish_reason="length", completion_tokens=5))
    response = await make_provider().complete(ask(json_schema=SCHEMA, max_tokens=5))
    assert response.finish_reason == "length"
    assert response.text == '{"city": "Par'
    assert response.parsed is None
    assert response.usage.output_tokens == 5


# -- JSON mode fallback -----------------------------------------------------------------

NO_JSON_SCHEMA = {
    # OpenAI's words for an old model; Groq, vLLM and others say much the same.
    "openai": api_error(
        "Invalid parameter: 'response_format' of type 'json_schema' is not "
        "supported with this model.",
        param="response_format",
    ),
    "pydantic": {
        "error": {
            "code": 400,
            "type": "invalid_request_error",
            "message": "1 validation error for ChatCompletionRequest\nresponse_format.type\n"
            "  Input should be 'text' or 'json_object'",
        }
    },
}


@pytest.mark.parametrize("refusal", list(NO_JSON_SCHEMA.values()), ids=list(NO_JSON_SCHEMA))
@pytest.mark.parametrize("status", [400, 500], ids=["400", "llama.cpp-500"])
async def test_server_without_json_schema_gets_json_mode_and_it_is_remembered(
    api: MockVendor,
    make_provider: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    refusal: dict[str, Any],
    status: int,
) -> None:
    provider = make_provider("llamacpp", settings={})
    api.queue(status, refusal)
    api.queue(body=completion('{"city": "Oslo", "celsius": -3}'))
    request = ask(
        "smollm2",
        json_schema=SCHEMA,
        messages=(plait.Message("system", "You report weather."), user("Oslo?")),
    )

    response = await provider.complete(request)

    assert [r.url.path for r in api.requests] == ["/v1/chat/completions"] * 2
    assert api.body(0)["response_format"]["type"] == "json_schema"
    retry = api.body(1)
    # JSON mode, with the schema where servers such as llama.cpp enforce it
    assert retry["response_format"] == {"type": "json_object", "schema": SCHEMA}
    hint = f"Reply with one JSON object that matches this JSON schema:\n{json.dumps(SCHEMA)}"
    assert retry["messages"] == [
        {"role": "system", "content": f"You report weather.\n\n{hint}"},
        {"role": "user", "content": "Oslo?"},
    ]
    assert response.parsed == {"city": "Oslo", "celsius": -3}

    # The same server is asked for JSON mode straight away from now on...
    api.queue(body=completion('{"city": "Rome", "celsius": 30}'))
    await provider.complete(ask("smollm2", json_schema=SCHEMA))
    assert len(api.requests) == 3
    assert api.body()["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert api.body()["messages"][0] == {"role": "system", "content": hint}

    # ...but another server behind the same provider still gets json_schema.
    other = make_provider("openai", settings={"api_key": KEY, "base_url": "http://b.test/v1"})
    api.queue(body=completion("{}"))
    await other.complete(ask(json_schema=SCHEMA))
    assert api.body()["response_format"]["type"] == "json_schema"


async def test_schema_error_is_not_mistaken_for_missing_support(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(
        400,
        api_error(
            "Invalid schema for response_format 'output': In context=(), "
            "'additionalProperties' is required to be supplied and to be "
            "false.",
            param="response_format",
        ),
    )
    with pytest.raises(plait.BadRequest, match="Invalid schema for response_format") as caught:
        await make_provider().complete(ask(json_schema=SCHEMA))
    assert len(api.requests) == 1
    assert caught.value.status == 400


async def test_json_mode_refusal_is_not_retried_again(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(400, NO_JSON_SCHEMA["openai"])
    api.queue(400, api_error("'response_format' of type 'json_object' is not supported."))
    with pytest.raises(plait.BadRequest, match="json_object"):
        await make_provider().complete(ask(json_schema=SCHEMA))
    assert len(api.requests) == 2


async def test_bad_request_without_schema_is_raised_with_vendor_message(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(400, api_error("'messages' must contain at least one message.", param="messages"))
    with pytest.raises(plait.BadRequest) as caught:
        await make_provider().complete(ask())
    assert caught.value.message == "'messages' must contain at least one message."
    assert str(caught.value) == (
        "openai:gpt-4o-mini: 'messages' must contain at least one message. (HTTP 400)"
    )
    assert len(api.requests) == 1


# -- settings, profiles and keys --------------------------------------------------------


async def test_compatible_server_gets_max_tokens_and_no_key(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(
        body={
            # llama.cpp's server: no usage details, its own extra fields
            "choices": [
                {
                    "finish_reason": "length",
                    "index": 0,
                    "message": {"role": "assistant", "content": "One, two"},
                }
            ],
            "created": 1763740000,
            "id": "chatcmpl-abc",
            "model": "smollm2",
            "object": "chat.completion",
            "usage": {"completion_tokens": 3, "prompt_tokens": 12, "total_tokens": 15},
            "timings": {"prompt_n": 12, "predicted_n": 3},
        }
    )
    provider = make_provider("llamacpp", settings={})
    response = await provider.complete(ask("smollm2", max_tokens=3))
    assert str(api.last.url) == "http://127.0.0.1:8080/v1/chat/completions"
    assert api.headers() == {"content-type": "application/json"}
    assert api.body()["max_tokens"] == 3
    assert "max_completion_tokens" not in api.body()
    assert response.usage == plait.TokenCount(input_tokens=12, output_tokens=3)
    assert response.finish_reason == "length"


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("ollama", "http://localhost:11434/v1/chat/completions"),
        ("lmstudio", "http://localhost:1234/v1/chat/completions"),
        ("vllm", "http://localhost:8000/v1/chat/completions"),
        ("llamacpp", "http://127.0.0.1:8080/v1/chat/completions"),
    ],
)
async def test_local_profiles_need_no_key(
    api: MockVendor, make_provider: Callable[..., Any], name: str, url: str
) -> None:
    api.queue(body=completion())
    await make_provider(name, settings={}).complete(ask("llama3.2:1b"))
    assert str(api.last.url) == url
    assert "authorization" not in api.last.headers
    assert api.body()["model"] == "llama3.2:1b"


async def test_local_profile_sends_a_key_from_settings(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=completion())
    await make_provider("vllm", settings={"api_key": KEY}).complete(ask("qwen"))
    assert api.last.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("name", "var", "url"),
    [
        ("openai", "OPENAI_API_KEY", "https://api.openai.com/v1/chat/completions"),
        ("openrouter", "OPENROUTER_API_KEY", "https://openrouter.ai/api/v1/chat/completions"),
        ("groq", "GROQ_API_KEY", "https://api.groq.com/openai/v1/chat/completions"),
        ("together", "TOGETHER_API_KEY", "https://api.together.xyz/v1/chat/completions"),
    ],
)
async def test_hosted_profiles_read_their_key_from_the_environment_at_call_time(
    api: MockVendor,
    make_provider: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    var: str,
    url: str,
) -> None:
    provider = make_provider(name, settings={})  # built before the key exists: no I/O yet
    monkeypatch.setenv(var, KEY)
    api.queue(body=completion())
    await provider.complete(ask("some/model"))
    assert str(api.last.url) == url
    assert api.last.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(("name", "var"), [("openai", "OPENAI_API_KEY"), ("groq", "GROQ_API_KEY")])
async def test_missing_key_fails_before_any_request(
    api: MockVendor, make_provider: Callable[..., Any], name: str, var: str
) -> None:
    provider = make_provider(name, settings={"api_key": ""})
    with pytest.raises(plait.AuthenticationError) as caught:
        await provider.complete(ask())
    assert var in str(caught.value)
    assert f"Runtime(settings={{'{name}': {{'api_key': ...}}}})" in str(caught.value)
    assert caught.value.provider == name
    assert not caught.value.retryable
    assert api.requests == []


async def test_settings_override_environment(
    api: MockVendor, make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-should-lose-1234")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://env.example/v1")
    provider = make_provider(
        settings={
            "api_key": KEY,
            "base_url": "https://proxy.example/v1/",
            "organization": "org-123",
            "timeout": 12,
        }
    )
    api.queue(body=completion())
    await provider.complete(ask())
    assert str(api.last.url) == "https://proxy.example/v1/chat/completions"
    assert api.headers() == {
        "authorization": f"Bearer {KEY}",
        "openai-organization": "org-123",
        "content-type": "application/json",
    }
    assert api.last.extensions["timeout"] == {
        "connect": 12.0,
        "read": 12.0,
        "write": 12.0,
        "pool": 12.0,
    }
    assert "max_tokens" not in api.body()


async def test_base_url_from_environment(
    api: MockVendor, make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:9999/v1")
    api.queue(body=completion())
    provider = make_provider()
    await provider.complete(ask(max_tokens=9))
    assert str(api.last.url) == "http://localhost:9999/v1/chat/completions"
    assert api.body()["max_tokens"] == 9  # not OpenAI's host: the classic field
    assert "localhost:9999" in repr(provider)


async def test_per_request_timeout_wins(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(body=completion())
    provider = make_provider(settings={"api_key": KEY, "timeout": 12})
    await provider.complete(ask(timeout=3.5))
    assert api.last.extensions["timeout"]["read"] == 3.5


async def test_without_timeout_the_clients_own_applies(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=completion())
    await make_provider().complete(ask())
    assert api.last.extensions["timeout"] == httpx.Timeout(5.0).as_dict()  # httpx's default


async def test_user_profile(
    api: MockVendor, make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = plait_openai.profile(
        "lab",
        base_url="http://gpu-box:8000/v1",
        api_key_env="LAB_API_KEY",
        headers={"X-Title": "plait"},
    )
    assert isinstance(lab, plait_openai.Profile)
    provider = make_provider("lab", settings={}, factory=lab)
    with pytest.raises(plait.AuthenticationError, match="LAB_API_KEY"):
        await provider.complete(ask("mixtral"))
    monkeypatch.setenv("LAB_API_KEY", KEY)
    api.queue(body=completion())
    await provider.complete(ask("mixtral"))
    assert str(api.last.url) == "http://gpu-box:8000/v1/chat/completions"
    assert api.headers() == {
        "x-title": "plait",
        "authorization": f"Bearer {KEY}",
        "content-type": "application/json",
    }


def test_repr_never_shows_the_key(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(settings={"api_key": KEY, "organization": "org-1"})
    assert repr(provider) == (
        "ChatCompletionsProvider(name='openai', base_url='https://api.openai.com/v1')"
    )
    assert_no_secret(KEY, provider)


# -- replies that are failures ----------------------------------------------------------


async def test_refusal_raises_content_refused(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=completion(None, refusal="I'm sorry, I can't help with that request."))
    with pytest.raises(plait.ContentRefused) as caught:
        await make_provider().complete(ask(json_schema=SCHEMA))
    assert str(caught.value) == (
        "openai:gpt-4o-mini: the model refused: I'm sorry, I can't help with that request."
    )
    assert not caught.value.retryable


async def test_content_filter_raises_content_refused(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=completion("", finish_reason="content_filter"))
    with pytest.raises(plait.ContentRefused, match="content filter"):
        await make_provider().complete(ask())


async def test_rate_limited_with_retry_after(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    message = (
        "Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min "
        "(TPM): Limit 200000, Used 199500, Requested 900. Please try again in 120ms."
    )
    api.queue(
        429,
        api_error(message, type="tokens", code="rate_limit_exceeded"),
        headers={"retry-after": "20", "x-ratelimit-remaining-tokens": "500"},
    )
    with pytest.raises(plait.RateLimited) as caught:
        await make_provider().complete(ask())
    error = caught.value
    assert error.retry_after == 20.0
    assert error.retryable
    assert error.status == 429
    assert error.message == message
    assert_no_secret(KEY, error)


async def test_out_of_quota_is_not_retryable(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(
        429,
        api_error(
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
        ),
    )
    with pytest.raises(plait.RateLimited, match="exceeded your current quota") as caught:
        await make_provider().complete(ask())
    assert not caught.value.retryable


async def test_server_error_is_retryable(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(
        500,
        api_error(
            "The server had an error while processing your request. Sorry about that!",
            type="server_error",
        ),
    )
    with pytest.raises(plait.ProviderUnavailable, match="Sorry about that") as caught:
        await make_provider().complete(ask())
    assert caught.value.retryable
    assert caught.value.status == 500


async def test_malformed_json_body(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(
        200,
        content=b'{"id": "chatcmpl-1", "choices": [{"mess',
        headers={"content-type": "application/json"},
    )
    with pytest.raises(plait.ProviderUnavailable, match="not valid JSON") as caught:
        await make_provider().complete(ask())
    assert caught.value.retryable


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x", "object": "chat.completion", "choices": []},
        {"choices": {"0": {}}},
        {"choices": ["text"]},
        ["not", "an", "object"],
    ],
)
async def test_reply_without_choices(
    api: MockVendor, make_provider: Callable[..., Any], body: Any
) -> None:
    api.queue(body=body)
    with pytest.raises(plait.ProviderError, match="no choices") as caught:
        await make_provider().complete(ask())
    assert type(caught.value) is plait.ProviderError


async def test_bad_key(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    api.queue(
        401,
        api_error(
            "Incorrect API key provided: sk-proj-****************************"
            "Leak. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        ),
    )
    with pytest.raises(plait.AuthenticationError, match="Incorrect API key") as caught:
        await make_provider().complete(ask())
    assert "Leak" not in str(caught.value)
    assert_no_secret(KEY, caught.value)


async def test_unknown_model(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    message = "The model `gpt-9` does not exist or you do not have access to it."
    api.queue(404, api_error(message, code="model_not_found"))
    with pytest.raises(plait.ModelNotFound) as caught:
        await make_provider().complete(ask("gpt-9"))
    assert caught.value.message == message
    assert caught.value.model == "gpt-9"


async def test_connection_refused(api: MockVendor, make_provider: Callable[..., Any]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    api.replies.append(refuse)
    with pytest.raises(plait.ProviderUnavailable, match="Connection refused") as caught:
        await make_provider("ollama", settings={}).complete(ask("llama3.2"))
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_reply_with_an_odd_message_is_empty_text(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body={"choices": [{"message": "hi", "finish_reason": "stop"}]})
    response = await make_provider().complete(ask())
    assert (response.text, response.finish_reason, response.usage) == (
        "",
        "stop",
        plait.TokenCount(),
    )


async def test_the_key_never_leaks_into_errors(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    provider = make_provider()
    failures = [
        (400, api_error(f"bad request from {KEY}")),
        (401, api_error(f"Incorrect API key provided: {KEY}")),
        (403, {"error": {"message": "forbidden"}}),
        (404, None),
        (429, api_error("slow")),
        (500, None),
        (503, None),
    ]
    for status, body in failures:
        if body is None:
            api.queue(status, content=b"")
        else:
            api.queue(status, body)
        with pytest.raises(plait.ProviderError) as caught:
            await provider.complete(ask())
        assert_no_secret(KEY, caught.value)
        assert caught.value.status == status


# -- registration and prices ------------------------------------------------------------


def test_registration() -> None:
    seen = registered_providers(plait_openai)
    assert list(seen) == [
        "openai",
        "ollama",
        "lmstudio",
        "vllm",
        "llamacpp",
        "openrouter",
        "groq",
        "together",
    ]
    assert seen["openai"]["prices"] is plait_openai.PRICES
    assert seen["openai"]["factory"] is plait_openai.OPENAI
    free = plait.Price.per_million("0", "0")
    for name in ("ollama", "lmstudio", "vllm", "llamacpp"):
        assert seen[name]["prices"] == {"*": free}
    for name in ("openrouter", "groq", "together"):
        assert set(seen[name]) == {"factory", "limits"}
    for name, registered in seen.items():
        assert isinstance(registered["factory"], plait_openai.Profile)
        assert registered["factory"].name == name
        # requests queue in plait's limiter, not in the HTTP pool (see the model-calls bench)
        assert registered["limits"] == plait.Limits(concurrency=64)


def test_price_table() -> None:
    prices = plait_openai.PRICES
    assert re.fullmatch(r"2026-11-\d\d", plait_openai.PRICES_AS_OF)
    assert prices["gpt-4o-mini"] == plait.Price.per_million("0.15", "0.60", "0.075")
    assert prices["gpt-4o"] == plait.Price.per_million("2.50", "10.00", "1.25")
    for model, price in prices.items():
        assert 0 < price.input < price.output, model
        assert price.cached_input is None or price.cached_input < price.input, model
    # a million input tokens, half of them from the cache, and a million output tokens
    cost = prices["gpt-4o-mini"].cost(plait.TokenCount(1_000_000, 1_000_000, 500_000))
    assert cost == plait.usd("0.7125")  # 0.075 fresh + 0.0375 cached + 0.60 output


def test_import_and_registration_are_light() -> None:
    assert "httpx" not in registration_imports("plait_openai")


# -- the shared provider contract -------------------------------------------------------


class TestOpenAIContract(ProviderContract):
    @pytest.fixture
    def provider(self, api: MockVendor, make_provider: Callable[..., Any]) -> Any:
        self.api = api
        return make_provider()

    @pytest.fixture
    def model(self) -> str:
        return "gpt-4o-mini"

    @pytest.fixture
    def secret(self) -> str:
        return KEY

    def script(self, provider: Any, reply: str) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            limit = json.loads(request.content).get("max_completion_tokens")
            text, tokens, cut = cut_to_max_tokens(reply, limit)
            finish_reason = "length" if cut else "stop"
            return httpx.Response(
                200, json=completion(text, finish_reason=finish_reason, completion_tokens=tokens)
            )

        self.api.replies.append(answer)


# -- keys no pattern recognises (redacted by value) and Retry-After dates ---------------

PASSPHRASE = "my-lab-gpu-passphrase-2026"


async def test_a_vllm_key_echoed_in_a_401_is_redacted(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(401, api_error(f"invalid api key '{PASSPHRASE}'"))
    provider = make_provider("vllm", settings={"api_key": PASSPHRASE})
    with pytest.raises(plait.AuthenticationError) as caught:
        await provider.complete(ask("qwen"))
    assert str(caught.value) == "vllm:qwen: invalid api key '[redacted]' (HTTP 401)"
    assert PASSPHRASE not in repr(caught.value)
    assert_no_secret(PASSPHRASE, caught.value, provider)


async def test_a_profiles_secret_headers_are_redacted_and_never_in_its_repr(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    lab = plait_openai.profile(
        "lab", base_url="http://gpu-box:8000/v1",
        headers={"Authorization": f"Bearer {PASSPHRASE}", "X-Lab-Token": PASSPHRASE[::-1]},
        secret_headers=["X-Lab-Token"],
    )
    assert_no_secret(PASSPHRASE, lab)
    assert_no_secret(PASSPHRASE[::-1], lab)
    api.queue(403, api_error(f"tokens {PASSPHRASE} and {PASSPHRASE[::-1]} refused"))
    with pytest.raises(plait.AuthenticationError) as caught:
        await make_provider("lab", settings={}, factory=lab).complete(ask("qwen"))
    assert caught.value.message == "tokens [redacted] and [redacted] refused"


async def test_rate_limited_with_an_http_date(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    api.queue(429, api_error("slow"), headers={"retry-after": when})
    with pytest.raises(plait.RateLimited) as caught:
        await make_provider().complete(ask())
    assert caught.value.retry_after is not None
    assert 3 < caught.value.retry_after <= 5


@pytest.mark.parametrize(("name", "var"), [
    ("ollama", "OLLAMA_BASE_URL"), ("lmstudio", "LMSTUDIO_BASE_URL"),
    ("vllm", "VLLM_BASE_URL"), ("llamacpp", "LLAMACPP_BASE_URL"),
    ("openrouter", "OPENROUTER_BASE_URL"), ("groq", "GROQ_BASE_URL"),
    ("together", "TOGETHER_BASE_URL"),
])
async def test_every_profile_reads_its_base_url_from_its_own_variable(
    api: MockVendor, make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
    name: str, var: str,
) -> None:
    monkeypatch.setenv(var, "http://127.0.0.1:8081/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://wrong.example/v1")  # another profile's
    api.queue(body=completion())
    await make_provider(name).complete(ask())
    assert str(api.last.url) == "http://127.0.0.1:8081/v1/chat/completions"
    api.queue(body=completion())
    await make_provider(name, {"api_key": KEY, "base_url": "http://set.example/v1"}).complete(
        ask())
    assert str(api.last.url) == "http://set.example/v1/chat/completions"  # settings win


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


async def test_a_union_plan_is_asked_for_parsed_and_re_asked() -> None:
    api = MockVendor()
    api.queue(body=completion('{"value": [{"kind": "refund", "order": 1}]}'))
    api.queue(body=completion('{"value": [{"kind": "return", "order": 1}, '
                              '{"kind": "billing", "invoice": "A1", "due": "2026-03-01"}]}'))
    runtime = plait.Runtime(plugins=[plait_openai], entry_points=False,
                            settings={"openai": {"api_key": KEY}},
                            transport=httpx.MockTransport(api))
    agent = plait.Agent("openai:gpt-4o-mini", output=list[Billing | Return])
    reply = await agent.ask("split this", runtime=runtime)
    assert reply.output == [Return("return", 1), Billing("billing", "A1", date(2026, 3, 1))]
    assert reply.attempts == 2
    sent = api.body(0)["response_format"]["json_schema"]
    assert sent["strict"] is True  # closed objects, every field required
    assert sent["schema"] == agent.spec.schema
    members = sent["schema"]["properties"]["value"]["items"]["anyOf"]
    assert members[0]["properties"]["due"] == {"type": "string", "format": "date"}
    reask = api.body(1)["messages"][-1]
    assert reask["role"] == "user"
    assert '$.value[0].kind: expected one of "billing" | "return", got "refund"' in reask["content"]
    assert json.loads(api.body(1)["messages"][-2]["content"]) == {
        "value": [{"kind": "refund", "order": 1}]}


# -- conversations ---------------------------------------------------------------------

CONVERSATION = (
    plait.Message("system", "Be brief."),
    plait.Message("assistant", "Hi! How can I help?"),
    plait.Message("user", "Refund order 1182."),
    plait.Message("user", "It arrived broken."),
    plait.Message("assistant", "Refunded."),
    plait.Message("user", "Thanks!"),
)


async def test_a_conversation_is_sent_as_chat_messages_in_order(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=completion("You're welcome."))
    await make_provider().complete(ask(messages=CONVERSATION))
    assert api.body()["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Refund order 1182."},
        {"role": "user", "content": "It arrived broken."},
        {"role": "assistant", "content": "Refunded."},
        {"role": "user", "content": "Thanks!"},
    ]


def test_context_windows_are_registered_next_to_prices() -> None:
    runtime = plait.Runtime(entry_points=False, plugins=[plait_openai])
    assert runtime.context_window("openai", "gpt-4o-mini-2024-07-18") == 128_000
    assert set(plait_openai.CONTEXT_WINDOWS) == set(plait_openai.PRICES)


# -- tools ------------------------------------------------------------------------------

WEATHER = plait.ToolSpec(
    "get_weather", "The weather in a city now.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
     "additionalProperties": False},
)


def tool_call_completion(*calls: tuple[str, str, str]) -> dict[str, Any]:
    """A reply asking for tools, as api.openai.com shapes it."""
    data = completion(None, finish_reason="tool_calls")
    data["choices"][0]["message"]["tool_calls"] = [
        {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}
        for id_, name, arguments in calls
    ]
    return data


async def test_tools_are_sent_and_tool_calls_read(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=tool_call_completion(
        ("call_Xy1", "get_weather", '{"city": "Paris"}'),
        ("call_Xy2", "get_weather", '{"city": '),  # cut short: passed on as its text
    ))
    response = await make_provider().complete(ask(tools=(WEATHER,)))
    assert api.body()["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city now.",
        "parameters": dict(WEATHER.parameters), "strict": True}}]
    assert response.finish_reason == "tool_calls"
    assert response.text == ""
    assert response.tool_calls == (
        plait.ToolCall("get_weather", {"city": "Paris"}, "call_Xy1"),
        plait.ToolCall("get_weather", '{"city": ', "call_Xy2"),
    )


async def test_tool_calls_and_results_go_back_in_the_apis_shape(
    api: MockVendor, make_provider: Callable[..., Any]
) -> None:
    api.queue(body=completion("It is sunny in Paris."))
    call = plait.ToolCall("get_weather", {"city": "Paris"}, "call_Xy1")
    messages = (
        user("Weather in Paris?"),
        plait.Message("assistant", "", tool_calls=(call,)),
        plait.Message("tool", '{"sky": "sunny"}', tool_call_id="call_Xy1", name="get_weather"),
    )
    response = await make_provider().complete(ask(messages=messages, tools=(WEATHER,)))
    assert api.body()["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_Xy1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_Xy1", "content": '{"sky": "sunny"}'},
    ]
    assert response.tool_calls == ()
    assert response.text == "It is sunny in Paris."


async def test_a_tool_loop_through_the_provider(
    api: MockVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    api.queue(body=tool_call_completion(("call_1", "get_weather", '{"city": "Oslo"}')))
    api.queue(body=completion("Snow in Oslo."))

    def get_weather(city: str) -> dict[str, str]:
        """The weather in a city now."""
        return {"city": city, "sky": "snow"}

    agent = plait.Agent("openai:gpt-4o-mini", tools=[get_weather])
    async with plait.Runtime(settings={"openai": {"api_key": KEY}},
                             transport=httpx.MockTransport(api)) as runtime:
        reply = await agent.ask("Weather in Oslo?", runtime=runtime)
    assert reply.output == "Snow in Oslo."
    assert reply.tool_calls[0].result == {"city": "Oslo", "sky": "snow"}
    second = json.loads(api.requests[1].content)
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_1",
                                      "content": '{"city": "Oslo", "sky": "snow"}'}
