"""The run endpoint as Server-Sent Events, from a real uvicorn server on loopback, read by an
httpx client as it streams; a client that disconnects cancels the run."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import fastapi
import httpx
import plait
import plait_fastapi
import pytest
import uvicorn
from plait_testing import HANG, Chunks, FakeProvider, provider_plugin

WRITER = plait.Agent("fake:writer")


class Served:
    """A pipeline whose one step streams from the fake, and what the server-side run did."""

    def __init__(self) -> None:
        self.fake = FakeProvider(chunk_delay=0.01)
        self.unwound = threading.Event()  # the step's finally ran (the run was cancelled)

        @plait.step
        async def draft(ctx: plait.StepContext) -> str:
            try:
                async with ctx.stream(WRITER, ctx.input("topic")) as stream:
                    async for _ in stream:
                        pass
                return stream.reply.text
            finally:
                self.unwound.set()

        self.pipe = plait.Pipeline("write", steps={"draft": draft})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served() -> Iterator[tuple[Served, str]]:
    """uvicorn serving the router in a thread of its own (its own event loop), on loopback."""
    state = Served()
    app = fastapi.FastAPI(lifespan=plait_fastapi.lifespan(
        plugins=[provider_plugin(state.fake)], entry_points=False))
    app.include_router(plait_fastapi.router({"write": state.pipe}))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        assert server.started, "uvicorn did not start within 10 s"
        yield state, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event name, decoded data) for each Server-Sent Event of ``response``."""
    name = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name or "", json.loads(line.removeprefix("data: "))


@pytest.mark.parametrize("ask", ["accept", "query"])
async def test_a_run_streams_one_event_per_run_event(served: tuple[Served, str],
                                                     ask: str) -> None:
    state, base = served
    state.fake.script("Streams are read as they arrive.")
    headers = {"accept": "text/event-stream"} if ask == "accept" else {}
    params = {"stream": "true"} if ask == "query" else {}
    seen: list[tuple[str, Any]] = []
    with anyio.fail_after(20):
        async with httpx.AsyncClient(base_url=base) as client, client.stream(
                "POST", "/write/runs", json={"topic": "streams"}, headers=headers,
                params=params) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            seen = [event async for event in events(response)]
    names = [name for name, _ in seen]
    assert names == ["RunStarted", "StepStarted", *["TextDelta"] * 6, "StepFinished",
                     "RunFinished"]
    deltas = [data["text"] for name, data in seen if name == "TextDelta"]
    assert "".join(deltas) == "Streams are read as they arrive."
    assert seen[1][1]["step_id"] == "draft"
    finished = seen[-1][1]
    assert finished["result"]["outputs"]["draft"] == "Streams are read as they arrive."
    assert finished["result"]["steps"]["draft"]["status"] == "ok"


async def test_without_asking_the_result_is_one_json_reply(served: tuple[Served, str]) -> None:
    state, base = served
    state.fake.script("whole")
    async with httpx.AsyncClient(base_url=base) as client:
        with anyio.fail_after(20):
            response = await client.post("/write/runs", json={"topic": "t"})
    assert response.headers["content-type"] == "application/json"
    assert response.json()["output"] == "whole"


# The client leaves the body early on purpose: httpx reads it through nested async
# generators, which that leaves to the garbage collector, and trio warns about each one.
@pytest.mark.filterwarnings("ignore:Async generator:ResourceWarning")
async def test_a_client_that_disconnects_cancels_the_run(served: tuple[Served, str]) -> None:
    state, base = served
    state.fake.script(Chunks("first ", HANG))
    with anyio.fail_after(20):
        async with httpx.AsyncClient(base_url=base) as client, client.stream(
                "POST", "/write/runs?stream=true", json={"topic": "t"}) as response, \
                contextlib.aclosing(events(response)) as read:
            async for name, data in read:
                if name == "TextDelta":
                    assert data["text"] == "first "
                    break
        # the response is closed: the server notices, and the run is cancelled
        assert await anyio.to_thread.run_sync(state.unwound.wait, 10), \
            "the run went on after the client left"
