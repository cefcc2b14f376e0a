"""Calling hooks: the one place that walks a hook's implementations.

pluggy's own call loop cannot await and cannot drive a wrapper around an ``await``, so
plait calls implementations itself, in pluggy's order (``tryfirst`` first, ``trylast``
last), each with only the arguments it names:

- ``decide``: a decision hook, first non-``None`` answer wins (``firstresult``);
- ``around``: a wrapper hook around awaited work (one-``yield`` generators, driven in
  this task: entered in hook order, left in reverse); ``enter`` does the same for work
  that is not one ``await`` (a stream read by its caller), returning the ``Entered``
  wrappers to leave with the result or the error;
- ``implementations``: for registration hooks, which the plugin loader calls one
  plugin at a time so a broken one can be set aside.

Implementations are cached per hook until ``changed()`` (a plugin came or went).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import pluggy

from ._errors import PluginError

__all__ = ["Entered", "Hooks", "call_impl"]

T = TypeVar("T")


def call_impl(impl: pluggy.HookImpl, kwargs: Mapping[str, Any]) -> Any:
    """Call one implementation with the arguments it asks for (pluggy's pruning)."""
    return impl.function(*[kwargs[name] for name in impl.argnames])


class Hooks:
    """Dispatch for one plugin manager. ``ready`` runs before the first lookup (it loads
    installed plugins); ``trace`` prints every implementation called to stderr."""

    __slots__ = ("_cache", "_pm", "_ready", "trace")

    def __init__(self, pm: pluggy.PluginManager, ready: Callable[[], None],
                 trace: bool = False) -> None:
        self._pm = pm
        self._ready = ready
        self._cache: dict[str, list[pluggy.HookImpl]] = {}
        self.trace = trace

    def changed(self) -> None:
        self._cache.clear()

    def implementations(self, hook: str) -> list[pluggy.HookImpl]:
        """``hook``'s implementations in call order."""
        try:
            return self._cache[hook]
        except KeyError:
            self._ready()
            impls = list(reversed(getattr(self._pm.hook, hook).get_hookimpls()))
            self._cache[hook] = impls
            return impls

    def wraps(self, hook: str) -> bool:
        """Whether any plugin wraps ``hook`` (else the work can be awaited bare)."""
        return bool(self.implementations(hook))

    def only_default(self, hook: str) -> bool:
        """Whether plait's built-in implementation is the only one of a decision hook."""
        return len(self.implementations(hook)) == 1

    def call(self, hook: str, impl: pluggy.HookImpl, kwargs: Mapping[str, Any]) -> Any:
        if self.trace:
            print(f"{hook} [{impl.plugin_name}]", file=sys.stderr)
        return call_impl(impl, kwargs)

    def decide(self, hook: str, **kwargs: Any) -> Awaitable[Any]:
        """The awaitable of the first implementation that answers ``hook``."""
        for impl in self.implementations(hook):
            answer: Any = (self.call(hook, impl, kwargs) if self.trace
                           else call_impl(impl, kwargs))
            if answer is not None:
                return answer  # type: ignore[no-any-return]  # hooks return awaitables
        raise PluginError(f"no plugin answered {hook}")

    async def around(self, hook: str, kwargs: Mapping[str, Any],
                     work: Callable[[], Awaitable[T]]) -> T:
        """Await ``work()`` inside every wrapper implementing ``hook``."""
        if not self.implementations(hook):
            return await work()
        entered = self.enter(hook, kwargs)
        try:
            result = await work()
        except BaseException as exc:
            entered.throw(exc)
            raise
        entered.send(result)
        return result

    def enter(self, hook: str, kwargs: Mapping[str, Any]) -> Entered:
        """Run every wrapper of ``hook`` up to its ``yield``; leave them through the
        ``Entered`` (in this task) once the work is done."""
        entered = Entered(hook)
        try:
            for impl in self.implementations(hook):
                gen = self._enter(hook, impl, kwargs)
                if gen is not None:
                    entered.gens.append((impl.plugin_name, gen))
        except BaseException as exc:
            entered.throw(exc)
            raise
        return entered

    def _enter(self, hook: str, impl: pluggy.HookImpl, kwargs: Mapping[str, Any]) -> Any:
        """Run one wrapper up to its ``yield``; whatever it raises is the plugin's fault."""
        try:
            gen = self.call(hook, impl, kwargs)
            if gen is not None:
                next(gen)
        except StopIteration:
            raise PluginError(f"{hook} wrapper of plugin {impl.plugin_name!r} returned "
                              "without yielding; a wrapper must yield exactly once") from None
        except Exception as exc:
            raise PluginError(f"{hook} wrapper of plugin {impl.plugin_name!r} failed before "
                              f"the work started: {type(exc).__name__}: {exc}") from exc
        return gen


class Entered:
    """Wrappers of one hook that are waiting at their ``yield``: leave them once, with
    ``send(result)`` or ``throw(error)``, in reverse order of entry."""

    __slots__ = ("gens", "hook")

    def __init__(self, hook: str) -> None:
        self.hook = hook
        self.gens: list[tuple[str, Any]] = []

    def send(self, result: Any) -> None:
        gens, self.gens = self.gens, []
        for name, gen in reversed(gens):
            _send(self.hook, name, gen, result)

    def throw(self, exc: BaseException) -> None:
        gens, self.gens = self.gens, []
        for name, gen in reversed(gens):
            _throw(self.hook, name, gen, exc)


def _send(hook: str, name: str, gen: Any, result: Any) -> None:
    try:
        gen.send(result)
    except StopIteration:
        return
    except Exception as exc:
        raise PluginError(f"{hook} wrapper of plugin {name!r} failed after the work "
                          f"succeeded: {type(exc).__name__}: {exc}") from exc
    gen.close()
    raise PluginError(f"{hook} wrapper of plugin {name!r} yielded more than once; "
                      "a wrapper must yield exactly once")


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
