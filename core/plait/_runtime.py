"""The Runtime: one plugin manager, converter, HTTP client and limiters, and nothing global.

Plugins installed through entry points (group ``plait``) load lazily, on the first thing
that needs them, each inside a guard: a plugin that fails to import is recorded and skipped
with a warning instead of breaking everything (``PLAIT_STRICT_PLUGINS=1`` makes it fatal).

Switches: ``PLAIT_LOAD_PLUGINS`` (comma-separated distribution names; empty = none),
``PLAIT_DISABLE_PLUGIN_AUTOLOAD=1``, ``PLAIT_TRACE_HOOKS=1`` (print each hook call).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import pluggy

from . import hookspecs
from ._errors import PluginError, UnknownPlugin
from ._model import Limits, ProviderEnv, ProviderSpec
from ._money import Price

if TYPE_CHECKING:
    import cattrs
    import httpx

    from ._context import StepContext
    from ._router import Router
    from ._step import Step

__all__ = ["PluginInfo", "PluginWarning", "Runtime", "default_runtime"]

T = TypeVar("T")

# Where a name users ask for comes from, so "unknown" errors can say what to install.
KNOWN_DISTRIBUTIONS = {
    "provider": {
        "openai": "plait-openai", "ollama": "plait-openai", "lmstudio": "plait-openai",
        "vllm": "plait-openai", "llamacpp": "plait-openai", "openrouter": "plait-openai",
        "groq": "plait-openai", "together": "plait-openai", "anthropic": "plait-anthropic",
        "gemini": "plait-gemini", "local": "plait-local", "fake": "plait-testing",
    },
    "aggregator": {"vote": "plait-vote", "judge": "plait-judge", "synthesis": "plait-synthesis"},
    "validator": {},
    "tracer": {"otel": "plait-otel"},
}

_WRAPPER_HOOKS = ("plait_wrap_run", "plait_wrap_step", "plait_wrap_fanout",
                  "plait_wrap_aggregate", "plait_wrap_model_call")


# a snapshot of a model: gpt-4o-2024-08-06, claude-x-20241022, gemini-x-001, x-latest,
# gemini-2.5-flash-preview-09-2025
_SNAPSHOT = re.compile(
    r"(?P<base>.+?)-(\d{4}-\d{2}-\d{2}|\d{8}|\d{3}|latest|preview(-\d{2}-\d{4})?)$")


class PluginWarning(UserWarning):
    """A plugin could not be loaded and was skipped."""


@attrs.frozen
class PluginInfo:
    """One plugin as ``plait plugins`` shows it."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    registered: Mapping[str, tuple[str, ...]]  # kind -> names ("provider" -> ("openai",))
    error: str | None = None  # set for a plugin that failed to load


