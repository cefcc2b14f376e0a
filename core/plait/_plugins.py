"""Plugins: one pluggy manager per Runtime, installed plugins loaded lazily and guarded.

Plugins installed through entry points (group ``plait``) load on the first thing that
needs them, each inside a guard: a plugin that fails to import, or whose registration
hook raises, is recorded as broken and skipped with a ``PluginWarning`` instead of
breaking everything (``PLAIT_STRICT_PLUGINS=1`` makes it a ``PluginError``). A plugin
registered in code is the application's own: its failures raise ``PluginError`` at once.

Switches: ``PLAIT_LOAD_PLUGINS`` (comma-separated distribution names; empty = none),
``PLAIT_DISABLE_PLUGIN_AUTOLOAD=1``, ``PLAIT_TRACE_HOOKS=1`` (print each hook call).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import pluggy

from . import hookspecs
from ._errors import PluginError, UnknownPlugin
from ._hooks import Hooks, call_impl
from ._model import Limits, ProviderSpec
from ._money import Price

__all__ = ["KNOWN_DISTRIBUTIONS", "PluginInfo", "PluginWarning", "Plugins", "Registry"]

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
    "metric": {"judge": "plait-judge"},
    "executor": {"ray": "plait-ray"},
}

BUILTINS = "plait.builtins"  # plait's own default behaviour, a plugin like any other
_BUILTIN_MODULE = "plait._builtin"

# registration hook -> the kind of thing it registers
_REGISTRATIONS = {
    "plait_register_providers": "provider",
    "plait_register_aggregators": "aggregator",
    "plait_register_validators": "validator",
    "plait_register_tracers": "tracer",
    "plait_register_commands": "command",
    "plait_register_converter_hooks": "converter",
    "plait_register_metrics": "metric",
    "plait_register_executors": "executor",
    "plait_register_stores": "store",
}


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
class Registry:
    """What every plugin's registration hooks registered."""

    providers: dict[str, ProviderSpec] = attrs.field(factory=dict)
    aggregators: dict[str, Any] = attrs.field(factory=dict)
    validators: dict[str, Any] = attrs.field(factory=dict)
    tracers: dict[str, tuple[Any, bool]] = attrs.field(factory=dict)
    commands: list[Any] = attrs.field(factory=list)
    converter_hooks: list[tuple[Any, Any, Any]] = attrs.field(factory=list)
    metrics: dict[str, Any] = attrs.field(factory=dict)
    executors: dict[str, Any] = attrs.field(factory=dict)
    stores: dict[str, Any] = attrs.field(factory=dict)  # scheme -> factory(location)
    owners: dict[tuple[str, str], str] = attrs.field(factory=dict)  # (kind, name) -> plugin


