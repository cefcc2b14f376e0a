"""plait-cache: identical model requests answered from an SQLite file, free.

On when a path is configured: ``Runtime(settings={"cache": {"path": PATH}})`` or the
``PLAIT_CACHE=PATH`` environment variable (the setting wins; ``{"path": None}`` turns
the cache off whatever the environment says). Requests sampled at ``temperature > 0``
are cached only with ``{"sampled": True}``: otherwise an ensemble's candidates, sent
alike on purpose, would all get one answer.

Through ``plait_answer_model_call``, a hit is answered before any budget reservation, so
it costs $0, reserves nothing and shows as ``reply.cached`` / ``Usage.cache_hits``. Two
identical requests in flight at once make one request: the second waits for the first's
answer (and sends its own if the first fails).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

import anyio
import attrs
import plait
from plait.hookspecs import RegisterCommand

from ._errors import CacheCorrupt, CacheError
from ._key import request_key
from ._store import CacheStats, Store, clear

__all__ = ["ENV", "SETTING", "CacheCorrupt", "CacheError", "CacheStats", "Store", "clear",
           "request_key"]

ENV = "PLAIT_CACHE"
SETTING = "cache"  # Runtime(settings={"cache": {...}})
_OPTIONS = frozenset({"path", "sampled"})


@attrs.define
class _Flight:
    """A request in flight; identical ones wait for ``done`` and take its ``response``."""

    done: anyio.Event = attrs.field(factory=anyio.Event)
    response: plait.ModelResponse | None = None


@attrs.define
class _Cache:
    """The cache of one Runtime: its settings, its file and the requests in flight."""

    store: Store | None  # None: off
    sampled: bool
    flights: dict[str, _Flight] = attrs.field(factory=dict)


_caches: weakref.WeakKeyDictionary[plait.Runtime, _Cache] = weakref.WeakKeyDictionary()


@plait.hookimpl
def plait_answer_model_call(request: plait.ModelRequest, provider: str, call: plait.ModelCall,
                            runtime: plait.Runtime,
                            send: Callable[[], Awaitable[plait.ModelResponse]]) -> Any:
    cache = _cache_of(runtime)
    if cache.store is None:
        return None
    if request.temperature and request.temperature > 0 and not cache.sampled:
        return None
    key = request_key(provider, request)
    if key is None:
        return None
    return _answer(cache, cache.store, key, provider, request.model, call, send)


async def _answer(cache: _Cache, store: Store, key: str, provider: str, model: str,
                  call: plait.ModelCall,
                  send: Callable[[], Awaitable[plait.ModelResponse]]) -> plait.ModelResponse:
    while True:
        hit = store.get(key)
        if hit is not None:
            return hit
        flight = cache.flights.get(key)
        if flight is None:
            break
        await flight.done.wait()
        if flight.response is not None:  # the same answer, once more from the cache
            return flight.response
        # the first one failed: this one goes again (and leads the next ones)
    flight = cache.flights[key] = _Flight()
    try:
        response = await send()
        cost = call.usage.cost if call.usage is not None else Decimal(0)
        store.put(key, provider, model, response, cost)
        flight.response = response
        return response
    finally:
        del cache.flights[key]
        flight.done.set()


def _cache_of(runtime: plait.Runtime) -> _Cache:
    try:
        return _caches[runtime]
    except KeyError:
        pass
    options: Mapping[str, Any] = runtime.settings.get(SETTING, {})
    unknown = set(options) - _OPTIONS
    if unknown:
        raise CacheError(f"unknown cache setting(s) {', '.join(sorted(unknown))}; "
                         f"valid: {', '.join(sorted(_OPTIONS))}")
    path = options["path"] if "path" in options else os.environ.get(ENV) or None
    sampled = options.get("sampled", False)
    if not isinstance(sampled, bool):
        raise CacheError(f"cache setting 'sampled' must be true or false, got {sampled!r}")
    if path is not None and not isinstance(path, str | os.PathLike):
        raise CacheError(f"cache setting 'path' must be a file path, got {path!r}")
    cache = _caches[runtime] = _Cache(None if path is None else Store(path), sampled)
    return cache


@plait.hookimpl
def plait_register_commands(register: RegisterCommand) -> None:
    from ._cli import cache

    register(cache)
