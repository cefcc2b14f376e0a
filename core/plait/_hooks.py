"""Calling hooks: the one place that walks a hook's implementations.

pluggy's own call loop cannot await and cannot drive a wrapper around an ``await``, so
plait calls implementations itself, in pluggy's order (``tryfirst`` first, ``trylast``
last), each with only the arguments it names:

- ``decide``: a decision hook, first non-``None`` answer wins (``firstresult``);
- ``around``: a wrapper hook around awaited work (one-``yield`` generators, sync or
  async, driven in this task: entered in hook order, left in reverse); ``enter`` does
  the same for work that is not one ``await`` (a stream read by its caller), returning
  the ``Entered`` wrappers to leave with the result or the error;
- ``implementations``: for registration hooks, which the plugin loader calls one
  plugin at a time so a broken one can be set aside.

Implementations are cached per hook until ``changed()`` (a plugin came or went).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import pluggy

from ._errors import PluginError
from ._timeouts import timed_out

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
        answer = self.first(hook, **kwargs)
        if answer is None:
            raise PluginError(f"no plugin answered {hook}")
        return answer  # type: ignore[no-any-return]  # hooks return awaitables

    def first(self, hook: str, **kwargs: Any) -> Any:
        """The first answer (not ``None``) to a firstresult ``hook``, or ``None``."""
        for impl in self.implementations(hook):
            answer: Any = (self.call(hook, impl, kwargs) if self.trace
                           else call_impl(impl, kwargs))
            if answer is not None:
                return answer
        return None

    async def around(self, hook: str, kwargs: Mapping[str, Any],
                     work: Callable[[], Awaitable[T]]) -> T:
        """Await ``work()`` inside every wrapper implementing ``hook``."""
        if not self.implementations(hook):
            return await work()
        entered = await self.enter(hook, kwargs)
        try:
            result = await work()
        except BaseException as exc:
            await entered.throw(exc)
            raise
        await entered.send(result)
        return result

    async def enter(self, hook: str, kwargs: Mapping[str, Any]) -> Entered:
        """Run every wrapper of ``hook`` up to its ``yield``; leave them through the
        ``Entered`` (in this task) once the work is done."""
        entered = Entered(hook)
        try:
            for impl in self.implementations(hook):
                gen = self._enter(hook, impl, kwargs)
                if inspect.isasyncgen(gen):
                    await _aenter(hook, impl.plugin_name, gen)
                if gen is not None:
                    entered.gens.append((impl.plugin_name, gen))
        except BaseException as exc:
            await entered.throw(exc)
            raise
        return entered

    def _enter(self, hook: str, impl: pluggy.HookImpl, kwargs: Mapping[str, Any]) -> Any:
        """Run one wrapper up to its ``yield`` (an async one is only called: ``_aenter``
        runs it); whatever it raises is the plugin's fault."""
        try:
            gen = self.call(hook, impl, kwargs)
            if gen is not None and not inspect.isasyncgen(gen):
                next(gen)
        except StopIteration:
            raise _no_yield(hook, impl.plugin_name) from None
        except Exception as exc:
            raise _failed_first(hook, impl.plugin_name, exc) from exc
        return gen


class Entered:
    """Wrappers of one hook that are waiting at their ``yield``: leave them once, with
    ``send(result)`` or ``throw(error)``, in reverse order of entry."""

    __slots__ = ("gens", "hook")

    def __init__(self, hook: str) -> None:
        self.hook = hook
        self.gens: list[tuple[str, Any]] = []

    async def send(self, result: Any) -> None:
        gens, self.gens = self.gens, []
        for name, gen in reversed(gens):
            if inspect.isasyncgen(gen):
                await _asend(self.hook, name, gen, result)
            else:
                _send(self.hook, name, gen, result)

    async def throw(self, exc: BaseException) -> None:
        # a timeout's cancellation is shown to wrappers as the StepTimeout it becomes
        shown = timed_out(exc) or exc
        gens, self.gens = self.gens, []
        for name, gen in reversed(gens):
            if inspect.isasyncgen(gen):
                await _athrow(self.hook, name, gen, exc, shown)
            else:
                _throw(self.hook, name, gen, exc, shown)


async def _aenter(hook: str, name: str, gen: Any) -> None:
    """Run an async wrapper up to its ``yield``."""
    try:
        await gen.asend(None)
    except StopAsyncIteration:
        raise _no_yield(hook, name) from None
    except Exception as exc:
        raise _failed_first(hook, name, exc) from exc


def _no_yield(hook: str, name: str) -> PluginError:
    return PluginError(f"{hook} wrapper of plugin {name!r} returned without yielding; "
                       "a wrapper must yield exactly once")


def _failed_first(hook: str, name: str, exc: Exception) -> PluginError:
    return PluginError(f"{hook} wrapper of plugin {name!r} failed before the work "
                       f"started: {type(exc).__name__}: {exc}")


def _failed_after(hook: str, name: str, exc: Exception) -> PluginError:
    return PluginError(f"{hook} wrapper of plugin {name!r} failed after the work "
                       f"succeeded: {type(exc).__name__}: {exc}")


def _twice(hook: str, name: str) -> PluginError:
    return PluginError(f"{hook} wrapper of plugin {name!r} yielded more than once; "
                       "a wrapper must yield exactly once")


def _raised_instead(hook: str, name: str, raised: BaseException,
                    exc: BaseException) -> PluginError:
    return PluginError(f"{hook} wrapper of plugin {name!r} raised "
                       f"{type(raised).__name__} while handling {type(exc).__name__}")


def _send(hook: str, name: str, gen: Any, result: Any) -> None:
    try:
        gen.send(result)
    except StopIteration:
        return
    except Exception as exc:
        raise _failed_after(hook, name, exc) from exc
    gen.close()
    raise _twice(hook, name)


async def _asend(hook: str, name: str, gen: Any, result: Any) -> None:
    try:
        await gen.asend(result)
    except StopAsyncIteration:
        return
    except Exception as exc:
        raise _failed_after(hook, name, exc) from exc
    await gen.aclose()
    raise _twice(hook, name)


def _throw(hook: str, name: str, gen: Any, exc: BaseException, shown: BaseException) -> None:
    """Throw the work's error (``shown``: as wrappers see it) into one wrapper; the
    original error always propagates. A wrapper shown a timeout may raise what it likes
    (``raise CircuitOpen() from exc``): the cancellation must reach its scope all the same."""
    try:
        gen.throw(shown)
    except StopIteration:
        return  # it tried to swallow the error; wrappers cannot, the error propagates
    except BaseException as raised:
        if raised is exc or shown is not exc:  # a timeout's cancellation always goes on
            return
        raise _raised_instead(hook, name, raised, shown) from raised
    gen.close()
    raise _twice(hook, name) from exc


async def _athrow(hook: str, name: str, gen: Any, exc: BaseException,
                  shown: BaseException) -> None:
    """``_throw`` for an async wrapper. Shielded when the work was cancelled, so the
    wrapper's own awaits (releasing a quota, say) still run."""
    with anyio.CancelScope(shield=isinstance(exc, anyio.get_cancelled_exc_class())):
        try:
            await gen.athrow(shown)
        except StopAsyncIteration:
            return
        except BaseException as raised:
            if raised is exc or shown is not exc:
                return
            raise _raised_instead(hook, name, raised, shown) from raised
        await gen.aclose()
    raise _twice(hook, name) from exc
