"""ProviderContract: the fake passes it, and it catches a provider that breaks the contract."""

from __future__ import annotations

from typing import Any

import pytest
from plait_testing import FakeProvider
from plait_testing.contracts import ProviderContract

pytest_plugins = ["pytester"]


class TestScriptedFakeProvider(ProviderContract):
    @pytest.fixture
    def provider(self) -> FakeProvider:
        return FakeProvider()

    @pytest.fixture
    def model(self) -> str:
        return "contract"

    def script(self, provider: Any, reply: str) -> None:
        provider.script(reply)


class TestEchoingFakeProvider(ProviderContract):
    """The default `script` hook primes nothing; an echo cannot promise JSON."""

    supports_structured_output = False

    @pytest.fixture
    def provider(self) -> FakeProvider:
        return FakeProvider()

    @pytest.fixture
    def model(self) -> str:
        return "echo"


BROKEN_PROVIDER = """
import pytest
import plait
from plait_testing.contracts import ProviderContract

KEY = "sk-live-abcdef123456"


class Careless:
    def __init__(self):
        self.api_key = KEY

    def __repr__(self):
        return f"Careless(api_key={self.api_key!r})"

    async def complete(self, request):
        return plait.ModelResponse(text="word " * 50, finish_reason="stop",
                                   usage=plait.TokenCount(input_tokens=-1, output_tokens=50))


class TestCareless(ProviderContract):
    @pytest.fixture
    def provider(self):
        return Careless()

    @pytest.fixture
    def model(self):
        return "m"

    @pytest.fixture
    def secret(self):
        return KEY
"""


def failed_tests(reports: Any) -> dict[str, str]:
    return {r.nodeid.split("::")[-1].split("[")[0]: str(r.longrepr) for r in reports}


def test_the_contract_catches_a_broken_provider(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_careless=BROKEN_PROVIDER)
    passed, skipped, failed = pytester.inline_run().listoutcomes()
    assert not skipped
    failures = failed_tests(failed)
    assert set(failures) == {
        "test_usage_counts_are_non_negative_ints",
        "test_max_tokens_is_respected",
        "test_structured_output",
        "test_repr_shows_no_secret",
    }
    assert "usage.input_tokens must be >= 0, got -1" in failures[
        "test_usage_counts_are_non_negative_ints"]
    assert "max_tokens=5 ignored" in failures["test_max_tokens_is_respected"]
    assert "must come back as JSON" in failures["test_structured_output"]
    assert "shows its secret" in failures["test_repr_shows_no_secret"]
    assert {r.nodeid.split("::")[-1].split("[")[0] for r in passed} == {
        "test_is_a_provider",
        "test_returns_text",
        "test_system_prompt_and_user_message",
        "test_conversation_history",
    }


def test_secret_shaped_reprs_fail_without_a_secret_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leak="""
        import pytest
        from plait_testing import FakeProvider
        from plait_testing.contracts import ProviderContract

        class Leaky(FakeProvider):
            def __repr__(self):
                return "Leaky(headers={'Authorization': 'Bearer abc.def'})"

        class TestLeaky(ProviderContract):
            supports_structured_output = False

            @pytest.fixture
            def provider(self):
                return Leaky()

            @pytest.fixture
            def model(self):
                return "m"
    """)
    result = pytester.inline_run("-k", "repr")
    _, _, failed = result.listoutcomes()
    assert "something secret-shaped" in failed_tests(failed)["test_repr_shows_no_secret"]


def test_a_contract_without_its_fixtures_says_what_is_missing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_empty="""
        from plait_testing.contracts import ProviderContract

        class TestNothing(ProviderContract):
            pass
    """)
    result = pytester.inline_run("-k", "is_a_provider")
    _, _, failed = result.listoutcomes()
    assert "TestNothing must define a `provider` fixture" in str(failed[0].longrepr)
