"""The helpers for testing a provider plugin against a mocked vendor API."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import httpx
import plait
import pytest
from plait_testing import (
    MockVendor,
    assert_no_secret,
    cut_to_max_tokens,
    registered_providers,
    registration_imports,
)

KEY = "sk-test-0123456789abcdefSECRET"


async def test_answers_queued_replies_in_order_and_records_requests() -> None:
    api = MockVendor()
    api.queue(body={"text": "one"})
    api.queue(503, content=b"<html>down</html>", headers={"retry-after": "2"})
    first = await api.http.post("https://api.acme.test/v1/generate", json={"model": "m"})
    second = await api.http.get("https://api.acme.test/v1/models")
    assert first.json() == {"text": "one"}
    assert (second.status_code, second.content, second.headers["retry-after"]) == (
        503, b"<html>down</html>", "2")
    assert [r.method for r in api.requests] == ["POST", "GET"]
    assert api.last is api.requests[-1]
    assert api.body(0) == {"model": "m"}
    assert api.replies == []
    assert repr(api) == "MockVendor(requests=2, queued=0)"


async def test_a_callable_reply_computes_the_answer_or_raises() -> None:
    api = MockVendor()
    api.replies.append(lambda request: httpx.Response(200, json={"echo": request.url.path}))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    api.replies.append(refuse)
    assert (await api.http.post("https://a.test/echo")).json() == {"echo": "/echo"}
    with pytest.raises(httpx.ConnectError):
        await api.http.post("https://a.test/echo")


async def test_a_request_nothing_answers_fails_the_test() -> None:
    api = MockVendor()
    with pytest.raises(AssertionError, match=r"unexpected request: POST https://a\.test/x"):
        await api.http.post("https://a.test/x")


async def test_headers_leave_out_what_httpx_adds() -> None:
    api = MockVendor()
    api.queue(body={})
    await api.http.post("https://a.test/x", json={}, headers={"Authorization": "Bearer k"})
    assert api.headers() == {"authorization": "Bearer k", "content-type": "application/json"}


async def test_env_is_what_a_factory_receives_and_talks_to_the_mock() -> None:
    api = MockVendor()
    env = api.env("acme", {"api_key": KEY})
    assert (env.name, dict(env.settings)) == ("acme", {"api_key": KEY})
    assert env.http is api.http  # one client, however often the provider asks
    api.queue(body={"ok": True})
    assert (await env.http.post("https://anywhere.test/")).json() == {"ok": True}
    assert len(api.requests) == 1


class _Plugin:
    def __init__(self, *names: str) -> None:
        self.names = names

    @plait.hookimpl
    def plait_register_providers(self, register: Any) -> None:
        for name in self.names:
            register(name, dict, prices={"*": plait.Price.per_million("0", "0")})


def test_registered_providers_collects_factories_and_options() -> None:
    seen = registered_providers(_Plugin("acme", "acme-eu"))
    assert list(seen) == ["acme", "acme-eu"]
    assert seen["acme"] == {"factory": dict, "prices": {"*": plait.Price.per_million("0", "0")}}


def test_registered_providers_refuses_a_name_registered_twice() -> None:
    with pytest.raises(AssertionError, match="'acme' registered twice"):
        registered_providers(_Plugin("acme", "acme"))


def test_registration_imports_of_a_light_plugin() -> None:
    imported = registration_imports("plait_testing.plugin")
    assert "plait_testing.plugin" in imported
    assert "httpx" not in imported  # MockVendor imports httpx when it is used


def test_registration_imports_sees_an_import_inside_a_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plait_heavy.py").write_text(textwrap.dedent("""
        import plait

        @plait.hookimpl
        def plait_register_validators():  # takes no arguments: pluggy allows that
            import httpx  # noqa: F401
    """))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    assert "httpx" in registration_imports("plait_heavy")


def test_assert_no_secret_passes_when_nothing_shows() -> None:
    error = plait.AuthenticationError("invalid key [redacted]", provider="acme", model="m")
    assert_no_secret(KEY, error, "AcmeProvider(name='acme')")


@pytest.mark.parametrize(
    "shown",
    [
        f"invalid key {KEY}",
        "invalid key sk-test-0123456789ab****",  # half masked: still a piece of it
        "key ends in 89abcdefSECRET",
    ],
)
def test_assert_no_secret_fails_on_the_secret_or_a_piece_of_it(shown: str) -> None:
    with pytest.raises(AssertionError, match="shows in a str") as caught:
        assert_no_secret(KEY, shown)
    assert "0123456789" not in str(caught.value)  # the failure does not repeat it


def test_assert_no_secret_looks_into_an_exceptions_attributes() -> None:
    error = plait.ProviderError("failed", provider="acme", model="m")
    # an attribute a provider added, shown in neither str nor repr
    error.detail = {"authorization": f"Bearer {KEY}"}  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match="shows in a ProviderError"):
        assert_no_secret(KEY, error)


def test_a_short_secret_is_checked_whole() -> None:
    assert_no_secret("abc", "xyz")
    with pytest.raises(AssertionError):
        assert_no_secret("abc", "key=abc")
    with pytest.raises(ValueError, match="needs the secret"):
        assert_no_secret("", "anything")


@pytest.mark.parametrize(
    ("text", "max_tokens", "expected"),
    [
        ("one two three", None, ("one two three", 3, False)),
        ("one two three", 3, ("one two three", 3, False)),
        ("one  two\nthree four", 2, ("one  two", 2, True)),
        ("one two", 0, ("", 0, True)),
        ("", 5, ("", 0, False)),
    ],
)
def test_cut_to_max_tokens_counts_words_as_tokens(
    text: str, max_tokens: int | None, expected: tuple[str, int, bool]
) -> None:
    assert cut_to_max_tokens(text, max_tokens) == expected
