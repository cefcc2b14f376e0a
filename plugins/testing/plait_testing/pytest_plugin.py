"""pytest fixtures for plait code and plugins, loaded through the ``pytest11`` entry point.

Everything heavy is imported inside the fixtures: installing plait-testing must not slow
down, or break, the start of any pytest session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

# The contract suites live in a module that test files import; rewrite its asserts too.
pytest.register_assert_rewrite("plait_testing.contracts")

if TYPE_CHECKING:
    import httpx
    import plait
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from plait_testing import FakeProvider


@pytest.fixture
def no_network() -> httpx.MockTransport:
    """An httpx transport that fails the test on any request, naming its URL."""
    import httpx

    def refuse(request: httpx.Request) -> httpx.Response:
        # pytest.fail raises a BaseException, which no provider or retry loop swallows.
        pytest.fail(
            f"no_network: the test sent {request.method} {request.url}; "
            "mock it with an httpx.MockTransport instead",
            pytrace=False,
        )

    return httpx.MockTransport(refuse)


@pytest.fixture
async def plait_runtime(
    no_network: httpx.MockTransport, anyio_backend: Any
) -> AsyncIterator[plait.Runtime]:
    """A Runtime with plait's built-ins only (no entry points) that cannot reach the network.

    Closed after the test. Register test plugins on it with ``register_plugin``.
    """
    import plait

    async with plait.Runtime(entry_points=False, transport=no_network) as runtime:
        yield runtime


@pytest.fixture
def register_plugin(plait_runtime: plait.Runtime) -> Iterator[Callable[..., Any]]:
    """``register_plugin(plugin, name=None)``: register on ``plait_runtime`` for this test.

    Returns the plugin; every plugin registered this way and still registered at teardown
    is unregistered then.
    """
    registered: list[Any] = []

    def register(plugin: Any, name: str | None = None) -> Any:
        plait_runtime.register(plugin, name=name)
        registered.append(plugin)
        return plugin

    yield register
    for plugin in reversed(registered):
        if plait_runtime.pm.is_registered(plugin):  # the test may have unregistered it
            plait_runtime.unregister(plugin)


@pytest.fixture
def fake_provider(register_plugin: Callable[..., Any]) -> FakeProvider:
    """A fresh ``FakeProvider``, registered on ``plait_runtime`` as ``fake`` (with
    ``plait_testing.PRICES``) for this test: script it, run, then inspect ``.requests``."""
    from plait_testing import PRICES, FakeProvider, provider_plugin

    fake = FakeProvider()
    register_plugin(provider_plugin(fake, "fake", prices=PRICES))
    return fake


@pytest.fixture
def tracer_provider() -> Iterator[TracerProvider]:
    """An OpenTelemetry SDK ``TracerProvider`` of this test's own (skipped without the SDK).

    Hand it to the code under test; the global provider is never touched.
    """
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    provider = sdk_trace.TracerProvider()
    yield provider
    provider.shutdown()


@pytest.fixture
def span_exporter(tracer_provider: TracerProvider) -> InMemorySpanExporter:
    """An ``InMemorySpanExporter`` receiving every span ended on ``tracer_provider``."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter
