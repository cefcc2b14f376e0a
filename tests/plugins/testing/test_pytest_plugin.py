"""The pytest fixtures of plait-testing, used directly and, where a test must fail, via pytester."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import plait
import pytest
from plait_testing import PRICES, FakeProvider

pytest_plugins = ["pytester"]


async def test_plait_runtime_has_built_ins_only(plait_runtime: plait.Runtime) -> None:
    # plait-testing is installed with a `plait` entry point, yet this Runtime never loads it.
    with pytest.raises(plait.UnknownPlugin, match="install plait-testing"):
        plait_runtime.provider("fake")
    assert plait_runtime.plugin_infos() == []


async def test_plait_runtime_cannot_reach_the_network(plait_runtime: plait.Runtime) -> None:
    with pytest.raises(pytest.fail.Exception,
                       match=r"no_network: the test sent GET https://api\.example\.com/v1/x"):
        await plait_runtime.http.get("https://api.example.com/v1/x")


async def test_fake_provider_is_the_runtime_fake(
    plait_runtime: plait.Runtime, fake_provider: FakeProvider
) -> None:
    assert isinstance(fake_provider, FakeProvider)
    assert plait_runtime.provider("fake") is fake_provider
    assert plait_runtime.price("fake", "priced") == PRICES["priced"]
    assert plait_runtime.price("fake", "free") == PRICES["free"]
    assert plait_runtime.price("fake", "anything-else") is None
    fake_provider.script("scripted")
    request = plait.ModelRequest(model="m", messages=(plait.Message("user", "hi"),))
    assert (await plait_runtime.provider("fake").complete(request)).text == "scripted"
    assert fake_provider.requests == [request]


class Shout:
    @plait.hookimpl
    def plait_register_validators(self, register: Callable[..., None]) -> None:
        register("shout", lambda value: value.isupper() or "not shouted")


@pytest.fixture
def after_teardown() -> Iterator[list[Callable[[], object]]]:
    """Checks to run once every fixture requested after this one has been torn down."""
    checks: list[Callable[[], object]] = []
    yield checks
    for check in checks:
        check()


async def test_register_plugin_registers_for_this_test_only(
    after_teardown: list[Callable[[], object]],
    plait_runtime: plait.Runtime,
    register_plugin: Callable[..., Any],
) -> None:
    plugin = Shout()
    assert register_plugin(plugin, name="shout-plugin") is plugin
    assert plait_runtime.validator("shout")("LOUD") is True
    assert [info.name for info in plait_runtime.plugin_infos()] == ["shout-plugin"]

    def unregistered() -> None:
        with pytest.raises(plait.UnknownPlugin):
            plait_runtime.validator("shout")

    after_teardown.append(unregistered)


async def test_register_plugin_tolerates_a_test_that_unregisters(
    plait_runtime: plait.Runtime, register_plugin: Callable[..., Any]
) -> None:
    plugin = register_plugin(Shout())
    plait_runtime.unregister(plugin)
    with pytest.raises(plait.UnknownPlugin):
        plait_runtime.validator("shout")


def test_no_network_fails_the_test_naming_the_url(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leak="""
        import httpx

        def test_calls_out(no_network):
            with httpx.Client(transport=no_network) as client:
                try:
                    client.post("https://api.example.com/v1/chat/completions")
                except Exception:
                    pass  # code under test that swallows errors cannot hide the call
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*no_network: the test sent POST https://api.example.com/v1/chat/completions*"])


def test_span_exporter_records_spans_of_the_tests_own_provider(
    tracer_provider: Any, span_exporter: Any
) -> None:
    from opentelemetry import trace

    with tracer_provider.get_tracer("plait.test").start_as_current_span("step"):
        pass
    assert [span.name for span in span_exporter.get_finished_spans()] == ["step"]
    assert trace.get_tracer_provider() is not tracer_provider  # the global is left alone


def test_span_exporter_skips_without_the_sdk(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    pytester.makepyfile(test_spans="""
        def test_spans(span_exporter):
            raise AssertionError("never runs without the SDK")
    """)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*could not import 'opentelemetry.sdk.trace'*"])


def test_every_fixture_is_documented(pytester: pytest.Pytester) -> None:
    lines = pytester.runpytest("--fixtures").stdout.lines
    for name in ("plait_runtime", "fake_provider", "register_plugin", "no_network",
                 "tracer_provider", "span_exporter"):
        [at] = [i for i, line in enumerate(lines) if line.startswith(f"{name} -- ")]
        assert "pytest_plugin.py" in lines[at]
        assert lines[at + 1].strip()
        assert "no docstring" not in lines[at + 1]
