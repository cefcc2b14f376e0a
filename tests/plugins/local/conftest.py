"""One plait-local provider for the whole session: SmolLM2 loads once, on first use."""

import plait
import plait_local
import pytest


@pytest.fixture(scope="session")
def local_runtime() -> plait.Runtime:
    # Only plait-local: another installed plugin, broken or not, cannot change these tests.
    # The Runtime's HTTP client is never opened: plait-local makes no HTTP calls.
    return plait.Runtime(plugins=[plait_local], entry_points=False)


@pytest.fixture(scope="session")
def smollm2(local_runtime: plait.Runtime) -> plait_local.LocalProvider:
    """The ``local`` provider as a Runtime builds it; the model loads on its first request
    and then serves every test, on asyncio and on trio alike."""
    provider = local_runtime.provider("local")
    assert isinstance(provider, plait_local.LocalProvider)
    return provider
