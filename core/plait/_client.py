"""The HTTP client a Runtime's providers share: one per event loop, made on first use.

An ``httpx.AsyncClient`` holds connections bound to the loop that opened them, and a
Runtime may serve several loops in turn (``run_sync`` makes a new one each call), so
the client is remade when the running loop changes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import sniffio

if TYPE_CHECKING:
    import httpx

__all__ = ["SharedClient"]


class SharedClient:
    __slots__ = ("_client", "_transport")

    def __init__(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self._transport = transport
        self._client: tuple[object, httpx.AsyncClient] | None = None

    def get(self) -> httpx.AsyncClient:
        import httpx  # on first need: registration and `plait --help` never load it

        token = _loop_token()
        if self._client is None or self._client[0] != token:
            self._client = (token, httpx.AsyncClient(
                transport=self._transport, timeout=httpx.Timeout(60.0, connect=10.0),
                # no cap on connections: calls queue in plait's FIFO limiters (a default
                # concurrency per provider), where waiting is cheap, and never in the
                # pool, whose bookkeeping scans every connection for every queued request
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=128)))
        return self._client[1]

    async def aclose(self) -> None:
        if self._client is not None and self._client[0] == _loop_token():
            await self._client[1].aclose()
        self._client = None


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
