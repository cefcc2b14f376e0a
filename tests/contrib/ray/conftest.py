"""One real local Ray instance for the whole session (2 CPUs, no dashboard), and a
``plait_runtime`` whose every fan-out runs on it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import cloudpickle
import httpx
import plait
import plait_ray.plugin
import pytest


@pytest.fixture(scope="session", autouse=True)
def ray_instance() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(autouse=True)
def ship_test_modules_by_value(request: pytest.FixtureRequest) -> None:
    """Workers cannot import test modules (pytest imports them by path): send what a test
    defines (functions, exception classes) by value instead."""
    module = sys.modules[request.module.__name__]
    if not cloudpickle.cloudpickle._is_registered_pickle_by_value(module):
        cloudpickle.register_pickle_by_value(module)


@pytest.fixture
async def plait_runtime(no_network: httpx.MockTransport,
                        anyio_backend: Any) -> AsyncIterator[plait.Runtime]:
    async with plait.Runtime(entry_points=False, transport=no_network, executor="ray",
                             plugins=[plait_ray.plugin]) as runtime:
        yield runtime
