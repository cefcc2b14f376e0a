"""plait_fastapi.lifespan and current_runtime, in a real app lifecycle (FastAPI's TestClient)."""

from __future__ import annotations

from typing import Any

import fastapi
import plait
import plait_fastapi
import pytest
from fastapi.testclient import TestClient
from plait_testing import FakeProvider, provider_plugin

BACKENDS = [pytest.param({"backend": "asyncio"}, id="asyncio"),
            pytest.param({"backend": "trio"}, id="trio")]

echo = plait.Agent("fake:echo")
pipe = plait.Pipeline("echo", steps={"echo": echo.as_step("{text}")})


class Closing(plait.Runtime):
    """A Runtime that remembers being closed."""

    closed = 0

    async def aclose(self) -> None:
        self.closed += 1
        await super().aclose()


@pytest.mark.parametrize("backend_options", BACKENDS)
def test_the_lifespan_runtime_serves_runs_and_is_closed_at_shutdown(
        backend_options: dict[str, Any]) -> None:
    fake = FakeProvider()
    runtime = Closing(entry_points=False, plugins=[provider_plugin(fake)])
    app = fastapi.FastAPI(lifespan=plait_fastapi.lifespan(runtime))
    app.include_router(plait_fastapi.router({"echo": pipe}))
    seen: list[Any] = []

    @app.post("/ask")
    async def ask(text: str, rt: Any = fastapi.Depends(plait_fastapi.current_runtime),
                  ) -> str:
        seen.append(rt)
        return str((await pipe.run({"text": text}, runtime=rt)).output)

    with TestClient(app, backend_options=backend_options) as client:
        assert client.post("/echo/runs", json={"text": "hi"}).json()["output"] == "hi"
        assert client.post("/ask", params={"text": "there"}).json() == "there"
        assert runtime.closed == 0
    assert runtime.closed == 1
    assert seen == [runtime]
    assert fake.calls == 2  # both runs used the lifespan's Runtime and its fake


@pytest.mark.parametrize("backend_options", BACKENDS)
def test_the_lifespan_builds_a_runtime_from_keywords(backend_options: dict[str, Any]) -> None:
    fake = FakeProvider(["built"])
    lifespan = plait_fastapi.lifespan(entry_points=False, plugins=[provider_plugin(fake)])
    app = fastapi.FastAPI(lifespan=lifespan)
    app.include_router(plait_fastapi.router({"echo": pipe}))
    with TestClient(app, backend_options=backend_options) as client:
        response = client.post("/echo/runs", json={"text": "hi"})
    assert response.json()["output"] == "built"


def test_a_broken_plugin_fails_at_start_up_not_on_the_first_request() -> None:
    class Misspelled:
        @plait.hookimpl
        def plait_register_providerz(self, register: Any) -> None:
            """Not a hook of plait's: the Runtime refuses the plugin."""

    app = fastapi.FastAPI(lifespan=plait_fastapi.lifespan(
        entry_points=False, plugins=[Misspelled()]))
    with pytest.raises(plait.PluginError, match="plait_register_providerz"), TestClient(app):
        pass


def test_a_runtime_or_keywords_not_both() -> None:
    with pytest.raises(TypeError, match="not both"):
        plait_fastapi.lifespan(plait.Runtime(entry_points=False), entry_points=False)


def test_without_a_lifespan_current_runtime_is_none() -> None:
    app = fastapi.FastAPI()

    @app.get("/runtime")
    async def which(rt: Any = fastapi.Depends(plait_fastapi.current_runtime)) -> bool:
        return rt is None

    with TestClient(app) as client:
        assert client.get("/runtime").json() is True
