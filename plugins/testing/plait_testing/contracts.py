"""Contract suites: one behavioural contract that every plugin of a kind is tested against.

Subclass a contract in your plugin's tests (the class name must start with ``Test``) and
supply its fixtures; every test of the contract then runs against your plugin::

    from plait_testing.contracts import ProviderContract

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        def provider(self):
            self.replies = []  # the test instance is shared with script()

            def api(request):
                return httpx.Response(200, json=my_api_body(self.replies.pop(0), request))

            http = httpx.AsyncClient(transport=httpx.MockTransport(api))
            return MyProvider(api_key="sk-test-123", http=http)

        @pytest.fixture
        def model(self):
            return "my-model"

        @pytest.fixture
        def secret(self):
            return "sk-test-123"

        def script(self, provider, reply):
            self.replies.append(reply)  # the mocked API answers this next

See docs/plugins/testing.md for what each contract checks.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import plait
import pytest

__all__ = ["ProviderContract"]

_SECRET_SHAPED = re.compile(r"sk-[A-Za-z0-9_-]{6,}|Bearer\s+\S+", re.IGNORECASE)

_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def _user(text: str) -> plait.Message:
    return plait.Message("user", text)


@pytest.mark.anyio
class ProviderContract:
    """What every model provider must do, checked through ``await provider.complete(...)``.

    Fixtures to supply: ``provider`` (the provider object) and ``model`` (a model name,
    without the provider prefix); optionally ``secret`` (the API key the provider holds,
    which must never show in its repr).

    Class attributes: ``supports_structured_output`` (default ``True``): whether a request
    with a ``json_schema`` must come back as JSON; without it the request must still be
    accepted.

    Hook: ``script(provider, reply)`` runs before each request and makes the provider's
    next answer ``reply`` (a text; JSON text for the structured test). Providers behind an
    ``httpx.MockTransport`` queue a canned API response there; the default does nothing,
    for providers that generate on their own (a local model, a real local server).
    """

    supports_structured_output: ClassVar[bool] = True

    @pytest.fixture
    def provider(self) -> Any:
        pytest.fail(f"{type(self).__name__} must define a `provider` fixture")

    @pytest.fixture
    def model(self) -> str:
        pytest.fail(f"{type(self).__name__} must define a `model` fixture")

    @pytest.fixture
    def secret(self) -> str | None:
        return None

    def script(self, provider: Any, reply: str) -> None:
        """Make ``provider`` answer ``reply`` to its next request; by default, nothing."""

    async def _ask(self, provider: Any, reply: str,
                   request: plait.ModelRequest) -> plait.ModelResponse:
        self.script(provider, reply)
        response = await provider.complete(request)
        assert isinstance(response, plait.ModelResponse), (
            f"complete() must return a plait.ModelResponse, got {type(response).__name__}"
        )
        assert isinstance(response.text, str), "ModelResponse.text must be a str"
        return response

    def test_is_a_provider(self, provider: Any) -> None:
        assert isinstance(provider, plait.Provider), "a provider needs `async def complete`"

    async def test_returns_text(self, provider: Any, model: str) -> None:
        response = await self._ask(
            provider, "Hello there.",
            plait.ModelRequest(model=model, messages=(_user("Say hello."),), temperature=0),
        )
        assert response.text.strip(), "the reply to a plain prompt must not be empty"
        assert response.model is None or isinstance(response.model, str)

    async def test_usage_counts_are_non_negative_ints(self, provider: Any, model: str) -> None:
        response = await self._ask(
            provider, "Hello there.",
            plait.ModelRequest(model=model, messages=(_user("Say hello."),)),
        )
        usage = response.usage
        assert isinstance(usage, plait.TokenCount)
        for field in ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens"):
            value = getattr(usage, field)
            assert type(value) is int, f"usage.{field} must be an int, got {value!r}"
            assert value >= 0, f"usage.{field} must be >= 0, got {value}"

    async def test_system_prompt_and_user_message(self, provider: Any, model: str) -> None:
        response = await self._ask(
            provider, "Blue.",
            plait.ModelRequest(
                model=model,
                messages=(plait.Message("system", "Answer in one word."),
                          _user("What colour is a clear sky?")),
            ),
        )
        assert response.text.strip()

    async def test_conversation_history(self, provider: Any, model: str) -> None:
        response = await self._ask(
            provider, "Your name is Ada.",
            plait.ModelRequest(
                model=model,
                messages=(plait.Message("system", "Be brief."), _user("My name is Ada."),
                          plait.Message("assistant", "Hello Ada."), _user("What is my name?")),
            ),
        )
        assert response.text.strip()

    async def test_max_tokens_is_respected(self, provider: Any, model: str) -> None:
        long_reply = " ".join(f"word{i}" for i in range(60))
        response = await self._ask(
            provider, long_reply,
            plait.ModelRequest(model=model, max_tokens=5,
                               messages=(_user("Count from one to sixty in words."),)),
        )
        assert response.finish_reason == "length" or response.usage.output_tokens <= 5, (
            f"max_tokens=5 ignored: finish_reason={response.finish_reason!r}, "
            f"output_tokens={response.usage.output_tokens}"
        )

    async def test_structured_output(self, provider: Any, model: str) -> None:
        response = await self._ask(
            provider, '{"answer": "blue"}',
            plait.ModelRequest(
                model=model, temperature=0, json_schema=_SCHEMA, schema_name="colour",
                messages=(_user('What colour is a clear sky? Reply as JSON: {"answer": "..."}'),),
            ),
        )
        if not self.supports_structured_output:
            return  # the request was accepted; plait parses and re-asks on its own
        value = response.parsed if response.parsed is not None else _json(response.text)
        assert isinstance(value, dict), f"expected a JSON object, got {value!r}"
        assert isinstance(value.get("answer"), str), f"the schema was not followed: {value!r}"

    def test_repr_shows_no_secret(self, provider: Any, secret: str | None) -> None:
        shown = f"{provider!r} {provider!s}"
        if secret:
            assert secret not in shown, "the provider's repr or str shows its secret"
        else:
            assert not _SECRET_SHAPED.search(shown), f"something secret-shaped in {shown!r}"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pytest.fail(f"a structured request must come back as JSON, got {text!r}")
