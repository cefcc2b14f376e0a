"""The Runtime: everything a run needs from the outside world, held by one object.

It owns references and answers lookups: its plugins (``_plugins``) and their hooks
(``_hooks``), settings, price overrides, limiters, the converter and the shared HTTP
client. It decides nothing about running a step; the engine asks it for what it needs.
Nothing here is global except ``default_runtime()``, made on first use when no Runtime
is passed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ._client import SharedClient
from ._errors import PluginError, UnknownExecutor, UnknownPlugin
from ._events import Listener
from ._hooks import Hooks
from ._limits import LimiterRegistry
from ._model import Limits, ProviderEnv, ProviderSpec, split_model
from ._money import Price, price_in
from ._plugins import BUILTINS, KNOWN_DISTRIBUTIONS, PluginInfo, Plugins, Registry
from ._recorder import Recorder
from ._serialize import make_converter
from ._store import RunStore
from ._stores import OFF, open_location, store_setting

if TYPE_CHECKING:
    import cattrs
    import httpx
    import pluggy

__all__ = ["Runtime", "default_runtime"]

T = TypeVar("T")
_log = logging.getLogger("plait")


class Runtime:
    """Everything a run needs from the outside world, owned by one object.

    - ``plugins``: extra plugin objects (modules or instances) to register.
    - ``entry_points``: load installed plugins (default: yes, unless
      ``PLAIT_DISABLE_PLUGIN_AUTOLOAD`` is set). ``False`` gives built-ins only.
    - ``settings``: per-provider settings, ``{"openai": {"api_key": ...}}``.
    - ``prices``: price overrides, ``{"openai:gpt-4o": plait.Price(...)}``.
    - ``limits``: client-side limits per provider or model, ``{"openai": plait.Limits(...)}``.
    - ``tracers``: names of tracers to enable (default: every tracer registered as default).
    - ``transport``: an ``httpx`` transport for the shared client (tests inject a mock).
    - ``model_override``: ``"<provider>:<model>"`` used for every model call made on this
      Runtime instead of the agent's own model (``plait run --model``, trying a workflow
      on another provider); the agent's ``price`` is then ignored, the new model's applies.
    - ``executor``: the fan-out executor every ``ctx.map`` and ``FanOut`` uses unless it
      names its own (default ``"local"``, plait's in-process pool; ``"ray"`` with plait-ray).
    - ``store``: where runs are recorded (for ``pipe.resume`` and ``plait runs``): a
      file path, a ``<scheme>://`` location a store plugin handles, a ``plait.RunStore``,
      or ``"off"``. Default: ``PLAIT_STORE``, else ``runs.db`` in the user data directory.
    - ``listeners``: async callables awaited with every event of every run on this Runtime
      (``plait.RunStarted`` ... ``plait.RunFinished``); a listener that waits holds the run
      back, one that raises fails it. ``rt.listeners`` is the tuple; a Runtime reference
      such as a run store appends its own.
    - ``context_windows``: ``{"provider:model": tokens}``, over what providers declare (a
      local server's model, a larger window your account has).

    Use ``async with plait.Runtime() as rt`` (or ``await rt.aclose()``) to close the HTTP
    client when you own the runtime.
    """

    def __init__(
        self,
        *,
        plugins: Iterable[object] = (),
        entry_points: bool | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        prices: Mapping[str, Price] | None = None,
        limits: Mapping[str, Limits] | None = None,
        tracers: Iterable[str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        model_override: str | None = None,
        executor: str = "local",
        store: RunStore | str | os.PathLike[str] | bool | None = None,
        listeners: Iterable[Listener] = (),
        context_windows: Mapping[str, int] | None = None,
    ) -> None:
        # every setting is checked here, so a mistake fails now and not at a later call
        self._plugins = Plugins(autoload=entry_points, tracers=_names("tracers", tracers))
        self.hooks: Hooks = self._plugins.hooks
        self.settings = _table("settings", settings,
                               Mapping,  # type: ignore[type-abstract]  # isinstance only
                               "a mapping of settings")
        self._prices = _table("prices", prices, Price, "a plait.Price")
        for key in self._prices:
            split_model(key)
        self._limit_overrides = _table("limits", limits, Limits, "a plait.Limits")
        if transport is not None and not callable(getattr(transport, "handle_async_request",
                                                          None)):
            raise TypeError(f"Runtime(transport=...) must be an httpx.AsyncBaseTransport, "
                            f"got {type(transport).__name__}")
        self._client = SharedClient(transport)
        if model_override is not None:
            split_model(model_override)  # a malformed name fails here, not on the first call
        self.model_override = model_override
        if not isinstance(executor, str) or not executor:
            raise TypeError(f"Runtime(executor=...) must be an executor's name, got {executor!r}")
        self.default_executor = executor  # looked up on the first fan-out: plugins load lazily
        self.listeners: tuple[Listener, ...] = tuple(listeners)
        for listener in self.listeners:
            if not callable(listener):
                raise TypeError(f"Runtime(listeners=...) takes async callables of an event, "
                                f"got {listener!r}")
        self._providers: dict[str, Any] = {}
        self._price_cache: dict[tuple[str, str], Price | None] = {}
        self._window_cache: dict[tuple[str, str], int | None] = {}
        self._windows = _table("context_windows", context_windows, int, "an int (tokens)")
        for key, window in self._windows.items():
            split_model(key)
            if isinstance(window, bool) or window < 1:
                raise ValueError(f"Runtime(context_windows=...)[{key!r}] must be >= 1 tokens")
        self._unpriced: set[str] = set()  # models warned about once
        self._converter: cattrs.Converter | None = None
        self._limiters = self._limiter_registry()  # bad limits fail here, not at a call
        self._store_setting = store_setting(store)  # opened on the first run, not here
        self._store: RunStore | None = None
        self._recorder: Recorder | None = None
        if self._store_setting != OFF:  # record runs: one more listener, one run wrapper
            self._recorder = Recorder(self)
            self.listeners = (*self.listeners, self._recorder)
            self._plugins.register(self._recorder, f"{BUILTINS}.store")
        for plugin in plugins:
            self.register(plugin)

    # -- plugins ------------------------------------------------------------------------

    @property
    def pm(self) -> pluggy.PluginManager:
        """This Runtime's pluggy plugin manager."""
        return self._plugins.pm

    @property
    def registry(self) -> Registry:
        """What the plugins registered (loads installed plugins on first use)."""
        return self._plugins.registry

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object on this Runtime only."""
        self._plugins.register(plugin, name)
        self._changed()

    def unregister(self, plugin: object) -> None:
        self._plugins.unregister(plugin)
        self._changed()

    @contextlib.contextmanager
    def plugin(self, plugin: object, name: str | None = None) -> Iterator[object]:
        """Register ``plugin`` for the duration of a block (handy in tests)."""
        self.register(plugin, name)
        try:
            yield plugin
        finally:
            self.unregister(plugin)

    def load(self) -> None:
        """Load installed plugins now (it otherwise happens on first need)."""
        self._plugins.load()

    def plugin_infos(self, *, include_builtins: bool = False) -> list[PluginInfo]:
        """Every plugin with its distribution, version, hooks and registrations."""
        return self._plugins.infos(include_builtins=include_builtins)

    def _changed(self) -> None:
        self._providers.clear()
        self._price_cache.clear()
        self._window_cache.clear()
        self._converter = None
        self._limiters = self._limiter_registry()

    # -- lookups ------------------------------------------------------------------------

    def provider(self, name: str) -> Any:
        """The provider registered as ``name``, built once per Runtime."""
        try:
            return self._providers[name]
        except KeyError:
            pass
        spec = self._provider_spec(name)
        built = spec.factory(ProviderEnv(name, self.settings.get(name, {}),
                                         http=self._client.get))
        if not callable(getattr(built, "complete", None)):
            raise PluginError(f"provider {name!r} factory returned {built!r}, which has no "
                              "async complete(request) method")
        self._providers[name] = built
        return built

    def _provider_spec(self, name: str) -> ProviderSpec:
        providers = self.registry.providers
        if name not in providers:
            raise UnknownPlugin("provider", name, list(providers),
                                KNOWN_DISTRIBUTIONS["provider"].get(name))
        return providers[name]

    def price(self, provider: str, model: str) -> Price | None:
        """Price of ``provider:model``: this Runtime's override, else the provider's table
        (see ``plait._money.price_in`` for how snapshots fall back to their base)."""
        key = (provider, model)
        if key not in self._price_cache:  # asked for on every call: looked up once
            override = self._prices.get(f"{provider}:{model}")
            self._price_cache[key] = (override if override is not None else self.hooks.first(
                "plait_price", provider=provider, model=model,
                table=self._provider_spec(provider).prices))
        return self._price_cache[key]

    def warn_unpriced(self, model: str) -> None:
        """Say once per model (on the ``plait`` logger) that its cost is unknown."""
        if model not in self._unpriced:
            self._unpriced.add(model)
            _log.warning("no price is known for %r: its calls' cost is reported as unknown, "
                         "not $0; give one with Agent(price=plait.Price.per_million(...)) or "
                         "Runtime(prices={%r: ...}), or install a price plugin", model, model)

    def context_window(self, provider: str, model: str) -> int | None:
        """Tokens ``provider:model`` holds, input and output together (``None``: unknown)."""
        key = (provider, model)
        if key not in self._window_cache:  # asked for on every call: looked up once
            override = self._windows.get(f"{provider}:{model}")
            self._window_cache[key] = override if override is not None else price_in(
                self._provider_spec(provider).context_windows, model)
        return self._window_cache[key]

    def limits(self) -> LimiterRegistry:
        """The shared limiter registry (one per Runtime)."""
        return self._limiters

    def _limiter_registry(self) -> LimiterRegistry:
        def registered(key: str) -> Limits | None:
            spec = self.registry.providers.get(key)
            return None if spec is None else spec.limits

        return LimiterRegistry(self._limit_overrides, defaults=registered)

    def aggregator(self, name: str) -> Any:
        table = self.registry.aggregators
        if name not in table:
            raise UnknownPlugin("aggregator", name, list(table),
                                KNOWN_DISTRIBUTIONS["aggregator"].get(name))
        return table[name]

    def validator(self, name: str) -> Any:
        table = self.registry.validators
        if name not in table:
            raise UnknownPlugin("validator", name, list(table),
                                "plait-validators" if "plait_validators" not in sys.modules
                                else None)
        return table[name]

    def executor(self, name: str) -> Any:
        """The fan-out executor registered as ``name``: ``(job, ctx) -> awaitable outcomes``."""
        table = self.registry.executors
        if name not in table:
            raise UnknownExecutor(name, list(table), KNOWN_DISTRIBUTIONS["executor"].get(name))
        return table[name]

    @property
    def converter(self) -> cattrs.Converter:
        """This Runtime's private cattrs converter (plugins' converter hooks included)."""
        if self._converter is None:
            conv = make_converter()
            for cls, unstructure, structure in self.registry.converter_hooks:
                conv.register_unstructure_hook(cls, unstructure)
                conv.register_structure_hook(cls, structure)
            self._converter = conv
        return self._converter

    @property
    def store(self) -> RunStore | None:
        """The run store this Runtime records runs to (``None`` when recording is off)."""
        setting = self._store_setting
        if self._store is None and setting != OFF:
            self._store = (setting if not isinstance(setting, str)
                           else open_location(setting, self.registry))
        return self._store

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared HTTP client, one per event loop the Runtime is used on."""
        return self._client.get()

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._store is not None:
            await self._store.aclose()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        names = [n for n, _ in self.pm.list_name_plugin() if not n.startswith(BUILTINS)]
        return f"<plait.Runtime plugins={names}>"


def _table(name: str, value: Mapping[str, T] | None, kind: type[T], what: str) -> dict[str, T]:
    """A ``{name: value}`` Runtime setting, checked: keys are strings, values ``kind``.
    Errors name the key and the type, never the value (settings hold API keys)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"Runtime({name}=...) must be a mapping, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"Runtime({name}=...) keys must be non-empty strings, got {key!r}")
        if not isinstance(item, kind):
            raise TypeError(f"Runtime({name}=...)[{key!r}] must be {what}, "
                            f"got {type(item).__name__}")
    return dict(value)


def _names(name: str, value: Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    if isinstance(value, str) or not all(isinstance(v, str) for v in names):
        raise TypeError(f"Runtime({name}=...) must be a list of names, got {value!r}")
    return names


_default: Runtime | None = None
_default_lock = threading.Lock()


def default_runtime() -> Runtime:
    """The Runtime used when none is passed, created on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Runtime()
    return _default
