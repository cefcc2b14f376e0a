"""The shared HTTP client: connections in several small pools, over a real loopback server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest
from plait._client import SHARDS, SharedClient

WAIT = 20  # seconds: a request that never comes back fails the test instead of hanging it
REPLY = b'{"ok": true}'
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(REPLY)) + REPLY


class Server:
    """A keep-alive HTTP/1.1 server on loopback that answers every request at once and
    counts the connections it was opened."""

    def __init__(self) -> None:
        self.connections = 0
        self.url = ""

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        buffered = b""
        async with stream:
            while True:
                while b"\r\n\r\n" not in buffered:
                    try:
                        buffered += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                _, buffered = buffered.split(b"\r\n\r\n", 1)  # GETs: no body
                await anyio.sleep(0.01)  # long enough for requests to overlap
                await stream.send(RESPONSE)


@asynccontextmanager
async def serving() -> AsyncIterator[Server]:
    server = Server()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    server.url = f"http://127.0.0.1:{port}/"
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_proxies")
async def test_concurrent_requests_spread_over_the_pools_and_all_come_back() -> None:
    shared = SharedClient(None)
    statuses: list[int] = []
    with anyio.fail_after(WAIT):
        async with serving() as server:
            client = shared.get()

            async def get() -> None:
                response = await client.get(server.url)
                statuses.append(response.status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(4 * SHARDS):
                    tg.start_soon(get)
            transport = client._transport
            busy = list(transport.busy)  # type: ignore[attr-defined]
            kept = [len(pool._pool.connections)  # type: ignore[attr-defined]
                    for pool in transport.pools]  # type: ignore[attr-defined]
            await shared.aclose()
    assert statuses == [200] * (4 * SHARDS)
    assert busy == [0] * SHARDS  # every response marked its pool free again
    # at once, the requests went to every pool, each opening connections of its own
    assert all(kept)
    assert sum(kept) == server.connections


@pytest.mark.usefixtures("no_proxies")
async def test_one_request_after_another_reuses_one_connection() -> None:
    shared = SharedClient(None)
    with anyio.fail_after(WAIT):
        async with serving() as server:
            client = shared.get()
            for _ in range(5):
                assert (await client.get(server.url)).json() == {"ok": True}
            await shared.aclose()
    assert server.connections == 1


@pytest.mark.usefixtures("no_proxies")
async def test_a_failed_request_leaves_its_pool_free() -> None:
    import httpx

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now: the connection is refused
    shared = SharedClient(None)
    client = shared.get()
    with anyio.fail_after(WAIT), pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")
    assert client._transport.busy == [0] * SHARDS  # type: ignore[attr-defined]
    await shared.aclose()


async def test_proxies_from_the_environment_keep_httpx_s_own_pool(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    shared = SharedClient(None)
    client = shared.get()
    assert not hasattr(client._transport, "busy")
    assert client._mounts  # httpx routes through the environment's proxy
    await shared.aclose()


async def test_a_given_transport_is_used_as_it_is() -> None:
    import httpx

    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    shared = SharedClient(transport)
    client = shared.get()
    assert client._transport is transport
    assert (await client.get("http://test/")).status_code == 204
    await shared.aclose()
