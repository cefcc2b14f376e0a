"""Test a provider plugin against a stand-in for its vendor's HTTP API.

httpx is imported on first use: this package is imported when pytest starts and when
plait loads the ``fake`` provider, and neither should pay for it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import plait

if TYPE_CHECKING:
    import httpx

__all__ = ["MockVendor", "assert_no_secret", "registered_providers", "registration_imports"]

_Reply: TypeAlias = "httpx.Response | Callable[[httpx.Request], httpx.Response]"

# Headers httpx adds to every request; the rest is what the provider chose to send.
_HTTPX_HEADERS = frozenset(
    {"host", "accept", "accept-encoding", "connection", "user-agent", "content-length"}
)
_SECRET_PIECE = 10  # this many characters of a secret in a row count as showing it


class MockVendor:
    """A vendor's HTTP API in a test: answers the replies queued, records every request.

    It is an ``httpx.MockTransport`` handler; ``env(name, settings)`` builds the
    ``plait.ProviderEnv`` a provider factory receives, whose ``http`` client talks to it::

        api = MockVendor()
        api.queue(body={"text": "Hello", "usage": {"input": 3, "output": 1}})
        provider = AcmeProvider(api.env("acme", {"api_key": KEY}))
        await provider.complete(request)
        assert api.body()["model"] == "acme-small"

    ``replies`` is the queue, oldest first: ``httpx.Response`` objects, or callables
    ``(request) -> httpx.Response`` that compute the reply or raise (an
    ``httpx.ConnectError``, say). A request with nothing queued fails the test.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.replies: list[_Reply] = []
        self._http: httpx.AsyncClient | None = None

    def queue(
        self,
        status: int = 200,
        body: Any = None,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue a reply: ``body`` sent as JSON, or ``content`` as raw bytes."""
        import httpx

        kwargs: dict[str, Any] = {"content": content} if content is not None else {"json": body}
        self.replies.append(httpx.Response(status, headers=headers, **kwargs))

    def queue_sse(self, *events: Any, cut: bool = False, status: int = 200) -> None:
        """Queue a Server-Sent Events reply, one event per item, sent as it is read.

        An item is a JSON-able value (the event's ``data``), a ``str`` (raw ``data``, such
        as ``"[DONE]"``) or a pair ``(event_name, data)`` for vendors that name their
        events. ``cut=True`` drops the connection after the last event, as a server that
        died mid-reply would (the client reads ``httpx.RemoteProtocolError``).
        """
        import httpx

        blocks = [_sse_block(event) for event in events]
        self.replies.append(httpx.Response(
            status, headers={"content-type": "text/event-stream"},
            content=_event_body(blocks, cut)))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.replies, f"unexpected request: {request.method} {request.url}"
        reply = self.replies.pop(0)
        return reply(request) if callable(reply) else reply

    @property
    def last(self) -> httpx.Request:
        """The latest request."""
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        """A request's JSON body, decoded (the latest by default)."""
        return json.loads(self.requests[index].content)

    def headers(self, index: int = -1) -> dict[str, str]:
        """A request's headers, but those httpx adds to every request (names lower-case)."""
        request = self.requests[index]
        return {k: v for k, v in request.headers.items() if k not in _HTTPX_HEADERS}

    @property
    def http(self) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` whose transport is this mock (one per vendor)."""
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return self._http

    def env(self, name: str, settings: dict[str, Any]) -> plait.ProviderEnv:
        """What a provider factory registered as ``name`` receives, talking to this mock."""
        return plait.ProviderEnv(name=name, settings=settings, http=lambda: self.http)

    def __repr__(self) -> str:
        return f"MockVendor(requests={len(self.requests)}, queued={len(self.replies)})"


def registered_providers(plugin: Any) -> dict[str, dict[str, Any]]:
    """What ``plugin.plait_register_providers`` registers: ``{name: {"factory": ..., **options}}``.

    Registering one name twice fails the test.
    """
    seen: dict[str, dict[str, Any]] = {}

    def register(name: str, factory: Any, **options: Any) -> None:
        assert name not in seen, f"{name!r} registered twice"
        seen[name] = {"factory": factory, **options}

    plugin.plait_register_providers(register)
    return seen


def registration_imports(module: str) -> set[str]:
    """The modules a fresh interpreter imports to import plugin ``module`` and run its
    registration hooks (``plait_register_*``), beyond those ``import plait`` needs.

    Registration must be light: ``assert "httpx" not in registration_imports("plait_acme")``.
    """
    import subprocess
    import sys

    code = (  # pluggy calls the hooks, so an implementation may take no arguments
        "import json, sys, pluggy, plait\n"
        "before = set(sys.modules)\n"
        f"import {module} as plugin\n"
        "manager = pluggy.PluginManager('plait')\n"
        "manager.add_hookspecs(plait.hookspecs)\n"
        "manager.register(plugin)\n"
        "for name in dir(manager.hook):\n"
        "    if name.startswith('plait_register_'):\n"
        "        getattr(manager.hook, name)(register=lambda *args, **kwargs: None)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return set(json.loads(done.stdout))


def assert_no_secret(secret: str, *things: object) -> None:
    """Fail if ``secret``, or any 10 characters of it in a row, shows in ``str`` or
    ``repr`` of one of ``things`` (for an exception, in its ``args`` and attributes too).

    Pieces count because vendors echo keys half-masked (``sk-proj-TESTkey01****``).
    """
    if not secret:
        raise ValueError("assert_no_secret needs the secret")
    width = min(_SECRET_PIECE, len(secret))
    pieces = {secret[i : i + width] for i in range(len(secret) - width + 1)}
    for thing in things:
        shown = f"{thing!s} {thing!r}"
        if isinstance(thing, BaseException):
            shown += repr(thing.args) + repr(vars(thing))
        if any(piece in shown for piece in pieces):
            # not an assert: pytest would print the values, the secret among them
            raise AssertionError(f"the secret, or part of it, shows in a {type(thing).__name__}")


def _sse_block(event: Any) -> bytes:
    name, data = event if isinstance(event, tuple) else (None, event)
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {text}\n\n".encode()


async def _event_body(blocks: list[bytes], cut: bool) -> AsyncIterator[bytes]:
    """One event per read, then the end, or a dropped connection."""
    import anyio.lowlevel
    import httpx

    for block in blocks:
        await anyio.lowlevel.checkpoint()
        yield block
    if cut:
        raise httpx.RemoteProtocolError("peer closed connection without sending complete "
                                        "message body")
