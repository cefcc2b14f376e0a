"""The HTTP client a Runtime's providers share: one per event loop, made on first use.

An ``httpx.AsyncClient`` holds connections bound to the loop that opened them, and a
Runtime may serve several loops in turn (``run_sync`` makes a new one each call), so
the client is remade when the running loop changes.

Its connections are kept in several small pools instead of one (``ShardedPools``):
httpcore's pool scans every connection it holds whenever a request starts or a response
ends (which is idle, which has expired: a socket poll each), so its cost per request grows
with the number of connections. At 50 requests at once over loopback that bookkeeping was
most of a request's CPU (2.3 ms of it); eight pools of a few connections each cut plait's
CPU per request to a third (``tests/bench/bench_model_calls.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import sniffio

if TYPE_CHECKING:
    import httpx

__all__ = ["SHARDS", "SharedClient", "sharded_pools"]

SHARDS = 8  # pools; a request goes to the one with the fewest requests in flight
KEEPALIVE = 16  # idle connections kept per pool (128 in all, as one pool kept before)


class SharedClient:
    __slots__ = ("_client", "_transport")

    def __init__(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self._transport = transport
        self._client: tuple[object, httpx.AsyncClient] | None = None

    def get(self) -> httpx.AsyncClient:
        import httpx  # on first need: registration and `plait --help` never load it

        token = _loop_token()
        if self._client is None or self._client[0] != token:
            import urllib.request  # httpx imports it too

            transport = self._transport
            # A transport given to the client turns httpx's proxies from the environment
            # off, so with proxies configured the client keeps its own single pool.
            if transport is None and not urllib.request.getproxies():
                transport = sharded_pools()
            self._client = (token, httpx.AsyncClient(
                transport=transport, timeout=httpx.Timeout(60.0, connect=10.0),
                # no cap on connections: calls queue in plait's FIFO limiters (a default
                # concurrency per provider), where waiting is cheap, and never in the
                # pool, whose bookkeeping scans every connection for every queued request
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=128)))
        return self._client[1]

    async def aclose(self) -> None:
        if self._client is not None and self._client[0] == _loop_token():
            await self._client[1].aclose()
        self._client = None


def sharded_pools(shards: int = SHARDS) -> httpx.AsyncBaseTransport:
    """``shards`` connection pools behind one transport (see the module's docstring).
    Its classes are made here, where httpx is imported on first need."""
    import httpx

    class ShardedPools(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=KEEPALIVE)
            self.pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(shards)]
            self.busy = [0] * shards  # requests in flight, response bodies not yet closed

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            busy = self.busy
            i = busy.index(min(busy))  # the first of the least busy: idle work reuses one
            busy[i] += 1
            try:
                response = await self.pools[i].handle_async_request(request)
            except BaseException:
                busy[i] -= 1
                raise
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = _Counted(response.stream, busy, i)
            return response

        async def aclose(self) -> None:
            for pool in self.pools:
                await pool.aclose()

    class _Counted(httpx.AsyncByteStream):
        """A response body that marks its pool one request less busy once closed."""

        def __init__(self, stream: httpx.AsyncByteStream, busy: list[int], i: int) -> None:
            self._stream = stream
            self._busy = busy
            self._i: int | None = i

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self._stream:
                yield chunk

        async def aclose(self) -> None:
            try:
                await self._stream.aclose()
            finally:
                if self._i is not None:
                    self._busy[self._i] -= 1
                    self._i = None

    return ShardedPools()


def _loop_token() -> object:
    """Identifies the running event loop (asked on every request, so asyncio's own C call
    comes first; sniffio is only asked when that finds no asyncio loop)."""
    try:
        return ("asyncio", id(asyncio.get_running_loop()))
    except RuntimeError:
        if sniffio.current_async_library() != "trio":
            raise
    import trio  # only ever reached under trio, which is then installed

    return ("trio", id(trio.lowlevel.current_root_task()))