@attrs.define
class _Registry:
    providers: dict[str, ProviderSpec] = attrs.field(factory=dict)
    aggregators: dict[str, Any] = attrs.field(factory=dict)
    validators: dict[str, Any] = attrs.field(factory=dict)
    tracers: dict[str, tuple[Any, bool]] = attrs.field(factory=dict)
    commands: list[Any] = attrs.field(factory=list)
    converter_hooks: list[tuple[Any, Any, Any]] = attrs.field(factory=list)
    owners: dict[tuple[str, str], str] = attrs.field(factory=dict)  # (kind, name) -> plugin


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
    ) -> None:
        self.pm = pluggy.PluginManager("plait")
        self.pm.add_hookspecs(hookspecs)
        from . import _builtins

        self.pm.register(_builtins, name="plait.builtins")
        if entry_points is None:
            entry_points = not os.environ.get("PLAIT_DISABLE_PLUGIN_AUTOLOAD")
        self._autoload = entry_points
        self.settings = dict(settings or {})
        self._prices = dict(prices or {})
        self._limit_overrides = dict(limits or {})
        self._tracer_names = None if tracers is None else list(tracers)
        self._transport = transport
        if model_override is not None:
            from ._agent import split_model

            split_model(model_override)  # a malformed name fails here, not on the first call
        self.model_override = model_override
        self._loaded = False
        self._load_lock = threading.RLock()
        self._broken: dict[str, PluginInfo] = {}
        self._registry: _Registry | None = None
        self._providers: dict[str, Any] = {}
        self._converter: cattrs.Converter | None = None
        self._limiters: Any = None
        self._client: tuple[Any, httpx.AsyncClient] | None = None
        self._impl_cache: dict[str, list[Any]] = {}
        self._trace = bool(os.environ.get("PLAIT_TRACE_HOOKS"))
        if self._trace:
            self.pm.trace.root.setwriter(lambda s: print(s, end="", file=sys.stderr))
            self.pm.enable_tracing()
        for plugin in plugins:
            self.register(plugin)

    # -- plugins ------------------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object on this Runtime only."""
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except (ValueError, pluggy.PluginValidationError) as exc:
            with contextlib.suppress(ValueError):
                self.pm.unregister(plugin)
            raise PluginError(f"cannot register plugin {name or plugin!r}: {exc}") from exc
        self._changed()
        if self._loaded:  # a tracer it registers is enabled like one found at load
            self._enable_tracers()

    def unregister(self, plugin: object) -> None:
        self.pm.unregister(plugin)
        self._changed()
        if self._loaded:  # and a tracer it had registered goes with it
            self._enable_tracers()

    @contextlib.contextmanager
    def plugin(self, plugin: object, name: str | None = None) -> Iterator[object]:
        """Register ``plugin`` for the duration of a block (handy in tests)."""
        self.register(plugin, name)
        try:
            yield plugin
        finally:
            self.unregister(plugin)

    def _changed(self) -> None:
        self._registry = None
        self._impl_cache.clear()
        self._providers.clear()
        self._converter = None
        self._limiters = None

    def load(self) -> None:
        """Load installed plugins now (it otherwise happens on first need)."""
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded:  # another thread loaded meanwhile
                return  # type: ignore[unreachable]  # mypy cannot see the other thread
            if self._autoload:
                self._load_entry_points()
            self._loaded = True
            self._changed()
            self._enable_tracers()

    def _load_entry_points(self) -> None:
        allow_env = os.environ.get("PLAIT_LOAD_PLUGINS")
        allow = None if allow_env is None else {
            _norm(n) for n in allow_env.split(",") if n.strip()}
        strict = bool(os.environ.get("PLAIT_STRICT_PLUGINS"))
        import importlib.metadata

        for ep in importlib.metadata.entry_points(group="plait"):
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            if allow is not None and _norm(dist or ep.name) not in allow:
                continue
            if self.pm.has_plugin(ep.name) or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
                self.pm.check_pending()
            except Exception as exc:  # a broken plugin must not break everything
                with contextlib.suppress(Exception):
                    if self.pm.has_plugin(ep.name):
                        self.pm.unregister(name=ep.name)
                error = f"{type(exc).__name__}: {exc}"
                self._broken[ep.name] = PluginInfo(ep.name, dist, version, (), {}, error)
                if strict:
                    raise PluginError(f"plugin {ep.name!r} ({dist} {version}) failed to load: "
                                      f"{error}") from exc
                warnings.warn(f"plait plugin {ep.name!r} ({dist} {version}) failed to load and "
                              f"was skipped: {error}", PluginWarning, stacklevel=3)

    def _enable_tracers(self) -> None:
        """Register the wanted tracers as plugins, and drop those no longer registered."""
        registry = self.registry
        names = self._tracer_names
        current = {id(tracer) for tracer, _ in registry.tracers.values()}
        for name, plugin in self.pm.list_name_plugin():
            if name.startswith("tracer:") and id(plugin) not in current:
                self.pm.unregister(plugin)
        for name, (tracer, default) in registry.tracers.items():
            wanted = default if names is None else name in names
            if wanted and not self.pm.is_registered(tracer):
                self.pm.register(tracer, name=f"tracer:{name}")
        if names is not None:
            missing = [n for n in names if n not in registry.tracers]
            if missing:
                raise UnknownPlugin("tracer", missing[0], list(registry.tracers),
                                    KNOWN_DISTRIBUTIONS["tracer"].get(missing[0]))
        self._impl_cache.clear()

    @property
    def registry(self) -> _Registry:
        self.load()
        if self._registry is None:
            self._registry = self._collect()
        return self._registry

    def _collect(self) -> _Registry:
        reg = _Registry()

        def collect(hook: str, kind: str, add: Callable[..., str | None]) -> None:
            for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
                def register(*args: Any, _owner: str = impl.plugin_name, **kwargs: Any) -> None:
                    name = add(*args, **kwargs)
                    if name is not None:
                        reg.owners[(kind, name)] = _owner
                impl.function(*[{"register": register}[a] for a in impl.argnames])

        def provider(name: str, factory: Any, *, prices: Mapping[str, Price] | None = None,
                     limits: Limits | None = None) -> str:
            _check_name("provider", name)
            if not callable(factory):
                raise PluginError(f"provider {name!r}: factory must be callable, got {factory!r}")
            reg.providers[name] = ProviderSpec(name, factory, dict(prices or {}),
                                               limits or Limits())
            return name

        def named(kind: str, table: dict[str, Any]) -> Callable[..., str]:
            def add(name: str, value: Any) -> str:
                _check_name(kind, name)
                if not callable(value):
                    raise PluginError(f"{kind} {name!r} must be callable, got {value!r}")
                table[name] = value
                return name
            return add

        def tracer(name: str, obj: Any, *, default: bool = True) -> str:
            _check_name("tracer", name)
            reg.tracers[name] = (obj, default)
            return name

        def command(cmd: Any) -> str:
            reg.commands.append(cmd)
            return str(getattr(cmd, "name", cmd))

        def converter_hook(cls: Any, unstructure: Any, structure: Any) -> str:
            reg.converter_hooks.append((cls, unstructure, structure))
            return str(getattr(cls, "__name__", cls))

        collect("plait_register_providers", "provider", provider)
        collect("plait_register_aggregators", "aggregator", named("aggregator", reg.aggregators))
        collect("plait_register_validators", "validator", named("validator", reg.validators))
        collect("plait_register_tracers", "tracer", tracer)
        collect("plait_register_commands", "command", command)
        collect("plait_register_converter_hooks", "converter", converter_hook)
        return reg

    def plugin_infos(self, *, include_builtins: bool = False) -> list[PluginInfo]:
        """Every plugin with its distribution, version, hooks and registrations."""
        registry = self.registry
        dists = _plugin_distributions()
        infos: list[PluginInfo] = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None or (name == "plait.builtins" and not include_builtins):
                continue
            callers = self.pm.get_hookcallers(plugin) or ()
            hooks = tuple(sorted(h.name for h in callers if h.name.startswith("plait_")))
            registered: dict[str, list[str]] = {}
            for (kind, item), owner in registry.owners.items():
                if owner == name:
                    registered.setdefault(kind, []).append(item)
            dist, version = dists.get(name, (None, None))
            infos.append(PluginInfo(name, dist, version, hooks,
                                    {k: tuple(sorted(v)) for k, v in registered.items()}))
        return infos + list(self._broken.values())

    # -- lookups ------------------------------------------------------------------------

    def provider(self, name: str) -> Any:
        """The provider registered as ``name``, built once per Runtime."""
        try:
            return self._providers[name]
        except KeyError:
            pass
        spec = self._provider_spec(name)
        env = ProviderEnv(name, self.settings.get(name, {}), http=lambda: self.http)
        built = spec.factory(env)
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
        """Price of ``provider:model``: user override, then the plugin's table (exact name,
        then a snapshot's base: ``gpt-4o-2024-08-06`` -> ``gpt-4o``, ``x-preview`` -> ``x``),
        then ``*``.

        Only snapshot suffixes fall back to the base, so a variant such as ``o3-pro`` is
        never priced as the cheaper ``o3``."""
        override = self._prices.get(f"{provider}:{model}")
        if override is not None:
            return override
        table = self._provider_spec(provider).prices
        if model in table:
            return table[model]
        snapshot = _SNAPSHOT.match(model)
        if snapshot and snapshot["base"] in table:
            return table[snapshot["base"]]
        return table.get("*")

    def limits(self) -> Any:
        """The shared limiter registry (one per Runtime)."""
        if self._limiters is None:
            from ._limits import LimiterRegistry

            defaults = {name: spec.limits for name, spec in self.registry.providers.items()}
            self._limiters = LimiterRegistry(self._limit_overrides, defaults=defaults)
        return self._limiters

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

    @property
    def converter(self) -> cattrs.Converter:
        """This Runtime's private cattrs converter (plugins' converter hooks included)."""
        if self._converter is None:
            from ._serialize import make_converter

            conv = make_converter()
            for cls, unstructure, structure in self.registry.converter_hooks:
                conv.register_unstructure_hook(cls, unstructure)
                conv.register_structure_hook(cls, structure)
            self._converter = conv
        return self._converter

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared HTTP client, one per event loop the Runtime is used on."""
        import httpx

        token = _loop_token()
        if self._client is None or self._client[0] != token:
            self._client = (token, httpx.AsyncClient(
                transport=self._transport, timeout=httpx.Timeout(60.0, connect=10.0)))
        return self._client[1]

    async def aclose(self) -> None:
        if self._client is not None and self._client[0] == _loop_token():
            await self._client[1].aclose()
        self._client = None

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- calling hooks ------------------------------------------------------------------

    def _impls(self, hook: str) -> list[Any]:
        """Hook implementations in call order, cached until plugins change."""
        try:
            return self._impl_cache[hook]
        except KeyError:
            self.load()
            impls = list(reversed(getattr(self.pm.hook, hook).get_hookimpls()))
            self._impl_cache[hook] = impls
            return impls

    def wraps(self, hook: str) -> bool:
        """Whether any plugin implements the wrapper ``hook`` (else ``around`` can be skipped)."""
        return bool(self._impls(hook))

    def _decide(self, hook: str, kwargs: dict[str, Any]) -> Awaitable[Any]:
        impls = self._impls(hook)
        if len(impls) > 1 or self._trace:
            result = getattr(self.pm.hook, hook)(**kwargs)
            if result is None:
                raise PluginError(f"no plugin answered {hook}")
            return result  # type: ignore[no-any-return]
        # only the built-in default: call it directly (the hot path of every step)
        impl = impls[0]
        return impl.function(*[kwargs[a] for a in impl.argnames])  # type: ignore[no-any-return]

    def run_step(self, step: Step, ctx: StepContext) -> Awaitable[Any]:
        """One attempt of ``step`` through ``plait_run_step``."""
        return self._decide("plait_run_step", {"step": step, "ctx": ctx})

    def choose_route(self, router: Router, ctx: StepContext) -> Awaitable[Any]:
        return self._decide("plait_choose_route", {"router": router, "ctx": ctx})

    def execute_fanout(self, job: Any, ctx: StepContext) -> Awaitable[Any]:
        return self._decide("plait_execute_fanout", {"job": job, "ctx": ctx})

    def aggregate(self, name: str, job: Any) -> Awaitable[Any]:
        return self._decide("plait_aggregate", {"name": name, "job": job})

    async def around(self, hook: str, kwargs: dict[str, Any],
                     work: Callable[[], Awaitable[T]]) -> T:
        """Await ``work()`` inside every wrapper implementing ``hook``.

        Wrappers are entered in hook order and left in reverse, all in this task.
        """
        impls = self._impls(hook)
        if not impls:
            return await work()
        entered: list[tuple[str, Any]] = []
        try:
            for impl in impls:
                if self._trace:
                    print(f"{hook} [{impl.plugin_name}]", file=sys.stderr)
                gen = impl.function(*[kwargs[a] for a in impl.argnames])
                if gen is None:
                    continue
                try:
                    next(gen)
                except StopIteration:
                    raise PluginError(f"{hook} wrapper of plugin {impl.plugin_name!r} returned "
                                      "without yielding; a wrapper must yield exactly once"
                                      ) from None
                entered.append((impl.plugin_name, gen))
            result = await work()
        except BaseException as exc:
            for name, gen in reversed(entered):
                _throw(hook, name, gen, exc)
            raise
        for name, gen in reversed(entered):
            try:
                gen.send(result)
            except StopIteration:
                continue
            except Exception as exc:
                raise PluginError(f"{hook} wrapper of plugin {name!r} failed after the work "
                                  f"succeeded: {type(exc).__name__}: {exc}") from exc
            gen.close()
            raise PluginError(f"{hook} wrapper of plugin {name!r} yielded more than once; "
                              "a wrapper must yield exactly once")
        return result

    def __repr__(self) -> str:
        names = [n for n, _ in self.pm.list_name_plugin() if n != "plait.builtins"]
        return f"<plait.Runtime plugins={names}>"


def _throw(hook: str, name: str, gen: Any, exc: BaseException) -> None:
    """Throw the work's error into one wrapper; the original error always propagates."""
    try:
        gen.throw(exc)
    except StopIteration:
        return  # it tried to swallow the error; wrappers cannot, the error propagates
    except BaseException as raised:
        if raised is exc:
            return
        raise PluginError(f"{hook} wrapper of plugin {name!r} raised "
                          f"{type(raised).__name__} while handling {type(exc).__name__}"
                          ) from raised
    gen.close()
    raise PluginError(f"{hook} wrapper of plugin {name!r} yielded more than once; "
                      "a wrapper must yield exactly once") from exc


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not name or ":" in name:
        raise PluginError(f"a {kind} name must be a non-empty string without ':', got {name!r}")


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _plugin_distributions() -> dict[str, tuple[str, str]]:
    out = {}
    import importlib.metadata

    for ep in importlib.metadata.entry_points(group="plait"):
        if ep.dist is not None:
            out[ep.name] = (ep.dist.name, ep.dist.version)
    return out


def _loop_token() -> object:
    """Identifies the running event loop; an HTTP client must not outlive its loop."""
    import sniffio

    lib = sniffio.current_async_library()
    if lib == "asyncio":
        import asyncio

        return ("asyncio", id(asyncio.get_running_loop()))
    import trio

    return ("trio", id(trio.lowlevel.current_root_task()))


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