class Plugins:
    """The plugin manager of one Runtime and what its plugins registered."""

    def __init__(self, *, autoload: bool | None, tracers: list[str] | None) -> None:
        """``autoload``: load installed plugins (``None``: unless
        ``PLAIT_DISABLE_PLUGIN_AUTOLOAD`` is set); ``tracers``: the tracers to enable
        (``None``: every one registered as default)."""
        if autoload is None:
            autoload = not os.environ.get("PLAIT_DISABLE_PLUGIN_AUTOLOAD")
        self.pm = pluggy.PluginManager("plait")
        self.pm.add_hookspecs(hookspecs)
        self.pm.register(importlib.import_module(_BUILTIN_MODULE), name=BUILTINS)
        self.hooks = Hooks(self.pm, self.load, trace=bool(os.environ.get("PLAIT_TRACE_HOOKS")))
        self._autoload = autoload
        self._tracer_names = tracers
        self._loaded = False
        self._load_lock = threading.RLock()
        self._installed: dict[str, tuple[str | None, str | None]] = {}  # name -> dist, version
        self._broken: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None

    def register(self, plugin: object, name: str | None = None) -> None:
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except (ValueError, pluggy.PluginValidationError) as exc:
            with contextlib.suppress(ValueError):
                self.pm.unregister(plugin)
            raise PluginError(f"cannot register plugin {name or plugin!r}: {exc}") from exc
        self._changed()

    def unregister(self, plugin: object) -> None:
        self.pm.unregister(plugin)
        self._changed()

    def _changed(self) -> None:
        self._registry = None
        self.hooks.changed()
        if self._loaded:  # a tracer a plugin registers (or took away) comes and goes with it
            self._enable_tracers()

    # -- loading ------------------------------------------------------------------------

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

    def _load_entry_points(self) -> None:
        import importlib.metadata  # on first need: `plait --help` stays fast

        allow_env = os.environ.get("PLAIT_LOAD_PLUGINS")
        allow = None if allow_env is None else {
            _norm(n) for n in allow_env.split(",") if n.strip()}
        for ep in importlib.metadata.entry_points(group="plait"):
            dist = ep.dist.name if ep.dist else None
            if allow is not None and _norm(dist or ep.name) not in allow:
                continue
            if self.pm.has_plugin(ep.name) or self.pm.is_blocked(ep.name):
                continue
            self._installed[ep.name] = (dist, ep.dist.version if ep.dist else None)
            try:
                self.pm.register(ep.load(), name=ep.name)
                self.pm.check_pending()
            except Exception as exc:  # a broken plugin must not break everything
                self._set_aside(ep.name, "failed to load", f"{type(exc).__name__}: {exc}", exc)

    def _set_aside(self, name: str, what: str, error: str, exc: Exception) -> None:
        """Record an installed plugin as broken and take it out (or fail, when strict)."""
        with contextlib.suppress(Exception):
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
        dist, version = self._installed.get(name, (None, None))
        self._broken[name] = PluginInfo(name, dist, version, (), {}, error)
        message = f"plait plugin {name!r} ({dist} {version}) {what}"
        if os.environ.get("PLAIT_STRICT_PLUGINS"):
            raise PluginError(f"{message}: {type(exc).__name__}: {exc}") from exc
        warnings.warn(f"{message} and was skipped: {type(exc).__name__}: {exc}",
                      PluginWarning, stacklevel=4)

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
        self.hooks.changed()
        if names is not None:
            missing = [n for n in names if n not in registry.tracers]
            if missing:
                raise UnknownPlugin("tracer", missing[0], list(registry.tracers),
                                    KNOWN_DISTRIBUTIONS["tracer"].get(missing[0]))

    # -- registrations ------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        self.load()
        while self._registry is None:
            self._registry = self._collect()
        return self._registry

    def _collect(self) -> Registry | None:
        """Call every registration hook; ``None`` when an installed plugin's raised (it
        is set aside, so collecting again leaves out all it registered)."""
        reg = Registry()
        adders = _adders(reg)
        for hook, kind in _REGISTRATIONS.items():
            for impl in self.hooks.implementations(hook):
                owner = impl.plugin_name

                def register(*args: Any, _owner: str = owner, _kind: str = kind,
                             **kwargs: Any) -> None:
                    reg.owners[(_kind, adders[_kind](*args, **kwargs))] = _owner

                try:
                    call_impl(impl, {"register": register})
                except Exception as exc:
                    if owner not in self._installed:  # the application's own plugin
                        raise PluginError(f"plugin {owner!r} failed in {hook}: "
                                          f"{type(exc).__name__}: {exc}") from exc
                    self._set_aside(owner, f"failed in {hook}",
                                    f"{hook} raised {type(exc).__name__}: {exc}", exc)
                    self.hooks.changed()
                    return None
        return reg

    def infos(self, *, include_builtins: bool = False) -> list[PluginInfo]:
        """Every plugin with its distribution, version, hooks and registrations."""
        registry = self.registry
        infos: list[PluginInfo] = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None or (name.startswith(BUILTINS) and not include_builtins):
                continue
            callers = self.pm.get_hookcallers(plugin) or ()
            hooks = tuple(sorted(h.name for h in callers if h.name.startswith("plait_")))
            registered: dict[str, list[str]] = {}
            for (kind, item), owner in registry.owners.items():
                if owner == name:
                    registered.setdefault(kind, []).append(item)
            dist, version = self._installed.get(name, (None, None))
            infos.append(PluginInfo(name, dist, version, hooks,
                                    {k: tuple(sorted(v)) for k, v in registered.items()}))
        return infos + list(self._broken.values())


def _adders(reg: Registry) -> dict[str, Callable[..., str]]:
    """For each kind, the function that checks and records one registration; each returns
    the name it was registered under."""

    def provider(name: str, factory: Any, *, prices: Mapping[str, Price] | None = None,
                 limits: Limits | None = None,
                 context_windows: Mapping[str, int] | None = None) -> str:
        _check_name("provider", name)
        if not callable(factory):
            raise PluginError(f"provider {name!r}: factory must be callable, got {factory!r}")
        for model, window in (context_windows or {}).items():
            if isinstance(window, bool) or not isinstance(window, int) or window < 1:
                raise PluginError(f"provider {name!r}: context window of {model!r} must be "
                                  f"an int >= 1 (tokens), got {window!r}")
        reg.providers[name] = ProviderSpec(name, factory, dict(prices or {}), limits or Limits(),
                                           dict(context_windows or {}))
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

    def converter(cls: Any, unstructure: Any, structure: Any) -> str:
        reg.converter_hooks.append((cls, unstructure, structure))
        return str(getattr(cls, "__name__", cls))

    return {"provider": provider, "aggregator": named("aggregator", reg.aggregators),
            "validator": named("validator", reg.validators), "tracer": tracer,
            "command": command, "converter": converter,
            "metric": named("metric", reg.metrics),
            "executor": named("executor", reg.executors),
            "store": named("store", reg.stores)}


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not name or ":" in name:
        raise PluginError(f"a {kind} name must be a non-empty string without ':', got {name!r}")


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")
